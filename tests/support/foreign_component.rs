//! WAT components for the foreign-component tests of the sandbox and the CLI: one world-level
//! export `seven: func() -> u32`, with the caller's imports and extra exports, and
//! componentize-py's `exports#init` entry point as an extra export.

/// A component exporting `seven: func() -> u32` (world level) plus `extra` (imports, exports).
pub fn component(imports: &str, extra: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            {imports}
            (core module $m
                (memory (export "memory") 1)
                (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
                (func (export "init") (param i32 i32 i32) (result i32) i32.const 0)
                (func (export "f") (result i32) i32.const 7))
            (core instance $i (instantiate $m))
            (alias core export $i "memory" (core memory $mem))
            (alias core export $i "realloc" (core func $realloc))
            (func $f (result u32) (canon lift (core func $i "f")))
            (export "seven" (func $f))
            {extra})"#
    ))
    .expect("valid WAT")
}

/// An `init` function with `params` exported in interface `interface`: with `exports` and
/// [`COMPONENTIZE_PY_PARAMS`], componentize-py's entry point (its `wit/init.wit`; `symbols` is a
/// record there, its type does not enter the rule).
pub fn init_export(interface: &str, params: &str) -> String {
    format!(
        r#"(func $init {params} (result (result (error string)))
               (canon lift (core func $i "init") (memory $mem) (realloc $realloc)))
           (instance $ex (export "init" (func $init)))
           (export "{interface}" (instance $ex))"#
    )
}

pub const COMPONENTIZE_PY_PARAMS: &str = r#"(param "app-name" string) (param "symbols" u32)"#;
