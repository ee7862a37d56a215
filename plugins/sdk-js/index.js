// The Tollgate plugin SDK for JavaScript. A project imports it as `#tollgate` (package.json
// "imports"); `tollgate plugin build` writes this SDK into the project's `.tollgate/sdk/`,
// bundles the project and turns it into a component exporting `tollgate:plugin/tool`.
//
//   import { definePlugin, tool, s, ToolError } from '#tollgate';
//
//   export default definePlugin({
//     name: 'greeter', version: '0.1.0', description: 'Greets people',
//     tools: [
//       tool({
//         name: 'greet', description: 'Greet someone by name.',
//         input: s.object({ name: s.string({ minLength: 1, description: 'Who to greet' }) }),
//         idempotent: true,
//         run: ({ name }) => ({ greeting: `Hello, ${name}!` }),
//       }),
//     ],
//   });
//
// The capability helpers (`http`, `kv`, `log`, `secrets`) work only when package.json
// declares the capability: the component then imports that interface, and only that one.

export { ToolError, KINDS } from './errors.js';
export { s, applyDefaults } from './schema.js';
export { definePlugin, tool, credential, Context, EFFECTS, exportTool, exportRequests } from './plugin.js';
export { http, HttpError, Response, buildRequest, classify as classifyHttpError } from './http.js';
export { kv } from './kv.js';
export { log } from './log.js';
export { secrets } from './secrets.js';
export { setCapabilities, engine } from './engine.js';
