"""A key-value store scoped to this plugin (capability `kv`): no other plugin sees its keys.

Errors: an oversized value or a full store is `Internal`, an unavailable store `Retryable`.
Outside a component (unit tests) the store is the dict `memory`.
"""

import json
from typing import Any, Optional

from ._host import binding
from .errors import Internal, Retryable

__all__ = ["get", "set", "delete", "list_keys", "get_json", "set_json", "memory"]

memory: "dict[str, bytes]" = {}


def _call(operation: str, *args: Any) -> Any:
    wit = binding("kv", "kv")
    if wit is None:
        return None
    from componentize_py_types import Err

    try:
        return getattr(wit, operation)(*args)
    except Err as err:
        case = type(err.value).__name__
        if case.endswith("TooLarge"):
            raise Internal(f"kv {operation}: {err.value.value}") from None
        raise Retryable(f"kv {operation}: {err.value.value}") from None


def _native() -> bool:
    return binding("kv", "kv") is None


def get(key: str) -> Optional[bytes]:
    if _native():
        return memory.get(key)
    return _call("get", key)


def set(key: str, value: "bytes | str") -> None:
    data = value.encode() if isinstance(value, str) else bytes(value)
    if _native():
        memory[key] = data
        return
    _call("set", key, data)


def delete(key: str) -> None:
    if _native():
        memory.pop(key, None)
        return
    _call("delete", key)


def list_keys(prefix: str = "", limit: int = 100) -> "list[str]":
    """Keys starting with `prefix`, sorted, at most `limit`."""
    if _native():
        return sorted(k for k in memory if k.startswith(prefix))[:limit]
    return list(_call("list_keys", prefix, limit))


def get_json(key: str) -> Any:
    """The JSON value stored at `key`, or `None`."""
    raw = get(key)
    return None if raw is None else json.loads(raw)


def set_json(key: str, value: Any) -> None:
    set(key, json.dumps(value, separators=(",", ":")))
