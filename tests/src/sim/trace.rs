//! The run's event trace: every event folds into a hash (two runs of one seed
//! must give the same hash) and the last few are kept to print with a failure.

use std::collections::VecDeque;
use std::fmt::Write as _;

/// Events kept for the failure report.
const KEPT_EVENTS: usize = 64;

/// The trace of one run.
#[derive(Debug, Default)]
pub struct Trace {
    hash: u64,
    events: u64,
    recent: VecDeque<(u64, String)>,
    /// Keep text of events (off for speed when only the hash matters).
    keep_text: bool,
}

impl Trace {
    /// A trace; `keep_text` keeps the last events' text for reports.
    pub fn new(keep_text: bool) -> Self {
        Trace { hash: 0xcbf2_9ce4_8422_2325, events: 0, recent: VecDeque::new(), keep_text }
    }

    /// Folds an event (a kind and up to four numbers) into the hash.
    pub fn record(&mut self, at_ns: u64, kind: &'static str, args: [u64; 4]) {
        self.events += 1;
        self.mix(at_ns);
        for b in kind.bytes() {
            self.mix(u64::from(b));
        }
        for a in args {
            self.mix(a);
        }
        if self.keep_text {
            if self.recent.len() == KEPT_EVENTS {
                self.recent.pop_front();
            }
            self.recent.push_back((at_ns, format!("{kind} {args:?}")));
        }
    }

    fn mix(&mut self, v: u64) {
        // FNV-1a over the value's bytes, then a multiply to spread it.
        for b in v.to_le_bytes() {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hash ^ self.events.rotate_left(17)
    }

    /// Events recorded.
    pub fn len(&self) -> u64 {
        self.events
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The last events, one per line, with their simulated time in ms.
    pub fn tail(&self) -> String {
        let mut s = String::new();
        for (at, e) in &self.recent {
            let _ = writeln!(s, "  {:>10.3} ms  {e}", *at as f64 / 1e6);
        }
        s
    }
}
