//! A host engine attached to one controller, with IO from the test thread
//! through the engine's rings: one IO at a time, or a pipeline keeping many
//! in flight.

use std::collections::VecDeque;
use std::time::Duration;

use engine::{
    Controller, ControllerOptions, Engine, EngineError, EngineOptions, IdlePolicy, IoBuf, IoChannel, IoOp, Namespace,
    RingIo, TransportId,
};
use protocol::Status;
use transport_tcp::TcpHostTransport;

use crate::pattern;

/// How long one IO may take before a test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A host engine on test cores, yielding when idle.
pub fn start_engine(cores: &[usize]) -> Engine<TcpHostTransport> {
    let mut opts = EngineOptions::on_cores(cores);
    opts.idle = IdlePolicy::adaptive();
    Engine::start(opts, |_| TcpHostTransport::new()).expect("start the host engine")
}

/// Controller options for tests: a bring-up bound generous enough for a loaded
/// 2-core CI machine (seen: over 5 s with a QEMU guest and fuzzers running).
pub fn test_controller_options() -> ControllerOptions {
    ControllerOptions { connect_timeout_ms: 30_000, ..ControllerOptions::default() }
}

/// One IO of a pipeline: where, and how many blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First block.
    pub lba: u64,
    /// Number of blocks.
    pub num_blocks: u32,
}

/// An engine with one controller attached and a ring channel per reactor.
pub struct TestHost {
    engine: Option<Engine<TcpHostTransport>>,
    /// The attached controller.
    pub ctrlr: Controller,
    /// Its namespace 1.
    pub ns: Namespace,
    chans: Vec<IoChannel>,
}

impl TestHost {
    /// Starts an engine on `cores` and attaches `trid`.
    pub fn attach(trid: &TransportId, cores: &[usize], opts: &ControllerOptions) -> Result<TestHost, EngineError> {
        let engine = start_engine(cores);
        let ctrlr = engine.attach_controller(trid, opts)?;
        let ns = ctrlr.namespace(1).expect("namespace 1 is active");
        let mut chans = Vec::new();
        for r in 0..engine.reactor_count() {
            let (chan, job) = IoChannel::new(256);
            engine.spawn_job(r, Box::new(job))?;
            chans.push(chan);
        }
        Ok(TestHost { engine: Some(engine), ctrlr, ns, chans })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<TcpHostTransport> {
        self.engine.as_ref().expect("engine runs until drop")
    }

    /// Bytes in `num_blocks` blocks.
    pub fn bytes(&self, num_blocks: u32) -> usize {
        num_blocks as usize * self.ns.block_size as usize
    }

    /// One IO on reactor `reactor`'s queue pair, waited for.
    pub fn io(
        &self,
        reactor: usize,
        op: IoOp,
        lba: u64,
        num_blocks: u32,
        buf: Option<IoBuf>,
    ) -> (Status, Option<IoBuf>) {
        let chan = &self.chans[reactor];
        chan.submit(RingIo { ns: self.ns.clone(), op, lba, num_blocks, buf, tag: 0 })
            .unwrap_or_else(|_| panic!("ring of reactor {reactor} full"));
        let done = chan.wait_completion(IO_TIMEOUT).unwrap_or_else(|| panic!("{op:?} lba {lba} timed out"));
        (done.status, done.buf)
    }

    /// Writes `data` at `lba` (whole blocks) through reactor 0.
    pub fn write(&self, lba: u64, data: &[u8]) -> Status {
        let blocks = (data.len() / self.ns.block_size as usize) as u32;
        let mut buf = IoBuf::new(data.len());
        buf.as_mut_slice().copy_from_slice(data);
        self.io(0, IoOp::Write, lba, blocks, Some(buf)).0
    }

    /// Reads `num_blocks` at `lba` through reactor 0.
    pub fn read(&self, lba: u64, num_blocks: u32) -> (Status, Vec<u8>) {
        let (status, buf) = self.io(0, IoOp::Read, lba, num_blocks, Some(IoBuf::new(self.bytes(num_blocks))));
        (status, buf.map(|b| b.as_slice().to_vec()).unwrap_or_default())
    }

    /// Runs `op` over every extent through reactor `reactor`, keeping up to
    /// `depth` IOs in flight. Writes take their data from `fill(index, buf)`;
    /// every completion goes to `check(index, status, data)` (read data, or
    /// the written buffer).
    pub fn pipeline(
        &self,
        reactor: usize,
        op: IoOp,
        extents: &[Extent],
        depth: usize,
        mut fill: impl FnMut(usize, &mut [u8]),
        mut check: impl FnMut(usize, Status, &[u8]),
    ) {
        let chan = &self.chans[reactor];
        let mut spare: VecDeque<IoBuf> = VecDeque::new();
        let (mut next, mut in_flight) = (0usize, 0usize);
        while next < extents.len() || in_flight > 0 {
            while next < extents.len() && in_flight < depth {
                let e = extents[next];
                let len = self.bytes(e.num_blocks);
                let mut buf = match spare.pop_front() {
                    Some(b) if b.capacity() >= len => b,
                    _ => IoBuf::new(len),
                };
                buf.set_len(len);
                if op == IoOp::Write {
                    fill(next, buf.as_mut_slice());
                }
                let io = RingIo {
                    ns: self.ns.clone(),
                    op,
                    lba: e.lba,
                    num_blocks: e.num_blocks,
                    buf: Some(buf),
                    tag: next as u64,
                };
                if let Err(back) = chan.submit(io) {
                    // Ring full: keep the buffer and wait for a completion first.
                    if let Some(b) = back.buf {
                        spare.push_back(b);
                    }
                    break;
                }
                next += 1;
                in_flight += 1;
            }
            let done = chan.wait_completion(IO_TIMEOUT).unwrap_or_else(|| {
                panic!("{op:?} pipeline: no completion within {IO_TIMEOUT:?} ({in_flight} in flight)")
            });
            in_flight -= 1;
            let data = done.buf.as_ref().map(|b| b.as_slice()).unwrap_or(&[]);
            check(done.tag as usize, done.status, data);
            if let Some(b) = done.buf {
                spare.push_back(b);
            }
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        for c in &self.chans {
            c.close();
        }
        if let Some(engine) = self.engine.take() {
            engine.detach_controller(&self.ctrlr);
            engine.shutdown();
        }
    }
}

/// Extents of `io_blocks` blocks each covering `[first_lba, first_lba + num_blocks)`.
pub fn extents(first_lba: u64, num_blocks: u64, io_blocks: u32) -> Vec<Extent> {
    let mut v = Vec::new();
    let mut lba = first_lba;
    let end = first_lba + num_blocks;
    while lba < end {
        let n = (end - lba).min(u64::from(io_blocks)) as u32;
        v.push(Extent { lba, num_blocks: n });
        lba += u64::from(n);
    }
    v
}

/// Writes then reads back the whole namespace at every power-of-two IO size
/// from 512 B to 1 MiB through reactor 0, each (size, offset) with its own
/// pattern (`size ^ tag_salt`); at most `max_depth` IOs and
/// `max_in_flight_bytes` in flight. Returns the sizes checked.
pub fn write_and_verify_every_size(
    host: &TestHost,
    tag_salt: u64,
    max_depth: usize,
    max_in_flight_bytes: usize,
) -> Vec<usize> {
    let bs = host.ns.block_size as usize;
    let total_blocks = host.ns.num_blocks;
    let mut sizes = Vec::new();
    let mut size = 512usize;
    while size <= 1 << 20 {
        let io_blocks = (size / bs) as u32;
        let plan = extents(0, total_blocks, io_blocks);
        let tag = size as u64 ^ tag_salt;
        let offset_of = |i: usize| plan[i].lba * bs as u64;
        let depth = (max_in_flight_bytes / size).clamp(1, max_depth);
        host.pipeline(
            0,
            IoOp::Write,
            &plan,
            depth,
            |i, buf| pattern::fill(buf, tag, offset_of(i)),
            |i, status, _| assert!(status.is_success(), "write of {size} B at lba {}: {status:?}", plan[i].lba),
        );
        let mut verified_bytes = 0u64;
        host.pipeline(
            0,
            IoOp::Read,
            &plan,
            depth,
            |_, _| {},
            |i, status, data| {
                assert!(status.is_success(), "read of {size} B at lba {}: {status:?}", plan[i].lba);
                assert_eq!(data.len(), plan[i].num_blocks as usize * bs);
                if let Some(at) = pattern::first_mismatch(data, tag, offset_of(i)) {
                    panic!("{size} B IO at lba {}: data differs at byte {at} of the IO", plan[i].lba);
                }
                verified_bytes += data.len() as u64;
            },
        );
        assert_eq!(verified_bytes, total_blocks * bs as u64, "{size} B pass did not cover the namespace");
        sizes.push(size);
        size *= 2;
    }
    sizes
}
