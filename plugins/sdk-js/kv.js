// A key-value store scoped to this plugin, through `tollgate:plugin/kv`. Needs the `kv`
// capability. Errors map like the Rust SDK's: too large → internal, unavailable → retryable.

import { capabilities } from './engine.js';
import { ToolError } from './errors.js';
import { decode, encode } from './utf8.js';

function wit() {
  const kv = capabilities()?.kv;
  if (!kv) throw ToolError.internal('kv: the `kv` capability is not declared (package.json "tollgate": {"capabilities": ["kv"]})');
  return kv;
}

function mapped(operation) {
  try {
    return operation();
  } catch (e) {
    const error = e?.payload ?? e;
    if (error?.tag === 'too-large') throw ToolError.internal(`kv: too large: ${error.val}`);
    if (error?.tag === 'unavailable') throw ToolError.retryable(`kv: unavailable: ${error.val}`);
    throw e;
  }
}


export const kv = Object.freeze({
  /** The bytes stored under `key` (a Uint8Array), or null. */
  get(key) {
    const value = mapped(() => wit().get(String(key)));
    return value === undefined || value === null ? null : new Uint8Array(value);
  },
  /** Stores `value` (Uint8Array or string) under `key`. */
  set(key, value) {
    const bytes = typeof value === 'string' ? encode(value) : new Uint8Array(value);
    mapped(() => wit().set(String(key), bytes));
  },
  /** Removes `key`; removing a missing key is not an error. */
  delete(key) {
    mapped(() => wit().delete(String(key)));
  },
  /** Keys starting with `prefix`, sorted, at most `limit`. */
  listKeys(prefix = '', limit = 100) {
    return mapped(() => wit().listKeys(String(prefix), limit));
  },
  /** The JSON value stored under `key`, or null. A value that is not JSON is `internal`. */
  getJson(key) {
    const bytes = kv.get(key);
    if (bytes === null) return null;
    try {
      return JSON.parse(decode(bytes));
    } catch (e) {
      throw ToolError.internal(`kv: value under \`${key}\` is not JSON: ${e.message}`);
    }
  },
  /** Stores `value` as JSON under `key`. */
  setJson(key, value) {
    kv.set(key, JSON.stringify(value));
  },
});
