//! Host bindings generated from `wit/plugin.wit`. Only this module and [`crate::state`] know
//! the generated types; the rest of the crate speaks in its own types.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});
