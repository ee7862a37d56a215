//! `tollgate-standins`: runs the HubSpot, Meta and SendGrid stand-ins on ephemeral loopback
//! ports, prints where they are and which tokens they accept, and serves until Ctrl-C or
//! SIGTERM. Request logs go to stderr (`RUST_LOG`, default `info`).

use anyhow::Context as _;
use clap::Parser;
use serde_json::json;
use tollgate_standins::{StandIns, Tokens};

/// Local stand-ins for the HubSpot CRM, Meta Marketing and SendGrid Mail Send APIs.
#[derive(Debug, Parser)]
#[command(name = "tollgate-standins", version)]
struct Args {
    /// Bearer token the HubSpot stand-in accepts.
    #[arg(long, env = "TOLLGATE_HUBSPOT_TOKEN", default_value = "hubspot-test-token")]
    hubspot_token: String,
    /// Access token the Meta stand-in accepts.
    #[arg(long, env = "TOLLGATE_META_TOKEN", default_value = "meta-test-token")]
    meta_token: String,
    /// API key the SendGrid stand-in accepts.
    #[arg(long, env = "TOLLGATE_SENDGRID_TOKEN", default_value = "SG.test-token")]
    sendgrid_token: String,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let tokens = Tokens { hubspot: args.hubspot_token, meta: args.meta_token, sendgrid: args.sendgrid_token };
    let standins = StandIns::start(tokens.clone()).await.context("starting the stand-ins")?;
    let vendors = [
        ("hubspot", &standins.hubspot, &tokens.hubspot),
        ("meta", &standins.meta, &tokens.meta),
        ("sendgrid", &standins.sendgrid, &tokens.sendgrid),
    ];
    if args.json {
        let mut out = serde_json::Map::new();
        for (name, standin, token) in vendors {
            out.insert(name.to_owned(), json!({ "base_url": standin.base_url(), "token": token }));
        }
        println!("{}", serde_json::Value::Object(out));
    } else {
        for (name, standin, _) in vendors {
            println!("{name} {}", standin.base_url());
        }
        for (name, _, token) in vendors {
            println!("token {name} {token}");
        }
    }
    shutdown_signal().await?;
    tracing::info!("stopping the stand-ins");
    drop(standins);
    Ok(())
}
