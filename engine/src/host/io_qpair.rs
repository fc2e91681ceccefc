//! One IO queue pair on one core: request slots indexed by command ID,
//! submission, completion, and the queue's own connect state machine.
//!
//! Slots and the free-CID stack are made when the queue pair is created; the
//! submit and completion paths only move an [`IoBuf`] in and out of a slot.

use protocol::sqe::connect_attr;
use protocol::status::path;
use protocol::{opcode, Cqe, Sqe, Status};

use crate::buf::IoBuf;
use crate::host::connect_data;
use crate::host::ctrlr::PathFault;
use crate::host::registration::WakeRegistration;
use crate::transport::{ConnectProgress, HostQpair, TransportError, XferBuf};
use crate::wake::WakeSet;

/// An IO operation on a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Read blocks into the buffer.
    Read,
    /// Write the buffer to blocks.
    Write,
    /// Make previous writes durable.
    Flush,
    /// Write zeroes to blocks (no buffer).
    WriteZeroes,
    /// Deallocate (trim) blocks (no buffer): Dataset Management with AD set.
    Deallocate,
}

/// A finished IO, handed back to the job that submitted it.
#[derive(Debug)]
pub struct IoCompletion {
    /// The tag the job gave at submission.
    pub tag: u64,
    /// The NVMe status; a dead queue pair yields a host pathing error.
    pub status: Status,
    /// The buffer lent at submission, if any.
    pub buf: Option<IoBuf>,
    /// When the IO was submitted, on the reactor's clock.
    pub submit_ns: u64,
    /// Set when the queue pair died under the IO (status is a host pathing error).
    pub fault: Option<PathFault>,
}

/// Why a submission was refused before reaching the wire; the buffer comes back.
#[derive(Debug)]
pub struct SubmitError {
    /// What was wrong.
    pub reason: SubmitErrorKind,
    /// The buffer, returned untouched.
    pub buf: Option<IoBuf>,
}

/// Reasons for [`SubmitError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitErrorKind {
    /// No free slot: wait for a completion.
    QueueFull,
    /// This core has no connected queue pair to the controller.
    NotConnected,
    /// The buffer is missing or shorter than the blocks asked for.
    BadBuffer,
    /// The namespace handle does not belong to an attached controller.
    UnknownNamespace,
    /// Zero blocks, or more than one command can carry (65536).
    BadLength,
}

/// The connect state of an IO queue pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QpairState {
    /// The transport connection is being set up.
    TransportConnecting,
    /// Fabrics Connect is on the wire.
    FabricsConnecting,
    /// IO flows.
    Ready,
    /// The queue pair is dead; every slot has been failed.
    Failed,
}

struct IoSlot {
    busy: bool,
    buf: Option<IoBuf>,
    tag: u64,
    job: u16,
    submit_ns: u64,
    /// Room for one Dataset Management range (NVM 1.0c §3.2.3.1), so a
    /// deallocate needs no buffer from the caller.
    dsm_range: Box<[u8; 16]>,
}

/// Who an IO queue's Fabrics Connect says we are and which controller we join.
pub(crate) struct ConnectParams<'a> {
    /// The controller ID from the admin queue's Connect.
    pub(crate) cntlid: u16,
    /// Subsystem NQN.
    pub(crate) subnqn: &'a str,
    /// Host NQN.
    pub(crate) hostnqn: &'a str,
    /// Host identifier.
    pub(crate) hostid: [u8; 16],
}

/// The command ID Fabrics Connect uses. No IO is submitted before Connect
/// completes, so it cannot collide with a slot; transports size their CID
/// tables to the queue depth, so it must be below it.
const CONNECT_CID: u16 = 0;

/// One IO queue pair.
pub(crate) struct IoQpair<Q: HostQpair> {
    transport: Q,
    state: QpairState,
    qid: u16,
    slots: Vec<IoSlot>,
    free_cids: Vec<u16>,
    connect_buf: IoBuf,
    connect_deadline_ns: u64,
    /// Completions found by the last poll, for the host core to route to jobs.
    done: Vec<(u16, IoCompletion)>,
    /// Why the queue pair failed, once it has.
    fault: Option<PathFault>,
    wake: WakeRegistration,
}

impl<Q: HostQpair> IoQpair<Q> {
    /// Wraps a transport queue pair that has started connecting.
    pub(crate) fn new(
        mut transport: Q,
        qid: u16,
        depth: u16,
        connect: &ConnectParams<'_>,
        connect_deadline_ns: u64,
        in_capsule_data_bytes: u32,
    ) -> Result<Self, String> {
        let depth = depth.max(1);
        transport.set_in_capsule_data_size(in_capsule_data_bytes);
        let mut connect_buf = IoBuf::new(connect_data::LEN);
        connect_data::encode(
            connect_buf.as_mut_slice(),
            connect.hostid,
            connect.cntlid,
            connect.subnqn,
            connect.hostnqn,
        )?;
        Ok(IoQpair {
            transport,
            state: QpairState::TransportConnecting,
            qid,
            slots: (0..depth)
                .map(|_| IoSlot { busy: false, buf: None, tag: 0, job: 0, submit_ns: 0, dsm_range: Box::new([0; 16]) })
                .collect(),
            free_cids: (0..depth).rev().collect(),
            connect_buf,
            connect_deadline_ns,
            done: Vec::with_capacity(usize::from(depth) + 1),
            fault: None,
            wake: WakeRegistration::Pending,
        })
    }

    pub(crate) fn state(&self) -> QpairState {
        self.state
    }

    /// Puts the socket in the reactor's epoll set (once).
    pub(crate) fn register_wake(&mut self, set: &WakeSet) {
        self.wake.ensure(&self.transport, set);
    }

    /// When this queue pair next needs a turn without an event on its socket
    /// (see [`crate::reactor::Poller::next_deadline_ns`]).
    pub(crate) fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        if self.state == QpairState::Failed && self.done.is_empty() {
            // A failure was a turn's work: the turn after it drops the queue pair.
            return None;
        }
        if !self.wake.wakes() || !self.done.is_empty() || !self.transport.quiescent() {
            return Some(now_ns);
        }
        match self.state {
            // The connect checks use `now > deadline`.
            QpairState::TransportConnecting | QpairState::FabricsConnecting => {
                Some(self.connect_deadline_ns.saturating_add(1))
            }
            QpairState::Ready | QpairState::Failed => None,
        }
    }

    pub(crate) fn depth(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.slots.len() - self.free_cids.len()
    }

    /// Submits one IO. Nothing is sent before [`IoQpair::flush`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit(
        &mut self,
        op: IoOp,
        nsid: u32,
        lba: u64,
        num_blocks: u32,
        block_size: u32,
        buf: Option<IoBuf>,
        tag: u64,
        job: u16,
        now_ns: u64,
    ) -> Result<(), SubmitError> {
        if self.state != QpairState::Ready {
            return Err(SubmitError { reason: SubmitErrorKind::NotConnected, buf });
        }
        let needs_data = matches!(op, IoOp::Read | IoOp::Write);
        if needs_data && !(1..=65536).contains(&num_blocks) {
            return Err(SubmitError { reason: SubmitErrorKind::BadLength, buf });
        }
        let data_len = u64::from(num_blocks) * u64::from(block_size);
        if needs_data && buf.as_ref().is_none_or(|b| (b.len() as u64) < data_len) {
            return Err(SubmitError { reason: SubmitErrorKind::BadBuffer, buf });
        }
        let Some(cid) = self.free_cids.pop() else {
            return Err(SubmitError { reason: SubmitErrorKind::QueueFull, buf });
        };
        let slot = &mut self.slots[usize::from(cid)];
        let (mut sqe, xfer) = match op {
            IoOp::Read | IoOp::Write => {
                let opc = if op == IoOp::Read { opcode::io::READ } else { opcode::io::WRITE };
                // `needs_data` checked above that buf is there and long enough.
                let ptr = buf.as_ref().map(IoBuf::as_ptr).unwrap_or(core::ptr::NonNull::dangling());
                let len = data_len as u32;
                let xfer = if op == IoOp::Read {
                    XferBuf::FromController { ptr, len }
                } else {
                    XferBuf::ToController { ptr, len }
                };
                (Sqe::rw(opc, nsid, lba, num_blocks), xfer)
            }
            IoOp::Flush => (Sqe { opc: opcode::io::FLUSH, nsid, ..Sqe::default() }, XferBuf::None),
            IoOp::WriteZeroes => (Sqe::rw(opcode::io::WRITE_ZEROES, nsid, lba, num_blocks), XferBuf::None),
            IoOp::Deallocate => {
                // One range: context attributes 0, length in blocks, starting LBA.
                slot.dsm_range[0..4].fill(0);
                slot.dsm_range[4..8].copy_from_slice(&num_blocks.to_le_bytes());
                slot.dsm_range[8..16].copy_from_slice(&lba.to_le_bytes());
                let mut sqe = Sqe { opc: opcode::io::DATASET_MANAGEMENT, nsid, ..Sqe::default() };
                sqe.flags = protocol::sqe::PSDT_SGL_MPTR_CONTIG;
                sqe.cdw10 = 0; // NR: one range, 0's based
                sqe.cdw11 = 1 << 2; // AD: deallocate
                let ptr = core::ptr::NonNull::from(&mut slot.dsm_range[0]);
                (sqe, XferBuf::ToController { ptr, len: 16 })
            }
        };
        sqe.cid = cid;
        slot.busy = true;
        slot.buf = buf;
        slot.tag = tag;
        slot.job = job;
        slot.submit_ns = now_ns;
        // SAFETY: the data is slot.buf (an IoBuf we own) or the slot's boxed dsm_range: heap memory that
        // does not move, untouched and alive until this cid completes or fail_all runs.
        let sent = unsafe { self.transport.submit(&sqe, xfer) };
        if let Err(e) = sent {
            let buf = slot.buf.take();
            slot.busy = false;
            self.free_cids.push(cid);
            let reason = match e {
                TransportError::QueueFull => SubmitErrorKind::QueueFull,
                _ => SubmitErrorKind::NotConnected,
            };
            return Err(SubmitError { reason, buf });
        }
        Ok(())
    }

    /// Sends what was submitted since the last flush.
    pub(crate) fn flush(&mut self) {
        if self.state == QpairState::Ready || self.state == QpairState::FabricsConnecting {
            if let Err(e) = self.transport.flush() {
                self.fail_all(fault_of(&e));
            }
        }
    }

    /// Drives the connect state machine and collects completions into
    /// `self.done`. Returns work done.
    pub(crate) fn poll(&mut self, now_ns: u64) -> usize {
        match self.state {
            QpairState::TransportConnecting => match self.transport.poll_connect(now_ns) {
                Ok(ConnectProgress::Pending) if now_ns > self.connect_deadline_ns => {
                    self.state = QpairState::Failed;
                    1
                }
                Ok(ConnectProgress::Pending) => 0,
                Ok(ConnectProgress::Ready) => {
                    let mut sqe = Sqe::connect(self.qid, (self.slots.len() - 1) as u16, 0);
                    sqe.cid = CONNECT_CID;
                    // The slots bound what is outstanding; SQHD is never read (see connect_attr).
                    sqe.set_connect_cattr(connect_attr::DISABLE_SQ_FLOW_CONTROL);
                    let xfer = XferBuf::ToController { ptr: self.connect_buf.as_ptr(), len: connect_data::LEN as u32 };
                    // SAFETY: connect_buf is owned by self and not touched until
                    // the Connect completes or the qpair is dropped.
                    let sent = unsafe { self.transport.submit(&sqe, xfer) };
                    self.state = if sent.is_ok() { QpairState::FabricsConnecting } else { QpairState::Failed };
                    self.flush();
                    1
                }
                Err(_) => {
                    self.state = QpairState::Failed;
                    1
                }
            },
            QpairState::FabricsConnecting | QpairState::Ready => {
                if self.state == QpairState::FabricsConnecting && now_ns > self.connect_deadline_ns {
                    self.fail_all(PathFault::Abandoned);
                    return 1;
                }
                let slots = &mut self.slots;
                let free_cids = &mut self.free_cids;
                let done = &mut self.done;
                let state = &mut self.state;
                let result = self.transport.poll(now_ns, |cqe: Cqe| {
                    if cqe.cid == CONNECT_CID && *state == QpairState::FabricsConnecting {
                        *state = if cqe.status().is_success() { QpairState::Ready } else { QpairState::Failed };
                        return;
                    }
                    let Some(slot) = slots.get_mut(usize::from(cqe.cid)).filter(|s| s.busy) else {
                        // A completion for a command we did not send: the
                        // transport validated the CID, so this is a peer bug.
                        return;
                    };
                    slot.busy = false;
                    free_cids.push(cqe.cid);
                    done.push((
                        slot.job,
                        IoCompletion {
                            tag: slot.tag,
                            status: cqe.status(),
                            buf: slot.buf.take(),
                            submit_ns: slot.submit_ns,
                            fault: None,
                        },
                    ));
                });
                match result {
                    Ok(n) => n,
                    Err(e) => {
                        self.fail_all(fault_of(&e));
                        1
                    }
                }
            }
            QpairState::Failed => 0,
        }
    }

    /// Takes the completions gathered by the last poll (keeps the capacity).
    pub(crate) fn drain_done(&mut self, out: &mut Vec<(u16, IoCompletion)>) {
        out.append(&mut self.done);
    }

    /// The oldest IO in flight, as (command ID, submission time), for command timeouts.
    pub(crate) fn oldest_in_flight(&self) -> Option<(u16, u64)> {
        let (cid, slot) = self.slots.iter().enumerate().filter(|(_, s)| s.busy).min_by_key(|(_, s)| s.submit_ns)?;
        Some((cid as u16, slot.submit_ns))
    }

    /// Submission time of the IO in flight with command ID `cid`.
    pub(crate) fn in_flight_since_ns(&self, cid: u16) -> Option<u64> {
        self.slots.get(usize::from(cid)).filter(|s| s.busy).map(|s| s.submit_ns)
    }

    /// This queue pair's queue ID.
    pub(crate) fn qid(&self) -> u16 {
        self.qid
    }

    /// Marks the queue pair dead and fails every outstanding IO with a host
    /// pathing error, so a layer above can retry it elsewhere.
    pub(crate) fn fail_all(&mut self, fault: PathFault) {
        if self.fault.is_none() {
            self.fault = Some(fault);
        }
        let fault = self.fault;
        self.state = QpairState::Failed;
        for (cid, slot) in self.slots.iter_mut().enumerate() {
            if slot.busy {
                slot.busy = false;
                self.free_cids.push(cid as u16);
                self.done.push((
                    slot.job,
                    IoCompletion {
                        tag: slot.tag,
                        status: Status::path(path::HOST_PATHING_ERROR),
                        buf: slot.buf.take(),
                        submit_ns: slot.submit_ns,
                        fault,
                    },
                ));
            }
        }
    }
}

/// A transport error's meaning for the IOs it fails.
fn fault_of(e: &TransportError) -> PathFault {
    match e {
        TransportError::Closed => PathFault::PeerClosed,
        _ => PathFault::Abandoned,
    }
}
