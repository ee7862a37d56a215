"""Where the SDK meets the component: the generated bindings (`wit_world`, written by
componentize-py at build time) are imported lazily, only by the helper that needs them, so the
SDK imports under a plain CPython for unit tests and a plugin imports only the capabilities it
declared."""

import importlib
from types import ModuleType
from typing import Optional

from .errors import Internal


def in_component() -> bool:
    """Whether this code runs inside a built component (the bindings exist)."""
    try:
        importlib.import_module("wit_world")
    except ImportError:
        return False
    return True


def binding(module: str, capability: str) -> Optional[ModuleType]:
    """`wit_world.imports.<module>` inside a component, `None` natively. Inside a component
    built without `capability`, an `Internal` error saying how to declare it."""
    if not in_component():
        return None
    try:
        return importlib.import_module(f"wit_world.imports.{module}")
    except ImportError as error:
        raise Internal(
            f"this plugin was built without the `{capability}` capability: "
            f'add "{capability}" to `capabilities` under [tool.tollgate] in pyproject.toml and rebuild ({error})'
        ) from None
