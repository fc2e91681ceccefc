//! The engine's only FFI: epoll and eventfd, behind a safe wrapper used by
//! [`crate::wake`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `epoll_pwait2` (Linux 5.11): a timeout in nanoseconds instead of
/// milliseconds. The number is the same on every architecture (new system
/// calls share one table); libc does not name it for x86_64 glibc.
const SYS_EPOLL_PWAIT2: libc::c_long = 441;

/// One epoll instance.
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by the kernel and is owned by nobody else.
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is a valid epoll_event for the duration of the call; the kernel copies it.
        let rc = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub(crate) fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ns` (None: forever, 0: do not wait) and fills
    /// `events`; returns how many are valid. EINTR counts as zero events.
    pub(crate) fn wait(&self, events: &mut [libc::epoll_event], timeout_ns: Option<u64>) -> io::Result<usize> {
        let max = events.len().min(i32::MAX as usize) as libc::c_int;
        let rc = match timeout_ns {
            Some(0) => {
                // SAFETY: events is a valid writable buffer of `max` entries.
                unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, 0) }
            }
            Some(ns) => {
                let ts = libc::timespec {
                    tv_sec: (ns / 1_000_000_000) as libc::time_t,
                    tv_nsec: (ns % 1_000_000_000) as libc::c_long,
                };
                // SAFETY: events is a valid writable buffer of `max` entries, ts lives across the call,
                // a null sigmask means "leave the mask alone".
                let rc = unsafe {
                    libc::syscall(
                        SYS_EPOLL_PWAIT2,
                        self.fd.as_raw_fd(),
                        events.as_mut_ptr(),
                        max,
                        &ts as *const libc::timespec,
                        core::ptr::null::<libc::sigset_t>(),
                        0usize,
                    )
                };
                if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                    // A kernel before 5.11: millisecond resolution, rounded up so no timer fires early.
                    let ms = ns.div_ceil(1_000_000).min(i32::MAX as u64) as libc::c_int;
                    // SAFETY: as above.
                    unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, ms) }
                } else {
                    rc as libc::c_int
                }
            }
            None => {
                // SAFETY: as above.
                unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, -1) }
            }
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err);
        }
        Ok(rc as usize)
    }
}

/// A non-blocking eventfd: a counter other threads bump to wake a sleeper.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by the kernel and is owned by nobody else.
        Ok(EventFd { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Adds one to the counter. A full counter (2^64-2) already wakes the reader: ignore EAGAIN.
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own fd.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter to zero (does nothing when it already is).
    pub(crate) fn drain(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking fd.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    }
}

/// Asks the kernel to wake this thread's timed sleeps within `slack_ns` of
/// their deadline. The default slack of a thread is 50 us, which would make
/// every timed `epoll_wait` of a reactor (a paced job's next IO, a keep-alive)
/// that much late.
pub(crate) fn set_timer_slack_ns(slack_ns: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes one unsigned long by value and touches no memory of ours.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack_ns as libc::c_ulong, 0, 0, 0) };
}
