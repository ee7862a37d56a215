"""JSON Schema (draft 2020-12) from type hints, and the conversion of JSON input into the
annotated Python values, checking the same rules.

Supported annotations: `str`, `int`, `float`, `bool`, `None`, `Any`, `list[T]`,
`dict[str, T]`, `Optional[T]` / `T | None`, unions, `Literal[...]`, `enum.Enum` subclasses,
dataclasses and `TypedDict`s (nested freely, not recursively), and `Annotated[T, ...]` carrying
a description string and/or a `Field(...)` with constraints. Anything else is a `TypeError`
when the tool is declared, so a mistake fails at import (and at build), not at call time.

The host validates every input against the schema before the call; `convert` checks again so
that tools called natively (in unit tests) see the same rules.
"""

import collections.abc
import dataclasses
import enum
import json
import math
import re
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import InvalidInput

__all__ = ["Field", "schema_of", "convert", "to_json_value"]

_NONE = type(None)
_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
_MAPPINGS = (dict, collections.abc.Mapping)


class Field:
    """Description and constraints of a value, attached with `Annotated[T, Field(...)]`.

    `minimum`/`maximum` bound numbers, `min_length`/`max_length`/`pattern` strings,
    `min_items`/`max_items` lists. `Annotated[T, "text"]` is short for a description only.
    """

    __slots__ = (
        "description", "minimum", "maximum", "min_length", "max_length", "pattern", "min_items", "max_items", "_regex"
    )

    def __init__(
        self,
        description: "str | None" = None,
        *,
        minimum: "float | None" = None,
        maximum: "float | None" = None,
        min_length: "int | None" = None,
        max_length: "int | None" = None,
        pattern: "str | None" = None,
        min_items: "int | None" = None,
        max_items: "int | None" = None,
    ):
        self.description = description
        self.minimum = minimum
        self.maximum = maximum
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = pattern
        self.min_items = min_items
        self.max_items = max_items
        # Compiled now: in a component, declarations run once at build time.
        self._regex = re.compile(pattern) if pattern is not None else None

    def apply(self, schema: dict) -> dict:
        keywords = {
            "description": self.description,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "minLength": self.min_length,
            "maxLength": self.max_length,
            "pattern": self.pattern,
            "minItems": self.min_items,
            "maxItems": self.max_items,
        }
        return {**schema, **{k: v for k, v in keywords.items() if v is not None}}

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise InvalidInput(f"{path}: {value} is less than the minimum {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise InvalidInput(f"{path}: {value} is greater than the maximum {self.maximum}")
        if isinstance(value, str):
            if self.min_length is not None and len(value) < self.min_length:
                raise InvalidInput(f"{path}: shorter than {self.min_length} characters")
            if self.max_length is not None and len(value) > self.max_length:
                raise InvalidInput(f"{path}: longer than {self.max_length} characters")
            if self._regex is not None and self._regex.search(value) is None:
                raise InvalidInput(f"{path}: does not match the pattern {self.pattern!r}")
        if isinstance(value, list):
            if self.min_items is not None and len(value) < self.min_items:
                raise InvalidInput(f"{path}: fewer than {self.min_items} items")
            if self.max_items is not None and len(value) > self.max_items:
                raise InvalidInput(f"{path}: more than {self.max_items} items")


def _is_union(origin: Any) -> bool:
    return origin is Union or origin is types.UnionType


def _unwrap_required(tp: Any) -> Any:
    # TypedDict's Required[...] / NotRequired[...] only affect `__required_keys__`.
    while get_origin(tp) in (typing.Required, typing.NotRequired):
        tp = get_args(tp)[0]
    return tp


def _class_doc(cls: type) -> "str | None":
    doc = cls.__doc__
    # dataclasses invent a docstring like "Point(x: int, y: int)" when there is none.
    if not doc or doc.startswith(cls.__name__ + "("):
        return None
    import inspect

    return inspect.cleandoc(doc)


# Filled when a tool is declared (at build time in a component), so calls do not evaluate
# annotations again.
_FIELDS: "dict[type, list[tuple[str, Any, bool, Any]]]" = {}


def _object_fields(cls: type) -> "list[tuple[str, Any, bool, Any]]":
    """(name, hint, required, default) of a dataclass or TypedDict, in declaration order."""
    if cls not in _FIELDS:
        _FIELDS[cls] = _read_fields(cls)
    return _FIELDS[cls]


def _read_fields(cls: type) -> "list[tuple[str, Any, bool, Any]]":
    hints = get_type_hints(cls, include_extras=True)
    if dataclasses.is_dataclass(cls):
        out = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                out.append((f.name, hints[f.name], False, f.default))
            elif f.default_factory is not dataclasses.MISSING:
                out.append((f.name, hints[f.name], False, dataclasses.MISSING))
            else:
                out.append((f.name, hints[f.name], True, dataclasses.MISSING))
        return out
    required = getattr(cls, "__required_keys__", frozenset())
    return [(name, _unwrap_required(hint), name in required, dataclasses.MISSING) for name, hint in hints.items()]


def _is_object_class(tp: Any) -> bool:
    return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or typing.is_typeddict(tp))


def default_schema(value: Any) -> "Any":
    """`value` as a JSON `default`, or MISSING when it has no JSON form."""
    if value is None or value is dataclasses.MISSING:
        return dataclasses.MISSING
    try:
        encoded = to_json_value(value)
        json.dumps(encoded, allow_nan=False)
        return encoded
    except (TypeError, ValueError):
        return dataclasses.MISSING


def object_schema(fields: "list[tuple[str, Any, bool, Any]]", seen: tuple, description: "str | None") -> dict:
    properties = {}
    required = []
    for name, hint, is_required, default in fields:
        prop = schema_of(hint, seen)
        encoded = default_schema(default)
        if encoded is not dataclasses.MISSING:
            prop = {**prop, "default": encoded}
        properties[name] = prop
        if is_required:
            required.append(name)
    schema: dict = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def schema_of(tp: Any, seen: tuple = ()) -> dict:
    """The JSON Schema of values of type `tp`."""
    if tp is Any or tp is object:
        return {}
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        schema = schema_of(base, seen)
        for item in meta:
            if isinstance(item, str):
                schema = {**schema, "description": item}
            elif isinstance(item, Field):
                schema = item.apply(schema)
        return schema
    if tp is None or tp is _NONE:
        return {"type": "null"}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    if origin is Literal:
        values = list(get_args(tp))
        schema = {"enum": values}
        kinds = {type(v) for v in values}
        if len(kinds) == 1 and next(iter(kinds)) in simple:
            schema = {"type": simple[next(iter(kinds))], **schema}
        return schema
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [member.value for member in tp]}
    if _is_union(origin):
        args = get_args(tp)
        options = [schema_of(a, seen) for a in args if a is not _NONE]
        if _NONE in args:
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"anyOf": options}
    if tp in (list, tuple) or origin in _SEQUENCES:
        args = get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"{tp!r}: fixed-length tuples are not supported; use list[T]")
        items = schema_of(args[0], seen) if args else {}
        return {"type": "array", "items": items} if items else {"type": "array"}
    if tp is dict or origin in _MAPPINGS:
        args = get_args(tp)
        if args and args[0] is not str:
            raise TypeError(f"{tp!r}: JSON object keys are strings; use dict[str, T]")
        values = schema_of(args[1], seen) if args else {}
        return {"type": "object", "additionalProperties": values} if values else {"type": "object"}
    if _is_object_class(tp):
        if tp in seen:
            raise TypeError(f"{tp.__name__} refers to itself: recursive types are not supported")
        return object_schema(_object_fields(tp), seen + (tp,), _class_doc(tp))
    raise TypeError(f"unsupported type annotation {tp!r} (see tollgate.schema for the supported ones)")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _expected(what: str, value: Any, path: str) -> InvalidInput:
    return InvalidInput(f"{path}: expected {what}, got {_json_type(value)}")


def convert_object(value: Any, fields: "list[tuple[str, Any, bool, Any]]", path: str) -> dict:
    """Checks a JSON object against `fields` (no unknown keys, required present) and converts
    each present value. Returns the converted values by name."""
    if not isinstance(value, dict):
        raise _expected("an object", value, path or "input")
    prefix = f"{path}: " if path else ""
    known = {name for name, _, _, _ in fields}
    for key in value:
        if key not in known:
            raise InvalidInput(f"{prefix}unknown field `{key}`")
    out = {}
    for name, hint, is_required, _ in fields:
        if name in value:
            out[name] = convert(value[name], hint, f"{path}.{name}" if path else name)
        elif is_required:
            raise InvalidInput(f"{prefix}missing field `{name}`")
    return out


def convert(value: Any, tp: Any, path: str = "input") -> Any:
    """Converts parsed JSON `value` into type `tp`, or raises `InvalidInput` naming `path`."""
    if tp is Any or tp is object:
        return value
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        converted = convert(value, base, path)
        for item in meta:
            if isinstance(item, Field):
                item.check(value, path)
        return converted
    if tp is None or tp is _NONE:
        if value is not None:
            raise _expected("null", value, path)
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise _expected("a boolean", value, path)
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _expected("an integer", value, path)
        return value
    if tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise _expected("a number", value, path)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _expected("a string", value, path)
        return value
    if origin is Literal:
        for allowed in get_args(tp):
            if type(allowed) is type(value) and allowed == value:
                return value
        options = ", ".join(json.dumps(v) for v in get_args(tp))
        raise InvalidInput(f"{path}: {json.dumps(value)} is not one of {options}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            options = ", ".join(json.dumps(m.value) for m in tp)
            raise InvalidInput(f"{path}: {json.dumps(value)} is not one of {options}") from None
    if _is_union(origin):
        args = get_args(tp)
        if value is None and _NONE in args:
            return None
        first_error = None
        for arg in args:
            if arg is _NONE:
                continue
            try:
                return convert(value, arg, path)
            except InvalidInput as error:
                first_error = first_error or error
        raise first_error or _expected("a value", value, path)
    if tp in (list, tuple) or origin in _SEQUENCES:
        if not isinstance(value, list):
            raise _expected("an array", value, path)
        args = get_args(tp)
        item = args[0] if args else Any
        items = [convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if tp is tuple or origin is tuple else items
    if tp is dict or origin in _MAPPINGS:
        if not isinstance(value, dict):
            raise _expected("an object", value, path)
        args = get_args(tp)
        item = args[1] if args else Any
        return {k: convert(v, item, f"{path}.{k}") for k, v in value.items()}
    if _is_object_class(tp):
        values = convert_object(value, _object_fields(tp), path)
        return tp(**values) if dataclasses.is_dataclass(tp) else values
    raise TypeError(f"unsupported type annotation {tp!r}")


def to_json_value(value: Any) -> Any:
    """Dataclasses, enums and tuples as plain JSON values (dicts, lists, scalars)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    return value
