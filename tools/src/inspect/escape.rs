//! Shows bytes as text the way redis-cli does (`"a\x00b\n"`), cut to a prefix unless asked for
//! everything.

use serde::Serialize;

/// Bytes shown before a key or value is cut, unless `--full`.
pub const CUT_AT: usize = 64;

/// Escapes like redis-cli's `sdscatrepr`: `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b`, printable
/// ASCII as is, every other byte as `\xHH`. No surrounding quotes.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    moodb_core::repr::escape_into(bytes, &mut out);
    out
}

/// A key or value as shown: escaped text of its first bytes, and its whole length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shown {
    /// The escaped bytes, without quotes (only the first [`CUT_AT`] bytes if `cut`).
    pub escaped: String,
    /// Length in bytes of the whole key or value.
    pub len: usize,
    /// Whether `escaped` holds only a prefix.
    pub cut: bool,
}

impl Shown {
    pub fn new(bytes: &[u8], full: bool) -> Shown {
        let cut = !full && bytes.len() > CUT_AT;
        let shown = if cut { &bytes[..CUT_AT] } else { bytes };
        Shown {
            escaped: escape(shown),
            len: bytes.len(),
            cut,
        }
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.escaped)?;
        if self.cut {
            write!(f, "… ({} bytes)", self.len)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_redis_cli() {
        assert_eq!(
            escape(b"a\x00b\n\"q\"\\\t\r\x07\x08\xff~ "),
            "a\\x00b\\n\\\"q\\\"\\\\\\t\\r\\a\\b\\xff~ "
        );
    }

    #[test]
    fn cuts_long_values_unless_full() {
        let long = vec![b'x'; 100];
        let cut = Shown::new(&long, false);
        assert_eq!(
            cut.to_string(),
            format!("\"{}\"… (100 bytes)", "x".repeat(64))
        );
        assert_eq!(
            Shown::new(&long, true).to_string(),
            format!("\"{}\"", "x".repeat(100))
        );
        assert_eq!(
            Shown::new(&long[..64], false).to_string(),
            format!("\"{}\"", "x".repeat(64))
        );
    }
}
