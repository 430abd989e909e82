//! One GGUF file: its bytes (memory-mapped, or owned for in-memory use) and its validated header.

use std::path::{Path, PathBuf};

use super::header::{self, Header, TensorInfo};
use super::value::Value;
use crate::{Error, Result};

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Owned(vec) => vec,
        }
    }
}

/// A single GGUF file, validated at open; tensor data are slices of its memory map.
pub struct GgufFile {
    path: PathBuf,
    bytes: Bytes,
    header: Header,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("len", &self.bytes.as_slice().len())
            .field("tensors", &self.header.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Maps `path` and validates its header.
    pub fn open(path: &Path) -> Result<GgufFile> {
        Self::open_with(path, header::parse)
    }

    /// Like [`GgufFile::open`] for a file whose tensor data may be cut short: only the metadata
    /// is needed (tokenizer, chat template), and tensors past the end are left out (see
    /// `header::parse_metadata`).
    pub fn open_metadata(path: &Path) -> Result<GgufFile> {
        Self::open_with(path, header::parse_metadata)
    }

    fn open_with(
        path: &Path,
        parse: fn(&[u8]) -> super::cursor::ParseResult<header::Header>,
    ) -> Result<GgufFile> {
        let io = |error| Error::Io {
            path: path.to_owned(),
            error,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let bytes = if len == 0 {
            // mmap of an empty file fails on some platforms; the parser reports it as truncated.
            Bytes::Owned(Vec::new())
        } else {
            Bytes::Mapped(map_read_only(&file).map_err(io)?)
        };
        Self::from_bytes_inner(path.to_owned(), bytes, parse)
    }

    /// Validates a GGUF held in memory; `name` is used in error messages.
    pub fn from_bytes(name: &Path, bytes: Vec<u8>) -> Result<GgufFile> {
        Self::from_bytes_inner(name.to_owned(), Bytes::Owned(bytes), header::parse)
    }

    fn from_bytes_inner(
        path: PathBuf,
        bytes: Bytes,
        parse: fn(&[u8]) -> super::cursor::ParseResult<header::Header>,
    ) -> Result<GgufFile> {
        match parse(bytes.as_slice()) {
            Ok(header) => Ok(GgufFile {
                path,
                bytes,
                header,
            }),
            Err(e) => Err(Error::Gguf {
                path,
                offset: e.offset,
                what: e.what,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Data alignment (`general.alignment` or 32).
    pub fn alignment(&self) -> u64 {
        self.header.alignment
    }

    /// Size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Absolute offset of the data section.
    pub fn data_start(&self) -> u64 {
        self.header.data_start
    }

    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<Value<'_>> {
        self.header.get(self.bytes.as_slice(), key)
    }

    /// Metadata keys in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.header.keys()
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, Value<'_>)> {
        self.header.iter(self.bytes.as_slice())
    }

    /// Tensor-info records in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// The bytes of a tensor of this file (bounds were checked at open).
    pub fn data(&self, info: &TensorInfo) -> &[u8] {
        self.bytes
            .as_slice()
            .get(header::data_range(info))
            .unwrap_or(&[])
    }

    /// Tells the OS that `len` bytes of `info`'s data from `offset` will be read soon, so that
    /// it starts reading them from disk in the background (a hint: errors are ignored, and an
    /// in-memory file has nothing to read).
    pub fn advise_will_need(&self, info: &TensorInfo, offset: usize, len: usize) {
        #[cfg(unix)]
        if let Bytes::Mapped(map) = &self.bytes {
            let start = header::data_range(info).start + offset;
            if start + len <= map.len() {
                let _ = map.advise_range(memmap2::Advice::WillNeed, start, len);
            }
        }
        #[cfg(not(unix))]
        let _ = (info, offset, len);
    }

    pub(crate) fn set_part(&mut self, part: usize) {
        for info in &mut self.header.tensors {
            info.part = part;
        }
    }
}

#[allow(unsafe_code)]
fn map_read_only(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. If another process truncates or
    // rewrites the file while it is mapped, reads may fault or see changed bytes; every reader of
    // mapped model files accepts this (llama.cpp does the same), and the header is validated
    // against the length at open so a well-formed file is never read out of bounds.
    unsafe { memmap2::Mmap::map(file) }
}
