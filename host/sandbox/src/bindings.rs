//! Host bindings generated from `wit/plugin.wit`. Only this module, [`crate::state`] (the host
//! side of the imports), `call` (instantiating and calling), `manifest` (converting the guest's
//! manifest) and `fuzzing` (feature-gated, for `fuzz/`) name the generated types; the rest of
//! the crate speaks in its own types.
//! ARCHITECTURE.md states this invariant and `xtask/tests/tidy.rs` checks it.
//!
//! Two worlds: `plugin-core` (the `tool` export every plugin has, 0.1.0 and 0.1.1 alike) and,
//! bound apart because a 0.1.0 component does not have it, `plugin-requests` (the optional
//! `requests` export of 0.1.1). Export lookup is semver-aware, so these 0.1.1 bindings find a
//! 0.1.0 component's `tool@0.1.0`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin-core",
    imports: { default: async },
    exports: { default: async },
});

/// The optional `requests` export (contract 0.1.1).
pub mod requests {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "plugin-requests",
        exports: { default: async },
    });
}
