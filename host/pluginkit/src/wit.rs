//! What every language's generated world is made of: the capabilities a project may declare and
//! the vendored WASI 0.2.12 packages (`host/pluginkit/wit/`) its world depends on when it
//! declares `http`.

/// The WASI version of the vendored `wasi:http` WIT, the one the host's wasmtime-wasi-http links.
pub const WASI_VERSION: &str = "0.2.12";

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

/// A capability a project may declare (`[tool.tollgate] capabilities` in pyproject.toml,
/// `"tollgate": {"capabilities": [...]}` in package.json); its world imports exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    Http,
    Kv,
    Log,
    Secrets,
}

impl Capability {
    pub(crate) fn parse(name: &str) -> Option<Capability> {
        match name {
            "http" => Some(Capability::Http),
            "kv" => Some(Capability::Kv),
            "log" => Some(Capability::Log),
            "secrets" => Some(Capability::Secrets),
            _ => None,
        }
    }
}
