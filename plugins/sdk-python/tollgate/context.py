"""The call context a tool may ask for by annotating a parameter with `Context`."""

from dataclasses import dataclass

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    """Identifies one tool call.

    `idempotency_key` is stable across retries of the same logical call: forward it to APIs
    that deduplicate (the `http` helpers take it as `idempotency_key=`).
    """

    run_id: str = "run"
    call_id: str = "call"
    idempotency_key: str = "key"
