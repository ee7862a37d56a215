// `s`: a tiny builder for JSON Schema (draft 2020-12) objects. Every builder returns a plain
// JSON Schema object, so builders and hand-written schemas mix freely:
//
//   s.object({
//     url: s.string({ format: 'uri', description: 'Landing page' }),
//     tags: s.optional(s.array(s.string(), { maxItems: 10 })),
//     mode: s.optional(s.enum(['strict', 'lenient'], { default: 'strict' })),
//   })
//
// `s.object` lists every property not wrapped in `s.optional` as required and sets
// `additionalProperties: false` (pass `{ additionalProperties: true }` to allow extra keys).

const OPTIONAL = Symbol('tollgate.optional');

function annotate(base, options) {
  return { ...base, ...(options ?? {}) };
}

export const s = Object.freeze({
  /** `{type: "string"}` plus options such as `minLength`, `maxLength`, `pattern`, `format`, `description`. */
  string: (options) => annotate({ type: 'string' }, options),
  /** `{type: "integer"}` plus options such as `minimum`, `maximum`, `description`, `default`. */
  integer: (options) => annotate({ type: 'integer' }, options),
  /** `{type: "number"}` plus options. */
  number: (options) => annotate({ type: 'number' }, options),
  /** `{type: "boolean"}` plus options. */
  boolean: (options) => annotate({ type: 'boolean' }, options),
  /** A string that must be one of `values`. */
  enum: (values, options) => annotate({ type: 'string', enum: [...values] }, options),
  /** `{type: "array", items}` plus options such as `minItems`, `maxItems`. */
  array: (items, options) => annotate({ type: 'array', items }, options),
  /** An object with `properties`; see the module comment for `required`. */
  object(properties, options = {}) {
    const required = Object.keys(properties).filter((key) => !properties[key][OPTIONAL]);
    const schema = { type: 'object', properties: {}, additionalProperties: false };
    for (const [key, value] of Object.entries(properties)) {
      const { [OPTIONAL]: _, ...plain } = value;
      schema.properties[key] = plain;
    }
    if (required.length > 0) schema.required = required;
    return annotate(schema, options);
  },
  /** Marks a property of `s.object` as not required. */
  optional: (schema) => ({ ...schema, [OPTIONAL]: true }),
});

/**
 * Fills in the `default` of each top-level property the input leaves out, so a tool sees the
 * value its schema advertises to the model. Nested objects are left alone.
 */
export function applyDefaults(schema, input) {
  if (schema === null || typeof schema !== 'object' || schema.type !== 'object') return input;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const out = { ...input };
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    if (out[key] === undefined && property && Object.hasOwn(property, 'default')) {
      out[key] = structuredCloneJson(property.default);
    }
  }
  return out;
}

function structuredCloneJson(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}
