//! Per-call resource limits: one [`Limits`] per plugin, with documented defaults, plus the
//! parsers for the human spellings (`64MiB`, `5s`) operators write.

use std::time::Duration;

/// What one call of a plugin may use. Every field has a default suited to connector-style tools
/// written in Rust; raise them per plugin for heavier runtimes (Python and JavaScript
/// components burn 20–300× more fuel per trivial call than Rust).
///
/// | field | default | enforced by |
/// |---|---|---|
/// | `fuel` | 2,000,000,000 | wasmtime fuel metering (`Trap::OutOfFuel`) |
/// | `timeout` | 10 s | epoch deadline for guest code *and* a deadline on every host wait (HTTP, clocks) |
/// | `memory_bytes` | 64 MiB | per linear memory, through the store's resource limiter |
/// | `instances` / `tables` / `memories` | 64 / 64 / 8 | store resource limiter |
/// | `table_elements` | 100,000 | store resource limiter |
/// | `input_bytes` / `output_bytes` | 1 MiB / 1 MiB | checked before and after the call |
/// | `stdio_bytes` | 64 KiB each for stdout and stderr | capped pipes; further writes see a closed stream |
/// | `log_lines` / `log_line_bytes` | 200 / 4 KiB | the log capability drops and counts the excess |
/// | `http_requests` | 16 | egress gate (`connection-limit-reached`) |
/// | `http_request_bytes` / `http_response_bytes` | 1 MiB / 8 MiB | body wrappers at egress |
/// | `kv_value_bytes` / `kv_keys` | 64 KiB / 1,000 | the kv capability |
///
/// The wasm stack size is a host-wide setting ([`crate::SandboxConfig::max_wasm_stack`]):
/// wasmtime fixes it per engine, not per store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub fuel: u64,
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub instances: usize,
    pub tables: usize,
    pub memories: usize,
    pub table_elements: usize,
    pub input_bytes: usize,
    pub output_bytes: usize,
    pub stdio_bytes: usize,
    pub log_lines: usize,
    pub log_line_bytes: usize,
    pub http_requests: usize,
    pub http_request_bytes: usize,
    pub http_response_bytes: usize,
    pub kv_value_bytes: usize,
    pub kv_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 2_000_000_000,
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            instances: 64,
            tables: 64,
            memories: 8,
            table_elements: 100_000,
            input_bytes: 1 << 20,
            output_bytes: 1 << 20,
            stdio_bytes: 64 << 10,
            log_lines: 200,
            log_line_bytes: 4 << 10,
            http_requests: 16,
            http_request_bytes: 1 << 20,
            http_response_bytes: 8 << 20,
            kv_value_bytes: 64 << 10,
            kv_keys: 1_000,
        }
    }
}

/// Hard ceilings no plugin's limits may exceed: beyond these a setting is a mistake, not a
/// choice. The memory ceiling is also the pooling allocator's slot size.
pub const MAX_MEMORY_BYTES: usize = 4 << 30;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl Limits {
    /// Checks the limits are usable, naming the first absurd field.
    pub fn validate(&self) -> Result<(), String> {
        if self.fuel == 0 {
            return Err("fuel must be greater than 0".into());
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(format!("timeout must be between 1ms and {}s", MAX_TIMEOUT.as_secs()));
        }
        if self.memory_bytes < (1 << 16) || self.memory_bytes > MAX_MEMORY_BYTES {
            return Err(format!("memory must be between 64KiB and {}", format_bytes(MAX_MEMORY_BYTES)));
        }
        if self.instances == 0 || self.memories == 0 {
            return Err("instances and memories must be at least 1".into());
        }
        Ok(())
    }
}

/// Parses `65536`, `64KiB`, `64MiB`, `1GiB`, `10MB` (decimal units are accepted too).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("`{s}` is not a size (e.g. 64MiB)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown size unit `{other}` in `{s}` (use B, KiB, MiB, GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses `250ms`, `5s`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration (e.g. 5s, 250ms)"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        other => Err(format!("unknown duration unit `{other}` in `{s}` (use ms, s, m)")),
    }
}

/// Cuts guest-chosen text to at most `max` bytes (on a character boundary), marking the cut:
/// every string a guest can hand the host is bounded through this one function.
pub(crate) fn clip_text(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("…[truncated]");
    }
    s
}

pub fn format_bytes(n: usize) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{}GiB", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("10mb"), Ok(10_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("12 parsecs").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("1h").is_err());
        assert_eq!(format_bytes(64 << 20), "64MiB");
    }

    #[test]
    fn defaults_are_valid_and_absurd_values_are_not() {
        assert!(Limits::default().validate().is_ok());
        let bad = Limits { memory_bytes: 8 << 30, ..Limits::default() };
        assert!(bad.validate().unwrap_err().contains("memory"));
        let bad = Limits { timeout: Duration::ZERO, ..Limits::default() };
        assert!(bad.validate().unwrap_err().contains("timeout"));
    }
}
