//! Bounds checked on a component's bytes *before* wasmtime compiles them. Compiling is the one
//! step of loading no deadline reaches: a 1 MB component with 100,000 trivial functions took
//! 7.7 s and 634 MiB, and one function of 60,000 nested blocks (175 KiB) 5.2 s, growing
//! super-linearly. [`check`] reads the component with `wasmparser` (linear time, little memory)
//! and refuses, with [`LoadError::ComponentTooComplex`], anything over [`CompileLimits`]: total
//! size, core functions defined, canonical functions (each lift or lower is a compiled
//! trampoline), and per function body its size and control-flow nesting.
//!
//! The defaults leave room for the largest components Tollgate builds (Python 17.9 MiB, the
//! StarlingMonkey JS runtime 11.7 MiB; BENCHMARKS.md) while refusing the bombs above. They bound
//! the *shape* of what is compiled, not the time: compile time within them still grows with
//! size (a Python component takes ~7 s).

use wasmparser::{Chunk, Operator, Parser, Payload};

use crate::error::LoadError;

/// What a component may contain for the host to compile it. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// Bytes of the component file.
    pub max_bytes: usize,
    /// Core functions defined (with a body), over every module inside the component.
    pub max_functions: u64,
    /// Canonical functions (`canon lift`, `canon lower`, resource and task built-ins).
    pub max_canonicals: u64,
    /// Bytes of one function body.
    pub max_body_bytes: usize,
    /// Nested `block`/`loop`/`if`/`try` frames inside one function body.
    pub max_nesting: u32,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            max_bytes: 64 << 20,
            max_functions: 75_000,
            max_canonicals: 10_000,
            max_body_bytes: 2 << 20,
            max_nesting: 10_000,
        }
    }
}

fn over(what: impl Into<String>, found: u64, limit: u64) -> Result<(), LoadError> {
    if found > limit { Err(LoadError::ComponentTooComplex { what: what.into(), found, limit }) } else { Ok(()) }
}

fn malformed(e: wasmparser::BinaryReaderError) -> LoadError {
    LoadError::InvalidComponent(e.to_string())
}

/// The most imports [`imports`] reads: more is refused (real components import a few dozen).
const MAX_IMPORTS: usize = 10_000;

/// The component's top-level import names (`wasi:http/outgoing-handler@0.2.6`, …), read
/// without compiling. Nested modules and components are skipped whole: their imports are
/// satisfied inside the component, never by the host.
pub(crate) fn imports(bytes: &[u8], limits: &CompileLimits) -> Result<Vec<String>, LoadError> {
    over("the component's size in bytes", bytes.len() as u64, limits.max_bytes as u64)?;
    let mut parser = Parser::new(0);
    let mut pos = 0usize;
    let mut names = Vec::new();
    loop {
        let rest = bytes.get(pos..).ok_or_else(|| LoadError::InvalidComponent("truncated section".into()))?;
        let (consumed, payload) = match parser.parse(rest, true).map_err(malformed)? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => return Err(LoadError::InvalidComponent("unexpected end of file".into())),
        };
        pos += consumed;
        match payload {
            // The parent parser has already counted these bytes; skip them here too.
            Payload::ModuleSection { unchecked_range, .. } | Payload::ComponentSection { unchecked_range, .. } => {
                if unchecked_range.end > bytes.len() {
                    return Err(LoadError::InvalidComponent("a nested module runs past the end of the file".into()));
                }
                pos = unchecked_range.end;
            }
            // A core module has no component imports: wasmtime reports it as not a component.
            Payload::CodeSectionStart { size, .. } => {
                parser.skip_section();
                pos += size as usize;
            }
            Payload::ComponentImportSection(section) => {
                over("the number of imports", (names.len() + section.count() as usize) as u64, MAX_IMPORTS as u64)?;
                for import in section {
                    names.push(import.map_err(malformed)?.name.name.to_string());
                }
            }
            Payload::End(_) => return Ok(names),
            _ => {}
        }
    }
}

/// Refuses `bytes` if compiling them could stall or exhaust the host (see [`CompileLimits`]).
pub(crate) fn check(bytes: &[u8], limits: &CompileLimits) -> Result<(), LoadError> {
    over("the component's size in bytes", bytes.len() as u64, limits.max_bytes as u64)?;
    let mut functions = 0u64;
    let mut canonicals = 0u64;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::FunctionSection(s) => {
                functions += u64::from(s.count());
                over("the number of core functions", functions, limits.max_functions)?;
            }
            Payload::ComponentCanonicalSection(s) => {
                canonicals += u64::from(s.count());
                over("the number of canonical functions", canonicals, limits.max_canonicals)?;
            }
            Payload::CodeSectionEntry(body) => {
                let range = body.range();
                over("one function body's size in bytes", range.len() as u64, limits.max_body_bytes as u64)?;
                let mut ops = body.get_operators_reader().map_err(malformed)?;
                let mut depth = 0u32;
                while !ops.eof() {
                    match ops.read().map_err(malformed)? {
                        Operator::Block { .. }
                        | Operator::Loop { .. }
                        | Operator::If { .. }
                        | Operator::Try { .. }
                        | Operator::TryTable { .. } => {
                            depth += 1;
                            over("one function body's block nesting", u64::from(depth), u64::from(limits.max_nesting))?;
                        }
                        Operator::End => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module_with_functions(n: usize) -> Vec<u8> {
        let mut wat = String::from("(module");
        for _ in 0..n {
            wat.push_str(" (func)");
        }
        wat.push(')');
        wat::parse_str(&wat).unwrap()
    }

    fn nested_blocks(depth: usize) -> Vec<u8> {
        let wat = format!("(module (func {} {}))", "(block ".repeat(depth), ")".repeat(depth));
        wat::parse_str(&wat).unwrap()
    }

    #[test]
    fn imports_are_the_top_level_ones_and_hostile_bytes_are_errors() {
        let limits = CompileLimits::default();
        let bytes = wat::parse_str(
            r#"(component
                (import "wasi:cli/environment@0.2.0" (instance))
                (component $inner (import "inner:only/this" (instance)))
                (core module $m (import "env" "f" (func)) (func) (func))
                (import "wasi:config/store@0.2.0-draft" (instance)))"#,
        )
        .unwrap();
        assert_eq!(imports(&bytes, &limits).unwrap(), ["wasi:cli/environment@0.2.0", "wasi:config/store@0.2.0-draft"]);
        // A truncation is an error or (cut at a section boundary) a shorter component: never a
        // panic, never an import that is not there.
        let all = imports(&bytes, &limits).unwrap();
        for end in 0..bytes.len() {
            if let Ok(found) = imports(&bytes[..end], &limits) {
                assert!(all.starts_with(&found), "prefix of {end} bytes: {found:?}");
            }
        }
        assert!(imports(&module_with_functions(3), &limits).unwrap().is_empty());
        let small = CompileLimits { max_bytes: 16, ..limits };
        assert!(matches!(imports(&bytes, &small), Err(LoadError::ComponentTooComplex { .. })));
    }

    #[test]
    fn ordinary_modules_pass_and_bombs_do_not() {
        let limits = CompileLimits::default();
        assert!(check(&module_with_functions(10), &limits).is_ok());
        assert!(check(&nested_blocks(100), &limits).is_ok());
        let e = check(&module_with_functions(100_000), &limits).unwrap_err();
        assert!(matches!(&e, LoadError::ComponentTooComplex { found: 100_000, .. }), "{e}");
        let e = check(&nested_blocks(60_000), &limits).unwrap_err();
        assert!(e.to_string().contains("nesting"), "{e}");
        let small = CompileLimits { max_bytes: 16, ..limits };
        assert!(check(&module_with_functions(10), &small).unwrap_err().to_string().contains("size"));
        assert!(matches!(check(b"\0asm\x01\0\0\0\x01", &limits), Err(LoadError::InvalidComponent(_))));
    }
}
