//! The Tollgate plugin SDK for Rust: write tools as plain functions over serde types and let
//! [`plugin!`] turn them into a component exporting `tollgate:plugin/tool` and `tollgate:plugin/requests`.
//!
//! This crate owns the wit-bindgen bindings for `wit/plugin.wit` (in [`bindings`]) and everything
//! a plugin author touches: [`Tool`], [`ToolError`], [`Context`], the manifest types and the
//! capability helpers [`http`], [`kv`], [`log`] and [`secrets`].
//!
//! ```ignore
//! use tollgate_sdk::prelude::*;
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct GreetInput {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct GreetOutput {
//!     greeting: String,
//! }
//!
//! fn greet(_ctx: &Context, input: GreetInput) -> Result<GreetOutput, ToolError> {
//!     Ok(GreetOutput { greeting: format!("Hello, {}!", input.name) })
//! }
//!
//! tollgate_sdk::plugin! {
//!     name: "greeter",
//!     version: env!("CARGO_PKG_VERSION"),
//!     description: "Greets people",
//!     tools: [Tool::new("greet", "Greet someone by name.", greet)],
//! }
//! ```
//!
//! # Capabilities follow calls
//!
//! The host treats a component's import list as its capability declaration. The bindings for
//! every interface are compiled into this crate, but the linker keeps only the functions a
//! plugin actually calls, so a plugin that never calls [`kv`] does not import
//! `tollgate:plugin/kv`. For that to hold, nothing on the common path (manifest, dispatch,
//! error conversion) calls a capability: keep it that way when changing this crate.

pub mod bindings;
mod context;
mod error;
pub mod http;
pub mod kv;
pub mod log;
mod plugin;
pub mod secrets;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use context::Context;
pub use error::ToolError;
pub use plugin::{Credential, Plugin, Tool, schema_for};
pub use schemars::JsonSchema;
pub use serde::{Deserialize, Serialize};

/// The side effects a tool may have (`read`, `write`, `send-message`, `spend`, `delete`).
/// Combine with `|`, for example `Effects::WRITE | Effects::SPEND`.
pub use bindings::tollgate::plugin::types::Effects;

/// Everything a plugin usually needs: `use tollgate_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Context, Credential, Deserialize, Effects, JsonSchema, Serialize, Tool, ToolError, http, kv, log, secrets,
    };
}

/// Re-exports the [`plugin!`] macro needs; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::exports::tollgate::plugin::requests::{Guest as RequestsGuest, ToolRequests};
    pub use crate::bindings::exports::tollgate::plugin::tool::Guest;
    pub use crate::bindings::tollgate::plugin::types::{CallContext, Manifest, ToolError as WitToolError};
    pub use crate::plugin::{call, declared_requests, manifest};
}

/// Declares the plugin and exports it as the component's `tollgate:plugin/tool` and
/// `tollgate:plugin/requests` (each tool's declared request scopes; see [`Tool::request`]).
///
/// Use it once, at the root of a `cdylib` crate. Fields come in this order; `hosts` and
/// `credentials` may be left out (a pure plugin has neither):
///
/// ```ignore
/// tollgate_sdk::plugin! {
///     name: "crm",
///     version: env!("CARGO_PKG_VERSION"),
///     description: "HubSpot CRM v3 contacts and notes",
///     hosts: ["https://api.hubapi.com"],
///     credentials: [Credential::bearer("hubspot", "api.hubapi.com", "HubSpot private app token")],
///     tools: [
///         Tool::new("search_contacts", "Search contacts.", search_contacts)
///             .effects(Effects::READ)
///             .idempotent(),
///     ],
/// }
/// ```
///
/// It also defines `tollgate_plugin()`, returning the [`Plugin`] (handy in tests), and a unit
/// test that checks the manifest with [`Plugin::validate`].
#[macro_export]
macro_rules! plugin {
    (
        name: $name:expr,
        version: $version:expr,
        description: $description:expr,
        $(hosts: [$($host:expr),* $(,)?],)?
        $(credentials: [$($credential:expr),* $(,)?],)?
        tools: [$($tool:expr),* $(,)?] $(,)?
    ) => {
        /// The plugin declared with `tollgate_sdk::plugin!`.
        #[allow(dead_code, reason = "a plugin's component never calls it; its tests and tools may")]
        pub fn tollgate_plugin() -> $crate::Plugin {
            $crate::Plugin::new($name, $version, $description)
                $($(.host($host))*)?
                $($(.credential($credential))*)?
                $(.tool($tool))*
        }

        #[doc(hidden)]
        struct __TollgatePluginExport;

        impl $crate::__private::Guest for __TollgatePluginExport {
            fn manifest() -> $crate::__private::Manifest {
                $crate::__private::manifest(&tollgate_plugin())
            }

            fn call(
                tool: ::std::string::String,
                input: ::std::string::String,
                context: $crate::__private::CallContext,
            ) -> ::core::result::Result<::std::string::String, $crate::__private::WitToolError> {
                $crate::__private::call(&tollgate_plugin(), &tool, &input, context)
            }
        }

        impl $crate::__private::RequestsGuest for __TollgatePluginExport {
            fn declared() -> ::std::vec::Vec<$crate::__private::ToolRequests> {
                $crate::__private::declared_requests(&tollgate_plugin())
            }
        }

        $crate::bindings::__export_tollgate_plugin!(__TollgatePluginExport with_types_in $crate::bindings);

        #[cfg(test)]
        #[test]
        fn tollgate_manifest_is_valid() {
            if let Err(problems) = tollgate_plugin().validate() {
                panic!("invalid plugin manifest:\n{problems}");
            }
        }
    };
}
