//! A JavaScript plugin project as `package.json` describes it, and what the build generates
//! from it: the WIT world (the contract's `tool` export plus exactly the declared
//! capabilities), the module that imports those interfaces for the SDK, and the entry module.
//!
//! The componentizers import everything the target world imports, so the world is the
//! capability declaration: a project declaring nothing gets a world that imports none of
//! log, kv, secrets or wasi:http.

use std::path::Path;

use serde_json::Value;
use tollgate_contract::capability::HTTP_TYPES;

use crate::error::BuildError;
use crate::wit::PLUGIN_VERSION;

pub use crate::wit::{Capability, WASI_VERSION};

/// The world the kit generates for every project.
pub const WORLD: &str = "tollgate-js";

/// The JavaScript entry module when package.json has no `main`.
pub const DEFAULT_MAIN: &str = "src/plugin.js";

/// Where the kit writes the SDK, and what package.json must map `#tollgate` to (`imports`), so
/// that the project's tests under plain node and the bundle resolve the same files.
pub const SDK_IMPORT: &str = "./.tollgate/sdk/index.js";

/// The JavaScript engine a component embeds (`"tollgate": {"engine": ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// SpiderMonkey via componentize-js: the default; supports every capability.
    #[default]
    StarlingMonkey,
    /// QuickJS via componentize-qjs: far smaller and cheaper per call, but cannot build a
    /// world that imports wasi:http (see docs/plugins/js.md), so pure/kv/log tools only.
    QuickJs,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::StarlingMonkey => "starlingmonkey",
            Engine::QuickJs => "quickjs",
        }
    }
}

/// What the build needs from `package.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// `name`: names the output file; a valid plugin name.
    pub name: String,
    /// `main` (default `src/plugin.js`): the module whose default export is the plugin.
    pub main: String,
    /// `tollgate.capabilities`, sorted, without duplicates.
    pub capabilities: Vec<Capability>,
    pub engine: Engine,
}

impl Project {
    pub fn read(dir: &Path) -> Result<Project, BuildError> {
        let path = dir.join("package.json");
        let text = std::fs::read_to_string(&path).map_err(|e| BuildError::io(&path, e))?;
        Project::parse(&text).map_err(|message| BuildError::Project { path: path.display().to_string(), message })
    }

    pub fn parse(text: &str) -> Result<Project, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let name = doc.get("name").and_then(Value::as_str).ok_or("`name` is missing")?.to_owned();
        crate::lang::check_name(&name).map_err(|e| e.to_string())?;
        let main = match doc.get("main") {
            None => DEFAULT_MAIN.to_owned(),
            Some(Value::String(main)) => check_main(main)?,
            Some(_) => return Err("`main` must be a string".to_owned()),
        };
        if doc.get("imports").and_then(|i| i.get("#tollgate")).and_then(Value::as_str) != Some(SDK_IMPORT) {
            return Err(format!("`imports` must map \"#tollgate\" to \"{SDK_IMPORT}\" (the SDK the build writes)"));
        }
        let tollgate = doc.get("tollgate").cloned().unwrap_or(Value::Object(Default::default()));
        let Value::Object(tollgate) = tollgate else {
            return Err("`tollgate` must be an object".to_owned());
        };
        for key in tollgate.keys() {
            if key != "capabilities" && key != "engine" {
                return Err(format!("unknown key `tollgate.{key}` (expected `capabilities` or `engine`)"));
            }
        }
        let mut capabilities = Vec::new();
        match tollgate.get("capabilities") {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let name = item.as_str().ok_or("`tollgate.capabilities` must list strings")?;
                    let capability = Capability::parse(name).ok_or_else(|| {
                        format!(
                            "unknown capability `{name}` in `tollgate.capabilities` (expected http, kv, log or secrets)"
                        )
                    })?;
                    capabilities.push(capability);
                }
            }
            Some(_) => return Err("`tollgate.capabilities` must be a list".to_owned()),
        }
        capabilities.sort();
        capabilities.dedup();
        let engine = match tollgate.get("engine") {
            None => Engine::default(),
            Some(Value::String(e)) if e == "starlingmonkey" => Engine::StarlingMonkey,
            Some(Value::String(e)) if e == "quickjs" => Engine::QuickJs,
            Some(other) => {
                return Err(format!("unknown `tollgate.engine` {other} (expected \"starlingmonkey\" or \"quickjs\")"));
            }
        };
        if engine == Engine::QuickJs && capabilities.contains(&Capability::Http) {
            return Err("the quickjs engine cannot build plugins with the `http` capability (componentize-qjs \
                        0.4.5 fails to pre-initialise a world importing wasi:http): use the default \
                        starlingmonkey engine"
                .to_owned());
        }
        Ok(Project { name, main, capabilities, engine })
    }

    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// The generated world: the contract's `tool` export plus the declared capabilities.
    /// Written beside the contract (`plugin.wit`, same package) in the build's WIT directory.
    pub fn world(&self) -> String {
        let mut imports = String::new();
        for capability in &self.capabilities {
            // The contract's own interfaces by their short names: the world is in its package.
            let line = match capability {
                Capability::Http => capability.import(WASI_VERSION, PLUGIN_VERSION),
                Capability::Kv | Capability::Log | Capability::Secrets => capability.interface_name().to_owned(),
            };
            imports.push_str(&format!("    import {line};\n"));
        }
        format!(
            "package tollgate:plugin@{PLUGIN_VERSION};\n\n\
             // Generated by tollgate-pluginkit from package.json: do not edit. (A comment above\n\
             // `package` would count as a second package doc comment beside plugin.wit's.)\n\
             world {WORLD} {{\n{imports}    export tool;\n    export requests;\n}}\n"
        )
    }

    /// The module that imports the declared interfaces and hands them to the SDK. It is the
    /// only JavaScript that names a WIT import, so the bundle imports exactly the world's.
    pub fn capabilities_module(&self) -> String {
        let mut imports = String::new();
        let mut fields = vec![format!("engine: '{}'", self.engine.name())];
        for capability in &self.capabilities {
            let import = capability.import(WASI_VERSION, PLUGIN_VERSION);
            match capability {
                Capability::Http => {
                    imports.push_str(&format!(
                        "import * as httpHandler from '{import}';\n\
                         import * as httpTypes from '{HTTP_TYPES}@{WASI_VERSION}';\n"
                    ));
                    fields.push("http: { handler: iface(httpHandler), types: iface(httpTypes) }".to_owned());
                }
                Capability::Kv | Capability::Log | Capability::Secrets => {
                    let name = capability.name();
                    imports.push_str(&format!("import * as {name} from '{import}';\n"));
                    fields.push(format!("{name}: iface({name})"));
                }
            }
        }
        format!(
            "// Generated by tollgate-pluginkit from package.json: do not edit.\n\
             import {{ setCapabilities }} from '#tollgate';\n\
             {imports}\n\
             // QuickJS exposes an interface as the default export, StarlingMonkey as named exports.\n\
             const iface = (ns) => (ns.default !== undefined && typeof ns.default === 'object' ? ns.default : ns);\n\
             setCapabilities(Object.freeze({{ {} }}));\n\
             // The engines' own fetch is disabled (only the SDK's http goes through the host's\n\
             // gate): calling it would trap in a stub. Say what to use instead.\n\
             globalThis.fetch = () => {{\n  throw new Error(\"fetch() is not available in a Tollgate plugin: use `http` from \
             '#tollgate' and declare the \\\"http\\\" capability in package.json\");\n}};\n",
            fields.join(", ")
        )
    }

    /// The entry module the bundler starts from (in `.tollgate/build/`): capabilities first,
    /// then the project's plugin, exported as `tollgate:plugin/tool` and `tollgate:plugin/requests`.
    pub fn entry_module(&self) -> String {
        format!(
            "// Generated by tollgate-pluginkit: do not edit.\n\
             import './capabilities.js';\n\
             import plugin from '../../{main}';\n\
             import {{ exportRequests, exportTool }} from '#tollgate';\n\n\
             if (plugin === undefined) {{\n  throw new Error('{main} must `export default definePlugin({{...}})`');\n}}\n\
             export const tool = exportTool(plugin);\n\
             export const requests = exportRequests(plugin);\n",
            main = self.main
        )
    }
}

/// `main` must be a relative path to a `.js`/`.mjs` file inside the project.
fn check_main(main: &str) -> Result<String, String> {
    let trimmed = main.strip_prefix("./").unwrap_or(main);
    let path = Path::new(trimmed);
    let inside = path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    let js = trimmed.ends_with(".js") || trimmed.ends_with(".mjs");
    let plain = !trimmed.contains(['\'', '\\', '\n']);
    if trimmed.is_empty() || !inside || !js || !plain {
        return Err(format!("`main` must be a relative path to a .js or .mjs file inside the project, not `{main}`"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_sdk(fields: &str) -> String {
        format!(r##"{{"imports": {{"#tollgate": "{SDK_IMPORT}"}}, {fields}}}"##)
    }

    #[test]
    fn parses_capabilities_engine_and_main() {
        let p = Project::parse(
            r##"{"name": "utm-links", "imports": {"#tollgate": "./.tollgate/sdk/index.js"}, "main": "./lib/tools.mjs",
                "tollgate": {"capabilities": ["log", "http", "log"], "engine": "starlingmonkey"}}"##,
        )
        .unwrap();
        assert_eq!(p.name, "utm-links");
        assert_eq!(p.main, "lib/tools.mjs");
        assert_eq!(p.capabilities, vec![Capability::Http, Capability::Log]);
        assert_eq!(p.engine, Engine::StarlingMonkey);

        let bare = Project::parse(&with_sdk(r#""name": "pure""#)).unwrap();
        assert_eq!(
            (bare.main.as_str(), bare.capabilities.len(), bare.engine),
            (DEFAULT_MAIN, 0, Engine::StarlingMonkey)
        );
    }

    #[test]
    fn refuses_bad_projects() {
        assert!(Project::parse(r#"{"name": "a"}"#).unwrap_err().contains(r##"must map "#tollgate""##));
        let err = |fields: &str| Project::parse(&with_sdk(fields)).unwrap_err();
        assert!(err(r#""version": "1""#).contains("`name` is missing"));
        assert!(err(r#""name": "Bad Name""#).contains("invalid plugin name"));
        assert!(err(r#""name": "a", "tollgate": {"capabilities": ["net"]}"#).contains("unknown capability `net`"));
        assert!(err(r#""name": "a", "tollgate": {"engine": "v8"}"#).contains("unknown `tollgate.engine`"));
        assert!(err(r#""name": "a", "tollgate": {"caps": []}"#).contains("unknown key `tollgate.caps`"));
        assert!(err(r#""name": "a", "main": "../outside.js""#).contains("`main` must be"));
        assert!(err(r#""name": "a", "main": "/abs.js""#).contains("`main` must be"));
        assert!(err(r#""name": "a", "main": "src/x.ts""#).contains("`main` must be"));
        assert!(
            err(r#""name": "a", "tollgate": {"engine": "quickjs", "capabilities": ["http"]}"#)
                .contains("cannot build plugins with the `http` capability")
        );
    }

    #[test]
    fn world_and_capabilities_module_name_only_declared_imports() {
        let pure = Project::parse(&with_sdk(r#""name": "pure""#)).unwrap();
        let world = pure.world();
        assert!(world.contains("world tollgate-js {\n    export tool;\n    export requests;\n}"), "{world}");
        let module = pure.capabilities_module();
        assert!(!module.contains("tollgate:plugin/") && !module.contains("wasi:"), "{module}");
        assert!(module.contains("engine: 'starlingmonkey'"), "{module}");

        let all =
            Project::parse(&with_sdk(r#""name": "a", "tollgate": {"capabilities": ["secrets", "kv", "log", "http"]}"#))
                .unwrap();
        let world = all.world();
        for line in ["import wasi:http/outgoing-handler@0.2.12;", "import kv;", "import log;", "import secrets;"] {
            assert!(world.contains(line), "{world} lacks {line}");
        }
        let module = all.capabilities_module();
        for import in ["wasi:http/types@0.2.12", "tollgate:plugin/kv@0.1.1", "tollgate:plugin/secrets@0.1.1"] {
            assert!(module.contains(import), "{module} lacks {import}");
        }
    }
}
