//! Per-token text and bytes, precomputed for decoding (spec §7.2 "Decoding"): NORMAL tokens map
//! their byte-level stand-ins back to bytes; CONTROL, USER_DEFINED and UNKNOWN tokens are their
//! text as stored (their `｜`/`▁` are not stand-ins, so they are never mapped); UNUSED tokens are
//! empty, as in llama.cpp's `token_to_piece`.

use super::bytes::token_bytes;
use super::vocab::TokenType;

/// All token texts and byte pieces in two flat buffers (a few MB for 129k tokens instead of
/// 260k small allocations).
#[derive(Debug)]
pub(crate) struct Pieces {
    text: String,
    text_ends: Vec<usize>,
    bytes: Vec<u8>,
    byte_ends: Vec<usize>,
}

fn range(ends: &[usize], id: u32) -> Option<std::ops::Range<usize>> {
    let i = id as usize;
    let end = *ends.get(i)?;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    Some(start..end)
}

impl Pieces {
    pub fn new(tokens: &[String], types: &[TokenType]) -> Pieces {
        let mut out = Pieces {
            text: String::new(),
            text_ends: Vec::with_capacity(tokens.len()),
            bytes: Vec::new(),
            byte_ends: Vec::with_capacity(tokens.len()),
        };
        for (token, ty) in tokens.iter().zip(types) {
            out.text.push_str(token);
            out.text_ends.push(out.text.len());
            match ty {
                TokenType::Control | TokenType::UserDefined | TokenType::Unknown => {
                    out.bytes.extend_from_slice(token.as_bytes())
                }
                TokenType::Unused => {}
                TokenType::Normal | TokenType::Byte | TokenType::Undefined => {
                    out.bytes.extend_from_slice(&token_bytes(token))
                }
            }
            out.byte_ends.push(out.bytes.len());
        }
        out
    }

    /// The stored text of a token.
    pub fn text(&self, id: u32) -> Option<&str> {
        self.text.get(range(&self.text_ends, id)?)
    }

    /// The bytes a token decodes to; empty for ids outside the vocabulary.
    pub fn get(&self, id: u32) -> &[u8] {
        range(&self.byte_ends, id)
            .and_then(|r| self.bytes.get(r))
            .unwrap_or(&[])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pieces_by_type() {
        let tokens: Vec<String> = ["ĠHi", "<｜User｜>", "[PAD2]", "<think>", "ä½"]
            .map(String::from)
            .to_vec();
        let types = [
            TokenType::Normal,
            TokenType::Control,
            TokenType::Unused,
            TokenType::UserDefined,
            TokenType::Normal,
        ];
        let p = Pieces::new(&tokens, &types);
        assert_eq!(p.get(0), b" Hi");
        assert_eq!(p.get(1), "<｜User｜>".as_bytes());
        assert_eq!(p.get(2), b"");
        assert_eq!(p.get(3), b"<think>");
        assert_eq!(p.get(4), &[0xE4, 0xBD]);
        assert_eq!(p.get(5), b"");
        assert_eq!(p.text(2), Some("[PAD2]"));
        assert_eq!(p.text(4), Some("ä½"));
        assert_eq!(p.text(5), None);
    }
}
