//! Bytes shown as text the way Redis shows them (`sdscatrepr`): MONITOR's lines and the
//! inspection tools' keys and values.

use std::fmt::Write;

/// Appends `bytes` escaped as Redis's `sdscatrepr` does, without the surrounding quotes: `\\`,
/// `\"`, `\n`, `\r`, `\t`, `\a`, `\b`, other printable ASCII as itself, every other byte as
/// `\xhh`.
pub fn escape_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b' '..=b'~' => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    #[test]
    fn escapes_as_sdscatrepr() {
        let mut out = String::new();
        escape_into(b"a\"b\\c\n\r\t\x07\x08\x00\xff~ ", &mut out);
        assert_eq!(out, r#"a\"b\\c\n\r\t\a\b\x00\xff~ "#);
    }
}
