"""Outbound HTTP (capability `http`) over `wasi:http/outgoing-handler`, through the host's
egress gate: only hosts the manifest declares *and* the operator grants are reachable.

```python
response = http.get(f"https://api.example.com/v1/things/{http.quote(id)}", query={"expand": "owner"})
response.raise_for_status()          # the usual status → ToolError mapping
thing = response.json()
http.post(url, json=body, idempotency_key=ctx.idempotency_key)
```

- Blocking. No redirect is followed (nor does the host follow any): a 3xx is a `Response`.
- Never add credentials yourself: declare a `Credential`; the host adds it at egress.
- `timeout` (seconds, default 30) bounds the whole exchange; the body is capped at
  `max_response_bytes` (default 8 MiB).
- Failures are `ToolError`s: refused by the host → `Denied`; connect failure or timeout →
  `Retryable`; an invalid request → `Internal`; anything else (a body over the cap, a
  protocol error) → `Upstream`.

Outside a component (unit tests) requests go to `testing_transport`, a function from
`Request` to `Response` (see `mock`); without one, sending is an `Internal` error.
"""

import contextlib
import json as _json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional

from ._host import binding
from .errors import Denied, Internal, Retryable, ToolError, Upstream, from_http_status

__all__ = ["Request", "Response", "request", "get", "post", "put", "patch", "delete", "quote", "mock"]

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 8 << 20
_READ_CHUNK = 64 * 1024
# `blocking-write-and-flush` accepts at most 4096 bytes per call.
_WRITE_CHUNK = 4096
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass
class Request:
    """A request as the SDK sends it: `url` includes the query string."""

    method: str
    url: str
    headers: "list[tuple[str, str]]" = field(default_factory=list)
    body: bytes = b""
    timeout: float = DEFAULT_TIMEOUT
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def header(self, name: str) -> Optional[str]:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Response:
    """A response; header names are lowercase."""

    status: int
    headers: "list[tuple[str, str]]" = field(default_factory=list)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> Optional[str]:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON is an `Upstream` error."""
        try:
            return _json.loads(self.body)
        except ValueError as error:
            raise Upstream(f"response is not JSON ({error}): {self.text()[:200]}", self.status) from None

    def raise_for_status(self) -> "Response":
        """Returns self if 2xx, else raises `from_http_status` with the body's `message` (or
        the start of the body) as the message."""
        if self.ok:
            return self
        message = self.text()[:500]
        with contextlib.suppress(ValueError, AttributeError):
            message = str(_json.loads(self.body)["message"])
        raise from_http_status(self.status, message or f"HTTP {self.status}")


testing_transport: Optional[Callable[[Request], Response]] = None


@contextlib.contextmanager
def mock(handler: Callable[[Request], Response]) -> Iterator["list[Request]"]:
    """In unit tests: send requests to `handler` inside the block; yields the list of requests
    sent."""
    global testing_transport
    sent: "list[Request]" = []

    def record(req: Request) -> Response:
        sent.append(req)
        return handler(req)

    previous, testing_transport = testing_transport, record
    try:
        yield sent
    finally:
        testing_transport = previous


def quote(segment: str) -> str:
    """Percent-encodes one path segment (`/` included)."""
    return urllib.parse.quote(segment, safe="")


def build(
    method: str,
    url: str,
    *,
    query: Optional[Mapping[str, Any]] = None,
    headers: Optional[Mapping[str, str]] = None,
    json: Any = None,
    body: "bytes | str | None" = None,
    idempotency_key: Optional[str] = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Request:
    """The `Request` that `request` would send (pure: for tests of request building)."""
    method = method.upper()
    if method not in _METHODS:
        raise Internal(f"unsupported HTTP method {method}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Internal(f"invalid request: `{url}` is not an http(s) URL with a host")
    if parts.username or parts.password:
        raise Internal("invalid request: credentials in the URL; declare a Credential instead")
    if query:
        extra = urllib.parse.urlencode([(k, str(v)) for k, v in query.items() if v is not None])
        parts = parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra)
    final = urllib.parse.urlunsplit(parts._replace(fragment=""))
    header_list = [(k.lower(), str(v)) for k, v in (headers or {}).items()]
    data = b""
    if json is not None and body is not None:
        raise Internal("invalid request: give `json` or `body`, not both")
    if json is not None:
        data = _json.dumps(json, separators=(",", ":")).encode()
        if not any(k == "content-type" for k, _ in header_list):
            header_list.append(("content-type", "application/json"))
    elif body is not None:
        data = body.encode() if isinstance(body, str) else bytes(body)
    if idempotency_key:
        header_list.append(("idempotency-key", idempotency_key))
    return Request(method, final, header_list, data, float(timeout), int(max_response_bytes))


def request(method: str, url: str, **options: Any) -> Response:
    """Sends a request; `options` are those of `build`."""
    return send(build(method, url, **options))


def get(url: str, **options: Any) -> Response:
    return request("GET", url, **options)


def post(url: str, **options: Any) -> Response:
    return request("POST", url, **options)


def put(url: str, **options: Any) -> Response:
    return request("PUT", url, **options)


def patch(url: str, **options: Any) -> Response:
    return request("PATCH", url, **options)


def delete(url: str, **options: Any) -> Response:
    return request("DELETE", url, **options)


def send(req: Request) -> Response:
    if testing_transport is not None:
        return testing_transport(req)
    if binding("outgoing_handler", "http") is None:
        raise Internal("no HTTP outside a component: use tollgate.http.mock(...) in tests")
    from ._wasi_http import send as wasi_send

    return wasi_send(req)


def classify(code: Any) -> ToolError:
    """Maps a wasi:http `error-code` to a `ToolError`. The Tollgate host reports a refused
    request as `HTTP-request-denied` or `destination-IP-prohibited`, and may say why in
    `internal-error("... not granted ...")`."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    if name == "HttpRequestDenied":
        return Denied("request denied by the host: the destination is not allowed (HttpRequestDenied)")
    if name == "DestinationIpProhibited":
        return Denied("request denied by the host: the destination address is blocked (DestinationIpProhibited)")
    if name == "InternalError":
        message = code.value or "internal error"
        lower = message.lower()
        if any(word in lower for word in ("denied", "not allowed", "not granted", "forbidden")):
            return Denied(f"request denied by the host: {message}")
        return Upstream(message)
    if name in ("DnsTimeout", "ConnectionTimeout", "ConnectionReadTimeout", "ConnectionWriteTimeout",
                "HttpResponseTimeout"):
        return Retryable(f"timeout ({name})")
    if name in ("DnsError", "DestinationNotFound", "DestinationUnavailable", "DestinationIpUnroutable",
                "ConnectionRefused", "ConnectionTerminated", "ConnectionLimitReached", "TlsProtocolError",
                "TlsCertificateError", "TlsAlertReceived"):
        return Retryable(f"could not connect ({name})")
    if name in ("HttpRequestMethodInvalid", "HttpRequestUriInvalid", "HttpRequestUriTooLong",
                "HttpRequestHeaderSectionSize", "HttpRequestHeaderSize", "HttpRequestLengthRequired"):
        return Internal(f"invalid request ({name})")
    return Upstream(f"HTTP failure ({name})")
