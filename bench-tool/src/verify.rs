//! Data verification: every sector of a written buffer carries a stamp saying
//! where it belongs and which write put it there, so a read can tell good data
//! from misplaced, stale, corrupt or impossible data.
//!
//! Sector layout (little-endian), repeated every `sector_size_bytes`:
//!
//! | bytes   | field                                                   |
//! |---------|---------------------------------------------------------|
//! | 0..8    | magic `CPBENCH1`                                        |
//! | 8..16   | byte offset of this sector in the namespace             |
//! | 16..24  | generation of the write (per job, starts at 1)          |
//! | 24..32  | stamp tag: which job of which run wrote it              |
//! | 32..36  | CRC-32C of bytes 0..32 and 36..end                      |
//! | 36..40  | zero                                                    |
//! | 40..end | payload derived from (offset, generation, tag)          |
//!
//! The verifier remembers, per IO unit of the job's region, the generation of
//! the last write that completed successfully. The job's in-flight tracker keeps
//! reads off units being written, so a read must find exactly that generation.

use crate::workload::{splitmix64, Region};

/// Bytes of the stamp header at the start of every sector.
pub const STAMP_HEADER_BYTES: usize = 40;

/// `CPBENCH1` read as a little-endian u64.
pub const STAMP_MAGIC: u64 = u64::from_le_bytes(*b"CPBENCH1");

/// Per-unit state: never written by this job.
const GEN_NEVER_WRITTEN: u64 = 0;
/// Per-unit state: a write failed, so the content is old or new or a mix.
const GEN_UNKNOWN: u64 = u64::MAX;

/// What was wrong with a sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyErrorKind {
    /// The stamp names another offset: data landed in the wrong place.
    Misplaced,
    /// An older generation than the last acknowledged write: a write was lost.
    Stale,
    /// The stamp or payload does not match its CRC, or the magic is gone from
    /// a sector this job wrote.
    Corrupt,
    /// A generation this job never issued.
    Impossible,
    /// A generation this job issued but that was never acknowledged for this unit.
    Unacknowledged,
    /// Intact stamp, but from another job or run.
    ForeignStamp,
    /// A never-written sector that should read as zeros does not.
    NotZero,
}

impl VerifyErrorKind {
    /// Lower-case name for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyErrorKind::Misplaced => "misplaced",
            VerifyErrorKind::Stale => "stale",
            VerifyErrorKind::Corrupt => "corrupt",
            VerifyErrorKind::Impossible => "impossible",
            VerifyErrorKind::Unacknowledged => "unacknowledged",
            VerifyErrorKind::ForeignStamp => "foreign_stamp",
            VerifyErrorKind::NotZero => "not_zero",
        }
    }
}

/// A verify failure: which sector, what was expected and what was found.
/// Plain data (`Copy`), so recording it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "verify: {} sector at offset {offset_bytes}: expected generation {expected_generation}, \
     found generation {found_generation} stamped for offset {found_offset_bytes}",
    kind.as_str()
)]
pub struct VerifyError {
    /// What was wrong.
    pub kind: VerifyErrorKind,
    /// Byte offset of the bad sector in the namespace.
    pub offset_bytes: u64,
    /// Generation of the last acknowledged write to it (0: never written).
    pub expected_generation: u64,
    /// Generation in the sector's stamp (0 when there is no readable stamp).
    pub found_generation: u64,
    /// Offset in the sector's stamp (0 when there is no readable stamp).
    pub found_offset_bytes: u64,
}

/// What a never-written unit is expected to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwrittenPolicy {
    /// Anything an earlier run left (fio's rule: a run verifies only what it
    /// wrote); only a stamp of this run's own there is an error.
    Unknown,
    /// Zeros (a freshly created, thin-provisioned image).
    Zeroed,
}

/// Parameters of a [`Verifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyConfig {
    /// The job's region; the verifier keeps one entry per IO unit of it.
    pub region: Region,
    /// Size of every IO (`bs`), a multiple of `sector_size_bytes`.
    pub io_size_bytes: u32,
    /// Stamp granularity: the namespace's logical block size.
    pub sector_size_bytes: u32,
    /// Identifies the job and run in every stamp.
    pub stamp_tag: u64,
    /// What never-written units hold.
    pub unwritten: UnwrittenPolicy,
}

/// Why a [`VerifyConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyConfigError {
    /// Sectors must hold the header and be a whole number of 8-byte words.
    #[error("sector size {0} cannot hold a verify stamp (need a multiple of 8, at least 40)")]
    BadSectorSize(u32),
    /// The IO size must be a whole number of sectors.
    #[error("io size {io_size_bytes} is not a multiple of the sector size {sector_size_bytes}")]
    IoSizeNotSectorMultiple {
        /// IO size.
        io_size_bytes: u32,
        /// Sector size.
        sector_size_bytes: u32,
    },
    /// The region holds no whole IO.
    #[error("region of {0} bytes holds no whole IO")]
    EmptyRegion(u64),
}

/// What a job knows about one IO unit of its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitState {
    /// No write to it ever completed (successfully or not).
    NeverWritten,
    /// Its last write failed: the content is old, new or a mix.
    Unknown,
    /// The generation of its last acknowledged write.
    Acked(u64),
}

/// Stamps write buffers and checks read buffers for one job's region.
#[derive(Debug, Clone)]
pub struct Verifier {
    config: VerifyConfig,
    /// Per unit: last acknowledged generation, or one of the `GEN_*` states.
    acked_generation: Vec<u64>,
    last_issued_generation: u64,
}

fn read_u64(sector: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(bytes) = sector.get(at..at + 8) {
        word.copy_from_slice(bytes);
    }
    u64::from_le_bytes(word)
}

fn read_u32(sector: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(bytes) = sector.get(at..at + 4) {
        word.copy_from_slice(bytes);
    }
    u32::from_le_bytes(word)
}

fn sector_crc(sector: &[u8]) -> u32 {
    let head = sector.get(..32).unwrap_or(&[]);
    let tail = sector.get(36..).unwrap_or(&[]);
    crc32c::crc32c_append(crc32c::crc32c(head), tail)
}

/// Writes one sector's stamp and payload.
fn stamp_sector(sector: &mut [u8], offset_bytes: u64, generation: u64, tag: u64) {
    let (header, payload) = sector.split_at_mut(STAMP_HEADER_BYTES.min(sector.len()));
    let fields = [STAMP_MAGIC, offset_bytes, generation, tag];
    for (chunk, value) in header.chunks_exact_mut(8).zip(fields) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    if let Some(rest) = header.get_mut(32..) {
        rest.fill(0);
    }
    let mut state = splitmix64(offset_bytes ^ generation.rotate_left(32) ^ tag);
    let mut words = payload.chunks_exact_mut(8);
    for word in &mut words {
        state = splitmix64(state);
        word.copy_from_slice(&state.to_le_bytes());
    }
    words.into_remainder().fill(0);
    let crc = sector_crc(sector);
    if let Some(field) = sector.get_mut(32..36) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
}

impl Verifier {
    /// A verifier for a region nothing has been written to yet; allocates its
    /// per-unit table here, once.
    pub fn new(config: VerifyConfig) -> Result<Verifier, VerifyConfigError> {
        let sector = config.sector_size_bytes;
        if sector < STAMP_HEADER_BYTES as u32 || sector % 8 != 0 {
            return Err(VerifyConfigError::BadSectorSize(sector));
        }
        if config.io_size_bytes == 0 || config.io_size_bytes % sector != 0 {
            return Err(VerifyConfigError::IoSizeNotSectorMultiple {
                io_size_bytes: config.io_size_bytes,
                sector_size_bytes: sector,
            });
        }
        let units = config.region.units(config.io_size_bytes);
        if units == 0 {
            return Err(VerifyConfigError::EmptyRegion(config.region.len_bytes));
        }
        Ok(Verifier { config, acked_generation: vec![GEN_NEVER_WRITTEN; units as usize], last_issued_generation: 0 })
    }

    /// The parameters it was made with.
    pub fn config(&self) -> &VerifyConfig {
        &self.config
    }

    /// Takes the next generation for a write about to be issued.
    pub fn issue_write(&mut self) -> u64 {
        self.last_issued_generation += 1;
        self.last_issued_generation
    }

    /// The newest generation issued so far (0: none).
    pub fn last_issued_generation(&self) -> u64 {
        self.last_issued_generation
    }

    /// Number of IO units in the region.
    pub fn units(&self) -> u64 {
        self.acked_generation.len() as u64
    }

    /// What is known about unit `unit` (0-based in the region); `None` past the end.
    pub fn unit_state(&self, unit: u64) -> Option<UnitState> {
        let state = *self.acked_generation.get(usize::try_from(unit).ok()?)?;
        Some(match state {
            GEN_NEVER_WRITTEN => UnitState::NeverWritten,
            GEN_UNKNOWN => UnitState::Unknown,
            generation => UnitState::Acked(generation),
        })
    }

    fn unit_of(&self, offset_bytes: u64) -> Option<usize> {
        let relative = offset_bytes.checked_sub(self.config.region.start_bytes)?;
        let unit = relative / u64::from(self.config.io_size_bytes);
        (unit < self.acked_generation.len() as u64).then_some(unit as usize)
    }

    /// Fills `buf` (one IO's data, starting at `offset_bytes`) with stamped
    /// sectors of `generation`.
    pub fn stamp(&self, buf: &mut [u8], offset_bytes: u64, generation: u64) {
        let sector = self.config.sector_size_bytes as usize;
        let mut sector_offset = offset_bytes;
        for chunk in buf.chunks_mut(sector) {
            stamp_sector(chunk, sector_offset, generation, self.config.stamp_tag);
            sector_offset += sector as u64;
        }
    }

    /// Records that the write of `generation` to the unit at `offset_bytes`
    /// completed successfully.
    pub fn write_acked(&mut self, offset_bytes: u64, generation: u64) {
        if let Some(unit) = self.unit_of(offset_bytes) {
            self.acked_generation[unit] = generation;
        }
    }

    /// Records that a write to the unit at `offset_bytes` failed: its content
    /// may be old, new, or a mix, until the next successful write.
    pub fn write_failed(&mut self, offset_bytes: u64) {
        if let Some(unit) = self.unit_of(offset_bytes) {
            self.acked_generation[unit] = GEN_UNKNOWN;
        }
    }

    /// The generation a read of the unit at `offset_bytes` must find: `Some(0)`
    /// when never written, `None` when unknown after a failed write or out of range.
    pub fn expected_generation(&self, offset_bytes: u64) -> Option<u64> {
        let unit = self.unit_of(offset_bytes)?;
        match self.acked_generation[unit] {
            GEN_UNKNOWN => None,
            generation => Some(generation),
        }
    }

    /// Checks the data a read of one IO at `offset_bytes` returned; reports the
    /// first bad sector.
    pub fn check(&self, buf: &[u8], offset_bytes: u64) -> Result<(), VerifyError> {
        let state = match self.unit_of(offset_bytes) {
            Some(unit) => self.acked_generation[unit],
            None => GEN_UNKNOWN,
        };
        let sector = self.config.sector_size_bytes as usize;
        let mut sector_offset = offset_bytes;
        for chunk in buf.chunks(sector) {
            self.check_sector(chunk, sector_offset, state)?;
            sector_offset += sector as u64;
        }
        Ok(())
    }

    fn check_sector(&self, sector: &[u8], offset_bytes: u64, expected: u64) -> Result<(), VerifyError> {
        let found_generation = read_u64(sector, 16);
        let found_offset_bytes = read_u64(sector, 8);
        let error = |kind, found_generation, found_offset_bytes| VerifyError {
            kind,
            offset_bytes,
            expected_generation: if expected == GEN_UNKNOWN { 0 } else { expected },
            found_generation,
            found_offset_bytes,
        };
        let known_content = expected != GEN_NEVER_WRITTEN && expected != GEN_UNKNOWN;
        if expected == GEN_NEVER_WRITTEN && self.config.unwritten == UnwrittenPolicy::Zeroed {
            return if sector.iter().all(|&b| b == 0) { Ok(()) } else { Err(error(VerifyErrorKind::NotZero, 0, 0)) };
        }
        if read_u64(sector, 0) != STAMP_MAGIC || sector.len() < STAMP_HEADER_BYTES {
            return if known_content { Err(error(VerifyErrorKind::Corrupt, 0, 0)) } else { Ok(()) };
        }
        let ours = read_u64(sector, 24) == self.config.stamp_tag;
        if !known_content && !ours {
            // As fio: a run verifies only what it wrote itself. A unit this run
            // has not written (or whose last write failed) holds whatever an
            // earlier run, verifying or not, left there: anything goes, even an
            // old stamp for another offset (a non-verify run writes back the
            // buffers its reads filled, stamps included).
            return Ok(());
        }
        if read_u32(sector, 32) != sector_crc(sector) {
            return Err(error(VerifyErrorKind::Corrupt, found_generation, found_offset_bytes));
        }
        if found_offset_bytes != offset_bytes {
            return Err(error(VerifyErrorKind::Misplaced, found_generation, found_offset_bytes));
        }
        if !known_content {
            // Our stamp (this run's tag), in the right place: on a unit we never
            // wrote it can only come from an untracked write; after a failed
            // write it is that write's data or an earlier one's, both fine.
            return if expected == GEN_NEVER_WRITTEN {
                Err(error(VerifyErrorKind::Unacknowledged, found_generation, found_offset_bytes))
            } else {
                Ok(())
            };
        }
        let kind = if !ours {
            VerifyErrorKind::ForeignStamp
        } else if found_generation == expected {
            return Ok(());
        } else if found_generation < expected {
            VerifyErrorKind::Stale
        } else if found_generation > self.last_issued_generation {
            VerifyErrorKind::Impossible
        } else {
            VerifyErrorKind::Unacknowledged
        };
        Err(error(kind, found_generation, found_offset_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IO: u32 = 4096;
    const SECTOR: u32 = 512;

    fn verifier(unwritten: UnwrittenPolicy) -> Verifier {
        Verifier::new(VerifyConfig {
            region: Region { start_bytes: 1 << 20, len_bytes: 16 * u64::from(IO) },
            io_size_bytes: IO,
            sector_size_bytes: SECTOR,
            stamp_tag: 0xABCD,
            unwritten,
        })
        .unwrap()
    }

    /// Writes generation `gen` at `offset` and acknowledges it; returns the buffer.
    fn acked_write(v: &mut Verifier, offset: u64) -> (Vec<u8>, u64) {
        let generation = v.issue_write();
        let mut buf = vec![0u8; IO as usize];
        v.stamp(&mut buf, offset, generation);
        v.write_acked(offset, generation);
        (buf, generation)
    }

    #[test]
    fn accepts_the_last_acknowledged_write() {
        let mut v = verifier(UnwrittenPolicy::Unknown);
        let offset = (1 << 20) + 3 * u64::from(IO);
        let (buf, _) = acked_write(&mut v, offset);
        assert_eq!(v.check(&buf, offset), Ok(()));
        let (buf2, generation) = acked_write(&mut v, offset);
        assert_eq!(generation, 2);
        assert_eq!(v.check(&buf2, offset), Ok(()));
    }

    #[test]
    fn stamps_every_sector_with_its_own_offset() {
        let mut v = verifier(UnwrittenPolicy::Unknown);
        let offset = 1 << 20;
        let (buf, generation) = acked_write(&mut v, offset);
        for (i, sector) in buf.chunks(SECTOR as usize).enumerate() {
            assert_eq!(read_u64(sector, 0), STAMP_MAGIC);
            assert_eq!(read_u64(sector, 8), offset + i as u64 * u64::from(SECTOR));
            assert_eq!(read_u64(sector, 16), generation);
            assert_eq!(read_u64(sector, 24), 0xABCD);
        }
        // Payload differs between sectors and generations.
        assert_ne!(buf[100..200], buf[612..712]);
    }

    #[test]
    fn catches_data_of_another_block() {
        let mut v = verifier(UnwrittenPolicy::Unknown);
        let a = 1 << 20;
        let b = a + u64::from(IO);
        let (buf_a, _) = acked_write(&mut v, a);
        acked_write(&mut v, b);
        let err = v.check(&buf_a, b).unwrap_err();
        assert_eq!(err.kind, VerifyErrorKind::Misplaced);
        assert_eq!(err.offset_bytes, b);
        assert_eq!(err.found_offset_bytes, a);
    }

    #[test]
    fn catches_a_lost_write_as_stale() {
        let mut v = verifier(UnwrittenPolicy::Unknown);
        let offset = 1 << 20;
        let (old, _) = acked_write(&mut v, offset);
        acked_write(&mut v, offset);
        let err = v.check(&old, offset).unwrap_err();
        assert_eq!(err.kind, VerifyErrorKind::Stale);
        assert_eq!((err.expected_generation, err.found_generation), (2, 1));
    }

    #[test]
    fn catches_a_flipped_bit_anywhere_in_the_sector() {
        let mut v = verifier(UnwrittenPolicy::Unknown);
        let offset = 1 << 20;
        let (buf, _) = acked_write(&mut v, offset);
        for byte in [3usize, 9, 20, 33, 37, 100, 511, 512 + 300, 4095] {
            let mut bad = buf.clone();
            bad[byte] ^= 0x10;
            let err = v.check(&bad, offset).unwrap_err();
            assert_eq!(err.kind, VerifyErrorKind::Corrupt, "byte {byte}");
            assert_eq!(err.offset_bytes, offset + (byte as u64 / 512) * 512);
        }
        let mut zeroed = buf.clone();
        zeroed[1024..1536].fill(0);
        assert_eq!(v.check(&zeroed, offset).unwrap_err().kind, VerifyErrorKind::Corrupt);
    }

    #[test]
    fn catches_generations_never_issued_or_never_acknowledged() {
        let mut v = verifier(UnwrittenPolicy::Unknown);
        let offset = 1 << 20;
        let (_, _) = acked_write(&mut v, offset);
        let mut future = vec![0u8; IO as usize];
        v.stamp(&mut future, offset, 99);
        assert_eq!(v.check(&future, offset).unwrap_err().kind, VerifyErrorKind::Impossible);

        // Issued but its completion never arrived.
        let generation = v.issue_write();
        let mut unacked = vec![0u8; IO as usize];
        v.stamp(&mut unacked, offset, generation);
        assert_eq!(v.check(&unacked, offset).unwrap_err().kind, VerifyErrorKind::Unacknowledged);
        // On a unit never written, our own stamp is just as unexpected.
        let other = offset + u64::from(IO);
        v.stamp(&mut unacked, other, generation);
        assert_eq!(v.check(&unacked, other).unwrap_err().kind, VerifyErrorKind::Unacknowledged);
    }

    #[test]
    fn catches_another_writers_stamp_on_our_block() {
        let mut v = verifier(UnwrittenPolicy::Unknown);
        let offset = 1 << 20;
        acked_write(&mut v, offset);
        let mut other = verifier(UnwrittenPolicy::Unknown);
        other.config.stamp_tag = 0x1234;
        let mut buf = vec![0u8; IO as usize];
        other.stamp(&mut buf, offset, 1);
        assert_eq!(v.check(&buf, offset).unwrap_err().kind, VerifyErrorKind::ForeignStamp);
    }

    #[test]
    fn unwritten_blocks_are_skipped_or_must_be_zero() {
        let v = verifier(UnwrittenPolicy::Unknown);
        let offset = 1 << 20;
        let garbage = vec![0x5Au8; IO as usize];
        assert_eq!(v.check(&garbage, offset), Ok(()));
        // What an earlier run left is not checked, as fio does: its stamps may
        // even name another offset (a non-verify run writes back what it read).
        let mut old_run = verifier(UnwrittenPolicy::Unknown);
        old_run.config.stamp_tag = 7;
        let mut buf = vec![0u8; IO as usize];
        old_run.stamp(&mut buf, offset, 5);
        assert_eq!(v.check(&buf, offset), Ok(()));
        assert_eq!(v.check(&buf, offset + u64::from(IO)), Ok(()));
        let mut torn = buf.clone();
        torn[100] ^= 1;
        assert_eq!(v.check(&torn, offset), Ok(()));

        let zeroed = verifier(UnwrittenPolicy::Zeroed);
        assert_eq!(zeroed.check(&vec![0u8; IO as usize], offset), Ok(()));
        assert_eq!(zeroed.check(&garbage, offset).unwrap_err().kind, VerifyErrorKind::NotZero);
    }

    #[test]
    fn a_failed_write_makes_the_block_ambiguous_until_rewritten() {
        let mut v = verifier(UnwrittenPolicy::Zeroed);
        let offset = 1 << 20;
        let (old, _) = acked_write(&mut v, offset);
        let generation = v.issue_write();
        let mut new = vec![0u8; IO as usize];
        v.stamp(&mut new, offset, generation);
        v.write_failed(offset);
        assert_eq!(v.expected_generation(offset), None);
        assert_eq!(v.check(&old, offset), Ok(()));
        assert_eq!(v.check(&new, offset), Ok(()));
        let (newest, _) = acked_write(&mut v, offset);
        assert_eq!(v.check(&newest, offset), Ok(()));
        assert_eq!(v.check(&old, offset).unwrap_err().kind, VerifyErrorKind::Stale);
    }

    #[test]
    fn rejects_sector_sizes_that_cannot_hold_a_stamp() {
        let mut config = *verifier(UnwrittenPolicy::Unknown).config();
        config.sector_size_bytes = 32;
        assert_eq!(Verifier::new(config).unwrap_err(), VerifyConfigError::BadSectorSize(32));
        config.sector_size_bytes = 4096;
        config.io_size_bytes = 6144;
        assert!(matches!(Verifier::new(config), Err(VerifyConfigError::IoSizeNotSectorMultiple { .. })));
        config.io_size_bytes = 4096;
        config.region.len_bytes = 100;
        assert_eq!(Verifier::new(config).unwrap_err(), VerifyConfigError::EmptyRegion(100));
    }
}
