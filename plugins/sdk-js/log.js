// Structured log lines through `tollgate:plugin/log`, captured into the call report (the host
// caps their count and size: log decisions, not payloads). Needs the `log` capability.

import { capabilities } from './engine.js';
import { ToolError } from './errors.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

function emit(level, message, fields) {
  const wit = capabilities()?.log;
  if (!wit) {
    throw ToolError.internal('log: the `log` capability is not declared (package.json "tollgate": {"capabilities": ["log"]})');
  }
  const text = fields === undefined ? '' : JSON.stringify(fields);
  wit.log(level, String(message), text);
}

/** `log.info('searching')`, `log.warn('slow', { ms: 2300 })`: `fields` is any JSON object. */
export const log = Object.freeze({
  ...Object.fromEntries(LEVELS.map((level) => [level, (message, fields) => emit(level, message, fields)])),
  /** Logs at a level given by name (`trace`, `debug`, `info`, `warn`, `error`). */
  at(level, message, fields) {
    if (!LEVELS.includes(level)) throw ToolError.internal(`log: unknown level \`${level}\``);
    emit(level, message, fields);
  },
});
