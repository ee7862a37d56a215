//! A plugin's manifest as plain data: [`Manifest`], its tools ([`ToolSpec`]) with their
//! [`Effects`], and the credentials it binds to hosts ([`CredentialSpec`]). The sandbox converts
//! the guest's WIT record into these and validates them (schemas compile, names, bounds); here
//! they are only the shape everyone else reads.

use serde::Serialize;

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_names_follow_the_flags() {
        assert_eq!(Effects::default().names(), Vec::<&str>::new());
        let e = Effects { read: true, send_message: true, delete: true, ..Effects::default() };
        assert_eq!(e.names(), ["read", "send-message", "delete"]);
    }
}
