//! Pause points for the crash tests. With `TOLLGATE_TEST_PAUSE_AT=<point>:<n>` set, the n-th
//! time the loop reaches `<point>` it prints `tollgate: paused at <point>#<n>` to stderr and
//! sleeps forever, so a test can `kill -9` the process at exactly that point and count what
//! the resumed run repeats.
//!
//! Compiled only with the `test-pause-points` feature, which the CLI's tests turn on (through
//! its dev-dependency on this crate); in every other build — release binaries included — a
//! pause point is an empty function and the variable is never read.
//!
//! Points, in the order a step reaches them: `turn_committed` (model turn and gate verdicts
//! durable, nothing run), `call_started` (a tool call is about to run), `call_finished` (a tool
//! call returned; its result is not yet durable), `results_committed` (the step is durable),
//! `approvals_settled` (decided approvals consumed, approved calls not yet run).

#[cfg(feature = "test-pause-points")]
pub(crate) use enabled::pause_point;

/// Without the feature: nothing to do, nothing compiled in.
#[cfg(not(feature = "test-pause-points"))]
#[inline(always)]
pub(crate) fn pause_point(_point: &str) {}

#[cfg(feature = "test-pause-points")]
mod enabled {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};

    static TARGET: OnceLock<Option<(String, u32)>> = OnceLock::new();
    static HITS: AtomicU32 = AtomicU32::new(0);

    fn target() -> &'static Option<(String, u32)> {
        TARGET.get_or_init(|| {
            let spec = std::env::var("TOLLGATE_TEST_PAUSE_AT").ok()?;
            let (point, n) = spec.split_once(':')?;
            Some((point.to_string(), n.parse().ok()?))
        })
    }

    pub(crate) fn pause_point(point: &str) {
        let Some((wanted, n)) = target() else { return };
        if wanted != point {
            return;
        }
        let hit = HITS.fetch_add(1, Ordering::SeqCst) + 1;
        if hit == *n {
            eprintln!("tollgate: paused at {point}#{hit}");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}
