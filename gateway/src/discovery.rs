//! The discovery service: the discovery log page (NVMe-oF 1.1a §5.3) a
//! discovery controller returns, built from the configuration for one host.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use engine::AdrFam;
use protocol::log::{adrfam, encode_discovery_log, subtype, treq};
use protocol::DiscoveryLogEntry;

use crate::config::{ListenAddress, SubsystemType, TargetState};
use crate::controller::trtype_wire;

/// Admin queue size advertised in discovery log entries (ASQSZ).
pub const DISCOVERY_ASQSZ: u16 = 32;

/// Every distinct listen address of the configuration, in a stable order:
/// an address's index here is its port ID.
fn listen_addresses(state: &TargetState) -> Vec<&ListenAddress> {
    let mut all: Vec<&ListenAddress> = state.subsystems.iter().flat_map(|s| s.listeners.iter()).collect();
    all.sort_by(|a, b| {
        (a.trtype.as_str(), a.adrfam.as_str(), &a.traddr, &a.trsvcid).cmp(&(
            b.trtype.as_str(),
            b.adrfam.as_str(),
            &b.traddr,
            &b.trsvcid,
        ))
    });
    all.dedup();
    all
}

/// The discovery log entries `hostnqn` may see: one per (NVM subsystem that
/// admits the host, listener of that subsystem).
pub fn discovery_entries(state: &TargetState, hostnqn: &str) -> Vec<DiscoveryLogEntry> {
    let ports = listen_addresses(state);
    let mut entries = Vec::new();
    for s in &state.subsystems {
        if s.subtype != SubsystemType::Nvme || !state.host_allowed(&s.nqn, hostnqn) {
            continue;
        }
        for l in &s.listeners {
            let portid = ports.iter().position(|p| *p == l).unwrap_or(0) as u16;
            let mut e = DiscoveryLogEntry {
                trtype: trtype_wire(l.trtype),
                adrfam: match l.adrfam {
                    AdrFam::Ipv4 => adrfam::IPV4,
                    AdrFam::Ipv6 => adrfam::IPV6,
                },
                subtype: subtype::NVME,
                // Every queue may disable SQ flow control at Connect.
                treq: treq::SECURE_CHANNEL_NOT_REQUIRED | treq::SQ_FLOW_CONTROL_DISABLE,
                portid,
                // Dynamic controller model: the host asks for any controller.
                cntlid: 0xFFFF,
                asqsz: DISCOVERY_ASQSZ,
                ..DiscoveryLogEntry::zeroed()
            };
            // Config validation keeps these ASCII and within their fields; an
            // entry that does not encode is left out rather than sent garbled.
            if e.set_trsvcid(&l.trsvcid).is_err() || e.set_traddr(&l.traddr).is_err() || e.set_subnqn(&s.nqn).is_err() {
                continue;
            }
            entries.push(e);
        }
    }
    entries
}

/// A digest of everything the discovery log shows, for every host: when it
/// changes, the generation counter moves.
pub fn discovery_digest(state: &TargetState) -> u64 {
    let mut h = DefaultHasher::new();
    for s in &state.subsystems {
        s.nqn.hash(&mut h);
        s.allow_any_host.hash(&mut h);
        s.hosts.hash(&mut h);
        s.listeners.hash(&mut h);
    }
    h.finish()
}

/// The whole discovery log page for `hostnqn` into `out`.
pub fn encode_discovery_page(state: &TargetState, hostnqn: &str, genctr: u64, out: &mut Vec<u8>) {
    encode_discovery_log(genctr, &discovery_entries(state, hostnqn), out);
}
