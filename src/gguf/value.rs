//! GGUF metadata values: the 13 value types, borrowed from the file's bytes. Arrays stay as byte
//! ranges and are decoded element by element only when iterated, so a 129k-entry vocabulary costs
//! nothing until the tokenizer reads it.

use super::cursor::{Cursor, ParseResult, parse_error};

/// The type id of a metadata value (`gguf_type` in `ggml/include/gguf.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        use ValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// Bytes of one value of a fixed-size type; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// One metadata value, borrowing strings and arrays from the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(&'a str),
    Array(ArrayRef<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'a> Value<'a> {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer type with a non-negative value (files differ in the width they use).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type, as i64 when it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::U64(v) => i64::try_from(v).ok(),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// A float or integer as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::String(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<ArrayRef<'a>> {
        match *self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value<'_> {
    /// Scalars print as themselves; strings are quoted and cut at 80 characters; arrays print
    /// their type and length and the first few elements.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::String(s) => {
                let short: String = s.chars().take(80).collect();
                let more = if short.len() < s.len() { "…" } else { "" };
                write!(f, "{short:?}{more}")
            }
            Value::Array(a) => {
                write!(f, "[{}; {}]", a.elem_type().name(), a.len())?;
                let head: Vec<String> = a.iter().take(4).map(|v| v.to_string()).collect();
                if !head.is_empty() {
                    let more = if a.len() > 4 { ", …" } else { "" };
                    write!(f, " [{}{more}]", head.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// A validated metadata array: element type, count and the bytes of its elements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArrayRef<'a> {
    elem_type: ValueType,
    len: usize,
    bytes: &'a [u8],
}

impl<'a> ArrayRef<'a> {
    pub(crate) fn new(elem_type: ValueType, len: usize, bytes: &'a [u8]) -> Self {
        ArrayRef {
            elem_type,
            len,
            bytes,
        }
    }

    /// Bytes the elements take in the file.
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn elem_type(&self) -> ValueType {
        self.elem_type
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Iterates the elements, decoding each on demand.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            elem_type: self.elem_type,
            cursor: Cursor::new(self.bytes),
            left: self.len,
        }
    }

    /// Element `i`: O(1) for fixed-size types, O(i) for strings.
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        if i >= self.len {
            return None;
        }
        match self.elem_type.fixed_size() {
            Some(size) => {
                let bytes = self.bytes.get(i * size..(i + 1) * size)?;
                decode_scalar(self.elem_type, bytes)
            }
            None => self.iter().nth(i),
        }
    }

    /// The elements as strings (empty iterator if the array is not of strings).
    pub fn strings(&self) -> impl Iterator<Item = &'a str> + 'a {
        let is_string = self.elem_type == ValueType::String;
        self.iter()
            .filter(move |_| is_string)
            .filter_map(|v| v.as_str())
    }
}

/// Iterator over an [`ArrayRef`].
pub struct ArrayIter<'a> {
    elem_type: ValueType,
    cursor: Cursor<'a>,
    left: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The array was validated when the file was opened, so decoding cannot fail here; a
        // failure would end the iteration early rather than panic.
        let none = || String::new();
        match self.elem_type.fixed_size() {
            Some(size) => {
                let bytes = self.cursor.take(size as u64, &none).ok()?;
                decode_scalar(self.elem_type, bytes)
            }
            None => self.cursor.string(&none).ok().map(Value::String),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

fn decode_scalar(ty: ValueType, b: &[u8]) -> Option<Value<'static>> {
    fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
        b.try_into().ok()
    }
    Some(match ty {
        ValueType::U8 => Value::U8(*b.first()?),
        ValueType::I8 => Value::I8(i8::from_le_bytes(arr(b)?)),
        ValueType::Bool => Value::Bool(*b.first()? != 0),
        ValueType::U16 => Value::U16(u16::from_le_bytes(arr(b)?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(arr(b)?)),
        ValueType::U32 => Value::U32(u32::from_le_bytes(arr(b)?)),
        ValueType::I32 => Value::I32(i32::from_le_bytes(arr(b)?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(arr(b)?)),
        ValueType::U64 => Value::U64(u64::from_le_bytes(arr(b)?)),
        ValueType::I64 => Value::I64(i64::from_le_bytes(arr(b)?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(arr(b)?)),
        ValueType::String | ValueType::Array => return None,
    })
}

/// Reads and validates one value of type `ty` at the cursor; returns it borrowed from the input.
/// Arrays are walked once (to find their end and validate every string) but not stored.
pub(crate) fn read_value<'a>(
    cur: &mut Cursor<'a>,
    ty: ValueType,
    key: &str,
) -> ParseResult<Value<'a>> {
    let what = || format!("value of key {key}");
    match ty {
        ValueType::String => cur.string(&what).map(Value::String),
        ValueType::Array => {
            let at = cur.pos();
            let elem_id = cur.u32(&|| format!("element type of array {key}"))?;
            let elem_type = match ValueType::from_id(elem_id) {
                Some(ValueType::Array) => {
                    return parse_error(at, format!("array {key} holds arrays (not allowed)"));
                }
                Some(t) => t,
                None => {
                    return parse_error(
                        at,
                        format!("array {key} has unknown element type id {elem_id}"),
                    );
                }
            };
            let count_at = cur.pos();
            let count = cur.u64(&|| format!("length of array {key}"))?;
            let start = cur.pos();
            match elem_type.fixed_size() {
                Some(size) => {
                    let Some(n_bytes) = count.checked_mul(size as u64) else {
                        return parse_error(
                            count_at,
                            format!("array {key} length {count} is too large"),
                        );
                    };
                    cur.take(n_bytes, &|| format!("{count} elements of array {key}"))?;
                }
                None => {
                    // Each string needs at least its 8-byte length, which bounds the count
                    // before any work is done.
                    if count > (cur.remaining() / 8) as u64 {
                        return parse_error(
                            count_at,
                            format!("file is truncated: array {key} claims {count} strings"),
                        );
                    }
                    for i in 0..count {
                        cur.string(&|| format!("element {i} of array {key}"))?;
                    }
                }
            }
            Ok(Value::Array(ArrayRef {
                elem_type,
                len: count as usize,
                bytes: cur.slice_since(start),
            }))
        }
        fixed => {
            let at = cur.pos();
            let size = fixed.fixed_size().unwrap_or(1);
            let bytes = cur.take(size as u64, &what)?;
            if fixed == ValueType::Bool && bytes[0] > 1 {
                return parse_error(
                    at,
                    format!("key {key}: bool value {} is not 0 or 1", bytes[0]),
                );
            }
            match decode_scalar(fixed, bytes) {
                Some(v) => Ok(v),
                None => parse_error(at, format!("key {key}: cannot decode {}", fixed.name())),
            }
        }
    }
}
