//! A Python plugin project as `pyproject.toml` describes it, and the WIT world generated from
//! it: the contract's `tool` export plus exactly the capabilities the project declares.
//!
//! componentize-py imports everything the target world imports, so the world is the
//! capability declaration: a project declaring nothing gets a world that imports none of
//! log, kv, secrets or wasi:http.

use std::path::Path;

use crate::error::BuildError;

pub use crate::wit::{Capability, WASI_VERSION};

/// What the build needs from `pyproject.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// `[project] name`: names the output file.
    pub name: String,
    /// `[tool.tollgate] module` (default `app`): the module defining the `tollgate.Plugin`.
    pub module: String,
    /// `[tool.tollgate] capabilities`, sorted, without duplicates.
    pub capabilities: Vec<Capability>,
}

impl Project {
    pub fn read(dir: &Path) -> Result<Project, BuildError> {
        let path = dir.join("pyproject.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| BuildError::io(&path, e))?;
        Project::parse(&text).map_err(|message| BuildError::Project { path: path.display().to_string(), message })
    }

    pub fn parse(text: &str) -> Result<Project, String> {
        let doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let name = doc
            .get("project")
            .and_then(|p| p.get("name"))
            .and_then(toml::Value::as_str)
            .ok_or("missing `[project] name`")?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("`[project] name` = {name:?}: use letters, digits, `-` and `_` only"));
        }
        // Not silently ignored: a build that leaves out a declared dependency fails later, at
        // the first call, far from the cause.
        let dependencies = doc.get("project").and_then(|p| p.get("dependencies")).and_then(toml::Value::as_array);
        if let Some(listed) = dependencies.filter(|d| !d.is_empty()) {
            let names: Vec<String> = listed.iter().map(|d| d.as_str().unwrap_or("?").to_owned()).collect();
            return Err(format!(
                "`[project] dependencies` lists {}: Python components bundle only the project's own modules \
                 and the Tollgate SDK, and the build does not install packages. Copy a pure-Python \
                 package's folder into the project (it is bundled when the plugin imports it) and \
                 remove the entry",
                names.join(", ")
            ));
        }
        let tollgate = doc
            .get("tool")
            .and_then(|t| t.get("tollgate"))
            .and_then(toml::Value::as_table)
            .ok_or("missing `[tool.tollgate]` (it holds `module` and `capabilities`)")?;
        for key in tollgate.keys() {
            if key != "module" && key != "capabilities" {
                return Err(format!("unknown key `{key}` in `[tool.tollgate]` (expected `module`, `capabilities`)"));
            }
        }
        let module = match tollgate.get("module") {
            None => "app".to_owned(),
            Some(v) => v.as_str().ok_or("`[tool.tollgate] module` must be a string")?.to_owned(),
        };
        let valid_module = module.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !valid_module {
            return Err(format!("`[tool.tollgate] module` = {module:?} is not a Python module name"));
        }
        let mut capabilities = Vec::new();
        let listed = match tollgate.get("capabilities") {
            None => Vec::new(),
            Some(v) => v.as_array().ok_or("`[tool.tollgate] capabilities` must be a list of strings")?.clone(),
        };
        for value in listed {
            let name = value.as_str().ok_or("`[tool.tollgate] capabilities` must be a list of strings")?;
            let capability = Capability::parse(name).ok_or_else(|| {
                format!(
                    "unknown capability {name:?} in `[tool.tollgate] capabilities` (expected http, kv, log, secrets)"
                )
            })?;
            capabilities.push(capability);
        }
        capabilities.sort();
        capabilities.dedup();
        Ok(Project { name: name.to_owned(), module, capabilities })
    }

    pub fn uses(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// The world the component targets: `plugin_package` (for example `tollgate:plugin@0.1.1`)
    /// is the contract's package.
    pub fn world(&self, plugin_package: &str) -> String {
        let (package, version) = plugin_package.split_once('@').unwrap_or((plugin_package, ""));
        let at = if version.is_empty() { String::new() } else { format!("@{version}") };
        let mut world = String::from(
            "// Generated by tollgate-pluginkit from pyproject.toml `[tool.tollgate] capabilities`.\n\
             package tollgate:project;\n\nworld plugin {\n",
        );
        for capability in &self.capabilities {
            world.push_str(&format!("    import {};\n", capability.import(WASI_VERSION, version)));
        }
        world.push_str(&format!("    export {package}/tool{at};\n    export {package}/requests{at};\n}}\n"));
        world
    }
}

/// `tollgate:plugin@0.1.1` from the contract's `package tollgate:plugin@0.1.1;` line.
pub fn package_of(wit: &str) -> Option<&str> {
    wit.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("package "))
        .map(|rest| rest.trim_end_matches(';').trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[project]\nname = \"lead-score\"\n[tool.tollgate]\n";

    #[test]
    fn reads_module_and_capabilities() {
        let p = Project::parse(&format!("{BASE}module = \"plugin.main\"\ncapabilities = [\"log\", \"http\", \"log\"]"))
            .unwrap();
        assert_eq!(p.name, "lead-score");
        assert_eq!(p.module, "plugin.main");
        assert_eq!(p.capabilities, vec![Capability::Http, Capability::Log]);
        let bare = Project::parse(BASE).unwrap();
        assert_eq!((bare.module.as_str(), bare.capabilities.len()), ("app", 0));
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        let err = |extra: &str| Project::parse(&format!("{BASE}{extra}")).unwrap_err();
        assert!(err("capabilities = [\"network\"]").contains("unknown capability \"network\""));
        assert!(err("capabilities = \"http\"").contains("must be a list"));
        assert!(err("module = \"my-app\"").contains("not a Python module name"));
        assert!(err("capability = [\"http\"]").contains("unknown key `capability`"));
        assert!(Project::parse("[project]\nname = \"x\"\n").unwrap_err().contains("[tool.tollgate]"));
        assert!(Project::parse("[tool.tollgate]\n").unwrap_err().contains("[project] name"));
        let deps = Project::parse("[project]\nname = \"x\"\ndependencies = [\"requests>=2\"]\n[tool.tollgate]\n");
        assert!(deps.unwrap_err().contains("`[project] dependencies` lists requests>=2"));
        assert!(Project::parse("[project]\nname = \"x\"\ndependencies = []\n[tool.tollgate]\n").is_ok());
    }

    #[test]
    fn the_world_imports_exactly_the_declared_capabilities() {
        let package = package_of(crate::PLUGIN_WIT).unwrap();
        assert_eq!(package, "tollgate:plugin@0.1.1");
        let pure = Project::parse(BASE).unwrap().world(package);
        assert!(!pure.contains("import"), "{pure}");
        assert!(pure.contains("export tollgate:plugin/tool@0.1.1;"), "{pure}");
        assert!(pure.contains("export tollgate:plugin/requests@0.1.1;"), "{pure}");
        let http_kv = Project::parse(&format!("{BASE}capabilities = [\"kv\", \"http\"]")).unwrap().world(package);
        assert!(http_kv.contains("import wasi:http/outgoing-handler@0.2.12;"), "{http_kv}");
        assert!(http_kv.contains("import tollgate:plugin/kv@0.1.1;"), "{http_kv}");
        assert!(!http_kv.contains("/log") && !http_kv.contains("/secrets"), "{http_kv}");
    }
}
