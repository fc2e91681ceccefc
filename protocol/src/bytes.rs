//! Little-endian field access on byte slices that cannot panic.

use crate::WireError;

/// Reads a little-endian integer of `N` bytes at `off`, or reports a short buffer.
pub(crate) fn le_array<const N: usize>(buf: &[u8], off: usize) -> Result<[u8; N], WireError> {
    buf.get(off..off + N).and_then(|s| s.try_into().ok()).ok_or(WireError::Truncated { need: off + N, have: buf.len() })
}

pub(crate) fn u16_at(buf: &[u8], off: usize) -> Result<u16, WireError> {
    le_array::<2>(buf, off).map(u16::from_le_bytes)
}

pub(crate) fn u32_at(buf: &[u8], off: usize) -> Result<u32, WireError> {
    le_array::<4>(buf, off).map(u32::from_le_bytes)
}

pub(crate) fn u64_at(buf: &[u8], off: usize) -> Result<u64, WireError> {
    le_array::<8>(buf, off).map(u64::from_le_bytes)
}

/// Writes `src` at `off`, or reports a short buffer.
pub(crate) fn put_at(buf: &mut [u8], off: usize, src: &[u8]) -> Result<(), WireError> {
    let have = buf.len();
    let dst = buf.get_mut(off..off + src.len()).ok_or(WireError::Truncated { need: off + src.len(), have })?;
    dst.copy_from_slice(src);
    Ok(())
}

/// A fixed-size little-endian field of a wire structure: integers, byte
/// arrays and arrays of nested wire structures.
pub(crate) trait WireField: Copy {
    /// Bytes on the wire.
    const SIZE: usize;
    /// The all-zero value.
    const ZERO: Self;
    /// Reads the field at `off`.
    fn read_at(buf: &[u8], off: usize) -> Result<Self, WireError>;
    /// Writes the field at `off`.
    fn write_at(&self, buf: &mut [u8], off: usize) -> Result<(), WireError>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl WireField for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            const ZERO: Self = 0;
            fn read_at(buf: &[u8], off: usize) -> Result<Self, WireError> {
                le_array(buf, off).map(<$t>::from_le_bytes)
            }
            fn write_at(&self, buf: &mut [u8], off: usize) -> Result<(), WireError> {
                put_at(buf, off, &self.to_le_bytes())
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64, u128);

impl<T: WireField, const N: usize> WireField for [T; N] {
    const SIZE: usize = T::SIZE * N;
    const ZERO: Self = [T::ZERO; N];
    fn read_at(buf: &[u8], off: usize) -> Result<Self, WireError> {
        // Check the whole span first so a short buffer fails once, not per element.
        le_check(buf, off, Self::SIZE)?;
        let mut out = [T::ZERO; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = T::read_at(buf, off + i * T::SIZE)?;
        }
        Ok(out)
    }
    fn write_at(&self, buf: &mut [u8], off: usize) -> Result<(), WireError> {
        le_check(buf, off, Self::SIZE)?;
        for (i, v) in self.iter().enumerate() {
            v.write_at(buf, off + i * T::SIZE)?;
        }
        Ok(())
    }
}

fn le_check(buf: &[u8], off: usize, len: usize) -> Result<(), WireError> {
    if buf.len() < off + len {
        return Err(WireError::Truncated { need: off + len, have: buf.len() });
    }
    Ok(())
}

/// Defines a `#[repr(C)]` wire structure whose every field is declared with
/// its spec byte offset. Generates compile-time checks that the Rust layout
/// matches the spec (each `offset_of!`, the total size, and no padding), plus
/// `SIZE`, `zeroed`, `decode`, `parse` (unless `custom_parse` is given, for a
/// type that checks values in its own `parse`) and `encode_into`/`to_bytes`, all without `unsafe`
/// and without depending on the host's byte order.
macro_rules! wire_struct {
    (@parse $name:ident) => {
        impl $name {
            /// Parses the structure from the start of `buf` (extra bytes are ignored).
            pub fn parse(buf: &[u8]) -> Result<Self, $crate::WireError> {
                Self::decode(buf)
            }
        }
    };
    // The type validates field values in its own `parse`.
    (@parse $name:ident custom_parse) => {};
    (
        $(#[$meta:meta])*
        pub struct $name:ident [$size:literal $(, $custom_parse:ident)?] {
            $( $(#[$fmeta:meta])* pub $field:ident : $fty:ty = $off:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $fty, )*
        }

        const _: () = assert!(core::mem::size_of::<$name>() == $size);
        // The sum of field sizes equals the struct size: the compiler added no padding.
        const _: () = assert!(0 $(+ core::mem::size_of::<$fty>())* == $size);
        $( const _: () = assert!(core::mem::offset_of!($name, $field) == $off); )*

        impl $name {
            /// Size on the wire in bytes.
            pub const SIZE: usize = $size;

            /// The all-zero structure.
            pub const fn zeroed() -> Self {
                Self { $( $field: <$fty as $crate::bytes::WireField>::ZERO, )* }
            }

            /// Decodes the structure from the start of `buf` (extra bytes are
            /// ignored); checks only the length, not field values.
            pub fn decode(buf: &[u8]) -> Result<Self, $crate::WireError> {
                if buf.len() < $size {
                    return Err($crate::WireError::Truncated { need: $size, have: buf.len() });
                }
                Ok(Self { $( $field: <$fty as $crate::bytes::WireField>::read_at(buf, $off)?, )* })
            }

            /// Encodes the structure into the start of `buf`.
            pub fn encode_into(&self, buf: &mut [u8]) -> Result<(), $crate::WireError> {
                if buf.len() < $size {
                    return Err($crate::WireError::Truncated { need: $size, have: buf.len() });
                }
                $( $crate::bytes::WireField::write_at(&self.$field, buf, $off)?; )*
                Ok(())
            }

            /// Encodes the structure to its wire bytes.
            pub fn to_bytes(&self) -> [u8; $size] {
                let mut b = [0u8; $size];
                // Cannot fail: `b` is exactly SIZE bytes and every field lies inside it
                // (checked at compile time above).
                let _ = self.encode_into(&mut b);
                b
            }
        }

        $crate::bytes::wire_struct!(@parse $name $($custom_parse)?);

        impl Default for $name {
            fn default() -> Self {
                Self::zeroed()
            }
        }

        impl $crate::bytes::WireField for $name {
            const SIZE: usize = $size;
            const ZERO: Self = Self::zeroed();
            fn read_at(buf: &[u8], off: usize) -> Result<Self, $crate::WireError> {
                Self::decode(buf.get(off..).unwrap_or(&[]))
                    .map_err(|_| $crate::WireError::Truncated { need: off + $size, have: buf.len() })
            }
            fn write_at(&self, buf: &mut [u8], off: usize) -> Result<(), $crate::WireError> {
                let have = buf.len();
                let dst = buf.get_mut(off..).ok_or($crate::WireError::Truncated { need: off + $size, have })?;
                self.encode_into(dst).map_err(|_| $crate::WireError::Truncated { need: off + $size, have })
            }
        }
    };
}
pub(crate) use wire_struct;

/// Copies `s` into `field` and pads the rest with `pad` (space for the
/// identify ASCII fields, NUL for NQNs). Rejects strings that do not fit or,
/// when `ascii_only`, that are not printable ASCII.
pub(crate) fn set_padded(
    field: &mut [u8],
    s: &str,
    pad: u8,
    ascii_only: bool,
    name: &'static str,
) -> Result<(), WireError> {
    if s.len() > field.len() {
        return Err(WireError::BadLength { field: name, value: s.len() as u64, limit: field.len() as u64 });
    }
    if ascii_only && !s.bytes().all(|c| (0x20..0x7F).contains(&c)) {
        return Err(WireError::InvalidString { field: name });
    }
    let (head, tail) = field.split_at_mut(s.len());
    head.copy_from_slice(s.as_bytes());
    tail.fill(pad);
    Ok(())
}

/// Reads a padded string field: the bytes up to the first NUL, with trailing
/// spaces removed. Errors if that is not UTF-8.
pub(crate) fn get_padded<'a>(field: &'a [u8], name: &'static str) -> Result<&'a str, WireError> {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    let s =
        core::str::from_utf8(field.get(..end).unwrap_or(&[])).map_err(|_| WireError::InvalidString { field: name })?;
    Ok(s.trim_end_matches(' '))
}
