//! Token-by-token detokenization that only ever yields whole characters.
//!
//! A byte-level BPE token can end in the middle of a UTF-8 sequence (a CJK character or an emoji
//! is often two or three tokens), so printing each token's bytes as they come would show
//! replacement characters. [`StreamDecoder`] keeps the bytes of an unfinished sequence until
//! the tokens that complete it arrive; bytes that can never become valid are replaced by U+FFFD
//! at once. The concatenated output equals [`Tokenizer::decode`] of all ids.

use super::Tokenizer;

/// Turns ids into text one at a time; see the module documentation.
#[derive(Debug)]
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    skip_special: bool,
    /// Bytes of an unfinished UTF-8 sequence (at most 3).
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        StreamDecoder {
            tokenizer,
            skip_special: false,
            pending: Vec::new(),
        }
    }

    /// Leave CONTROL tokens (chat markers, BOS/EOS) out of the text.
    pub fn skip_special(mut self, skip: bool) -> Self {
        self.skip_special = skip;
        self
    }

    /// The text that token `id` completes; empty while a character is still unfinished.
    pub fn push(&mut self, id: u32) -> String {
        let piece = self.tokenizer.piece(id, self.skip_special);
        self.pending.extend_from_slice(piece);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid` is valid UTF-8 by construction.
                    out.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        // Bytes that no continuation can repair.
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                        // An unfinished sequence at the end: wait for more bytes.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// Ends the stream: an unfinished sequence left over becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }

    /// Whether bytes of an unfinished character are being held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}
