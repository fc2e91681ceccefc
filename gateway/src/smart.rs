//! A controller's IO counters for its SMART / Health Information log page
//! (NVMe Base 2.0c §5.16.1.3): Read and Write commands completed and the
//! bytes they moved.
//!
//! The IO path counts where an IO completes, on the reactor that owns the
//! queue: one shard per reactor core, on its own cache line, so the queues
//! of one controller on different cores never write the same line. A count
//! is a Relaxed atomic add on a line only that core writes (no lock, no
//! allocation, no contention); the admin queue sums the shards when the host
//! reads the log page.

use std::sync::atomic::{AtomicU64, Ordering};

/// Shards per controller: reactor core `i` counts into shard `i % SHARDS`.
/// Past 64 cores two cores share a shard; the atomic add keeps it exact.
const SHARDS: usize = 64;

/// One core's counts.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Shard {
    read_commands: AtomicU64,
    read_bytes: AtomicU64,
    write_commands: AtomicU64,
    write_bytes: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Shard>() == 64);

/// The totals over every shard at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct IoTotals {
    /// Read commands completed successfully (SMART Host Read Commands).
    pub(crate) read_commands: u64,
    /// Bytes those reads returned (Data Units Read before scaling).
    pub(crate) read_bytes: u64,
    /// Write commands completed successfully (SMART Host Write Commands).
    pub(crate) write_commands: u64,
    /// Bytes those writes stored (Data Units Written before scaling).
    pub(crate) write_bytes: u64,
}

/// Per-core IO counters of one controller (about 4 KiB, allocated with the controller).
#[derive(Debug)]
pub(crate) struct IoCounters {
    shards: Box<[Shard]>,
}

impl Default for IoCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl IoCounters {
    /// All counts zero.
    pub(crate) fn new() -> Self {
        IoCounters { shards: (0..SHARDS).map(|_| Shard::default()).collect() }
    }

    #[inline]
    fn shard(&self, core: usize) -> &Shard {
        // SHARDS is a power of two and the slice is never empty: the mask keeps the index in range.
        &self.shards[core & (SHARDS - 1)]
    }

    /// A Read of `bytes` completed successfully on reactor `core`.
    #[inline]
    pub(crate) fn read_done(&self, core: usize, bytes: u64) {
        let s = self.shard(core);
        s.read_commands.fetch_add(1, Ordering::Relaxed);
        s.read_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A Write of `bytes` completed successfully on reactor `core`.
    #[inline]
    pub(crate) fn write_done(&self, core: usize, bytes: u64) {
        let s = self.shard(core);
        s.write_commands.fetch_add(1, Ordering::Relaxed);
        s.write_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The sums over every core (each counter is exact; the four are not
    /// one snapshot when IO runs meanwhile, which the log page does not promise).
    pub(crate) fn totals(&self) -> IoTotals {
        self.shards.iter().fold(IoTotals::default(), |t, s| IoTotals {
            read_commands: t.read_commands.wrapping_add(s.read_commands.load(Ordering::Relaxed)),
            read_bytes: t.read_bytes.wrapping_add(s.read_bytes.load(Ordering::Relaxed)),
            write_commands: t.write_commands.wrapping_add(s.write_commands.load(Ordering::Relaxed)),
            write_bytes: t.write_bytes.wrapping_add(s.write_bytes.load(Ordering::Relaxed)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_every_core_add_up() {
        let c = IoCounters::new();
        c.read_done(0, 4096);
        c.read_done(1, 512);
        c.write_done(3, 131_072);
        c.write_done(3 + SHARDS, 4096);
        let t = c.totals();
        assert_eq!(t, IoTotals { read_commands: 2, read_bytes: 4608, write_commands: 2, write_bytes: 135_168 });
    }

    #[test]
    fn cores_write_separate_cache_lines() {
        let c = IoCounters::new();
        let a = c.shard(0) as *const Shard as usize;
        let b = c.shard(1) as *const Shard as usize;
        assert_eq!(a % 64, 0);
        assert_eq!(b - a, 64);
    }
}
