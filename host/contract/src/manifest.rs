//! A plugin's manifest as plain data: [`Manifest`], its tools ([`ToolSpec`]) with their
//! [`Effects`], and the credentials it binds to hosts ([`CredentialSpec`]). The sandbox converts
//! the guest's WIT record into these and validates them (schemas compile, names, bounds); here
//! they are only the shape everyone else reads. [`ToolOverride`]: what an operator may say over
//! a foreign component's synthesized tools.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::scope::RequestScope;

/// The effects a tool declares. Policy asks for approval by effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Effects {
    pub read: bool,
    pub write: bool,
    pub send_message: bool,
    pub spend: bool,
    pub delete: bool,
}

impl Effects {
    /// Every effect's name, in declaration order (the WIT `effects` flags, kebab-case).
    pub const NAMES: [&'static str; 5] = ["read", "write", "send-message", "spend", "delete"];

    /// The effects named (as [`Effects::NAMES`] spells them), or the first unknown name.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Effects, &'a str> {
        let mut e = Effects::default();
        for name in names {
            let flag = match name {
                "read" => &mut e.read,
                "write" => &mut e.write,
                "send-message" => &mut e.send_message,
                "spend" => &mut e.spend,
                "delete" => &mut e.delete,
                unknown => return Err(unknown),
            };
            *flag = true;
        }
        Ok(e)
    }

    /// The names of the effects that are set, in [`Effects::NAMES`] order.
    pub fn names(&self) -> Vec<&'static str> {
        let on = [self.read, self.write, self.send_message, self.spend, self.delete];
        Self::NAMES.iter().zip(on).filter(|(_, on)| *on).map(|(name, _)| *name).collect()
    }
}

/// One tool of a plugin.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub effects: Effects,
    pub idempotent: bool,
    /// The tool of the same plugin that undoes this one, if any.
    pub compensation: Option<String>,
    /// The requests the tool declares it makes (contract 0.1.1 `requests` export): the egress
    /// gate refuses any other. `None`: not declared, the manifest's hosts alone limit it;
    /// `Some([])`: the tool makes no requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<Vec<RequestScope>>,
}

/// A credential the plugin binds to one host: the host injects it into the named header of
/// requests to that host only.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialSpec {
    pub name: String,
    /// A host pattern (see [`crate::pattern`]): one host or `*.suffix`.
    pub host: String,
    /// Lower-case header name.
    pub header: String,
    pub value_prefix: String,
    pub description: String,
}

/// What a plugin declares about itself.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub description: String,
    pub tools: Vec<ToolSpec>,
    /// Host patterns the plugin may call (see [`crate::pattern`]).
    pub hosts: Vec<String>,
    pub credentials: Vec<CredentialSpec>,
}

impl Manifest {
    pub fn tool(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// Applies an operator's overrides (tool name → override) to this manifest, or names the
    /// first tool the manifest does not have. Only foreign (plain) components take overrides:
    /// a Tollgate plugin's manifest is its author's contract; that check is the caller's.
    pub fn apply_overrides(&mut self, overrides: &BTreeMap<String, ToolOverride>) -> Result<(), String> {
        for (name, o) in overrides {
            let Some(tool) = self.tools.iter_mut().find(|t| &t.name == name) else {
                return Err(name.clone());
            };
            if let Some(description) = &o.description {
                tool.description = description.clone();
            }
            if let Some(effects) = o.effects {
                tool.effects = effects;
            }
        }
        Ok(())
    }
}

/// What an operator says about one tool of a foreign component, over what the host derived
/// from its exports and imports (workflow `[plugins.<name>.tools.<tool>]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolOverride {
    /// Replaces the synthesized description the model reads.
    pub description: Option<String>,
    /// Replaces the effects derived from the imports (policy asks for approval by effect).
    pub effects: Option<Effects>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_names_follow_the_flags() {
        assert_eq!(Effects::default().names(), Vec::<&str>::new());
        let e = Effects { read: true, send_message: true, delete: true, ..Effects::default() };
        assert_eq!(e.names(), ["read", "send-message", "delete"]);
        assert_eq!(Effects::from_names(e.names()), Ok(e));
        assert_eq!(Effects::from_names(["read", "launch"]), Err("launch"));
    }
}
