//! Block devices the gateway exports as namespaces: malloc (RAM), null, and
//! AIO (a file or block device opened O_DIRECT).
//!
//! Malloc and null IO is synchronous: a malloc read is a `memcpy`. An AIO
//! bdev's reads, writes and flushes on the gateway's IO path go through the
//! core's Linux AIO context ([`crate::aio`]) and complete later; the
//! synchronous methods here also work for it (blocking `pread`/`pwrite`, for
//! tests and tools, never called by the reactors for reads and writes).
//! Write Zeroes and Deallocate on an AIO bdev are a synchronous `fallocate`
//! (SPDK's `fallocate` option): rare commands, a blocking syscall on the core.

use core::fmt;
use core::ptr::NonNull;
use std::alloc::{self, Layout};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::Arc;

use crate::error::{BdevError, TargetError};
use engine::BorrowedData;

/// Alignment of malloc bdev memory: a page, as DMA-able buffers are.
const MALLOC_ALIGN_BYTES: usize = 4096;

/// A block device.
///
/// Shared as `Arc<Bdev>` by the IO queues of several cores at once; all IO
/// methods take `&self` and no lock.
pub struct Bdev {
    name: String,
    uuid: [u8; 16],
    block_size: u32,
    num_blocks: u64,
    backend: BdevBackend,
}

/// Where a bdev's data lives.
pub enum BdevBackend {
    /// In RAM, lost at exit (SPDK's malloc bdev).
    Malloc(MallocMemory),
    /// Nowhere: reads return zeroes, writes are dropped (SPDK's null bdev).
    Null,
    /// A file or block device, O_DIRECT, through Linux AIO (SPDK's aio bdev).
    Aio(AioFile),
}

/// The file behind an AIO bdev.
#[derive(Debug)]
pub struct AioFile {
    file: File,
    filename: String,
    block_size_override: bool,
}

impl AioFile {
    /// The path it was opened with.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// True when the block size was given rather than the default.
    pub fn block_size_override(&self) -> bool {
        self.block_size_override
    }

    /// The file descriptor (valid while the bdev lives).
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// Block size of an AIO bdev created without one.
pub const AIO_DEFAULT_BLOCK_SIZE: u32 = 512;

impl fmt::Debug for Bdev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bdev")
            .field("name", &self.name)
            .field("uuid", &format_uuid(&self.uuid))
            .field("block_size", &self.block_size)
            .field("num_blocks", &self.num_blocks)
            .field("product_name", &self.product_name())
            .finish()
    }
}

impl Bdev {
    /// A RAM-backed bdev of `num_blocks` blocks of `block_size` bytes, zeroed.
    /// `uuid` defaults to a random version 4 UUID.
    pub fn malloc(name: &str, num_blocks: u64, block_size: u32, uuid: Option<[u8; 16]>) -> Result<Bdev, TargetError> {
        let size_bytes = check_geometry(name, num_blocks, block_size)?;
        let memory = MallocMemory::new_zeroed(size_bytes)
            .ok_or_else(|| TargetError::BdevNoMemory { name: name.to_string(), size_bytes })?;
        Ok(Bdev {
            name: name.to_string(),
            uuid: uuid.unwrap_or_else(random_uuid_v4),
            block_size,
            num_blocks,
            backend: BdevBackend::Malloc(memory),
        })
    }

    /// A bdev that stores nothing, of the given geometry.
    pub fn null(name: &str, num_blocks: u64, block_size: u32, uuid: Option<[u8; 16]>) -> Result<Bdev, TargetError> {
        check_geometry(name, num_blocks, block_size)?;
        Ok(Bdev {
            name: name.to_string(),
            uuid: uuid.unwrap_or_else(random_uuid_v4),
            block_size,
            num_blocks,
            backend: BdevBackend::Null,
        })
    }

    /// A bdev on `filename` (a regular file or block device), opened
    /// read-write with O_DIRECT; `block_size` defaults to 512 and must be a
    /// multiple of 512 that O_DIRECT accepts on that file (checked by one
    /// aligned read of the first block). Its size is the file's size in
    /// whole blocks.
    pub fn aio(
        name: &str,
        filename: &str,
        block_size: Option<u32>,
        uuid: Option<[u8; 16]>,
    ) -> Result<Bdev, TargetError> {
        let invalid = |reason: String| TargetError::BdevInvalid { name: name.to_string(), reason };
        let io_err = |what: &str, e: std::io::Error| TargetError::BdevFile {
            name: name.to_string(),
            filename: filename.to_string(),
            reason: format!("{what}: {e}"),
        };
        let bs = block_size.unwrap_or(AIO_DEFAULT_BLOCK_SIZE);
        if bs == 0 || bs % 512 != 0 || bs as usize > crate::aio::AIO_BUFFER_ALIGN_BYTES * 16 {
            return Err(invalid(format!("block_size {bs} is not a multiple of 512 (at most 64 KiB)")));
        }
        let file = OpenOptions::new().read(true).write(true).custom_flags(libc::O_DIRECT).open(filename).map_err(
            |e| match e.raw_os_error() {
                Some(libc::EINVAL) => io_err("the filesystem refuses O_DIRECT (tmpfs does; use a disk-backed path)", e),
                _ => io_err("open", e),
            },
        )?;
        let meta = file.metadata().map_err(|e| io_err("stat", e))?;
        let size_bytes = if meta.file_type().is_file() {
            meta.len()
        } else {
            // A block device: its size is where a seek to the end lands.
            use std::io::Seek;
            (&file).seek(std::io::SeekFrom::End(0)).map_err(|e| io_err("size", e))?
        };
        let num_blocks = size_bytes / u64::from(bs);
        if num_blocks == 0 {
            return Err(invalid(format!("'{filename}' ({size_bytes} bytes) holds no whole block of {bs} bytes")));
        }
        check_geometry(name, num_blocks, bs)?;
        // One aligned O_DIRECT read of the first block: fails now (EINVAL) if the block size is below the
        // device's logical sector size, instead of failing every IO later.
        let mut probe = crate::aio::AlignedScratch::new(bs as usize).ok_or_else(|| invalid("no memory".into()))?;
        file.read_exact_at(probe.as_mut_slice(), 0)
            .map_err(|e| io_err(&format!("O_DIRECT read of {bs} bytes (block size below the sector size?)"), e))?;
        Ok(Bdev {
            name: name.to_string(),
            uuid: uuid.unwrap_or_else(random_uuid_v4),
            block_size: bs,
            num_blocks,
            backend: BdevBackend::Aio(AioFile {
                file,
                filename: filename.to_string(),
                block_size_override: block_size.is_some(),
            }),
        })
    }

    /// The AIO file descriptor, for the IO path (None for other backends).
    #[inline]
    pub fn aio_fd(&self) -> Option<RawFd> {
        match &self.backend {
            BdevBackend::Aio(f) => Some(f.fd()),
            _ => None,
        }
    }

    /// The bdev's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bdev's UUID (also the default namespace UUID and NGUID).
    pub fn uuid(&self) -> [u8; 16] {
        self.uuid
    }

    /// Logical block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Number of logical blocks.
    pub fn num_blocks(&self) -> u64 {
        self.num_blocks
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> u64 {
        // Cannot overflow: checked when the bdev was made.
        self.num_blocks * u64::from(self.block_size)
    }

    /// The backend.
    pub fn backend(&self) -> &BdevBackend {
        &self.backend
    }

    /// SPDK's product name, as `bdev_get_bdevs` shows it.
    pub fn product_name(&self) -> &'static str {
        match self.backend {
            BdevBackend::Malloc(_) => "Malloc disk",
            BdevBackend::Null => "Null disk",
            BdevBackend::Aio(_) => "AIO disk",
        }
    }

    /// Reads `buf.len()` bytes at `offset_bytes`. A null bdev reads zeroes.
    pub fn read(&self, offset_bytes: u64, buf: &mut [u8]) -> Result<(), BdevError> {
        let start = self.check_range(offset_bytes, buf.len() as u64)?;
        match &self.backend {
            BdevBackend::Malloc(memory) => memory.read(start, buf),
            BdevBackend::Null => buf.fill(0),
            BdevBackend::Aio(f) => {
                let mut bounce = crate::aio::AlignedScratch::new(buf.len()).ok_or(BdevError::Io(libc::ENOMEM))?;
                f.file.read_exact_at(bounce.as_mut_slice(), offset_bytes).map_err(BdevError::from_io)?;
                buf.copy_from_slice(bounce.as_mut_slice());
            }
        }
        Ok(())
    }

    /// For a zero-copy read: the bytes at `offset_bytes` where they live, for
    /// the transport to send without copying them first. `None` when the
    /// backend keeps no such memory (null) or the range is out of bounds.
    pub fn borrow_for_read(self: &Arc<Self>, offset_bytes: u64, len_bytes: u32) -> Option<BorrowedData> {
        let start = self.check_range(offset_bytes, u64::from(len_bytes)).ok()?;
        match &self.backend {
            BdevBackend::Malloc(memory) => {
                // SAFETY: check_range put start + len_bytes inside the allocation, so the pointer is in bounds.
                let ptr = unsafe { NonNull::new_unchecked(memory.ptr.as_ptr().add(start)) };
                // The Arc keeps the allocation alive while the transport holds the data; a concurrent write
                // to the same blocks may tear what is sent, as with a copy (see MallocMemory).
                Some(BorrowedData { ptr, len: len_bytes, owner: self.clone() })
            }
            BdevBackend::Null | BdevBackend::Aio(_) => None,
        }
    }

    /// Writes `buf` at `offset_bytes`. A null bdev drops the data.
    pub fn write(&self, offset_bytes: u64, buf: &[u8]) -> Result<(), BdevError> {
        let start = self.check_range(offset_bytes, buf.len() as u64)?;
        match &self.backend {
            BdevBackend::Malloc(memory) => memory.write(start, buf),
            BdevBackend::Null => {}
            BdevBackend::Aio(f) => {
                let mut bounce = crate::aio::AlignedScratch::new(buf.len()).ok_or(BdevError::Io(libc::ENOMEM))?;
                bounce.as_mut_slice().copy_from_slice(buf);
                f.file.write_all_at(bounce.as_mut_slice(), offset_bytes).map_err(BdevError::from_io)?;
            }
        }
        Ok(())
    }

    /// Zeroes `len_bytes` bytes at `offset_bytes`.
    pub fn write_zeroes(&self, offset_bytes: u64, len_bytes: u64) -> Result<(), BdevError> {
        let start = self.check_range(offset_bytes, len_bytes)?;
        match &self.backend {
            // Fits in usize: the range lies inside an allocation.
            BdevBackend::Malloc(memory) => memory.fill_zero(start, len_bytes as usize),
            BdevBackend::Null => {}
            BdevBackend::Aio(f) => fallocate(&f.file, libc::FALLOC_FL_ZERO_RANGE, offset_bytes, len_bytes)?,
        }
        Ok(())
    }

    /// Deallocates a range. A malloc bdev zeroes it, so that deallocated
    /// blocks read back as zeroes (as SPDK's malloc bdev does); an AIO bdev
    /// punches a hole (which reads back as zeroes too).
    pub fn unmap(&self, offset_bytes: u64, len_bytes: u64) -> Result<(), BdevError> {
        match &self.backend {
            BdevBackend::Aio(f) => {
                self.check_range(offset_bytes, len_bytes)?;
                fallocate(&f.file, libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, offset_bytes, len_bytes)
            }
            _ => self.write_zeroes(offset_bytes, len_bytes),
        }
    }

    /// Makes completed writes durable: nothing to do for RAM or null; an
    /// AIO bdev's file is `fdatasync`ed (blocking; the IO path uses an AIO FDSYNC instead).
    pub fn flush(&self) -> Result<(), BdevError> {
        match &self.backend {
            BdevBackend::Aio(f) => f.file.sync_data().map_err(BdevError::from_io),
            _ => Ok(()),
        }
    }

    /// Checks that `[offset, offset + len)` lies inside the device; returns the offset as usize.
    fn check_range(&self, offset_bytes: u64, len_bytes: u64) -> Result<usize, BdevError> {
        let size_bytes = self.size_bytes();
        let out_of_range = BdevError::OutOfRange { offset_bytes, len_bytes, size_bytes };
        match offset_bytes.checked_add(len_bytes) {
            Some(end) if end <= size_bytes => usize::try_from(offset_bytes).map_err(|_| out_of_range),
            _ => Err(out_of_range),
        }
    }
}

/// `fallocate(mode)` on a range of an AIO bdev's file.
fn fallocate(file: &File, mode: libc::c_int, offset_bytes: u64, len_bytes: u64) -> Result<(), BdevError> {
    if len_bytes == 0 {
        return Ok(());
    }
    // SAFETY: fallocate takes a file descriptor we own (open for the bdev's life) and plain integers.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset_bytes as libc::off_t, len_bytes as libc::off_t) };
    if r != 0 {
        return Err(BdevError::from_io(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Validates a bdev's geometry as SPDK's malloc and null modules do; returns the size in bytes.
fn check_geometry(name: &str, num_blocks: u64, block_size: u32) -> Result<u64, TargetError> {
    let invalid = |reason: String| TargetError::BdevInvalid { name: name.to_string(), reason };
    if name.is_empty() {
        return Err(invalid("name must not be empty".to_string()));
    }
    if num_blocks == 0 {
        return Err(invalid("num_blocks must be greater than 0".to_string()));
    }
    if block_size == 0 || block_size % 512 != 0 {
        return Err(invalid(format!("block_size {block_size} is not a multiple of 512")));
    }
    let size_bytes = num_blocks
        .checked_mul(u64::from(block_size))
        .filter(|&size| size <= isize::MAX as u64)
        .ok_or_else(|| invalid(format!("{num_blocks} blocks of {block_size} bytes is too large")))?;
    Ok(size_bytes)
}

/// The memory of a malloc bdev: one zeroed, page-aligned allocation that IO
/// queues on several cores read and write at the same time without a lock,
/// the way a DMA device's memory is shared.
///
/// Concurrency contract, stated honestly. Nothing orders two IOs to the same
/// bytes: the NVMe spec leaves overlapping commands in flight at once
/// unordered, and a host that issues them gets torn data (some bytes from
/// each). Non-overlapping IOs never touch the same bytes and are independent.
/// In the Rust (C++20) memory model, a non-atomic write racing with another
/// access to the same byte is a data race, which is undefined behaviour *by
/// definition*. We accept that the way SPDK's malloc bdev and every emulated
/// DMA device do: all accesses are `copy_nonoverlapping` / `write_bytes` calls
/// through a raw pointer into an allocation no Rust reference ever points
/// into, the bytes carry no validity invariant (any value is a valid `u8`),
/// and no Rust code derives control flow or pointers from them, so the
/// compiler has nothing to exploit; the observable outcome of a race is torn
/// bytes, which is what the spec allows. A strictly conforming alternative
/// (per-byte atomics) would cost an order of magnitude in copy speed.
pub struct MallocMemory {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: MallocMemory owns its allocation (freed once, in Drop); it holds no
// thread-affine state, so moving it to another thread is sound.
unsafe impl Send for MallocMemory {}
// SAFETY: shared access only goes through raw-pointer copies inside
// bounds-checked ranges (see the type's doc for the overlapping-IO caveat);
// no `&`/`&mut` to the bytes is ever created, so no aliasing rule is broken.
unsafe impl Sync for MallocMemory {}

impl MallocMemory {
    /// Allocates `size_bytes` zeroed bytes; `None` if the allocator refuses.
    fn new_zeroed(size_bytes: u64) -> Option<MallocMemory> {
        let size = usize::try_from(size_bytes).ok().filter(|&size| size > 0)?;
        let layout = Layout::from_size_align(size, MALLOC_ALIGN_BYTES).ok()?;
        // SAFETY: the layout has a non-zero size (checked above).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        NonNull::new(raw).map(|ptr| MallocMemory { ptr, layout })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Never true: a malloc bdev has at least one block.
    pub fn is_empty(&self) -> bool {
        self.layout.size() == 0
    }

    /// Copies out `buf.len()` bytes at `start`; the caller checked the range.
    fn read(&self, start: usize, buf: &mut [u8]) {
        debug_assert!(start + buf.len() <= self.len());
        // SAFETY: `start + buf.len() <= self.len()` (Bdev::check_range): the source is inside our allocation;
        // `buf` is a distinct slice, so no overlap. A concurrent write may tear the copy (see the type's doc).
        unsafe { core::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(start), buf.as_mut_ptr(), buf.len()) }
    }

    /// Copies `buf` in at `start`; the caller checked the range.
    fn write(&self, start: usize, buf: &[u8]) {
        debug_assert!(start + buf.len() <= self.len());
        // SAFETY: as in `read`, the destination lies inside our allocation and
        // cannot overlap `buf`, which is a Rust slice outside it.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), self.ptr.as_ptr().add(start), buf.len()) }
    }

    /// Zeroes `len` bytes at `start`; the caller checked the range.
    fn fill_zero(&self, start: usize, len: usize) {
        debug_assert!(start + len <= self.len());
        // SAFETY: `start + len <= self.len()`, so the range is inside our allocation.
        unsafe { core::ptr::write_bytes(self.ptr.as_ptr().add(start), 0, len) }
    }
}

impl Drop for MallocMemory {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed(self.layout)` and is freed only here.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A random RFC 4122 version 4 UUID.
pub fn random_uuid_v4() -> [u8; 16] {
    let mut uuid: [u8; 16] = rand::random();
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid
}

/// Formats a UUID as SPDK prints it: lowercase 8-4-4-4-12.
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

/// Parses an 8-4-4-4-12 UUID (either case).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let bytes = s.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes.get(i) != Some(&b'-')) {
        return None;
    }
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    parse_hex16(&hex)
}

/// Formats an NGUID as SPDK prints it: 32 uppercase hex digits.
pub fn format_nguid(nguid: &[u8; 16]) -> String {
    nguid.iter().map(|b| format!("{b:02X}")).collect()
}

/// Parses an NGUID: 32 hex digits (either case), as SPDK's `-g` takes it.
pub fn parse_nguid(s: &str) -> Option<[u8; 16]> {
    parse_hex16(s)
}

/// Parses exactly 32 hex digits into 16 bytes.
fn parse_hex16(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malloc_reads_back_what_was_written() {
        let bdev = Bdev::malloc("Malloc0", 16, 512, None).unwrap();
        let data: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
        bdev.write(512, &data).unwrap();
        let mut back = vec![0u8; 1024];
        bdev.read(512, &mut back).unwrap();
        assert_eq!(back, data);
        let mut first = vec![0xffu8; 512];
        bdev.read(0, &mut first).unwrap();
        assert!(first.iter().all(|&b| b == 0), "untouched block reads as zeroes");
    }

    #[test]
    fn rejects_io_past_the_end_without_panicking() {
        let bdev = Bdev::malloc("Malloc0", 8, 512, None).unwrap();
        let mut buf = vec![0u8; 512];
        assert!(matches!(bdev.read(7 * 512 + 1, &mut buf), Err(BdevError::OutOfRange { .. })));
        assert!(matches!(bdev.write(u64::MAX, &buf), Err(BdevError::OutOfRange { .. })));
        assert!(matches!(bdev.unmap(u64::MAX - 10, 20), Err(BdevError::OutOfRange { .. })));
        assert!(bdev.read(7 * 512, &mut buf).is_ok(), "the last block is inside");
    }

    #[test]
    fn unmap_and_write_zeroes_zero_the_range_only() {
        let bdev = Bdev::malloc("Malloc0", 4, 512, None).unwrap();
        bdev.write(0, &[0xaa; 2048]).unwrap();
        bdev.unmap(512, 512).unwrap();
        bdev.write_zeroes(1536, 512).unwrap();
        let mut back = vec![0u8; 2048];
        bdev.read(0, &mut back).unwrap();
        assert!(back[..512].iter().all(|&b| b == 0xaa));
        assert!(back[512..1024].iter().all(|&b| b == 0));
        assert!(back[1024..1536].iter().all(|&b| b == 0xaa));
        assert!(back[1536..].iter().all(|&b| b == 0));
    }

    #[test]
    fn null_bdev_reads_zeroes_and_drops_writes() {
        let bdev = Bdev::null("Null0", 1 << 30, 4096, None).unwrap();
        bdev.write(4096, &[1; 4096]).unwrap();
        let mut back = vec![0xffu8; 4096];
        bdev.read(4096, &mut back).unwrap();
        assert!(back.iter().all(|&b| b == 0));
        assert_eq!(bdev.product_name(), "Null disk");
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(matches!(Bdev::malloc("m", 0, 512, None), Err(TargetError::BdevInvalid { .. })));
        assert!(matches!(Bdev::malloc("m", 8, 520, None), Err(TargetError::BdevInvalid { .. })));
        assert!(matches!(Bdev::null("n", u64::MAX, 4096, None), Err(TargetError::BdevInvalid { .. })));
    }

    #[test]
    fn concurrent_non_overlapping_writes_from_many_threads_land() {
        let bdev = std::sync::Arc::new(Bdev::malloc("Malloc0", 64, 512, None).unwrap());
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let bdev = bdev.clone();
                std::thread::spawn(move || {
                    for i in 0..16u64 {
                        bdev.write((u64::from(t) * 16 + i) * 512, &[t + 1; 512]).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let mut back = vec![0u8; 64 * 512];
        bdev.read(0, &mut back).unwrap();
        for (block, chunk) in back.chunks(512).enumerate() {
            assert!(chunk.iter().all(|&b| b == (block / 16) as u8 + 1));
        }
    }

    #[test]
    fn uuid_and_nguid_round_trip_in_spdk_spelling() {
        let uuid = parse_uuid("070685b9-0b0b-42ec-8ba5-f31a343b9e34").unwrap();
        assert_eq!(format_uuid(&uuid), "070685b9-0b0b-42ec-8ba5-f31a343b9e34");
        assert_eq!(format_nguid(&uuid), "070685B90B0B42EC8BA5F31A343B9E34");
        assert_eq!(parse_nguid("070685B90B0B42EC8BA5F31A343B9E34"), Some(uuid));
        assert_eq!(parse_uuid("070685b9-0b0b-42ec-8ba5-f31a343b9e3"), None);
        assert_eq!(parse_uuid("070685b90-b0b-42ec-8ba5-f31a343b9e34"), None);
        assert_eq!(parse_uuid("070685b9-0b0b-42ec-8ba5-f31a343b9e3é"), None);
        let random = random_uuid_v4();
        assert_eq!(random[6] >> 4, 4);
        assert_ne!(random, random_uuid_v4());
    }
}
