//! Long steps, said while they run: toolchain installs, cargo and componentizer runs, a first
//! compile of a big component. On a terminal, an indicatif spinner with the elapsed time on
//! stderr (cleared when the step ends, then one line with its time); otherwise plain lines
//! through [`crate::output`], so logs and pipes get a line when a step starts and when it ends.
//! Only stderr: stdout stays the command's result.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tollgate_pluginkit::{Progress, Step};

/// A step shown while it runs.
struct Shown {
    what: String,
    started: Instant,
    spinner: Option<ProgressBar>,
}

impl Shown {
    fn begin(what: &str) -> Shown {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let spinner = ProgressBar::new_spinner().with_message(what.to_owned());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                spinner.set_style(style);
            }
            spinner.enable_steady_tick(Duration::from_millis(120));
            spinner
        });
        if spinner.is_none() {
            errln!("{what} ...");
        }
        Shown { what: what.to_owned(), started: Instant::now(), spinner }
    }

    fn end(self) {
        let seconds = self.started.elapsed().as_secs_f64();
        match self.spinner {
            Some(spinner) => {
                spinner.finish_and_clear();
                errln!("{}: {seconds:.1} s", self.what);
            }
            None => errln!("  done in {seconds:.1} s"),
        }
    }
}

/// The [`Progress`] `plugin build` hands the kit.
pub fn build() -> Progress {
    let current: Mutex<Option<Shown>> = Mutex::new(None);
    Progress::new(move |step| {
        let mut current = current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match step {
            Step::Begin(what) => *current = Some(Shown::begin(what)),
            Step::End => {
                if let Some(shown) = current.take() {
                    shown.end();
                }
            }
        }
    })
}

/// Awaits `work`, showing `what` if it takes longer than a second (a compile the cache did not
/// have); a quick one shows nothing. The watch is a thread of its own: the sandbox's compile
/// can hold the task's thread without yielding.
pub async fn when_slow<T>(what: &str, work: impl Future<Output = T>) -> T {
    let (finished, wait) = std::sync::mpsc::channel::<()>();
    let what = what.to_owned();
    let watch = std::thread::spawn(move || {
        if wait.recv_timeout(Duration::from_secs(1)).is_err() {
            let shown = Shown::begin(&what);
            let _ = wait.recv();
            shown.end();
        }
    });
    let done = work.await;
    let _ = finished.send(());
    let _ = watch.join();
    done
}
