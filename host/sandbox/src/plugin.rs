//! Loading: bytes → imports read without compiling (any the host does not provide refused,
//! all named) → compiled component (cache) → import check against grants → manifest
//! (fetched under limits, validated) → a [`Plugin`] ready for concurrent calls. A component
//! without the Tollgate contract takes the plain path instead: its manifest is synthesized from
//! its exported functions ([`crate::plain`]) and its egress hosts are the operator's grants.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tollgate_contract::capability::{Capability, ImportClass, classify, import_note};
use tollgate_contract::pattern::{HostMatch, HostPattern};
use tollgate_contract::{Limits, Manifest, ToolOverride};
use wasmtime::component::Component;

use crate::cache::{CacheOutcome, load_or_compile};
use crate::call::TollgatePre;
use crate::capability::{Import, check_imports};
use crate::egress::{CredentialBinding, EgressPolicy};
use crate::engine::Sandbox;
use crate::error::LoadError;
use crate::grants::Grants;
use crate::kv::NullKv;
use crate::manifest;
use crate::plain::{self, PlainExports, PlainInfo};
use crate::precheck;
use crate::schema::Schema;
use crate::state::PluginScope;

/// A loaded plugin. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    pub sandbox: Sandbox,
    /// Shared with the plugin's overridden copies ([`Plugin::with_tool_overrides`]).
    pub kind: Arc<Kind>,
    pub manifest: Manifest,
    pub schemas: BTreeMap<String, (Schema, Option<Schema>)>,
    pub digest: String,
    pub size: usize,
    pub imports: Vec<Import>,
    pub capabilities: Vec<Capability>,
    pub scope: Arc<PluginScope>,
    pub grants: Grants,
    pub cache: CacheOutcome,
}

/// How a plugin is called.
pub(crate) enum Kind {
    /// Exports `tollgate:plugin/tool`: one `call(tool, input, context)` export.
    Tollgate(TollgatePre),
    /// A plain component: one export per tool.
    Plain(PlainExports, PlainInfo),
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.inner.manifest.name).field("digest", &self.inner.digest).finish()
    }
}

/// What `inspect` shows: the plugin as declared, with no grants applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub manifest: Manifest,
    pub imports: Vec<Import>,
    pub capabilities: Vec<Capability>,
    pub size: usize,
    pub sha256: String,
    pub cache: CacheOutcome,
    /// Set for a plain component: the export behind each tool and the functions not offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain: Option<PlainInfo>,
    /// Imports that link but cannot work here, each with why ([`Plugin::warnings`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Sandbox {
    /// Loads the component at `path` under `grants`.
    pub async fn load_file(&self, path: impl AsRef<Path>, grants: Grants) -> Result<Plugin, LoadError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
        self.load(&bytes, grants).await
    }

    /// Loads a component under `grants`: refuses it, naming the import, if it imports a
    /// capability the operator did not grant.
    pub async fn load(&self, bytes: &[u8], grants: Grants) -> Result<Plugin, LoadError> {
        self.load_inner(bytes, grants, true).await
    }

    /// Reads a component's manifest and imports without granting it anything.
    pub async fn inspect(&self, bytes: &[u8]) -> Result<Inspection, LoadError> {
        let p = self.load_inner(bytes, Grants::new(), false).await?;
        let i = &p.inner;
        Ok(Inspection {
            manifest: i.manifest.clone(),
            imports: i.imports.clone(),
            capabilities: i.capabilities.clone(),
            size: i.size,
            sha256: i.digest.clone(),
            cache: i.cache,
            plain: p.plain().cloned(),
            warnings: p.warnings(),
        })
    }

    async fn load_inner(&self, bytes: &[u8], grants: Grants, enforce: bool) -> Result<Plugin, LoadError> {
        grants.limits.validate()?;
        // Imports no grant can satisfy are refused before the compile (seconds for a large
        // component) and before the cache, naming every one of them.
        let unsupported: Vec<String> = precheck::imports(bytes, &self.inner.config.compile)?
            .into_iter()
            .filter(|name| classify(name) == ImportClass::Unknown)
            .collect();
        if !unsupported.is_empty() {
            return Err(LoadError::UnsupportedImports { imports: unsupported });
        }
        let digest = sha256_hex(bytes);
        let engine = &self.inner.engine;
        let (component, cache) = load_or_compile(engine, &self.inner.config, bytes, &digest)?;
        let names = import_names(&component, engine);
        let imports: Vec<Import> =
            names.iter().map(|n| Import { name: n.clone(), class: class_name(&classify(n)) }).collect();
        let capabilities = if enforce {
            check_imports(names.iter().map(String::as_str), &grants)?
        } else {
            let mut caps: Vec<Capability> = names
                .iter()
                .filter_map(|n| match classify(n) {
                    ImportClass::Capability(c) => Some(c),
                    _ => None,
                })
                .collect();
            caps.sort();
            caps.dedup();
            caps
        };
        let instance_pre =
            self.inner.linker.instantiate_pre(&component).map_err(|e| LoadError::InvalidComponent(format!("{e:#}")))?;
        let kv_namespace = grants.kv_namespace.clone().unwrap_or_else(|| format!("sha256:{digest}"));

        // What differs between the two kinds: how the manifest is obtained and which hosts
        // count as declared. Everything after is shared.
        let (kind, manifest, schemas, declared) = if plain::is_tollgate_plugin(&component, engine) {
            let pre = TollgatePre::new(instance_pre).map_err(|e| LoadError::NotAPlugin(format!("{e:#}")))?;
            // The manifest is fetched like a call: fresh instance, the plugin's limits, no egress.
            let probe_scope = Arc::new(PluginScope {
                kv_namespace: String::new(),
                kv: Arc::new(NullKv),
                secrets: BTreeMap::new(),
                egress: Arc::new(EgressPolicy::default()),
            });
            let (raw, requests) = crate::call::fetch_manifest(self, &pre, probe_scope, &grants.limits)
                .await
                .map_err(|e| LoadError::ManifestCall(Box::new(e)))?;
            let checked = manifest::check(raw, requests)?;
            (Kind::Tollgate(pre), checked.manifest, checked.schemas, checked.host_patterns)
        } else {
            let analysis =
                plain::analyse(&component, engine, bytes, &capabilities).map_err(LoadError::PlainComponent)?;
            if enforce && let Some(name) = grants.credentials.keys().next() {
                return Err(LoadError::InvalidGrants(format!(
                    "credential `{name}` cannot be granted to a plain component: credential injection needs a \
                     Tollgate manifest that binds each credential to a host"
                )));
            }
            let exports = PlainExports { pre: instance_pre, funcs: analysis.funcs };
            // A plain component declares no hosts: it counts as declaring every host, so the
            // operator's grants alone are its egress and a denial names the missing grant.
            (Kind::Plain(exports, analysis.info), analysis.manifest, analysis.schemas, any_host())
        };
        let scope = Arc::new(build_scope(self, &manifest, declared, &grants, enforce, kv_namespace)?);
        let schemas = manifest.tools.iter().map(|t| t.name.clone()).zip(schemas).collect();
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                sandbox: self.clone(),
                kind: Arc::new(kind),
                manifest,
                schemas,
                digest,
                size: bytes.len(),
                imports,
                capabilities,
                scope,
                grants,
                cache,
            }),
        })
    }
}

/// Any host, any port, either scheme: what a plain component's egress counts as declared.
fn any_host() -> Vec<HostPattern> {
    ["http://*:*", "https://*:*"].into_iter().filter_map(|p| HostPattern::parse(p).ok()).collect()
}

fn import_names(component: &Component, engine: &wasmtime::Engine) -> Vec<String> {
    component.component_type().imports(engine).map(|(name, _)| name.to_string()).collect()
}

fn class_name(c: &ImportClass) -> String {
    match c {
        ImportClass::Capability(cap) => format!("capability:{cap}"),
        ImportClass::Baseline => "baseline".into(),
        ImportClass::SocketsRefused => "sockets (always refused)".into(),
        ImportClass::Unknown => "unknown".into(),
    }
}

/// Whether the operator granted `host` (a credential's bound host) by name, not just through a
/// `*` grant: the plugin picks where a credential goes, so the operator must have said yes to
/// that place explicitly.
fn granted_explicitly(grants: &Grants, host: &HostMatch) -> bool {
    grants.hosts.iter().any(|g| !matches!(g.host, HostMatch::Any | HostMatch::Ip(_)) && g.host.covers(host))
}

fn build_scope(
    sandbox: &Sandbox,
    manifest: &Manifest,
    declared: Vec<HostPattern>,
    grants: &Grants,
    enforce: bool,
    kv_namespace: String,
) -> Result<PluginScope, LoadError> {
    if enforce {
        for c in &manifest.credentials {
            let Some(source) = grants.credentials.get(&c.name) else { continue };
            let bound = HostPattern::parse(&c.host).map_err(|e| LoadError::InvalidManifest(e.to_string()))?;
            if !granted_explicitly(grants, &bound.host) {
                return Err(LoadError::InvalidGrants(format!(
                    "credential `{}` ({source}) is bound by the plugin to `{}`, which the operator did not grant \
                     by name (a `*` grant does not count)",
                    c.name, c.host
                )));
            }
        }
        for name in grants.credentials.keys() {
            if !manifest.credentials.iter().any(|c| &c.name == name) {
                let known: Vec<&str> = manifest.credentials.iter().map(|c| c.name.as_str()).collect();
                return Err(LoadError::InvalidGrants(format!(
                    "credential `{name}` is not declared by plugin `{}` (it declares: {})",
                    manifest.name,
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            }
        }
    }
    let credentials = manifest
        .credentials
        .iter()
        .map(|c| {
            let host =
                HostPattern::parse(&c.host).map(|p| p.host).map_err(|e| LoadError::InvalidManifest(e.to_string()))?;
            let header = http::HeaderName::from_bytes(c.header.as_bytes())
                .map_err(|e| LoadError::InvalidManifest(e.to_string()))?;
            Ok(CredentialBinding {
                name: c.name.clone(),
                host,
                header,
                prefix: c.value_prefix.clone(),
                source: grants.credentials.get(&c.name).cloned(),
            })
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    let egress = EgressPolicy {
        declared,
        granted: grants.hosts.clone(),
        open_ranges: grants.open_ranges.clone(),
        credentials,
        upstreams: grants.upstreams.clone(),
        resolve: grants.resolve.clone(),
        network: grants.network.clone(),
        declared_scopes: manifest.tools.iter().filter_map(|t| Some((t.name.clone(), t.requests.clone()?))).collect(),
        tool_scopes: grants.tool_requests.clone(),
    };
    Ok(PluginScope {
        kv_namespace,
        kv: sandbox.inner.kv.clone(),
        secrets: grants.secrets.clone(),
        egress: Arc::new(egress),
    })
}

impl Plugin {
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }
    pub fn capabilities(&self) -> &[Capability] {
        &self.inner.capabilities
    }
    pub fn imports(&self) -> &[Import] {
        &self.inner.imports
    }
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }
    /// What loading found that will not work though the component loads: an import the host
    /// links but does not back (`wasi:filesystem/preopens`: no directories), named, with why.
    /// Said at load by `plugin call` and `validate` for foreign components, and by `inspect`.
    pub fn warnings(&self) -> Vec<String> {
        self.inner
            .imports
            .iter()
            .filter_map(|i| import_note(&i.name).map(|note| format!("imports `{}`: {note}", i.name)))
            .collect()
    }

    /// For a plain component: the export behind each tool and the functions not offered.
    pub fn plain(&self) -> Option<&PlainInfo> {
        match &*self.inner.kind {
            Kind::Plain(_, info) => Some(info),
            Kind::Tollgate(_) => None,
        }
    }
    /// This plugin with the operator's overrides of its tools' descriptions and effects (the
    /// workflow's `[plugins.<name>.tools.<tool>]`). Only a foreign (plain) component takes
    /// them: a Tollgate plugin's manifest is its author's contract. A tool it does not offer
    /// is refused. Schemas, exports and instances are shared with `self`.
    pub fn with_tool_overrides(&self, overrides: &BTreeMap<String, ToolOverride>) -> Result<Plugin, LoadError> {
        if overrides.is_empty() {
            return Ok(self.clone());
        }
        let i = &self.inner;
        if self.plain().is_none() {
            return Err(LoadError::InvalidGrants(format!(
                "plugin `{}` is a Tollgate plugin: its manifest is its author's contract, so its tools cannot be overridden",
                i.manifest.name
            )));
        }
        let mut manifest = i.manifest.clone();
        manifest.apply_overrides(overrides).map_err(|tool| {
            LoadError::InvalidGrants(format!("an override names tool `{tool}`, which the component does not offer"))
        })?;
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                sandbox: i.sandbox.clone(),
                kind: i.kind.clone(),
                manifest,
                schemas: i.schemas.clone(),
                digest: i.digest.clone(),
                size: i.size,
                imports: i.imports.clone(),
                capabilities: i.capabilities.clone(),
                scope: i.scope.clone(),
                grants: i.grants.clone(),
                cache: i.cache,
            }),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.grants.limits
    }
    /// Checks `input` against `tool`'s input schema, as a call would, without calling: the agent
    /// runtime's gate uses it before asking a human to approve a call.
    pub fn check_input(&self, tool: &str, input: &serde_json::Value) -> Result<(), String> {
        match self.inner.schemas.get(tool) {
            Some((schema, _)) => schema.check(input),
            None => Err(format!("unknown tool `{tool}`")),
        }
    }
}
