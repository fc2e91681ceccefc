//! Packet-capture conformance: a real session between our host engine and our
//! gateway over loopback (connect, identify, writes and reads of 512 B to
//! 1 MiB), with digests off and on, captured with Debian's tshark and checked
//! PDU by PDU with its NVMe/TCP dissector: nothing malformed or undecodable,
//! ICReq/ICResp with PFV 0 and the digests asked for, every command answered
//! on its own connection (Asynchronous Event Requests excepted: they stay
//! outstanding until an event), R2T/H2CData/C2HData consistent with their
//! commands, and every digest verified by tshark when negotiated.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use engine::{ControllerOptions, Engine, EngineOptions, IdlePolicy, IoBuf, IoChannel, IoOp, RingIo, TransportId};
use gateway::GatewayOptions;
use rpc::GatewayService;
use serde_json::json;
use transport_tcp::{TcpHostTransport, TcpTargetTransport};

const TSHARK: &str = "/usr/bin/tshark";
/// Debian ships it with tshark (package wireshark-common).
const EDITCAP: &str = "/usr/bin/editcap";
const NQN: &str = "nqn.2021-06.io.spdk:capture";
/// The dissector's default port, so the capture reads as any NVMe/TCP trace would.
const PORT: &str = "4420";
const BLOCK_SIZE: u32 = 512;
const NUM_BLOCKS: u64 = 16 * 1024 * 1024 / BLOCK_SIZE as u64;
/// IO sizes: below, at and above the 4 KiB in-capsule limit (R2T from 8 KiB on),
/// one H2CData PDU's worth (128 KiB) and a full MDTS (1 MiB).
const IO_SIZES_BYTES: [u32; 5] = [512, 4096, 8192, 128 * 1024, 1024 * 1024];

/// A running `tshark -w` on `lo`; stopped with SIGINT when dropped.
struct Capture {
    child: Option<Child>,
    stderr_lines: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Capture {
    /// Starts capturing TCP to and from `addr`:4420 into `pcap`; returns once
    /// tshark has announced the capture and dumpcap has written the file header.
    fn start(addr: &str, pcap: &Path) -> Capture {
        assert!(
            Path::new(TSHARK).exists(),
            "{TSHARK} is missing: this test needs Debian's tshark (install it with scripts/install-deps.sh)"
        );
        let filter = format!("host {addr} and tcp port {PORT}");
        let mut child = Command::new(TSHARK)
            .args(["-i", "lo", "-f", &filter, "-B", "64", "-w"])
            .arg(pcap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {TSHARK}: {e} (install it with scripts/install-deps.sh)"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut cap = Capture { child: Some(child), stderr_lines: rx, stderr_seen: Vec::new() };
        // tshark prints "Capturing on" before dumpcap has opened the device;
        // dumpcap writes the file's header only once the capture (with its
        // filter) is open, so wait for both.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut announced = false;
        while Instant::now() < deadline {
            while let Ok(line) = cap.stderr_lines.try_recv() {
                announced |= line.contains("Capturing on");
                cap.stderr_seen.push(line);
            }
            let header_written = std::fs::metadata(pcap).is_ok_and(|m| m.len() > 0);
            if announced && header_written {
                return cap;
            }
            if let Some(status) = cap.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                // Reaped: its PID must not be signalled again.
                cap.child = None;
                panic!("tshark exited ({status}) before capturing; its stderr:\n{}", cap.stderr_seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("tshark did not start capturing on lo within 20 s; its stderr:\n{}", cap.stderr_seen.join("\n"));
    }

    /// Stops tshark (SIGINT, so it flushes the file) and returns its stderr.
    fn stop(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            interrupt_and_wait(&mut child);
        }
        // The reader thread ends at EOF once tshark has exited.
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_secs(2)) {
            self.stderr_seen.push(line);
        }
        self.stderr_seen.join("\n")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            interrupt_and_wait(&mut child);
        }
    }
}

/// SIGINT to our own child by its PID, then wait; SIGKILL if it lingers.
fn interrupt_and_wait(child: &mut Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else { return };
    // SAFETY: kill(2) on the PID of a child we spawned and have not reaped yet,
    // so the PID cannot have been reused by another process.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A scratch directory removed when the test passes (kept for diagnosis when it fails).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("corepath-capture-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating scratch dir");
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("capture kept for diagnosis in {}", self.0.display());
        }
    }
}

/// Byte `j` of the data written by IO number `io_index` (distinct per IO and per session).
fn pattern_byte(io_index: usize, j: usize, digests: bool) -> u8 {
    (j.wrapping_mul(7) ^ (io_index * 31) ^ usize::from(digests)) as u8
}

/// Runs one host session against an in-process gateway listening on `addr`:4420.
fn run_session(addr: &str, digests: bool) {
    let opts = GatewayOptions { cores: vec![0], idle: IdlePolicy::adaptive(), ..GatewayOptions::default() };
    let service = GatewayService::start(TcpTargetTransport::new(), opts).expect("starting the gateway");
    let calls = [
        ("nvmf_create_transport", json!({"trtype": "TCP"})),
        ("bdev_malloc_create", json!({"name": "Malloc0", "num_blocks": NUM_BLOCKS, "block_size": BLOCK_SIZE})),
        (
            "nvmf_create_subsystem",
            json!({"nqn": NQN, "serial_number": "CAPTURE_0", "allow_any_host": true,
                   "min_cntlid": 1, "max_cntlid": 32760}),
        ),
        ("nvmf_subsystem_add_ns", json!({"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}})),
        (
            "nvmf_subsystem_add_listener",
            json!({"nqn": NQN, "listen_address": {"trtype": "TCP", "adrfam": "IPv4", "traddr": addr, "trsvcid": PORT}}),
        ),
    ];
    for (method, params) in calls {
        service.call(method, params).unwrap_or_else(|e| panic!("{method}: {e}"));
    }

    let mut host_opts = EngineOptions::on_cores(&[0]);
    host_opts.idle = IdlePolicy::adaptive();
    let engine = Engine::start(host_opts, |_| TcpHostTransport::new()).expect("starting the host engine");
    let trid = TransportId::tcp(addr, PORT, NQN);
    let ctrlr_opts = ControllerOptions { header_digest: digests, data_digest: digests, ..ControllerOptions::default() };
    let ctrlr = engine.attach_controller(&trid, &ctrlr_opts).unwrap_or_else(|e| panic!("attaching {trid}: {e}"));
    let nsid = ctrlr.data.namespaces.first().expect("the subsystem has a namespace").nsid;
    let ns = ctrlr.namespace(nsid).expect("namespace handle");
    assert_eq!(ns.block_size, BLOCK_SIZE);

    let (chan, job): (IoChannel, _) = IoChannel::new(4);
    engine.spawn_job(0, Box::new(job)).expect("spawning the ring job");
    let mut lba = 0u64;
    for (i, &len) in IO_SIZES_BYTES.iter().enumerate() {
        let blocks = len / BLOCK_SIZE;
        let mut wbuf = IoBuf::new(len as usize);
        for (j, b) in wbuf.as_mut_slice().iter_mut().enumerate() {
            *b = pattern_byte(i, j, digests);
        }
        let expected = wbuf.as_slice().to_vec();
        let tag = i as u64 * 2;
        let io = RingIo { ns: ns.clone(), op: IoOp::Write, lba, num_blocks: blocks, buf: Some(wbuf), tag };
        chan.submit(io).expect("ring has room");
        let done = chan.wait_completion(Duration::from_secs(10)).expect("write completes");
        assert!(done.status.is_success(), "write of {len} bytes: {}", done.status);

        let io = RingIo {
            ns: ns.clone(),
            op: IoOp::Read,
            lba,
            num_blocks: blocks,
            buf: Some(IoBuf::new(len as usize)),
            tag: tag + 1,
        };
        chan.submit(io).expect("ring has room");
        let done = chan.wait_completion(Duration::from_secs(10)).expect("read completes");
        assert!(done.status.is_success(), "read of {len} bytes: {}", done.status);
        let got = done.buf.expect("read buffer comes back");
        assert!(
            got.as_slice() == expected.as_slice(),
            "read of {len} bytes at lba {lba} differs from what was written"
        );
        lba += u64::from(blocks);
    }
    chan.close();
    engine.detach_controller(&ctrlr);
    engine.shutdown();
    service.shutdown();
}

// ---------------------------------------------------------------------------
// Reading the capture back through tshark's dissector.

/// NVMe/TCP PDU types (NVMe/TCP 1.0c §3.6.1).
mod pdu_type {
    pub const IC_REQ: u64 = 0x0;
    pub const IC_RESP: u64 = 0x1;
    pub const H2C_TERM_REQ: u64 = 0x2;
    pub const C2H_TERM_REQ: u64 = 0x3;
    pub const CAPSULE_CMD: u64 = 0x4;
    pub const CAPSULE_RESP: u64 = 0x5;
    pub const H2C_DATA: u64 = 0x6;
    pub const C2H_DATA: u64 = 0x7;
    pub const R2T: u64 = 0x9;
}

const OPC_WRITE: u64 = 0x01;
const OPC_READ: u64 = 0x02;
const OPC_ASYNC_EVENT_REQUEST: u64 = 0x0c;
/// The gateway's default in-capsule data size (`nvmf_create_transport` `-c`).
const IN_CAPSULE_DATA_BYTES: u64 = 4096;
/// tshark's checksum status value for a verified digest (`proto_checksum_vals`).
const DIGEST_GOOD: u64 = 1;
/// Display filter for frames the dissectors could not decode: malformed
/// packets, error-level expert items, and NVMe/TCP bytes the dissector could
/// not attach to a PDU or command ("Unknown Data").
const UNDECODABLE_FILTER: &str = "_ws.malformed || _ws.expert.severity >= error || nvme-tcp.unknown_data";
/// Display filter for a capture that missed segments (then nothing else can be judged).
const INCOMPLETE_FILTER: &str = "tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment";

/// Runs tshark on `pcap` with the NVMe/TCP dissector on port 4420, two passes
/// (so a command knows the frame of its response) and digest verification on.
fn tshark_read(pcap: &Path, extra: &[&str]) -> String {
    let out = Command::new(TSHARK)
        .arg("-r")
        .arg(pcap)
        .args(["-2", "-d", "tcp.port==4420,nvme-tcp"])
        .args(["-o", "nvme-tcp.check_hdgst:TRUE", "-o", "nvme-tcp.check_ddgst:TRUE"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {TSHARK}: {e} (install it with scripts/install-deps.sh)"));
    assert!(
        out.status.success(),
        "tshark {extra:?} on {} failed ({}): {}",
        pcap.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// tshark's one-line summaries of the frames matching a display filter.
fn frames_matching(pcap: &Path, filter: &str) -> Vec<String> {
    tshark_read(pcap, &["-Y", filter]).lines().map(str::to_owned).collect()
}

/// tshark's one-line summaries of `frames` (at most 40 of them).
fn one_line_summaries(pcap: &Path, frames: &[u32]) -> String {
    let mut frames = frames.to_vec();
    frames.sort_unstable();
    frames.dedup();
    frames.truncate(40);
    if frames.is_empty() {
        return String::new();
    }
    let set = frames.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    tshark_read(pcap, &["-Y", &format!("frame.number in {{{set}}}")])
}

/// One NVMe/TCP PDU as the dissector decoded it: the fields of its `nvme-tcp`
/// layer and of the `nvme` layer that follows it (the command or CQE inside).
#[derive(Debug)]
struct Pdu {
    frame: u32,
    /// tshark's TCP stream index: one per connection, so one per NVMe queue.
    stream: u32,
    fields: Vec<(String, String)>,
}

impl Pdu {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn num(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(parse_num)
    }

    /// The first of `names` present (the dissector names fabrics and NVMe fields differently).
    fn first_num(&self, names: &[&str]) -> Option<u64> {
        names.iter().find_map(|n| self.num(n))
    }

    fn flag(&self, name: &str) -> bool {
        self.num(name) == Some(1)
    }

    fn kind(&self) -> u64 {
        self.num("nvme-tcp.type").unwrap_or(u64::MAX)
    }

    /// Bytes of data the PDU carries (PDO points at them; a data digest follows them).
    fn data_bytes(&self) -> u64 {
        let (Some(plen), Some(pdo)) = (self.num("nvme-tcp.plen"), self.num("nvme-tcp.pdo")) else { return 0 };
        if pdo == 0 {
            return 0;
        }
        let ddgst = if self.flag("nvme-tcp.flags.pdu.ddgst") { 4 } else { 0 };
        plen.saturating_sub(pdo).saturating_sub(ddgst)
    }
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The value of XML attribute `key` on a PDML line.
fn xml_attr(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}=\""))? + key.len() + 3;
    let len = line.get(start..)?.find('"')?;
    let raw = line.get(start..start + len)?;
    Some(
        raw.replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Splits tshark's PDML (one element per line) into NVMe/TCP PDUs, in wire order.
fn parse_pdml(pdml: &str, stream_of_frame: &HashMap<u32, u32>) -> Vec<Pdu> {
    let mut pdus: Vec<Pdu> = Vec::new();
    let mut frame = 0u32;
    let mut proto = String::new();
    for line in pdml.lines() {
        let line = line.trim_start();
        if line.starts_with("<packet>") {
            frame = 0;
            proto.clear();
        } else if line.starts_with("<proto ") {
            proto = xml_attr(line, "name").unwrap_or_default();
            if proto == "nvme-tcp" {
                let stream = stream_of_frame.get(&frame).copied().unwrap_or(u32::MAX);
                pdus.push(Pdu { frame, stream, fields: Vec::new() });
            }
        } else if line.starts_with("<field ") {
            let (Some(name), Some(show)) = (xml_attr(line, "name"), xml_attr(line, "show")) else { continue };
            match proto.as_str() {
                "geninfo" if name == "num" => frame = show.parse().unwrap_or(0),
                // The `nvme` layer after an `nvme-tcp` one is that PDU's command or CQE.
                "nvme-tcp" | "nvme" => {
                    if let Some(pdu) = pdus.last_mut().filter(|p| p.frame == frame) {
                        pdu.fields.push((name, show));
                    }
                }
                _ => {}
            }
        }
    }
    pdus
}

/// A command capsule seen on the wire and what followed it.
#[derive(Debug, Default)]
struct CmdRecord {
    frame: u32,
    stream: u32,
    cid: u64,
    qid: Option<u64>,
    opcode: Option<u64>,
    /// Transfer length of a Read or Write (NLB × block size).
    io_bytes: Option<u64>,
    in_capsule_bytes: u64,
    /// The dissector's link to the response ("Cqe in"), or the C2HData with SUCCESS.
    response_frame: Option<u32>,
    /// A CapsuleResp on the same connection links back to this command.
    response_seen: bool,
    r2ts: u32,
    /// The latest R2T: (TTAG, R2TO, R2TL).
    r2t: Option<(u64, u64, u64)>,
    h2c_bytes: u64,
    c2h_bytes: u64,
}

impl CmdRecord {
    fn is_io(&self, opcode: u64) -> bool {
        self.qid.is_some_and(|q| q > 0) && self.opcode == Some(opcode)
    }
}

/// What the dissector showed, and every way the capture departs from NVMe/TCP.
#[derive(Default)]
struct Analysis {
    findings: Vec<(u32, String)>,
    cmds: Vec<CmdRecord>,
    pdus_by_type: BTreeMap<u64, usize>,
    connections: usize,
    commands: usize,
    unanswered_aers: usize,
    digests_verified: usize,
    in_capsule_writes: usize,
    r2t_writes: usize,
}

impl Analysis {
    fn find(&mut self, frame: u32, what: String) {
        self.findings.push((frame, what));
    }
}

/// Checks every PDU of the capture; `digests` is what the host asked for.
fn analyse(pcap: &Path, digests: bool) -> Analysis {
    let mut a = Analysis::default();
    for line in frames_matching(pcap, UNDECODABLE_FILTER) {
        let frame = line.split_whitespace().next().and_then(|f| f.parse().ok()).unwrap_or(0);
        a.find(frame, "malformed, error-level expert info, or bytes the NVMe/TCP dissector could not decode".into());
    }
    let streams: HashMap<u32, u32> = tshark_read(pcap, &["-T", "fields", "-e", "frame.number", "-e", "tcp.stream"])
        .lines()
        .filter_map(|l| {
            let mut it = l.split('\t');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect();
    let pdus = parse_pdml(&tshark_read(pcap, &["-T", "pdml", "-J", "nvme-tcp nvme"]), &streams);

    let mut by_stream: BTreeMap<u32, Vec<&Pdu>> = BTreeMap::new();
    for p in &pdus {
        by_stream.entry(p.stream).or_default().push(p);
        *a.pdus_by_type.entry(p.kind()).or_default() += 1;
    }
    a.connections = by_stream.len();
    let want_digest = if digests { 3 } else { 0 };
    let mut cmds: Vec<CmdRecord> = Vec::new();
    for (&stream, stream_pdus) in &by_stream {
        let max_h2c_data_bytes = check_connection_setup(&mut a, stream_pdus, want_digest);
        // Commands of this connection by (frame, CID), for the dissector's links.
        let mut by_frame_cid: HashMap<(u32, u64), usize> = HashMap::new();
        for p in stream_pdus.iter().filter(|p| !matches!(p.kind(), pdu_type::IC_REQ | pdu_type::IC_RESP)) {
            check_digests(&mut a, p, digests);
            match p.kind() {
                pdu_type::CAPSULE_CMD => {
                    let cid = p.first_num(&["nvme.cmd.cid", "nvme.fabrics.cmd.cid"]).unwrap_or(u64::MAX);
                    let opcode = p.num("nvme.cmd.opc");
                    let qid = p.num("nvme-tcp.cmd.qid");
                    let io_bytes = p.num("nvme.cmd.nlb").map(|n| n * u64::from(BLOCK_SIZE));
                    let response_frame =
                        p.first_num(&["nvme.cqe_pkt", "nvme.fabrics.cqe_pkt"]).and_then(|f| u32::try_from(f).ok());
                    let rec = CmdRecord {
                        frame: p.frame,
                        stream,
                        cid,
                        qid,
                        opcode,
                        io_bytes,
                        in_capsule_bytes: p.data_bytes(),
                        response_frame,
                        ..CmdRecord::default()
                    };
                    by_frame_cid.insert((p.frame, cid), cmds.len());
                    cmds.push(rec);
                }
                pdu_type::CAPSULE_RESP => {
                    let cid = p.first_num(&["nvme.cqe.cid", "nvme.fabrics.cmd.cid"]);
                    let cmd_frame = p.first_num(&["nvme.cmd_pkt", "nvme.fabrics.cmd_pkt"]);
                    let linked = cmd_frame
                        .and_then(|f| u32::try_from(f).ok())
                        .zip(cid)
                        .and_then(|key| by_frame_cid.get(&key).copied());
                    match linked {
                        Some(i) if cmds[i].response_frame == Some(p.frame) => cmds[i].response_seen = true,
                        Some(i) => {
                            let what = format!(
                                "CapsuleResp CID {:#x} points at command frame {} whose response is {:?}",
                                cmds[i].cid, cmds[i].frame, cmds[i].response_frame
                            );
                            a.find(p.frame, what);
                        }
                        None => a.find(p.frame, format!("CapsuleResp (CID {cid:x?}) answers no command on its queue")),
                    }
                }
                pdu_type::R2T => check_r2t(&mut a, p, &mut cmds, stream),
                pdu_type::H2C_DATA | pdu_type::C2H_DATA => {
                    check_data_pdu(&mut a, p, &mut cmds, &by_frame_cid, max_h2c_data_bytes)
                }
                pdu_type::H2C_TERM_REQ | pdu_type::C2H_TERM_REQ => {
                    a.find(p.frame, format!("termination request (FES {:x?})", p.num("nvme-tcp.h2ctermreq.fes")));
                }
                other => a.find(p.frame, format!("PDU of unknown type {other:#x}")),
            }
        }
    }
    check_commands(&mut a, &cmds);
    a.commands = cmds.len();
    a.cmds = cmds;
    a
}

/// ICReq then ICResp open every connection, PFV 0, digests as the host asked
/// (NVMe/TCP 1.0c §3.6.2.2-3); returns the controller's MAXH2CDATA.
fn check_connection_setup(a: &mut Analysis, pdus: &[&Pdu], want_digest: u64) -> Option<u64> {
    let first_frame = pdus.first().map_or(0, |p| p.frame);
    match (pdus.first(), pdus.get(1)) {
        (Some(req), Some(resp)) if req.kind() == pdu_type::IC_REQ && resp.kind() == pdu_type::IC_RESP => {
            for (p, name) in [(req, "icreq"), (resp, "icresp")] {
                let pfv = p.num(&format!("nvme-tcp.{name}.pfv"));
                if pfv != Some(0) {
                    a.find(p.frame, format!("{name} PFV {pfv:?}, expected 0"));
                }
                let dgst = p.num(&format!("nvme-tcp.{name}.digest"));
                if dgst != Some(want_digest) {
                    a.find(p.frame, format!("{name} DGST {dgst:?}, expected {want_digest}"));
                }
            }
        }
        _ => a.find(first_frame, "connection does not open with ICReq then ICResp".into()),
    }
    for p in pdus.iter().skip(2).filter(|p| matches!(p.kind(), pdu_type::IC_REQ | pdu_type::IC_RESP)) {
        a.find(p.frame, "ICReq/ICResp after connection setup".into());
    }
    pdus.get(1).and_then(|p| p.num("nvme-tcp.icresp.maxdata"))
}

/// HDGSTF on every PDU after setup and DDGSTF on every PDU with data when
/// digests were negotiated, none otherwise; and tshark verified each digest.
fn check_digests(a: &mut Analysis, p: &Pdu, digests: bool) {
    let hdgst = p.flag("nvme-tcp.flags.pdu.hdgst");
    let ddgst = p.flag("nvme-tcp.flags.pdu.ddgst");
    let carries_data = p.num("nvme-tcp.pdo").is_some_and(|pdo| pdo > 0);
    if hdgst != digests {
        a.find(p.frame, format!("HDGSTF {hdgst}, header digest negotiated: {digests}"));
    }
    if ddgst != (digests && carries_data) {
        a.find(p.frame, format!("DDGSTF {ddgst}, data digest negotiated: {digests}, PDU carries data: {carries_data}"));
    }
    for (on, field) in [(hdgst, "nvme-tcp.hdgst.status"), (ddgst, "nvme-tcp.ddgst.status")] {
        if !on {
            continue;
        }
        match p.num(field) {
            Some(DIGEST_GOOD) => a.digests_verified += 1,
            other => a.find(p.frame, format!("{field} {other:?}: tshark did not find the digest good")),
        }
    }
}

/// An R2T asks for data of a Write in flight on its queue, within its length.
fn check_r2t(a: &mut Analysis, p: &Pdu, cmds: &mut [CmdRecord], stream: u32) {
    let cid = p.num("nvme-tcp.cmd.cid");
    let in_flight = cmds.iter_mut().rev().find(|c| {
        c.stream == stream && Some(c.cid) == cid && c.frame <= p.frame && c.response_frame.is_none_or(|r| r >= p.frame)
    });
    let Some(cmd) = in_flight else {
        a.find(p.frame, format!("R2T for CID {cid:x?} with no command in flight"));
        return;
    };
    let (ttag, offset, length) = (p.num("nvme-tcp.ttag"), p.num("nvme-tcp.r2t.offset"), p.num("nvme-tcp.r2t.length"));
    let (Some(ttag), Some(offset), Some(length)) = (ttag, offset, length) else {
        a.find(p.frame, "R2T without TTAG/R2TO/R2TL".into());
        return;
    };
    if !cmd.is_io(OPC_WRITE) {
        a.find(p.frame, format!("R2T for command frame {} which is not a Write", cmd.frame));
    }
    if length == 0 || cmd.io_bytes.is_some_and(|n| offset + length > n) {
        a.find(p.frame, format!("R2T {offset}+{length} outside the Write's {:?} bytes", cmd.io_bytes));
    }
    cmd.r2ts += 1;
    cmd.r2t = Some((ttag, offset, length));
}

/// H2CData answers the latest R2T of a Write (its TTAG, inside its window,
/// LAST_PDU on the PDU that ends it, no more than MAXH2CDATA); C2HData
/// belongs to a command in flight.
fn check_data_pdu(
    a: &mut Analysis,
    p: &Pdu,
    cmds: &mut [CmdRecord],
    by_frame_cid: &HashMap<(u32, u64), usize>,
    max_h2c_data_bytes: Option<u64>,
) {
    let cid = p.num("nvme-tcp.cmd.cid").unwrap_or(u64::MAX);
    let link = p.num("nvme-tcp.cmd_pkt").and_then(|f| u32::try_from(f).ok());
    let Some(&i) = link.and_then(|f| by_frame_cid.get(&(f, cid))) else {
        a.find(p.frame, format!("data PDU for CID {cid:#x} the dissector links to no command"));
        return;
    };
    let cmd = &mut cmds[i];
    let (offset, length) = (p.num("nvme-tcp.data.offset").unwrap_or(0), p.num("nvme-tcp.data.length").unwrap_or(0));
    let last = p.flag("nvme-tcp.flags.pdu.data_last");
    if p.data_bytes() != length {
        a.find(p.frame, format!("DATAL {length} but the PDU carries {} bytes", p.data_bytes()));
    }
    if p.kind() == pdu_type::H2C_DATA {
        let Some((ttag, r2t_offset, r2t_length)) = cmd.r2t else {
            a.find(p.frame, format!("H2CData for command frame {} before any R2T", cmd.frame));
            return;
        };
        if p.num("nvme-tcp.ttag") != Some(ttag) {
            a.find(p.frame, format!("H2CData TTAG {:x?}, the R2T gave {ttag:#x}", p.num("nvme-tcp.ttag")));
        }
        let r2t_end = r2t_offset + r2t_length;
        if offset < r2t_offset || offset + length > r2t_end {
            a.find(p.frame, format!("H2CData {offset}+{length} outside R2T {r2t_offset}+{r2t_length}"));
        }
        if max_h2c_data_bytes.is_none_or(|max| length > max) {
            a.find(p.frame, format!("H2CData of {length} bytes, ICResp MAXH2CDATA {max_h2c_data_bytes:?}"));
        }
        if last != (offset + length == r2t_end) {
            a.find(p.frame, format!("H2CData {offset}+{length} LAST_PDU {last}, R2T ends at {r2t_end}"));
        }
        cmd.h2c_bytes += length;
    } else {
        if cmd.response_frame.is_some_and(|r| r < p.frame) {
            a.find(p.frame, format!("C2HData after the response of command frame {}", cmd.frame));
        }
        if let Some(total) = cmd.io_bytes {
            if offset + length > total || last != (offset + length == total) {
                a.find(p.frame, format!("C2HData {offset}+{length} LAST_PDU {last} for a {total}-byte Read"));
            }
        }
        if p.flag("nvme-tcp.flags.pdu.data_success") && cmd.response_frame.is_none() {
            // SUCCESS stands in for the response capsule (NVMe/TCP 1.0c §3.6.2.8).
            cmd.response_frame = Some(p.frame);
            cmd.response_seen = true;
        }
        cmd.c2h_bytes += length;
    }
}

/// Every command has its response (the dissector's link, same CID, same
/// connection) except Asynchronous Event Requests, which by design stay
/// outstanding until an event; Writes carry data in-capsule up to 4 KiB and
/// through R2T/H2CData beyond; Reads get all their data in C2HData.
fn check_commands(a: &mut Analysis, cmds: &[CmdRecord]) {
    for c in cmds {
        if let (Some(r), false) = (c.response_frame, c.response_seen) {
            let what = format!(
                "command CID {:#x}: its response link (frame {r}) is no CapsuleResp for it on its connection",
                c.cid
            );
            a.find(c.frame, what);
        }
        if c.response_frame.is_none() {
            if c.qid == Some(0) && c.opcode == Some(OPC_ASYNC_EVENT_REQUEST) {
                a.unanswered_aers += 1;
            } else {
                a.find(
                    c.frame,
                    format!("command CID {:#x} (opcode {:x?}, qid {:?}) has no response", c.cid, c.opcode, c.qid),
                );
            }
        }
        if c.is_io(OPC_WRITE) {
            let Some(total) = c.io_bytes else { continue };
            if total <= IN_CAPSULE_DATA_BYTES {
                a.in_capsule_writes += 1;
                if c.in_capsule_bytes != total || c.r2ts != 0 {
                    let what = format!(
                        "{total}-byte Write: {} bytes in-capsule, {} R2Ts (expected all in-capsule)",
                        c.in_capsule_bytes, c.r2ts
                    );
                    a.find(c.frame, what);
                }
            } else {
                a.r2t_writes += 1;
                if c.in_capsule_bytes != 0 || c.r2ts == 0 || c.h2c_bytes != total {
                    let what = format!(
                        "{total}-byte Write: {} bytes in-capsule, {} R2Ts, {} bytes of H2CData (expected R2T and all data in H2CData)",
                        c.in_capsule_bytes, c.r2ts, c.h2c_bytes
                    );
                    a.find(c.frame, what);
                }
            }
        }
        if c.is_io(OPC_READ) && c.io_bytes != Some(c.c2h_bytes) {
            a.find(c.frame, format!("Read of {:?} bytes got {} bytes of C2HData", c.io_bytes, c.c2h_bytes));
        }
    }
}

/// Captures one session with or without digests and checks it PDU by PDU.
fn capture_and_check_session(addr: &str, digests: bool) {
    let started = Instant::now();
    let scratch = ScratchDir::new(if digests { "digests" } else { "plain" });
    let pcap = scratch.0.join("session.pcapng");
    let mut capture = Capture::start(addr, &pcap);
    run_session(addr, digests);
    // Let the closing segments reach the capture before stopping it.
    std::thread::sleep(Duration::from_millis(300));
    let tshark_stderr = capture.stop();

    let incomplete = frames_matching(&pcap, INCOMPLETE_FILTER);
    assert!(
        incomplete.is_empty(),
        "the capture missed segments, so the dissection cannot be judged; tshark said:\n{tshark_stderr}\n{}",
        incomplete.join("\n")
    );
    let a = analyse(&pcap, digests);
    let type_name = |t: u64| match t {
        pdu_type::IC_REQ => "ICReq",
        pdu_type::IC_RESP => "ICResp",
        pdu_type::CAPSULE_CMD => "CapsuleCmd",
        pdu_type::CAPSULE_RESP => "CapsuleResp",
        pdu_type::H2C_DATA => "H2CData",
        pdu_type::C2H_DATA => "C2HData",
        pdu_type::R2T => "R2T",
        _ => "other",
    };
    let counts: Vec<String> = a.pdus_by_type.iter().map(|(t, n)| format!("{} {n}", type_name(*t))).collect();
    let summary = format!(
        "{} connections, PDUs: {}; {} commands ({} AERs outstanding by design), {} digests verified, \
         {} in-capsule and {} R2T writes",
        a.connections,
        counts.join(", "),
        a.commands,
        a.unanswered_aers,
        a.digests_verified,
        a.in_capsule_writes,
        a.r2t_writes
    );
    eprintln!("capture of {addr}:{PORT} (digests {digests}): {summary}");

    let mut findings = a.findings.clone();
    let count = |t: u64| a.pdus_by_type.get(&t).copied().unwrap_or(0);
    // Two connections: the admin queue and one IO queue.
    if a.connections != 2 {
        findings.push((0, format!("{} connections captured, expected 2 (admin + one IO queue)", a.connections)));
    }
    for (t, why) in [
        (pdu_type::R2T, "writes over 4 KiB need R2T"),
        (pdu_type::H2C_DATA, "writes over 4 KiB send H2CData"),
        (pdu_type::C2H_DATA, "reads and Identify return C2HData"),
    ] {
        if count(t) == 0 {
            findings.push((0, format!("no {} PDU: {why}", type_name(t))));
        }
    }
    let small_writes = IO_SIZES_BYTES.iter().filter(|&&n| u64::from(n) <= IN_CAPSULE_DATA_BYTES).count();
    if a.in_capsule_writes != small_writes || a.r2t_writes != IO_SIZES_BYTES.len() - small_writes {
        findings.push((0, format!("writes seen: {} in-capsule, {} by R2T", a.in_capsule_writes, a.r2t_writes)));
    }
    if digests && a.digests_verified == 0 {
        findings.push((0, "digests negotiated but tshark verified none".into()));
    }
    if !findings.is_empty() {
        let frames: Vec<u32> = findings.iter().map(|(f, _)| *f).filter(|&f| f > 0).collect();
        let list: Vec<String> = findings.iter().take(60).map(|(f, w)| format!("  frame {f}: {w}")).collect();
        panic!(
            "tshark's NVMe/TCP dissector disagrees with our session ({} findings; {summary}):\n{}\n\
             tshark one-line view of those frames:\n{}\ncapture: {} (read with `tshark -r <file> -2 -d tcp.port==4420,nvme-tcp`)",
            findings.len(),
            list.join("\n"),
            one_line_summaries(&pcap, &frames),
            pcap.display()
        );
    }
    checker_catches_a_lost_response(&pcap, &a, digests);
    if digests {
        checker_catches_a_corrupted_data_byte(&pcap, digests);
    }
    eprintln!("capture checked in {:.1} s", started.elapsed().as_secs_f64());
}

/// The checker is not vacuous: with the response of an R2T Write cut out of
/// the capture, it reports that command as unanswered.
fn checker_catches_a_lost_response(pcap: &Path, a: &Analysis, digests: bool) {
    let write = a
        .cmds
        .iter()
        .find(|c| c.is_io(OPC_WRITE) && c.io_bytes.is_some_and(|n| n > IN_CAPSULE_DATA_BYTES))
        .expect("an R2T write was captured");
    let response = write.response_frame.expect("it was answered");
    let cut = pcap.with_file_name("without-one-response.pcapng");
    let out = Command::new(EDITCAP)
        .arg(pcap)
        .arg(&cut)
        .arg(response.to_string())
        .output()
        .unwrap_or_else(|e| panic!("running {EDITCAP}: {e} (it comes with tshark: scripts/install-deps.sh)"));
    assert!(out.status.success(), "editcap failed: {}", String::from_utf8_lossy(&out.stderr));
    let b = analyse(&cut, digests);
    assert!(
        b.findings.iter().any(|(f, w)| *f == write.frame && w.contains("has no response")),
        "with frame {response} removed, the checker should report the Write in frame {} as unanswered; it found: {:?}",
        write.frame,
        b.findings
    );
}

/// The checker is not vacuous: one flipped byte inside the 1 MiB Write's data
/// makes tshark's data digest check fail, and the checker reports it.
fn checker_catches_a_corrupted_data_byte(pcap: &Path, digests: bool) {
    let mut bytes = std::fs::read(pcap).expect("reading the capture");
    let io_index = IO_SIZES_BYTES.len() - 1;
    let needle: Vec<u8> = (600_000..600_064).map(|j| pattern_byte(io_index, j, digests)).collect();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("the 1 MiB Write's data is in the capture");
    bytes[at + 32] ^= 0xff;
    let corrupted = pcap.with_file_name("one-byte-corrupted.pcapng");
    std::fs::write(&corrupted, &bytes).expect("writing the corrupted copy");
    let b = analyse(&corrupted, digests);
    assert!(
        b.findings.iter().any(|(_, w)| w.contains("nvme-tcp.ddgst.status")),
        "with one data byte flipped, the checker should report a bad data digest; it found: {:?}",
        b.findings
    );
}

#[test]
fn session_without_digests_dissects_as_conformant_nvme_tcp() {
    capture_and_check_session("127.0.0.5", false);
}

#[test]
fn session_with_header_and_data_digests_dissects_as_conformant_nvme_tcp() {
    capture_and_check_session("127.0.0.6", true);
}
