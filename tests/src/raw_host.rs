//! A raw NVMe/TCP host: the transport's host queue pair without the engine's
//! controller logic, so a test can send any capsule (a Connect with a wrong
//! NQN or CNTLID, an oversized write, an unknown opcode) and look at the
//! exact completion, or at how the controller tore the connection down.

use std::ptr::NonNull;
use std::time::{Duration, Instant};

use engine::{ConnectProgress, HostQpair, QpairOptions, TransportError, TransportId, XferBuf};
use protocol::fabrics::{connect_response_cntlid, CNTLID_DYNAMIC};
use protocol::property::{offset as prop, Cc, Csts};
use protocol::{ConnectData, Cqe, Sqe};
use transport_tcp::TcpHostQpair;

/// How long a raw command may take.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a raw exchange failed.
#[derive(Debug)]
pub enum RawError {
    /// The transport failed (closed, terminated by the controller, ...).
    Transport(TransportError),
    /// No answer in time (the queue pair has been dropped).
    Timeout(&'static str),
    /// The queue pair died or timed out earlier.
    Dead,
    /// A command of the bring-up failed.
    Status(&'static str, Cqe),
}

impl From<TransportError> for RawError {
    fn from(e: TransportError) -> Self {
        RawError::Transport(e)
    }
}

/// The data phase of a raw command; the queue pair owns the buffer while
/// the command is in flight.
#[derive(Debug)]
pub enum RawData {
    /// No data.
    None,
    /// Host to controller.
    Write(Vec<u8>),
    /// Controller to host, this many bytes.
    Read(usize),
}

/// One connected queue pair.
pub struct RawQpair {
    q: Option<TcpHostQpair>,
    epoch: Instant,
    next_cid: u16,
    depth: u16,
}

/// A host identity: host NQN and host identifier.
#[derive(Debug, Clone)]
pub struct HostIdentity {
    /// Host NQN.
    pub hostnqn: String,
    /// Host identifier.
    pub hostid: [u8; 16],
}

impl HostIdentity {
    /// A host NQN `nqn.2014-08.org.nvmexpress:uuid:...` derived from `n`, and a matching host ID.
    pub fn numbered(n: u32) -> HostIdentity {
        let mut hostid = [0u8; 16];
        hostid[..4].copy_from_slice(&n.to_be_bytes());
        hostid[4..8].copy_from_slice(&std::process::id().to_be_bytes());
        hostid[6] = (hostid[6] & 0x0F) | 0x40;
        hostid[8] = 0x80;
        HostIdentity { hostnqn: format!("nqn.2014-08.org.nvmexpress:uuid:{}", engine::format_uuid(&hostid)), hostid }
    }
}

impl RawQpair {
    /// Connects the transport (TCP + ICReq/ICResp) for queue `qid`.
    pub fn connect(trid: &TransportId, qid: u16, depth: u16, digests: bool) -> Result<RawQpair, RawError> {
        let opts = QpairOptions {
            qid,
            queue_depth: depth,
            header_digest: digests,
            data_digest: digests,
            connect_timeout_ns: RAW_TIMEOUT.as_nanos() as u64,
        };
        let mut q = TcpHostQpair::connect(trid, &opts)?;
        let epoch = Instant::now();
        loop {
            match q.poll_connect(epoch.elapsed().as_nanos() as u64)? {
                ConnectProgress::Ready => break,
                ConnectProgress::Pending => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        // CID 0 is left free so that tests can pick it.
        Ok(RawQpair { q: Some(q), epoch, next_cid: 1, depth })
    }

    /// Lets writes up to `bytes` go inside the capsule (beyond what the controller allows, if asked).
    pub fn set_in_capsule_data_size(&mut self, bytes: u32) {
        if let Some(q) = self.q.as_mut() {
            q.set_in_capsule_data_size(bytes);
        }
    }

    /// Whether ICResp enabled (header digest, data digest).
    pub fn digests(&self) -> Option<(bool, bool)> {
        self.q.as_ref().map(|q| (q.negotiated().hdgst, q.negotiated().ddgst))
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Sends `sqe` (its CID replaced) with `data` and waits for its
    /// completion; returns it and the data read.
    pub fn execute(&mut self, mut sqe: Sqe, data: RawData) -> Result<(Cqe, Vec<u8>), RawError> {
        let cid = self.next_cid;
        self.next_cid = if self.next_cid + 1 >= self.depth { 1 } else { self.next_cid + 1 };
        sqe.cid = cid;
        let (mut buf, to_controller) = match data {
            RawData::None => (Vec::new(), false),
            RawData::Write(v) => (v, true),
            RawData::Read(n) => (vec![0u8; n], false),
        };
        let len = buf.len() as u32;
        let xfer = match (buf.is_empty(), to_controller) {
            (true, _) => XferBuf::None,
            (false, true) => XferBuf::ToController { ptr: NonNull::from(buf.as_mut_slice()).cast(), len },
            (false, false) => XferBuf::FromController { ptr: NonNull::from(buf.as_mut_slice()).cast(), len },
        };
        let q = self.q.as_mut().ok_or(RawError::Dead)?;
        // SAFETY: `buf` outlives every use the queue pair makes of it: we return only after its completion,
        // an error (queue pair dead) or dropping the queue pair (timeout), and never touch `buf` meanwhile.
        unsafe { q.submit(&sqe, xfer)? };
        let start = Instant::now();
        let mut done = None;
        loop {
            let now = self.now_ns();
            let q = self.q.as_mut().ok_or(RawError::Dead)?;
            q.flush()?;
            q.poll(now, |c| {
                if c.cid == cid {
                    done = Some(c);
                }
            })?;
            if let Some(c) = done {
                return Ok((c, buf));
            }
            if start.elapsed() > RAW_TIMEOUT {
                // Drop the queue pair before the buffer it may still point at.
                self.q = None;
                return Err(RawError::Timeout("command completion"));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Fabrics Connect for this queue with `cntlid`, `subnqn` and `host`.
    pub fn fabrics_connect(
        &mut self,
        qid: u16,
        cntlid: u16,
        subnqn: &str,
        host: &HostIdentity,
    ) -> Result<Cqe, RawError> {
        let data = ConnectData::new(host.hostid, cntlid, subnqn, &host.hostnqn)
            .expect("valid connect data")
            .to_bytes()
            .to_vec();
        let kato_ms = if qid == 0 { 30_000 } else { 0 };
        let sqe = Sqe::connect(qid, self.depth - 1, kato_ms);
        Ok(self.execute(sqe, RawData::Write(data))?.0)
    }

    /// Polls until the controller closes or terminates the connection;
    /// returns how it ended.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<TransportError, RawError> {
        let start = Instant::now();
        loop {
            let now = self.now_ns();
            let q = self.q.as_mut().ok_or(RawError::Dead)?;
            let r = q.flush().and_then(|()| q.poll(now, |_| {}).map(|_| ()));
            if let Err(e) = r {
                return Ok(e);
            }
            if start.elapsed() > timeout {
                return Err(RawError::Timeout("connection close"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A controller brought up by hand: admin queue connected, CC.EN = 1, CSTS.RDY = 1.
pub struct RawController {
    /// The admin queue pair.
    pub admin: RawQpair,
    /// The controller ID the gateway gave.
    pub cntlid: u16,
    /// Who we are.
    pub host: HostIdentity,
    trid: TransportId,
}

impl RawController {
    /// Connects an admin queue to `trid` as `host` and enables the controller.
    pub fn bring_up(trid: &TransportId, host: &HostIdentity) -> Result<RawController, RawError> {
        let mut admin = RawQpair::connect(trid, 0, 32, false)?;
        let c = admin.fabrics_connect(0, CNTLID_DYNAMIC, &trid.subnqn, host)?;
        if !c.status().is_success() {
            return Err(RawError::Status("admin Connect", c));
        }
        let cntlid = connect_response_cntlid(c.dw0);
        let (c, _) =
            admin.execute(Sqe::property_set(prop::CC, false, u64::from(Cc::enable_nvm().to_u32())), RawData::None)?;
        if !c.status().is_success() {
            return Err(RawError::Status("Property Set CC", c));
        }
        let start = Instant::now();
        loop {
            let (c, _) = admin.execute(Sqe::property_get(prop::CSTS, false), RawData::None)?;
            if !c.status().is_success() {
                return Err(RawError::Status("Property Get CSTS", c));
            }
            if Csts::from_u32(c.dw0).rdy {
                break;
            }
            if start.elapsed() > RAW_TIMEOUT {
                return Err(RawError::Timeout("CSTS.RDY"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(RawController { admin, cntlid, host: host.clone(), trid: trid.clone() })
    }

    /// Connects IO queue `qid` of this controller.
    pub fn io_qpair(&self, qid: u16, depth: u16) -> Result<RawQpair, RawError> {
        let mut q = RawQpair::connect(&self.trid, qid, depth, false)?;
        let c = q.fabrics_connect(qid, self.cntlid, &self.trid.subnqn, &self.host)?;
        if !c.status().is_success() {
            return Err(RawError::Status("IO Connect", c));
        }
        Ok(q)
    }
}

/// Plain TCP helpers for bytes no queue pair would send.
pub mod socket {
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use protocol::tcp::{IcReq, TermReq};

    /// Connects to `traddr:port` with read timeouts set.
    pub fn connect(traddr: &str, port: u16) -> TcpStream {
        let s = TcpStream::connect((traddr, port)).unwrap_or_else(|e| panic!("connect {traddr}:{port}: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(100))).expect("set read timeout");
        s.set_nodelay(true).expect("TCP_NODELAY");
        s
    }

    /// An ICReq without digests, 128 bytes.
    pub fn icreq_bytes() -> Vec<u8> {
        let mut b = vec![0u8; 128];
        let n = IcReq::new(0, false, false, 0).encode(&mut b).expect("encode ICReq");
        b.truncate(n);
        b
    }

    /// Connects and exchanges ICReq/ICResp; the stream is then ready for capsules.
    pub fn connect_initialized(traddr: &str, port: u16) -> TcpStream {
        let mut s = connect(traddr, port);
        s.write_all(&icreq_bytes()).expect("send ICReq");
        let mut resp = [0u8; 128];
        let start = Instant::now();
        let mut got = 0;
        while got < resp.len() {
            match s.read(&mut resp[got..]) {
                Ok(0) => panic!("connection closed before ICResp"),
                Ok(n) => got += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading ICResp: {e}"),
            }
            assert!(start.elapsed() < super::RAW_TIMEOUT, "no ICResp");
        }
        assert_eq!(resp[0], 0x01, "expected an ICResp, got PDU type {:#x}", resp[0]);
        s
    }

    /// How a connection ended.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Ending {
        /// Orderly close (read returned 0).
        Closed,
        /// Reset by the peer.
        Reset,
        /// Still open when the time ran out.
        StillOpen,
    }

    /// Reads everything until the peer closes or `timeout` passes.
    pub fn read_until_closed(s: &mut TcpStream, timeout: Duration) -> (Vec<u8>, Ending) {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let start = Instant::now();
        loop {
            match s.read(&mut buf) {
                Ok(0) => return (all, Ending::Closed),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return (all, Ending::Reset),
                Err(e) => panic!("reading: {e}"),
            }
            if start.elapsed() > timeout {
                return (all, Ending::StillOpen);
            }
        }
    }

    /// A command capsule PDU (no digests) carrying `sqe` and `data` in the capsule.
    pub fn capsule_bytes(sqe: protocol::Sqe, data: &[u8]) -> Vec<u8> {
        let neg = protocol::tcp::Negotiated::initial();
        let mut b = vec![0u8; 72];
        let n = protocol::tcp::CapsuleCmd::new(sqe, data.len() as u32, &neg).encode(&mut b).expect("encode capsule");
        b.truncate(n);
        b.extend_from_slice(data);
        b
    }

    /// Reads exactly `n` bytes, or panics after [`super::RAW_TIMEOUT`].
    pub fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        let mut got = 0;
        let start = Instant::now();
        while got < n {
            match s.read(&mut buf[got..]) {
                Ok(0) => panic!("connection closed after {got} of {n} bytes: {:02x?}", &buf[..got]),
                Ok(k) => got += k,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading: {e}"),
            }
            assert!(start.elapsed() < super::RAW_TIMEOUT, "only {got} of {n} bytes came");
        }
        buf
    }

    /// Reads one CapsuleResp PDU (no digests) and returns its completion.
    pub fn read_capsule_resp(s: &mut TcpStream) -> protocol::Cqe {
        let bytes = read_exact(s, 24);
        protocol::tcp::CapsuleResp::parse(&bytes)
            .unwrap_or_else(|e| panic!("expected a CapsuleResp, got {bytes:02x?}: {e:?}"))
            .cqe
    }

    /// The FES of a C2HTermReq at the start of `bytes`, if that is what they hold.
    pub fn c2h_term_req_fes(bytes: &[u8]) -> Option<u16> {
        let t = TermReq::parse(bytes).ok()?;
        (t.ch.pdu_type == protocol::tcp::PduType::C2HTermReq as u8).then_some(t.fes)
    }
}
