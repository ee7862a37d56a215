"""SDK unit tests under a plain CPython: `python3 -m unittest discover -s tests` from
plugins/sdk-python."""

import enum
import json
import sys
import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tollgate  # noqa: E402
from tollgate import Context, Effects, Field, Plugin, http, kv, log  # noqa: E402
from tollgate.schema import convert, schema_of  # noqa: E402


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    """A point on the plane."""

    x: int
    y: Annotated[float, Field("Vertical.", minimum=0)] = 0.0
    tags: "list[str]" = field(default_factory=list)


class Filter(TypedDict):
    property: str
    value: NotRequired[str]


class SchemaTest(unittest.TestCase):
    def test_scalars_and_containers(self):
        self.assertEqual(schema_of(int), {"type": "integer"})
        self.assertEqual(schema_of(list[str]), {"type": "array", "items": {"type": "string"}})
        self.assertEqual(schema_of(dict[str, bool]), {"type": "object", "additionalProperties": {"type": "boolean"}})
        self.assertEqual(schema_of(Optional[int]), {"anyOf": [{"type": "integer"}, {"type": "null"}]})
        self.assertEqual(schema_of(int | str), {"anyOf": [{"type": "integer"}, {"type": "string"}]})
        self.assertEqual(schema_of(Literal["a", "b"]), {"type": "string", "enum": ["a", "b"]})
        self.assertEqual(schema_of(Color), {"enum": ["red", "blue"]})
        self.assertEqual(schema_of(Any), {})

    def test_dataclasses_and_typeddicts(self):
        point = schema_of(Point)
        self.assertEqual(point["description"], "A point on the plane.")
        self.assertEqual(point["required"], ["x"])
        self.assertFalse(point["additionalProperties"])
        self.assertEqual(point["properties"]["y"], {"type": "number", "description": "Vertical.", "minimum": 0, "default": 0.0})
        self.assertNotIn("default", point["properties"]["tags"])
        self.assertEqual(schema_of(Filter)["required"], ["property"])

    def test_unsupported_annotations_fail_at_declaration(self):
        with self.assertRaises(TypeError):
            schema_of(dict[int, str])
        with self.assertRaises(TypeError):
            schema_of(tuple[int, str])
        with self.assertRaises(TypeError):
            schema_of(bytes)

    def test_convert_checks_and_builds(self):
        self.assertEqual(convert({"x": 1, "y": 2}, Point), Point(1, 2.0))
        self.assertEqual(convert(3.0, int), 3)
        self.assertEqual(convert("red", Color), Color.RED)
        self.assertEqual(convert({"property": "email"}, Filter), {"property": "email"})
        cases = [
            (True, int, "expected an integer, got boolean"),
            (1, bool, "expected a boolean"),
            ({"x": 1, "z": 0}, Point, "unknown field `z`"),
            ({"y": 1}, Point, "missing field `x`"),
            ({"x": 1, "y": -1}, Point, "less than the minimum"),
            ("green", Color, "not one of"),
            ([1, "a"], list[int], "input[1]: expected an integer"),
            (1, Literal[True], "not one of"),
        ]
        for value, tp, message in cases:
            with self.assertRaises(tollgate.InvalidInput, msg=repr(value)) as raised:
                convert(value, tp)
            self.assertIn(message, str(raised.exception))


def make_plugin():
    plugin = Plugin("demo", "1.2.3", "A demo.", hosts=["https://api.example.com"],
                    credentials=[tollgate.Credential.bearer("example", "api.example.com", "API key")])

    @plugin.tool(effects=Effects.READ | Effects.WRITE, idempotent=True)
    def place(ctx: Context, at: Point, color: Color = Color.RED) -> dict:
        """Places a point."""
        return {"at": at, "color": color, "key": ctx.idempotency_key}

    @plugin.tool(name="fail", description="Fails as asked.")
    def fail_tool(kind: Literal["denied", "upstream", "bug", "exit"]) -> None:
        if kind == "denied":
            raise tollgate.Denied("no access")
        if kind == "upstream":
            raise tollgate.Upstream("bad gateway", 502)
        if kind == "exit":
            raise SystemExit(3)
        return {}["missing"]

    return plugin


class PluginTest(unittest.TestCase):
    def test_manifest(self):
        m = make_plugin().manifest()
        self.assertEqual((m["name"], m["version"], m["hosts"]), ("demo", "1.2.3", ["https://api.example.com"]))
        self.assertEqual(m["credentials"][0]["header"], "authorization")
        place = m["tools"][0]
        self.assertEqual(place["description"], "Places a point.")
        self.assertEqual(place["effects"], Effects.READ | Effects.WRITE)
        schema = json.loads(place["input_schema"])
        self.assertEqual(schema["required"], ["at"])
        self.assertEqual(schema["properties"]["color"]["default"], "red")
        self.assertNotIn("ctx", schema["properties"])
        self.assertEqual(json.loads(place["output_schema"]), {"type": "object"})
        self.assertEqual(json.loads(m["tools"][1]["output_schema"]), {"type": "null"})

    def test_call_converts_input_and_output(self):
        out = make_plugin().call("place", '{"at": {"x": 1}, "color": "blue"}', Context("r", "c", "k-9"))
        self.assertEqual(json.loads(out), {"at": {"x": 1, "y": 0.0, "tags": []}, "color": "blue", "key": "k-9"})

    def test_errors_are_typed(self):
        plugin = make_plugin()
        with self.assertRaises(tollgate.NotFound):
            plugin.call("nope", "{}")
        with self.assertRaises(tollgate.InvalidInput):
            plugin.call("place", "not json")
        with self.assertRaises(tollgate.Denied):
            plugin.call("fail", '{"kind": "denied"}')
        with self.assertRaises(tollgate.Upstream) as raised:
            plugin.call("fail", '{"kind": "upstream"}')
        self.assertEqual(raised.exception.status, 502)
        with self.assertRaises(tollgate.Internal) as raised:
            plugin.call("fail", '{"kind": "bug"}')
        self.assertRegex(raised.exception.message, r"^KeyError: 'missing' \(at test_sdk.py:\d+ in fail_tool\)$")
        with self.assertRaises(tollgate.Internal):
            plugin.call("fail", '{"kind": "exit"}')

    def test_validate_finds_every_problem(self):
        plugin = Plugin("Bad Name", "", "x")

        @plugin.tool(name="Tool", compensation="undo")
        def t() -> None:
            pass

        @plugin.tool(name="Tool")
        def u() -> None:
            """Doc."""

        problems = "\n".join(plugin.validate())
        for expected in ("plugin name", "version is empty", "tool name `Tool`", "used twice", "no description",
                         "compensation `undo`"):
            self.assertIn(expected, problems)
        self.assertEqual(make_plugin().validate(), [])

    def test_requests_are_declared_per_tool_and_checked(self):
        plugin = Plugin("demo", "1", "d", hosts=["https://api.example.com"])

        @plugin.tool(requests=["GET api.example.com/v1/items/*"])
        def get_item() -> None:
            """Gets."""

        @plugin.tool(requests=[])
        def pure() -> None:
            """Computes."""

        @plugin.tool
        def free() -> None:
            """Anything its hosts allow."""

        self.assertEqual(plugin.validate(), [])
        self.assertEqual([t["requests"] for t in plugin.manifest()["tools"]],
                         [["GET api.example.com/v1/items/*"], [], None])

        @plugin.tool(requests=["get api.example.com/x", "GET https://api.example.com/x", 7])
        def bad() -> None:
            """Bad."""

        problems = plugin.validate()
        self.assertEqual(len(problems), 3, problems)
        self.assertTrue(all("is not `METHOD host/path`" in p for p in problems), problems)

    def test_parameters_need_annotations(self):
        plugin = Plugin("demo", "1", "d")
        with self.assertRaises(TypeError):
            plugin.tool(lambda x: x)


class ErrorsTest(unittest.TestCase):
    def test_http_status_mapping(self):
        kind = lambda s: tollgate.from_http_status(s, "m").kind  # noqa: E731
        self.assertEqual([kind(s) for s in (401, 403, 404, 409, 408, 429, 500, 503)],
                         ["denied", "denied", "not-found", "invalid-input", "retryable", "retryable", "retryable",
                          "retryable"])
        self.assertEqual(tollgate.from_http_status(400, "bad"), tollgate.Upstream("bad", 400))
        self.assertEqual(str(tollgate.Upstream("eof")), "upstream: eof")


class HelpersTest(unittest.TestCase):
    def test_request_building(self):
        req = http.build("post", "https://api.example.com/v1/x?a=1#frag", query={"b": "c d", "skip": None},
                         json={"k": 1}, idempotency_key="run:1:0")
        self.assertEqual(req.url, "https://api.example.com/v1/x?a=1&b=c+d")
        self.assertEqual(req.header("Content-Type"), "application/json")
        self.assertEqual(req.header("idempotency-key"), "run:1:0")
        self.assertEqual(req.body, b'{"k":1}')
        self.assertEqual(http.quote("a/b c"), "a%2Fb%20c")
        for bad in ("ftp://x", "https://user:pw@x.com/", "/relative"):
            with self.assertRaises(tollgate.Internal):
                http.build("GET", bad)

    def test_responses(self):
        ok = http.Response(200, [("content-type", "application/json")], b'{"a": 1}')
        self.assertEqual((ok.json(), ok.header("Content-Type")), ({"a": 1}, "application/json"))
        with self.assertRaises(tollgate.Upstream):
            http.Response(200, [], b"<html>").json()
        with self.assertRaises(tollgate.Retryable) as raised:
            http.Response(503, [], b'{"message": "busy"}').raise_for_status()
        self.assertEqual(raised.exception.message, "busy")

    def test_wasi_error_codes(self):
        class ErrorCode_HttpRequestDenied:
            pass

        class ErrorCode_InternalError:
            def __init__(self, value):
                self.value = value

        class ErrorCode_ConnectionRefused:
            pass

        self.assertIsInstance(http.classify(ErrorCode_HttpRequestDenied()), tollgate.Denied)
        self.assertIsInstance(http.classify(ErrorCode_InternalError("host not granted")), tollgate.Denied)
        self.assertIsInstance(http.classify(ErrorCode_InternalError("boom")), tollgate.Upstream)
        self.assertIsInstance(http.classify(ErrorCode_ConnectionRefused()), tollgate.Retryable)

    def test_sending_natively_needs_a_mock(self):
        with self.assertRaises(tollgate.Internal):
            http.get("https://api.example.com/")
        with http.mock(lambda req: http.Response(204)) as sent:
            self.assertEqual(http.get("https://api.example.com/").status, 204)
        self.assertEqual(len(sent), 1)

    def test_kv_and_log_work_natively(self):
        kv.set_json("k:1", {"a": 1})
        kv.set("k:2", "two")
        self.assertEqual((kv.get_json("k:1"), kv.get("k:2")), ({"a": 1}, b"two"))
        self.assertEqual(kv.list_keys("k:"), ["k:1", "k:2"])
        kv.delete("k:1")
        self.assertIsNone(kv.get("k:1"))
        log.info("hello", n=1)
        self.assertEqual(log.records[-1], ("info", "hello", {"n": 1}))
        with self.assertRaises(ValueError):
            log.log("loud", "x")


class WarmUpTest(unittest.TestCase):
    def test_the_build_time_warm_up_runs_the_whole_call_path_on_its_own_tool(self):
        from tollgate import _guest

        out = json.loads(_guest._warm_up())
        want = {"text": "warm", "count": 3, "ratio": 1.0, "flag": False, "items": ["a", "b"], "extra": {"k": [1, None]}}
        self.assertEqual(out, want)


if __name__ == "__main__":
    unittest.main()
