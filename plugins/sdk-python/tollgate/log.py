"""Structured log lines into the call report (capability `log`). The host caps their number
and size per call.

Outside a component (unit tests) lines are appended to `records` instead, as
`(level, message, fields)` tuples, so tests can assert on them.
"""

import json
from typing import Any

from ._host import binding

__all__ = ["log", "trace", "debug", "info", "warn", "error", "records"]

LEVELS = ("trace", "debug", "info", "warn", "error")

records: "list[tuple[str, str, dict]]" = []


def log(level: str, message: str, **fields: Any) -> None:
    """Logs `message` at `level` (one of `LEVELS`) with JSON-serialisable `fields`."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (expected one of {', '.join(LEVELS)})")
    wit = binding("log", "log")
    if wit is None:
        records.append((level, message, dict(fields)))
        return
    text = json.dumps(fields, default=str, separators=(",", ":")) if fields else ""
    wit.log(wit.Level[level.upper()], message, text)


def trace(message: str, **fields: Any) -> None:
    log("trace", message, **fields)


def debug(message: str, **fields: Any) -> None:
    log("debug", message, **fields)


def info(message: str, **fields: Any) -> None:
    log("info", message, **fields)


def warn(message: str, **fields: Any) -> None:
    log("warn", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("error", message, **fields)
