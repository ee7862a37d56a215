"""Tollgate plugin SDK for Python.

A plugin is one `Plugin` with tools: functions whose annotated parameters are the tool's
input (the JSON Schema comes from the type hints) and whose return value is its output.

```python
from typing import Annotated
from tollgate import Plugin, Effects, Field, InvalidInput

plugin = Plugin("greeter", "0.1.0", "Greets people.")

@plugin.tool(idempotent=True)
def greet(name: Annotated[str, Field("Who to greet", max_length=100)], shout: bool = False) -> dict:
    \"\"\"Says hello to `name`.\"\"\"
    if not name.strip():
        raise InvalidInput("`name` is empty")
    text = f"Hello, {name}!"
    return {"greeting": text.upper() if shout else text}
```

Modules: `tollgate.errors` (typed errors), `tollgate.schema` (type hints → JSON Schema),
`tollgate.http`, `tollgate.kv`, `tollgate.log`, `tollgate.secrets` (capabilities: declare
each one you use in `[tool.tollgate] capabilities` in pyproject.toml).

Everything here imports under a plain CPython (3.11+) so tools can be unit-tested natively;
the component bindings are imported only inside a built component.
"""

from . import errors, http, kv, log, schema, secrets
from .context import Context
from .errors import Denied, Internal, InvalidInput, NotFound, Retryable, ToolError, Upstream, from_http_status
from .plugin import Credential, Effects, Plugin, Tool
from .schema import Field

__version__ = "0.1.0"

__all__ = [
    "Context",
    "Credential",
    "Denied",
    "Effects",
    "Field",
    "Internal",
    "InvalidInput",
    "NotFound",
    "Plugin",
    "Retryable",
    "Tool",
    "ToolError",
    "Upstream",
    "errors",
    "from_http_status",
    "http",
    "kv",
    "log",
    "schema",
    "secrets",
]
