//! Host bindings generated from `wit/plugin.wit`. Only this module, [`crate::state`] (the host
//! side of the imports), `call` (instantiating and calling) and `manifest` (converting the
//! guest's manifest) name the generated types; the rest of the crate speaks in its own types.
//! ARCHITECTURE.md states this invariant and `xtask/tests/tidy.rs` checks it.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});
