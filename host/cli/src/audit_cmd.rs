//! `tollgate audit verify|export`: check the hash chain and its signed checkpoints, and export
//! the log for other systems.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;

use crate::data::DataArgs;
use tollgate_store::Store;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every record's hash and link, and that the newest signed checkpoint (kept beside
    /// the signing key, outside the database) is still covered. Exit 1 names the first bad record.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Write the log, one JSON record per line.
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Only this run's records (the chain is still the whole log's).
        #[arg(long)]
        run: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub async fn run(cmd: AuditCommand, data: &DataArgs) -> anyhow::Result<ExitCode> {
    let store = data.open_unchecked().await?;
    match cmd {
        AuditCommand::Verify { json } => {
            match tollgate_store::audit::verify_store_with(&*store, store.signer()).await {
                Ok(report) => {
                    if json {
                        outln!("{}", json!({"ok": true, "report": report}));
                    } else {
                        outln!(
                            "audit log intact: {} records, head #{} {}, {} signed checkpoints checked (newest #{})",
                            report.records,
                            report.head_seq,
                            report.head_hash,
                            report.checkpoints_checked,
                            report.newest_checkpoint_seq.map(|s| s.to_string()).unwrap_or_else(|| "none".into())
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(tollgate_store::audit::VerifyStoreError::Tamper(t)) => {
                    if json {
                        outln!("{}", json!({"ok": false, "tamper": t}));
                    } else {
                        outln!("audit log TAMPERED: record #{}: {:?}: {}", t.seq, t.kind, t.message);
                    }
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        AuditCommand::Export { format, run, output } => {
            if format != "jsonl" {
                bail!("unknown format `{format}` (supported: jsonl)");
            }
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut from = 1u64;
            loop {
                let page = store.audit_records(from, 1000).await?;
                let Some(last) = page.last() else { break };
                from = last.seq + 1;
                let page: Vec<_> = page.into_iter().filter(|r| run.is_none() || r.run_id == run).collect();
                match tollgate_store::audit::export_jsonl(page, &mut out) {
                    // `tollgate audit export | head` closing the pipe is not an error.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
                    other => other?,
                };
            }
            match out.flush() {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    }
}
