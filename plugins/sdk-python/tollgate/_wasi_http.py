"""The wasi:http side of `tollgate.http`: a prepared `Request` becomes
`outgoing-handler.handle`, every wait is a poll against one deadline, the body is read in
chunks under a cap, and `error-code` becomes a `ToolError` (`http.classify`).

Imported only from `http.send` inside a component built with the `http` capability. Child
resources (streams, header fields, pollables) are released before their parents, as WASI
requires, with `with` blocks.
"""

import urllib.parse
from typing import Any

from componentize_py_types import Err, Ok

from .errors import Internal, Retryable, ToolError, Upstream
from .http import _READ_CHUNK, _WRITE_CHUNK, Request, Response, classify
from wit_world.imports import http_types as ht
from wit_world.imports import monotonic_clock, outgoing_handler, poll, streams


class _Deadline:
    def __init__(self, seconds: float):
        self.total_ns = max(1, int(seconds * 1e9))
        self.at = monotonic_clock.now() + self.total_ns

    def wait(self, ready: Any, doing: str) -> None:
        """Blocks until `ready` (a pollable) fires, or raises `Retryable` at the deadline."""
        with monotonic_clock.subscribe_instant(self.at) as timer:
            fired = poll.poll([ready, timer])
        if 0 not in fired:
            raise Retryable(f"timeout: {doing} took longer than {self.total_ns / 1e9:g}s")


def _wire(req: Request) -> Any:
    try:
        fields = ht.Fields.from_list([(name, value.encode()) for name, value in req.headers])
    except Err as err:
        names = ", ".join(name for name, _ in req.headers)
        raise Internal(f"invalid request: header rejected by the host ({type(err.value).__name__}; {names})") from None
    parts = urllib.parse.urlsplit(req.url)
    wire = ht.OutgoingRequest(fields)
    method = {
        "GET": ht.Method_Get(),
        "HEAD": ht.Method_Head(),
        "POST": ht.Method_Post(),
        "PUT": ht.Method_Put(),
        "PATCH": ht.Method_Patch(),
        "DELETE": ht.Method_Delete(),
        "OPTIONS": ht.Method_Options(),
    }[req.method]
    scheme = ht.Scheme_Https() if parts.scheme == "https" else ht.Scheme_Http()
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    for what, setter, value in (
        ("method", wire.set_method, method),
        ("scheme", wire.set_scheme, scheme),
        ("authority", wire.set_authority, parts.netloc),
        ("path", wire.set_path_with_query, path),
    ):
        try:
            setter(value)
        except Err:
            raise Internal(f"invalid request: the host rejected the {what}") from None
    return wire


def _write_body(body: Any, data: bytes) -> None:
    try:
        with body.write() as stream:
            for start in range(0, len(data), _WRITE_CHUNK):
                stream.blocking_write_and_flush(data[start : start + _WRITE_CHUNK])
    except Err:
        # Dropping an unfinished body tells the host the request failed.
        body.__exit__(None, None, None)
        raise
    ht.OutgoingBody.finish(body, None)


def _wait_for_response(future: Any, deadline: _Deadline) -> Any:
    while True:
        got = future.get()
        if got is None:
            with future.subscribe() as ready:
                deadline.wait(ready, "waiting for the response")
            continue
        if isinstance(got, Err):
            raise Internal("the response was already taken")
        inner = got.value
        if isinstance(inner, Ok):
            return inner.value
        raise classify(inner.value)


def _stream_error(doing: str, err: Any) -> ToolError:
    if type(err).__name__.startswith("ErrorCode_"):
        return classify(err)
    if isinstance(err, streams.StreamError_LastOperationFailed):
        code = ht.http_error_code(err.value)
        if code is not None:
            return classify(code)
        return Upstream(f"{doing}: {err.value.to_debug_string()}")
    return Upstream(f"{doing}: the stream closed early")


def _read_body(incoming: Any, max_bytes: int, deadline: _Deadline) -> bytes:
    chunks = []
    size = 0
    with incoming.stream() as stream:
        while True:
            try:
                chunk = stream.read(_READ_CHUNK)
            except Err as err:
                if isinstance(err.value, streams.StreamError_Closed):
                    return b"".join(chunks)
                raise _stream_error("reading the response body", err.value) from None
            if not chunk:
                with stream.subscribe() as ready:
                    deadline.wait(ready, "reading the response body")
                continue
            size += len(chunk)
            if size > max_bytes:
                raise Upstream(f"response body exceeds the {max_bytes}-byte cap (raise max_response_bytes)")
            chunks.append(chunk)


def send(req: Request) -> Response:
    deadline = _Deadline(req.timeout)
    wire = _wire(req)
    body = wire.body()
    # The host may ignore these; the deadline applies either way.
    options = ht.RequestOptions()
    for setter in (options.set_connect_timeout, options.set_first_byte_timeout, options.set_between_bytes_timeout):
        try:
            setter(deadline.total_ns)
        except Err:
            pass
    try:
        future = outgoing_handler.handle(wire, options)
    except Err as err:
        raise classify(err.value) from None
    # Send first, then stream the body, so a body larger than the host's buffer cannot
    # deadlock. A refused request usually also fails the body write; the response future
    # says why, so it takes precedence.
    write_error = None
    try:
        _write_body(body, req.body)
    except Err as err:
        write_error = err
    with future:
        response = _wait_for_response(future, deadline)
    if write_error is not None:
        raise _stream_error("writing the request body", write_error.value)
    with response:
        status = response.status()
        with response.headers() as fields:
            headers = [(name.lower(), value.decode("latin-1")) for name, value in fields.entries()]
        declared = next((v for k, v in headers if k == "content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > req.max_response_bytes:
            raise Upstream(f"response body exceeds the {req.max_response_bytes}-byte cap (declared {declared} bytes)")
        try:
            incoming = response.consume()
        except Err:
            raise Internal("the response body was already taken") from None
        try:
            data = _read_body(incoming, req.max_response_bytes, deadline)
        except BaseException:
            # The body must go before its response.
            incoming.__exit__(None, None, None)
            raise
        with ht.IncomingBody.finish(incoming):
            pass
    return Response(status, headers, data)
