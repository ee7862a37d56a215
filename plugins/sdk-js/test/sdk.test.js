import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Context, ToolError, buildRequest, classifyHttpError, definePlugin, kv, log, s, setCapabilities, tool,
} from '../index.js';
import { exportRequests, exportTool } from '../plugin.js';
import { toWitError } from '../errors.js';
import { decode, encode } from '../utf8.js';

const echo = tool({
  name: 'echo',
  description: 'Echo',
  input: s.object({ text: s.string(), times: s.optional(s.integer({ default: 2 })) }),
  idempotent: true,
  run: ({ text, times }, ctx) => ({ text: text.repeat(times), key: ctx.idempotencyKey }),
});

test('s.object marks non-optional properties required and closes the object', () => {
  assert.deepEqual(echo.input, {
    type: 'object',
    properties: { text: { type: 'string' }, times: { type: 'integer', default: 2 } },
    additionalProperties: false,
    required: ['text'],
  });
  assert.equal(JSON.stringify(s.optional(s.string())), '{"type":"string"}');
});

test('definePlugin lists every problem the host would refuse', () => {
  assert.throws(
    () => definePlugin({
      name: 'Bad',
      version: '',
      tools: [
        tool({ name: 'x-y', description: '', input: { type: 'string' }, effects: ['fly'], run: () => 1 }),
        tool({ name: 'a', description: '', input: s.object({}), compensation: 'nope', run: () => 1 }),
        tool({ name: 'a', description: '', input: s.object({}), run: () => 1 }),
      ],
    }),
    (e) => {
      for (const part of ['plugin name `Bad`', 'version is empty', 'tool name `x-y`', 'unknown effect `fly`',
        'input schema must describe an object', 'compensation `nope`', '`a` is used twice']) {
        assert.ok(e.message.includes(part), `${e.message} lacks ${part}`);
      }
      return true;
    },
  );
});

test('tools declare their requests; the export lists only tools that declare them', () => {
  const run = () => 1;
  const plugin = definePlugin({
    name: 'p',
    version: '1',
    hosts: ['https://api.example.com'],
    tools: [
      tool({ name: 'get_item', description: 'd', input: s.object({}), requests: ['GET api.example.com/v1/items/*'], run }),
      tool({ name: 'pure', description: 'd', input: s.object({}), requests: [], run }),
      tool({ name: 'free', description: 'd', input: s.object({}), run }),
    ],
  });
  assert.deepEqual(plugin.manifest().tools.map((t) => t.requests), [['GET api.example.com/v1/items/*'], [], null]);
  assert.deepEqual(exportRequests(plugin).declared(), [
    { tool: 'get_item', scopes: ['GET api.example.com/v1/items/*'] },
    { tool: 'pure', scopes: [] },
  ]);
  assert.throws(
    () => definePlugin({
      name: 'p',
      version: '1',
      tools: [tool({ name: 'a', description: 'd', input: s.object({}), requests: ['get x/y', 'GET https://x/y', 7], run })],
    }),
    (e) => e.message.split('is not `METHOD host/path`').length === 4,
  );
});

test('plugin.call applies top-level defaults and passes the context', () => {
  const plugin = definePlugin({ name: 'p', version: '1', tools: [echo] });
  assert.deepEqual(plugin.call('echo', '{"text":"ab"}', new Context('r', 'c', 'k1')), { text: 'abab', key: 'k1' });
  assert.throws(() => plugin.call('nope', {}), { kind: 'not-found' });
  assert.throws(() => plugin.call('echo', '{bad'), { kind: 'invalid-input' });
});

test('errors map to the WIT tool-error cases; anything else is internal', () => {
  assert.deepEqual(toWitError(ToolError.denied('no')), { tag: 'denied', val: 'no' });
  assert.deepEqual(toWitError(ToolError.upstream(502, 'bad')), { tag: 'upstream', val: { status: 502, message: 'bad' } });
  assert.deepEqual(toWitError(new TypeError('x is undefined')), { tag: 'internal', val: 'uncaught exception: TypeError: x is undefined' });
  assert.deepEqual(toWitError('plain'), { tag: 'internal', val: 'uncaught exception: plain' });
  const kinds = [401, 403, 404, 409, 429, 503, 400].map((status) => ToolError.fromHttpStatus(status, 'm').kind);
  assert.deepEqual(kinds, ['denied', 'denied', 'not-found', 'invalid-input', 'retryable', 'retryable', 'upstream']);
  assert.throws(() => new ToolError('oops', 'm'), TypeError);
});

test('the exported tool speaks the WIT shapes', () => {
  setCapabilities({ engine: 'starlingmonkey' });
  try {
    const exported = exportTool(definePlugin({
      name: 'p',
      version: '1',
      tools: [echo, tool({ name: 'boom', description: 'b', input: s.object({}), effects: ['write', 'send-message'], run: () => null.x })],
    }));
    const manifest = exported.manifest();
    assert.equal(manifest.tools[0].inputSchema, JSON.stringify(echo.input));
    assert.equal(manifest.tools[0].outputSchema, undefined);
    assert.deepEqual(manifest.tools[1].effects, { read: false, write: true, sendMessage: true, spend: false, delete: false });
    const ctx = { runId: 'r', callId: 'c', idempotencyKey: 'k' };
    assert.equal(exported.call('echo', '{"text":"x","times":3}', ctx), '{"text":"xxx","key":"k"}');
    assert.throws(() => exported.call('boom', '{}', ctx), (e) => e.tag === 'internal' && e.val.includes('TypeError'));
  } finally {
    setCapabilities(null);
  }
});

test('async tools resolve to JSON text and rejections map like throws', async () => {
  setCapabilities({ engine: 'starlingmonkey' });
  try {
    const exported = exportTool(definePlugin({
      name: 'p',
      version: '1',
      tools: [
        tool({ name: 'later', description: 'l', input: s.object({}), run: async () => ({ late: true }) }),
        tool({ name: 'refuse', description: 'r', input: s.object({}), run: async () => { throw ToolError.denied('no'); } }),
      ],
    }));
    const ctx = { runId: 'r', callId: 'c', idempotencyKey: 'k' };
    assert.equal(await exported.call('later', '{}', ctx), '{"late":true}');
    await assert.rejects(exported.call('refuse', '{}', ctx), (e) => e.tag === 'denied' && e.val === 'no');
  } finally {
    setCapabilities(null);
  }
});

test('buildRequest encodes query, JSON body and the idempotency key', () => {
  const req = buildRequest('post', 'https://api.example.com/v1/x?a=1', {
    query: { b: 'two words', skip: undefined },
    json: { n: 1 },
    ctx: new Context('r', 'c', 'key-9'),
  });
  assert.equal(req.method, 'POST');
  assert.equal(req.scheme, 'HTTPS');
  assert.equal(req.authority, 'api.example.com');
  assert.equal(req.pathWithQuery, '/v1/x?a=1&b=two+words');
  assert.deepEqual(req.headers, [
    ['content-type', 'application/json'],
    ['idempotency-key', 'key-9'],
    ['content-length', '7'],
  ]);
  assert.equal(decode(req.body), '{"n":1}');
  // The length is the SDK's to say (no chunked encoding, which some servers refuse), also for
  // an empty POST; a GET without a body has none.
  const put = buildRequest('PUT', 'https://x.com/', { body: 'héllo', headers: { 'Content-Length': '99' } });
  assert.deepEqual(put.headers, [['content-length', '6']]);
  assert.deepEqual(buildRequest('POST', 'https://x.com/').headers, [['content-length', '0']]);
  assert.deepEqual(buildRequest('GET', 'https://x.com/').headers, []);
  assert.throws(() => buildRequest('GET', 'ftp://x'), { kind: 'internal' });
  assert.throws(() => buildRequest('GET', 'https://u:p@x.com/'), /credentials in the URL/);
});

test('wasi:http error codes classify like the Rust SDK', () => {
  assert.equal(classifyHttpError({ tag: 'HTTP-request-denied' }).kind, 'denied');
  assert.equal(classifyHttpError({ tag: 'connection-refused' }).kind, 'retryable');
  assert.equal(classifyHttpError({ tag: 'internal-error', val: 'host not granted' }).kind, 'denied');
  assert.equal(classifyHttpError({ tag: 'HTTP-response-body-size' }).kind, 'upstream');
  assert.equal(classifyHttpError({ tag: 'HTTP-request-URI-invalid' }).code, 'HTTP-request-URI-invalid');
});

test('the UTF-8 fallback (QuickJS has no TextEncoder) agrees with TextEncoder', async () => {
  const saved = [globalThis.TextEncoder, globalThis.TextDecoder];
  const text = 'a\u00e9\u20ac\ud83d\ude00';
  const expected = new TextEncoder().encode(text);
  assert.deepEqual(encode(text), expected);
  globalThis.TextEncoder = undefined;
  globalThis.TextDecoder = undefined;
  try {
    // utf8.js looks the globals up when it loads: a fresh instance sees none.
    const fallback = await import('../utf8.js?without-text-encoder');
    assert.deepEqual(fallback.encode(text), expected);
    assert.equal(fallback.decode(expected), text);
    assert.equal(fallback.decode(new Uint8Array([0xe0, 0x80, 0x80, 0x41])), '\ufffd\ufffd\ufffdA');
    assert.equal(fallback.encode('\ud800x').length, 4);
  } finally {
    [globalThis.TextEncoder, globalThis.TextDecoder] = saved;
  }
});

test('kv and log use the published capabilities and say when one is missing', () => {
  const store = new Map();
  const lines = [];
  setCapabilities({
    engine: 'starlingmonkey',
    kv: {
      get: (k) => store.get(k),
      set: (k, v) => { if (v.length > 8) throw { payload: { tag: 'too-large', val: 'max 8' } }; store.set(k, v); },
      delete: (k) => store.delete(k),
      listKeys: (p, n) => [...store.keys()].filter((k) => k.startsWith(p)).sort().slice(0, n),
    },
    log: { log: (level, message, fields) => lines.push([level, message, fields]) },
  });
  try {
    kv.setJson('a', { n: 1 });
    assert.deepEqual(kv.getJson('a'), { n: 1 });
    assert.equal(kv.get('missing'), null);
    assert.deepEqual(kv.listKeys('', 10), ['a']);
    assert.throws(() => kv.set('b', 'far too long'), { kind: 'internal', message: 'kv: too large: max 8' });
    log.warn('slow', { ms: 3 });
    assert.deepEqual(lines, [['warn', 'slow', '{"ms":3}']]);
  } finally {
    setCapabilities(null);
  }
  assert.throws(() => kv.get('a'), (e) => e.kind === 'internal' && e.message.includes('not declared'));
});
