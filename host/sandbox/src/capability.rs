//! The load-time capability check: a component's imports against the operator's grants. Which
//! import is which capability is [`tollgate_contract::capability::classify`] (the only map),
//! so this check and `tollgate plugin inspect` cannot disagree.

use tollgate_contract::capability::{Capability, ImportClass, classify};

use crate::grants::Grants;

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
    fn refuses_first_ungranted_import_by_name() {
        let (log, http) = (Capability::Log.import("0.2.0", "0.1.0"), Capability::Http.import("0.2.0", "0.1.0"));
        let imports = ["wasi:io/streams@0.2.0", log.as_str(), http.as_str()];
        let err = check_imports(imports, &Grants::new().log(true)).unwrap_err();
        assert!(err.to_string().contains(&format!("`{http}`")), "{err}");
        let grants = Grants::new().log(true).allow_host("api.example.com").unwrap();
        assert_eq!(check_imports(imports, &grants), Ok(vec![Capability::Http, Capability::Log]));
        assert!(matches!(check_imports(["x:y/z"], &grants), Err(ImportError::Unknown { .. })));
    }
}
