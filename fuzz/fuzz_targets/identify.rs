//! Fuzzes the identify and log page parsers: no panics on any input, exact
//! re-encoding of the fixed structures, and parse(encode(parse(x))) ==
//! parse(x) for the lists. Short inputs are also tried zero-padded to 4096
//! bytes so small seeds still reach the field checks.
#![no_main]

use corepath_protocol::identify::{
    encode_active_ns_list, encode_ns_id_descriptors, parse_active_ns_list, parse_ns_id_descriptors,
    IDENTIFY_DATA_BYTES,
};
use corepath_protocol::log::{encode_ana_log, encode_discovery_log, parse_ana_log, parse_discovery_log};
use corepath_protocol::log::{ErrorLogEntry, SmartLog};
use corepath_protocol::{IdentifyController, IdentifyNamespace};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    if let Ok(c) = IdentifyController::parse(data) {
        assert_eq!(&c.to_bytes()[..], &data[..IdentifyController::SIZE]);
        let _ = (c.sn_str(), c.mn_str(), c.fr_str(), c.subnqn_str(), c.max_transfer_bytes(4096));
    }
    if let Ok(ns) = IdentifyNamespace::parse(data) {
        assert_eq!(&ns.to_bytes()[..], &data[..IdentifyNamespace::SIZE]);
        let _ = (ns.current_lba_format(), ns.block_size_bytes());
    }
    if let Ok(ids) = parse_active_ns_list(data) {
        let enc = encode_active_ns_list(&ids).expect("a parsed list re-encodes");
        assert_eq!(parse_active_ns_list(&enc).as_ref(), Ok(&ids));
    }
    if let Ok(descs) = parse_ns_id_descriptors(data) {
        // A list that fills the page exactly has no room left for the terminator.
        if let Ok(enc) = encode_ns_id_descriptors(&descs) {
            assert_eq!(parse_ns_id_descriptors(&enc).as_ref(), Ok(&descs));
        }
    }
    if let Ok(e) = ErrorLogEntry::parse(data) {
        assert_eq!(&e.to_bytes()[..], &data[..ErrorLogEntry::SIZE]);
    }
    if let Ok(s) = SmartLog::parse(data) {
        assert_eq!(&s.to_bytes()[..], &data[..SmartLog::SIZE]);
    }
    if let Ok((hdr, entries)) = parse_discovery_log(data) {
        let mut page = Vec::new();
        encode_discovery_log(hdr.genctr, &entries, &mut page);
        let (hdr2, entries2) = parse_discovery_log(&page).expect("re-encoded discovery log parses");
        assert_eq!(hdr2.genctr, hdr.genctr);
        assert_eq!(entries2, entries);
        for e in &entries {
            let _ = (e.traddr_str(), e.trsvcid_str(), e.subnqn_str());
        }
    }
    if let Ok((hdr, groups)) = parse_ana_log(data) {
        let mut page = Vec::new();
        encode_ana_log(hdr.chgcnt, &groups, &mut page).expect("at most u16::MAX groups");
        let (hdr2, groups2) = parse_ana_log(&page).expect("re-encoded ANA log parses");
        assert_eq!((hdr2.chgcnt, hdr2.ngrps), (hdr.chgcnt, hdr.ngrps));
        assert_eq!(groups2, groups);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() < IDENTIFY_DATA_BYTES {
        let mut padded = data.to_vec();
        padded.resize(IDENTIFY_DATA_BYTES, 0);
        check(&padded);
    }
});
