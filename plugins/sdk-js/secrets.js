// Raw secret reads through `tollgate:plugin/secrets`. Discouraged: every read is audited and
// the operator must grant each name. Prefer a manifest credential, which the plugin never sees.

import { capabilities } from './engine.js';
import { ToolError } from './errors.js';

export const secrets = Object.freeze({
  /** The secret `name`; not granted → denied, unreadable → retryable. */
  get(name) {
    const wit = capabilities()?.secrets;
    if (!wit) {
      throw ToolError.internal('secrets: the `secrets` capability is not declared (package.json "tollgate": {"capabilities": ["secrets"]})');
    }
    try {
      return wit.get(String(name));
    } catch (e) {
      const error = e?.payload ?? e;
      if (error?.tag === 'not-granted') throw ToolError.denied(`secret \`${name}\` is not granted: ${error.val}`);
      if (error?.tag === 'unavailable') throw ToolError.retryable(`secret \`${name}\` is unavailable: ${error.val}`);
      throw e;
    }
  },
});
