//! Everything `tollgate` prints goes through here, so no write can panic and an output that
//! goes away ends the command the same way for every command.
//!
//! `println!` panics when stdout is a closed pipe (`tollgate runs list | head -3`): exit 101,
//! a panic message, and — inside `run` — unwinding through the runtime while a step is under
//! way. Instead, the first failed write to stdout ends the process at once with
//! [`std::process::exit`]: exit 0 for a closed pipe (the reader has what it wanted, as with
//! Unix tools), 2 for any other output error. No destructor runs and no task reacts, so a run
//! being advanced is left exactly as a `kill -9` at that moment would leave it: resumable with
//! `tollgate runs resume`, which [`note_on_close`] lets the command say on stderr.
//!
//! Writes to stderr are best effort: when stderr is gone too there is nobody left to tell.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

/// Said on stderr if stdout goes away (e.g. how to resume the run this process advances).
static ON_CLOSE: Mutex<Option<String>> = Mutex::new(None);

/// `println!` that ends the command cleanly when stdout cannot take the line.
macro_rules! outln {
    () => { $crate::output::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that ends the command cleanly when stdout cannot take the text.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::stdout(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => { $crate::output::stderr(format_args!($($arg)*)) };
}

/// Writes to stdout; if that fails, the process ends here (see the module doc).
pub fn stdout(text: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    // Flushed per write (stdout is line-buffered anyway): a closed pipe must be noticed at the
    // write that meets it, not later at an exit that could no longer report it.
    if let Err(error) = out.write_fmt(text).and_then(|()| out.flush()) {
        closed(&error);
    }
}

/// Writes to stderr, ignoring failure.
pub fn stderr(text: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(text);
}

/// What to say on stderr if stdout goes away from now on.
pub fn note_on_close(note: String) {
    if let Ok(mut slot) = ON_CLOSE.lock() {
        *slot = Some(note);
    }
}

fn closed(error: &io::Error) -> ! {
    let code = if error.kind() == io::ErrorKind::BrokenPipe {
        0
    } else {
        stderr(format_args!("error: cannot write to standard output: {error}\n"));
        2
    };
    // A poisoned lock still holds the note.
    let note = ON_CLOSE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some(note) = note {
        stderr(format_args!("tollgate: {note}\n"));
    }
    // `exit`, not a returned error or a panic: nothing may run between the failed write and the
    // end of the process, or the run would be left in a state a kill -9 could not produce.
    std::process::exit(code)
}
