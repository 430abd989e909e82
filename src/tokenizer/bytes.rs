//! GPT-2's byte-level alphabet (spec §7.2 step 3): each of the 256 byte values has a printable
//! stand-in character, so a byte-level BPE vocabulary can be stored as strings. Bytes that are
//! already printable Latin-1 (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) stand for themselves; the other 68 are
//! given U+0100.. in increasing byte order (space = `Ġ` U+0120, newline = `Ċ` U+010A).
//!
//! Encoding goes through the `tokenizers` crate's `ByteLevel` pre-tokenizer; this table is only
//! needed to turn token strings back into bytes when decoding.

/// Whether byte `b` is one of the 188 bytes that stand for themselves.
const fn is_printable(b: u32) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The 68 non-printable bytes in increasing order: the byte for stand-in U+0100 + i.
const SHIFTED: [u8; 68] = {
    let mut out = [0u8; 68];
    let mut n = 0;
    let mut b = 0u32;
    while b < 256 {
        if !is_printable(b) {
            out[n] = b as u8;
            n += 1;
        }
        b += 1;
    }
    out
};

/// The byte a stand-in character represents, or `None` for characters outside the alphabet.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 256 && is_printable(u) {
        return Some(u as u8);
    }
    let i = u.checked_sub(256)?;
    SHIFTED.get(i as usize).copied()
}

/// The bytes a NORMAL token string stands for. A string with a character outside the alphabet
/// is taken as raw text, as the `tokenizers` ByteLevel decoder does.
pub(crate) fn token_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => return text.as_bytes().to_vec(),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_stand_ins() {
        assert_eq!(char_to_byte('Ġ'), Some(b' '));
        assert_eq!(char_to_byte('Ċ'), Some(b'\n'));
        assert_eq!(char_to_byte('ĉ'), Some(b'\t'));
        assert_eq!(char_to_byte('Ā'), Some(0));
        assert_eq!(char_to_byte('A'), Some(b'A'));
        assert_eq!(char_to_byte('ÿ'), Some(0xFF));
        // U+0143 is the last stand-in (byte 0xAD, the soft hyphen).
        assert_eq!(char_to_byte('Ń'), Some(0xAD));
        assert_eq!(char_to_byte('ń'), None);
        assert_eq!(char_to_byte(' '), None);
        assert_eq!(char_to_byte('｜'), None);
    }

    #[test]
    fn every_byte_has_one_stand_in() {
        let mut seen = [false; 256];
        for u in 0..0x200u32 {
            if let Some(b) = char::from_u32(u).and_then(char_to_byte) {
                assert!(!seen[b as usize], "byte {b} has two stand-ins");
                seen[b as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn raw_fallback() {
        assert_eq!(token_bytes("ĠHello"), b" Hello");
        assert_eq!(token_bytes("<｜User｜>"), "<｜User｜>".as_bytes());
        // "ä½ł" is the stand-in form of the UTF-8 bytes of "你".
        assert_eq!(token_bytes("ä½ł"), "你".as_bytes());
    }
}
