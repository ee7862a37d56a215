//! Per-call resource limits: one [`Limits`] per plugin, with documented defaults and hard
//! ceilings, and [`Limits::validate`]. The sizes and durations operators write for them are
//! parsed in [`crate::units`].

use std::time::Duration;

use crate::units::format_bytes;

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
/// The wasm stack size is a host-wide setting (the sandbox's `SandboxConfig::max_wasm_stack`):
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
/// The smallest memory limit: one wasm page.
pub const MIN_MEMORY_BYTES: usize = 1 << 16;

/// Why [`Limits::validate`] refused a set of limits: the first absurd field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("fuel must be greater than 0")]
    Fuel,
    #[error("timeout must be between 1ms and {}s", MAX_TIMEOUT.as_secs())]
    Timeout,
    #[error("memory must be between {} and {}", format_bytes(MIN_MEMORY_BYTES), format_bytes(MAX_MEMORY_BYTES))]
    Memory,
    #[error("instances and memories must be at least 1")]
    Instances,
}

impl Limits {
    /// Checks the limits are usable, naming the first absurd field.
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.fuel == 0 {
            return Err(LimitsError::Fuel);
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(LimitsError::Timeout);
        }
        if self.memory_bytes < MIN_MEMORY_BYTES || self.memory_bytes > MAX_MEMORY_BYTES {
            return Err(LimitsError::Memory);
        }
        if self.instances == 0 || self.memories == 0 {
            return Err(LimitsError::Instances);
        }
        Ok(())
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
    fn defaults_are_valid_and_absurd_values_are_not() {
        assert!(Limits::default().validate().is_ok());
        let bad = Limits { memory_bytes: 8 << 30, ..Limits::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("memory"));
        let bad = Limits { timeout: Duration::ZERO, ..Limits::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("timeout"));
    }

    #[test]
    fn timeouts_serialise_as_milliseconds() {
        let json = serde_json::to_value(Limits::default()).unwrap();
        assert_eq!(json["timeout"], 10_000);
        let back: Limits = serde_json::from_value(json).unwrap();
        assert_eq!(back, Limits::default());
    }
}
