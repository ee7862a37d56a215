"""The plugin definition: `Plugin` (what the component exports), `Tool`, `Credential` and
`Effects`, and the one place where a JSON input becomes a function call and a return value
becomes JSON output.

Nothing here calls a capability (log, kv, secrets, http), so a plugin that never calls them
does not need them; capabilities are declared in `pyproject.toml` and the build imports only
those.
"""

import enum
import inspect
import json
import re
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, get_type_hints

from . import schema as _schema
from .context import Context
from .errors import Internal, InvalidInput, NotFound, ToolError

__all__ = ["Effects", "Credential", "Tool", "Plugin"]

_TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
# `METHOD host/path`: the shape the host parses a request scope by (it checks the rest at load).
_SCOPE = re.compile(r"^(\*|[A-Z]+) [^/:\s]+/\S*$")
# What an internal error may say about the exception; the host caps tool-error text at 8 KiB.
_MAX_ERROR_CHARS = 2000


class Effects(enum.Flag):
    """The side effects a tool may have; the host's approval policy keys on them. No flag
    (the default, `Effects.NONE`) means the tool is pure computation."""

    NONE = 0
    READ = enum.auto()
    WRITE = enum.auto()
    SEND_MESSAGE = enum.auto()
    SPEND = enum.auto()
    DELETE = enum.auto()


@dataclass(frozen=True)
class Credential:
    """A credential the plugin needs, bound to one host. The operator maps `name` to a secret;
    the host adds `header: value_prefix + secret` to requests to `host` only, so the plugin
    never sees it."""

    name: str
    host: str
    header: str
    value_prefix: str
    description: str

    @classmethod
    def bearer(cls, name: str, host: str, description: str) -> "Credential":
        """`authorization: Bearer <secret>` on requests to `host`."""
        return cls(name, host, "authorization", "Bearer ", description)


class Tool:
    """One tool: a function with annotated parameters, and what it may do.

    Each parameter is one property of the input object (a parameter with a default is
    optional); a parameter annotated `Context` receives the call context instead. The return
    value is serialised to JSON (dataclasses, enums and tuples included); its annotation, if
    any, becomes the output schema, which the host checks.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        effects: Effects = Effects.NONE,
        idempotent: bool = False,
        compensation: Optional[str] = None,
        requests: Optional[Iterable[str]] = None,
    ):
        self.function = function
        self.name = name or function.__name__
        doc = inspect.getdoc(function)
        self.description = description or doc or ""
        self.effects = effects
        self.idempotent = idempotent
        self.compensation = compensation
        # `METHOD host/path-pattern` each; once declared, the host refuses any other request of
        # this tool. `[]` declares that it makes none; `None` leaves it to the plugin's hosts.
        self.requests = None if requests is None else list(requests)
        hints = get_type_hints(function, include_extras=True)
        self._context_param: Optional[str] = None
        self._fields: "list[tuple[str, Any, bool, Any]]" = []
        for param in inspect.signature(function).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
                raise TypeError(f"tool `{self.name}`: parameter `{param.name}` must be a plain or keyword parameter")
            if param.name not in hints:
                raise TypeError(f"tool `{self.name}`: parameter `{param.name}` needs a type annotation")
            hint = hints[param.name]
            if hint is Context:
                self._context_param = param.name
                continue
            required = param.default is inspect.Parameter.empty
            default = _schema.dataclasses.MISSING if required else param.default
            self._fields.append((param.name, hint, required, default))
        self.input_schema = _schema.object_schema(self._fields, (), None)
        returns = hints.get("return", inspect.Signature.empty)
        self.output_schema = None if returns in (inspect.Signature.empty, Any) else _schema.schema_of(returns)

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, effects={self.effects!r}, idempotent={self.idempotent})"

    def invoke(self, input: Any, context: Optional[Context] = None) -> Any:
        """Runs the tool on parsed JSON `input` (a dict) and returns the JSON-ready output.
        Raises `ToolError`s as the tool does; other exceptions pass through."""
        kwargs = _schema.convert_object(input, self._fields, "")
        if self._context_param is not None:
            kwargs[self._context_param] = context or Context()
        return _schema.to_json_value(self.function(**kwargs))


class Plugin:
    """A whole plugin: name, version, description, outbound hosts, credentials and tools.

    ```python
    plugin = Plugin("weather", "0.1.0", "Current weather by city",
                    hosts=["https://api.weather.example"])

    @plugin.tool(effects=Effects.READ, idempotent=True)
    def current_weather(city: str) -> Current: ...
    ```
    """

    def __init__(
        self,
        name: str,
        version: str,
        description: str,
        *,
        hosts: Iterable[str] = (),
        credentials: Iterable[Credential] = (),
    ):
        self.name = name
        self.version = version
        self.description = description
        self.hosts = list(hosts)
        self.credentials = list(credentials)
        self.tools: "list[Tool]" = []

    def tool(
        self,
        function: Optional[Callable[..., Any]] = None,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        effects: Effects = Effects.NONE,
        idempotent: bool = False,
        compensation: Optional[str] = None,
        requests: Optional[Iterable[str]] = None,
    ) -> Any:
        """Registers a function as a tool; usable bare (`@plugin.tool`) or with options. The
        function is returned unchanged, so tests can call it directly. The name defaults to
        the function's, the description to its docstring (write it for the model).

        `requests` declares every kind of request the tool makes, each `METHOD host/path`
        (`"GET api.example.com/v1/items/*"`: `*` is one path segment, a final `**` any rest,
        no query): the host's egress gate then refuses any other request of this tool."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.tools.append(
                Tool(
                    fn,
                    name=name,
                    description=description,
                    effects=effects,
                    idempotent=idempotent,
                    compensation=compensation,
                    requests=requests,
                )
            )
            return fn

        return register(function) if function is not None else register

    def find_tool(self, name: str) -> Optional[Tool]:
        return next((t for t in self.tools if t.name == name), None)

    def validate(self) -> "list[str]":
        """What the host checks at load time, so a mistake fails a unit test (and the build)
        instead: name syntax, unique tool names, compensations naming a tool of this plugin.
        Returns every problem found."""
        problems = []
        if not _PLUGIN_NAME.match(self.name) or len(self.name) > 64:
            problems.append(f"plugin name `{self.name}` must match [a-z][a-z0-9_-]* (at most 64 characters)")
        if not self.version:
            problems.append("plugin version is empty")
        for credential in self.credentials:
            if not _PLUGIN_NAME.match(credential.name):
                problems.append(f"credential name `{credential.name}` must match [a-z][a-z0-9_-]*")
            if not credential.host or "/" in credential.host:
                problems.append(f"credential `{credential.name}` needs a bare host name, not `{credential.host}`")
        names = [t.name for t in self.tools]
        if not names:
            problems.append("the plugin has no tools")
        for index, tool in enumerate(self.tools):
            if not _TOOL_NAME.match(tool.name) or len(tool.name) > 64:
                problems.append(f"tool name `{tool.name}` must match [a-z][a-z0-9_]* (at most 64 characters)")
            if tool.name in names[:index]:
                problems.append(f"tool name `{tool.name}` is used twice")
            if not tool.description.strip():
                problems.append(f"tool `{tool.name}` has no description (give a docstring)")
            if tool.compensation is not None and tool.compensation not in names:
                problems.append(f"tool `{tool.name}`: compensation `{tool.compensation}` is not a tool of this plugin")
            for scope in tool.requests or []:
                if not isinstance(scope, str) or not _SCOPE.match(scope):
                    problems.append(
                        f"tool `{tool.name}`: request {scope!r} is not `METHOD host/path` "
                        "(e.g. `GET api.example.com/v1/items/*`)"
                    )
        return problems

    def manifest(self) -> dict:
        """The manifest as plain data (schemas as JSON text), as the host will read it."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "hosts": list(self.hosts),
            "credentials": [vars(c).copy() for c in self.credentials],
            "tools": [
                {
                    "name": t.name,
                    "description": t.description,
                    "input_schema": json.dumps(t.input_schema),
                    "output_schema": None if t.output_schema is None else json.dumps(t.output_schema),
                    "effects": t.effects,
                    "idempotent": t.idempotent,
                    "compensation": t.compensation,
                    "requests": None if t.requests is None else list(t.requests),
                }
                for t in self.tools
            ],
        }

    def call(self, tool: str, input: str, context: Optional[Context] = None) -> str:
        """Runs `tool` on a JSON `input` exactly as the host's call does, returning JSON text.
        Always raises a `ToolError`: an unknown tool is `NotFound`, input that does not fit the
        parameters `InvalidInput`, and any other exception `Internal`."""
        found = self.find_tool(tool)
        if found is None:
            available = ", ".join(t.name for t in self.tools)
            raise NotFound(f"no tool `{tool}` in plugin `{self.name}` (it has: {available})")
        try:
            parsed = json.loads(input)
        except ValueError as error:
            raise InvalidInput(f"input is not JSON: {error}") from None
        try:
            output = found.invoke(parsed, context)
            return json.dumps(output, allow_nan=False, separators=(",", ":"))
        except ToolError:
            raise
        except RecursionError:
            raise Internal("RecursionError: maximum recursion depth exceeded") from None
        except BaseException as error:  # noqa: BLE001 - every escape must become a typed error
            raise Internal(describe_exception(error)) from None


def describe_exception(error: BaseException) -> str:
    """`Type: message (at file:line in function)`, cut to a size the host accepts.

    Walks the traceback by hand: `traceback.extract_tb` reads source lines, and a component
    built without WASI traps on any file access."""
    text = f"{type(error).__name__}: {error}"
    last = None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        last = (frame.f_code.co_filename, lineno, frame.f_code.co_name)
    if last is not None:
        filename, lineno, name = last
        text += f" (at {filename.rsplit('/', 1)[-1]}:{lineno} in {name})"
    return text[:_MAX_ERROR_CHARS]
