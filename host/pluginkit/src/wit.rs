//! What every language's generated world is made of: the capabilities a project may declare
//! ([`Capability`], from `tollgate-contract`, which also names the interfaces each one imports)
//! and the vendored WASI 0.2.12 packages (`host/pluginkit/wit/`) its world depends on when it
//! declares `http`.

pub use tollgate_contract::Capability;

/// The WASI version of the vendored `wasi:http` WIT, the one the host's wasmtime-wasi-http links.
pub const WASI_VERSION: &str = "0.2.12";

/// The contract package's version, as `wit/plugin.wit` declares it (a test checks).
pub const PLUGIN_VERSION: &str = "0.1.1";

/// WASI 0.2.12 packages, written as the world's `deps/` when the project declares `http`.
pub(crate) const WASI_WIT: &[(&str, &str)] = &[
    ("cli", include_str!("../wit/wasi-0.2.12/cli.wit")),
    ("clocks", include_str!("../wit/wasi-0.2.12/clocks.wit")),
    ("filesystem", include_str!("../wit/wasi-0.2.12/filesystem.wit")),
    ("http", include_str!("../wit/wasi-0.2.12/http.wit")),
    ("io", include_str!("../wit/wasi-0.2.12/io.wit")),
    ("random", include_str!("../wit/wasi-0.2.12/random.wit")),
    ("sockets", include_str!("../wit/wasi-0.2.12/sockets.wit")),
];

#[cfg(test)]
mod tests {
    #[test]
    fn the_plugin_version_is_the_contracts() {
        let line = format!("package tollgate:plugin@{};", super::PLUGIN_VERSION);
        assert!(crate::PLUGIN_WIT.lines().any(|l| l.trim() == line), "plugin.wit does not declare `{line}`");
    }
}
