//! Linux native AIO for file-backed bdevs: one AIO context per gateway core,
//! polled from that core's loop, with preallocated iocbs and page-aligned
//! bounce buffers (O_DIRECT needs aligned memory; the transport's command
//! buffers are not).
//!
//! The per-IO path here makes no allocation in steady state (a slot's bounce
//! buffer grows only the first time a larger IO uses it) and no blocking
//! syscall: `io_submit` once per reactor turn for everything prepared in it,
//! `io_getevents` with a zero timeout to reap. All FFI is in [`sys`].

use std::alloc::{self, Layout};
use std::os::fd::RawFd;
use std::ptr::NonNull;

use protocol::status::generic;
use protocol::Status;

/// In-flight AIOs one core holds at most. When all are busy, the gateway stops
/// taking commands from its queues until some complete (backpressure).
pub(crate) const AIO_SLOTS_PER_CORE: usize = 256;
/// Alignment of bounce buffers: a page, enough for O_DIRECT on every Linux FS.
pub(crate) const AIO_BUFFER_ALIGN_BYTES: usize = 4096;

/// The raw Linux AIO ABI (`<linux/aio_abi.h>`) and its syscalls.
pub(crate) mod sys {
    use std::io;

    /// `IOCB_CMD_PREAD`.
    pub(crate) const IOCB_CMD_PREAD: u16 = 0;
    /// `IOCB_CMD_PWRITE`.
    pub(crate) const IOCB_CMD_PWRITE: u16 = 1;
    /// `IOCB_CMD_FDSYNC` (files on ext4/xfs since Linux 4.18).
    pub(crate) const IOCB_CMD_FDSYNC: u16 = 3;

    /// `struct iocb` (little-endian layout: aio_key before aio_rw_flags).
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct Iocb {
        pub(crate) aio_data: u64,
        pub(crate) aio_key: u32,
        pub(crate) aio_rw_flags: i32,
        pub(crate) aio_lio_opcode: u16,
        pub(crate) aio_reqprio: i16,
        pub(crate) aio_fildes: u32,
        pub(crate) aio_buf: u64,
        pub(crate) aio_nbytes: u64,
        pub(crate) aio_offset: i64,
        pub(crate) aio_reserved2: u64,
        pub(crate) aio_flags: u32,
        pub(crate) aio_resfd: u32,
    }
    const _: () = assert!(core::mem::size_of::<Iocb>() == 64);

    /// `struct io_event`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct IoEvent {
        pub(crate) data: u64,
        pub(crate) obj: u64,
        pub(crate) res: i64,
        pub(crate) res2: i64,
    }
    const _: () = assert!(core::mem::size_of::<IoEvent>() == 32);

    /// `io_setup(nr_events, &ctx)`.
    pub(crate) fn io_setup(nr_events: u32) -> io::Result<u64> {
        let mut ctx: u64 = 0;
        // SAFETY: io_setup writes one aio_context_t (unsigned long, 8 bytes on 64-bit Linux) to the pointer,
        // which points at a live, zero-initialised u64 as the syscall requires.
        let r = unsafe { libc::syscall(libc::SYS_io_setup, nr_events as libc::c_long, &mut ctx as *mut u64) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ctx)
    }

    /// `io_destroy(ctx)`: waits for the context's in-flight IOs, then frees it.
    pub(crate) fn io_destroy(ctx: u64) {
        // SAFETY: ctx came from io_setup and is destroyed once (the owner forgets it afterwards); the call
        // touches no user memory of ours except through iocbs whose buffers the caller keeps alive until now.
        unsafe { libc::syscall(libc::SYS_io_destroy, ctx as libc::c_ulong) };
    }

    /// `io_submit(ctx, n, iocbpp)`: returns how many were queued.
    ///
    /// # Safety
    /// Every pointer in `iocbs` points at a live iocb whose buffer stays valid
    /// (and unaliased by writes, for reads) until its completion is reaped.
    pub(crate) unsafe fn io_submit(ctx: u64, iocbs: &mut [*mut Iocb]) -> io::Result<usize> {
        // SAFETY: the slice gives len valid iocb pointers; buffer validity is the caller's contract.
        let r = unsafe {
            libc::syscall(libc::SYS_io_submit, ctx as libc::c_ulong, iocbs.len() as libc::c_long, iocbs.as_mut_ptr())
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// `io_getevents(ctx, 0, events.len(), events, {0, 0})`: never blocks.
    pub(crate) fn io_getevents_nowait(ctx: u64, events: &mut [IoEvent]) -> io::Result<usize> {
        let timeout = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: events is a writable array of events.len() io_event structs; timeout is a live timespec.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_getevents,
                ctx as libc::c_ulong,
                0 as libc::c_long,
                events.len() as libc::c_long,
                events.as_mut_ptr(),
                &timeout as *const libc::timespec,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }
}

/// What an AIO command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AioOp {
    /// Read into the bounce buffer, then copy to the transport's buffer.
    Read,
    /// Copy the transport's buffer into the bounce buffer, then write.
    Write,
    /// `fdatasync` as an AIO (IOCB_CMD_FDSYNC).
    Flush,
}

/// An IO command for a file-backed bdev, as `io_cmd` hands it to the core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AioRequest {
    /// The bdev's file descriptor.
    pub(crate) fd: RawFd,
    /// What to do.
    pub(crate) op: AioOp,
    /// Byte offset in the file.
    pub(crate) offset_bytes: u64,
    /// Length in bytes (0 for a flush).
    pub(crate) len_bytes: u32,
}

/// Which command an AIO belongs to: enough to complete it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AioTag {
    /// The gateway's queue pair ID (unique per gateway).
    pub(crate) qpair_id: u64,
    /// Where the queue pair sits on its core (checked against `qpair_id`).
    pub(crate) qpair_slot: u32,
    /// The transport's command slot.
    pub(crate) slot: u16,
    /// Command identifier.
    pub(crate) cid: u16,
}

/// A page-aligned buffer that only grows.
struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
}

impl AlignedBuf {
    const fn empty() -> Self {
        AlignedBuf { ptr: NonNull::dangling(), cap: 0 }
    }

    /// Makes room for `len` bytes (rounded up to the alignment); false if the allocator refused.
    fn reserve(&mut self, len: usize) -> bool {
        if len <= self.cap {
            return true;
        }
        let cap = len.next_multiple_of(AIO_BUFFER_ALIGN_BYTES);
        let Ok(layout) = Layout::from_size_align(cap, AIO_BUFFER_ALIGN_BYTES) else {
            return false;
        };
        // SAFETY: the layout has a non-zero size (len > self.cap >= 0).
        let Some(ptr) = NonNull::new(unsafe { alloc::alloc(layout) }) else {
            return false;
        };
        self.free();
        *self = AlignedBuf { ptr, cap };
        true
    }

    fn free(&mut self) {
        if self.cap != 0 {
            // SAFETY: ptr was allocated with exactly this layout in `reserve` and is freed only here.
            unsafe {
                alloc::dealloc(self.ptr.as_ptr(), Layout::from_size_align_unchecked(self.cap, AIO_BUFFER_ALIGN_BYTES))
            };
            self.cap = 0;
        }
    }
}

/// One in-flight AIO: its iocb, bounce buffer and owner.
struct AioSlot {
    iocb: sys::Iocb,
    buf: AlignedBuf,
    tag: AioTag,
    op: AioOp,
    len_bytes: u32,
}

/// What a finished AIO hands back to the core.
pub(crate) struct AioCompletion<'a> {
    /// Its command.
    pub(crate) tag: AioTag,
    /// Its outcome as an NVMe status.
    pub(crate) status: Status,
    /// What it did.
    pub(crate) op: AioOp,
    /// Its length in bytes (0 for a flush).
    pub(crate) len_bytes: u32,
    /// For a successful read: the data to send.
    pub(crate) read_data: Option<&'a [u8]>,
}

/// The AIO context of one gateway core.
pub(crate) struct AioEngine {
    /// 0 until the first AIO command on this core (io_setup is done lazily).
    ctx: u64,
    slots: Vec<AioSlot>,
    free: Vec<u16>,
    /// Prepared, not yet submitted.
    pending: Vec<*mut sys::Iocb>,
    pending_slots: Vec<u16>,
    events: Vec<sys::IoEvent>,
    in_flight: usize,
}

// SAFETY: the raw iocb pointers in `pending` point into `slots`, owned by the
// engine; the engine moves between threads only as a whole (with its core,
// before the reactor starts), never shared.
unsafe impl Send for AioEngine {}

impl Default for AioEngine {
    fn default() -> Self {
        AioEngine::new()
    }
}

impl AioEngine {
    /// An engine with its slots preallocated (bounce buffers grow on first use).
    pub(crate) fn new() -> Self {
        let slots = (0..AIO_SLOTS_PER_CORE)
            .map(|_| AioSlot {
                iocb: sys::Iocb::default(),
                buf: AlignedBuf::empty(),
                tag: AioTag { qpair_id: 0, qpair_slot: 0, slot: 0, cid: 0 },
                op: AioOp::Read,
                len_bytes: 0,
            })
            .collect();
        AioEngine {
            ctx: 0,
            slots,
            free: (0..AIO_SLOTS_PER_CORE as u16).rev().collect(),
            pending: Vec::with_capacity(AIO_SLOTS_PER_CORE),
            pending_slots: Vec::with_capacity(AIO_SLOTS_PER_CORE),
            events: vec![sys::IoEvent::default(); AIO_SLOTS_PER_CORE],
            in_flight: 0,
        }
    }

    /// True when another AIO can be prepared.
    #[inline]
    pub(crate) fn has_free_slot(&self) -> bool {
        !self.free.is_empty()
    }

    /// AIOs prepared or submitted and not yet reaped.
    #[inline]
    pub(crate) fn busy(&self) -> usize {
        self.in_flight + self.pending.len()
    }

    /// Prepares one AIO (submitted by the next [`AioEngine::submit`]). For a
    /// write, `data` is copied into the slot's bounce buffer.
    pub(crate) fn prepare(&mut self, req: AioRequest, tag: AioTag, data: &[u8]) -> Result<(), Status> {
        if self.ctx == 0 {
            self.ctx =
                sys::io_setup(AIO_SLOTS_PER_CORE as u32).map_err(|_| Status::generic(generic::INTERNAL_ERROR))?;
        }
        let index = self.free.pop().ok_or(Status::generic(generic::INTERNAL_ERROR))?;
        let slot = &mut self.slots[usize::from(index)];
        let len = req.len_bytes as usize;
        if !slot.buf.reserve(len) {
            self.free.push(index);
            return Err(Status::generic(generic::INTERNAL_ERROR));
        }
        if req.op == AioOp::Write {
            let n = len.min(data.len());
            // SAFETY: reserve made the buffer at least len >= n bytes; data is a distinct Rust slice.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), slot.buf.ptr.as_ptr(), n) };
        }
        let opcode = match req.op {
            AioOp::Read => sys::IOCB_CMD_PREAD,
            AioOp::Write => sys::IOCB_CMD_PWRITE,
            AioOp::Flush => sys::IOCB_CMD_FDSYNC,
        };
        slot.iocb = sys::Iocb {
            aio_data: u64::from(index),
            aio_lio_opcode: opcode,
            aio_fildes: req.fd as u32,
            aio_buf: if req.op == AioOp::Flush { 0 } else { slot.buf.ptr.as_ptr() as u64 },
            aio_nbytes: u64::from(req.len_bytes),
            aio_offset: req.offset_bytes as i64,
            ..sys::Iocb::default()
        };
        slot.tag = tag;
        slot.op = req.op;
        slot.len_bytes = req.len_bytes;
        let iocb: *mut sys::Iocb = &mut slot.iocb;
        self.pending.push(iocb);
        self.pending_slots.push(index);
        Ok(())
    }

    /// Submits everything prepared; calls `failed` for AIOs the kernel refused
    /// (their slots are freed).
    pub(crate) fn submit(&mut self, mut failed: impl FnMut(AioTag, Status)) {
        let mut done = 0;
        while done < self.pending.len() {
            // SAFETY: each pointer points at the iocb of a slot we own and do not touch until its event is
            // reaped; its bounce buffer (owned by the slot) stays allocated and unread by us until then.
            // The slots Vec never reallocates (fixed size), so the pointers stay valid.
            match unsafe { sys::io_submit(self.ctx, &mut self.pending[done..]) } {
                Ok(0) => break,
                Ok(n) => {
                    done += n;
                    self.in_flight += n;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // The first iocb not queued is the bad one; fail it and try the rest.
                    let index = self.pending_slots[done];
                    let slot = &self.slots[usize::from(index)];
                    failed(slot.tag, errno_status(e.raw_os_error().unwrap_or(libc::EIO), slot.op));
                    self.free.push(index);
                    done += 1;
                }
            }
        }
        // Anything left after Ok(0) (the context is full: cannot happen, slots == nr_events) fails too.
        for &index in &self.pending_slots[done..] {
            let slot = &self.slots[usize::from(index)];
            failed(slot.tag, Status::generic(generic::INTERNAL_ERROR));
            self.free.push(index);
        }
        self.pending.clear();
        self.pending_slots.clear();
    }

    /// Reaps finished AIOs without blocking; calls `done` for each. Returns how many.
    pub(crate) fn reap(&mut self, mut done: impl FnMut(AioCompletion<'_>)) -> usize {
        if self.in_flight == 0 {
            return 0;
        }
        let n = match sys::io_getevents_nowait(self.ctx, &mut self.events) {
            Ok(n) => n,
            Err(_) => return 0,
        };
        for i in 0..n {
            let ev = self.events[i];
            let Some(slot) = usize::try_from(ev.data).ok().and_then(|index| self.slots.get(index)) else {
                continue;
            };
            self.in_flight -= 1;
            let status = if ev.res < 0 {
                errno_status((-ev.res) as i32, slot.op)
            } else if slot.op != AioOp::Flush && ev.res as u64 != u64::from(slot.len_bytes) {
                // A short transfer inside the checked range: the file shrank under us.
                Status::generic(generic::DATA_TRANSFER_ERROR)
            } else {
                Status::SUCCESS
            };
            let read_data = (status.is_success() && slot.op == AioOp::Read).then(|| {
                // SAFETY: the kernel wrote len_bytes (checked above) into this slot's buffer, which holds at
                // least that many bytes; no other reference to it exists while the completion is handled.
                unsafe { core::slice::from_raw_parts(slot.buf.ptr.as_ptr(), slot.len_bytes as usize) }
            });
            done(AioCompletion { tag: slot.tag, status, op: slot.op, len_bytes: slot.len_bytes, read_data });
            self.free.push(ev.data as u16);
        }
        n
    }
}

impl Drop for AioEngine {
    fn drop(&mut self) {
        if self.ctx != 0 {
            // Waits for in-flight IOs, so the bounce buffers are no longer the kernel's when freed below.
            sys::io_destroy(self.ctx);
        }
        for slot in &mut self.slots {
            slot.buf.free();
        }
    }
}

/// The NVMe status for an AIO that failed with `errno`.
fn errno_status(errno: i32, op: AioOp) -> Status {
    match (errno, op) {
        // FDSYNC not supported by this filesystem's AIO.
        (libc::EINVAL, AioOp::Flush) => Status::generic(generic::INVALID_OPCODE).with_dnr(),
        // Media errors: Write Fault / Unrecovered Read Error (SCT 2, NVMe Base 2.0c Figure 104).
        (libc::EIO, AioOp::Write) => Status { sct: protocol::StatusCodeType::MediaError, sc: 0x80, ..Status::SUCCESS },
        (libc::EIO, AioOp::Read) => Status { sct: protocol::StatusCodeType::MediaError, sc: 0x81, ..Status::SUCCESS },
        (libc::ENOSPC, _) => Status::generic(generic::CAPACITY_EXCEEDED).with_dnr(),
        _ => Status::generic(generic::INTERNAL_ERROR),
    }
}

/// An owned, page-aligned, zeroed buffer for the control path (the O_DIRECT
/// probe at bdev creation, the synchronous bdev calls); not used per IO.
pub(crate) struct AlignedScratch(AlignedBuf, usize);

impl AlignedScratch {
    /// `len` zeroed bytes; None if the allocator refused.
    pub(crate) fn new(len: usize) -> Option<Self> {
        let mut buf = AlignedBuf::empty();
        if !buf.reserve(len.max(1)) {
            return None;
        }
        // SAFETY: reserve allocated at least len bytes at buf.ptr.
        unsafe { core::ptr::write_bytes(buf.ptr.as_ptr(), 0, len) };
        Some(AlignedScratch(buf, len))
    }

    /// The bytes.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the allocation holds at least self.1 initialised bytes (zeroed in new) and we own it.
        unsafe { core::slice::from_raw_parts_mut(self.0.ptr.as_ptr(), self.1) }
    }
}

impl Drop for AlignedScratch {
    fn drop(&mut self) {
        self.0.free();
    }
}
