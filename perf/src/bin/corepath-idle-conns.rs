//! Idle connections for a gateway to carry: `--silent` TCP connections that
//! never send a byte (no ICReq), and `--logged-in` admin queues that exchange
//! ICReq/ICResp, do a Fabrics Connect (qid 0, KATO 30 s, CNTLID FFFFh) and
//! then only send a Keep Alive every `--keep-alive-secs` (staggered over the
//! interval) so that the gateway keeps their controllers.
//!
//! Holds them `--seconds` (or until SIGTERM/SIGINT), printing
//! `holding N silent and M logged-in connections` once all are open, then a
//! summary of what the gateway did meanwhile (connections it closed, Keep
//! Alive completions by status), closes them and exits 0. Setup failures
//! (refused connection, Connect failed, no answer in 5 s) exit non-zero.
//!
//! corepath-idle-conns --traddr 127.0.0.2 --trsvcid 4420 \
//!     --subnqn nqn.2021-06.io.spdk:ctc_rbd0 --silent 500 --logged-in 500 --seconds 60

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use protocol::fabrics::{connect_response_cntlid, CNTLID_DYNAMIC};
use protocol::opcode::admin;
use protocol::property::{offset as prop, Cc, Csts};
use protocol::sqe::PSDT_SGL_MPTR_CONTIG;
use protocol::tcp::{CapsuleCmd, CapsuleResp, CommonHeader, IcReq, IcResp, Negotiated, PduType, TermReq};
use protocol::{ConnectData, Cqe, SglDescriptor, Sqe};

/// Most connections one run may hold (both kinds together).
const MAX_CONNECTIONS: usize = 5000;
/// How long each step of a connection's setup may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Admin queue size asked for in Connect (SQSIZE is 0's based).
const ADMIN_QUEUE_ENTRIES: u16 = 32;
/// Largest PDU read from the gateway (a CapsuleResp is 24 bytes, a C2HTermReq at most 152).
const MAX_PDU_BYTES: usize = 8192;

#[derive(Parser, Debug)]
#[command(about = "Hold silent and logged-in (Connect + Keep Alive) NVMe/TCP connections open against a gateway")]
struct Args {
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.2")]
    traddr: String,
    /// Gateway port.
    #[arg(long, default_value_t = 4420)]
    trsvcid: u16,
    /// Subsystem NQN the logged-in connections Connect to.
    #[arg(long, default_value = "nqn.2021-06.io.spdk:ctc_rbd0")]
    subnqn: String,
    /// TCP connections that never send anything.
    #[arg(long, default_value_t = 0)]
    silent: usize,
    /// Connections that do ICReq + Fabrics Connect (admin queue), then only Keep Alive.
    #[arg(long = "logged-in", alias = "logged_in", default_value_t = 0)]
    logged_in: usize,
    /// Seconds to hold them once all are open (SIGTERM/SIGINT end it earlier).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// KATO sent in Connect, ms.
    #[arg(long = "kato-ms", default_value_t = 30_000)]
    kato_ms: u32,
    /// Seconds between Keep Alives on each logged-in connection.
    #[arg(long = "keep-alive-secs", default_value_t = 10)]
    keep_alive_secs: u64,
    /// Also enable each logged-in controller (Property Set CC.EN = 1, wait for CSTS.RDY),
    /// as a real host does; without it Keep Alive completes with Command Sequence Error
    /// (which still counts as traffic for the keep-alive timer).
    #[arg(long)]
    enable: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM and SIGINT set [`STOP`]; no SA_RESTART, so poll(2) returns EINTR at once.
fn install_signal_handlers() -> Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores an atomic
        // (async-signal-safe) and lives for the whole program.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        ensure!(rc == 0, "sigaction: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
fn raise_nofile() -> Result<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid rlimit the call fills in / reads.
    ensure!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0, "getrlimit");
    if r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max;
        // SAFETY: as above.
        ensure!(
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } == 0,
            "setrlimit: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(r.rlim_cur as u64)
}

/// Host NQN and host ID of logged-in connection `i`: a version 4 UUID made of
/// `i`, this process's ID and the start time.
fn host_identity(i: usize, salt: u64) -> (String, [u8; 16]) {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&(i as u32).to_be_bytes());
    id[4..8].copy_from_slice(&std::process::id().to_be_bytes());
    id[8..].copy_from_slice(&salt.to_be_bytes());
    id[6] = (id[6] & 0x0F) | 0x40;
    id[8] = (id[8] & 0x3F) | 0x80;
    let h: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
    (format!("nqn.2014-08.org.nvmexpress:uuid:{uuid}"), id)
}

fn tcp_connect(addr: &SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(addr, STEP_TIMEOUT).with_context(|| format!("connect {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(STEP_TIMEOUT))?;
    s.set_write_timeout(Some(STEP_TIMEOUT))?;
    Ok(s)
}

/// A command capsule for `sqe` without data, as bytes.
fn capsule_bytes(mut sqe: Sqe, neg: &Negotiated) -> Result<Vec<u8>> {
    sqe.flags = (sqe.flags & 0x3F) | PSDT_SGL_MPTR_CONTIG;
    sqe.dptr = SglDescriptor::TransportDataBlock { len: 0 }.to_bytes();
    let mut b = vec![0u8; protocol::tcp::MAX_HEADER_BYTES];
    let n = CapsuleCmd::new(sqe, 0, neg).encode(&mut b).context("encode capsule")?;
    b.truncate(n);
    Ok(b)
}

/// Reads one PDU (blocking, with the stream's read timeout) and returns the CQE of a CapsuleResp.
fn read_response(s: &mut TcpStream, what: &str) -> Result<Cqe> {
    let mut pdu = vec![0u8; CommonHeader::SIZE];
    s.read_exact(&mut pdu).with_context(|| format!("reading the {what} response"))?;
    let ch = CommonHeader::parse(&pdu)?;
    let plen = ch.plen as usize;
    ensure!((CommonHeader::SIZE..=MAX_PDU_BYTES).contains(&plen), "{what}: PDU length {plen}");
    pdu.resize(plen, 0);
    s.read_exact(&mut pdu[CommonHeader::SIZE..]).with_context(|| format!("reading the {what} response"))?;
    if ch.pdu_type == PduType::C2HTermReq as u8 {
        let fes = TermReq::parse(&pdu).map(|t| t.fes).unwrap_or(0);
        bail!("{what}: the gateway terminated the connection (C2HTermReq, FES {fes:#x})");
    }
    Ok(CapsuleResp::parse(&pdu).with_context(|| format!("{what}: expected a CapsuleResp"))?.cqe)
}

fn status_text(c: &Cqe) -> String {
    let st = c.status();
    format!("SCT {:?} SC {:#04x}", st.sct, st.sc)
}

/// One logged-in admin queue.
struct LoggedIn {
    s: TcpStream,
    neg: Negotiated,
    cntlid: u16,
}

/// ICReq/ICResp, Connect on the admin queue, and (with `enable`) CC.EN = 1.
fn log_in(addr: &SocketAddr, subnqn: &str, i: usize, salt: u64, kato_ms: u32, enable: bool) -> Result<LoggedIn> {
    let mut s = tcp_connect(addr)?;
    let mut b = [0u8; 128];
    let n = IcReq::new(0, false, false, 0).encode(&mut b).context("encode ICReq")?;
    s.write_all(&b[..n]).context("send ICReq")?;
    s.read_exact(&mut b).context("reading ICResp")?;
    let ic = IcResp::parse(&b).context("ICResp")?;
    ensure!(!ic.hdgst() && !ic.ddgst(), "ICResp enabled digests we did not ask for");
    let neg = Negotiated {
        hdgst: false,
        ddgst: false,
        max_data_pdu_bytes: ic.maxh2cdata,
        max_in_capsule_bytes: 0,
        rx_pda: 0,
        tx_pda: ic.cpda,
    };

    let (hostnqn, hostid) = host_identity(i, salt);
    let data = ConnectData::new(hostid, CNTLID_DYNAMIC, subnqn, &hostnqn).context("connect data")?.to_bytes();
    let mut sqe = Sqe::connect(0, ADMIN_QUEUE_ENTRIES - 1, kato_ms);
    sqe.dptr = SglDescriptor::DataBlockOffset { offset: 0, len: data.len() as u32 }.to_bytes();
    let mut pdu = vec![0u8; protocol::tcp::MAX_HEADER_BYTES + data.len()];
    let off = CapsuleCmd::new(sqe, data.len() as u32, &neg).encode(&mut pdu).context("encode Connect")?;
    pdu[off..off + data.len()].copy_from_slice(&data);
    pdu.truncate(off + data.len());
    s.write_all(&pdu).context("send Connect")?;
    let c = read_response(&mut s, "Connect")?;
    ensure!(c.status().is_success(), "Connect of {hostnqn} failed: {}", status_text(&c));
    let cntlid = connect_response_cntlid(c.dw0);

    if enable {
        let mut set = Sqe::property_set(prop::CC, false, u64::from(Cc::enable_nvm().to_u32()));
        set.cid = 1;
        s.write_all(&capsule_bytes(set, &neg)?).context("send Property Set CC")?;
        let c = read_response(&mut s, "Property Set CC")?;
        ensure!(c.status().is_success(), "Property Set CC failed: {}", status_text(&c));
        let start = Instant::now();
        loop {
            let mut get = Sqe::property_get(prop::CSTS, false);
            get.cid = 2;
            s.write_all(&capsule_bytes(get, &neg)?).context("send Property Get CSTS")?;
            let c = read_response(&mut s, "Property Get CSTS")?;
            ensure!(c.status().is_success(), "Property Get CSTS failed: {}", status_text(&c));
            if Csts::from_u32(c.dw0).rdy {
                break;
            }
            ensure!(start.elapsed() < STEP_TIMEOUT, "CSTS.RDY not set within {STEP_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(LoggedIn { s, neg, cntlid })
}

/// A held connection.
struct Held {
    s: TcpStream,
    /// Logged-in: what Keep Alive needs; silent: `None`.
    neg: Option<Negotiated>,
    open: bool,
    rx: Vec<u8>,
    next_ka: Instant,
    next_cid: u16,
}

/// What the gateway did while we held the connections.
#[derive(Default)]
struct Tally {
    closed_silent: usize,
    /// Silent connections opened again after the gateway closed them (it
    /// closes those that do not connect in time): the count stays at --silent.
    reopened_silent: usize,
    closed_logged_in: usize,
    silent_bytes: usize,
    ka_sent: u64,
    ka_send_failed: u64,
    completions: BTreeMap<String, u64>,
    other_pdus: BTreeMap<u8, u64>,
}

impl Tally {
    /// Counts the whole PDUs at the start of `h.rx` and drops them.
    fn take_pdus(&mut self, h: &mut Held) {
        let mut at = 0;
        while h.rx.len() - at >= CommonHeader::SIZE {
            let Ok(ch) = CommonHeader::parse(&h.rx[at..]) else { break };
            let plen = (ch.plen as usize).max(CommonHeader::SIZE);
            if h.rx.len() - at < plen {
                break;
            }
            match CapsuleResp::parse(&h.rx[at..at + plen]) {
                Ok(r) if r.cqe.status().is_success() => *self.completions.entry("success".into()).or_default() += 1,
                Ok(r) => *self.completions.entry(status_text(&r.cqe)).or_default() += 1,
                Err(_) => *self.other_pdus.entry(ch.pdu_type).or_default() += 1,
            }
            at += plen;
        }
        h.rx.drain(..at);
        if h.rx.len() > MAX_PDU_BYTES {
            h.rx.clear();
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let total = args.silent + args.logged_in;
    ensure!(total <= MAX_CONNECTIONS, "at most {MAX_CONNECTIONS} connections (asked {total})");
    ensure!(args.keep_alive_secs >= 1, "--keep-alive-secs must be at least 1");
    let nofile = raise_nofile()?;
    ensure!(total as u64 + 32 <= nofile, "RLIMIT_NOFILE {nofile} is too low for {total} connections");
    install_signal_handlers()?;
    let addr = (args.traddr.as_str(), args.trsvcid)
        .to_socket_addrs()
        .with_context(|| format!("resolve {}:{}", args.traddr, args.trsvcid))?
        .next()
        .context("no address")?;
    let salt = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64)?;

    let setup = Instant::now();
    let mut held: Vec<Held> = Vec::with_capacity(total);
    for _ in 0..args.silent {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        let s = tcp_connect(&addr)?;
        held.push(Held { s, neg: None, open: true, rx: Vec::new(), next_ka: setup, next_cid: 0 });
    }
    let mut cntlids = Vec::with_capacity(args.logged_in);
    for i in 0..args.logged_in {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        let l = log_in(&addr, &args.subnqn, i, salt, args.kato_ms, args.enable)
            .with_context(|| format!("logged-in connection {i}"))?;
        cntlids.push(l.cntlid);
        held.push(Held { s: l.s, neg: Some(l.neg), open: true, rx: Vec::new(), next_ka: setup, next_cid: 8 });
    }
    let setup_secs = setup.elapsed().as_secs_f64();

    // Keep Alives staggered over the interval, the first one interval/M after now.
    let start = Instant::now();
    let interval = Duration::from_secs(args.keep_alive_secs);
    let m = args.logged_in.max(1) as u32;
    let mut k = 0u32;
    for h in held.iter_mut() {
        h.s.set_nonblocking(true)?;
        if h.neg.is_some() {
            k += 1;
            h.next_ka = start + interval * k / m;
        }
    }
    let (lo, hi) = (cntlids.iter().min().copied().unwrap_or(0), cntlids.iter().max().copied().unwrap_or(0));
    println!("holding {} silent and {} logged-in connections", args.silent, args.logged_in);
    eprintln!(
        "corepath-idle-conns: opened in {setup_secs:.2} s; controllers {lo}..={hi}; RLIMIT_NOFILE {nofile}; \
         Keep Alive every {} s, KATO {} ms",
        args.keep_alive_secs, args.kato_ms
    );
    let _ = std::io::stdout().flush();

    let deadline = start + Duration::from_secs(args.seconds);
    let ka_pdu =
        |cid: u16, neg: &Negotiated| capsule_bytes(Sqe { opc: admin::KEEP_ALIVE, cid, ..Default::default() }, neg);
    let mut tally = Tally::default();
    let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(total);
    let mut idx: Vec<usize> = Vec::with_capacity(total);
    let mut buf = vec![0u8; 16 * 1024];
    // Bounded: at most one turn per 200 ms plus one per signal or readable socket, until the deadline.
    while !STOP.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let mut next_event = deadline.min(now + Duration::from_millis(200));
        for h in held.iter_mut().filter(|h| h.open) {
            let Some(neg) = h.neg else { continue };
            if now >= h.next_ka {
                h.next_cid = if h.next_cid >= ADMIN_QUEUE_ENTRIES - 1 { 8 } else { h.next_cid + 1 };
                let pdu = ka_pdu(h.next_cid, &neg)?;
                match h.s.write(&pdu) {
                    Ok(n) if n == pdu.len() => tally.ka_sent += 1,
                    _ => tally.ka_send_failed += 1,
                }
                while h.next_ka <= now {
                    h.next_ka += interval;
                }
            }
            next_event = next_event.min(h.next_ka);
        }
        pfds.clear();
        idx.clear();
        for (i, h) in held.iter().enumerate().filter(|(_, h)| h.open) {
            pfds.push(libc::pollfd { fd: h.s.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            idx.push(i);
        }
        let timeout_ms = next_event.saturating_duration_since(Instant::now()).as_millis().min(1000) as libc::c_int;
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds for the duration of the call.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("poll");
        }
        if n == 0 {
            continue;
        }
        for (p, &i) in pfds.iter().zip(&idx) {
            if p.revents == 0 {
                continue;
            }
            let h = &mut held[i];
            // Bounded: a socket holds little; at most 64 reads per turn.
            for _ in 0..64 {
                match h.s.read(&mut buf) {
                    Ok(0) => {
                        h.open = false;
                        break;
                    }
                    Ok(n) => {
                        if h.neg.is_some() {
                            h.rx.extend_from_slice(&buf[..n]);
                        } else {
                            tally.silent_bytes += n;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        h.open = false;
                        break;
                    }
                }
            }
            if h.neg.is_some() {
                tally.take_pdus(h);
            }
            if !h.open {
                let kind = if h.neg.is_some() { "logged-in" } else { "silent" };
                if h.neg.is_some() {
                    tally.closed_logged_in += 1;
                } else {
                    tally.closed_silent += 1;
                }
                let closed = tally.closed_logged_in + tally.closed_silent;
                if closed <= 5 {
                    eprintln!(
                        "corepath-idle-conns: the gateway closed {kind} connection {i} after {:.1} s",
                        start.elapsed().as_secs_f64()
                    );
                }
                // As an attacker would: a closed silent connection is opened again.
                if h.neg.is_none() && !STOP.load(Ordering::SeqCst) {
                    if let Ok(s) = tcp_connect(&addr) {
                        if s.set_nonblocking(true).is_ok() {
                            h.s = s;
                            h.open = true;
                            tally.closed_silent -= 1;
                            tally.reopened_silent += 1;
                        }
                    }
                }
            }
        }
    }
    let held_secs = start.elapsed().as_secs_f64();
    let completions: Vec<String> = tally.completions.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let other: Vec<String> = tally.other_pdus.iter().map(|(t, v)| format!("type {t:#04x}: {v}")).collect();
    println!(
        "held {held_secs:.1} s: silent {}/{} still open ({} reopened after the gateway closed them, {} bytes received), logged-in {}/{} still open; \
         Keep Alive sent {} (failed {}), completions [{}], other PDUs [{}]",
        args.silent - tally.closed_silent,
        args.silent,
        tally.reopened_silent,
        tally.silent_bytes,
        args.logged_in - tally.closed_logged_in,
        args.logged_in,
        tally.ka_sent,
        tally.ka_send_failed,
        completions.join(", "),
        other.join(", ")
    );
    drop(held);
    Ok(())
}
