//! Asymmetric Namespace Access state (NVMe Base 2.0c §8.20): per listener,
//! per ANA group, the state controllers connected through that listener see.
//!
//! One [`AnaStates`] per (subsystem, listener), shared (`Arc`) by the
//! configuration and every controller that connected through the listener.
//! The IO path reads a group's state with one Relaxed atomic load; the RPC
//! thread stores a new state and then bumps the change count (Release), which
//! admin queues poll (Acquire) to raise the ANA change event.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use protocol::log::AnaState;

/// Most ANA groups a subsystem has (ANAGRPMAX is the smaller of this and its
/// max_namespaces): bounds the per-listener state arrays.
pub const ANA_GROUP_MAX: u32 = 4096;

/// ANA Transition Time reported in Identify Controller (ANATT), in seconds.
pub const ANATT_SECONDS: u8 = 10;

/// The ANA state of every group, as seen through one listener.
#[derive(Debug)]
pub struct AnaStates {
    /// Slot `anagrpid - 1`: the ANAS wire value.
    states: Box<[AtomicU8]>,
    /// Slot `anagrpid - 1`: the change count when that group's state last changed.
    group_chgcnt: Box<[AtomicU64]>,
    /// Bumped on every change (the ANA log header's CHGCNT).
    chgcnt: AtomicU64,
}

impl AnaStates {
    /// `groups` groups (1..=groups), all optimized.
    pub fn new(groups: u32) -> Self {
        let n = groups.min(ANA_GROUP_MAX) as usize;
        AnaStates {
            states: (0..n).map(|_| AtomicU8::new(AnaState::Optimized as u8)).collect(),
            group_chgcnt: (0..n).map(|_| AtomicU64::new(0)).collect(),
            chgcnt: AtomicU64::new(0),
        }
    }

    /// Number of groups (ANAGRPMAX).
    pub fn groups(&self) -> u32 {
        self.states.len() as u32
    }

    /// True when the IO path may execute a command for a namespace of group
    /// `anagrpid` (optimized or non-optimized). One Relaxed load; an unknown
    /// group reads as optimized (group IDs are validated at configuration).
    #[inline]
    pub fn accessible(&self, anagrpid: u32) -> Result<(), AnaState> {
        let raw = match (anagrpid as usize).checked_sub(1).and_then(|i| self.states.get(i)) {
            Some(s) => s.load(Ordering::Relaxed),
            None => return Ok(()),
        };
        if raw <= AnaState::NonOptimized as u8 {
            Ok(())
        } else {
            Err(AnaState::from_u8(raw).unwrap_or(AnaState::Inaccessible))
        }
    }

    /// The state of group `anagrpid` (optimized for an unknown group).
    pub fn state(&self, anagrpid: u32) -> AnaState {
        (anagrpid as usize)
            .checked_sub(1)
            .and_then(|i| self.states.get(i))
            .and_then(|s| AnaState::from_u8(s.load(Ordering::Relaxed)).ok())
            .unwrap_or(AnaState::Optimized)
    }

    /// The change count of group `anagrpid`.
    pub fn group_change_count(&self, anagrpid: u32) -> u64 {
        (anagrpid as usize)
            .checked_sub(1)
            .and_then(|i| self.group_chgcnt.get(i))
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// The change count (bumped on every state change).
    #[inline]
    pub fn change_count(&self) -> u64 {
        self.chgcnt.load(Ordering::Acquire)
    }

    /// Sets group `anagrpid`'s state; returns whether it changed. Callers
    /// validate the group ID; an unknown one changes nothing.
    pub fn set(&self, anagrpid: u32, state: AnaState) -> bool {
        let Some(i) = (anagrpid as usize).checked_sub(1).filter(|&i| i < self.states.len()) else {
            return false;
        };
        if self.states[i].swap(state as u8, Ordering::Relaxed) == state as u8 {
            return false;
        }
        // Count after the store (Release): whoever sees the new count sees the new state.
        let count = self.chgcnt.fetch_add(1, Ordering::AcqRel) + 1;
        self.group_chgcnt[i].store(count, Ordering::Release);
        true
    }
}

/// SPDK's name of an ANA state (`nvmf_subsystem_listener_set_ana_state`, `nvmf_subsystem_get_listeners`).
pub fn ana_state_name(state: AnaState) -> &'static str {
    match state {
        AnaState::Optimized => "optimized",
        AnaState::NonOptimized => "non_optimized",
        AnaState::Inaccessible => "inaccessible",
        AnaState::PersistentLoss => "persistent_loss",
        AnaState::Change => "change",
    }
}

/// Parses the states `nvmf_subsystem_listener_set_ana_state` accepts (SPDK's three).
pub fn parse_ana_state(name: &str) -> Option<AnaState> {
    match name {
        "optimized" => Some(AnaState::Optimized),
        "non_optimized" => Some(AnaState::NonOptimized),
        "inaccessible" => Some(AnaState::Inaccessible),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_start_optimized_and_changes_move_the_counts() {
        let ana = AnaStates::new(4);
        assert_eq!(ana.accessible(2), Ok(()));
        assert!(ana.set(2, AnaState::Inaccessible));
        assert!(!ana.set(2, AnaState::Inaccessible), "same state again is no change");
        assert_eq!(ana.accessible(2), Err(AnaState::Inaccessible));
        assert_eq!(ana.accessible(1), Ok(()));
        assert!(ana.set(1, AnaState::NonOptimized));
        assert_eq!(ana.accessible(1), Ok(()), "non-optimized still executes IO");
        assert_eq!((ana.change_count(), ana.group_change_count(2), ana.group_change_count(1)), (2, 1, 2));
        assert!(!ana.set(5, AnaState::Inaccessible), "group beyond ANAGRPMAX");
        assert_eq!(ana.accessible(0), Ok(()));
        assert_eq!(parse_ana_state("non_optimized"), Some(AnaState::NonOptimized));
        assert_eq!(parse_ana_state("change"), None);
        assert_eq!(ana_state_name(AnaState::Inaccessible), "inaccessible");
    }
}
