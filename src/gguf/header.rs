//! Parsing and validating a GGUF header (spec §1): magic, version, key/value records and
//! tensor-info records, checked against the real length of the input.
//!
//! Works on `&[u8]` only and never on paths. Nothing is allocated from an unchecked count: every
//! count is first bounded by the bytes that remain, and every offset and size is computed with
//! checked arithmetic, so a tensor that would reach past the end of the file is an error here and
//! never a SIGBUS later.

use std::collections::HashMap;
use std::ops::Range;

use lanternfish_quant::GgmlType;

use super::cursor::{Cursor, ParseError, ParseResult, parse_error};
use super::value::{ArrayRef, Value, ValueType, read_value};

/// `"GGUF"` read as a little-endian u32.
pub const GGUF_MAGIC: u32 = 0x4655_4747;
/// Alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The largest number of dimensions a tensor may have.
pub const MAX_DIMS: usize = 4;
/// The most key/value or tensor-info records reserved for before they are read.
const MAX_RESERVE: u64 = 4096;

/// One tensor-info record, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// GGUF tensor name, e.g. `blk.3.ffn_down_exps.weight`.
    pub name: String,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Dimensions in GGUF (`ne`) order: `shape[0]` is the contiguous one.
    pub shape: Vec<u64>,
    /// Absolute byte offset of the data in its file.
    pub offset: u64,
    /// Bytes of data.
    pub n_bytes: u64,
    /// Index of the split file holding the tensor (0 for single files).
    pub part: usize,
}

impl TensorInfo {
    /// Number of elements (the product of the dimensions; validated not to overflow).
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Elements of one row (`shape[0]`).
    pub fn row_len(&self) -> u64 {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Number of rows (all dimensions but the first).
    pub fn n_rows(&self) -> u64 {
        self.shape.iter().skip(1).product()
    }

    /// The shape written outermost first, as numpy and PyTorch show it.
    pub fn shape_outermost_first(&self) -> Vec<u64> {
        self.shape.iter().rev().copied().collect()
    }
}

/// Where a metadata value's bytes are, so it can be rebuilt cheaply from the file's bytes.
#[derive(Clone, Copy, Debug)]
enum RawValue {
    Scalar(ValueType, usize),
    String(usize, usize),
    Array {
        elem_type: ValueType,
        len: usize,
        start: usize,
        end: usize,
    },
}

/// A parsed and validated GGUF header. Values are stored as positions into the bytes it was
/// parsed from; pass the same bytes back to read them.
#[derive(Clone, Debug)]
pub struct Header {
    pub version: u32,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_start: u64,
    keys: Vec<(String, RawValue)>,
    index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    /// Tensors left out because their data lies past the end of the file (only from
    /// `parse_metadata`; always 0 from `parse`).
    pub truncated_tensors: usize,
}

impl Header {
    /// Keys in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| k.as_str())
    }

    /// The value of `key`, read from `bytes` (the same bytes the header was parsed from).
    pub fn get<'a>(&self, bytes: &'a [u8], key: &str) -> Option<Value<'a>> {
        let i = *self.index.get(key)?;
        rebuild(bytes, self.keys[i].1)
    }

    /// All key/value pairs in file order.
    pub fn iter<'s, 'a: 's>(
        &'s self,
        bytes: &'a [u8],
    ) -> impl Iterator<Item = (&'s str, Value<'a>)> + 's {
        self.keys
            .iter()
            .filter_map(move |(k, raw)| rebuild(bytes, *raw).map(|v| (k.as_str(), v)))
    }
}

fn rebuild(bytes: &[u8], raw: RawValue) -> Option<Value<'_>> {
    match raw {
        RawValue::Scalar(ty, pos) => {
            let size = ty.fixed_size()?;
            let mut cur = Cursor::new(bytes.get(pos..pos + size)?);
            read_value(&mut cur, ty, "").ok()
        }
        RawValue::String(start, end) => std::str::from_utf8(bytes.get(start..end)?)
            .ok()
            .map(Value::String),
        RawValue::Array {
            elem_type,
            len,
            start,
            end,
        } => Some(Value::Array(ArrayRef::new(
            elem_type,
            len,
            bytes.get(start..end)?,
        ))),
    }
}

/// Parses and validates the header of a GGUF file held in `bytes`.
pub fn parse(bytes: &[u8]) -> ParseResult<Header> {
    parse_with(bytes, false)
}

/// [`parse`] for a file whose tensor data may be cut short (the first part of a download):
/// everything is validated as usual, but tensors whose data ends past the end of the file are
/// left out of the tensor list instead of failing, so the metadata (tokenizer, chat template)
/// can still be read. Counts the left-out tensors in `Header::truncated_tensors`.
pub fn parse_metadata(bytes: &[u8]) -> ParseResult<Header> {
    parse_with(bytes, true)
}

fn parse_with(bytes: &[u8], allow_truncated: bool) -> ParseResult<Header> {
    let mut cur = Cursor::new(bytes);
    let magic = cur.u32(&|| "magic".into())?;
    if magic != GGUF_MAGIC {
        return parse_error(
            0,
            format!("not a GGUF file (magic {:02x?})", magic.to_le_bytes()),
        );
    }
    let version = cur.u32(&|| "version".into())?;
    match version {
        2 | 3 => {}
        0 => return parse_error(4, "unsupported GGUF version 0"),
        1 => return parse_error(4, "GGUF version 1 is no longer supported"),
        v if v & 0xFFFF == 0 => {
            return parse_error(
                4,
                format!("big-endian GGUF (version field {v:#x}) is not supported"),
            );
        }
        v => return parse_error(4, format!("unsupported GGUF version {v}")),
    }
    let n_tensors_at = cur.pos();
    let n_tensors = cur.count(&|| "tensor count".into())?;
    let n_kv_at = cur.pos();
    let n_kv = cur.count(&|| "key/value count".into())?;
    // A key/value record is at least 8 (key length) + 4 (type) + 1 bytes; a tensor-info record at
    // least 8 + 4 + 8 + 4 + 8. Counts beyond what the file can hold are rejected before any
    // allocation.
    if n_kv > (cur.remaining() / 13) as u64 {
        return parse_error(
            n_kv_at,
            format!("file is truncated: {n_kv} key/value records cannot fit"),
        );
    }
    // The count is bounded by the file's length, but a multi-gigabyte model file would still
    // allow a huge reservation; reserve at most a modest amount and let real records grow it.
    let mut keys = Vec::with_capacity(n_kv.min(MAX_RESERVE) as usize);
    let mut index = HashMap::with_capacity(n_kv.min(MAX_RESERVE) as usize);
    for i in 0..n_kv {
        let key_at = cur.pos();
        let key = cur.string(&|| format!("key of record {i}"))?;
        if key.is_empty() {
            return parse_error(key_at, format!("key of record {i} is empty"));
        }
        if index.contains_key(key) {
            return parse_error(key_at, format!("duplicate key {key}"));
        }
        let type_at = cur.pos();
        let type_id = cur.u32(&|| format!("type of key {key}"))?;
        let Some(ty) = ValueType::from_id(type_id) else {
            return parse_error(
                type_at,
                format!("key {key} has unknown value type id {type_id}"),
            );
        };
        let start = cur.pos();
        let value = read_value(&mut cur, ty, key)?;
        let raw = match value {
            Value::String(s) => RawValue::String(cur.pos() - s.len(), cur.pos()),
            Value::Array(a) => RawValue::Array {
                elem_type: a.elem_type(),
                len: a.len(),
                start: cur.pos() - a.byte_len(),
                end: cur.pos(),
            },
            _ => RawValue::Scalar(ty, start),
        };
        index.insert(key.to_owned(), keys.len());
        keys.push((key.to_owned(), raw));
    }
    let mut header = Header {
        version,
        alignment: DEFAULT_ALIGNMENT,
        data_start: 0,
        keys,
        index,
        tensors: Vec::new(),
        truncated_tensors: 0,
    };
    header.alignment = read_alignment(&header, bytes)?;

    if n_tensors > (cur.remaining() / 32) as u64 {
        return parse_error(
            n_tensors_at,
            format!("file is truncated: {n_tensors} tensor-info records cannot fit"),
        );
    }
    let mut infos = Vec::with_capacity(n_tensors.min(MAX_RESERVE) as usize);
    let mut names: HashMap<&str, ()> = HashMap::with_capacity(n_tensors.min(MAX_RESERVE) as usize);
    for i in 0..n_tensors {
        let (info, record_at) = read_tensor_info(&mut cur, i)?;
        if names.insert(info.0, ()).is_some() {
            return parse_error(record_at, format!("duplicate tensor name {}", info.0));
        }
        infos.push((info, record_at));
    }
    let after_infos = cur.pos() as u64;
    let Some(data_start) = align_up(after_infos, header.alignment) else {
        return parse_error(cur.pos(), "data section offset overflows");
    };
    header.data_start = data_start;
    let file_len = bytes.len() as u64;
    if n_tensors > 0 && data_start > file_len {
        return parse_error(
            cur.pos(),
            format!(
                "file is truncated: data section starts at byte {data_start}, file has {file_len}"
            ),
        );
    }
    for ((name, shape, ggml_type, rel_offset, offset_at), record_at) in infos {
        let n_elements = shape.iter().product::<u64>();
        let n_bytes = ggml_type.bytes_for(n_elements).ok_or_else(|| ParseError {
            offset: record_at as u64,
            what: format!("tensor {name}: size of {n_elements} {ggml_type} elements overflows"),
        })?;
        if !rel_offset.is_multiple_of(header.alignment) {
            return parse_error(
                offset_at,
                format!(
                    "tensor {name}: data offset {rel_offset} is not a multiple of the alignment {}",
                    header.alignment
                ),
            );
        }
        let end = data_start
            .checked_add(rel_offset)
            .and_then(|start| start.checked_add(n_bytes));
        match end {
            Some(end) if end <= file_len => {}
            Some(_) if allow_truncated => {
                header.truncated_tensors += 1;
                continue;
            }
            _ => {
                return parse_error(
                    offset_at,
                    format!(
                        "file is truncated: tensor {name} ({n_bytes} bytes at data offset {rel_offset}) ends past the end of the file ({file_len} bytes)"
                    ),
                );
            }
        }
        header.tensors.push(TensorInfo {
            name: name.to_owned(),
            ggml_type,
            shape,
            offset: data_start + rel_offset,
            n_bytes,
            part: 0,
        });
    }
    Ok(header)
}

type RawTensor<'a> = (&'a str, Vec<u64>, GgmlType, u64, usize);

fn read_tensor_info<'a>(cur: &mut Cursor<'a>, i: u64) -> ParseResult<(RawTensor<'a>, usize)> {
    let record_at = cur.pos();
    let name = cur.string(&|| format!("name of tensor {i}"))?;
    let dims_at = cur.pos();
    let n_dims = cur.u32(&|| format!("dimension count of tensor {name}"))?;
    if n_dims == 0 || n_dims as usize > MAX_DIMS {
        return parse_error(
            dims_at,
            format!("tensor {name} has {n_dims} dimensions (must be 1..4)"),
        );
    }
    let mut shape = Vec::with_capacity(n_dims as usize);
    let mut n_elements: u64 = 1;
    for d in 0..n_dims {
        let at = cur.pos();
        let ne = cur.count(&|| format!("dimension {d} of tensor {name}"))?;
        n_elements = match n_elements.checked_mul(ne) {
            Some(n) if n <= i64::MAX as u64 => n,
            _ => return parse_error(at, format!("tensor {name}: element count overflows")),
        };
        shape.push(ne);
    }
    let type_at = cur.pos();
    let type_id = cur.u32(&|| format!("type of tensor {name}"))?;
    let Some(ggml_type) = GgmlType::from_id(type_id) else {
        return parse_error(
            type_at,
            format!("tensor {name} has unknown type id {type_id}"),
        );
    };
    if !shape[0].is_multiple_of(ggml_type.block_elems() as u64) {
        return parse_error(
            dims_at,
            format!(
                "tensor {name}: row length {} is not a multiple of the {ggml_type} block size {}",
                shape[0],
                ggml_type.block_elems()
            ),
        );
    }
    let offset_at = cur.pos();
    let offset = cur.u64(&|| format!("data offset of tensor {name}"))?;
    Ok(((name, shape, ggml_type, offset, offset_at), record_at))
}

fn read_alignment(header: &Header, bytes: &[u8]) -> ParseResult<u64> {
    const KEY: &str = "general.alignment";
    let Some(value) = header.get(bytes, KEY) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let at = header
        .index
        .get(KEY)
        .map(|&i| match header.keys[i].1 {
            RawValue::Scalar(_, pos) => pos,
            RawValue::String(pos, _) | RawValue::Array { start: pos, .. } => pos,
        })
        .unwrap_or(0);
    match value.as_u64() {
        Some(a) if a.is_power_of_two() && a <= 1 << 30 => Ok(a),
        _ => parse_error(
            at,
            format!("{KEY} = {value} is not a power of two up to 2^30"),
        ),
    }
}

/// `value` rounded up to a multiple of `align` (a power of two), or `None` on overflow.
pub fn align_up(value: u64, align: u64) -> Option<u64> {
    let mask = align.checked_sub(1)?;
    value.checked_add(mask).map(|v| v & !mask)
}

/// Byte range of a tensor's data, as `usize`, for slicing the file.
pub(crate) fn data_range(info: &TensorInfo) -> Range<usize> {
    // Saturating: `TensorInfo` has public fields, so a hand-made one must not overflow here; an
    // out-of-range result makes the caller's `get` return `None`.
    let end = info.offset.saturating_add(info.n_bytes);
    usize::try_from(info.offset).unwrap_or(usize::MAX)..usize::try_from(end).unwrap_or(usize::MAX)
}
