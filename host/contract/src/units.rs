//! The one syntax for durations and sizes, used by the CLI flags (`--timeout`, `--wait`,
//! `--memory`), workflow files (`timeout`, `deadline`, `per`, `memory`, …) and everything else.
//!
//! **Durations** ([`parse_duration`], [`format_duration`]): a whole number followed by a unit.
//!
//! | unit | meaning |
//! |---|---|
//! | `ms` | milliseconds |
//! | `s` | seconds |
//! | `m` or `min` | minutes |
//! | `h` | hours |
//! | `d` | days (86,400 s) |
//!
//! Examples: `250ms`, `30s`, `5m`, `24h`, `7d`. Units are lower-case. Whitespace around the
//! value and between the number and the unit is ignored (`5 s`). A bare number is an error
//! everywhere — `30` could be seconds or minutes — and the message suggests a unit
//! (``` `30` has no unit (write e.g. 30s or 30m) ```). A value too large for a [`Duration`]
//! is an error, never a wrap. [`format_duration`] writes the shortest exact spelling, which
//! parses back to the same value.
//!
//! **Sizes** ([`parse_bytes`], [`format_bytes`]): a whole number of bytes, optionally followed
//! by a unit, case-insensitive: `B`; binary `K`/`KiB`, `M`/`MiB`, `G`/`GiB`; decimal `KB`, `MB`,
//! `GB`. Examples: `65536`, `64KiB`, `64MiB`, `10MB`. A bare number is bytes (unambiguous). A
//! size that does not fit a `usize` is an error.

use std::time::Duration;

/// The duration syntax as a regular expression, for the workflow's JSON Schema. It matches the
/// canonical spellings; [`parse_duration`] also ignores surrounding whitespace.
pub const DURATION_REGEX: &str = "^[0-9]+ ?(ms|s|min|m|h|d)$";
/// The size syntax as a regular expression, for the workflow's JSON Schema.
pub const BYTES_REGEX: &str = "^[0-9]+ ?([KkMmGg]([Ii]?[Bb])?|[Bb])?$";

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{text}` is not a duration (e.g. 30s, 5m, 24h, 7d)")]
    NotADuration { text: String },
    #[error("`{number}` has no unit (write e.g. {number}s or {number}m)")]
    NoUnit { number: String },
    #[error("unknown duration unit `{unit}` in `{text}` (use ms, s, m, h, d)")]
    UnknownUnit { unit: String, text: String },
    #[error("`{text}` is too long")]
    TooLong { text: String },
}

/// Why a size did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("`{text}` is not a size (e.g. 64MiB)")]
    NotASize { text: String },
    #[error("unknown size unit `{unit}` in `{text}` (use B, KiB, MiB, GiB)")]
    UnknownUnit { unit: String, text: String },
    #[error("`{text}` is too large")]
    TooLarge { text: String },
}

/// Splits `  30 s ` into (`30`, `s`): the leading digits and the rest, both trimmed.
fn split_number(s: &str) -> (&str, &str) {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    (num, unit.trim())
}

/// Parses a duration in the syntax of the module docs: `250ms`, `30s`, `5m`, `24h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let text = s.trim();
    let (num, unit) = split_number(text);
    if num.is_empty() {
        return Err(DurationError::NotADuration { text: text.to_string() });
    }
    let seconds_per = match unit {
        "" => return Err(DurationError::NoUnit { number: num.to_string() }),
        "ms" => None,
        "s" => Some(1),
        "m" | "min" => Some(60),
        "h" => Some(3_600),
        "d" => Some(86_400),
        other => return Err(DurationError::UnknownUnit { unit: other.to_string(), text: text.to_string() }),
    };
    let too_long = || DurationError::TooLong { text: text.to_string() };
    let n: u64 = num.parse().map_err(|_| too_long())?;
    match seconds_per {
        None => Ok(Duration::from_millis(n)),
        Some(per) => n.checked_mul(per).map(Duration::from_secs).ok_or_else(too_long),
    }
}

/// The shortest exact spelling: `10m`, `7d`, `1500ms`. Sub-millisecond parts are dropped.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= size && s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

/// Parses a size in the syntax of the module docs: `65536`, `64KiB`, `64MiB`, `1GiB`, `10MB`.
pub fn parse_bytes(s: &str) -> Result<usize, SizeError> {
    let text = s.trim();
    let (num, unit) = split_number(text);
    if num.is_empty() {
        return Err(SizeError::NotASize { text: text.to_string() });
    }
    let mult: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => return Err(SizeError::UnknownUnit { unit: other.to_string(), text: text.to_string() }),
    };
    let too_large = || SizeError::TooLarge { text: text.to_string() };
    let n: usize = num.parse().map_err(|_| too_large())?;
    n.checked_mul(mult).ok_or_else(too_large)
}

/// The largest binary unit that divides `n` exactly: `64MiB`, `4GiB`, `1500B`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 5 s "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn a_bare_number_is_an_error_that_suggests_a_unit() {
        let e = parse_duration("30").unwrap_err();
        assert_eq!(e, DurationError::NoUnit { number: "30".into() });
        assert_eq!(e.to_string(), "`30` has no unit (write e.g. 30s or 30m)");
        assert!(parse_duration(" 3 ").unwrap_err().to_string().contains("no unit"));
    }

    #[test]
    fn unknown_units_and_non_numbers_are_errors() {
        let e = parse_duration("3w").unwrap_err();
        assert_eq!(e.to_string(), "unknown duration unit `w` in `3w` (use ms, s, m, h, d)");
        for bad in ["1H", "5sec", "1.5s", "5s5", "1h30m"] {
            assert!(matches!(parse_duration(bad), Err(DurationError::UnknownUnit { .. })), "{bad}");
        }
        for bad in ["h", "", "  ", "s5", "+5s", "-5s"] {
            assert!(matches!(parse_duration(bad), Err(DurationError::NotADuration { .. })), "{bad}");
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let max = u64::MAX;
        assert_eq!(parse_duration(&format!("{max}s")), Ok(Duration::from_secs(max)));
        assert_eq!(parse_duration(&format!("{max}ms")), Ok(Duration::from_millis(max)));
        for bad in [format!("{max}m"), format!("{max}h"), format!("{max}d"), "99999999999999999999999s".into()] {
            assert!(matches!(parse_duration(&bad), Err(DurationError::TooLong { .. })), "{bad}");
        }
        assert!(parse_duration("213503982334601d").is_ok());
        assert!(parse_duration("213503982334602d").unwrap_err().to_string().contains("too long"));
    }

    #[test]
    fn durations_format_back_exactly() {
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for d in [Duration::from_millis(1), Duration::from_secs(3_600), Duration::from_secs(86_399)] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("10mb"), Ok(10_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        let e = parse_bytes("12 parsecs").unwrap_err();
        assert_eq!(e.to_string(), "unknown size unit `parsecs` in `12 parsecs` (use B, KiB, MiB, GiB)");
        assert!(matches!(parse_bytes("MiB"), Err(SizeError::NotASize { .. })));
        assert!(matches!(parse_bytes("99999999999999999999999"), Err(SizeError::TooLarge { .. })));
        assert!(matches!(parse_bytes(&format!("{}GiB", usize::MAX >> 20)), Err(SizeError::TooLarge { .. })));
        assert_eq!(format_bytes(64 << 20), "64MiB");
        assert_eq!(format_bytes(4 << 30), "4GiB");
        assert_eq!(format_bytes(1500), "1500B");
    }
}
