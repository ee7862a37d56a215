//! The server's config file (`tollgate serve --config FILE`): TOML, unknown keys refused, every
//! error with `file:line:col`. Paths in it are relative to the file. The JSON Schema of this
//! format is generated from these types (`schemas/server.schema.json`, checked by a test).
//!
//! Defaults, all of them:
//! - `listen = "127.0.0.1:8420"`;
//! - no `[tls]`: plain HTTP, which is refused on anything but a loopback address unless
//!   `allow_plain_http = true` (behind a TLS-terminating proxy);
//! - `data_dir`: the command line's (`--data-dir`, `TOLLGATE_DATA_DIR`, then the XDG data dir);
//! - `log_format = "text"`;
//! - `[limits] max_body = "1MiB"`, `requests_per_minute = 600` per token,
//!   `failed_auth_per_minute = 30` per client address, `drain = "30s"` (how long a shutdown
//!   waits for requests in flight);
//! - `[worker] expire_every = "5s"`: how often approvals past their expiry are expired;
//!   `lease = "30s"`: how long a server's hold on a run lasts unless renewed; `max_runs = 32`:
//!   most runs advancing at once;
//! - no `workflows_dir`: deploying over the API is off (`tollgate workflows deploy` on the
//!   server's host still deploys into its data dir);
//! - `[runs]`: no model override and no upstream remaps — runs use each agent's `model` and
//!   reach the real hosts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// What `tollgate serve` reads from its config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Tollgate server configuration", description = "The file `tollgate serve --config` reads.")]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:8420`.
    #[serde(default = "default_listen")]
    #[schemars(with = "String")]
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate and key (PEM). Without it the server speaks plain
    /// HTTP, which it refuses on a non-loopback address unless `allow_plain_http` is set.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Allow plain HTTP on a non-loopback address (for a TLS-terminating proxy in front).
    #[serde(default)]
    pub allow_plain_http: bool,
    /// The data directory (store, audit key). Default: the command line's.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// `text` (default) or `json` log lines on stderr.
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub worker: WorkerConfig,
    /// The folder `POST /v1/workflows` deploys from: a deploy names a workflow file inside it,
    /// and the workflow and every file it names must be inside it too. Default: none —
    /// deploying over the API is off.
    #[serde(default)]
    pub workflows_dir: Option<PathBuf>,
    #[serde(default)]
    pub runs: RunsConfig,
}

/// `[runs]`: what runs started by this server run with, for every workflow. Only the server's
/// operator sets these (an API caller cannot point a plugin's credentials at another host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunsConfig {
    /// A model spec for every agent, overriding each agent's `model` (as `tollgate run --model`).
    #[serde(default)]
    pub model: Option<String>,
    /// Host → base URL remaps (as `tollgate run --upstream`): plugins keep addressing the real
    /// host and its credentials stay bound to it. For stand-ins and staging servers.
    #[serde(default)]
    pub upstreams: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// How often pending approvals past their expiry are expired (and their runs escalated),
    /// e.g. `5s`. Default `5s`; between `100ms` and `10m`.
    #[serde(default = "default_expire_every")]
    pub expire_every: String,
    /// How long a server's hold on a run it advances lasts unless renewed (every third of
    /// it): another server on the same store takes a run over once it runs out. Default
    /// `30s`; between `1s` and `10m`.
    #[serde(default = "default_lease")]
    pub lease: String,
    /// Most runs advancing at once; more wait their turn. Default 32; 1..=1024.
    #[serde(default = "default_max_runs")]
    pub max_runs: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig { expire_every: default_expire_every(), lease: default_lease(), max_runs: default_max_runs() }
    }
}

fn default_max_runs() -> u32 {
    32
}

fn default_lease() -> String {
    "30s".into()
}

fn default_expire_every() -> String {
    "5s".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, e.g. `1MiB`. Default `1MiB`; at most `64MiB`.
    #[serde(default = "default_max_body")]
    pub max_body: String,
    /// Requests per minute per token (health checks are not counted). Default 600.
    #[serde(default = "default_rate")]
    pub requests_per_minute: u32,
    /// Failed authentications per minute from one client address; past it, that address gets
    /// 429 without a token lookup until the minute ends. Default 30.
    #[serde(default = "default_failed_auth")]
    pub failed_auth_per_minute: u32,
    /// How long a shutdown (SIGTERM, Ctrl-C) waits for requests in flight, e.g. `30s`.
    #[serde(default = "default_drain")]
    pub drain: String,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body: default_max_body(),
            requests_per_minute: default_rate(),
            failed_auth_per_minute: default_failed_auth(),
            drain: default_drain(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8420))
}
fn default_max_body() -> String {
    "1MiB".into()
}
fn default_rate() -> u32 {
    600
}
fn default_failed_auth() -> u32 {
    30
}
fn default_drain() -> String {
    "30s".into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            tls: None,
            allow_plain_http: false,
            data_dir: None,
            log_format: LogFormat::Text,
            limits: LimitsConfig::default(),
            worker: WorkerConfig::default(),
            workflows_dir: None,
            runs: RunsConfig::default(),
        }
    }
}

/// The limits as numbers, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_body: usize,
    pub requests_per_minute: u32,
    pub failed_auth_per_minute: u32,
    pub drain: Duration,
    pub expire_every: Duration,
    pub lease: Duration,
    pub max_runs: usize,
}

/// Largest `max_body` accepted.
const MAX_BODY_CEILING: usize = 64 << 20;

/// Why a config file was refused: `file:line:col: message` where a position applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ServerConfig {
    /// Reads and checks `path`. Relative paths inside are resolved against its directory.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read the config file: {e}", path.display())))?;
        let mut config = ServerConfig::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(tls) = &mut config.tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
        }
        if let Some(dir) = &mut config.data_dir {
            *dir = base.join(&*dir);
        }
        if let Some(dir) = &mut config.workflows_dir {
            *dir = base.join(&*dir);
        }
        Ok(config)
    }

    /// Parses config text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<ServerConfig, ConfigError> {
        let config: ServerConfig = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|span| line_col(text, span.start)).unwrap_or((1, 1));
            ConfigError(format!("{}:{}:{}: {}", path.display(), at.0, at.1, e.message()))
        })?;
        config.limits(path, text)?;
        if config.tls.is_none() && !config.allow_plain_http && !config.listen.ip().is_loopback() {
            return Err(ConfigError(format!(
                "{}:{}: `listen = \"{}\"` is not a loopback address: add a [tls] section (cert, key), or set \
                 `allow_plain_http = true` if a TLS-terminating proxy is in front",
                path.display(),
                key_position(text, "listen"),
                config.listen
            )));
        }
        Ok(config)
    }

    /// The limits as numbers; `path` and `text` place an error.
    pub fn limits(&self, path: &Path, text: &str) -> Result<Limits, ConfigError> {
        let at = |key: &str| format!("{}:{}", path.display(), key_position(text, key));
        let max_body = tollgate_contract::units::parse_bytes(&self.limits.max_body)
            .map_err(|e| ConfigError(format!("{}: max_body: {e}", at("max_body"))))?;
        if max_body == 0 || max_body > MAX_BODY_CEILING {
            return Err(ConfigError(format!("{}: max_body must be between 1B and 64MiB", at("max_body"))));
        }
        if self.limits.requests_per_minute == 0 {
            return Err(ConfigError(format!("{}: requests_per_minute must be at least 1", at("requests_per_minute"))));
        }
        if self.limits.failed_auth_per_minute == 0 {
            return Err(ConfigError(format!(
                "{}: failed_auth_per_minute must be at least 1",
                at("failed_auth_per_minute")
            )));
        }
        let drain = tollgate_contract::units::parse_duration(&self.limits.drain)
            .map_err(|e| ConfigError(format!("{}: drain: {e}", at("drain"))))?;
        let expire_every = tollgate_contract::units::parse_duration(&self.worker.expire_every)
            .map_err(|e| ConfigError(format!("{}: expire_every: {e}", at("expire_every"))))?;
        if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&expire_every) {
            return Err(ConfigError(format!("{}: expire_every must be between 100ms and 10m", at("expire_every"))));
        }
        let lease = tollgate_contract::units::parse_duration(&self.worker.lease)
            .map_err(|e| ConfigError(format!("{}: lease: {e}", at("lease"))))?;
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&lease) {
            return Err(ConfigError(format!("{}: lease must be between 1s and 10m", at("lease"))));
        }
        if !(1..=1024).contains(&self.worker.max_runs) {
            return Err(ConfigError(format!("{}: max_runs must be between 1 and 1024", at("max_runs"))));
        }
        Ok(Limits {
            max_body,
            requests_per_minute: self.limits.requests_per_minute,
            failed_auth_per_minute: self.limits.failed_auth_per_minute,
            drain,
            expire_every,
            lease,
            max_runs: self.worker.max_runs as usize,
        })
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// `line:col` of the first line that assigns `key`, or `1:1` when it is not written (a default).
fn key_position(text: &str, key: &str) -> String {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('=')) {
            let (l, c) = line_col(text, offset + (line.len() - trimmed.len()));
            return format!("{l}:{c}");
        }
        offset += line.len();
    }
    "1:1".into()
}

/// The config format's JSON Schema, as published in `schemas/server.schema.json`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ServerConfig)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, String> {
        ServerConfig::parse(text, Path::new("server.toml")).map_err(|e| e.0)
    }

    #[test]
    fn an_empty_file_is_every_default() {
        let c = parse("").unwrap();
        assert_eq!(c, ServerConfig::default());
        let limits = c.limits(Path::new("x"), "").unwrap();
        let want = Limits {
            max_body: 1 << 20,
            requests_per_minute: 600,
            failed_auth_per_minute: 30,
            drain: Duration::from_secs(30),
            expire_every: Duration::from_secs(5),
            lease: Duration::from_secs(30),
            max_runs: 32,
        };
        assert_eq!(limits, want);
    }

    #[test]
    fn mistakes_are_placed_at_file_line_col() {
        assert_eq!(
            parse("listen = \"127.0.0.1:1\"\nlisten_on = 1\n").unwrap_err(),
            "server.toml:2:1: unknown field `listen_on`, expected one of `listen`, `tls`, `allow_plain_http`, `data_dir`, `log_format`, `limits`, `worker`, `workflows_dir`, `runs`"
        );
        assert!(parse("listen = \"nowhere\"").unwrap_err().starts_with("server.toml:1:10: invalid socket address"));
        assert!(parse("log_format = \"xml\"").unwrap_err().starts_with("server.toml:1:14: unknown variant `xml`"));
        let e = parse("[limits]\nmax_body = \"1TiB\"\n").unwrap_err();
        assert!(e.starts_with("server.toml:2:1: max_body"), "{e}");
        let e = parse("[limits]\ndrain = \"30\"\n").unwrap_err();
        assert!(e.starts_with("server.toml:2:1: drain"), "{e}");
        let e = parse("[limits]\nrequests_per_minute = 0\n").unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn plain_http_off_loopback_needs_tls_or_an_explicit_yes() {
        let e = parse("listen = \"0.0.0.0:8420\"").unwrap_err();
        assert!(e.starts_with("server.toml:1:1: `listen = \"0.0.0.0:8420\"` is not a loopback address"), "{e}");
        assert!(parse("listen = \"0.0.0.0:8420\"\nallow_plain_http = true").is_ok());
        assert!(parse("listen = \"[::]:8420\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"").is_ok());
        assert!(parse("listen = \"[::1]:8420\"").is_ok());
    }

    #[test]
    fn paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "data_dir = \"data\"\n[tls]\ncert = \"c.pem\"\nkey = \"/abs/k.pem\"\n").unwrap();
        let c = ServerConfig::load(&file).unwrap();
        assert_eq!(c.data_dir, Some(dir.path().join("data")));
        let tls = c.tls.unwrap();
        assert_eq!((tls.cert, tls.key), (dir.path().join("c.pem"), PathBuf::from("/abs/k.pem")));
    }

    /// `schemas/server.schema.json` is generated; `TOLLGATE_BLESS=1` rewrites it.
    #[test]
    fn schema_file_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/server.schema.json");
        let text = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var_os("TOLLGATE_BLESS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(on_disk == text, "{} is stale: run `TOLLGATE_BLESS=1 cargo test -p tollgate-server`", path.display());
    }
}
