//! IO buffers: page-aligned memory that the engine lends to a transport while
//! an IO is in flight.
//!
//! An [`IoBuf`] moves into the engine with a submission and comes back with
//! its completion, so by type nobody can touch it while the transport (or, for
//! RDMA, the NIC) may be reading or writing it. Buffers are made at start-up
//! (by the application, or from a [`BufPool`]) and reused; the IO path never
//! allocates one.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

/// Alignment of every IO buffer: a page, as RDMA registration and O_DIRECT want.
pub const IO_BUF_ALIGN: usize = 4096;

/// An owned, page-aligned, zero-initialised byte buffer.
pub struct IoBuf {
    ptr: NonNull<u8>,
    len: usize,
    capacity: usize,
}

// SAFETY: IoBuf owns its allocation exclusively (like Box<[u8]>); moving it to
// another thread moves that ownership.
unsafe impl Send for IoBuf {}

impl IoBuf {
    /// Allocates `capacity` bytes (at least one), aligned to [`IO_BUF_ALIGN`];
    /// the visible length starts equal to the capacity.
    pub fn new(capacity: usize) -> IoBuf {
        let capacity = capacity.max(1);
        let layout = Self::layout(capacity);
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        IoBuf { ptr, len: capacity, capacity }
    }

    fn layout(capacity: usize) -> Layout {
        // A capacity this large cannot be allocated anyway; fail loudly rather than wrap.
        Layout::from_size_align(capacity, IO_BUF_ALIGN).expect("IoBuf capacity overflows a Layout")
    }

    /// The visible length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the visible length is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sets the visible length (clamped to the capacity), so one buffer serves
    /// IOs of several sizes.
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.capacity);
    }

    /// The visible bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for capacity >= len initialised bytes, owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The visible bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The start of the memory, for lending to a transport.
    pub(crate) fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }
}

impl Drop for IoBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with exactly this layout, freed once.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.capacity)) }
    }
}

impl std::fmt::Debug for IoBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoBuf").field("len", &self.len).field("capacity", &self.capacity).finish()
    }
}

/// A fixed set of equal-sized buffers made up front; `get` and `put` never allocate.
#[derive(Debug)]
pub struct BufPool {
    free: Vec<IoBuf>,
    buf_size: usize,
}

impl BufPool {
    /// Makes `count` buffers of `buf_size` bytes.
    pub fn new(count: usize, buf_size: usize) -> BufPool {
        BufPool { free: (0..count).map(|_| IoBuf::new(buf_size)).collect(), buf_size }
    }

    /// Takes a buffer, its length reset to the pool's size; `None` when all are out.
    pub fn get(&mut self) -> Option<IoBuf> {
        let mut b = self.free.pop()?;
        b.set_len(self.buf_size);
        Some(b)
    }

    /// Returns a buffer. The Vec was sized for all of them, so this does not allocate.
    pub fn put(&mut self, buf: IoBuf) {
        self.free.push(buf);
    }

    /// Buffers available now.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_buf_is_page_aligned_zeroed_and_resizable() {
        let mut b = IoBuf::new(8192);
        assert_eq!(b.as_ptr().as_ptr() as usize % IO_BUF_ALIGN, 0);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        b.set_len(512);
        b.as_mut_slice().fill(7);
        assert_eq!(b.len(), 512);
        b.set_len(1 << 20);
        assert_eq!(b.len(), 8192);
    }

    #[test]
    fn pool_hands_out_each_buffer_once() {
        let mut p = BufPool::new(2, 4096);
        let a = p.get().unwrap();
        let b = p.get().unwrap();
        assert!(p.get().is_none());
        p.put(a);
        p.put(b);
        assert_eq!(p.available(), 2);
    }
}
