//! The one error type of this crate.

/// Why a byte sequence is not a valid wire structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ended before the structure did.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes the structure needs.
        need: usize,
        /// Bytes that were there.
        have: usize,
    },
    /// A field holds a value the spec does not allow here.
    #[error("invalid {field}: {value:#x}")]
    InvalidField {
        /// The spec's name of the field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A length field disagrees with another length or with a limit.
    #[error("bad length in {field}: {value} (limit {limit})")]
    BadLength {
        /// The spec's name of the field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The bound it broke.
        limit: u64,
    },
    /// A CRC32C digest did not match the bytes it covers.
    #[error("{which} digest mismatch: got {got:#010x}, computed {computed:#010x}")]
    DigestMismatch {
        /// "header" or "data".
        which: &'static str,
        /// Digest carried by the PDU.
        got: u32,
        /// Digest computed over the received bytes.
        computed: u32,
    },
    /// A string field is not what the spec requires (for example an NQN that is not UTF-8).
    #[error("invalid string in {field}")]
    InvalidString {
        /// The spec's name of the field.
        field: &'static str,
    },
}
