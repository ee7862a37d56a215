//! `cargo xtask cassettes`: re-records the connectors' cassettes (`plugins/connectors/*/tests/`)
//! against fresh local stand-ins of HubSpot, Meta and SendGrid, with `tollgate plugin test
//! --record`. CI replays them (`tollgate plugin test` with no network); record again after
//! changing a connector's requests or its test files, and review the diff.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{demo, plugins};

/// Each connector: its plugin, the host its stand-in plays, the vendor key of
/// `tollgate-standins --json`, and its credential.
const CONNECTORS: [(&str, &str, &str, &str); 3] = [
    ("crm", "api.hubapi.com", "hubspot", "hubspot"),
    ("ads", "graph.facebook.com", "meta", "meta"),
    ("email", "api.sendgrid.com", "sendgrid", "sendgrid"),
];

pub fn run() -> Result<()> {
    let bin = demo::build_all()?;
    let target = plugins::target_dir()?;
    for (plugin, host, vendor, credential) in CONNECTORS {
        // Fresh stand-ins per connector: recorded state never depends on another's cases.
        let (standins, urls) = demo::start_standins(&bin)?;
        let field =
            |key: &str| urls[vendor][key].as_str().map(str::to_string).with_context(|| format!("no {vendor} {key}"));
        let env = format!("TOLLGATE_CASSETTE_{}", vendor.to_uppercase());
        let tests = format!("plugins/connectors/{plugin}/tests");
        let status = Command::new(bin.join("tollgate"))
            .args(["plugin", "test"])
            .arg(target.join("plugins").join(format!("{plugin}.wasm")))
            .args(["--cases", "0", "--tests", &tests, "--record"])
            .args(["--upstream", &format!("{host}={}", field("base_url")?)])
            .args(["--credential", &format!("{credential}=env:{env}")])
            .env(&env, field("token")?)
            .status()?;
        if !status.success() {
            bail!("recording {tests} failed ({status})");
        }
        drop(standins);
    }
    println!("\nRe-recorded; review with `git diff plugins/connectors/*/tests`.");
    Ok(())
}
