//! Fuzzes the Connect data parser: no panics, exact re-encoding of what
//! parses, and the NQNs it accepts can be written back by `ConnectData::new`.
#![no_main]

use corepath_protocol::fabrics::NQN_MAX_BYTES;
use corepath_protocol::ConnectData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = ConnectData::decode(data) {
        assert_eq!(&raw.to_bytes()[..], &data[..ConnectData::SIZE]);
    }
    match ConnectData::parse(data) {
        Ok(d) => {
            assert_eq!(&d.to_bytes()[..], &data[..ConnectData::SIZE]);
            let sub = d.subnqn_str().expect("parse checked subnqn");
            let host = d.hostnqn_str().expect("parse checked hostnqn");
            assert!(!sub.is_empty() && sub.len() <= NQN_MAX_BYTES);
            assert!(host.len() <= NQN_MAX_BYTES);
            let again = ConnectData::new(d.hostid, d.cntlid, sub, host).expect("accepted NQNs re-encode");
            let back = ConnectData::parse(&again.to_bytes()).expect("re-encoded data parses");
            assert_eq!(back.subnqn_str().ok(), Some(sub));
            assert_eq!(back.hostnqn_str().ok(), Some(host));
            assert_eq!((back.hostid, back.cntlid), (d.hostid, d.cntlid));
        }
        Err(e) => {
            let _ = ConnectData::error_offset(&e);
        }
    }
});
