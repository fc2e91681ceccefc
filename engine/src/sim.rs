//! A simulated fabric: host and target queue pairs joined by in-memory queues
//! instead of sockets, so the real host engine and the real gateway run
//! together in one test, on a [`crate::ManualClock`] if wanted.
//!
//! Test infrastructure, not a production transport: it allocates per capsule
//! and shares state under a mutex. Faults are injected per address: `cut`
//! closes every connection to it (a killed gateway), `blackhole` silently
//! drops traffic both ways (a hung or firewalled one).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use protocol::sgl::SglDescriptor;
use protocol::{Cqe, Sqe};

use crate::opcode_direction_is_read;
use crate::transport::{
    ConnectProgress, HostQpair, HostTransport, QpairOptions, TargetCommand, TargetListener, TargetOptions, TargetQpair,
    TargetTransport, TransportError, XferBuf,
};
use crate::trid::TransportId;

#[derive(Default)]
struct Link {
    to_target: VecDeque<(Sqe, Vec<u8>)>,
    to_host: VecDeque<(Cqe, Vec<u8>)>,
    closed: bool,
    blackholed: bool,
}

#[derive(Default)]
struct Fabric {
    /// Connections waiting to be accepted, per listen address.
    backlog: HashMap<String, VecDeque<Arc<Mutex<Link>>>>,
    /// Every link ever made to an address, for fault injection.
    links: HashMap<String, Vec<Arc<Mutex<Link>>>>,
    blackholed: HashMap<String, bool>,
}

/// The simulated network; clone it freely.
#[derive(Clone, Default)]
pub struct SimNetwork {
    fabric: Arc<Mutex<Fabric>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// The host side, to give an engine.
    pub fn host(&self) -> SimHostTransport {
        SimHostTransport { net: self.clone() }
    }

    /// The target side, to give a gateway.
    pub fn target(&self) -> SimTargetTransport {
        SimTargetTransport { net: self.clone() }
    }

    /// Closes every connection to `traddr:trsvcid` and stops listening there.
    pub fn cut(&self, traddr: &str, trsvcid: &str) {
        let key = format!("{traddr}:{trsvcid}");
        let mut f = lock(&self.fabric);
        f.backlog.remove(&key);
        for l in f.links.remove(&key).unwrap_or_default() {
            lock(&l).closed = true;
        }
    }

    /// Drops (or, with `false`, passes again) all traffic to and from an address.
    pub fn blackhole(&self, traddr: &str, trsvcid: &str, on: bool) {
        let key = format!("{traddr}:{trsvcid}");
        let mut f = lock(&self.fabric);
        f.blackholed.insert(key.clone(), on);
        for l in f.links.get(&key).into_iter().flatten() {
            lock(l).blackholed = on;
        }
    }
}

/// Host side of the simulated fabric.
pub struct SimHostTransport {
    net: SimNetwork,
}

impl HostTransport for SimHostTransport {
    type Qpair = SimHostQpair;

    fn connect(&mut self, trid: &TransportId, opts: &QpairOptions) -> Result<SimHostQpair, TransportError> {
        let key = format!("{}:{}", trid.traddr, trid.trsvcid);
        let mut f = lock(&self.net.fabric);
        let Some(backlog) = f.backlog.get_mut(&key) else {
            return Err(TransportError::Io {
                op: "connect",
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            });
        };
        let link = Arc::new(Mutex::new(Link::default()));
        backlog.push_back(link.clone());
        let blackholed = f.blackholed.get(&key).copied().unwrap_or(false);
        lock(&link).blackholed = blackholed;
        f.links.entry(key).or_default().push(link.clone());
        Ok(SimHostQpair { link, reads: vec![None; usize::from(opts.queue_depth.max(1))] })
    }
}

/// A host queue pair on the simulated fabric.
pub struct SimHostQpair {
    link: Arc<Mutex<Link>>,
    /// Where each outstanding read lands, by CID.
    reads: Vec<Option<(core::ptr::NonNull<u8>, u32)>>,
}

impl HostQpair for SimHostQpair {
    fn poll_connect(&mut self, _now_ns: u64) -> Result<ConnectProgress, TransportError> {
        if lock(&self.link).closed {
            return Err(TransportError::Closed);
        }
        Ok(ConnectProgress::Ready)
    }

    unsafe fn submit(&mut self, sqe: &Sqe, data: XferBuf) -> Result<(), TransportError> {
        // SGL1 as a fabric transport fills it: writes as in-capsule data,
        // reads as a transport data block of the transfer length.
        let mut sqe = *sqe;
        sqe.dptr = match data {
            XferBuf::ToController { len, .. } => SglDescriptor::DataBlockOffset { offset: 0, len },
            XferBuf::FromController { len, .. } => SglDescriptor::TransportDataBlock { len },
            XferBuf::None => SglDescriptor::DataBlockOffset { offset: 0, len: 0 },
        }
        .to_bytes();
        let sqe = &sqe;
        let mut link = lock(&self.link);
        if link.closed {
            return Err(TransportError::Closed);
        }
        let payload = match data {
            XferBuf::ToController { ptr, len } => {
                // SAFETY: the caller guarantees ptr is valid for len bytes until completion.
                unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len as usize) }.to_vec()
            }
            XferBuf::FromController { ptr, len } => {
                let slot = self.reads.get_mut(usize::from(sqe.cid)).ok_or(TransportError::QueueFull)?;
                *slot = Some((ptr, len));
                vec![0; len as usize]
            }
            XferBuf::None => Vec::new(),
        };
        if !link.blackholed {
            link.to_target.push_back((*sqe, payload));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        if lock(&self.link).closed {
            return Err(TransportError::Closed);
        }
        Ok(())
    }

    fn poll<F: FnMut(Cqe)>(&mut self, _now_ns: u64, mut on_done: F) -> Result<usize, TransportError> {
        let mut n = 0;
        loop {
            let next = {
                let mut link = lock(&self.link);
                if link.closed {
                    return Err(TransportError::Closed);
                }
                link.to_host.pop_front()
            };
            let Some((cqe, data)) = next else { break };
            if let Some(Some((ptr, len))) = self.reads.get_mut(usize::from(cqe.cid)).map(Option::take) {
                let n_bytes = data.len().min(len as usize);
                // SAFETY: the read's buffer is valid for len bytes until this completion is reported.
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), n_bytes) };
            }
            on_done(cqe);
            n += 1;
        }
        Ok(n)
    }

    fn in_capsule_data_size(&self) -> u32 {
        u32::MAX
    }
}

impl Drop for SimHostQpair {
    fn drop(&mut self) {
        // Like closing a socket: the peer sees the connection go.
        lock(&self.link).closed = true;
    }
}

/// Target side of the simulated fabric.
pub struct SimTargetTransport {
    net: SimNetwork,
}

impl TargetTransport for SimTargetTransport {
    type Listener = SimListener;

    fn listen(&self, traddr: &str, trsvcid: &str, _opts: &TargetOptions) -> Result<SimListener, TransportError> {
        let key = format!("{traddr}:{trsvcid}");
        lock(&self.net.fabric).backlog.entry(key.clone()).or_default();
        Ok(SimListener { net: self.net.clone(), key })
    }
}

/// A simulated listen address.
pub struct SimListener {
    net: SimNetwork,
    key: String,
}

impl TargetListener for SimListener {
    type Qpair = SimTargetQpair;

    fn accept(&mut self) -> Result<Option<SimTargetQpair>, TransportError> {
        let mut f = lock(&self.net.fabric);
        let link = f.backlog.get_mut(&self.key).and_then(VecDeque::pop_front);
        Ok(link.map(|link| SimTargetQpair { link, slots: Vec::new(), ready: VecDeque::new(), peer: self.key.clone() }))
    }
}

/// A target queue pair on the simulated fabric.
pub struct SimTargetQpair {
    link: Arc<Mutex<Link>>,
    slots: Vec<Option<(Sqe, Vec<u8>)>>,
    ready: VecDeque<u16>,
    peer: String,
}

impl Drop for SimTargetQpair {
    fn drop(&mut self) {
        lock(&self.link).closed = true;
    }
}

impl TargetQpair for SimTargetQpair {
    fn poll(&mut self, _now_ns: u64) -> Result<usize, TransportError> {
        let mut n = 0;
        loop {
            let next = {
                let mut link = lock(&self.link);
                if link.closed {
                    return Err(TransportError::Closed);
                }
                link.to_target.pop_front()
            };
            let Some((sqe, data)) = next else { break };
            let slot = match self.slots.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    self.slots.push(None);
                    self.slots.len() - 1
                }
            };
            self.slots[slot] = Some((sqe, data));
            self.ready.push_back(slot as u16);
            n += 1;
        }
        Ok(n)
    }

    fn next_command(&mut self) -> Option<TargetCommand> {
        let slot = self.ready.pop_front()?;
        let sqe = self.slots.get(usize::from(slot))?.as_ref()?.0;
        Some(TargetCommand { slot, sqe })
    }

    fn data_mut(&mut self, slot: u16) -> &mut [u8] {
        match self.slots.get_mut(usize::from(slot)) {
            Some(Some((_, data))) => data.as_mut_slice(),
            _ => &mut [],
        }
    }

    fn complete(&mut self, slot: u16, cqe: &Cqe, data_len: u32) {
        let Some(Some((sqe, mut data))) = self.slots.get_mut(usize::from(slot)).map(Option::take) else { return };
        if !opcode_direction_is_read(&sqe) {
            data.clear();
        }
        data.truncate(data_len as usize);
        let mut link = lock(&self.link);
        if !link.blackholed {
            link.to_host.push_back((*cqe, data));
        }
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        if lock(&self.link).closed {
            return Err(TransportError::Closed);
        }
        Ok(())
    }

    fn peer_addr(&self) -> String {
        format!("sim:{}", self.peer)
    }
}
