//! `cargo xtask demo`: the README's main command. Builds the plugins and the binaries, starts
//! local stand-ins of Meta, SendGrid and HubSpot, and runs the flagship workflow
//! `examples/campaign-review` end to end, offline: the analyst (replayed model turns, labelled
//! replay) finds the overspending campaign and waits for approval; the demo approves as
//! `demo-operator` and resumes; the copywriter emails the team (waits for approval again) and logs a CRM
//! note; finally the audit log is verified. Every `tollgate` command is printed before it runs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::plugins;

/// Kills the stand-ins when the demo ends, however it ends.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `tollgate` with the demo's data dir and tokens, printing the command first.
struct Tollgate {
    bin: PathBuf,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Tollgate {
    fn run(&self, args: &[&str]) -> Result<i32> {
        println!("\n$ tollgate {}", args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "));
        let status = Command::new(&self.bin)
            .args(args)
            .env("TOLLGATE_DATA_DIR", &self.data_dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status()
            .with_context(|| format!("running {}", self.bin.display()))?;
        status.code().with_context(|| format!("tollgate was killed ({status})"))
    }

    /// Runs and captures standard output (for the ids the demo needs next).
    fn capture(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .env("TOLLGATE_DATA_DIR", &self.data_dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()?;
        if !out.status.success() {
            bail!("tollgate {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c)) { s.into() } else { format!("'{s}'") }
}

fn expect(code: i32, want: i32, what: &str) -> Result<()> {
    if code != want {
        bail!("{what}: expected exit {want}, got {code}");
    }
    Ok(())
}

/// Builds the plugins, `tollgate` and the stand-ins; returns the binaries' directory.
pub fn build_all() -> Result<PathBuf> {
    let cargo = plugins::cargo();
    plugins::run(&plugins::Args::all())?;
    let status =
        Command::new(&cargo).args(["build", "--quiet", "-p", "tollgate", "-p", "tollgate-standins"]).status()?;
    if !status.success() {
        bail!("building tollgate failed ({status})");
    }
    Ok(plugins::target_dir()?.join("debug"))
}

/// Starts fresh stand-ins (killed when the guard drops) and returns what they print: per
/// vendor (`hubspot`, `meta`, `sendgrid`), `base_url` and `token`.
pub fn start_standins(bin: &Path) -> Result<(Guard, serde_json::Value)> {
    let mut standins = Guard(
        Command::new(bin.join("tollgate-standins"))
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tollgate-standins")?,
    );
    let stdout = standins.0.stdout.take().context("stand-in stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let urls = serde_json::from_str(&line).with_context(|| format!("stand-in said `{line}`"))?;
    Ok((standins, urls))
}

pub fn run() -> Result<()> {
    let bin = build_all()?;
    let target = plugins::target_dir()?;
    let (standins, urls) = start_standins(&bin)?;
    let field = |vendor: &str, key: &str| -> Result<String> {
        urls[vendor][key].as_str().map(str::to_string).with_context(|| format!("no {vendor} {key}"))
    };
    println!(
        "Local stand-ins: Meta {}, SendGrid {}, HubSpot {}",
        field("meta", "base_url")?,
        field("sendgrid", "base_url")?,
        field("hubspot", "base_url")?
    );

    let data_dir = target.join("demo");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    let tollgate = Tollgate {
        bin: bin.join("tollgate"),
        data_dir,
        env: vec![
            ("META_ACCESS_TOKEN".into(), field("meta", "token")?),
            ("SENDGRID_API_KEY".into(), field("sendgrid", "token")?),
            ("HUBSPOT_TOKEN".into(), field("hubspot", "token")?),
            ("USER".into(), "demo-operator".into()),
        ],
    };
    let workflow = Path::new("examples/campaign-review/workflow.toml");
    let upstreams = [
        format!("graph.facebook.com={}", field("meta", "base_url")?),
        format!("api.sendgrid.com={}", field("sendgrid", "base_url")?),
        format!("api.hubapi.com={}", field("hubspot", "base_url")?),
    ];
    let mut run_args: Vec<&str> = vec!["run", workflow.to_str().context("path")?];
    for u in &upstreams {
        run_args.extend(["--upstream", u.as_str()]);
    }
    expect(tollgate.run(&["validate", workflow.to_str().context("path")?])?, 0, "validate")?;
    expect(tollgate.run(&run_args)?, 3, "the run should wait for approval of the pause")?;

    let run_id = latest_run(&tollgate)?;
    for round in ["pause the campaign", "email the team"] {
        expect(tollgate.run(&["approvals", "list"])?, 0, "approvals list")?;
        let approvals: serde_json::Value =
            serde_json::from_str(&tollgate.capture(&["approvals", "list", "--json"])?)?;
        let id = approvals[0]["id"].as_str().with_context(|| format!("no pending approval to {round}"))?.to_string();
        expect(tollgate.run(&["approvals", "approve", &id, "--as", "demo-operator"])?, 0, "approve")?;
        let want = if round == "pause the campaign" { 3 } else { 0 };
        expect(tollgate.run(&["runs", "resume", &run_id])?, want, "resume")?;
    }
    expect(tollgate.run(&["runs", "show", &run_id])?, 0, "runs show")?;
    expect(tollgate.run(&["audit", "verify"])?, 0, "audit verify")?;
    println!("\nThe run's state and audit log are in {}.", tollgate.data_dir.display());
    drop(standins);
    Ok(())
}

fn latest_run(tollgate: &Tollgate) -> Result<String> {
    let runs: serde_json::Value =
        serde_json::from_str(&tollgate.capture(&["runs", "list", "--json", "--limit", "1"])?)?;
    runs[0]["id"].as_str().map(str::to_string).context("no run recorded")
}
