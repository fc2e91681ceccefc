//! Fuzzes the SGL descriptor parser: no panics, and every descriptor that
//! parses survives encode then parse unchanged (reserved bytes are dropped,
//! so the bytes themselves need not match).
#![no_main]

use corepath_protocol::SglDescriptor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match SglDescriptor::parse_slice(data) {
        Ok(d) => {
            let bytes = d.to_bytes();
            assert_eq!(SglDescriptor::parse(&bytes), Ok(d));
            assert_eq!(bytes[15], data[15]);
            let _ = (d.len(), d.is_in_capsule());
        }
        Err(_) => {}
    }
});
