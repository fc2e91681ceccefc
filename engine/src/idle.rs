//! When a reactor sleeps: the idle policy and the small state machine that
//! applies it after every turn. Pure logic on the reactor's clock, so the
//! simulation drives the same code on simulated time without sleeping.

use std::time::Duration;

/// How a reactor behaves when its turns find no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Spin always, as SPDK's default: lowest latency, one core burnt per reactor.
    Busy,
    /// Spin while turns find work; after `spin_ns` without any, sleep in
    /// `epoll_wait` until a wake source or the next timer (the default).
    Adaptive {
        /// How long turns may find nothing before the reactor sleeps.
        spin_ns: u64,
    },
    /// Sleep whenever a turn found nothing (SPDK's `--interrupt-mode`).
    Interrupt,
}

impl IdlePolicy {
    /// The default idle spell of [`IdlePolicy::Adaptive`]: long enough to cover
    /// the gap between a completion and the next command of a QD1 stream on
    /// loopback (about 10-20 us here), short enough to cost little after a burst.
    pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

    /// `adaptive` with the default idle spell.
    pub const fn adaptive() -> Self {
        IdlePolicy::Adaptive { spin_ns: Self::DEFAULT_SPIN.as_nanos() as u64 }
    }

    /// Parses `busy`, `adaptive` or `interrupt` (`yield`, the old name of a
    /// sleeping reactor, means `adaptive`). `spin` sets the idle spell of `adaptive`.
    pub fn parse(name: &str, spin: Option<Duration>) -> Result<Self, String> {
        let spin_ns = spin.unwrap_or(Self::DEFAULT_SPIN).as_nanos().min(u128::from(u64::MAX)) as u64;
        match name {
            "busy" => Ok(IdlePolicy::Busy),
            "adaptive" | "yield" => Ok(IdlePolicy::Adaptive { spin_ns }),
            "interrupt" => Ok(IdlePolicy::Interrupt),
            other => Err(format!("unknown idle policy '{other}': use busy, adaptive or interrupt")),
        }
    }

    /// The policy's name as the options spell it.
    pub fn name(&self) -> &'static str {
        match self {
            IdlePolicy::Busy => "busy",
            IdlePolicy::Adaptive { .. } => "adaptive",
            IdlePolicy::Interrupt => "interrupt",
        }
    }
}

impl Default for IdlePolicy {
    fn default() -> Self {
        IdlePolicy::adaptive()
    }
}

/// What the reactor does after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleDecision {
    /// Run another turn at once.
    Spin,
    /// Announce, recheck, and sleep until a wake source or the next deadline.
    Sleep,
}

/// Applies an [`IdlePolicy`] turn by turn.
#[derive(Debug, Clone)]
pub struct IdleGovernor {
    policy: IdlePolicy,
    /// Start of the current run of idle turns.
    idle_since_ns: Option<u64>,
}

impl IdleGovernor {
    /// A governor that starts spinning.
    pub fn new(policy: IdlePolicy) -> Self {
        IdleGovernor { policy, idle_since_ns: None }
    }

    /// The policy applied.
    pub fn policy(&self) -> IdlePolicy {
        self.policy
    }

    /// Decides after a turn that did `work` at `now_ns`. The transitions:
    /// work → spinning (idle spell reset); no work → spell continues; a spell
    /// longer than the policy allows → sleep.
    pub fn after_turn(&mut self, work: usize, now_ns: u64) -> IdleDecision {
        if work > 0 {
            self.idle_since_ns = None;
            return IdleDecision::Spin;
        }
        match self.policy {
            IdlePolicy::Busy => IdleDecision::Spin,
            IdlePolicy::Interrupt => IdleDecision::Sleep,
            IdlePolicy::Adaptive { spin_ns } => {
                let since = *self.idle_since_ns.get_or_insert(now_ns);
                if now_ns.saturating_sub(since) >= spin_ns {
                    IdleDecision::Sleep
                } else {
                    IdleDecision::Spin
                }
            }
        }
    }

    /// The reactor slept and woke: an event is work until proven otherwise,
    /// but a wake-up that brought nothing sends it straight back to sleep.
    pub fn woke(&mut self, work: usize, now_ns: u64) {
        if work > 0 {
            self.idle_since_ns = None;
        } else if let IdlePolicy::Adaptive { spin_ns } = self.policy {
            self.idle_since_ns = Some(now_ns.saturating_sub(spin_ns));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_sleeps_only_after_its_idle_spell() {
        let mut g = IdleGovernor::new(IdlePolicy::Adaptive { spin_ns: 100 });
        assert_eq!(g.after_turn(0, 1_000), IdleDecision::Spin);
        assert_eq!(g.after_turn(0, 1_099), IdleDecision::Spin);
        assert_eq!(g.after_turn(3, 1_150), IdleDecision::Spin);
        assert_eq!(g.after_turn(0, 1_200), IdleDecision::Spin);
        assert_eq!(g.after_turn(0, 1_300), IdleDecision::Sleep);
        g.woke(0, 5_000);
        assert_eq!(g.after_turn(0, 5_001), IdleDecision::Sleep);
        g.woke(1, 6_000);
        assert_eq!(g.after_turn(0, 6_001), IdleDecision::Spin);
    }

    #[test]
    fn busy_never_sleeps_and_interrupt_always_does() {
        let mut busy = IdleGovernor::new(IdlePolicy::Busy);
        let mut intr = IdleGovernor::new(IdlePolicy::Interrupt);
        for t in 0..1_000u64 {
            assert_eq!(busy.after_turn(0, t * 1_000_000), IdleDecision::Spin);
            assert_eq!(intr.after_turn(0, t), IdleDecision::Sleep);
            assert_eq!(intr.after_turn(1, t), IdleDecision::Spin);
        }
    }

    #[test]
    fn names_parse_and_unknown_ones_say_what_is_accepted() {
        assert_eq!(IdlePolicy::parse("busy", None), Ok(IdlePolicy::Busy));
        assert_eq!(IdlePolicy::parse("yield", None), Ok(IdlePolicy::adaptive()));
        assert_eq!(
            IdlePolicy::parse("adaptive", Some(Duration::from_micros(7))),
            Ok(IdlePolicy::Adaptive { spin_ns: 7_000 })
        );
        assert_eq!(IdlePolicy::parse("interrupt", None), Ok(IdlePolicy::Interrupt));
        assert_eq!(
            IdlePolicy::parse("spin", None),
            Err("unknown idle policy 'spin': use busy, adaptive or interrupt".to_string())
        );
    }
}
