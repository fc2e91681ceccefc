//! Path policies (SPDK's `bdev_nvme_set_multipath_policy`) and the per-IO
//! choice among a namespace's paths. Pure functions over what the submitting
//! core sees, so the same code runs in the engine and in the simulation.

use protocol::log::AnaState;

/// Which paths carry IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    /// One path at a time: the preferred one, else the first usable in attach
    /// order; IO goes back to it when it recovers. The default.
    ActivePassive = 0,
    /// Every optimized path, chosen by the [`Selector`].
    ActiveActive = 1,
}

impl Policy {
    /// Parses SPDK's name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active_passive" => Some(Self::ActivePassive),
            "active_active" => Some(Self::ActiveActive),
            _ => None,
        }
    }

    /// SPDK's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ActivePassive => "active_passive",
            Self::ActiveActive => "active_active",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        if v == 1 {
            Self::ActiveActive
        } else {
            Self::ActivePassive
        }
    }
}

/// How active_active spreads IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Selector {
    /// In turn, `rr_min_io` IOs per path before moving on.
    RoundRobin = 0,
    /// To the path with the fewest IOs outstanding on this core.
    QueueDepth = 1,
}

impl Selector {
    /// Parses SPDK's name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "round_robin" => Some(Self::RoundRobin),
            "queue_depth" => Some(Self::QueueDepth),
            _ => None,
        }
    }

    /// SPDK's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::QueueDepth => "queue_depth",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        if v == 1 {
            Self::QueueDepth
        } else {
            Self::RoundRobin
        }
    }
}

/// What the submitting core knows of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathCandidate {
    /// Its controller is enabled and this core's queue pair to it is up.
    pub usable: bool,
    /// The namespace's ANA state through it (`None`: ANA not reported).
    pub ana: Option<AnaState>,
    /// IOs outstanding on this core through it.
    pub outstanding: usize,
    /// The user marked it preferred.
    pub preferred: bool,
}

/// 0: optimized (or no ANA), 1: non-optimized, `None`: IO must not go there.
pub fn tier(c: &PathCandidate) -> Option<u8> {
    if !c.usable {
        return None;
    }
    match c.ana {
        None | Some(AnaState::Optimized) => Some(0),
        Some(AnaState::NonOptimized) => Some(1),
        Some(AnaState::Inaccessible | AnaState::PersistentLoss | AnaState::Change) => None,
    }
}

/// Round-robin position of one submitter (a channel on one core).
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobin {
    current: usize,
    ios_on_current: u32,
}

/// The path for the next IO, or `None` when no path can take it now.
pub fn choose(
    policy: Policy,
    selector: Selector,
    rr_min_io: u32,
    paths: &[PathCandidate],
    rr: &mut RoundRobin,
) -> Option<usize> {
    let best = paths.iter().filter_map(tier).min()?;
    let in_best = |i: usize| paths.get(i).and_then(tier) == Some(best);
    match policy {
        Policy::ActivePassive => {
            if let Some(i) = (0..paths.len()).find(|&i| paths[i].preferred && in_best(i)) {
                return Some(i);
            }
            (0..paths.len()).find(|&i| in_best(i))
        }
        Policy::ActiveActive => match selector {
            Selector::QueueDepth => (0..paths.len()).filter(|&i| in_best(i)).min_by_key(|&i| paths[i].outstanding),
            Selector::RoundRobin => {
                if in_best(rr.current) && rr.ios_on_current < rr_min_io.max(1) {
                    rr.ios_on_current += 1;
                    return Some(rr.current);
                }
                let n = paths.len();
                let next = (1..=n).map(|k| (rr.current + k) % n).find(|&i| in_best(i))?;
                rr.current = next;
                rr.ios_on_current = 1;
                Some(next)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(usable: bool, ana: Option<AnaState>) -> PathCandidate {
        PathCandidate { usable, ana, outstanding: 0, preferred: false }
    }

    #[test]
    fn active_passive_takes_the_first_usable_path_and_returns_to_it() {
        let mut rr = RoundRobin::default();
        let mut paths = [path(true, None), path(true, None)];
        assert_eq!(choose(Policy::ActivePassive, Selector::RoundRobin, 1, &paths, &mut rr), Some(0));
        paths[0].usable = false;
        assert_eq!(choose(Policy::ActivePassive, Selector::RoundRobin, 1, &paths, &mut rr), Some(1));
        paths[0].usable = true;
        assert_eq!(choose(Policy::ActivePassive, Selector::RoundRobin, 1, &paths, &mut rr), Some(0));
    }

    #[test]
    fn optimized_beats_non_optimized_and_inaccessible_is_never_chosen() {
        let mut rr = RoundRobin::default();
        let paths = [path(true, Some(AnaState::NonOptimized)), path(true, Some(AnaState::Optimized))];
        assert_eq!(choose(Policy::ActivePassive, Selector::RoundRobin, 1, &paths, &mut rr), Some(1));
        let paths = [path(true, Some(AnaState::Inaccessible)), path(true, Some(AnaState::NonOptimized))];
        assert_eq!(choose(Policy::ActivePassive, Selector::RoundRobin, 1, &paths, &mut rr), Some(1));
        let paths = [path(true, Some(AnaState::Inaccessible)), path(false, None)];
        assert_eq!(choose(Policy::ActivePassive, Selector::RoundRobin, 1, &paths, &mut rr), None);
    }

    #[test]
    fn preferred_path_wins_within_its_tier_only() {
        let mut rr = RoundRobin::default();
        let mut paths = [path(true, None), path(true, None)];
        paths[1].preferred = true;
        assert_eq!(choose(Policy::ActivePassive, Selector::RoundRobin, 1, &paths, &mut rr), Some(1));
        paths[1].ana = Some(AnaState::NonOptimized);
        assert_eq!(choose(Policy::ActivePassive, Selector::RoundRobin, 1, &paths, &mut rr), Some(0));
    }

    #[test]
    fn round_robin_alternates_after_rr_min_io_and_skips_non_optimized() {
        let mut rr = RoundRobin::default();
        let paths = [path(true, None), path(true, None), path(true, Some(AnaState::NonOptimized))];
        let picks: Vec<_> =
            (0..6).map(|_| choose(Policy::ActiveActive, Selector::RoundRobin, 2, &paths, &mut rr).unwrap()).collect();
        assert_eq!(picks, [0, 0, 1, 1, 0, 0]);
    }

    #[test]
    fn queue_depth_picks_the_least_loaded_optimized_path() {
        let mut rr = RoundRobin::default();
        let mut paths = [path(true, None), path(true, None)];
        paths[0].outstanding = 5;
        paths[1].outstanding = 2;
        assert_eq!(choose(Policy::ActiveActive, Selector::QueueDepth, 1, &paths, &mut rr), Some(1));
    }
}
