//! What a build tells its caller while it runs: the steps that can take long (a toolchain
//! install, a first cargo build, a componentizer run), as they begin and end, so a caller can
//! show them. The kit itself never writes to the terminal.

use std::sync::Arc;

/// One event of a long step.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// A step begins; the text says what it does, for a person.
    Begin(&'a str),
    /// The step begun last has ended (successfully or not).
    End,
}

/// What receives the steps.
type Report = dyn Fn(Step<'_>) + Send + Sync;

/// Where a build reports its [`Step`]s; the default reports nowhere.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Report>>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Progress(reported)" } else { "Progress(silent)" })
    }
}

impl Progress {
    pub fn new(report: impl Fn(Step<'_>) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(report)))
    }

    /// Runs `work` as the step `what`: reported before it starts and after it ends.
    pub fn step<T>(&self, what: &str, work: impl FnOnce() -> T) -> T {
        if let Some(report) = &self.0 {
            report(Step::Begin(what));
        }
        let result = work();
        if let Some(report) = &self.0 {
            report(Step::End);
        }
        result
    }
}
