//! The files `tollgate new plugin NAME --lang js` writes: package.json, a tool, its pure logic,
//! a `node --test` test, a README, and the SDK under `.tollgate/sdk/` so the tests run before
//! the first build.

use std::path::PathBuf;

use super::SDK_FILES;

const FILES: &[(&str, &str)] = &[
    ("package.json", include_str!("template/package.json.tmpl")),
    ("src/plugin.js", include_str!("template/plugin.js.tmpl")),
    ("src/logic.js", include_str!("template/logic.js.tmpl")),
    ("test/logic.test.js", include_str!("template/logic.test.js.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
    (".gitignore", include_str!("template/gitignore.tmpl")),
];

/// The template for a plugin named `name` (already checked by the caller).
pub fn template(name: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> =
        FILES.iter().map(|(path, text)| (PathBuf::from(path), text.replace("{{name}}", name))).collect();
    files.extend(SDK_FILES.iter().map(|(file, text)| (PathBuf::from(".tollgate/sdk").join(file), (*text).to_owned())));
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::js::Project;

    #[test]
    fn template_is_a_buildable_project_named_after_the_plugin() {
        let files = template("my-tool");
        let text = |path: &str| &files.iter().find(|(p, _)| p == &PathBuf::from(path)).unwrap().1;
        let project = Project::parse(text("package.json")).unwrap();
        assert_eq!(project.name, "my-tool");
        assert!(project.capabilities.is_empty());
        assert!(text("src/plugin.js").contains("name: 'my-tool'"));
        assert!(text("README.md").contains("target/my-tool.wasm"));
        assert!(files.iter().any(|(p, _)| p == &PathBuf::from(".tollgate/sdk/index.js")));
        assert!(files.iter().all(|(_, t)| !t.contains("{{name}}")));
    }
}
