//! Whether a host queue pair's descriptor is in its reactor's epoll set.
//!
//! The host core polls every queue pair each turn, so it needs no tokens: the
//! set only has to hold each descriptor, so that a sleeping reactor wakes when
//! data arrives, the socket becomes writable or the peer goes away.

use crate::transport::HostQpair;
use crate::wake::WakeSet;

/// One queue pair's place in the epoll set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeRegistration {
    /// Not yet added (the queue pair was made off the reactor's turn).
    Pending,
    /// In the set; closing the socket takes it out.
    Registered,
    /// The transport has no descriptor, or the kernel refused it: the
    /// reactor must not sleep while this queue pair exists.
    Unavailable,
}

impl WakeRegistration {
    /// Adds `qpair`'s descriptor to `set` the first time it is asked.
    pub(crate) fn ensure<Q: HostQpair>(&mut self, qpair: &Q, set: &WakeSet) {
        if *self != WakeRegistration::Pending {
            return;
        }
        *self = match qpair.wake_fd() {
            // Host queue pairs need no token: the core polls them all.
            Some(fd) if set.register(fd, 0).is_ok() => WakeRegistration::Registered,
            _ => WakeRegistration::Unavailable,
        };
    }

    /// Whether an event on the queue pair's descriptor is sure to wake the reactor.
    pub(crate) fn wakes(self) -> bool {
        self == WakeRegistration::Registered
    }
}
