// A small blocking HTTP client over `wasi:http/outgoing-handler`, so every request goes through
// the host's egress gate (allowlist, address checks, credentials injected at egress, caps).
// Needs the `http` capability.
//
//   const res = http.post('https://hooks.example.com/notify', { json: { text }, ctx });
//   if (!res.ok) throw ToolError.fromHttpStatus(res.status, res.text());
//
// - Redirects are never followed (the host does not follow them either): a 3xx comes back as a
//   response with its `location` header.
// - Passing `ctx` forwards the call's idempotency key as `Idempotency-Key`.
// - Do not add credentials: declare them in the manifest; the host adds them at egress.
// - The body is read in chunks and capped (`maxResponseBytes`, default 8 MiB). The call's own
//   timeout bounds every wait; `timeoutMs` (default 30 s) is passed to the host as well.
// - Failures throw an HttpError, a ToolError whose kind follows the Rust SDK: host refusal →
//   denied, connect/timeouts → retryable, invalid request → internal, anything else →
//   upstream. `error.code` holds the wasi:http `error-code` case (for example
//   `HTTP-request-denied`).

import { capabilities, none, u64 } from './engine.js';
import { ToolError } from './errors.js';
import { decode, encode } from './utf8.js';

export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 30_000;

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const WRITE_CHUNK = 4096; // blocking-write-and-flush accepts at most 4096 bytes per call
const READ_CHUNK = 64 * 1024;
const DISPOSE = Symbol.dispose ?? Symbol.for('dispose');


/** A request that produced no usable response. `code` is the wasi:http error-code case, or a
 * short word (`too-large`, `invalid-request`) for failures the SDK detects itself. */
export class HttpError extends ToolError {
  constructor(kind, code, message) {
    super(kind, message);
    this.name = 'HttpError';
    this.code = code;
  }
}

const DENIED = ['HTTP-request-denied', 'destination-IP-prohibited'];
const CONNECT = [
  'DNS-timeout', 'DNS-error', 'destination-not-found', 'destination-unavailable', 'destination-IP-unroutable',
  'connection-refused', 'connection-terminated', 'connection-limit-reached', 'connection-timeout',
  'connection-read-timeout', 'connection-write-timeout', 'HTTP-response-timeout', 'TLS-protocol-error',
  'TLS-certificate-error', 'TLS-alert-received',
];
const INVALID = [
  'HTTP-request-method-invalid', 'HTTP-request-URI-invalid', 'HTTP-request-URI-too-long',
  'HTTP-request-header-section-size', 'HTTP-request-header-size', 'HTTP-request-length-required',
];
const TOO_LARGE = ['HTTP-request-body-size', 'HTTP-response-body-size', 'HTTP-response-header-section-size', 'HTTP-response-header-size'];

/** Maps a wasi:http `error-code` value (`{tag, val}`) to an HttpError. */
export function classify(code) {
  const tag = code?.tag ?? String(code);
  const detail = typeof code?.val === 'string' ? code.val : '';
  if (DENIED.includes(tag)) return new HttpError('denied', tag, `request denied by the host (${tag})`);
  if (tag === 'internal-error' && /denied|not allowed|not granted|forbidden/i.test(detail)) {
    return new HttpError('denied', tag, `request denied by the host: ${detail}`);
  }
  if (CONNECT.includes(tag)) return new HttpError('retryable', tag, `could not complete the request: ${tag}`);
  if (INVALID.includes(tag)) return new HttpError('internal', tag, `invalid request: ${tag}`);
  if (TOO_LARGE.includes(tag)) return new HttpError('upstream', tag, `too large: ${tag}`);
  return new HttpError('upstream', tag, `HTTP error: ${tag}${detail ? `: ${detail}` : ''}`);
}

/**
 * Checks and prepares a request without sending it (pure: use it in unit tests).
 * Returns `{method, scheme, authority, pathWithQuery, headers: [[name, value]], body: Uint8Array}`.
 */
export function buildRequest(method, url, options = {}) {
  const upper = String(method).toUpperCase();
  if (!METHODS.includes(upper)) throw new HttpError('internal', 'invalid-request', `unsupported method \`${method}\``);
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new HttpError('internal', 'invalid-request', `invalid URL \`${url}\``);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new HttpError('internal', 'invalid-request', `only http and https URLs are supported, not \`${parsed.protocol}\``);
  }
  if (parsed.username || parsed.password) {
    throw new HttpError('internal', 'invalid-request', 'credentials in the URL are not allowed: declare a manifest credential');
  }
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== null) parsed.searchParams.append(key, String(value));
  }
  const headers = [];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    headers.push([name.toLowerCase(), String(value)]);
  }
  let body = new Uint8Array(0);
  if (options.json !== undefined) {
    body = encode(JSON.stringify(options.json));
    if (!headers.some(([n]) => n === 'content-type')) headers.push(['content-type', 'application/json']);
  } else if (typeof options.body === 'string') {
    body = encode(options.body);
  } else if (options.body !== undefined && options.body !== null) {
    body = new Uint8Array(options.body);
  }
  if (options.ctx?.idempotencyKey && !headers.some(([n]) => n === 'idempotency-key')) {
    headers.push(['idempotency-key', options.ctx.idempotencyKey]);
  }
  if (body.length > 0 || ['POST', 'PUT', 'PATCH'].includes(upper)) {
    // A known length lets the request go out without chunked encoding, which some servers
    // refuse (as the Rust SDK does); the SDK's count replaces any the caller gave.
    for (let i = headers.length - 1; i >= 0; i -= 1) {
      if (headers[i][0] === 'content-length') headers.splice(i, 1);
    }
    headers.push(['content-length', String(body.length)]);
  }
  return {
    method: upper,
    scheme: parsed.protocol === 'https:' ? 'HTTPS' : 'HTTP',
    authority: parsed.host,
    pathWithQuery: `${parsed.pathname}${parsed.search}`,
    headers,
    body,
  };
}

/** A response: `status`, `ok` (2xx), `headers` (lower-case names; repeated values joined by
 * `, `), `header(name)`, `bytes` (Uint8Array), `text()`, `json()`. */
export class Response {
  constructor(status, headers, bytes) {
    this.status = status;
    this.ok = status >= 200 && status < 300;
    this.headers = {};
    for (const [name, value] of headers) {
      const key = name.toLowerCase();
      this.headers[key] = key in this.headers ? `${this.headers[key]}, ${value}` : value;
    }
    this.bytes = bytes;
  }

  header(name) {
    return this.headers[String(name).toLowerCase()] ?? null;
  }

  text() {
    return decode(this.bytes);
  }

  /** The body as JSON; a body that is not JSON is `upstream` with the status. */
  json() {
    try {
      return JSON.parse(this.text());
    } catch (e) {
      throw ToolError.upstream(this.status, `response is not JSON: ${e.message}`);
    }
  }
}

function dispose(resource) {
  if (resource && typeof resource[DISPOSE] === 'function') resource[DISPOSE]();
}

function errorPayload(e) {
  return e?.payload ?? e;
}

function wit() {
  const http = capabilities()?.http;
  if (!http) {
    throw ToolError.internal('http: the `http` capability is not declared (package.json "tollgate": {"capabilities": ["http"]})');
  }
  return http;
}

function send(prepared, options) {
  const { handler, types } = wit();
  const timeoutNs = u64(Math.max(1, options.timeoutMs ?? DEFAULT_TIMEOUT_MS) * 1_000_000);
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;

  let fields;
  try {
    fields = types.Fields.fromList(prepared.headers.map(([n, v]) => [n, encode(v)]));
  } catch (e) {
    const why = errorPayload(e)?.tag ?? String(e);
    const names = prepared.headers.map(([n]) => n).join(', ');
    throw new HttpError('internal', 'invalid-request', `a header name or value is invalid (${why}; headers: ${names})`);
  }
  const request = new types.OutgoingRequest(fields);
  request.setMethod({ tag: prepared.method.toLowerCase() });
  request.setScheme({ tag: prepared.scheme });
  request.setAuthority(prepared.authority);
  request.setPathWithQuery(prepared.pathWithQuery);
  const body = request.body();

  const requestOptions = new types.RequestOptions();
  for (const set of ['setConnectTimeout', 'setFirstByteTimeout', 'setBetweenBytesTimeout']) {
    try {
      requestOptions[set](timeoutNs);
    } catch {
      // The host may not support this timeout; the call's own deadline still applies.
    }
  }

  let future;
  try {
    future = handler.handle(request, requestOptions);
  } catch (e) {
    throw classify(errorPayload(e));
  }
  // Send first, then stream the body, so a body larger than the host's buffer cannot deadlock.
  // A refused request usually also fails the body write; the response says why, so it wins.
  let writeError = null;
  try {
    const stream = body.write();
    for (let offset = 0; offset < prepared.body.length; offset += WRITE_CHUNK) {
      stream.blockingWriteAndFlush(prepared.body.subarray(offset, offset + WRITE_CHUNK));
    }
    dispose(stream);
    types.OutgoingBody.finish(body, none());
  } catch (e) {
    writeError = e;
  }

  const pollable = future.subscribe();
  pollable.block();
  dispose(pollable);
  const outcome = future.get();
  dispose(future);
  // option<result<result<incoming-response, error-code>>>
  if (outcome === undefined || outcome === null) throw new HttpError('upstream', 'no-response', 'no response');
  const settled = outcome.tag === 'ok' || outcome.tag === 'err' ? outcome : { tag: 'ok', val: outcome };
  if (settled.tag === 'err') throw new HttpError('upstream', 'no-response', 'the response was already taken');
  const result = settled.val;
  if (result.tag === 'err') throw classify(result.val);
  if (writeError !== null) {
    throw new HttpError('upstream', 'body-write', `could not send the request body: ${errorPayload(writeError)?.tag ?? writeError}`);
  }
  return read(result.val, maxBytes);
}

function read(incoming, maxBytes) {
  const status = incoming.status();
  const headerFields = incoming.headers();
  const headers = headerFields.entries().map(([n, v]) => [n, decode(v)]);
  dispose(headerFields);
  const body = incoming.consume();
  const stream = body.stream();
  const chunks = [];
  let total = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(u64(READ_CHUNK));
    } catch (e) {
      const error = errorPayload(e);
      if (error?.tag === 'closed') break;
      throw new HttpError('upstream', 'body-read', `reading the response body failed: ${error?.tag ?? e}`);
    }
    total += chunk.length;
    if (total > maxBytes) {
      throw new HttpError('upstream', 'too-large', `the response body exceeds ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  dispose(stream);
  dispose(body);
  dispose(incoming);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new Response(status, headers, bytes);
}

/**
 * Sends `method url` and returns a Response (any status). Options: `headers` (object),
 * `query` (object, appended percent-encoded), `json` (any value) or `body` (string or bytes),
 * `ctx` (forwards its idempotency key), `timeoutMs`, `maxResponseBytes`.
 */
function request(method, url, options = {}) {
  return send(buildRequest(method, url, options), options);
}

export const http = Object.freeze({
  request,
  get: (url, options) => request('GET', url, options),
  head: (url, options) => request('HEAD', url, options),
  post: (url, options) => request('POST', url, options),
  put: (url, options) => request('PUT', url, options),
  patch: (url, options) => request('PATCH', url, options),
  delete: (url, options) => request('DELETE', url, options),
});
