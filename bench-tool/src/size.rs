//! fio-style sizes: parsing `4k`, `128K`, `1m`, `4KiB`, `512` and printing
//! numbers the way fio's `num2str` does (`208k`, `812MiB`, `51.2k`).

/// Why a size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Nothing but whitespace.
    #[error("empty size")]
    Empty,
    /// No leading decimal number.
    #[error("'{0}' does not start with a number")]
    NoNumber(String),
    /// A suffix that is not a size unit.
    #[error("'{0}' has an unknown unit suffix")]
    BadSuffix(String),
    /// The value does not fit in 64 bits.
    #[error("'{0}' is too large")]
    Overflow(String),
}

/// Parses a size as fio does with its default `kb_base=1024`: a decimal
/// number, optionally followed by `k`, `m`, `g`, `t` or `p` (either case),
/// optionally followed by `b`, `ib` or `iB`. All prefixes are powers of 1024,
/// so `4k`, `4K`, `4KB` and `4KiB` all mean 4096; a bare `b` suffix means bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SizeError::Empty);
    }
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(SizeError::NoNumber(text.to_string()));
    }
    let number: u64 = digits.parse().map_err(|_| SizeError::Overflow(text.to_string()))?;
    let suffix = suffix.to_ascii_lowercase();
    let (prefix, rest) = match suffix.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => (Some(c), &suffix[1..]),
        _ => (None, suffix.as_str()),
    };
    let shift = match prefix {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some(_) => 50,
    };
    let unit_ok = matches!((prefix, rest), (_, "" | "b") | (Some(_), "ib"));
    if !unit_ok {
        return Err(SizeError::BadSuffix(text.to_string()));
    }
    number.checked_mul(1u64 << shift).ok_or_else(|| SizeError::Overflow(text.to_string()))
}

/// Prints a size back in the shortest exact fio form (`4k`, `1m`, `1536`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u32, &str); 5] = [(50, "p"), (40, "t"), (30, "g"), (20, "m"), (10, "k")];
    for (shift, unit) in UNITS {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{}", bytes >> shift, unit);
        }
    }
    bytes.to_string()
}

/// Which prefixes [`num2str`] scales by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// 1000 and `k`, `M`, `G`: fio's SI numbers and the `(851MB/s)` forms.
    Decimal,
    /// 1024 and `Ki`, `Mi`, `Gi`: fio's `MiB/s` forms.
    Binary,
}

fn decimal_digits(mut value: u64) -> u32 {
    let mut digits = 1;
    while value >= 10 {
        value /= 10;
        digits += 1;
    }
    digits
}

/// Formats `value` with at most four significant characters before the unit,
/// as fio's `num2str(value, 4, ...)` does: numbers up to 9999 print as they
/// are, larger ones are scaled and keep as many decimals as fit
/// (`51234` → `51.2k`, `208123` → `208k`). `unit` is appended after the prefix.
pub fn num2str(value: u64, base: Base, unit: &str) -> String {
    const MAX_DIGITS: u32 = 4;
    let (step, prefixes): (u64, [&str; 7]) = match base {
        Base::Decimal => (1000, ["", "k", "M", "G", "T", "P", "E"]),
        Base::Binary => (1024, ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]),
    };
    let mut scaled = value;
    let mut remainder = None;
    let mut index = 0;
    while decimal_digits(scaled) > MAX_DIGITS && index + 1 < prefixes.len() {
        remainder = Some(scaled % step);
        scaled /= step;
        index += 1;
    }
    let prefix = prefixes[index];
    match remainder {
        None => format!("{scaled}{prefix}{unit}"),
        Some(rest) => {
            let free_digits = MAX_DIGITS.saturating_sub(decimal_digits(scaled));
            if free_digits <= 1 {
                let rounded = if rest * 2 >= step { scaled + 1 } else { scaled };
                format!("{rounded}{prefix}{unit}")
            } else {
                let decimals = (free_digits - 1) as usize;
                let exact = scaled as f64 + rest as f64 / step as f64;
                format!("{exact:.decimals$}{prefix}{unit}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fio_suffixes_as_powers_of_1024() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4kb"), Ok(4096));
        assert_eq!(parse_size("128k"), Ok(128 << 10));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("10g"), Ok(10 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size(" 64 "), Ok(64));
        assert_eq!(parse_size("100b"), Ok(100));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn rejects_garbage_and_overflow() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("   "), Err(SizeError::Empty));
        assert!(matches!(parse_size("k"), Err(SizeError::NoNumber(_))));
        assert!(matches!(parse_size("-4k"), Err(SizeError::NoNumber(_))));
        assert!(matches!(parse_size("4x"), Err(SizeError::BadSuffix(_))));
        assert!(matches!(parse_size("4kk"), Err(SizeError::BadSuffix(_))));
        assert!(matches!(parse_size("4ib"), Err(SizeError::BadSuffix(_))));
        assert!(matches!(parse_size("4.5k"), Err(SizeError::BadSuffix(_))));
        assert!(matches!(parse_size("4 k"), Err(SizeError::BadSuffix(_))));
        assert!(matches!(parse_size("99999999999999999999"), Err(SizeError::Overflow(_))));
        assert!(matches!(parse_size("16777216t"), Err(SizeError::Overflow(_))));
    }

    #[test]
    fn formats_sizes_in_shortest_exact_form() {
        assert_eq!(format_size(4096), "4k");
        assert_eq!(format_size(1 << 20), "1m");
        assert_eq!(format_size(1536), "1536");
        assert_eq!(format_size(0), "0");
        assert_eq!(format_size(10 << 30), "10g");
    }

    #[test]
    fn num2str_keeps_four_significant_characters_like_fio() {
        assert_eq!(num2str(0, Base::Decimal, ""), "0");
        assert_eq!(num2str(9999, Base::Decimal, ""), "9999");
        assert_eq!(num2str(51_234, Base::Decimal, ""), "51.2k");
        assert_eq!(num2str(208_123, Base::Decimal, ""), "208k");
        assert_eq!(num2str(208_623, Base::Decimal, ""), "209k");
        assert_eq!(num2str(10_000, Base::Decimal, ""), "10.0k");
        assert_eq!(num2str(851_968_000, Base::Decimal, "B/s"), "852MB/s");
        assert_eq!(num2str(851_968_000, Base::Binary, "B/s"), "813MiB/s");
        assert_eq!(num2str(4096, Base::Binary, "B"), "4096B");
        assert_eq!(num2str(8_514_437_120, Base::Binary, "B"), "8120MiB");
    }
}
