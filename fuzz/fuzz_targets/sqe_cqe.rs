//! Fuzzes the SQE/CQE parsers and the typed views laid over their dwords:
//! whatever bytes come in, parsing must not panic, and what parses must
//! encode back to the same bytes (or, for lossy views, decode the same again).
#![no_main]

use corepath_protocol::features::{get_features_select, AsyncEvent, FeatureSelect, NumberOfQueues};
use corepath_protocol::{Cap, Cc, Cqe, Csts, GetLogPage, Sqe, Status, Vs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sqe) = Sqe::parse(data) {
        assert_eq!(&sqe.to_bytes()[..], &data[..64]);
        let _ = sqe.data_direction();
        let glp = GetLogPage::from_sqe(&sqe);
        assert_eq!(GetLogPage::from_sqe(&glp.to_sqe(sqe.nsid)), glp);
        let sel = get_features_select(&sqe);
        assert_eq!(FeatureSelect::from_bits(sel.bits()), sel);
        let cap = Cap::from_u64(sqe.mptr);
        assert_eq!(Cap::from_u64(cap.to_u64()), cap);
        let cc = Cc::from_u32(sqe.cdw10);
        assert_eq!(Cc::from_u32(cc.to_u32()), cc);
        let csts = Csts::from_u32(sqe.cdw11);
        assert_eq!(Csts::from_u32(csts.to_u32()), csts);
        assert_eq!(Vs::from_u32(sqe.cdw12).to_u32(), sqe.cdw12);
        let nq = NumberOfQueues::from_dword(sqe.cdw13);
        assert_eq!(nq.to_dword(), sqe.cdw13);
        let ev = AsyncEvent::from_dw0(sqe.cdw14);
        assert_eq!(AsyncEvent::from_dw0(ev.to_dw0()), ev);
    } else {
        assert!(data.len() < 64);
    }
    if let Ok(cqe) = Cqe::parse(data) {
        assert_eq!(&cqe.to_bytes()[..], &data[..16]);
        let st = cqe.status();
        assert_eq!(Status::from_field(st.to_field()), st);
    } else {
        assert!(data.len() < 16);
    }
});
