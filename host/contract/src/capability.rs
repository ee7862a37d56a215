//! Which imports are capabilities. A component's import list is its capability declaration:
//! this module is the only place that maps import names to capabilities and back, so the
//! sandbox's load-time check, `tollgate plugin inspect` and the worlds the plugin-project
//! builder generates cannot disagree. No other code spells an import name.

use std::fmt;

/// A capability a plugin can only use when it both imports it and the operator grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// `wasi:http/outgoing-handler`: outbound HTTP through the egress gate.
    Http,
    /// `tollgate:plugin/kv`: the plugin-scoped key-value store.
    Kv,
    /// `tollgate:plugin/log`: structured log lines into the call report.
    Log,
    /// `tollgate:plugin/secrets`: raw secret reads (discouraged, audited).
    Secrets,
}

/// `wasi:http/types`: the types of the HTTP capability, imported beside it (baseline).
pub const HTTP_TYPES: &str = "wasi:http/types";
/// `tollgate:plugin/types`: the contract's types (baseline).
pub const PLUGIN_TYPES: &str = "tollgate:plugin/types";

impl Capability {
    /// Every capability, in order.
    pub const ALL: [Capability; 4] = [Capability::Http, Capability::Kv, Capability::Log, Capability::Secrets];

    /// The name operators and projects write: `http`, `kv`, `log`, `secrets`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Http => "http",
            Capability::Kv => "kv",
            Capability::Log => "log",
            Capability::Secrets => "secrets",
        }
    }

    /// What an operator must know before granting this capability, for every place grants or
    /// capabilities are shown. Only raw secret reads carry one: redaction replaces a secret's
    /// *value* wherever it appears, but a plugin that holds the value can send it on
    /// transformed (reversed, hex- or base64-encoded, split) and no redactor can recognise
    /// that. Manifest credentials, which the plugin never sees, do not have this problem.
    pub fn caution(self) -> Option<&'static str> {
        match self {
            Capability::Secrets => Some(
                "raw secret values reach the plugin, which can send them on transformed (reversed, encoded, split) \
                 where redaction cannot recognise them; prefer manifest credentials, which the plugin never sees",
            ),
            _ => None,
        }
    }

    /// Parses a name as [`Capability::name`] writes it.
    pub fn parse(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The interface a component imports to use this capability, without a version:
    /// `wasi:http/outgoing-handler`, `tollgate:plugin/kv`.
    pub fn interface(self) -> &'static str {
        match self {
            Capability::Http => "wasi:http/outgoing-handler",
            Capability::Kv => "tollgate:plugin/kv",
            Capability::Log => "tollgate:plugin/log",
            Capability::Secrets => "tollgate:plugin/secrets",
        }
    }

    /// The interface's name inside its package (`outgoing-handler`, `kv`): how a world in the
    /// same package imports it.
    pub fn interface_name(self) -> &'static str {
        let interface = self.interface();
        interface.rsplit_once('/').map_or(interface, |(_, name)| name)
    }

    /// The versioned import name: `wasi_version` for the WASI interface (HTTP),
    /// `plugin_version` for the contract's (`tollgate:plugin/kv@0.1.0`). An empty version
    /// gives the bare interface.
    pub fn import(self, wasi_version: &str, plugin_version: &str) -> String {
        let version = if self.interface().starts_with("wasi:") { wasi_version } else { plugin_version };
        if version.is_empty() { self.interface().to_string() } else { format!("{}@{version}", self.interface()) }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the host treats one import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportClass {
    Capability(Capability),
    /// Runtime plumbing every language needs (clocks, random, stdio, environment, filesystem,
    /// streams, the contract's types). Linked, but empty: no env, no args, no preopened
    /// directories, captured stdio.
    Baseline,
    /// `wasi:sockets/*`: linked so language runtimes load, with TCP, UDP and DNS refused.
    SocketsRefused,
    /// Nothing this host provides.
    Unknown,
}

/// What this host provides, for a person reading why an import was refused: the same packages
/// and interfaces [`classify`] accepts, in words.
pub const PROVIDED: &str = "wasi:io, wasi:clocks, wasi:random, wasi:cli (no environment, no arguments, captured stdio), \
     wasi:filesystem (no directories preopened), wasi:sockets (linked, every connection refused), \
     wasi:http/types and wasi:http/outgoing-handler (the http capability), \
     tollgate:plugin/types, tollgate:plugin/log, tollgate:plugin/kv and tollgate:plugin/secrets";

/// The one baseline import that links but cannot work: `wasi:filesystem/preopens` hands the
/// component the directories the host preopened, and Tollgate preopens none.
pub const PREOPENS: &str = "wasi:filesystem/preopens";

/// What an operator should know about an import the host links but does not back, or `None`.
/// Today only [`PREOPENS`]: a component written for a host that grants directories loads, then
/// fails every file operation with `No such file or directory (os error 44)`.
pub fn import_note(import: &str) -> Option<&'static str> {
    (import.split('@').next() == Some(PREOPENS)).then_some(
        "Tollgate preopens no directories, so every file the component opens fails with \
         `No such file or directory (os error 44)`; language runtimes import this interface even when \
         the code never opens a file",
    )
}

/// Classifies an import name such as `wasi:http/outgoing-handler@0.2.12`.
pub fn classify(import: &str) -> ImportClass {
    let unversioned = import.split('@').next().unwrap_or(import);
    if let Some(cap) = Capability::ALL.into_iter().find(|c| c.interface() == unversioned) {
        return ImportClass::Capability(cap);
    }
    if unversioned == PLUGIN_TYPES || unversioned == HTTP_TYPES {
        return ImportClass::Baseline;
    }
    let package = unversioned.split('/').next().unwrap_or(unversioned);
    match package {
        "wasi:io" | "wasi:clocks" | "wasi:random" | "wasi:cli" | "wasi:filesystem" => ImportClass::Baseline,
        "wasi:sockets" => ImportClass::SocketsRefused,
        _ => ImportClass::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify("wasi:http/outgoing-handler@0.2.12"), ImportClass::Capability(Capability::Http));
        assert_eq!(classify("tollgate:plugin/kv@0.1.0"), ImportClass::Capability(Capability::Kv));
        assert_eq!(classify("tollgate:plugin/log"), ImportClass::Capability(Capability::Log));
        assert_eq!(classify("tollgate:plugin/secrets@0.1.0"), ImportClass::Capability(Capability::Secrets));
        assert_eq!(classify("tollgate:plugin/types@0.1.0"), ImportClass::Baseline);
        assert_eq!(classify("wasi:http/types@0.2.12"), ImportClass::Baseline);
        assert_eq!(classify("wasi:cli/environment@0.2.6"), ImportClass::Baseline);
        assert_eq!(classify("wasi:sockets/tcp@0.2.0"), ImportClass::SocketsRefused);
        assert_eq!(classify("acme:evil/backdoor"), ImportClass::Unknown);
        assert!(import_note("wasi:filesystem/preopens@0.2.6").is_some_and(|n| n.contains("os error 44")));
        assert_eq!(import_note("wasi:filesystem/types@0.2.6"), None);
        assert_eq!(classify("tollgate:plugin/kvx"), ImportClass::Unknown);
    }

    #[test]
    fn names_and_interfaces_round_trip() {
        for cap in Capability::ALL {
            assert_eq!(Capability::parse(cap.name()), Some(cap));
            assert_eq!(cap.to_string(), cap.name());
            assert_eq!(classify(&cap.import("0.2.12", "0.1.0")), ImportClass::Capability(cap));
        }
        assert_eq!(Capability::parse("network"), None);
        assert_eq!(Capability::Http.import("0.2.12", "0.1.0"), "wasi:http/outgoing-handler@0.2.12");
        assert_eq!(Capability::Kv.import("0.2.12", "0.1.0"), "tollgate:plugin/kv@0.1.0");
        assert_eq!(Capability::Log.import("0.2.12", ""), "tollgate:plugin/log");
        assert_eq!(Capability::Http.interface_name(), "outgoing-handler");
        assert_eq!(Capability::Secrets.interface_name(), "secrets");
        assert!(Capability::Secrets.caution().is_some_and(|c| c.contains("transformed")));
        assert!(Capability::Http.caution().is_none());
        assert_eq!(serde_json::to_value(Capability::Secrets).unwrap(), "secrets");
    }
}
