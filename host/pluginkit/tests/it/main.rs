//! Plugin builds end to end, one binary: Rust, Python and JavaScript projects built with the real
//! toolchains, then loaded and called in the sandbox.

mod js;
mod python;
mod rust;
