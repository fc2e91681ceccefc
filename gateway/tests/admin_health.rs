//! The admin commands SPDK's target answers beside the basic set (issue 11):
//! the SMART / Health Information log and its IO counters, the Commands
//! Supported and Effects log, Identify CNS 06h (NVM command set controller
//! structure), and the Temperature Threshold and Error Recovery features,
//! sent as raw commands through an in-memory queue pair.

mod common;

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use corepath_gateway::config::NamespaceParams;
use protocol::features::{feature_capabilities as caps, fid, get_features_sqe, set_features_sqe, FeatureSelect};
use protocol::identify::{cns, csi, identify_csi_sqe, identify_sqe, IdentifyControllerNvm};
use protocol::log::{cmd_effects, lid, CommandsSupportedAndEffects, GetLogPage, SmartLog};
use protocol::opcode::{admin, io};
use protocol::status::{command_specific as cs, generic};
use protocol::{IdentifyController, Sqe, DISCOVERY_NQN};

const HOUR_NS: u64 = 3_600_000_000_000;

fn smart(rig: &mut Rig, h: &FakeHandle) -> SmartLog {
    let c = rig.exec(h, GetLogPage::new(lid::SMART, 512, 0).to_sqe(0xFFFF_FFFF), vec![]);
    assert!(c.is_success(), "SMART log: {:?}", c.status());
    assert_eq!(c.data.len(), 512);
    SmartLog::parse(&c.data).unwrap()
}

fn write_zeroes_sqe(nsid: u32, slba: u64, nlb: u32) -> Sqe {
    Sqe::rw(io::WRITE_ZEROES, nsid, slba, nlb)
}

// ---------------------------------------------------------------- SMART / health

#[test]
fn smart_log_counts_writes_and_reads_in_thousands_of_512_byte_units_rounded_up() {
    let mut rig = Rig::new();
    let (admin_q, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    let s = smart(&mut rig, &admin_q);
    assert_eq!((s.data_units_written, s.host_write_commands, s.data_units_read, s.host_read_commands), (0, 0, 0, 0));

    // 125 writes of 8 blocks of 512 bytes: 1000 units of 512 bytes, exactly one data unit.
    for i in 0..125u64 {
        let c = rig.exec(&io_q, write_sqe(1, i * 8 % 2000, 8), pattern(8, i as u8));
        assert!(c.is_success(), "{:?}", c.status());
    }
    let s = smart(&mut rig, &admin_q);
    assert_eq!(s.host_write_commands, 125);
    assert_eq!(s.data_units_written, 1);
    // One block more is 1001 units: rounded up, two data units.
    assert!(rig.exec(&io_q, write_sqe(1, 0, 1), pattern(1, 9)).is_success());
    let s = smart(&mut rig, &admin_q);
    assert_eq!((s.host_write_commands, s.data_units_written), (126, 2));

    // Two reads of 128 blocks: 256 units, one data unit; a refused read and
    // Write Zeroes count nowhere (only Write moves Data Units Written).
    assert!(rig.exec(&io_q, read_sqe(1, 0, 128), vec![]).is_success());
    assert!(rig.exec(&io_q, read_sqe(1, 128, 128), vec![]).is_success());
    rig.exec(&io_q, read_sqe(1, NUM_BLOCKS, 1), vec![]).assert_generic(generic::LBA_OUT_OF_RANGE);
    assert!(rig.exec(&io_q, write_zeroes_sqe(1, 0, 64), vec![]).is_success());
    let s = smart(&mut rig, &admin_q);
    assert_eq!((s.host_read_commands, s.data_units_read), (2, 1));
    assert_eq!((s.host_write_commands, s.data_units_written), (126, 2));

    // Nothing else is claimed: no warning, no temperature (no sensor), no spare used.
    assert_eq!(s.critical_warning, 0);
    assert_eq!(s.composite_temperature_k(), 0);
    assert_eq!((s.available_spare, s.available_spare_threshold, s.percentage_used), (100, 10, 0));
    assert_eq!((s.media_errors, s.num_err_log_entries, s.unsafe_shutdowns), (0, 0, 0));
}

#[test]
fn smart_log_power_on_hours_count_whole_hours_since_the_gateway_started() {
    let mut rig = Rig::new();
    let (admin_q, _) = rig.controller(HOST_A, 0);
    assert_eq!(smart(&mut rig, &admin_q).power_on_hours, 0);
    // The rig's clock started at 1 s; 2 h 59 min later it is still hour 2.
    rig.clock.advance_ns(2 * HOUR_NS + 59 * 60_000 * MS);
    assert_eq!(smart(&mut rig, &admin_q).power_on_hours, 2);
    rig.clock.advance_ns(60_000 * MS);
    assert_eq!(smart(&mut rig, &admin_q).power_on_hours, 3);
}

#[test]
fn smart_log_is_per_controller_and_per_controller_only() {
    let mut rig = Rig::new();
    let (a_admin, a_io, _) = rig.controller_with_io(HOST_A, 0);
    let (b_admin, _) = rig.controller(HOST_B, 0);
    assert!(rig.exec(&a_io, write_sqe(1, 0, 16), pattern(16, 1)).is_success());
    assert_eq!(smart(&mut rig, &a_admin).host_write_commands, 1);
    assert_eq!(smart(&mut rig, &b_admin).host_write_commands, 0);
    // NSID 0 reads the same page; a namespace's own page does not exist (LPA bit 0 = 0).
    let c = rig.exec(&a_admin, GetLogPage::new(lid::SMART, 512, 0).to_sqe(0), vec![]);
    assert_eq!(SmartLog::parse(&c.data).unwrap().host_write_commands, 1);
    rig.exec(&a_admin, GetLogPage::new(lid::SMART, 512, 0).to_sqe(1), vec![]).assert_generic(generic::INVALID_FIELD);
    // A part of the page from an offset: bytes 80..96 are Host Write Commands.
    let c = rig.exec(&a_admin, GetLogPage::new(lid::SMART, 16, 80).to_sqe(0xFFFF_FFFF), vec![]);
    assert_eq!(c.data, 1u128.to_le_bytes());
}

/// A zeroed file on a disk-backed filesystem (O_DIRECT works there; tmpfs refuses it).
fn aio_file(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.img", std::process::id()));
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(4 << 20).unwrap();
    path
}

fn wait_completions(rig: &mut Rig, h: &FakeHandle, n: usize) -> Vec<Completion> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < n {
        rig.turn();
        got.extend(h.take_completions());
        assert!(start.elapsed() < Duration::from_secs(10), "{} of {n} completions after 10 s", got.len());
        std::thread::sleep(Duration::from_micros(200));
    }
    got
}

#[test]
fn smart_log_counts_aio_reads_and_writes_when_they_complete() {
    let file = aio_file("smart");
    let mut rig = Rig::new();
    {
        let mut state = rig.state.lock().unwrap();
        state.bdev_aio_create("Aio0", file.to_str().unwrap(), None, None).unwrap();
        let params = NamespaceParams { bdev_name: "Aio0".into(), nsid: Some(2), ..Default::default() };
        state.add_ns(SUBNQN, params).unwrap();
    }
    let (admin_q, io_q, _) = rig.controller_with_io(HOST_A, 0);
    for i in 0..3u64 {
        io_q.submit(write_sqe(2, i * 64, 64), pattern(64, i as u8));
    }
    io_q.submit(Sqe::rw(io::FLUSH, 2, 0, 1), vec![]);
    assert!(wait_completions(&mut rig, &io_q, 4).iter().all(|c| c.is_success()));
    io_q.submit(read_sqe(2, 0, 64), vec![]);
    assert!(wait_completions(&mut rig, &io_q, 1)[0].is_success());
    let f = std::fs::File::open(&file).unwrap();
    let mut first = vec![0u8; 64 * 512];
    f.read_exact_at(&mut first, 0).unwrap();
    assert_eq!(first, pattern(64, 0), "the writes reached the file");
    let s = smart(&mut rig, &admin_q);
    // 3 x 64 blocks = 192 units written (1 data unit), 64 read (1), flush counted nowhere.
    assert_eq!((s.host_write_commands, s.data_units_written), (3, 1));
    assert_eq!((s.host_read_commands, s.data_units_read), (1, 1));
    let _ = std::fs::remove_file(&file);
}

// ---------------------------------------------------------------- Commands Supported and Effects

#[test]
fn effects_log_lists_exactly_the_opcodes_we_execute_with_their_effects() {
    let mut rig = Rig::new();
    let (admin_q, io_q, _) = rig.controller_with_io(HOST_A, 0);
    let c = rig.exec(&admin_q, GetLogPage::new(lid::COMMANDS_SUPPORTED_AND_EFFECTS, 4096, 0).to_sqe(0), vec![]);
    assert!(c.is_success(), "{:?}", c.status());
    let log = CommandsSupportedAndEffects::parse(&c.data).unwrap();
    let (csupp, lbcc) = (cmd_effects::CSUPP, cmd_effects::LBCC);
    let admin_ops = [
        admin::GET_LOG_PAGE,
        admin::IDENTIFY,
        admin::ABORT,
        admin::SET_FEATURES,
        admin::GET_FEATURES,
        admin::ASYNC_EVENT_REQUEST,
        admin::KEEP_ALIVE,
    ];
    for opc in 0..=255u8 {
        let want = if admin_ops.contains(&opc) { csupp } else { 0 };
        assert_eq!(log.acs[usize::from(opc)], want, "admin opcode {opc:#04x}");
    }
    let io_ops = [
        (io::FLUSH, csupp),
        (io::WRITE, csupp | lbcc),
        (io::READ, csupp),
        (io::WRITE_ZEROES, csupp | lbcc),
        (io::DATASET_MANAGEMENT, csupp | lbcc),
    ];
    for opc in 0..=255u8 {
        let want = io_ops.iter().find(|(o, _)| *o == opc).map_or(0, |(_, e)| *e);
        assert_eq!(log.iocs[usize::from(opc)], want, "IO opcode {opc:#04x}");
    }
    assert!(c.data[2048..].iter().all(|&b| b == 0));

    // And the page tells the truth: every opcode it leaves out is refused as
    // Invalid Opcode [01h] (fabrics, 7Fh, is not an NVMe opcode of either set).
    for opc in (0..=255u8).filter(|o| !admin_ops.contains(o) && *o != admin::FABRICS) {
        rig.exec(&admin_q, Sqe { opc, ..Default::default() }, vec![]).assert_generic(generic::INVALID_OPCODE);
    }
    for opc in (0..=255u8).filter(|o| !io_ops.iter().any(|(x, _)| x == o) && *o != io::FABRICS) {
        rig.exec(&io_q, Sqe { opc, nsid: 1, ..Default::default() }, vec![]).assert_generic(generic::INVALID_OPCODE);
    }
}

#[test]
fn effects_log_is_advertised_in_lpa_and_only_for_the_nvm_command_set() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 0);
    let id = IdentifyController::parse(&rig.exec(&h, identify_sqe(cns::CONTROLLER, 0), vec![]).data).unwrap();
    // LPA: Commands Supported and Effects (bit 1) and extended data (bit 2); no per-namespace SMART (bit 0).
    assert_eq!(id.lpa, 0b110);
    // No temperature thresholds reported (the gateway has no sensor).
    assert_eq!((id.wctemp, id.cctemp), (0, 0));
    let mut sqe = GetLogPage::new(lid::COMMANDS_SUPPORTED_AND_EFFECTS, 4096, 0).to_sqe(0xFFFF_FFFF);
    assert!(rig.exec(&h, sqe, vec![]).is_success());
    sqe.cdw14 = u32::from(csi::ZONED) << 24;
    rig.exec(&h, sqe, vec![]).assert_generic(generic::INVALID_FIELD);
    // A read from inside the page: acs[0x18] (Keep Alive) sits at byte 0x60.
    let c = rig.exec(&h, GetLogPage::new(lid::COMMANDS_SUPPORTED_AND_EFFECTS, 8, 0x60).to_sqe(0), vec![]);
    assert_eq!(c.data, [1, 0, 0, 0, 0, 0, 0, 0]);

    let (d, c) = rig.connect_admin(DISCOVERY_NQN, HOST_A, 0);
    assert!(c.is_success());
    rig.enable(&d);
    let id = IdentifyController::parse(&rig.exec(&d, identify_sqe(cns::CONTROLLER, 0), vec![]).data).unwrap();
    assert_eq!(id.lpa, 0b100, "a discovery controller has no effects log");
    rig.exec(&d, GetLogPage::new(lid::COMMANDS_SUPPORTED_AND_EFFECTS, 4096, 0).to_sqe(0), vec![])
        .assert_command_specific(cs::INVALID_LOG_PAGE);
    rig.exec(&d, GetLogPage::new(lid::SMART, 512, 0).to_sqe(0xFFFF_FFFF), vec![])
        .assert_command_specific(cs::INVALID_LOG_PAGE);
}

// ---------------------------------------------------------------- Identify CNS 06h

#[test]
fn identify_cns_06h_nvm_reports_no_size_limits() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 0);
    let c = rig.exec(&h, identify_csi_sqe(cns::IO_COMMAND_SET_CONTROLLER, csi::NVM, 0), vec![]);
    assert!(c.is_success(), "{:?}", c.status());
    assert_eq!(c.data.len(), 4096);
    let nvm = IdentifyControllerNvm::parse(&c.data).unwrap();
    // Verify and Write Uncorrectable unsupported; Write Zeroes and Dataset Management unlimited
    // beyond their own fields (NLB, 256 ranges of 32-bit length): every limit reads 0.
    assert_eq!((nvm.vsl, nvm.wzsl, nvm.wusl, nvm.dmrl, nvm.dmrsl, nvm.dmsl), (0, 0, 0, 0, 0, 0));
    assert!(c.data.iter().all(|&b| b == 0));
    // What "no limit" promises: a Write Zeroes of the largest NLB over MDTS and a Dataset
    // Management of 256 ranges both go through.
    let (_, io_q, _) = rig.controller_with_io(HOST_B, 0);
    assert!(rig.exec(&io_q, write_zeroes_sqe(1, 0, NUM_BLOCKS as u32), vec![]).is_success());
    let mut ranges = vec![0u8; 256 * 16];
    for (i, r) in ranges.chunks_exact_mut(16).enumerate() {
        r[4..8].copy_from_slice(&8u32.to_le_bytes());
        r[8..16].copy_from_slice(&(i as u64 * 8).to_le_bytes());
    }
    let mut dsm = Sqe { opc: io::DATASET_MANAGEMENT, nsid: 1, cdw10: 255, cdw11: 1 << 2, ..Default::default() };
    dsm.dptr = protocol::SglDescriptor::TransportDataBlock { len: 4096 }.to_bytes();
    assert!(rig.exec(&io_q, dsm, ranges).is_success());

    // Other command sets do not exist here; a discovery controller has no such structure.
    rig.exec(&h, identify_csi_sqe(cns::IO_COMMAND_SET_CONTROLLER, csi::ZONED, 0), vec![])
        .assert_generic(generic::INVALID_FIELD);
    let (d, _) = rig.connect_admin(DISCOVERY_NQN, HOST_A, 0);
    rig.enable(&d);
    rig.exec(&d, identify_csi_sqe(cns::IO_COMMAND_SET_CONTROLLER, csi::NVM, 0), vec![])
        .assert_generic(generic::INVALID_FIELD);
}

// ---------------------------------------------------------------- Temperature Threshold, Error Recovery

fn get_feature(rig: &mut Rig, h: &FakeHandle, f: u8, sel: FeatureSelect, nsid: u32, cdw11: u32) -> Completion {
    rig.exec(h, Sqe { nsid, cdw11, ..get_features_sqe(f, sel) }, vec![])
}

fn set_feature(rig: &mut Rig, h: &FakeHandle, f: u8, nsid: u32, cdw11: u32) -> Completion {
    rig.exec(h, Sqe { nsid, ..set_features_sqe(f, cdw11, false) }, vec![])
}

/// Temperature Threshold CDW11: TMPTH, TMPSEL, THSEL (0 over, 1 under).
fn temp(tmpth: u16, tmpsel: u32, thsel: u32) -> u32 {
    u32::from(tmpth) | (tmpsel << 16) | (thsel << 20)
}

#[test]
fn temperature_threshold_keeps_the_composite_over_threshold_and_refuses_the_rest() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 0);
    let all = u32::MAX;
    let f = fid::TEMPERATURE_THRESHOLD;
    // Default: FFFFh, a threshold that no (absent) temperature reaches.
    let c = get_feature(&mut rig, &h, f, FeatureSelect::Current, all, 0);
    assert!(c.is_success(), "{:?}", c.status());
    assert_eq!(c.cqe.dw0, 0xFFFF);
    assert!(set_feature(&mut rig, &h, f, all, temp(350, 0, 0)).is_success());
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Current, 0, 0).cqe.dw0, 350);
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Default, 0, 0).cqe.dw0, 0xFFFF);
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Saved, 0, 0).cqe.dw0, 0xFFFF);
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::SupportedCapabilities, 0, 0).cqe.dw0, caps::CHANGEABLE);
    // TMPSEL 1111b sets every implemented sensor's threshold: the composite one.
    assert!(set_feature(&mut rig, &h, f, 0, temp(340, 0xF, 0)).is_success());
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Current, 0, 0).cqe.dw0, 340);
    assert!(set_feature(&mut rig, &h, f, 0, temp(270, 0xF, 1)).is_success(), "no under threshold exists to set");

    // Refused with Invalid Field [02h]: the composite under threshold (WCTEMP is 0), sensors
    // 1..8 (not implemented), reserved TMPSEL 9..14 and THSEL 10b/11b.
    for cdw11 in
        [temp(270, 0, 1), temp(300, 1, 0), temp(300, 8, 0), temp(300, 9, 0), temp(300, 0xE, 0), temp(300, 0, 2)]
    {
        set_feature(&mut rig, &h, f, 0, cdw11).assert_generic(generic::INVALID_FIELD);
    }
    for cdw11 in [temp(0, 0, 1), temp(0, 1, 0), temp(0, 0xF, 0), temp(0, 0, 3)] {
        get_feature(&mut rig, &h, f, FeatureSelect::Current, 0, cdw11).assert_generic(generic::INVALID_FIELD);
    }
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Current, 0, 0).cqe.dw0, 340, "refusals changed nothing");
    // Controller-wide: a namespace's own threshold is Feature Not Namespace Specific [0Fh];
    // nothing is saveable: Feature Identifier Not Saveable [0Dh].
    set_feature(&mut rig, &h, f, 1, temp(300, 0, 0)).assert_command_specific(0x0F);
    rig.exec(&h, set_features_sqe(f, temp(300, 0, 0), true), vec![]).assert_command_specific(cs::FEATURE_NOT_SAVEABLE);
}

#[test]
fn error_recovery_keeps_tler_per_namespace_and_refuses_dulbe() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 0);
    let all = u32::MAX;
    let f = fid::ERROR_RECOVERY;
    let c = get_feature(&mut rig, &h, f, FeatureSelect::Current, all, 0);
    assert!(c.is_success(), "{:?}", c.status());
    assert_eq!(c.cqe.dw0, 0, "TLER 0 (no time limit), DULBE 0");
    assert_eq!(
        get_feature(&mut rig, &h, f, FeatureSelect::SupportedCapabilities, 1, 0).cqe.dw0,
        caps::CHANGEABLE | caps::NAMESPACE_SPECIFIC
    );
    assert!(set_feature(&mut rig, &h, f, all, 50).is_success());
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Current, all, 0).cqe.dw0, 50);
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Current, 1, 0).cqe.dw0, 50);
    assert!(set_feature(&mut rig, &h, f, 1, 7).is_success());
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Current, 1, 0).cqe.dw0, 7);
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Current, all, 0).cqe.dw0, 50);
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Default, 1, 0).cqe.dw0, 0);
    // DULBE needs NSFEAT bit 2 (DAE), which our namespaces do not report: Invalid Field [02h].
    set_feature(&mut rig, &h, f, all, (1 << 16) | 5).assert_generic(generic::INVALID_FIELD);
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Current, all, 0).cqe.dw0, 50);
    // An inactive namespace: Invalid Namespace or Format [0Bh].
    set_feature(&mut rig, &h, f, 9, 5).assert_generic(generic::INVALID_NAMESPACE);
    get_feature(&mut rig, &h, f, FeatureSelect::Current, 9, 0).assert_generic(generic::INVALID_NAMESPACE);
    // Setting it for every namespace again replaces the one of namespace 1.
    assert!(set_feature(&mut rig, &h, f, all, 0).is_success());
    assert_eq!(get_feature(&mut rig, &h, f, FeatureSelect::Current, 1, 0).cqe.dw0, 0);
}

#[test]
fn discovery_controller_has_neither_feature() {
    let mut rig = Rig::new();
    let (d, _) = rig.connect_admin(DISCOVERY_NQN, HOST_A, 0);
    rig.enable(&d);
    for f in [fid::TEMPERATURE_THRESHOLD, fid::ERROR_RECOVERY] {
        get_feature(&mut rig, &d, f, FeatureSelect::Current, 0, 0).assert_generic(generic::INVALID_FIELD);
        set_feature(&mut rig, &d, f, 0, 0).assert_generic(generic::INVALID_FIELD);
    }
}
