//! Ctrl+C and SIGTERM during `sample`: the run stops between steps, nothing is written and the
//! staging folder is removed, instead of the process dying with a half-made folder behind.
//! A second signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

#[cfg(unix)]
extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe work here: an atomic store, or _exit on the second signal.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the handlers (the command line does, before a run).
pub fn install() {
    #[cfg(unix)]
    // SAFETY: the handler only touches an atomic or calls _exit.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// The window's event loop never returns after SIGINT/SIGTERM, so a watcher removes its
/// temporary folder and ends the process.
pub fn remove_on_signal(folder: std::path::PathBuf) {
    let _ = std::thread::Builder::new()
        .name("posterior-lab-signals".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if interrupted() {
                    let _ = std::fs::remove_dir_all(&folder);
                    std::process::exit(130);
                }
            }
        });
}
