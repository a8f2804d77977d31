//! The terminal: raw mode, the alternate screen and mouse reporting on the
//! way in, and the same undone on every way out: a normal quit, a panic
//! (the hook), SIGTERM, SIGHUP and SIGINT (a signal thread that makes the
//! main loop quit).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::{Hide, Show};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};

/// Set while the terminal is in the mixer's mode.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal in the mixer's mode. Call [`install_panic_hook`] first.
pub fn enter() -> io::Result<()> {
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture, Hide)
}

/// Restores the terminal, once, whoever calls first. Errors are ignored: the
/// terminal may be gone (SIGHUP).
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, Show);
        let _ = out.flush();
        let _ = disable_raw_mode();
    }
}

/// On a panic anywhere: restore the terminal, print the panic as usual, and
/// exit (a panic on another thread would otherwise leave the main loop
/// drawing on a restored terminal).
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
        std::process::exit(101);
    }));
}

/// Calls `on_signal` with SIGTERM, SIGHUP or SIGINT when one arrives, from a
/// thread that sleeps until then.
pub fn on_signals(mut on_signal: impl FnMut(i32) -> bool + Send + 'static) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for signal in signals.forever() {
            if !on_signal(signal) {
                break;
            }
        }
    })?;
    Ok(())
}
