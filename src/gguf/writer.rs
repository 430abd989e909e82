//! Writing GGUF files (v3, little-endian): metadata, tensor-info records, aligned tensor data, and
//! split models. Used by `quantize`, by tests and by tools that build small models.
//!
//! Tensor data can be given up front ([`GgufWriter::add_tensor`]) or streamed after the header
//! ([`GgufWriter::start`] + [`TensorStream::write_tensor`]), so a converter never holds a whole
//! model in memory.

use std::io::Write;

use lanternfish_quant::GgmlType;

use super::header::{DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_DIMS, align_up};
use super::model::{KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
use super::value::{Value, ValueType};

const KEY_ALIGNMENT: &str = "general.alignment";

/// An owned metadata value for writing.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    /// Element type and elements; every element must have that type (nested arrays are invalid).
    Array(ValueType, Vec<MetaValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    pub fn value_type(&self) -> ValueType {
        match self {
            MetaValue::U8(_) => ValueType::U8,
            MetaValue::I8(_) => ValueType::I8,
            MetaValue::U16(_) => ValueType::U16,
            MetaValue::I16(_) => ValueType::I16,
            MetaValue::U32(_) => ValueType::U32,
            MetaValue::I32(_) => ValueType::I32,
            MetaValue::F32(_) => ValueType::F32,
            MetaValue::Bool(_) => ValueType::Bool,
            MetaValue::String(_) => ValueType::String,
            MetaValue::Array(..) => ValueType::Array,
            MetaValue::U64(_) => ValueType::U64,
            MetaValue::I64(_) => ValueType::I64,
            MetaValue::F64(_) => ValueType::F64,
        }
    }

    /// An array of strings.
    pub fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> MetaValue {
        let items = items.into_iter().map(|s| MetaValue::String(s.into()));
        MetaValue::Array(ValueType::String, items.collect())
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            MetaValue::U8(v) => out.push(*v),
            MetaValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::Bool(v) => out.push(u8::from(*v)),
            MetaValue::String(s) => write_string(out, s),
            MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::Array(elem_type, items) => {
                if *elem_type == ValueType::Array {
                    return Err("arrays of arrays are not valid GGUF".into());
                }
                out.extend_from_slice(&elem_type.id().to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for item in items {
                    if item.value_type() != *elem_type {
                        return Err(format!(
                            "array of {} holds a {}",
                            elem_type.name(),
                            item.value_type().name()
                        ));
                    }
                    item.write(out)?;
                }
            }
        }
        Ok(())
    }
}

impl From<Value<'_>> for MetaValue {
    fn from(value: Value<'_>) -> MetaValue {
        match value {
            Value::U8(v) => MetaValue::U8(v),
            Value::I8(v) => MetaValue::I8(v),
            Value::U16(v) => MetaValue::U16(v),
            Value::I16(v) => MetaValue::I16(v),
            Value::U32(v) => MetaValue::U32(v),
            Value::I32(v) => MetaValue::I32(v),
            Value::F32(v) => MetaValue::F32(v),
            Value::Bool(v) => MetaValue::Bool(v),
            Value::String(s) => MetaValue::String(s.to_owned()),
            Value::U64(v) => MetaValue::U64(v),
            Value::I64(v) => MetaValue::I64(v),
            Value::F64(v) => MetaValue::F64(v),
            Value::Array(a) => {
                MetaValue::Array(a.elem_type(), a.iter().map(MetaValue::from).collect())
            }
        }
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A tensor to be written: its record, and its bytes if given up front.
#[derive(Clone, Debug)]
struct PendingTensor {
    name: String,
    ggml_type: GgmlType,
    shape: Vec<u64>,
    n_bytes: u64,
    data: Option<Vec<u8>>,
}

/// Builds a GGUF file: add metadata and tensors, then write.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    alignment: u64,
    kvs: Vec<(String, MetaValue)>,
    tensors: Vec<PendingTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

type WriteResult<T> = std::result::Result<T, WriteError>;

fn invalid<T>(what: impl Into<String>) -> WriteResult<T> {
    Err(WriteError::Invalid(what.into()))
}

impl GgufWriter {
    /// An empty file with the default alignment (32).
    pub fn new() -> Self {
        GgufWriter {
            alignment: DEFAULT_ALIGNMENT,
            kvs: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// Sets the data alignment (a power of two); it is recorded as `general.alignment` when it
    /// differs from the default.
    pub fn set_alignment(&mut self, alignment: u64) -> WriteResult<()> {
        if !alignment.is_power_of_two() || alignment > 1 << 30 {
            return invalid(format!(
                "alignment {alignment} is not a power of two up to 2^30"
            ));
        }
        self.alignment = alignment;
        // Going back to the default must not leave an earlier non-default value recorded.
        if alignment != DEFAULT_ALIGNMENT || self.kvs.iter().any(|(k, _)| k == KEY_ALIGNMENT) {
            self.set(KEY_ALIGNMENT, MetaValue::U32(alignment as u32));
        }
        Ok(())
    }

    /// Sets a metadata key, replacing an earlier value of the same key in place.
    pub fn set(&mut self, key: &str, value: MetaValue) {
        match self.kvs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.kvs.push((key.to_owned(), value)),
        }
    }

    /// Removes a metadata key if present.
    pub fn remove(&mut self, key: &str) {
        self.kvs.retain(|(k, _)| k != key);
    }

    /// Metadata in insertion order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.kvs.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Declares a tensor whose bytes will be streamed after the header.
    pub fn add_tensor_info(
        &mut self,
        name: &str,
        ggml_type: GgmlType,
        shape: &[u64],
    ) -> WriteResult<()> {
        self.push_tensor(name, ggml_type, shape, None)
    }

    /// Adds a tensor with its bytes.
    pub fn add_tensor(
        &mut self,
        name: &str,
        ggml_type: GgmlType,
        shape: &[u64],
        data: Vec<u8>,
    ) -> WriteResult<()> {
        self.push_tensor(name, ggml_type, shape, Some(data))
    }

    fn push_tensor(
        &mut self,
        name: &str,
        ggml_type: GgmlType,
        shape: &[u64],
        data: Option<Vec<u8>>,
    ) -> WriteResult<()> {
        if shape.is_empty() || shape.len() > MAX_DIMS {
            return invalid(format!(
                "tensor {name}: {} dimensions (must be 1..4)",
                shape.len()
            ));
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return invalid(format!("duplicate tensor name {name}"));
        }
        if !shape[0].is_multiple_of(ggml_type.block_elems() as u64) {
            return invalid(format!(
                "tensor {name}: row length {} is not a multiple of the {ggml_type} block size {}",
                shape[0],
                ggml_type.block_elems()
            ));
        }
        let n_elements = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let Some(n_bytes) = n_elements.and_then(|n| ggml_type.bytes_for(n)) else {
            return invalid(format!("tensor {name}: size overflows"));
        };
        if let Some(data) = &data
            && data.len() as u64 != n_bytes
        {
            return invalid(format!(
                "tensor {name}: {} bytes given, {ggml_type} {shape:?} needs {n_bytes}",
                data.len()
            ));
        }
        self.tensors.push(PendingTensor {
            name: name.to_owned(),
            ggml_type,
            shape: shape.to_vec(),
            n_bytes,
            data,
        });
        Ok(())
    }

    /// Encodes the header (everything before the data section, padded to the alignment).
    pub fn header_bytes(&self) -> WriteResult<Vec<u8>> {
        // A reader lays the data out by `general.alignment`; a value set with `set` that differs
        // from the alignment the writer pads to would make a file whose tensors are misplaced.
        if let Some((_, value)) = self.kvs.iter().find(|(k, _)| k == KEY_ALIGNMENT) {
            let recorded = match value {
                MetaValue::U8(v) => Some(u64::from(*v)),
                MetaValue::U16(v) => Some(u64::from(*v)),
                MetaValue::U32(v) => Some(u64::from(*v)),
                MetaValue::U64(v) => Some(*v),
                MetaValue::I8(v) => u64::try_from(*v).ok(),
                MetaValue::I16(v) => u64::try_from(*v).ok(),
                MetaValue::I32(v) => u64::try_from(*v).ok(),
                MetaValue::I64(v) => u64::try_from(*v).ok(),
                _ => None,
            };
            if recorded != Some(self.alignment) {
                return invalid(format!(
                    "{KEY_ALIGNMENT} is {value:?} but the data are aligned to {} (use set_alignment)",
                    self.alignment
                ));
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (key, value) in &self.kvs {
            if key.is_empty() {
                // The reader rejects empty keys.
                return invalid("a metadata key is empty");
            }
            write_string(&mut out, key);
            out.extend_from_slice(&value.value_type().id().to_le_bytes());
            value
                .write(&mut out)
                .or_else(|e| invalid(format!("key {key}: {e}")))?;
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            write_string(&mut out, &t.name);
            out.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for d in &t.shape {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = offset
                .checked_add(t.n_bytes)
                .and_then(|end| align_up(end, self.alignment))
                .ok_or_else(|| WriteError::Invalid("data section overflows".into()))?;
        }
        let padded = align_up(out.len() as u64, self.alignment).unwrap_or(out.len() as u64);
        out.resize(padded as usize, 0);
        Ok(out)
    }

    /// Writes the header and returns a stream that takes the tensor data in declaration order.
    pub fn start<W: Write>(self, mut sink: W) -> WriteResult<TensorStream<W>> {
        let header = self.header_bytes()?;
        sink.write_all(&header)?;
        Ok(TensorStream {
            sink,
            alignment: self.alignment,
            tensors: self.tensors,
            next: 0,
        })
    }

    /// Writes the whole file; every tensor must have been given its bytes.
    pub fn write_to<W: Write>(mut self, sink: W) -> WriteResult<()> {
        let datas: Vec<Option<Vec<u8>>> = self.tensors.iter_mut().map(|t| t.data.take()).collect();
        let mut stream = self.start(sink)?;
        for data in datas {
            match data {
                Some(data) => stream.write_tensor(&data)?,
                None => {
                    let name = stream.next_name().unwrap_or_default().to_owned();
                    return invalid(format!("tensor {name} has no data"));
                }
            }
        }
        stream.finish()?;
        Ok(())
    }

    /// Splits into parts of at most `max_tensors` tensors each (at least one part), with the
    /// `split.*` keys llama.cpp's `gguf-split` writes; only part 0 keeps the model metadata.
    pub fn into_split(self, max_tensors: usize) -> Vec<GgufWriter> {
        let max_tensors = max_tensors.max(1);
        let total = self.tensors.len();
        let n_parts = total.div_ceil(max_tensors).max(1);
        let mut parts = Vec::with_capacity(n_parts);
        let mut tensors = self.tensors.into_iter();
        for i in 0..n_parts {
            let mut part = GgufWriter::new();
            if i == 0 {
                part.kvs = self.kvs.clone();
            }
            // Every part needs its own alignment record.
            let _ = part.set_alignment(self.alignment);
            part.set(KEY_SPLIT_NO, MetaValue::U16(i as u16));
            part.set(KEY_SPLIT_COUNT, MetaValue::U16(n_parts as u16));
            part.set(KEY_SPLIT_TENSORS_COUNT, MetaValue::I32(total as i32));
            part.tensors = tensors.by_ref().take(max_tensors).collect();
            parts.push(part);
        }
        parts
    }
}

/// Tensor data being written after a header, in declaration order, each padded to the alignment.
pub struct TensorStream<W: Write> {
    sink: W,
    alignment: u64,
    tensors: Vec<PendingTensor>,
    next: usize,
}

impl<W: Write> TensorStream<W> {
    /// Name of the tensor whose bytes are expected next.
    pub fn next_name(&self) -> Option<&str> {
        self.tensors.get(self.next).map(|t| t.name.as_str())
    }

    /// Writes the bytes of the next tensor.
    pub fn write_tensor(&mut self, data: &[u8]) -> WriteResult<()> {
        let Some(t) = self.tensors.get(self.next) else {
            return invalid("more tensors written than declared");
        };
        if data.len() as u64 != t.n_bytes {
            return invalid(format!(
                "tensor {}: {} bytes written, {} declared",
                t.name,
                data.len(),
                t.n_bytes
            ));
        }
        self.sink.write_all(data)?;
        let padded = align_up(t.n_bytes, self.alignment).unwrap_or(t.n_bytes);
        let pad = (padded - t.n_bytes) as usize;
        self.sink.write_all(&vec![0u8; pad])?;
        self.next += 1;
        Ok(())
    }

    /// Checks that every declared tensor was written and flushes; returns the sink.
    pub fn finish(mut self) -> WriteResult<W> {
        if let Some(name) = self.next_name() {
            return invalid(format!("tensor {name} was declared but not written"));
        }
        self.sink.flush()?;
        Ok(self.sink)
    }
}
