"""The component's export: wraps the app module's `Plugin` in the class componentize-py binds
to the WIT `tool` interface. The kit's generated entry module calls `export(app)`.

This runs during the build (componentize-py imports the app and snapshots it), so the
manifest and every schema are computed once, at build time, and a broken plugin fails the
build with the problems listed.
"""

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any, Optional

from .context import Context
from .errors import Internal, ToolError, Upstream
from .plugin import Effects, Plugin, describe_exception
from .schema import Field

_EFFECT_NAMES = ("READ", "WRITE", "SEND_MESSAGE", "SPEND", "DELETE")


def find_plugin(module: ModuleType) -> Plugin:
    """The one `Plugin` instance defined at the top level of `module`."""
    found = [value for value in vars(module).values() if isinstance(value, Plugin)]
    if len(found) != 1:
        raise RuntimeError(
            f"module `{module.__name__}` must define exactly one tollgate.Plugin at top level, found {len(found)}"
        )
    return found[0]


def _wit_effects(types: Any, effects: Effects) -> Any:
    out = types.Effects(0)
    for name in _EFFECT_NAMES:
        if effects & Effects[name]:
            out |= types.Effects[name]
    return out


def _wit_manifest(types: Any, plugin: Plugin) -> Any:
    data = plugin.manifest()
    tools = [
        types.Tool(
            t["name"],
            t["description"],
            t["input_schema"],
            t["output_schema"],
            _wit_effects(types, t["effects"]),
            t["idempotent"],
            t["compensation"],
        )
        for t in data["tools"]
    ]
    credentials = [
        types.Credential(c["name"], c["host"], c["header"], c["value_prefix"], c["description"])
        for c in data["credentials"]
    ]
    return types.Manifest(data["name"], data["version"], data["description"], tools, data["hosts"], credentials)


def _wit_error(types: Any, error: ToolError) -> Any:
    if isinstance(error, Upstream):
        return types.ToolError_Upstream(types.UpstreamError(error.status, error.message))
    case = {
        "invalid-input": types.ToolError_InvalidInput,
        "denied": types.ToolError_Denied,
        "not-found": types.ToolError_NotFound,
        "retryable": types.ToolError_Retryable,
    }.get(error.kind, types.ToolError_Internal)
    return case(error.message)


def _preload_bindings() -> None:
    """Imports every generated binding module now, at build time. The component cannot read
    module files at run time, so a lazy import there would fail; after the build snapshot
    they are in `sys.modules`, and the helpers' lazy imports find them."""
    import importlib
    import pkgutil

    import wit_world.imports

    for info in pkgutil.iter_modules(wit_world.imports.__path__):
        importlib.import_module(f"wit_world.imports.{info.name}")
    if "wit_world.imports.outgoing_handler" in sys.modules:
        importlib.import_module("tollgate._wasi_http")


@dataclass
class _Sample:
    text: str
    count: int
    ratio: float
    flag: bool
    items: "list[str]"
    extra: Optional[dict]


def _sample(
    text: Annotated[str, Field("Text.", min_length=1, max_length=100)],
    count: int = 0,
    ratio: float = 0.0,
    flag: bool = False,
    items: Optional["list[str]"] = None,
    extra: Optional[dict] = None,
) -> _Sample:
    """A tool of the SDK's own, run only to warm the call path."""
    return _Sample(text.strip(), count + 1, ratio * 2, not flag, list(items or []), extra)


_SAMPLE_INPUT = (
    '{"text": " warm ", "count": 2, "ratio": 0.5, "flag": true, "items": ["a", "b"], "extra": {"k": [1, null]}}'
)


def _warm_up() -> str:
    """Runs the SDK's call path — JSON in, argument conversion and checks, JSON out — on a
    private tool, at build time. CPython specialises bytecode and fills its caches as code
    runs; the build snapshot keeps that, so every fresh instance starts with a warm SDK
    instead of redoing that work (and dirtying copy-on-write pages for it) in each call: a
    trivial call runs 19% fewer guest instructions (BENCHMARKS.md). No code of the plugin
    runs. Returns the last output (a failure raises, and fails the build)."""
    probe = Plugin("sdk-warm-up", "0", "The SDK's own warm-up.")
    probe.tool(_sample, effects=Effects.NONE)
    output = ""
    for _ in range(64):
        output = probe.call("_sample", _SAMPLE_INPUT)
    return output


def export(module: ModuleType) -> "tuple[type, type]":
    """The classes componentize-py exports as `tollgate:plugin/tool` and
    `tollgate:plugin/requests`."""
    from componentize_py_types import Err
    from wit_world import exports
    from wit_world.exports import requests as requests_types
    from wit_world.imports import types

    _preload_bindings()
    plugin = find_plugin(module)
    problems = plugin.validate()
    if problems:
        raise RuntimeError(f"plugin `{plugin.name}` is invalid:\n  " + "\n  ".join(problems))
    manifest = _wit_manifest(types, plugin)
    declared = [requests_types.ToolRequests(t.name, list(t.requests)) for t in plugin.tools if t.requests is not None]
    _warm_up()

    class Tool(exports.Tool):
        def manifest(self) -> Any:
            return manifest

        def call(self, tool: str, input: str, context: Any) -> str:
            ctx = Context(context.run_id, context.call_id, context.idempotency_key)
            try:
                return plugin.call(tool, input, ctx)
            except ToolError as error:
                raise Err(_wit_error(types, error)) from None
            except BaseException as error:  # noqa: BLE001 - a trap would lose the message
                raise Err(_wit_error(types, Internal(describe_exception(error)))) from None

    class Requests(exports.Requests):
        def declared(self) -> Any:
            return declared

    return Tool, Requests
