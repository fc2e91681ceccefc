//! Identify (NVMe Base 2.0c §5.17): CNS values, the controller and namespace
//! data structures, the active namespace list and the namespace
//! identification descriptor list.

use crate::bytes::{get_padded, le_array, set_padded, wire_struct};
use crate::opcode::admin;
use crate::sgl::SglDescriptor;
use crate::sqe::PSDT_SGL_MPTR_CONTIG;
use crate::{Sqe, WireError};

/// Size of every Identify data structure in bytes.
pub const IDENTIFY_DATA_BYTES: usize = 4096;

/// Controller or Namespace Structure values (CDW10 bits 7:0, NVMe Base 2.0c Figure 273).
pub mod cns {
    /// Identify Namespace data structure for the NSID.
    pub const NAMESPACE: u8 = 0x00;
    /// Identify Controller data structure.
    pub const CONTROLLER: u8 = 0x01;
    /// Active namespace ID list (NSIDs greater than the NSID given).
    pub const ACTIVE_NS_LIST: u8 = 0x02;
    /// Namespace identification descriptor list for the NSID.
    pub const NS_ID_DESCRIPTOR_LIST: u8 = 0x03;
    /// I/O command set specific Identify Controller data structure for the CSI in CDW11.
    pub const IO_COMMAND_SET_CONTROLLER: u8 = 0x06;
}

/// Command set identifiers (CSI, NVMe Base 2.0c §8.3.1; Identify CDW11 bits 31:24,
/// Get Log Page CDW14 bits 31:24).
pub mod csi {
    /// NVM command set.
    pub const NVM: u8 = 0x00;
    /// Key value command set.
    pub const KEY_VALUE: u8 = 0x01;
    /// Zoned namespace command set.
    pub const ZONED: u8 = 0x02;
}

/// An Identify command for `cns` and `nsid`.
///
/// DPTR is set to a Transport SGL Data Block of 4096 bytes so a transport can
/// read the expected length from it; an RDMA host replaces it with its keyed
/// descriptor.
pub fn identify_sqe(cns: u8, nsid: u32) -> Sqe {
    Sqe {
        opc: admin::IDENTIFY,
        flags: PSDT_SGL_MPTR_CONTIG,
        nsid,
        dptr: SglDescriptor::TransportDataBlock { len: IDENTIFY_DATA_BYTES as u32 }.to_bytes(),
        cdw10: u32::from(cns),
        ..Default::default()
    }
}

/// The CNS value of an Identify command (CDW10 bits 7:0).
pub fn identify_cns(sqe: &Sqe) -> u8 {
    sqe.cdw10 as u8
}

/// The command set identifier of an Identify command (CDW11 bits 31:24).
pub fn identify_csi(sqe: &Sqe) -> u8 {
    (sqe.cdw11 >> 24) as u8
}

/// An Identify command for an I/O command set specific structure (`cns`) of command set `csi`.
pub fn identify_csi_sqe(cns: u8, csi: u8, nsid: u32) -> Sqe {
    Sqe { cdw11: u32::from(csi) << 24, ..identify_sqe(cns, nsid) }
}

/// The controller identifier of an Identify command (CDW10 bits 31:16).
pub fn identify_cntid(sqe: &Sqe) -> u16 {
    (sqe.cdw10 >> 16) as u16
}

wire_struct! {
    /// Power state descriptor (NVMe Base 2.0c Figure 276), 32 bytes.
    pub struct PowerStateDescriptor [32] {
        /// Maximum power (centiwatts unless MXPS says otherwise).
        pub mp: u16 = 0,
        /// Reserved.
        pub rsvd2: u8 = 2,
        /// MXPS (bit 0) and NOPS (bit 1).
        pub flags: u8 = 3,
        /// Entry latency in microseconds.
        pub enlat: u32 = 4,
        /// Exit latency in microseconds.
        pub exlat: u32 = 8,
        /// Relative read throughput.
        pub rrt: u8 = 12,
        /// Relative read latency.
        pub rrl: u8 = 13,
        /// Relative write throughput.
        pub rwt: u8 = 14,
        /// Relative write latency.
        pub rwl: u8 = 15,
        /// Idle power.
        pub idlp: u16 = 16,
        /// Idle power scale (bits 7:6).
        pub ips: u8 = 18,
        /// Reserved.
        pub rsvd19: u8 = 19,
        /// Active power.
        pub actp: u16 = 20,
        /// Active power workload (2:0) and scale (7:6).
        pub apw_aps: u8 = 22,
        /// Reserved.
        pub rsvd23: [u8; 9] = 23,
    }
}

wire_struct! {
    /// Identify Controller data structure (CNS 01h, NVMe Base 2.0c Figure 275).
    pub struct IdentifyController [4096] {
        /// PCI vendor ID.
        pub vid: u16 = 0,
        /// PCI subsystem vendor ID.
        pub ssvid: u16 = 2,
        /// Serial number, ASCII, space padded.
        pub sn: [u8; 20] = 4,
        /// Model number, ASCII, space padded.
        pub mn: [u8; 40] = 24,
        /// Firmware revision, ASCII, space padded.
        pub fr: [u8; 8] = 64,
        /// Recommended arbitration burst.
        pub rab: u8 = 72,
        /// IEEE OUI identifier.
        pub ieee: [u8; 3] = 73,
        /// Controller multi-path IO and namespace sharing capabilities.
        pub cmic: u8 = 76,
        /// Maximum data transfer size, a power of two in units of CAP.MPSMIN (0 = no limit).
        pub mdts: u8 = 77,
        /// Controller ID.
        pub cntlid: u16 = 78,
        /// Version (same encoding as the VS property).
        pub ver: u32 = 80,
        /// RTD3 resume latency in microseconds.
        pub rtd3r: u32 = 84,
        /// RTD3 entry latency in microseconds.
        pub rtd3e: u32 = 88,
        /// Optional asynchronous events supported (bit 8 NS attribute, bit 11 ANA change, bit 31 discovery log change).
        pub oaes: u32 = 92,
        /// Controller attributes.
        pub ctratt: u32 = 96,
        /// Read recovery levels supported.
        pub rrls: u16 = 100,
        /// Reserved.
        pub rsvd102: [u8; 9] = 102,
        /// Controller type (1 IO, 2 discovery, 3 administrative).
        pub cntrltype: u8 = 111,
        /// FRU globally unique identifier.
        pub fguid: [u8; 16] = 112,
        /// Command retry delay times 1..3 in 100 ms units.
        pub crdt: [u16; 3] = 128,
        /// Reserved.
        pub rsvd134: [u8; 119] = 134,
        /// NVM subsystem report.
        pub nvmsr: u8 = 253,
        /// VPD write cycle information.
        pub vwci: u8 = 254,
        /// Management endpoint capabilities.
        pub mec: u8 = 255,
        /// Optional admin command support.
        pub oacs: u16 = 256,
        /// Abort command limit (0's based).
        pub acl: u8 = 258,
        /// Asynchronous event request limit (0's based).
        pub aerl: u8 = 259,
        /// Firmware updates.
        pub frmw: u8 = 260,
        /// Log page attributes.
        pub lpa: u8 = 261,
        /// Error log page entries (0's based).
        pub elpe: u8 = 262,
        /// Number of power states supported (0's based).
        pub npss: u8 = 263,
        /// Admin vendor specific command configuration.
        pub avscc: u8 = 264,
        /// Autonomous power state transition attributes.
        pub apsta: u8 = 265,
        /// Warning composite temperature threshold (kelvin).
        pub wctemp: u16 = 266,
        /// Critical composite temperature threshold (kelvin).
        pub cctemp: u16 = 268,
        /// Maximum time for firmware activation (100 ms units).
        pub mtfa: u16 = 270,
        /// Host memory buffer preferred size.
        pub hmpre: u32 = 272,
        /// Host memory buffer minimum size.
        pub hmmin: u32 = 276,
        /// Total NVM capacity in bytes.
        pub tnvmcap: [u8; 16] = 280,
        /// Unallocated NVM capacity in bytes.
        pub unvmcap: [u8; 16] = 296,
        /// Replay protected memory block support.
        pub rpmbs: u32 = 312,
        /// Extended device self-test time (minutes).
        pub edstt: u16 = 316,
        /// Device self-test options.
        pub dsto: u8 = 318,
        /// Firmware update granularity.
        pub fwug: u8 = 319,
        /// Keep alive support: granularity in 100 ms units (0 = not supported).
        pub kas: u16 = 320,
        /// Host controlled thermal management attributes.
        pub hctma: u16 = 322,
        /// Minimum thermal management temperature.
        pub mntmt: u16 = 324,
        /// Maximum thermal management temperature.
        pub mxtmt: u16 = 326,
        /// Sanitize capabilities.
        pub sanicap: u32 = 328,
        /// Host memory buffer minimum descriptor entry size.
        pub hmminds: u32 = 332,
        /// Host memory maximum descriptors entries.
        pub hmmaxd: u16 = 336,
        /// NVM set identifier maximum.
        pub nsetidmax: u16 = 338,
        /// Endurance group identifier maximum.
        pub endgidmax: u16 = 340,
        /// ANA transition time in seconds.
        pub anatt: u8 = 342,
        /// ANA capabilities (bits 0..4: states reported, bit 6 ANAGRPID not changed, bit 7 non-zero ANAGRPID).
        pub anacap: u8 = 343,
        /// ANA group identifier maximum.
        pub anagrpmax: u32 = 344,
        /// Number of ANA group identifiers.
        pub nanagrpid: u32 = 348,
        /// Persistent event log size (64 KiB units).
        pub pels: u32 = 352,
        /// Domain identifier.
        pub domainid: u16 = 356,
        /// Reserved.
        pub rsvd358: [u8; 10] = 358,
        /// Max endurance group capacity.
        pub megcap: [u8; 16] = 368,
        /// Reserved.
        pub rsvd384: [u8; 128] = 384,
        /// Submission queue entry size: required (3:0) and maximum (7:4), log2 bytes.
        pub sqes: u8 = 512,
        /// Completion queue entry size: required (3:0) and maximum (7:4), log2 bytes.
        pub cqes: u8 = 513,
        /// Maximum outstanding commands.
        pub maxcmd: u16 = 514,
        /// Number of namespaces (largest valid NSID).
        pub nn: u32 = 516,
        /// Optional NVM command support.
        pub oncs: u16 = 520,
        /// Fused operation support.
        pub fuses: u16 = 522,
        /// Format NVM attributes.
        pub fna: u8 = 524,
        /// Volatile write cache (bit 0 present).
        pub vwc: u8 = 525,
        /// Atomic write unit normal (0's based, blocks).
        pub awun: u16 = 526,
        /// Atomic write unit power fail (0's based, blocks).
        pub awupf: u16 = 528,
        /// IO command set vendor specific command configuration.
        pub icsvscc: u8 = 530,
        /// Namespace write protection capabilities.
        pub nwpc: u8 = 531,
        /// Atomic compare & write unit (0's based).
        pub acwu: u16 = 532,
        /// Optional copy formats supported.
        pub ocfs: u16 = 534,
        /// SGL support.
        pub sgls: u32 = 536,
        /// Maximum number of allowed namespaces.
        pub mnan: u32 = 540,
        /// Maximum domain namespace attachments.
        pub maxdna: [u8; 16] = 544,
        /// Maximum IO controller namespace attachments.
        pub maxcna: u32 = 560,
        /// Reserved.
        pub rsvd564: [u8; 204] = 564,
        /// NVM subsystem NQN, UTF-8, NUL padded.
        pub subnqn: [u8; 256] = 768,
        /// Reserved.
        pub rsvd1024: [u8; 768] = 1024,
        /// IO queue command capsule supported size, in 16-byte units (NVMe-oF attributes).
        pub ioccsz: u32 = 1792,
        /// IO queue response capsule supported size, in 16-byte units.
        pub iorcsz: u32 = 1796,
        /// In-capsule data offset, in 16-byte units.
        pub icdoff: u16 = 1800,
        /// Fabrics controller attributes (bit 0: static controller model).
        pub fcatt: u8 = 1802,
        /// Maximum SGL data block descriptors (0 = no limit).
        pub msdbd: u8 = 1803,
        /// Optional fabric commands support (bit 0: Disconnect).
        pub ofcs: u16 = 1804,
        /// Reserved.
        pub rsvd1806: [u8; 242] = 1806,
        /// Power state descriptors 0..31.
        pub psd: [PowerStateDescriptor; 32] = 2048,
        /// Vendor specific.
        pub vs: [u8; 1024] = 3072,
    }
}

/// Controller types (CNTRLTYPE).
pub mod cntrltype {
    /// IO controller.
    pub const IO: u8 = 1;
    /// Discovery controller.
    pub const DISCOVERY: u8 = 2;
    /// Administrative controller.
    pub const ADMIN: u8 = 3;
}

impl IdentifyController {
    /// Serial number with padding removed.
    pub fn sn_str(&self) -> Result<&str, WireError> {
        get_padded(&self.sn, "sn")
    }
    /// Sets the serial number (printable ASCII, up to 20 bytes, space padded).
    pub fn set_sn(&mut self, s: &str) -> Result<(), WireError> {
        set_padded(&mut self.sn, s, b' ', true, "sn")
    }
    /// Model number with padding removed.
    pub fn mn_str(&self) -> Result<&str, WireError> {
        get_padded(&self.mn, "mn")
    }
    /// Sets the model number (printable ASCII, up to 40 bytes, space padded).
    pub fn set_mn(&mut self, s: &str) -> Result<(), WireError> {
        set_padded(&mut self.mn, s, b' ', true, "mn")
    }
    /// Firmware revision with padding removed.
    pub fn fr_str(&self) -> Result<&str, WireError> {
        get_padded(&self.fr, "fr")
    }
    /// Sets the firmware revision (printable ASCII, up to 8 bytes, space padded).
    pub fn set_fr(&mut self, s: &str) -> Result<(), WireError> {
        set_padded(&mut self.fr, s, b' ', true, "fr")
    }
    /// Subsystem NQN up to its first NUL.
    pub fn subnqn_str(&self) -> Result<&str, WireError> {
        get_padded(&self.subnqn, "subnqn")
    }
    /// Sets the subsystem NQN (UTF-8, up to 255 bytes so one NUL remains, NUL padded).
    pub fn set_subnqn(&mut self, s: &str) -> Result<(), WireError> {
        let field = self.subnqn.get_mut(..255).unwrap_or(&mut []);
        set_padded(field, s, 0, false, "subnqn")?;
        self.subnqn[255] = 0;
        Ok(())
    }
    /// Maximum data transfer size in bytes given the controller's minimum page
    /// size, or `None` for no limit.
    pub fn max_transfer_bytes(&self, mpsmin_bytes: u32) -> Option<u64> {
        if self.mdts == 0 {
            return None;
        }
        Some(u64::from(mpsmin_bytes).checked_shl(u32::from(self.mdts)).unwrap_or(u64::MAX))
    }
}

wire_struct! {
    /// I/O Command Set specific Identify Controller data structure for the
    /// NVM command set (CNS 06h, CSI 00h; NVM Command Set Specification 1.0c
    /// §4.1.5.3). The size limits are in units of CAP.MPSMIN as a power of
    /// two (like MDTS) or in logical blocks; 0 reports no limit.
    pub struct IdentifyControllerNvm [4096] {
        /// Verify size limit (2^n MPSMIN units; 0 = no limit reported).
        pub vsl: u8 = 0,
        /// Write Zeroes size limit (2^n MPSMIN units; 0 = no limit reported).
        pub wzsl: u8 = 1,
        /// Write Uncorrectable size limit (2^n MPSMIN units; 0 = no limit reported).
        pub wusl: u8 = 2,
        /// Dataset Management ranges limit: most ranges in one command (0 = no limit reported).
        pub dmrl: u8 = 3,
        /// Dataset Management range size limit: most logical blocks in one range (0 = no limit reported).
        pub dmrsl: u32 = 4,
        /// Dataset Management size limit: most logical blocks in one command (0 = no limit reported).
        pub dmsl: u64 = 8,
        /// Reserved.
        pub rsvd16: [u8; 4080] = 16,
    }
}

wire_struct! {
    /// LBA format (NVM Command Set 1.0c Figure 98), 4 bytes.
    pub struct LbaFormat [4] {
        /// Metadata size in bytes per LBA.
        pub ms: u16 = 0,
        /// LBA data size, log2 bytes (9 = 512, 12 = 4096).
        pub lbads: u8 = 2,
        /// Relative performance (bits 1:0).
        pub rp: u8 = 3,
    }
}

impl LbaFormat {
    /// Data size of one block in bytes, or `None` if LBADS is out of range (< 9 or > 31).
    pub fn block_size_bytes(&self) -> Option<u32> {
        (9..32).contains(&self.lbads).then(|| 1u32 << self.lbads)
    }
}

wire_struct! {
    /// Identify Namespace data structure for the NVM command set (CNS 00h,
    /// NVM Command Set 1.0c Figure 97).
    pub struct IdentifyNamespace [4096] {
        /// Namespace size in logical blocks.
        pub nsze: u64 = 0,
        /// Namespace capacity in logical blocks.
        pub ncap: u64 = 8,
        /// Namespace utilization in logical blocks.
        pub nuse: u64 = 16,
        /// Namespace features.
        pub nsfeat: u8 = 24,
        /// Number of LBA formats (0's based).
        pub nlbaf: u8 = 25,
        /// Formatted LBA size: format index bits 3:0 (and 6:5 for the upper bits).
        pub flbas: u8 = 26,
        /// Metadata capabilities.
        pub mc: u8 = 27,
        /// End-to-end data protection capabilities.
        pub dpc: u8 = 28,
        /// End-to-end data protection type settings.
        pub dps: u8 = 29,
        /// Namespace multi-path IO and sharing capabilities (bit 0: may be shared).
        pub nmic: u8 = 30,
        /// Reservation capabilities.
        pub rescap: u8 = 31,
        /// Format progress indicator.
        pub fpi: u8 = 32,
        /// Deallocate logical block features.
        pub dlfeat: u8 = 33,
        /// Namespace atomic write unit normal.
        pub nawun: u16 = 34,
        /// Namespace atomic write unit power fail.
        pub nawupf: u16 = 36,
        /// Namespace atomic compare & write unit.
        pub nacwu: u16 = 38,
        /// Namespace atomic boundary size normal.
        pub nabsn: u16 = 40,
        /// Namespace atomic boundary offset.
        pub nabo: u16 = 42,
        /// Namespace atomic boundary size power fail.
        pub nabspf: u16 = 44,
        /// Namespace optimal IO boundary.
        pub noiob: u16 = 46,
        /// NVM capacity in bytes.
        pub nvmcap: [u8; 16] = 48,
        /// Namespace preferred write granularity.
        pub npwg: u16 = 64,
        /// Namespace preferred write alignment.
        pub npwa: u16 = 66,
        /// Namespace preferred deallocate granularity.
        pub npdg: u16 = 68,
        /// Namespace preferred deallocate alignment.
        pub npda: u16 = 70,
        /// Namespace optimal write size.
        pub nows: u16 = 72,
        /// Maximum single source range length.
        pub mssrl: u16 = 74,
        /// Maximum copy length.
        pub mcl: u32 = 76,
        /// Maximum source range count.
        pub msrc: u8 = 80,
        /// Reserved.
        pub rsvd81: [u8; 11] = 81,
        /// ANA group identifier.
        pub anagrpid: u32 = 92,
        /// Reserved.
        pub rsvd96: [u8; 3] = 96,
        /// Namespace attributes (bit 0: write protected).
        pub nsattr: u8 = 99,
        /// NVM set identifier.
        pub nvmsetid: u16 = 100,
        /// Endurance group identifier.
        pub endgid: u16 = 102,
        /// Namespace globally unique identifier.
        pub nguid: [u8; 16] = 104,
        /// IEEE extended unique identifier.
        pub eui64: [u8; 8] = 120,
        /// LBA formats 0..63.
        pub lbaf: [LbaFormat; 64] = 128,
        /// Reserved.
        pub rsvd384: [u8; 3456] = 384,
        /// Vendor specific.
        pub vs: [u8; 256] = 3840,
    }
}

impl IdentifyNamespace {
    /// Index of the LBA format in use (FLBAS bits 3:0, with bits 6:5 as the
    /// upper bits when more than 16 formats exist).
    pub fn lba_format_index(&self) -> usize {
        let low = usize::from(self.flbas & 0x0F);
        if self.nlbaf >= 16 {
            low | (usize::from((self.flbas >> 5) & 0x3) << 4)
        } else {
            low
        }
    }

    /// The LBA format in use, or an error if FLBAS points past NLBAF.
    pub fn current_lba_format(&self) -> Result<LbaFormat, WireError> {
        let i = self.lba_format_index();
        if i > usize::from(self.nlbaf) {
            return Err(WireError::InvalidField { field: "flbas", value: u64::from(self.flbas) });
        }
        self.lbaf.get(i).copied().ok_or(WireError::InvalidField { field: "flbas", value: u64::from(self.flbas) })
    }

    /// Block size in bytes of the LBA format in use.
    pub fn block_size_bytes(&self) -> Result<u32, WireError> {
        let f = self.current_lba_format()?;
        f.block_size_bytes().ok_or(WireError::InvalidField { field: "lbads", value: u64::from(f.lbads) })
    }
}

/// Most NSIDs in one active namespace list page.
pub const ACTIVE_NS_LIST_MAX: usize = IDENTIFY_DATA_BYTES / 4;

/// Encodes an active namespace ID list (CNS 02h): NSIDs in increasing order,
/// zero-filled after the last one.
pub fn encode_active_ns_list(nsids: &[u32]) -> Result<[u8; IDENTIFY_DATA_BYTES], WireError> {
    if nsids.len() > ACTIVE_NS_LIST_MAX {
        return Err(WireError::BadLength {
            field: "active ns list",
            value: nsids.len() as u64,
            limit: ACTIVE_NS_LIST_MAX as u64,
        });
    }
    let mut out = [0u8; IDENTIFY_DATA_BYTES];
    let mut prev = 0u32;
    for (chunk, &id) in out.chunks_exact_mut(4).zip(nsids) {
        if id <= prev || id == u32::MAX {
            return Err(WireError::InvalidField { field: "nsid", value: u64::from(id) });
        }
        prev = id;
        chunk.copy_from_slice(&id.to_le_bytes());
    }
    Ok(out)
}

/// Parses an active namespace ID list (CNS 02h): the NSIDs before the first
/// zero entry. Rejects a short buffer, the broadcast NSID and a list that is
/// not increasing.
pub fn parse_active_ns_list(buf: &[u8]) -> Result<Vec<u32>, WireError> {
    let page: [u8; IDENTIFY_DATA_BYTES] = le_array(buf, 0)?;
    let mut out = Vec::new();
    let mut prev = 0u32;
    for chunk in page.chunks_exact(4) {
        let id = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if id == 0 {
            break;
        }
        if id <= prev || id == u32::MAX {
            return Err(WireError::InvalidField { field: "nsid", value: u64::from(id) });
        }
        prev = id;
        out.push(id);
    }
    Ok(out)
}

/// Namespace identifier types (NIDT, NVMe Base 2.0c Figure 279).
pub mod nidt {
    /// IEEE extended unique identifier, 8 bytes.
    pub const EUI64: u8 = 1;
    /// Namespace globally unique identifier, 16 bytes.
    pub const NGUID: u8 = 2;
    /// Namespace UUID, 16 bytes.
    pub const UUID: u8 = 3;
    /// Command set identifier, 1 byte.
    pub const CSI: u8 = 4;
}

/// One namespace identification descriptor (CNS 03h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsIdDescriptor {
    /// IEEE EUI-64.
    Eui64([u8; 8]),
    /// NGUID.
    Nguid([u8; 16]),
    /// UUID.
    Uuid([u8; 16]),
    /// Command set identifier (0 = NVM).
    Csi(u8),
}

impl NsIdDescriptor {
    fn nidt_and_id(&self) -> (u8, &[u8]) {
        match self {
            NsIdDescriptor::Eui64(v) => (nidt::EUI64, v),
            NsIdDescriptor::Nguid(v) => (nidt::NGUID, v),
            NsIdDescriptor::Uuid(v) => (nidt::UUID, v),
            NsIdDescriptor::Csi(v) => (nidt::CSI, core::slice::from_ref(v)),
        }
    }
}

/// Encodes a namespace identification descriptor list: each descriptor is a
/// 4-byte header (NIDT, NIDL, 2 reserved) then NIDL bytes; the rest is zero,
/// which ends the list.
pub fn encode_ns_id_descriptors(descs: &[NsIdDescriptor]) -> Result<[u8; IDENTIFY_DATA_BYTES], WireError> {
    let mut out = [0u8; IDENTIFY_DATA_BYTES];
    let mut off = 0usize;
    for d in descs {
        let (t, id) = d.nidt_and_id();
        let need = off + 4 + id.len();
        // Keep at least one zero byte after the last descriptor so the list is terminated.
        if need >= IDENTIFY_DATA_BYTES {
            return Err(WireError::BadLength {
                field: "ns id descriptor list",
                value: need as u64,
                limit: IDENTIFY_DATA_BYTES as u64 - 1,
            });
        }
        crate::bytes::put_at(&mut out, off, &[t, id.len() as u8, 0, 0])?;
        crate::bytes::put_at(&mut out, off + 4, id)?;
        off = need;
    }
    Ok(out)
}

/// Parses a namespace identification descriptor list up to the first NIDT 0.
/// Descriptors of types this crate does not know are skipped by their NIDL;
/// a known type with the wrong NIDL, or a descriptor running past the buffer,
/// is an error.
pub fn parse_ns_id_descriptors(buf: &[u8]) -> Result<Vec<NsIdDescriptor>, WireError> {
    let page: [u8; IDENTIFY_DATA_BYTES] = le_array(buf, 0)?;
    let mut out = Vec::new();
    let mut off = 0usize;
    while let Some(&[t, len, _, _]) = page.get(off..off + 4) {
        if t == 0 {
            break;
        }
        let len = usize::from(len);
        let id = page.get(off + 4..off + 4 + len).ok_or(WireError::BadLength {
            field: "nidl",
            value: len as u64,
            limit: (IDENTIFY_DATA_BYTES - off - 4) as u64,
        })?;
        let bad_len = |want: usize| WireError::BadLength { field: "nidl", value: len as u64, limit: want as u64 };
        match t {
            nidt::EUI64 => out.push(NsIdDescriptor::Eui64(id.try_into().map_err(|_| bad_len(8))?)),
            nidt::NGUID => out.push(NsIdDescriptor::Nguid(id.try_into().map_err(|_| bad_len(16))?)),
            nidt::UUID => out.push(NsIdDescriptor::Uuid(id.try_into().map_err(|_| bad_len(16))?)),
            nidt::CSI => match id {
                [csi] => out.push(NsIdDescriptor::Csi(*csi)),
                _ => return Err(bad_len(1)),
            },
            _ => {}
        }
        off += 4 + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn identify_controller_fields_sit_at_spec_offsets() {
        assert_eq!(offset_of!(IdentifyController, cntlid), 78);
        assert_eq!(offset_of!(IdentifyController, cntrltype), 111);
        assert_eq!(offset_of!(IdentifyController, kas), 320);
        assert_eq!(offset_of!(IdentifyController, anacap), 343);
        assert_eq!(offset_of!(IdentifyController, sqes), 512);
        assert_eq!(offset_of!(IdentifyController, nn), 516);
        assert_eq!(offset_of!(IdentifyController, sgls), 536);
        assert_eq!(offset_of!(IdentifyController, subnqn), 768);
        assert_eq!(offset_of!(IdentifyController, ioccsz), 1792);
        assert_eq!(offset_of!(IdentifyController, msdbd), 1803);
        assert_eq!(offset_of!(IdentifyController, psd), 2048);
        assert_eq!(offset_of!(IdentifyController, vs), 3072);

        let mut c = IdentifyController::zeroed();
        c.cntlid = 0x1234;
        c.nn = 0xAABBCCDD;
        c.ioccsz = 0x0104;
        c.set_sn("SPDK_BDEV_0").unwrap();
        c.set_subnqn("nqn.2021-06.io.spdk:ctc_rbd0").unwrap();
        let b = c.to_bytes();
        assert_eq!(&b[78..80], &0x1234u16.to_le_bytes());
        assert_eq!(&b[516..520], &0xAABBCCDDu32.to_le_bytes());
        assert_eq!(&b[1792..1796], &0x0104u32.to_le_bytes());
        assert_eq!(&b[4..24], b"SPDK_BDEV_0         ");
        assert_eq!(&b[768..796], b"nqn.2021-06.io.spdk:ctc_rbd0");
        assert_eq!(b[796], 0);
    }

    #[test]
    fn identify_controller_round_trips_every_byte() {
        let mut raw = [0u8; 4096];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        let c = IdentifyController::parse(&raw).unwrap();
        assert_eq!(c.to_bytes(), raw);
        assert_eq!(c.vid, u16::from_le_bytes([raw[0], raw[1]]));
        assert_eq!(c.psd[1].enlat, u32::from_le_bytes([raw[2084], raw[2085], raw[2086], raw[2087]]));
    }

    #[test]
    fn identify_strings_trim_padding_and_reject_bad_input() {
        let mut c = IdentifyController::zeroed();
        c.set_mn("corepath").unwrap();
        c.set_fr("0.1").unwrap();
        assert_eq!(c.mn_str().unwrap(), "corepath");
        assert_eq!(c.fr_str().unwrap(), "0.1");
        assert!(c.set_fr("123456789").is_err());
        assert!(c.set_sn("sérial").is_err());
        assert!(c.set_subnqn(&"n".repeat(256)).is_err());
        c.subnqn[0] = 0xFF;
        assert!(matches!(c.subnqn_str(), Err(WireError::InvalidString { field: "subnqn" })));
    }

    #[test]
    fn identify_parsers_reject_short_buffers() {
        assert!(matches!(IdentifyController::parse(&[0u8; 4095]), Err(WireError::Truncated { need: 4096, .. })));
        assert!(IdentifyNamespace::parse(&[0u8; 100]).is_err());
        assert!(parse_active_ns_list(&[0u8; 4092]).is_err());
        assert!(parse_ns_id_descriptors(&[]).is_err());
    }

    #[test]
    fn identify_namespace_fields_sit_at_spec_offsets() {
        assert_eq!(offset_of!(IdentifyNamespace, anagrpid), 92);
        assert_eq!(offset_of!(IdentifyNamespace, nsattr), 99);
        assert_eq!(offset_of!(IdentifyNamespace, nguid), 104);
        assert_eq!(offset_of!(IdentifyNamespace, eui64), 120);
        assert_eq!(offset_of!(IdentifyNamespace, lbaf), 128);
        let mut ns = IdentifyNamespace::zeroed();
        ns.nsze = 2_621_440;
        ns.nlbaf = 1;
        ns.flbas = 1;
        ns.lbaf[1] = LbaFormat { ms: 8, lbads: 12, rp: 2 };
        ns.anagrpid = 5;
        let b = ns.to_bytes();
        assert_eq!(&b[0..8], &2_621_440u64.to_le_bytes());
        assert_eq!(&b[132..136], &[8, 0, 12, 2]);
        assert_eq!(&b[92..96], &5u32.to_le_bytes());
        let back = IdentifyNamespace::parse(&b).unwrap();
        assert_eq!(back, ns);
        assert_eq!(back.block_size_bytes().unwrap(), 4096);
    }

    #[test]
    fn lba_format_index_past_nlbaf_is_an_error() {
        let mut ns = IdentifyNamespace::zeroed();
        ns.flbas = 3;
        ns.nlbaf = 0;
        assert!(ns.current_lba_format().is_err());
        ns.nlbaf = 3;
        ns.lbaf[3].lbads = 40;
        assert!(matches!(ns.block_size_bytes(), Err(WireError::InvalidField { field: "lbads", .. })));
    }

    #[test]
    fn active_ns_list_round_trips_and_stops_at_zero() {
        let b = encode_active_ns_list(&[1, 2, 7]).unwrap();
        assert_eq!(&b[8..12], &7u32.to_le_bytes());
        assert_eq!(parse_active_ns_list(&b).unwrap(), vec![1, 2, 7]);
        assert!(encode_active_ns_list(&[2, 1]).is_err());
        assert!(encode_active_ns_list(&vec![1; 1025]).is_err());
        let mut bad = b;
        bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_active_ns_list(&bad).is_err());
    }

    #[test]
    fn ns_id_descriptors_round_trip_and_skip_unknown_types() {
        let descs = [NsIdDescriptor::Nguid([9; 16]), NsIdDescriptor::Eui64([1; 8]), NsIdDescriptor::Csi(0)];
        let mut b = encode_ns_id_descriptors(&descs).unwrap();
        assert_eq!(&b[0..4], &[2, 16, 0, 0]);
        assert_eq!(&b[20..24], &[1, 8, 0, 0]);
        assert_eq!(parse_ns_id_descriptors(&b).unwrap(), descs.to_vec());
        // An unknown type 0x20 with 2 bytes placed after the CSI descriptor is skipped.
        b[37..43].copy_from_slice(&[0x20, 2, 0, 0, 0xAA, 0xBB]);
        b[43..63].copy_from_slice(&[3, 16, 0, 0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5]);
        let parsed = parse_ns_id_descriptors(&b).unwrap();
        assert_eq!(parsed.last(), Some(&NsIdDescriptor::Uuid([5; 16])));
    }

    #[test]
    fn ns_id_descriptor_with_wrong_length_is_rejected() {
        let mut b = [0u8; 4096];
        b[0..4].copy_from_slice(&[nidt::NGUID, 8, 0, 0]);
        assert!(matches!(parse_ns_id_descriptors(&b), Err(WireError::BadLength { field: "nidl", .. })));
        // A chain of unknown-type descriptors whose last NIDL runs off the end of the page.
        let mut b = [0u8; 4096];
        for k in 0..16 {
            b[k * 259..k * 259 + 4].copy_from_slice(&[0x30, 255, 0, 0]);
        }
        assert!(parse_ns_id_descriptors(&b).is_err());
    }

    #[test]
    fn identify_controller_nvm_fields_sit_at_spec_offsets() {
        assert_eq!(offset_of!(IdentifyControllerNvm, wzsl), 1);
        assert_eq!(offset_of!(IdentifyControllerNvm, dmrl), 3);
        assert_eq!(offset_of!(IdentifyControllerNvm, dmrsl), 4);
        assert_eq!(offset_of!(IdentifyControllerNvm, dmsl), 8);
        let c = IdentifyControllerNvm {
            vsl: 1,
            wzsl: 2,
            wusl: 3,
            dmrl: 4,
            dmrsl: 0x0506_0708,
            dmsl: 0x1122,
            ..IdentifyControllerNvm::zeroed()
        };
        let b = c.to_bytes();
        assert_eq!(&b[..16], &[1, 2, 3, 4, 8, 7, 6, 5, 0x22, 0x11, 0, 0, 0, 0, 0, 0]);
        assert!(b[16..].iter().all(|&x| x == 0));
        assert_eq!(IdentifyControllerNvm::parse(&b).unwrap(), c);
        let s = identify_csi_sqe(cns::IO_COMMAND_SET_CONTROLLER, csi::ZONED, 0);
        assert_eq!((identify_cns(&s), identify_csi(&s)), (6, 2));
        assert_eq!(s.to_bytes()[47], 2);
    }

    #[test]
    fn identify_sqe_puts_cns_in_cdw10() {
        let s = identify_sqe(cns::NAMESPACE, 1);
        let b = s.to_bytes();
        assert_eq!(b[0], 0x06);
        assert_eq!(b[40], 0x00);
        assert_eq!(&b[4..8], &1u32.to_le_bytes());
        assert_eq!(identify_cns(&identify_sqe(cns::ACTIVE_NS_LIST, 0)), 2);
        assert_eq!(SglDescriptor::parse(&s.dptr).unwrap().len(), 4096);
    }
}
