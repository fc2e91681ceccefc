//! The bench's only FFI: Ctrl-C handling and a thread's CPU times. Safe
//! wrappers; every `unsafe` says why it holds.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGINT (Ctrl-C) or [`request_stop`]: every job stops issuing, lets
/// its outstanding IOs complete and reports what it did, as fio does.
static STOP: AtomicBool = AtomicBool::new(false);

/// Asks the running jobs to stop early (what Ctrl-C does).
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

/// Whether the jobs were asked to stop early.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

extern "C" fn on_sigint(_signum: libc::c_int) {
    // A second Ctrl-C while the jobs drain ends the process at once, with the
    // shell's status for a SIGINT death.
    if STOP.swap(true, Ordering::Relaxed) {
        // SAFETY: _exit is async-signal-safe and takes any status.
        unsafe { libc::_exit(130) }
    }
}

/// Makes Ctrl-C (SIGINT) stop the jobs and let the report be printed
/// instead of killing the process (a second one kills it).
pub fn install_sigint_handler() {
    // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty mask) that is filled in before use.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid, exclusively borrowed sigset_t.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialised; the handler only touches an atomic and calls _exit, both
    // async-signal-safe; a null old-action pointer is allowed.
    unsafe { libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) };
}

/// The calling thread's user and system time (ns) and its context switches
/// (voluntary and not), from `getrusage(RUSAGE_THREAD)`; `None` if it fails.
pub fn thread_cpu_times() -> Option<(u64, u64, u64)> {
    // SAFETY: an all-zero `rusage` is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live, exclusively borrowed rusage that getrusage only writes into.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return None;
    }
    let ns =
        |tv: libc::timeval| (tv.tv_sec.max(0) as u64).saturating_mul(1_000_000_000) + tv.tv_usec.max(0) as u64 * 1000;
    let ctx = usage.ru_nvcsw.max(0) as u64 + usage.ru_nivcsw.max(0) as u64;
    Some((ns(usage.ru_utime), ns(usage.ru_stime), ctx))
}
