//! A simulated fabric: host and target queue pairs joined by in-memory queues
//! instead of sockets, so the real host engine and the real gateway run
//! together in one test, on a [`crate::ManualClock`] if wanted.
//!
//! Test infrastructure, not a production transport: it allocates per capsule
//! and shares state under a mutex. Faults are injected per address:
//! - `cut`: the gateway died; every connection to it closes and nothing listens there;
//! - `reset`: every connection to it is reset by the gateway's side (its unread input is lost);
//! - `blackhole`: nothing passes either way; what was sent waits (as TCP retransmits) and
//!   arrives once the blackhole is lifted, unless the sender closed meanwhile;
//! - `set_delay`: each connection gets a one-way delay drawn from a range; one
//!   connection stays in order (a byte stream), different connections (the admin
//!   queue and an IO queue) overtake each other.
//!
//! Closing follows TCP with RST: what the closer sent before arrives first and stays
//! readable, then the peer reads "closed"; the closer's unread input is lost. Across a
//! blackhole nothing more arrives and the close is seen once the blackhole is lifted. Time is what the test sets with [`SimNetwork::set_now_ns`]
//! (0 if never set: every capsule arrives at once, in order).

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

/// One capsule on the wire, with when it reaches the other end.
struct InFlight<T> {
    arrive_ns: u64,
    msg: T,
    data: Vec<u8>,
}

/// One direction of a link: a byte stream, so capsules arrive in the order sent.
struct Direction<T> {
    queue: VecDeque<InFlight<T>>,
    /// Arrival time of the last capsule sent (the next cannot arrive before it).
    last_arrive_ns: u64,
    /// The sender closed; its RST arrives at the peer after everything sent before.
    closed_arrive_ns: Option<u64>,
}

impl<T> Default for Direction<T> {
    fn default() -> Self {
        Direction { queue: VecDeque::new(), last_arrive_ns: 0, closed_arrive_ns: None }
    }
}

impl<T> Direction<T> {
    /// Queues a capsule sent at `now_ns` that takes `delay_ns` to cross.
    fn send(&mut self, now_ns: u64, delay_ns: u64, msg: T, data: Vec<u8>) {
        let arrive_ns = (now_ns + delay_ns).max(self.last_arrive_ns);
        self.last_arrive_ns = arrive_ns;
        self.queue.push_back(InFlight { arrive_ns, msg, data });
    }

    /// Takes the next capsule if it has arrived.
    fn take_arrived(&mut self, now_ns: u64) -> Option<InFlight<T>> {
        if self.queue.front()?.arrive_ns <= now_ns {
            self.queue.pop_front()
        } else {
            None
        }
    }

    /// The sender closed at `now_ns` (RST). Across a blackhole nothing it sent
    /// arrives any more (it will not retransmit); otherwise what is on the wire
    /// arrives, then the reset.
    fn sender_closed(&mut self, now_ns: u64, delay_ns: u64, blackholed: bool) {
        if blackholed {
            self.queue.clear();
            self.closed_arrive_ns = Some(now_ns);
        } else {
            self.closed_arrive_ns = Some((now_ns + delay_ns).max(self.last_arrive_ns));
        }
    }

    /// The peer reads "closed": the reset arrived and everything before it was read.
    fn peer_sees_closed(&self, now_ns: u64) -> bool {
        self.closed_arrive_ns.is_some_and(|t| t <= now_ns) && self.queue.is_empty()
    }
}

#[derive(Default)]
struct Link {
    to_target: Direction<Sqe>,
    to_host: Direction<Cqe>,
    host_closed: bool,
    target_closed: bool,
    blackholed: bool,
    /// One-way delay of this connection, ns (drawn from the address's range when set).
    delay_ns: u64,
}

impl Link {
    fn host_sees_closed(&self, now_ns: u64) -> bool {
        self.host_closed || (!self.blackholed && self.to_host.peer_sees_closed(now_ns))
    }

    fn target_sees_closed(&self, now_ns: u64) -> bool {
        self.target_closed || (!self.blackholed && self.to_target.peer_sees_closed(now_ns))
    }
}

#[derive(Default)]
struct Fabric {
    /// Connections waiting to be accepted, per listen address.
    backlog: HashMap<String, VecDeque<Arc<Mutex<Link>>>>,
    /// Live links per address, for fault injection.
    links: HashMap<String, Vec<Arc<Mutex<Link>>>>,
    blackholed: HashMap<String, bool>,
    /// Delivery delay range per address, in ns.
    delay: HashMap<String, (u64, u64)>,
    now_ns: u64,
    /// Seeded generator for delays (splitmix64): the same seed, the same run.
    rng: u64,
}

impl Fabric {
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A connection's delay drawn from an address's range.
    fn draw_delay(&mut self, (min, max): (u64, u64)) -> u64 {
        min + if max > min { self.next_random() % (max - min + 1) } else { 0 }
    }
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

    /// An empty network whose delays come from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        let net = Self::default();
        lock(&net.fabric).rng = seed;
        net
    }

    /// The host side, to give an engine.
    pub fn host(&self) -> SimHostTransport {
        SimHostTransport { net: self.clone() }
    }

    /// The target side, to give a gateway.
    pub fn target(&self) -> SimTargetTransport {
        SimTargetTransport { net: self.clone() }
    }

    /// Sets the network's clock (capsules sent now arrive after their delay on it).
    pub fn set_now_ns(&self, now_ns: u64) {
        lock(&self.fabric).now_ns = now_ns;
    }

    /// The gateway at `traddr:trsvcid` died: every connection to it closes
    /// (from its side) and nothing listens there any more.
    pub fn cut(&self, traddr: &str, trsvcid: &str) {
        let key = format!("{traddr}:{trsvcid}");
        let mut f = lock(&self.fabric);
        let now_ns = f.now_ns;
        f.backlog.remove(&key);
        for l in f.links.remove(&key).unwrap_or_default() {
            close_by_target(&mut lock(&l), now_ns);
        }
    }

    /// Resets every connection to `traddr:trsvcid` from the gateway's side;
    /// the address keeps listening. Returns how many were reset.
    pub fn reset(&self, traddr: &str, trsvcid: &str) -> usize {
        let key = format!("{traddr}:{trsvcid}");
        let mut f = lock(&self.fabric);
        let now_ns = f.now_ns;
        let links = f.links.remove(&key).unwrap_or_default();
        for l in &links {
            close_by_target(&mut lock(l), now_ns);
        }
        links.len()
    }

    /// Drops (or, with `false`, passes again) all traffic to and from an
    /// address. Capsules sent meanwhile wait and arrive after it is lifted.
    pub fn blackhole(&self, traddr: &str, trsvcid: &str, on: bool) {
        let key = format!("{traddr}:{trsvcid}");
        let mut f = lock(&self.fabric);
        f.blackholed.insert(key.clone(), on);
        for l in f.links.get(&key).into_iter().flatten() {
            lock(l).blackholed = on;
        }
    }

    /// Each connection to the address gets a one-way delay drawn from
    /// `min_ns..=max_ns` (now, and at connect for new ones). Capsules of one
    /// connection stay in order (a byte stream); those of different
    /// connections (admin and IO queues) overtake each other.
    pub fn set_delay(&self, traddr: &str, trsvcid: &str, min_ns: u64, max_ns: u64) {
        let key = format!("{traddr}:{trsvcid}");
        let mut f = lock(&self.fabric);
        let range = (min_ns, max_ns.max(min_ns));
        f.delay.insert(key.clone(), range);
        let links = f.links.get(&key).cloned().unwrap_or_default();
        for l in links {
            let d = f.draw_delay(range);
            lock(&l).delay_ns = d;
        }
    }

    /// Live connections to an address (accepted or not).
    pub fn connections(&self, traddr: &str, trsvcid: &str) -> usize {
        let key = format!("{traddr}:{trsvcid}");
        lock(&self.fabric).links.get(&key).map_or(0, Vec::len)
    }
}

fn close_by_target(link: &mut Link, now_ns: u64) {
    if !link.target_closed {
        link.target_closed = true;
        let (blackholed, delay_ns) = (link.blackholed, link.delay_ns);
        link.to_host.sender_closed(now_ns, delay_ns, blackholed);
        // The gateway's socket is gone: what it had not read is lost.
        link.to_target.queue.clear();
    }
}

fn close_by_host(link: &mut Link, now_ns: u64) {
    if !link.host_closed {
        link.host_closed = true;
        let (blackholed, delay_ns) = (link.blackholed, link.delay_ns);
        link.to_target.sender_closed(now_ns, delay_ns, blackholed);
        link.to_host.queue.clear();
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
        let blackholed = f.blackholed.get(&key).copied().unwrap_or(false);
        let range = f.delay.get(&key).copied().unwrap_or_default();
        let delay_ns = f.draw_delay(range);
        let Some(backlog) = f.backlog.get_mut(&key) else {
            return Err(TransportError::Io {
                op: "connect",
                os_error: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            });
        };
        let link = Arc::new(Mutex::new(Link { blackholed, delay_ns, ..Link::default() }));
        backlog.push_back(link.clone());
        let links = f.links.entry(key).or_default();
        // Forget links both ends closed, so long runs do not grow the list.
        links.retain(|l| {
            let l = lock(l);
            !(l.host_closed && l.target_closed)
        });
        links.push(link.clone());
        let net = self.net.clone();
        Ok(SimHostQpair { net, link, reads: vec![None; usize::from(opts.queue_depth.max(1))] })
    }
}

/// A host queue pair on the simulated fabric.
pub struct SimHostQpair {
    net: SimNetwork,
    link: Arc<Mutex<Link>>,
    /// Where each outstanding read lands, by CID.
    reads: Vec<Option<(core::ptr::NonNull<u8>, u32)>>,
}

impl SimHostQpair {
    fn now_ns(&self) -> u64 {
        lock(&self.net.fabric).now_ns
    }
}

impl HostQpair for SimHostQpair {
    fn poll_connect(&mut self, _now_ns: u64) -> Result<ConnectProgress, TransportError> {
        let now_ns = self.now_ns();
        if lock(&self.link).host_sees_closed(now_ns) {
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
        let now_ns = self.now_ns();
        let mut link = lock(&self.link);
        if link.host_sees_closed(now_ns) {
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
        if !link.target_closed {
            let delay_ns = link.delay_ns;
            link.to_target.send(now_ns, delay_ns, sqe, payload);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        let now_ns = self.now_ns();
        if lock(&self.link).host_sees_closed(now_ns) {
            return Err(TransportError::Closed);
        }
        Ok(())
    }

    fn poll<F: FnMut(Cqe)>(&mut self, _now_ns: u64, mut on_done: F) -> Result<usize, TransportError> {
        let now_ns = self.now_ns();
        let mut n = 0;
        loop {
            let next = {
                let mut link = lock(&self.link);
                if link.host_sees_closed(now_ns) {
                    return Err(TransportError::Closed);
                }
                if link.blackholed {
                    None
                } else {
                    link.to_host.take_arrived(now_ns)
                }
            };
            let Some(InFlight { msg: cqe, data, .. }) = next else { break };
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
        // Like closing a socket with RST: the peer reads what already arrived, then sees the connection go.
        let now_ns = self.now_ns();
        close_by_host(&mut lock(&self.link), now_ns);
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
        Ok(link.map(|link| SimTargetQpair {
            net: self.net.clone(),
            link,
            slots: Vec::new(),
            ready: VecDeque::new(),
            peer: self.key.clone(),
        }))
    }
}

/// A target queue pair on the simulated fabric.
pub struct SimTargetQpair {
    net: SimNetwork,
    link: Arc<Mutex<Link>>,
    slots: Vec<Option<(Sqe, Vec<u8>)>>,
    ready: VecDeque<u16>,
    peer: String,
}

impl SimTargetQpair {
    fn now_ns(&self) -> u64 {
        lock(&self.net.fabric).now_ns
    }
}

impl Drop for SimTargetQpair {
    fn drop(&mut self) {
        let now_ns = self.now_ns();
        close_by_target(&mut lock(&self.link), now_ns);
    }
}

impl TargetQpair for SimTargetQpair {
    fn poll(&mut self, _now_ns: u64) -> Result<usize, TransportError> {
        let now_ns = self.now_ns();
        let mut n = 0;
        loop {
            let next = {
                let mut link = lock(&self.link);
                if link.target_sees_closed(now_ns) {
                    return Err(TransportError::Closed);
                }
                if link.blackholed {
                    None
                } else {
                    link.to_target.take_arrived(now_ns)
                }
            };
            let Some(InFlight { msg: sqe, data, .. }) = next else { break };
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
        let now_ns = self.now_ns();
        let mut link = lock(&self.link);
        if !link.host_closed && !link.target_closed {
            let delay_ns = link.delay_ns;
            link.to_host.send(now_ns, delay_ns, *cqe, data);
        }
    }

    fn retire(&mut self, slot: u16) {
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            *s = None;
        }
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        let now_ns = self.now_ns();
        if lock(&self.link).target_sees_closed(now_ns) {
            return Err(TransportError::Closed);
        }
        Ok(())
    }

    fn peer_addr(&self) -> String {
        format!("sim:{}", self.peer)
    }
}
