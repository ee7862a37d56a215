//! Which imports are capabilities. A component's import list is its capability declaration:
//! this module is the only place that maps import names to capabilities, so the load-time
//! check ([`check_imports`]) and `tollgate plugin inspect` cannot disagree.

use std::fmt;

use crate::grants::Grants;

/// A capability a plugin can only use when it both imports it and the operator grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
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

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Http => "http",
            Capability::Kv => "kv",
            Capability::Log => "log",
            Capability::Secrets => "secrets",
        })
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

/// Classifies an import name such as `wasi:http/outgoing-handler@0.2.12`.
pub fn classify(import: &str) -> ImportClass {
    let unversioned = import.split('@').next().unwrap_or(import);
    match unversioned {
        "wasi:http/outgoing-handler" => ImportClass::Capability(Capability::Http),
        "tollgate:plugin/kv" => ImportClass::Capability(Capability::Kv),
        "tollgate:plugin/log" => ImportClass::Capability(Capability::Log),
        "tollgate:plugin/secrets" => ImportClass::Capability(Capability::Secrets),
        "tollgate:plugin/types" | "wasi:http/types" => ImportClass::Baseline,
        other => {
            let package = other.split('/').next().unwrap_or(other);
            match package {
                "wasi:io" | "wasi:clocks" | "wasi:random" | "wasi:cli" | "wasi:filesystem" => ImportClass::Baseline,
                "wasi:sockets" => ImportClass::SocketsRefused,
                _ => ImportClass::Unknown,
            }
        }
    }
}

/// One import of a component, as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Import {
    pub name: String,
    pub class: String,
}

/// Why a component's imports cannot be linked under these grants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("plugin imports `{import}` ({capability} capability) but the operator did not grant {capability}{hint}")]
    NotGranted { import: String, capability: Capability, hint: &'static str },
    #[error("plugin imports `{import}`, which this host does not provide")]
    Unknown { import: String },
}

/// Checks every import against the grants: the first refused import is named in the error.
pub fn check_imports<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    grants: &Grants,
) -> Result<Vec<Capability>, ImportError> {
    let mut used = Vec::new();
    for import in imports {
        match classify(import) {
            ImportClass::Baseline | ImportClass::SocketsRefused => {}
            ImportClass::Unknown => return Err(ImportError::Unknown { import: import.to_string() }),
            ImportClass::Capability(cap) => {
                let (granted, hint) = match cap {
                    Capability::Http => (grants.grants_http(), " (grant at least one outbound host)"),
                    Capability::Kv => (grants.kv, ""),
                    Capability::Log => (grants.log, ""),
                    Capability::Secrets => (grants.grants_secrets(), " (grant the named secrets)"),
                };
                if !granted {
                    return Err(ImportError::NotGranted { import: import.to_string(), capability: cap, hint });
                }
                if !used.contains(&cap) {
                    used.push(cap);
                }
            }
        }
    }
    used.sort();
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify("wasi:http/outgoing-handler@0.2.12"), ImportClass::Capability(Capability::Http));
        assert_eq!(classify("tollgate:plugin/kv@0.1.0"), ImportClass::Capability(Capability::Kv));
        assert_eq!(classify("wasi:cli/environment@0.2.6"), ImportClass::Baseline);
        assert_eq!(classify("wasi:sockets/tcp@0.2.0"), ImportClass::SocketsRefused);
        assert_eq!(classify("acme:evil/backdoor"), ImportClass::Unknown);
    }

    #[test]
    fn refuses_first_ungranted_import_by_name() {
        let imports = ["wasi:io/streams@0.2.0", "tollgate:plugin/log@0.1.0", "wasi:http/outgoing-handler@0.2.0"];
        let err = check_imports(imports, &Grants::new().log(true)).unwrap_err();
        assert!(err.to_string().contains("wasi:http/outgoing-handler@0.2.0"), "{err}");
        let grants = Grants::new().log(true).allow_host("api.example.com").unwrap();
        assert_eq!(check_imports(imports, &grants), Ok(vec![Capability::Http, Capability::Log]));
        assert!(matches!(check_imports(["x:y/z"], &grants), Err(ImportError::Unknown { .. })));
    }
}
