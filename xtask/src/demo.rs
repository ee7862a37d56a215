//! `cargo xtask demo`: the README's main command for now. Builds the plugins and the binaries,
//! starts the local HubSpot stand-in, and calls the CRM connector through the sandbox — the
//! plugin addresses `https://api.hubapi.com`, the operator's grants remap it to the stand-in
//! and inject the token at egress. Runs offline.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::plugins;

/// Kills the stand-ins when the demo ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run() -> Result<()> {
    let cargo = plugins::cargo();
    plugins::run(&plugins::Args::all())?;
    let status =
        Command::new(&cargo).args(["build", "--quiet", "-p", "tollgate", "-p", "tollgate-standins"]).status()?;
    if !status.success() {
        bail!("building tollgate failed ({status})");
    }
    let target = plugins::target_dir()?;
    let bin = target.join("debug");
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
    let urls: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("stand-in said `{line}`"))?;
    let hubspot = urls["hubspot"]["base_url"].as_str().context("no hubspot url")?;
    let token = urls["hubspot"]["token"].as_str().context("no hubspot token")?;
    println!("HubSpot stand-in at {hubspot}\n");

    let crm = target.join("plugins/crm.wasm");
    let tollgate = bin.join("tollgate");
    let grants = [
        "--allow-host".to_string(),
        "https://api.hubapi.com".to_string(),
        "--upstream".to_string(),
        format!("api.hubapi.com={hubspot}"),
        "--credential".to_string(),
        "hubspot=env:TOLLGATE_DEMO_HUBSPOT_TOKEN".to_string(),
    ];
    let calls = [
        ("search_contacts", r#"{"query": "northwind", "properties": ["email", "firstname", "lastname", "company"]}"#),
        ("add_note", r#"{"contact_id": "1001", "body": "Reviewed by the Tollgate demo: renewal call booked."}"#),
    ];
    for (tool, input) in calls {
        println!("$ tollgate plugin call {} {tool} --input '{input}' {}", crm.display(), grants.join(" "));
        let status = Command::new(&tollgate)
            .args(["plugin", "call"])
            .arg(&crm)
            .args([tool, "--input", input])
            .args(&grants)
            .env("TOLLGATE_DEMO_HUBSPOT_TOKEN", token)
            .status()?;
        if !status.success() {
            bail!("the {tool} call failed ({status})");
        }
        println!();
    }
    println!("$ tollgate plugin call {} search_contacts --input '{{}}'   # no grants", crm.display());
    let refused = Command::new(&tollgate)
        .args(["plugin", "call"])
        .arg(&crm)
        .args(["search_contacts", "--input", "{}"])
        .status()?;
    if refused.code() != Some(2) {
        bail!("an ungranted plugin must be refused at load (exit 2), got {refused}");
    }
    println!("\n(refused at load, as it should be: the operator granted no outbound host)");
    Ok(())
}
