"""Typed tool errors: one class per case of the WIT `tool-error` variant.

Raise them from a tool. Any other exception that escapes a tool becomes `Internal` with the
exception's type and message, so a bug is reported as a bug and never traps the component.
"""

from typing import Optional

__all__ = [
    "ToolError",
    "InvalidInput",
    "Denied",
    "NotFound",
    "Upstream",
    "Retryable",
    "Internal",
    "from_http_status",
]


class ToolError(Exception):
    """Base class of a tool's own, typed failure. `kind` is the WIT case name."""

    kind = "internal"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = Exception.__hash__


class InvalidInput(ToolError):
    """The input matched the schema but is not acceptable (the model can fix it)."""

    kind = "invalid-input"


class Denied(ToolError):
    """The upstream system or the host refused (permissions, policy)."""

    kind = "denied"


class NotFound(ToolError):
    """The thing asked for does not exist."""

    kind = "not-found"


class Upstream(ToolError):
    """The upstream system failed; `status` is its HTTP status if a response arrived."""

    kind = "upstream"

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status

    def __str__(self) -> str:
        if self.status is not None:
            return f"upstream (HTTP {self.status}): {self.message}"
        return f"upstream: {self.message}"


class Retryable(ToolError):
    """A transient failure; calling again with the same idempotency key is safe."""

    kind = "retryable"


class Internal(ToolError):
    """A bug in the plugin."""

    kind = "internal"


def from_http_status(status: int, message: str) -> ToolError:
    """The conventional mapping of an unsuccessful HTTP status from an upstream API:
    401/403 → Denied, 404 → NotFound, 409 → InvalidInput (a conflict the model can act on),
    408/429/5xx → Retryable, any other status → Upstream with the status.

    `message` should be the vendor's own error message, so the model sees why.
    """
    if status in (401, 403):
        return Denied(message)
    if status == 404:
        return NotFound(message)
    if status == 409:
        return InvalidInput(message)
    if status in (408, 429) or 500 <= status <= 599:
        return Retryable(message)
    return Upstream(message, status)
