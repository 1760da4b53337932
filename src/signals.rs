//! Ctrl-C (SIGINT) and SIGTERM during a benchmark: the first one stops after the current token, the
//! runs that finished are saved, and the tool exits 130 (SIGINT) or 143 (SIGTERM), as a shell
//! reports a process ended by that signal; a second one leaves at once and still kills the servers
//! this process started.

use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::measure::StopFlag;

/// The first signal received, 0 before any.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Exit code of a run stopped by SIGINT.
pub const EXIT_SIGINT: u8 = 130;
/// Exit code of a run stopped by SIGTERM.
pub const EXIT_SIGTERM: u8 = 143;

/// Starts a thread that turns SIGINT and SIGTERM into a raised `stop`.
pub fn install(stop: &StopFlag) {
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let stop = stop.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if RECEIVED.load(Ordering::SeqCst) != 0 {
                    crate::server::kill_started();
                    std::process::exit(128 + sig);
                }
                RECEIVED.store(sig, Ordering::SeqCst);
                stop.raise();
                let (name, again) = if sig == SIGTERM {
                    ("terminated", "a second SIGTERM")
                } else {
                    ("interrupted", "Ctrl-C again")
                };
                eprintln!("\n{name}: saving the runs that finished ({again} to quit now)");
            }
        });
}

/// Whether SIGTERM (rather than Ctrl-C) stopped the run.
pub fn terminated() -> bool {
    RECEIVED.load(Ordering::SeqCst) == SIGTERM
}

/// The exit code of a stopped run: 143 after SIGTERM, else 130.
pub fn exit_code() -> u8 {
    if terminated() {
        EXIT_SIGTERM
    } else {
        EXIT_SIGINT
    }
}
