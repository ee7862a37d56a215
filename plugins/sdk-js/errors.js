// ToolError: a tool's own typed failure, one kind per case of the WIT `tool-error` variant.
//
// Throw a ToolError from a tool to report a failure the agent can act on. Anything else a tool
// throws (a TypeError, a string) is reported as `internal` with its message: a bug, never a trap.

import { none } from './engine.js';

/** The WIT `tool-error` case names, in WIT order. */
export const KINDS = Object.freeze(['invalid-input', 'denied', 'not-found', 'upstream', 'retryable', 'internal']);

export class ToolError extends Error {
  /**
   * @param {string} kind one of KINDS
   * @param {string} message what went wrong, written for the model
   * @param {{status?: number}} [options] `status` only for `upstream`: the HTTP status, if a response arrived
   */
  constructor(kind, message, options = {}) {
    if (!KINDS.includes(kind)) {
      throw new TypeError(`unknown tool error kind \`${kind}\` (expected one of ${KINDS.join(', ')})`);
    }
    super(String(message));
    this.name = 'ToolError';
    this.kind = kind;
    this.status = kind === 'upstream' && Number.isInteger(options.status) ? options.status : null;
  }

  /** The input matched the schema but is not acceptable. */
  static invalidInput(message) {
    return new ToolError('invalid-input', message);
  }

  /** The upstream system or the host refused (permissions, policy). */
  static denied(message) {
    return new ToolError('denied', message);
  }

  /** The thing asked for does not exist. */
  static notFound(message) {
    return new ToolError('not-found', message);
  }

  /** The upstream system failed; `status` is its HTTP status, or null if no response arrived. */
  static upstream(status, message) {
    return new ToolError('upstream', message, { status });
  }

  /** A transient failure: calling again with the same idempotency key is safe. */
  static retryable(message) {
    return new ToolError('retryable', message);
  }

  /** A bug in the plugin. */
  static internal(message) {
    return new ToolError('internal', message);
  }

  /**
   * The conventional mapping of an unsuccessful HTTP status from an upstream API, the same as
   * the Rust SDK's: 401/403 → denied, 404 → not-found, 409 → invalid-input, 408/429/5xx →
   * retryable, anything else → upstream with the status.
   */
  static fromHttpStatus(status, message) {
    if (status === 401 || status === 403) return ToolError.denied(message);
    if (status === 404) return ToolError.notFound(message);
    if (status === 409) return ToolError.invalidInput(message);
    if (status === 408 || status === 429 || (status >= 500 && status <= 599)) return ToolError.retryable(message);
    return ToolError.upstream(status, message);
  }
}

/**
 * Turns anything a tool threw into the WIT `tool-error` value: a ToolError keeps its kind, an
 * Error becomes `internal` with its message, any other value `internal` with its text.
 */
export function toWitError(error) {
  if (error instanceof ToolError) {
    if (error.kind === 'upstream') {
      return { tag: 'upstream', val: { status: error.status ?? none(), message: error.message } };
    }
    return { tag: error.kind, val: error.message };
  }
  let message;
  if (error instanceof Error) {
    message = `${error.name}: ${error.message}`;
  } else {
    try {
      message = typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
    } catch {
      message = String(error);
    }
  }
  return { tag: 'internal', val: `uncaught exception: ${message}` };
}
