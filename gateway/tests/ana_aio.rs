//! ANA (per listener, per group) and AIO bdevs on the gateway's data path,
//! driven turn by turn: the ANA log page, the ANA change event and its
//! mask-until-read rule, IO refused on an inaccessible group, reads and
//! writes through a file-backed bdev, and the teardown rule (a torn-down
//! queue pair with AIO in flight closes only after those commands finished).

mod common;

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use corepath_gateway::config::NamespaceParams;
use protocol::fabrics::CNTLID_DYNAMIC;
use protocol::features::{aen_config, fid, set_features_sqe, AsyncEvent};
use protocol::identify::{cns, identify_sqe};
use protocol::log::{lid, parse_ana_log, AnaState, GetLogPage, ANA_LSP_RGO};
use protocol::opcode::admin;
use protocol::status::path;
use protocol::{IdentifyController, IdentifyNamespace, Sqe, StatusCodeType};

const AIO_NSID: u32 = 2;
const AIO_FILE_BYTES: u64 = 4 << 20;

fn admin_sqe(opc: u8) -> Sqe {
    Sqe { opc, ..Default::default() }
}

/// A zeroed file on a disk-backed filesystem (O_DIRECT works there; tmpfs refuses it).
fn aio_file(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.img", std::process::id()));
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(AIO_FILE_BYTES).unwrap();
    path
}

/// The rig plus namespace 2 = AIO bdev on `file`.
fn rig_with_aio(file: &std::path::Path) -> Rig {
    let rig = Rig::new();
    {
        let mut state = rig.state.lock().unwrap();
        state.bdev_aio_create("Aio0", file.to_str().unwrap(), None, None).unwrap();
        let params = NamespaceParams { bdev_name: "Aio0".into(), nsid: Some(AIO_NSID), ..Default::default() };
        state.add_ns(SUBNQN, params).unwrap();
    }
    rig
}

/// Runs turns (sleeping a little between them: AIO completes in the kernel)
/// until `n` completions arrived on `h`.
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

fn file_bytes(file: &std::path::Path, lba: u64, nlb: u32) -> Vec<u8> {
    let f = std::fs::File::open(file).unwrap();
    let mut buf = vec![0u8; (nlb * BLOCK_SIZE) as usize];
    f.read_exact_at(&mut buf, lba * u64::from(BLOCK_SIZE)).unwrap();
    buf
}

#[test]
fn aio_namespace_reads_back_what_was_written_and_the_file_holds_it() {
    let file = aio_file("rw");
    let mut rig = rig_with_aio(&file);
    let (_admin, io, _) = rig.controller_with_io(HOST_A, 10_000);
    let data = pattern(24, 7);
    io.submit(write_sqe(AIO_NSID, 5, 24), data.clone());
    let c = wait_completions(&mut rig, &io, 1);
    assert!(c[0].is_success(), "{:?}", c[0].status());
    assert_eq!(file_bytes(&file, 5, 24), data, "the write is in the file");
    io.submit(read_sqe(AIO_NSID, 5, 24), vec![]);
    let c = wait_completions(&mut rig, &io, 1);
    assert!(c[0].is_success(), "{:?}", c[0].status());
    assert_eq!(c[0].data, data);
    // Flush goes through AIO too (IOCB_CMD_FDSYNC).
    io.submit(Sqe { opc: protocol::opcode::io::FLUSH, nsid: AIO_NSID, ..Default::default() }, vec![]);
    let c = wait_completions(&mut rig, &io, 1);
    assert!(c[0].is_success(), "flush: {:?}", c[0].status());
    // Past the end: refused before reaching the file.
    let last = AIO_FILE_BYTES / u64::from(BLOCK_SIZE);
    io.submit(read_sqe(AIO_NSID, last - 1, 2), vec![]);
    wait_completions(&mut rig, &io, 1)[0].assert_generic(protocol::status::generic::LBA_OUT_OF_RANGE);
    let _ = std::fs::remove_file(file);
}

#[test]
fn peer_closed_queue_pair_sends_every_in_flight_aio_completion_before_it_is_closed() {
    let file = aio_file("close");
    let mut rig = rig_with_aio(&file);
    let (_admin, io, _) = rig.controller_with_io(HOST_A, 10_000);
    const WRITES: u32 = 32;
    const NLB: u32 = 128; // 64 KiB each
    for i in 0..WRITES {
        io.submit(write_sqe(AIO_NSID, u64::from(i * NLB), NLB), pattern(NLB, i as u8));
    }
    rig.turn(); // read, prepared, submitted
    io.close(); // the host goes away with the writes on the file
    let start = Instant::now();
    let mut completions = Vec::new();
    let mut saw_draining = false;
    while !io.is_closed() {
        rig.turn();
        completions.extend(io.take_completions());
        saw_draining |= !io.is_closed() && rig.reactor.poller().aio_in_flight() > 0;
        assert!(start.elapsed() < Duration::from_secs(10), "queue pair not closed after 10 s");
    }
    completions.extend(io.take_completions());
    // Closed only once every command accepted had finished: all 32 CQEs went out before the close.
    assert_eq!(completions.len(), WRITES as usize, "every in-flight write completed before the close");
    assert!(completions.iter().all(|c| c.is_success()));
    assert_eq!(rig.reactor.poller().aio_in_flight(), 0);
    for i in 0..WRITES {
        assert_eq!(file_bytes(&file, u64::from(i * NLB), NLB), pattern(NLB, i as u8), "write {i}");
    }
    eprintln!("draining observed: {saw_draining}");
    let _ = std::fs::remove_file(file);
}

#[test]
fn keep_alive_expired_io_queue_executes_nothing_more_and_closes_after_its_aio_finished() {
    let file = aio_file("kato");
    let mut rig = rig_with_aio(&file);
    let (_admin, io, _) = rig.controller_with_io(HOST_A, 1_000);
    for i in 0..8u32 {
        io.submit(write_sqe(AIO_NSID, u64::from(i * 128), 128), pattern(128, i as u8));
    }
    rig.turn();
    // KATO runs out; a write arrives after it (a host that failed over and sends late).
    rig.clock.advance_ns(2_000 * MS);
    io.submit(write_sqe(AIO_NSID, 4000, 8), pattern(8, 0xEE));
    let start = Instant::now();
    let mut completions = Vec::new();
    while !io.is_closed() {
        rig.turn();
        completions.extend(io.take_completions());
        assert!(start.elapsed() < Duration::from_secs(10), "queue pair not closed after 10 s");
        std::thread::sleep(Duration::from_micros(100));
    }
    completions.extend(io.take_completions());
    assert_eq!(completions.len(), 8, "the 8 accepted writes completed; the late one got nothing");
    assert!(file_bytes(&file, 4000, 8).iter().all(|&b| b == 0), "the late write was not executed");
    for i in 0..8u32 {
        assert_eq!(file_bytes(&file, u64::from(i * 128), 128), pattern(128, i as u8));
    }
    let _ = std::fs::remove_file(file);
}

fn ana_rig() -> Rig {
    Rig::with(RigConfig { ana_reporting: true, ..Default::default() })
}

fn set_state(rig: &Rig, addr: &corepath_gateway::config::ListenAddress, state: AnaState, group: Option<u32>) {
    rig.state.lock().unwrap().set_ana_state(SUBNQN, addr, state, group).unwrap();
}

#[test]
fn identify_reports_ana_capabilities_and_the_namespace_group() {
    let mut rig = ana_rig();
    let (h, _) = rig.controller(HOST_A, 10_000);
    let id = IdentifyController::parse(&rig.exec(&h, identify_sqe(cns::CONTROLLER, 0), vec![]).data).unwrap();
    assert_eq!(id.cmic & 0b1000, 0b1000, "CMIC bit 3: ANA reporting");
    assert_eq!(id.anacap, 0b0100_0111, "optimized, non-optimized, inaccessible; ANAGRPID does not change");
    assert_eq!(id.anatt, 10);
    assert_eq!((id.anagrpmax, id.nanagrpid), (32, 32));
    assert_eq!(id.mnan, id.nn, "MNAN must be non-zero with ANA reporting (Linux refuses 0)");
    assert!(id.mnan > 0);
    assert_ne!(id.oaes & (1 << 11), 0, "OAES bit 11: ANA change notices");
    let ns = IdentifyNamespace::parse(&rig.exec(&h, identify_sqe(cns::NAMESPACE, 1), vec![]).data).unwrap();
    assert_eq!((ns.anagrpid, ns.nmic & 1), (1, 1));
}

#[test]
fn ana_log_page_shows_the_state_of_the_listener_the_controller_connected_through() {
    let mut rig = ana_rig();
    let other = tcp_addr("127.0.0.3", "4420");
    rig.state.lock().unwrap().add_listener(SUBNQN, other.clone()).unwrap();
    set_state(&rig, &listen_addr(), AnaState::Inaccessible, Some(1));
    let (h, _) = rig.controller(HOST_A, 10_000);
    let c = rig.exec(&h, GetLogPage::new(lid::ANA, 4096, 0).to_sqe(0), vec![]);
    let (hdr, groups) = parse_ana_log(&c.data).unwrap();
    assert_eq!((hdr.chgcnt, hdr.ngrps), (1, 1));
    assert_eq!((groups[0].anagrpid, groups[0].chgcnt, groups[0].state), (1, 1, AnaState::Inaccessible));
    assert_eq!(groups[0].nsids, vec![1]);
    // RGO: the descriptors without NSIDs.
    let mut rgo = GetLogPage::new(lid::ANA, 4096, 0);
    rgo.lsp = ANA_LSP_RGO;
    let (_, groups) = parse_ana_log(&rig.exec(&h, rgo.to_sqe(0), vec![]).data).unwrap();
    assert!(groups[0].nsids.is_empty());
    // Offset and length: 8 bytes from byte 16 are the first descriptor's ANAGRPID and NNSID.
    let part = rig.exec(&h, GetLogPage::new(lid::ANA, 8, 16).to_sqe(0), vec![]);
    assert_eq!(part.data, [1, 0, 0, 0, 1, 0, 0, 0]);
    // A controller that came in on the other listener sees that listener's state: optimized.
    let h2 = rig.add_qpair_at(other);
    let c = rig.exec(&h2, connect_sqe(0, 31, 10_000), connect_data(CNTLID_DYNAMIC, SUBNQN, HOST_B));
    assert!(c.is_success(), "{:?}", c.status());
    rig.enable(&h2);
    let (hdr, groups) =
        parse_ana_log(&rig.exec(&h2, GetLogPage::new(lid::ANA, 4096, 0).to_sqe(0), vec![]).data).unwrap();
    assert_eq!((hdr.chgcnt, groups[0].state), (0, AnaState::Optimized));
}

#[test]
fn io_to_an_inaccessible_group_fails_with_ana_inaccessible_and_is_not_executed() {
    let mut rig = ana_rig();
    let (_admin, io, _) = rig.controller_with_io(HOST_A, 10_000);
    set_state(&rig, &listen_addr(), AnaState::Inaccessible, None);
    let c = rig.exec(&io, write_sqe(1, 10, 4), pattern(4, 3));
    let s = c.status();
    assert_eq!((s.sct, s.sc, s.dnr), (StatusCodeType::Path, path::ANA_INACCESSIBLE, false));
    assert!(rig.bdev_bytes(10, 4).iter().all(|&b| b == 0), "not executed");
    let c = rig.exec(&io, read_sqe(1, 10, 4), vec![]);
    assert_eq!((c.status().sct, c.status().sc), (StatusCodeType::Path, path::ANA_INACCESSIBLE));
    set_state(&rig, &listen_addr(), AnaState::NonOptimized, Some(1));
    assert!(rig.exec(&io, write_sqe(1, 10, 4), pattern(4, 3)).is_success(), "non-optimized executes IO");
    assert_eq!(rig.bdev_bytes(10, 4), pattern(4, 3));
}

#[test]
fn ana_change_event_fires_once_until_the_host_reads_the_ana_log() {
    let mut rig = ana_rig();
    let (h, _) = rig.controller(HOST_A, 10_000);
    assert!(rig
        .exec(&h, set_features_sqe(fid::ASYNC_EVENT_CONFIG, aen_config::ANA_CHANGE_NOTICES, false), vec![])
        .is_success());
    rig.exec_no_completion(&h, admin_sqe(admin::ASYNC_EVENT_REQUEST), vec![]);
    set_state(&rig, &listen_addr(), AnaState::Inaccessible, Some(1));
    rig.turn();
    let c = h.take_completions();
    assert_eq!(c.len(), 1, "one AEN for the change");
    assert_eq!(c[0].cqe.dw0, 0x000C_0302, "Notice (2), ANA change (03h), log page 0Ch");
    assert_eq!(AsyncEvent::from_dw0(c[0].cqe.dw0), AsyncEvent::ana_change());
    // Masked until the log is read: a second change raises nothing.
    rig.exec_no_completion(&h, admin_sqe(admin::ASYNC_EVENT_REQUEST), vec![]);
    set_state(&rig, &listen_addr(), AnaState::Optimized, Some(1));
    for _ in 0..4 {
        rig.turn();
    }
    assert!(h.take_completions().is_empty(), "masked until the ANA log is read");
    // Reading with RAE set keeps the mask.
    let mut keep = GetLogPage::new(lid::ANA, 4096, 0);
    keep.rae = true;
    assert!(rig.exec(&h, keep.to_sqe(0), vec![]).is_success());
    set_state(&rig, &listen_addr(), AnaState::NonOptimized, Some(1));
    rig.turn();
    assert!(h.take_completions().is_empty(), "RAE read does not unmask");
    // Reading the log (RAE clear) unmasks; it showed the latest state, so no event for what it showed.
    let (hdr, _) = parse_ana_log(&rig.exec(&h, GetLogPage::new(lid::ANA, 4096, 0).to_sqe(0), vec![]).data).unwrap();
    assert_eq!(hdr.chgcnt, 3);
    rig.turn();
    assert!(h.take_completions().is_empty());
    // The next change notifies again, on the AER still held.
    set_state(&rig, &listen_addr(), AnaState::Inaccessible, Some(1));
    rig.turn();
    let c = h.take_completions();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].cqe.dw0, 0x000C_0302);
}
