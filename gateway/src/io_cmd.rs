//! IO queue commands: Read, Write, Flush, Write Zeroes and Dataset
//! Management against the namespace's bdev.
//!
//! This is the per-IO path: it reads the queue's namespace snapshot and the
//! transport's buffer, checks the namespace's ANA group is accessible through
//! this controller's listener (one Relaxed load), calls the bdev, and returns
//! a status, or, for an AIO bdev, the request for the core to submit (it
//! completes later). It allocates nothing and takes no lock.

use engine::{BorrowedData, TargetCommand, TargetQpair};
use protocol::log::AnaState;
use protocol::opcode::io;
use protocol::status::{generic, path};
use protocol::{SglDescriptor, Sqe, Status};

use crate::aio::{AioOp, AioRequest};
use crate::ana::AnaStates;
use crate::controller::{NamespaceEntry, NamespaceTable};
use crate::error::BdevError;
use crate::smart::IoCounters;

/// Bytes of one Dataset Management range (NVMe NVM 1.0c Figure 39).
const DSM_RANGE_BYTES: usize = 16;
/// Dataset Management CDW11 bit 2: Attribute - Deallocate.
const DSM_ATTR_DEALLOCATE: u32 = 1 << 2;
/// Generic status Transient Transport Error (NVMe Base 2.0c Figure 101).
const TRANSIENT_TRANSPORT_ERROR: u8 = 0x22;

/// The result of an IO command.
#[derive(Debug)]
pub(crate) enum IoResult {
    /// Done: its status and the bytes of data (in the command's buffer) to send back.
    Done { status: Status, data_len: u32 },
    /// A successful read whose data is sent from where it lives.
    Borrowed(BorrowedData),
    /// For the core's AIO context: completes later.
    Aio(AioRequest),
}

impl IoResult {
    #[inline]
    fn err(status: Status) -> Self {
        IoResult::Done { status, data_len: 0 }
    }
    #[inline]
    fn ok(data_len: u32) -> Self {
        IoResult::Done { status: Status::SUCCESS, data_len }
    }
}

/// The path status for a group in a state that executes no IO (NVMe Base 2.0c §8.20.3).
#[cold]
fn ana_refused(state: AnaState) -> IoResult {
    let sc = match state {
        AnaState::PersistentLoss => path::ANA_PERSISTENT_LOSS,
        AnaState::Change => path::ANA_TRANSITION,
        _ => path::ANA_INACCESSIBLE,
    };
    IoResult::err(Status::path(sc))
}

/// The namespace `nsid`, if active and accessible through this listener.
#[inline]
fn namespace<'t>(table: &'t NamespaceTable, ana: &AnaStates, nsid: u32) -> Result<&'t NamespaceEntry, IoResult> {
    let Some(ns) = table.get(nsid) else {
        return Err(invalid_namespace());
    };
    match ana.accessible(ns.anagrpid) {
        Ok(()) => Ok(ns),
        Err(state) => Err(ana_refused(state)),
    }
}

#[inline]
fn invalid_namespace() -> IoResult {
    IoResult::err(Status::generic(generic::INVALID_NAMESPACE).with_dnr())
}

#[inline]
fn lba_out_of_range() -> IoResult {
    IoResult::err(Status::generic(generic::LBA_OUT_OF_RANGE).with_dnr())
}

#[inline]
fn bdev_status(e: BdevError) -> Status {
    match e {
        BdevError::OutOfRange { .. } => Status::generic(generic::LBA_OUT_OF_RANGE).with_dnr(),
        BdevError::Io(_) => Status::generic(generic::INTERNAL_ERROR),
    }
}

/// True when `[slba, slba + nlb)` lies inside the namespace.
#[inline]
fn in_range(ns: &NamespaceEntry, slba: u64, nlb: u64) -> bool {
    slba.checked_add(nlb).is_some_and(|end| end <= ns.num_blocks)
}

/// Executes one IO command. `max_io_bytes` is the transport's largest transfer (MDTS).
#[inline]
pub(crate) fn execute<Q: TargetQpair>(
    table: &NamespaceTable,
    ana: &AnaStates,
    max_io_bytes: u32,
    q: &mut Q,
    cmd: &TargetCommand,
) -> IoResult {
    let sqe = &cmd.sqe;
    match sqe.opc {
        io::READ | io::WRITE => read_write(table, ana, max_io_bytes, q, cmd),
        // Broadcast flush is not supported (Identify VWC bits 2:1 = 10b): an unknown NSID is invalid.
        io::FLUSH => match namespace(table, ana, sqe.nsid) {
            Ok(ns) => match ns.bdev.aio_fd() {
                Some(fd) => IoResult::Aio(AioRequest { fd, op: AioOp::Flush, offset_bytes: 0, len_bytes: 0 }),
                None => match ns.bdev.flush() {
                    Ok(()) => IoResult::ok(0),
                    Err(e) => IoResult::err(bdev_status(e)),
                },
            },
            Err(r) => r,
        },
        io::WRITE_ZEROES => {
            let ns = match namespace(table, ana, sqe.nsid) {
                Ok(ns) => ns,
                Err(r) => return r,
            };
            let (slba, nlb) = (sqe.slba(), u64::from(sqe.nlb()));
            if !in_range(ns, slba, nlb) {
                return lba_out_of_range();
            }
            let bs = u64::from(ns.block_size);
            match ns.bdev.write_zeroes(slba * bs, nlb * bs) {
                Ok(()) => IoResult::ok(0),
                Err(e) => IoResult::err(bdev_status(e)),
            }
        }
        io::DATASET_MANAGEMENT => dataset_management(table, ana, q, cmd),
        _ => IoResult::err(Status::generic(generic::INVALID_OPCODE).with_dnr()),
    }
}

/// Counts a command that completed now (not an AIO, which
/// [`count_aio_completion`] counts when it finishes) in the controller's SMART
/// counters: successful Reads and Writes and their bytes. Write Zeroes and
/// Dataset Management do not count (NVMe Base 2.0c §5.16.1.3: Data Units
/// Written and Host Write Commands count Write commands only).
#[inline]
pub(crate) fn count_completion(counters: &IoCounters, core: usize, table: &NamespaceTable, sqe: &Sqe, r: &IoResult) {
    match r {
        IoResult::Borrowed(data) => counters.read_done(core, u64::from(data.len)),
        IoResult::Done { status, data_len } if status.is_success() => match sqe.opc {
            io::READ => counters.read_done(core, u64::from(*data_len)),
            io::WRITE => {
                let bs = table.get(sqe.nsid).map_or(0, |ns| u64::from(ns.block_size));
                counters.write_done(core, u64::from(sqe.nlb()) * bs);
            }
            _ => {}
        },
        _ => {}
    }
}

/// Counts a finished AIO (see [`count_completion`]); flushes do not count.
#[inline]
pub(crate) fn count_aio_completion(counters: &IoCounters, core: usize, op: AioOp, len_bytes: u32, status: Status) {
    if !status.is_success() {
        return;
    }
    match op {
        AioOp::Read => counters.read_done(core, u64::from(len_bytes)),
        AioOp::Write => counters.write_done(core, u64::from(len_bytes)),
        AioOp::Flush => {}
    }
}

#[inline]
fn read_write<Q: TargetQpair>(
    table: &NamespaceTable,
    ana: &AnaStates,
    max_io_bytes: u32,
    q: &mut Q,
    cmd: &TargetCommand,
) -> IoResult {
    let sqe = &cmd.sqe;
    let ns = match namespace(table, ana, sqe.nsid) {
        Ok(ns) => ns,
        Err(r) => return r,
    };
    let (slba, nlb) = (sqe.slba(), sqe.nlb());
    // At most 65536 blocks of at most a few MiB: fits in u64 without overflow.
    let len_bytes = u64::from(nlb) * u64::from(ns.block_size);
    if len_bytes > u64::from(max_io_bytes) {
        return IoResult::err(Status::generic(generic::INVALID_FIELD).with_dnr());
    }
    if !in_range(ns, slba, u64::from(nlb)) {
        return lba_out_of_range();
    }
    match SglDescriptor::parse(&sqe.dptr) {
        Err(_) => return IoResult::err(Status::generic(generic::SGL_DESCRIPTOR_TYPE_INVALID).with_dnr()),
        Ok(d) if u64::from(d.len()) != len_bytes => {
            return IoResult::err(Status::generic(generic::DATA_SGL_LENGTH_INVALID).with_dnr())
        }
        Ok(_) => {}
    }
    if q.data_mut(cmd.slot).len() as u64 != len_bytes {
        // The transport could not take the data: an SGL form it does not carry
        // (a keyed SGL on TCP: SGL Descriptor Type Invalid, DNR), or a data phase
        // that failed (a data digest error: Transient Transport Error, which the
        // host may retry, NVMe/TCP 1.0c §3.6.2.7).
        let status = q.data_fault_status(cmd.slot).unwrap_or(Status::generic(TRANSIENT_TRANSPORT_ERROR));
        return IoResult::err(status);
    }
    let buf = q.data_mut(cmd.slot);
    let offset_bytes = slba * u64::from(ns.block_size);
    if sqe.opc == io::READ {
        // Zero-copy where the bdev allows it: the transport sends from the bdev's memory.
        if let Some(borrowed) = ns.bdev.borrow_for_read(offset_bytes, len_bytes as u32) {
            return IoResult::Borrowed(borrowed);
        }
    }
    if let Some(fd) = ns.bdev.aio_fd() {
        let op = if sqe.opc == io::READ { AioOp::Read } else { AioOp::Write };
        return IoResult::Aio(AioRequest { fd, op, offset_bytes, len_bytes: len_bytes as u32 });
    }
    let result = if sqe.opc == io::READ { ns.bdev.read(offset_bytes, buf) } else { ns.bdev.write(offset_bytes, buf) };
    match result {
        Ok(()) if sqe.opc == io::READ => IoResult::ok(len_bytes as u32),
        Ok(()) => IoResult::ok(0),
        Err(e) => IoResult::err(bdev_status(e)),
    }
}

/// Dataset Management: with the Deallocate attribute, every range is
/// checked first and then unmapped, so a bad range leaves nothing changed.
/// Without it the command is a hint and succeeds doing nothing.
fn dataset_management<Q: TargetQpair>(
    table: &NamespaceTable,
    ana: &AnaStates,
    q: &mut Q,
    cmd: &TargetCommand,
) -> IoResult {
    let sqe = &cmd.sqe;
    let ns = match namespace(table, ana, sqe.nsid) {
        Ok(ns) => ns,
        Err(r) => return r,
    };
    let nr = (sqe.cdw10 & 0xFF) as usize + 1;
    let need = nr * DSM_RANGE_BYTES;
    let buf = q.data_mut(cmd.slot);
    let Some(list) = buf.get(..need) else {
        return IoResult::err(Status::generic(generic::DATA_SGL_LENGTH_INVALID).with_dnr());
    };
    if sqe.cdw11 & DSM_ATTR_DEALLOCATE == 0 {
        return IoResult::ok(0);
    }
    let range = |r: &[u8]| -> (u64, u64) {
        let nlb = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        let slba = u64::from_le_bytes([r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]]);
        (slba, u64::from(nlb))
    };
    if !list.chunks_exact(DSM_RANGE_BYTES).map(range).all(|(slba, nlb)| in_range(ns, slba, nlb)) {
        return lba_out_of_range();
    }
    let bs = u64::from(ns.block_size);
    for (slba, nlb) in list.chunks_exact(DSM_RANGE_BYTES).map(range) {
        if nlb == 0 {
            continue;
        }
        if let Err(e) = ns.bdev.unmap(slba * bs, nlb * bs) {
            return IoResult::err(bdev_status(e));
        }
    }
    IoResult::ok(0)
}
