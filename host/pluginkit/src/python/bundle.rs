//! What of a Python project goes into its component: the plugin's module and the project's own
//! modules and packages it imports, transitively — `.py` files only, copied into a clean
//! directory that is the build's only view of the project.
//!
//! Why: componentize-py snapshots the interpreter after importing the app, and that snapshot
//! holds whatever the import machinery saw on its path, including the listing of every
//! directory on it. Given the project folder, a component depended on tests, data files,
//! `__pycache__`, `target/` and `.tollgate/`, and the build wrote bytecode into the project.
//!
//! The imports are found by reading `import` and `from … import` statements, not by running
//! Python: a module imported only by name at run time (`importlib.import_module("x")`) is not
//! found — import it statically. Packages are copied whole (their `.py` files, without tests
//! and caches), so relative imports inside them need no resolution.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::BuildError;

/// Top-level names the build provides itself: a project module of that name is never bundled.
const PROVIDED: &[&str] = &["tollgate", "wit_world", "componentize_py_types", super::ENTRY_MODULE];

/// Copies the modules `module` needs from `dir` into `dest` (emptied first). Returns the copied
/// files relative to `dest`, sorted.
pub fn stage(dir: &Path, module: &str, dest: &Path) -> Result<Vec<PathBuf>, BuildError> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| BuildError::io(dest, e))?;
    }
    std::fs::create_dir_all(dest).map_err(|e| BuildError::io(dest, e))?;
    let root = module.split('.').next().unwrap_or(module);
    if top_level(dir, root).is_empty() {
        return Err(BuildError::Project {
            path: dir.join("pyproject.toml").display().to_string(),
            message: format!(
                "`[tool.tollgate] module` = {module:?}, but there is no {root}.py or {root}/ package beside it"
            ),
        });
    }
    let mut seen = BTreeSet::from([root.to_owned()]);
    let mut queue = vec![root.to_owned()];
    let mut files = Vec::new();
    while let Some(name) = queue.pop() {
        for rel in top_level(dir, &name) {
            let text = std::fs::read_to_string(dir.join(&rel)).map_err(|e| BuildError::io(&dir.join(&rel), e))?;
            for imported in imported_roots(&text) {
                if !PROVIDED.contains(&imported.as_str()) && seen.insert(imported.clone()) {
                    queue.push(imported);
                }
            }
            files.push(rel);
        }
    }
    files.sort();
    for rel in &files {
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
        }
        std::fs::copy(dir.join(rel), &to).map_err(|e| BuildError::io(&to, e))?;
    }
    Ok(files)
}

/// The project files of top-level module or package `name`: `name.py`, or every `.py` file of
/// the package `name/` except tests and caches. Empty if the project has no such module.
fn top_level(dir: &Path, name: &str) -> Vec<PathBuf> {
    if PROVIDED.contains(&name) || is_test_name(name) {
        return Vec::new();
    }
    let file = PathBuf::from(format!("{name}.py"));
    if dir.join(&file).is_file() {
        return vec![file];
    }
    let mut files = Vec::new();
    if dir.join(name).is_dir() && !dir.join(name).join("pyvenv.cfg").exists() {
        package_files(dir, Path::new(name), &mut files);
    }
    files
}

fn package_files(dir: &Path, rel: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir.join(rel)) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = rel.join(&name);
        let Ok(kind) = entry.file_type() else { continue };
        if name.starts_with('.') || name == "__pycache__" || is_test_name(name.trim_end_matches(".py")) {
            continue;
        }
        if kind.is_dir() {
            package_files(dir, &path, files);
        } else if kind.is_file() && name.ends_with(".py") {
            files.push(path);
        }
    }
}

/// Tests are not part of a plugin: `tests`, `test`, `test_*`, `*_test`, `conftest`.
fn is_test_name(name: &str) -> bool {
    name == "tests" || name == "test" || name == "conftest" || name.starts_with("test_") || name.ends_with("_test")
}

/// The top-level names `import` statements in `source` name (absolute imports only: a relative
/// import stays inside a package, which is copied whole).
fn imported_roots(source: &str) -> BTreeSet<String> {
    let mut roots = BTreeSet::new();
    let root = |module: &str| module.trim().split('.').next().unwrap_or_default().trim().to_owned();
    for line in source.lines() {
        // `if x: import y` and `try: import y` put an import after a colon.
        let line = line.trim_start();
        let statement = line.split_once(':').filter(|(head, _)| is_compound(head)).map_or(line, |(_, s)| s.trim());
        for statement in statement.split(';').map(str::trim) {
            if let Some(rest) = statement.strip_prefix("import ") {
                for item in rest.split('#').next().unwrap_or_default().split(',') {
                    let module = item.split(" as ").next().unwrap_or_default();
                    roots.insert(root(module));
                }
            } else if let Some(rest) = statement.strip_prefix("from ") {
                let module = rest.split(" import").next().unwrap_or_default().trim();
                if !module.starts_with('.') {
                    roots.insert(root(module));
                }
            }
        }
    }
    roots.retain(|r| !r.is_empty() && r.chars().all(|c| c.is_alphanumeric() || c == '_'));
    roots
}

fn is_compound(head: &str) -> bool {
    ["if ", "elif ", "else", "try", "except", "finally", "with ", "for ", "while "]
        .iter()
        .any(|keyword| head.trim_start().starts_with(keyword))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_absolute_imports_in_their_python_spellings() {
        let source = "import json, scoring as s\nfrom rules.core import (a,\n    b)\nfrom . import sibling\n\
                      try: import fast_path\nexcept ImportError: pass\nx = 1; import late  # comment\n\
                      \"\"\"import in a docstring is harmless\"\"\"\n";
        let roots: Vec<_> = imported_roots(source).into_iter().collect();
        assert_eq!(roots, ["fast_path", "json", "late", "rules", "scoring"]);
    }

    #[test]
    fn stages_the_import_closure_without_tests_data_or_caches() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("pyproject.toml", "");
        write("app.py", "import json\nfrom rules import table\nimport scoring\nfrom tollgate import Plugin\n");
        write("scoring.py", "from helpers import clamp\n");
        write("helpers.py", "");
        write("rules/__init__.py", "from .table import TABLE\n");
        write("rules/table.py", "TABLE = {}\n");
        write("rules/tests/test_table.py", "import rules\n");
        write("rules/__pycache__/table.cpython-314.pyc", "");
        write("rules/data.json", "{}");
        write("unused.py", "");
        write("test_app.py", "import app\n");
        write("tests/test_more.py", "import app\n");
        write("__pycache__/app.cpython-314.pyc", "");
        write("notes.txt", "");
        write(".venv/pyvenv.cfg", "");
        let dest = dir.path().join(".tollgate/build/src");
        let files = stage(dir.path(), "app", &dest).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["app.py", "helpers.py", "rules/__init__.py", "rules/table.py", "scoring.py"]);
        assert!(dest.join("rules/table.py").is_file());

        let err = stage(dir.path(), "missing.main", &dest).unwrap_err().to_string();
        assert!(err.contains("no missing.py or missing/ package"), "{err}");
    }
}
