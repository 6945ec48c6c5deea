//! Quoting file content in messages: at most a short, escaped excerpt, so that a hostile
//! file cannot turn a one-line error into megabytes of raw bytes (NULs, newlines, terminal
//! escapes). Every message that carries a name, key or value read from a file goes
//! through [`excerpt`]; `main` passes the final message through [`one_line`].

/// Characters of file content one quotation keeps at most.
pub const EXCERPT_CHARS: usize = 64;
/// Characters of a whole error message at most.
pub const MESSAGE_CHARS: usize = 1000;

/// `content` escaped and cut to [`EXCERPT_CHARS`] characters (with its length in bytes
/// when cut). Control characters become Rust escapes (`\n`, `\0`, `\u{1b}`), a backslash
/// `\\`, invalid UTF-8 `\xNN`; anything else is kept.
pub fn excerpt(content: impl AsRef<[u8]>) -> String {
    clip(content.as_ref(), EXCERPT_CHARS, false)
}

/// A whole message on one line: newlines become spaces, other control characters are
/// escaped as in [`excerpt`], and the text is cut to [`MESSAGE_CHARS`] characters.
pub fn one_line(message: &str) -> String {
    clip(message.as_bytes(), MESSAGE_CHARS, true)
}

fn clip(bytes: &[u8], max: usize, newline_as_space: bool) -> String {
    let mut out = String::new();
    let mut kept = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if kept == max {
                return cut(out, bytes.len());
            }
            match c {
                '\n' | '\r' if newline_as_space => out.push(' '),
                '\\' if !newline_as_space => out.push_str("\\\\"),
                c if c.is_control() => out.extend(c.escape_default()),
                c => out.push(c),
            }
            kept += 1;
        }
        for b in chunk.invalid() {
            if kept == max {
                return cut(out, bytes.len());
            }
            out.push_str(&format!("\\x{b:02x}"));
            kept += 1;
        }
    }
    out
}

fn cut(mut out: String, total: usize) -> String {
    out.push_str(&format!("… ({total} bytes)"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept() {
        assert_eq!(excerpt("blk.0.attn_q.weight"), "blk.0.attn_q.weight");
        assert_eq!(excerpt(b"caf\xc3\xa9"), "café");
    }

    #[test]
    fn control_bytes_and_invalid_utf8_are_escaped() {
        assert_eq!(excerpt(b"a\0b\n\x1b[31m\\"), "a\\u{0}b\\n\\u{1b}[31m\\\\");
        assert_eq!(excerpt(b"x\xff"), "x\\xff");
    }

    #[test]
    fn long_content_is_cut_and_says_how_long_it_was() {
        let e = excerpt(vec![0u8; 1 << 20]);
        assert!(e.ends_with("… (1048576 bytes)"), "{e}");
        assert!(e.len() < 400, "{}", e.len());
        let m = one_line(&"x\n".repeat(10_000));
        assert!(
            !m.contains('\n') && m.chars().count() < MESSAGE_CHARS + 40,
            "{m}"
        );
    }
}
