//! The files `tollgate new plugin NAME --lang python` writes: a project with one pure tool,
//! its unit tests, a README, and the SDK copy the tests import.

use std::path::PathBuf;

use super::SDK_FILES;

const FILES: &[(&str, &str)] = &[
    ("pyproject.toml", include_str!("template/pyproject.toml")),
    ("app.py", include_str!("template/app.py")),
    ("test_app.py", include_str!("template/test_app.py")),
    ("README.md", include_str!("template/README.md")),
    (".gitignore", include_str!("template/gitignore")),
];

/// The project files for a plugin named `name` (already checked by `lang::check_name`).
pub fn template(name: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> =
        FILES.iter().map(|(path, text)| (PathBuf::from(path), text.replace("{{name}}", name))).collect();
    // The same copy `build` refreshes, so `python3 -m unittest` works before the first build.
    files.extend(
        SDK_FILES.iter().map(|(file, text)| (PathBuf::from(".tollgate/sdk/tollgate").join(file), (*text).to_owned())),
    );
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_plugin_everywhere_and_ships_the_sdk() {
        let files = template("lead-router");
        let get = |p: &str| &files.iter().find(|(path, _)| path == &PathBuf::from(p)).unwrap().1;
        assert!(get("pyproject.toml").contains("name = \"lead-router\""));
        assert!(get("app.py").contains("Plugin(\"lead-router\""));
        assert!(get("README.md").contains("target/lead-router.wasm"));
        assert!(files.iter().all(|(_, text)| !text.contains("{{")), "a placeholder was left");
        assert!(get(".tollgate/sdk/tollgate/__init__.py").contains("from .plugin import"));
        assert_eq!(files.iter().filter(|(p, _)| p.starts_with(".tollgate/sdk")).count(), SDK_FILES.len());
        let project = super::super::Project::parse(get("pyproject.toml")).unwrap();
        assert!(project.capabilities.is_empty(), "the template's tool is pure");
    }
}
