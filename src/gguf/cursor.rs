//! A bounds-checked little-endian reader over a byte slice that remembers its position, so every
//! parse error can name the byte offset where it happened.

/// A parse failure: what was wrong and at which byte of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: u64,
    pub what: String,
}

pub(crate) type ParseResult<T> = std::result::Result<T, ParseError>;

pub(crate) fn parse_error<T>(offset: usize, what: impl Into<String>) -> ParseResult<T> {
    Err(ParseError {
        offset: offset as u64,
        what: what.into(),
    })
}

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes from `start` up to the current position.
    pub fn slice_since(&self, start: usize) -> &'a [u8] {
        &self.bytes[start.min(self.pos)..self.pos]
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Takes `n` bytes, or fails with "truncated" naming `what` was being read.
    pub fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> ParseResult<&'a [u8]> {
        if n > self.remaining() as u64 {
            return parse_error(
                self.pos,
                format!(
                    "file is truncated: {} needs {n} bytes, {} remain",
                    what(),
                    self.remaining()
                ),
            );
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    pub fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> ParseResult<[u8; N]> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u32(&mut self, what: &dyn Fn() -> String) -> ParseResult<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub fn u64(&mut self, what: &dyn Fn() -> String) -> ParseResult<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A count stored as i64 (GGUF v3) that must be non-negative.
    pub fn count(&mut self, what: &dyn Fn() -> String) -> ParseResult<u64> {
        let at = self.pos;
        let value = i64::from_le_bytes(self.array(what)?);
        if value < 0 {
            return parse_error(at, format!("{} is negative ({value})", what()));
        }
        Ok(value as u64)
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes (no terminator).
    pub fn string(&mut self, what: &dyn Fn() -> String) -> ParseResult<&'a str> {
        let len = self.u64(&|| format!("length of {}", what()))?;
        let at = self.pos;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).or_else(|e| {
            parse_error(
                at + e.valid_up_to(),
                format!("{} is not valid UTF-8", what()),
            )
        })
    }
}
