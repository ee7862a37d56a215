//! Compiling untrusted components in a child process under CPU-time and memory limits.
//!
//! [`crate::precheck`] bounds the *shape* of what is compiled; within those bounds compile time
//! still grows with size (75,000 trivial functions: ~6 s, 470 MiB). With
//! [`SandboxConfig::compile_isolation`](crate::SandboxConfig) set, a component that is not in
//! the cache is compiled by a child process — the program named in [`CompileIsolation`], which
//! must call [`compile_child_main`] first thing in `main` — under `RLIMIT_CPU` and `RLIMIT_AS`.
//! The child reads the component on stdin, compiles it with the engine settings the sandbox
//! uses ([`crate::engine::compile_config`]), and writes the precompiled artifact to stdout; the
//! parent loads it, and the cache stores it like any other. A child that runs out of CPU time
//! or memory is killed by the kernel and the load fails with [`LoadError::CompileAborted`];
//! the host process is untouched.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::engine::compile_config;
use crate::error::LoadError;

/// Set (to the wasm stack size) in the environment of a compile child.
pub const CHILD_ENV: &str = "TOLLGATE_SANDBOX_COMPILE_CHILD";
/// The largest component a child reads and the largest artifact the parent reads.
const MAX_COMPONENT: u64 = 256 << 20;
pub(crate) const MAX_ARTIFACT: u64 = 1 << 30;

/// Where and under which limits components are compiled out of process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileIsolation {
    /// The executable to run as the compile child; its `main` calls [`compile_child_main`].
    pub program: PathBuf,
    /// CPU time the child may use (all its threads), rounded up to whole seconds.
    pub cpu: Duration,
    /// Address space the child may map.
    pub memory_bytes: u64,
}

impl CompileIsolation {
    /// This executable as the compile child, with 60 s of CPU time and 4 GiB of address space.
    pub fn this_executable() -> std::io::Result<CompileIsolation> {
        Ok(CompileIsolation { program: std::env::current_exe()?, cpu: Duration::from_secs(60), memory_bytes: 4 << 30 })
    }
}

/// In a process started as a compile child (the environment has [`CHILD_ENV`]): compiles the
/// component on stdin to stdout and returns the exit status. Otherwise `None`. A binary that
/// turns compile isolation on calls this first thing in `main`.
pub fn compile_child_main() -> Option<u8> {
    let stack = std::env::var(CHILD_ENV).ok()?;
    Some(match child(&stack) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{e}");
            1
        }
    })
}

fn child(stack: &str) -> Result<(), String> {
    let max_wasm_stack: usize = stack.parse().map_err(|_| format!("{CHILD_ENV} must be the wasm stack size"))?;
    let mut bytes = Vec::new();
    std::io::stdin().lock().take(MAX_COMPONENT).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let engine = Engine::new(&compile_config(max_wasm_stack)).map_err(|e| format!("{e:#}"))?;
    let artifact = engine.precompile_component(&bytes).map_err(|e| format!("{e:#}"))?;
    std::io::stdout().lock().write_all(&artifact).map_err(|e| e.to_string())
}

/// Compiles `bytes` in a child process under `isolation`'s limits; returns the component and
/// its artifact (for the cache).
pub(crate) fn compile(
    engine: &Engine,
    bytes: &[u8],
    isolation: &CompileIsolation,
    max_wasm_stack: usize,
) -> Result<(Component, Vec<u8>), LoadError> {
    let aborted = |why: String| LoadError::CompileAborted(why);
    let mut command = Command::new(&isolation.program);
    command
        .env(CHILD_ENV, max_wasm_stack.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    limit(&mut command, isolation);
    let mut child =
        command.spawn().map_err(|e| aborted(format!("cannot start {}: {e}", isolation.program.display())))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(aborted("the compile child has no pipes".into()));
    };
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.take(16 << 10).read_to_string(&mut text);
        text
    });
    let mut artifact = Vec::new();
    let read = stdout.take(MAX_ARTIFACT).read_to_end(&mut artifact);
    let status = child.wait().map_err(|e| aborted(format!("waiting for the compile child: {e}")))?;
    let _ = writer.join();
    let message = errors.join().unwrap_or_default();
    if !status.success() {
        return Err(aborted(explain(status, isolation, message.trim())));
    }
    read.map_err(|e| aborted(format!("reading the artifact: {e}")))?;
    // SAFETY: the artifact was produced by `Engine::precompile_component` in a child running
    // the program the operator configured (this host's own executable) with this engine's
    // compile settings; wasmtime checks its header and compatibility before using it.
    let component = unsafe { Component::deserialize(engine, &artifact) }
        .map_err(|e| aborted(format!("the compile child's artifact does not load: {e:#}")))?;
    Ok((component, artifact))
}

/// Why the child failed, in the operator's terms.
fn explain(status: std::process::ExitStatus, isolation: &CompileIsolation, stderr: &str) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(libc::SIGXCPU | libc::SIGKILL) => {
                return format!("compiling took more than its CPU time limit of {} s", cpu_seconds(isolation));
            }
            Some(libc::SIGABRT | libc::SIGSEGV) => {
                return format!(
                    "compiling ran out of its memory limit of {} ({})",
                    tollgate_contract::units::format_bytes(isolation.memory_bytes as usize),
                    stderr.lines().next().unwrap_or("aborted")
                );
            }
            _ => {}
        }
    }
    let _ = isolation;
    format!("the compile child failed ({status}): {stderr}")
}

fn cpu_seconds(isolation: &CompileIsolation) -> u64 {
    isolation.cpu.as_secs() + u64::from(isolation.cpu.subsec_nanos() > 0)
}

#[cfg(unix)]
fn limit(command: &mut Command, isolation: &CompileIsolation) {
    use std::os::unix::process::CommandExt;
    let cpu = cpu_seconds(isolation).max(1);
    let memory = isolation.memory_bytes;
    // SAFETY: the closure runs in the child between fork and exec and only calls setrlimit,
    // which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // SIGXCPU at the soft limit, SIGKILL one second later.
            let cpu_limit = libc::rlimit { rlim_cur: cpu, rlim_max: cpu + 1 };
            let memory_limit = libc::rlimit { rlim_cur: memory, rlim_max: memory };
            if libc::setrlimit(libc::RLIMIT_CPU, &cpu_limit) != 0
                || libc::setrlimit(libc::RLIMIT_AS, &memory_limit) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn limit(_command: &mut Command, _isolation: &CompileIsolation) {}
