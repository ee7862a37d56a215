// The plugin definition (definePlugin, tool, credential, Context) and the entry points the
// component exports: `manifest` and `call` (built by `exportTool`), and `declared` of the
// `requests` interface (built by `exportRequests`).
//
// Nothing here touches a capability: this module is in every plugin, and the capabilities a
// component imports are exactly those its package.json declares (the kit generates them).

import { ToolError, toWitError } from './errors.js';
import { applyDefaults } from './schema.js';
import { engine, none } from './engine.js';

/** The side effects a tool may declare; the host's policy keys on them. */
export const EFFECTS = Object.freeze(['read', 'write', 'send-message', 'spend', 'delete']);

const PLUGIN_NAME = /^[a-z][a-z0-9_-]*$/;
const TOOL_NAME = /^[a-z][a-z0-9_]*$/;
// `METHOD host/path`: the shape the host parses a request scope by (it checks the rest at load).
const SCOPE = /^(\*|[A-Z]+) [^/:\s]+\/\S*$/;

/** What a tool knows about the call it serves. */
export class Context {
  constructor(runId = 'local-run', callId = 'local-call', idempotencyKey = 'local-key') {
    /** The agent run this call belongs to. */
    this.runId = runId;
    /** This call, unique within the run. */
    this.callId = callId;
    /** Stable across retries of one logical call: forward it (`Idempotency-Key`) on writes. */
    this.idempotencyKey = idempotencyKey;
    Object.freeze(this);
  }
}

/**
 * Declares one tool.
 *
 * @param {object} spec
 * @param {string} spec.name `[a-z][a-z0-9_]*`, at most 64 characters
 * @param {string} spec.description written for the model that chooses the tool
 * @param {object} spec.input JSON Schema of the input object (hand-written or from `s`)
 * @param {object} [spec.output] JSON Schema of the output; the host validates outputs against it
 * @param {string[]} [spec.effects] subset of EFFECTS; none means a pure tool
 * @param {boolean} [spec.idempotent] calling twice with the same input acts once
 * @param {string} [spec.compensation] name of the tool of this plugin that undoes this one
 * @param {string[]} [spec.requests] every kind of request the tool makes, each `METHOD host/path`
 *   (`'GET api.example.com/v1/items/*'`: `*` is one path segment, a final `**` any rest, no
 *   query); the host's egress gate then refuses any other request of this tool. `[]` declares
 *   that it makes none; leaving it out leaves the tool to the plugin's hosts.
 * @param {(input: any, ctx: Context) => any} spec.run returns the output (any JSON value)
 */
export function tool(spec) {
  return Object.freeze({
    name: spec.name,
    description: spec.description ?? '',
    input: spec.input,
    output: spec.output ?? null,
    effects: [...(spec.effects ?? [])],
    idempotent: spec.idempotent === true,
    compensation: spec.compensation ?? null,
    requests: spec.requests === undefined ? null : Object.freeze([...spec.requests]),
    run: spec.run,
  });
}

/** A credential bound to one host; the host adds `header: prefix + secret` at egress. */
export const credential = Object.freeze({
  /** `authorization: Bearer <secret>` on requests to `host`. */
  bearer: (name, host, description) => credential.header(name, host, 'authorization', 'Bearer ', description),
  /** `header: valuePrefix<secret>` on requests to `host`. */
  header: (name, host, header, valuePrefix, description) =>
    Object.freeze({ name, host, header, valuePrefix, description: description ?? '' }),
});

class Plugin {
  constructor(spec) {
    this.name = spec.name;
    this.version = spec.version;
    this.description = spec.description ?? '';
    this.hosts = [...(spec.hosts ?? [])];
    this.credentials = [...(spec.credentials ?? [])];
    this.tools = [...(spec.tools ?? [])];
    Object.freeze(this);
  }

  find(name) {
    return this.tools.find((t) => t.name === name);
  }

  /** Every problem the host would refuse at load time, one string each (empty: fine). */
  problems() {
    const problems = [];
    if (typeof this.name !== 'string' || !PLUGIN_NAME.test(this.name)) {
      problems.push(`plugin name \`${this.name}\` must match [a-z][a-z0-9_-]*`);
    }
    if (typeof this.version !== 'string' || this.version === '') problems.push('plugin version is empty');
    for (const c of this.credentials) {
      if (!PLUGIN_NAME.test(c.name ?? '')) problems.push(`credential name \`${c.name}\` must match [a-z][a-z0-9_-]*`);
      if (!c.host || c.host.includes('/')) problems.push(`credential \`${c.name}\` needs a bare host name, not \`${c.host}\``);
    }
    this.tools.forEach((t, index) => {
      if (typeof t.name !== 'string' || !TOOL_NAME.test(t.name) || t.name.length > 64) {
        problems.push(`tool name \`${t.name}\` must match [a-z][a-z0-9_]* and have at most 64 characters`);
      }
      if (this.tools.slice(0, index).some((other) => other.name === t.name)) {
        problems.push(`tool name \`${t.name}\` is used twice`);
      }
      if (t.compensation !== null && !this.find(t.compensation)) {
        problems.push(`tool \`${t.name}\` names compensation \`${t.compensation}\`, which is not a tool of this plugin`);
      }
      if (!t.input || t.input.type !== 'object') problems.push(`tool \`${t.name}\` input schema must describe an object`);
      for (const e of t.effects) {
        if (!EFFECTS.includes(e)) problems.push(`tool \`${t.name}\` has unknown effect \`${e}\` (expected ${EFFECTS.join(', ')})`);
      }
      for (const r of t.requests ?? []) {
        if (typeof r !== 'string' || !SCOPE.test(r)) {
          problems.push(`tool \`${t.name}\` request ${JSON.stringify(r)} is not \`METHOD host/path\` (e.g. \`GET api.example.com/v1/items/*\`)`);
        }
      }
      if (typeof t.run !== 'function') problems.push(`tool \`${t.name}\` has no run function`);
    });
    return problems;
  }

  /** The manifest as plain JSON (schemas as objects), for tests and `inspect`-like output. */
  manifest() {
    return {
      name: this.name,
      version: this.version,
      description: this.description,
      tools: this.tools.map((t) => ({
        name: t.name,
        description: t.description,
        input_schema: t.input,
        output_schema: t.output,
        effects: t.effects,
        idempotent: t.idempotent,
        compensation: t.compensation,
        requests: t.requests,
      })),
      hosts: this.hosts,
      credentials: this.credentials,
    };
  }

  /**
   * Runs a tool as the host would, for tests: `input` is an object or a JSON string. Returns
   * the output value or throws a ToolError (other exceptions pass through, as they would be
   * reported as `internal`). Does not validate the input against the schema (the host does).
   */
  call(name, input, ctx = new Context()) {
    const found = this.find(name);
    if (!found) throw ToolError.notFound(`plugin \`${this.name}\` has no tool named \`${name}\``);
    const value = typeof input === 'string' ? parseInput(input) : input;
    return found.run(applyDefaults(found.input, value), ctx);
  }
}

function parseInput(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw ToolError.invalidInput(`input is not JSON: ${e.message}`);
  }
}

/** Defines the plugin. Throws an Error listing every problem, so a bad manifest fails the build. */
export function definePlugin(spec) {
  const plugin = new Plugin(spec);
  const problems = plugin.problems();
  if (problems.length > 0) throw new Error(`invalid plugin definition:\n- ${problems.join('\n- ')}`);
  return plugin;
}

function effectFlags(effects) {
  return {
    read: effects.includes('read'),
    write: effects.includes('write'),
    sendMessage: effects.includes('send-message'),
    spend: effects.includes('spend'),
    delete: effects.includes('delete'),
  };
}

function outputText(value) {
  const text = JSON.stringify(value === undefined ? null : value);
  if (text === undefined) throw ToolError.internal('the tool returned a value that is not JSON');
  return text;
}

/**
 * The `tollgate:plugin/tool` export for `plugin`: `manifest()` and `call()`. A ToolError
 * becomes its WIT case; any other exception becomes `internal` with its message.
 */
export function exportTool(plugin) {
  return {
    manifest() {
      return {
        name: plugin.name,
        version: plugin.version,
        description: plugin.description,
        tools: plugin.tools.map((t) => ({
          name: t.name,
          description: t.description,
          inputSchema: JSON.stringify(t.input),
          outputSchema: t.output === null ? none() : JSON.stringify(t.output),
          effects: effectFlags(t.effects),
          idempotent: t.idempotent,
          compensation: t.compensation === null ? none() : t.compensation,
        })),
        hosts: plugin.hosts,
        credentials: plugin.credentials.map((c) => ({
          name: c.name,
          host: c.host,
          header: c.header,
          valuePrefix: c.valuePrefix,
          description: c.description,
        })),
      };
    },
    call(name, input, context) {
      const ctx = new Context(context.runId, context.callId, context.idempotencyKey);
      let result;
      try {
        result = plugin.call(name, input, ctx);
      } catch (error) {
        throw toWitError(error);
      }
      if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        if (engine() === 'quickjs') {
          throw toWitError(ToolError.internal(`tool \`${name}\` is async: async tools need the starlingmonkey engine`));
        }
        return result.then(outputText).catch((error) => {
          throw toWitError(error);
        });
      }
      try {
        return outputText(result);
      } catch (error) {
        throw toWitError(error);
      }
    },
  };
}

/**
 * The `tollgate:plugin/requests` export for `plugin`: `declared()`, each tool that declares its
 * requests with its scopes.
 */
export function exportRequests(plugin) {
  const declared = plugin.tools.filter((t) => t.requests !== null).map((t) => ({ tool: t.name, scopes: [...t.requests] }));
  return {
    declared() {
      return declared;
    },
  };
}
