//! Identifiers and time. Run ids sort by creation time; approval ids are short enough to type.

use rand_core::{OsRng, RngCore};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

fn base32(mut n: u128, len: usize) -> String {
    let mut out = vec![b'0'; len];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n & 31) as usize];
        n >>= 5;
    }
    String::from_utf8(out).unwrap_or_default()
}

fn random_u64() -> u64 {
    OsRng.next_u64()
}

/// `run_` + 10 chars of milliseconds + 8 random chars: sortable by start time.
pub fn run_id(now_ms: i64) -> String {
    format!("run_{}{}", base32(now_ms.max(0) as u128, 10), base32(random_u64() as u128, 8))
}

/// `ap_` + 10 random chars.
pub fn approval_id() -> String {
    format!("ap_{}", base32(random_u64() as u128, 10))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The idempotency key of a tool call: stable across retries and restarts.
pub fn idempotency_key(run_id: &str, step: u32, index: u32) -> String {
    format!("{run_id}:{step}:{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_differ() {
        let a = run_id(1_700_000_000_000);
        let b = run_id(1_700_000_000_001);
        assert!(a < b, "{a} {b}");
        assert_ne!(run_id(5), run_id(5));
        assert_eq!(a.len(), 22);
        assert!(approval_id().starts_with("ap_"));
    }
}
