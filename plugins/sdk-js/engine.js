// Where the SDK finds the component's imports. The kit generates, per project, a module that
// imports exactly the WIT interfaces package.json declares as capabilities and publishes them
// under a global symbol before any tool runs; outside a component (plain `node --test`) there
// are none, and the helpers say so. Tests may install fakes with `setCapabilities`.

const KEY = Symbol.for('tollgate.capabilities');

/** The published capabilities: `{engine, log?, kv?, secrets?, http?}`, or null outside a component. */
export function capabilities() {
  return globalThis[KEY] ?? null;
}

/** Installs capabilities (the generated module does this; tests may pass fakes). */
export function setCapabilities(value) {
  globalThis[KEY] = value;
}

/** `starlingmonkey`, `quickjs`, or `node` outside a component. */
export function engine() {
  return capabilities()?.engine ?? 'node';
}

/** The value of an absent `option<T>`: StarlingMonkey's bindings take undefined, QuickJS's null. */
export function none() {
  return engine() === 'quickjs' ? null : undefined;
}

/** A WIT `u64` argument: BigInt on StarlingMonkey, Number on QuickJS. */
export function u64(n) {
  return engine() === 'quickjs' ? Number(n) : BigInt(n);
}
