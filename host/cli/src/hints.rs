//! What to type next, for the mistakes `plugin call` sees most: a capability whose flag is
//! missing, a request to a host no `--allow-host` grants, an `--upstream` for a host that is
//! not granted. The sandbox says what it refused, in terms of grants; only the CLI knows which
//! of its flags makes the grant, so the fix is worded here.

use tollgate_contract::pattern::{HostPattern, Scheme, Target};
use tollgate_sandbox::{CallError, CallReport, Capability, LoadError, Manifest};

/// The fix for a load refused because a capability was not granted. `declared_hosts` are the
/// plugin's manifest hosts (for http), when they could be read.
pub fn not_granted(err: &LoadError, declared_hosts: Option<&[String]>) -> Option<String> {
    let LoadError::Import(tollgate_sandbox::capability::ImportError::NotGranted { capability, .. }) = err else {
        return None;
    };
    Some(match capability {
        Capability::Kv => "add `--kv` to grant the key-value store".to_owned(),
        Capability::Log => "drop `--no-log`: the plugin imports log".to_owned(),
        Capability::Secrets => "add `--secret NAME=env:VAR` for each secret the plugin reads".to_owned(),
        Capability::Http => match declared_hosts.filter(|h| !h.is_empty()) {
            Some(hosts) => {
                let flags: Vec<String> = hosts.iter().map(|h| format!("--allow-host {}", flag_value(h))).collect();
                format!("add `{}` (the hosts the plugin declares)", flags.join(" "))
            }
            None => "add `--allow-host https://HOST` for each host the plugin calls".to_owned(),
        },
    })
}

/// `--upstream HOST=URL` flags whose HOST no `--allow-host` grants: the remap could never be
/// used, since the gate refuses the host before it looks for an upstream.
pub fn ungranted_upstreams(upstream_hosts: &[&str], granted: &[HostPattern]) -> Option<String> {
    let missing: Vec<&str> = upstream_hosts
        .iter()
        .copied()
        .filter(|host| {
            let name = Target::new(Scheme::Https, host, None).host_match();
            !granted.iter().any(|p| p.host.covers(&name))
        })
        .collect();
    if missing.is_empty() {
        return None;
    }
    let flags: Vec<String> = missing.iter().map(|h| format!("--allow-host https://{h}")).collect();
    Some(format!(
        "--upstream for {} has no effect without a grant for that host: add `{}` (the upstream replaces where \
         the request goes, not whether it may go)",
        missing.join(", "),
        flags.join(" ")
    ))
}

/// One line per request the gate refused: the reason and, where a flag fixes it, the flag.
pub fn egress_denials(report: &CallReport, manifest: &Manifest, granted: &[HostPattern]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for record in &report.egress {
        let (Some(reason), Some(scheme)) = (&record.denied, Scheme::parse(&record.scheme)) else { continue };
        let target = Target::new(scheme, &record.host, Some(record.port));
        let declared = manifest.hosts.iter().filter_map(|h| HostPattern::parse(h).ok()).any(|p| p.matches(&target));
        let line = if !declared {
            format!(
                "{target} is not among the hosts the plugin declares ({}): its manifest must list it",
                manifest.hosts.join(", ")
            )
        } else if !granted.iter().any(|p| p.matches(&target)) {
            format!("{target} is not granted: add `--allow-host {}`", flag_value(&target_pattern(&target)))
        } else {
            format!("{target}: {reason}")
        };
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

/// What a trap most likely means, read from the guest backtrace: a stubbed WASI function the
/// plugin reached through an ordinary library call. The names are those of wasi-libc and of
/// the WIT functions, which every engine's stubs keep.
pub fn trap(err: &CallError) -> Option<&'static str> {
    let CallError::Trap { backtrace: Some(backtrace), .. } = err else { return None };
    let reached = |names: &[&str]| names.iter().any(|n| backtrace.contains(n));
    if reached(&[
        "wall_clock_now",
        "monotonic_clock_now",
        "clock_gettime",
        "clock_time_get",
        "wall-clock",
        "monotonic-clock",
    ]) {
        Some(
            "the plugin read the clock (Python `time.time()`, `datetime.now()`; JavaScript `Date.now()`, \
             `new Date()`), which its component has no clock for: take the time as tool input",
        )
    } else if reached(&["random_get", "getentropy", "get_random_bytes", "get-random-bytes", "insecure-random"]) {
        Some(
            "the plugin asked for randomness (Python `random`, `uuid.uuid4()`, `secrets`; JavaScript \
             `Math.random()`, `crypto`), which its component has no source of: take a seed as tool input",
        )
    } else if reached(&["[constructor]fields", "outgoing-handler"]) {
        Some("the plugin made a request without the SDK (JavaScript `fetch()`): use the SDK's `http`")
    } else {
        None
    }
}

/// `scheme://host[:port]` naming exactly `target`, with the port only when it is not the default.
fn target_pattern(target: &Target) -> String {
    let host = match target.ip {
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => target.host.clone(),
    };
    if target.port == target.scheme.default_port() {
        format!("{}://{host}", target.scheme.as_str())
    } else {
        format!("{}://{host}:{}", target.scheme.as_str(), target.port)
    }
}

/// A manifest host as the user would type it: with its scheme (`https` when omitted).
fn flag_value(host: &str) -> String {
    if host.contains("://") { host.to_owned() } else { format!("https://{host}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(hosts: &[&str]) -> Vec<HostPattern> {
        hosts.iter().map(|h| HostPattern::parse(h).unwrap()).collect()
    }

    #[test]
    fn an_upstream_is_useless_without_a_grant_for_its_host() {
        assert_eq!(ungranted_upstreams(&["api.hubapi.com"], &patterns(&["https://api.hubapi.com"])), None);
        assert_eq!(ungranted_upstreams(&["api.hubapi.com"], &patterns(&["*.hubapi.com"])), None);
        let hint = ungranted_upstreams(&["api.hubapi.com"], &patterns(&["other.example"])).unwrap();
        assert!(hint.contains("add `--allow-host https://api.hubapi.com`"), "{hint}");
    }

    #[test]
    fn a_trap_in_a_stubbed_clock_says_so() {
        let trap = |bt: &str| CallError::Trap { message: "unreachable".into(), backtrace: Some(bt.into()) };
        assert!(trap_hint(&trap("2: 0xb0a3d5 - libc.so!wall_clock_now")).contains("`time.time()`"));
        assert!(trap_hint(&trap("0: 0x1 - libc.so!__wasi_random_get")).contains("randomness"));
        assert_eq!(super::trap(&trap("0: 0x1 - app!divide")), None);
        assert_eq!(super::trap(&CallError::StackOverflow), None);
    }

    fn trap_hint(err: &CallError) -> &'static str {
        super::trap(err).unwrap_or_default()
    }

    #[test]
    fn a_target_is_spelled_as_the_flag_takes_it() {
        assert_eq!(target_pattern(&Target::new(Scheme::Https, "API.example.com", None)), "https://api.example.com");
        assert_eq!(target_pattern(&Target::new(Scheme::Http, "::1", Some(8080))), "http://[::1]:8080");
        assert_eq!(flag_value("api.example.com"), "https://api.example.com");
    }
}
