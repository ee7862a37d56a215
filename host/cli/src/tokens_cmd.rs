//! `tollgate tokens create|list|revoke`: API tokens for `tollgate serve`, made on this data
//! dir's store by whoever can open it (they hold the audit key the token rows are signed with).
//! A new token is printed once; the store keeps only its hash.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use tollgate_server::Role;
use tollgate_server::token;

use crate::data::{DataArgs, os_user};
use crate::render::{self, t};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Make a token; it is printed once.
    Create {
        /// Who the token acts as: the name audit records give (letters, digits, `.`, `_`, `-`, `@`).
        #[arg(long)]
        name: String,
        /// admin, operator, approver, auditor or viewer.
        #[arg(long)]
        role: String,
        /// Valid for this long (`90d`, `12h`); default: until revoked.
        #[arg(long)]
        expires: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id (`tok_…`).
    Revoke { id: String },
}

pub async fn run(cmd: TokensCommand, data: &DataArgs) -> anyhow::Result<ExitCode> {
    let store = data.open().await?;
    let by = format!("local:{}", os_user());
    match cmd {
        TokensCommand::Create { name, role, expires, json } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be admin, operator, approver, auditor or viewer"))?;
            let valid_for = expires
                .as_deref()
                .map(tollgate_contract::units::parse_duration)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
            let minted = token::create(&*store, &name, role, valid_for, &by).await?;
            if json {
                outln!(
                    "{}",
                    json!({"id": minted.record.id, "name": minted.record.name, "role": role, "token": minted.token})
                );
            } else {
                outln!("{}", minted.token);
                errln!(
                    "token {} for {} ({role}): shown once, store it now; send it as `Authorization: Bearer <token>`",
                    t(&minted.record.id),
                    t(&minted.record.name)
                );
            }
        }
        TokensCommand::List { json } => {
            let tokens = store.tokens().await?;
            let now = token::now_ms();
            if json {
                let rows: Vec<_> = tokens
                    .iter()
                    .map(|k| {
                        json!({"id": k.id, "name": k.name, "role": k.role, "created_at": k.created_at,
                        "created_by": k.created_by, "expires_at": k.expires_at, "revoked_at": k.revoked_at,
                        "live": token::live(k, now)})
                    })
                    .collect();
                outln!("{}", render::json(&rows)?);
            } else if tokens.is_empty() {
                outln!("no tokens");
            }
            for k in tokens.iter().filter(|_| !json) {
                let state = match (k.revoked_at, token::live(k, now)) {
                    (Some(_), _) => "revoked",
                    (None, true) => "live",
                    (None, false) => "expired",
                };
                outln!("{}  {:<24} {:<9} {state:<8} by {}", t(&k.id), t(&k.name), t(&k.role), t(&k.created_by));
            }
        }
        TokensCommand::Revoke { id } => {
            if !token::revoke(&*store, &id, &by).await? {
                errln!("no live token {}", t(&id));
                return Ok(ExitCode::from(1));
            }
            outln!("revoked {}", t(&id));
        }
    }
    Ok(ExitCode::SUCCESS)
}
