//! Tidy tests, after rust-analyzer's: ARCHITECTURE.md's structural invariants, checked on the
//! source tree rather than trusted. Each test lists every offending file, so one run shows all
//! of them. Part of `cargo test --workspace` (so of `cargo xtask test`); alone:
//! `cargo test -p xtask --test tidy`. Reads files and `cargo metadata --no-deps`; builds nothing.
//!
//! - every `.rs` file opens with a `//!` doc saying what it owns;
//! - every crate and every `src/` file appears in the codemap;
//! - wit-bindgen-generated types are named only in the files the invariant lists;
//! - import-name strings (`wasi:http/outgoing-handler`, …) live only in the capability module;
//! - `anyhow` only in binaries; every crate inherits the workspace lints;
//! - no unused dependency: each one is named in the sources that may use it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// The one module that may spell import names (ARCHITECTURE.md: "Only `capability.rs` knows
/// which import is which capability"). Moves to `host/contract/src/capability.rs` with the
/// contract crate.
const CAPABILITY_MODULE: &str = "host/contract/src/capability.rs";

/// Files that spell import names although they should take them from the capability module.
/// The test fails when an entry no longer violates, so this list can only shrink.
const KNOWN_IMPORT_NAME_VIOLATIONS: &[&str] = &[];

/// The import names of the capabilities (`wit/plugin.wit` and WASI HTTP).
const IMPORT_NAMES: &[&str] =
    &["wasi:http/outgoing-handler", "tollgate:plugin/kv", "tollgate:plugin/log", "tollgate:plugin/secrets"];

/// Where the Rust sources live (`tests/` holds test support shared by path).
const SOURCE_ROOTS: &[&str] = &["host", "plugins", "tests", "xtask"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace root")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// Every `.rs` file under [`SOURCE_ROOTS`], as a `/`-separated path relative to the root,
/// skipping build output, installed packages and hidden directories.
fn rust_files() -> &'static [String] {
    static FILES: OnceLock<Vec<String>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut files = Vec::new();
        for dir in SOURCE_ROOTS {
            walk(&root().join(dir), &mut files);
        }
        files.sort();
        files
    })
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules" || name == "__pycache__") {
                walk(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(relative(&path));
        }
    }
}

fn relative(path: &Path) -> String {
    let rel = path.strip_prefix(root()).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Fails with one line per offence.
fn report(what: &str, offences: Vec<String>) {
    assert!(offences.is_empty(), "{what} ({}):\n  {}\n", offences.len(), offences.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// Workspace packages, from `cargo metadata`.

#[derive(Debug)]
struct Package {
    name: String,
    /// Relative to the root, e.g. `host/sandbox`.
    dir: String,
    /// Cargo.toml relative to the root.
    manifest: String,
    /// `(kinds, src_path relative to the root)`.
    targets: Vec<(Vec<String>, String)>,
    deps: Vec<Dep>,
    /// `[package.metadata.tidy] used-only-through-macros`: dependencies the sources never name
    /// because only macro expansions refer to them (a re-exported derive, say).
    macro_only: Vec<String>,
    /// The package's `default` feature list.
    default_features: Vec<String>,
}

#[derive(Debug)]
struct Dep {
    /// As written in Cargo.toml (the key).
    key: String,
    /// How Rust code names it.
    ident: String,
    /// `normal`, `dev` or `build`.
    kind: String,
    /// Features this entry turns on.
    features: Vec<String>,
}

impl Package {
    fn has_bin(&self) -> bool {
        self.targets.iter().any(|(kinds, _)| kinds.iter().any(|k| k == "bin"))
    }

    fn has_lib(&self) -> bool {
        self.targets.iter().any(|(kinds, _)| kinds.iter().any(|k| matches!(k.as_str(), "lib" | "rlib" | "cdylib")))
    }

    fn bin_roots(&self) -> Vec<&str> {
        self.targets.iter().filter(|(k, _)| k.iter().any(|k| k == "bin")).map(|(_, p)| p.as_str()).collect()
    }

    fn is_root(&self, file: &str) -> bool {
        self.targets.iter().any(|(_, p)| p == file)
    }

    /// The package's `.rs` files under `sub` (`src`, `tests`, …).
    fn files_under(&self, sub: &str) -> Vec<&'static str> {
        let prefix = format!("{}/{sub}/", self.dir);
        rust_files().iter().filter(|f| f.starts_with(&prefix)).map(String::as_str).collect()
    }
}

fn packages() -> &'static [Package] {
    static PACKAGES: OnceLock<Vec<Package>> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(root())
            .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
            .output()
            .expect("running cargo metadata");
        assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
        let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata output");
        let members: BTreeSet<&str> =
            metadata["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        let all = metadata["packages"].as_array().unwrap();
        // Workspace crates are named by their library target's name.
        let lib_name = |package: &str| {
            all.iter().find(|p| p["name"] == package).and_then(|p| {
                p["targets"].as_array().unwrap().iter().find_map(|t| {
                    let kinds = t["kind"].as_array().unwrap();
                    kinds.iter().any(|k| k == "lib" || k == "rlib").then(|| t["name"].as_str().unwrap().to_owned())
                })
            })
        };
        let mut packages: Vec<Package> = all
            .iter()
            .filter(|p| members.contains(p["id"].as_str().unwrap()))
            .map(|p| {
                let manifest = relative(Path::new(p["manifest_path"].as_str().unwrap()));
                let dir = manifest.strip_suffix("/Cargo.toml").unwrap_or("").to_owned();
                let targets = p["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        let kinds = t["kind"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned());
                        (kinds.collect(), relative(Path::new(t["src_path"].as_str().unwrap())))
                    })
                    .collect();
                let deps = p["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        let name = d["name"].as_str().unwrap();
                        let key = d["rename"].as_str().unwrap_or(name).to_owned();
                        let ident = match d["rename"].as_str() {
                            Some(rename) => rename.replace('-', "_"),
                            None => lib_name(name).unwrap_or_else(|| name.replace('-', "_")),
                        };
                        let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                        let features = d["features"].as_array().unwrap().iter();
                        Dep { key, ident, kind, features: features.map(|f| f.as_str().unwrap().to_owned()).collect() }
                    })
                    .collect();
                let macro_only = p["metadata"]["tidy"]["used-only-through-macros"]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default();
                let default_features = p["features"]["default"]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default();
                let name = p["name"].as_str().unwrap().to_owned();
                Package { name, dir, manifest, targets, deps, macro_only, default_features }
            })
            .collect();
        packages.sort_by(|a, b| a.dir.cmp(&b.dir));
        packages
    })
}

// ---------------------------------------------------------------------------------------------
// Reading Rust without a parser: what matters here is which words are code.

/// `src` with comments removed and, unless `keep_strings`, string and char literals emptied.
fn code_only(src: &str, keep_strings: bool) -> String {
    let chars: Vec<char> = src.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], at(i + 1));
        let after_ident = i > 0 && ident(at(i - 1));
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…", cr"…".
        if !after_ident && (c == 'r' || (matches!(c, 'b' | 'c') && next == Some('r'))) {
            let mut j = i + if c == 'r' { 1 } else { 2 };
            let mut hashes = 0;
            while at(j) == Some('#') {
                hashes += 1;
                j += 1;
            }
            if at(j) == Some('"') {
                j += 1;
                while j < chars.len() && !(chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == Some('#'))) {
                    j += 1;
                }
                j = (j + 1 + hashes).min(chars.len());
                if keep_strings {
                    out.extend(&chars[i..j]);
                } else {
                    out.push_str("\"\"");
                }
                i = j;
                continue;
            }
        }
        if c == '"' || (!after_ident && matches!(c, 'b' | 'c') && next == Some('"')) {
            let mut j = if c == '"' { i + 1 } else { i + 2 };
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            j = (j + 1).min(chars.len());
            if keep_strings {
                out.extend(&chars[i..j]);
            } else {
                out.push_str("\"\"");
            }
            i = j;
            continue;
        }
        if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'); otherwise a lifetime or a label.
            if next == Some('\\') {
                let mut j = i + 3;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
                continue;
            }
            if at(i + 2) == Some('\'') {
                out.push_str("' '");
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `code` names the crate `krate`: `krate::…`, `krate!`, `use krate` or
/// `extern crate krate` — not a module of the same name (`crate::krate`, `self::krate`).
fn names_crate(code: &str, krate: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = code[from..].find(krate) {
        let (start, end) = (from + pos, from + pos + krate.len());
        from = end;
        if code[..start].chars().next_back().is_some_and(is_ident_char)
            || code[end..].chars().next().is_some_and(is_ident_char)
        {
            continue;
        }
        let before = code[..start].trim_end();
        if let Some(path) = before.strip_suffix("::")
            && path.trim_end().chars().next_back().is_some_and(|c| is_ident_char(c) || c == '>')
        {
            continue;
        }
        let after = code[end..].trim_start();
        if after.starts_with("::") || (after.starts_with('!') && !after.starts_with("!=")) {
            return true;
        }
        let word_before = before.rsplit(|c: char| !is_ident_char(c)).next().unwrap_or("");
        if word_before == "use" || word_before == "crate" {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The checks.

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let offences = rust_files()
        .iter()
        .filter(|f| !read(f).starts_with("//!"))
        .map(|f| format!("{f}: the first line is not a `//!` doc saying what the file owns"))
        .collect();
    report("Rust files without a module doc", offences);
}

/// The codemap section of ARCHITECTURE.md, one entry per top-level bullet: the paths its first
/// code span names (braces expanded) and every code span in it.
fn codemap() -> Vec<(Vec<String>, Vec<String>)> {
    let doc = read("ARCHITECTURE.md");
    let start = doc.find("\n## Codemap").expect("ARCHITECTURE.md has a `## Codemap` section");
    let section = &doc[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut bullets: Vec<String> = Vec::new();
    for line in section.lines() {
        if line.starts_with("- ") {
            bullets.push(String::new());
        }
        if let Some(bullet) = bullets.last_mut() {
            bullet.push_str(line);
            bullet.push('\n');
        }
    }
    bullets
        .iter()
        .map(|bullet| {
            let spans: Vec<String> = bullet.split('`').skip(1).step_by(2).map(str::to_owned).collect();
            let key = spans.first().cloned().unwrap_or_default();
            let keys = match (key.find('{'), key.find('}')) {
                (Some(open), Some(close)) => key[open + 1..close]
                    .split(',')
                    .map(|alt| format!("{}{alt}{}", &key[..open], &key[close + 1..]))
                    .collect(),
                _ => vec![key],
            };
            (keys.into_iter().map(|k| k.trim_end_matches('/').to_owned()).collect(), spans)
        })
        .collect()
}

#[test]
fn every_crate_and_source_file_is_in_the_codemap() {
    let codemap = codemap();
    let mut offences = Vec::new();
    for package in packages() {
        let Some((_, spans)) = codemap.iter().find(|(keys, _)| keys.contains(&package.dir)) else {
            offences.push(format!("{} ({}): no codemap entry", package.dir, package.name));
            continue;
        };
        let named = |rel: &str| {
            let file = rel.rsplit('/').next().unwrap();
            spans.iter().any(|s| s == rel || s == file || (s.ends_with('/') && rel.starts_with(s.as_str())))
        };
        for file in package.files_under("src") {
            if package.is_root(file) {
                continue;
            }
            let rel = &file[package.dir.len() + "/src/".len()..];
            // `x.rs` may be named as its directory `x/`; `x_tests.rs` holds the unit tests of `x.rs`.
            let module_dir = format!("{}/", rel.trim_end_matches(".rs"));
            let tested = rel.strip_suffix("_tests.rs").map(|stem| format!("{stem}.rs"));
            if !(named(rel) || named(&module_dir) || tested.is_some_and(|t| named(&t))) {
                offences.push(format!("{file}: not in the codemap entry of {}", package.dir));
            }
        }
    }
    report("ARCHITECTURE.md's codemap misses", offences);
}

#[test]
fn wit_bindgen_types_are_named_only_where_the_architecture_says() {
    let doc = read("ARCHITECTURE.md").replace('\n', " ");
    let phrase = doc.find("see wit-bindgen-generated types").expect("the invariant on wit-bindgen types");
    let sentence = &doc[doc[..phrase].rfind("- **").expect("the invariant is a bullet")..phrase];
    let allowed: Vec<String> = sentence
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.ends_with(".rs"))
        .map(|s| format!("host/sandbox/src/{s}"))
        .collect();
    assert!(!allowed.is_empty(), "no files named in: {sentence}");
    let offences = rust_files()
        .iter()
        .filter(|f| f.starts_with("host/") && f.contains("/src/") && !allowed.contains(f))
        .filter(|f| {
            let code = code_only(&read(f), false);
            code.contains("bindgen!") || code.contains("bindings::")
        })
        .map(|f| format!("{f}: names wit-bindgen-generated types (allowed: {})", allowed.join(", ")))
        .collect();
    report("wit-bindgen types outside the files ARCHITECTURE.md names", offences);
}

#[test]
fn import_names_are_spelled_only_in_the_capability_module() {
    let mut offences = Vec::new();
    let mut violating = BTreeSet::new();
    for file in rust_files().iter().filter(|f| f.contains("/src/") && f.as_str() != CAPABILITY_MODULE) {
        let code = code_only(&read(file), true);
        // A file's unit tests (its trailing `#[cfg(test)]` module) may spell what the code
        // generates: they check the output against names written out independently.
        let code = code.split("#[cfg(test)]").next().unwrap_or_default();
        if let Some(name) = IMPORT_NAMES.iter().find(|n| code.contains(**n)) {
            violating.insert(file.as_str());
            if !KNOWN_IMPORT_NAME_VIOLATIONS.contains(&file.as_str()) {
                offences.push(format!("{file}: spells `{name}`; ask {CAPABILITY_MODULE} instead"));
            }
        }
    }
    for known in KNOWN_IMPORT_NAME_VIOLATIONS {
        if !violating.contains(known) {
            offences
                .push(format!("{known}: no longer spells an import name; remove it from KNOWN_IMPORT_NAME_VIOLATIONS"));
        }
    }
    report("import names outside the capability module", offences);
}

#[test]
fn anyhow_only_in_binaries() {
    let mut offences = Vec::new();
    for package in packages() {
        if !package.has_bin() && package.deps.iter().any(|d| d.ident == "anyhow") {
            offences
                .push(format!("{}: a library crate depends on anyhow; give it its own error type", package.manifest));
        }
        if package.has_lib() {
            let bins = package.bin_roots();
            for file in package.files_under("src") {
                if !bins.contains(&file) && names_crate(&code_only(&read(file), false), "anyhow") {
                    offences.push(format!("{file}: library code uses anyhow"));
                }
            }
        }
    }
    report("anyhow outside binaries", offences);
}

#[test]
fn every_crate_inherits_the_workspace_lints() {
    let offences = packages()
        .iter()
        .filter(|p| !read(&p.manifest).contains("\n[lints]\nworkspace = true"))
        .map(|p| format!("{}: no `[lints]` / `workspace = true`", p.manifest))
        .collect();
    report("crates without the workspace lints", offences);
}

/// The crash tests' pause points (`TOLLGATE_TEST_PAUSE_AT`) must not ship: only a
/// dev-dependency may turn on the feature that compiles them, so only test builds have them.
#[test]
fn pause_points_only_in_test_builds() {
    const FEATURE: &str = "test-pause-points";
    let mut offences = Vec::new();
    for package in packages() {
        if package.default_features.iter().any(|f| f == FEATURE) {
            offences.push(format!("{}: `{FEATURE}` is a default feature", package.manifest));
        }
        for dep in package.deps.iter().filter(|d| d.kind != "dev" && d.features.iter().any(|f| f == FEATURE)) {
            offences.push(format!("{}: [{}] `{}` turns on `{FEATURE}`", package.manifest, dep.kind, dep.key));
        }
    }
    let runtime = packages().iter().find(|p| p.name == "tollgate-runtime").expect("the runtime crate");
    let enabled_by_tests =
        packages().iter().any(|p| p.deps.iter().any(|d| d.kind == "dev" && d.features.iter().any(|f| f == FEATURE)));
    if !enabled_by_tests {
        offences.push(format!(
            "no dev-dependency turns on `{FEATURE}` of {}: the crash tests cannot pause",
            runtime.manifest
        ));
    }
    report("pause points outside test builds", offences);
}

#[test]
fn every_dependency_is_used() {
    let mut offences = Vec::new();
    for package in packages() {
        let sources = |subs: &[&str]| -> Vec<String> {
            let mut files: Vec<String> = subs.iter().flat_map(|s| package.files_under(s)).map(String::from).collect();
            let build = format!("{}/build.rs", package.dir);
            if subs.contains(&"src") && rust_files().contains(&build) {
                files.push(build);
            }
            files.iter().map(|f| code_only(&read(f), false)).collect()
        };
        let (src, all) = (sources(&["src"]), sources(&["src", "tests", "benches", "examples"]));
        for dep in &package.deps {
            if package.macro_only.contains(&dep.key) {
                continue;
            }
            // A dev-dependency repeating a normal one only adds features for tests.
            if dep.kind == "dev" && package.deps.iter().any(|d| d.kind == "normal" && d.key == dep.key) {
                continue;
            }
            let (files, section, places) = match dep.kind.as_str() {
                "dev" => (&all, "dev-dependencies", "src/, tests/, benches/ or examples/"),
                "build" => (&src, "build-dependencies", "build.rs"),
                _ => (&src, "dependencies", "src/ or build.rs"),
            };
            if !files.iter().any(|code| names_crate(code, &dep.ident)) {
                offences.push(format!(
                    "{}: [{section}] `{}` is not used (no `{}::`, `{}!` or `use {}` in {places})",
                    package.manifest, dep.key, dep.ident, dep.ident, dep.ident
                ));
            }
        }
        for key in &package.macro_only {
            if !package.deps.iter().any(|d| &d.key == key) {
                offences.push(format!(
                    "{}: `used-only-through-macros` lists `{key}`, which is not a dependency",
                    package.manifest
                ));
            }
        }
    }
    report("unused dependencies (remove them, or list macro-only ones in [package.metadata.tidy])", offences);
}

// ---------------------------------------------------------------------------------------------
// The readers the checks rely on.

#[test]
fn code_only_drops_comments_and_literals() {
    let src = "use a::b; // c::d\n/* e::f /* nested */ g::h */ let s = \"i::j\"; let r = r#\"k::l\"#; \
               let c = '\\''; fn f<'m>(x: &'m str) {}";
    let code = code_only(src, false);
    for gone in ["c::d", "e::f", "g::h", "i::j", "k::l"] {
        assert!(!code.contains(gone), "{gone} in {code}");
    }
    assert!(code.contains("use a::b;") && code.contains("fn f<'m>(x: &'m str)"), "{code}");
    let kept = code_only(src, true);
    assert!(kept.contains("\"i::j\"") && kept.contains("r#\"k::l\"#") && !kept.contains("c::d"), "{kept}");
}

#[test]
fn names_crate_sees_paths_macros_and_uses_but_not_modules() {
    assert!(names_crate("use serde::Deserialize;", "serde"));
    assert!(names_crate("let x = ::tracing::info!(\"\");", "tracing"));
    assert!(names_crate("tracing::info!(\"\")", "tracing"));
    assert!(names_crate("extern crate libc;", "libc"));
    assert!(names_crate("use tempfile;", "tempfile"));
    assert!(!names_crate("use serde_json::Value;", "serde"));
    assert!(!names_crate("use crate::http::Request;", "http"));
    assert!(!names_crate("mod http; self::http::get()", "http"));
    assert!(!names_crate("if tracing != 0 {}", "tracing"));
    assert!(!names_crate("let jsonschema = 1;", "jsonschema"));
}

#[test]
fn the_capability_module_exists() {
    // A moved module would otherwise silently exempt nothing and flag every real use.
    assert!(root().join(CAPABILITY_MODULE).exists(), "{CAPABILITY_MODULE} is gone: update CAPABILITY_MODULE");
}
