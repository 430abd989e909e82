//! Helpers shared by the GGUF integration tests: deterministic bytes, metadata of every value
//! type, a walk over everything a parsed file exposes, and a comparison of written and read values.

#![allow(dead_code, clippy::unwrap_used)]

use lanternfish::gguf::{GgufFile, GgufWriter, MetaValue, Value, ValueType};
use lanternfish::quant::GgmlType;

/// A small deterministic generator (splitmix64), so no test depends on a random-number crate.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// `n` deterministic pseudo-random bytes.
pub fn fill(seed: u64, n: usize) -> Vec<u8> {
    Rng(seed).bytes(n)
}

/// Bytes of a tensor of `ty` and `shape` (GGUF order).
pub fn tensor_size(ty: GgmlType, shape: &[u64]) -> usize {
    ty.bytes_for(shape.iter().product()).unwrap() as usize
}

/// Metadata holding every value type: all scalars (with extreme values), empty and unicode
/// strings, an array of each non-array type, empty arrays and string arrays.
pub fn all_types_metadata() -> Vec<(String, MetaValue)> {
    use MetaValue as M;
    let arr = |t: ValueType, items: Vec<MetaValue>| M::Array(t, items);
    vec![
        ("general.architecture".into(), M::String("deepseek2".into())),
        (
            "general.name".into(),
            M::String("tiny ünïcödé 模型 🦙".into()),
        ),
        ("t.u8".into(), M::U8(u8::MAX)),
        ("t.i8".into(), M::I8(i8::MIN)),
        ("t.u16".into(), M::U16(u16::MAX)),
        ("t.i16".into(), M::I16(i16::MIN)),
        ("t.u32".into(), M::U32(u32::MAX)),
        ("t.i32".into(), M::I32(i32::MIN)),
        ("t.f32".into(), M::F32(-1.5e-7)),
        ("t.bool".into(), M::Bool(true)),
        ("t.string.empty".into(), M::String(String::new())),
        ("t.u64".into(), M::U64(u64::MAX)),
        ("t.i64".into(), M::I64(i64::MIN)),
        ("t.f64".into(), M::F64(std::f64::consts::PI)),
        (
            "t.arr.u8".into(),
            arr(ValueType::U8, vec![M::U8(0), M::U8(255)]),
        ),
        (
            "t.arr.i8".into(),
            arr(ValueType::I8, vec![M::I8(-128), M::I8(127)]),
        ),
        (
            "t.arr.u16".into(),
            arr(ValueType::U16, vec![M::U16(1), M::U16(65535)]),
        ),
        ("t.arr.i16".into(), arr(ValueType::I16, vec![M::I16(-2)])),
        (
            "t.arr.u32".into(),
            arr(ValueType::U32, vec![M::U32(7), M::U32(8), M::U32(9)]),
        ),
        (
            "t.arr.i32".into(),
            arr(ValueType::I32, vec![M::I32(-7), M::I32(i32::MAX)]),
        ),
        (
            "t.arr.f32".into(),
            arr(
                ValueType::F32,
                vec![M::F32(0.5), M::F32(-0.0), M::F32(f32::INFINITY)],
            ),
        ),
        (
            "t.arr.bool".into(),
            arr(
                ValueType::Bool,
                vec![M::Bool(false), M::Bool(true), M::Bool(true)],
            ),
        ),
        (
            "t.arr.string".into(),
            MetaValue::strings(["a", "", "Ġhello", "你好", "🦙🦙"]),
        ),
        (
            "t.arr.u64".into(),
            arr(ValueType::U64, vec![M::U64(u64::MAX), M::U64(0)]),
        ),
        (
            "t.arr.i64".into(),
            arr(ValueType::I64, vec![M::I64(i64::MIN), M::I64(-1)]),
        ),
        (
            "t.arr.f64".into(),
            arr(ValueType::F64, vec![M::F64(1e300), M::F64(-2.5)]),
        ),
        ("t.arr.empty.u32".into(), arr(ValueType::U32, vec![])),
        ("t.arr.empty.string".into(), arr(ValueType::String, vec![])),
        ("t.arr.empty.f64".into(), arr(ValueType::F64, vec![])),
    ]
}

/// The tensors of the richer seed files: several block formats, unaligned block sizes, 1 to 4
/// dimensions and an empty tensor.
pub fn mixed_tensors() -> Vec<(String, GgmlType, Vec<u64>)> {
    vec![
        ("token_embd.weight".into(), GgmlType::F16, vec![8, 3]),
        ("blk.0.attn_q.weight".into(), GgmlType::Q8_0, vec![64, 2]),
        (
            "blk.0.ffn_down.weight".into(),
            GgmlType::Q4K,
            vec![256, 1, 2],
        ),
        ("blk.0.ffn_up.weight".into(), GgmlType::Q6K, vec![256]),
        (
            "blk.0.exps.weight".into(),
            GgmlType::Mxfp4,
            vec![32, 1, 1, 2],
        ),
        ("blk.0.empty".into(), GgmlType::F32, vec![4, 0]),
        ("output_norm.weight".into(), GgmlType::F32, vec![5]),
    ]
}

/// A writer with `kvs`, `tensors` (filled with deterministic bytes) and `alignment`.
pub fn writer_with(
    kvs: &[(String, MetaValue)],
    tensors: &[(String, GgmlType, Vec<u64>)],
    alignment: u64,
) -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set_alignment(alignment).unwrap();
    for (k, v) in kvs {
        w.set(k, v.clone());
    }
    for (i, (name, ty, shape)) in tensors.iter().enumerate() {
        let data = fill(i as u64 + 1, tensor_size(*ty, shape));
        w.add_tensor(name, *ty, shape, data).unwrap();
    }
    w
}

/// Writes `w` to memory.
pub fn to_bytes(w: GgufWriter) -> Vec<u8> {
    let mut out = Vec::new();
    w.write_to(&mut out).unwrap();
    out
}

/// Everything a caller could read from a parsed file, touched once: every key and value (arrays
/// iterated fully, each element also fetched with `get`, values printed), every tensor's bytes.
/// Returns a checksum so the work is not optimised away.
pub fn walk(file: &GgufFile) -> u64 {
    let mut sum = 0u64;
    for (key, value) in file.metadata() {
        sum = sum.wrapping_add(key.len() as u64);
        sum = sum.wrapping_add(value.to_string().len() as u64);
        assert!(file.get(key).is_some(), "key {key} listed but not found");
        if let Value::Array(a) = value {
            let mut n = 0;
            for (i, item) in a.iter().enumerate() {
                assert_eq!(Some(item.value_type()), Some(a.elem_type()));
                let again = a.get(i).unwrap();
                assert_eq!(MetaValue::from(again).value_type(), item.value_type());
                n += 1;
            }
            assert_eq!(
                n,
                a.len(),
                "array {key} iterates {n} of {} elements",
                a.len()
            );
            assert!(a.get(a.len()).is_none());
            sum = sum.wrapping_add(a.strings().map(str::len).sum::<usize>() as u64);
        }
    }
    assert_eq!(file.keys().count(), file.metadata().count());
    for t in file.tensors() {
        let data = file.data(t);
        assert_eq!(data.len() as u64, t.n_bytes, "tensor {}", t.name);
        assert!(
            t.offset.is_multiple_of(file.alignment()),
            "tensor {}",
            t.name
        );
        assert!(t.offset >= file.data_start());
        sum = sum.wrapping_add(data.iter().map(|&b| u64::from(b)).sum::<u64>());
    }
    sum
}

/// Whether a written value and a read value are the same, floats compared bit for bit (so NaN
/// payloads and signed zeros count).
pub fn same_value(written: &MetaValue, read: &Value<'_>) -> bool {
    same_meta(written, &MetaValue::from(*read))
}

fn same_meta(a: &MetaValue, b: &MetaValue) -> bool {
    match (a, b) {
        (MetaValue::F32(x), MetaValue::F32(y)) => x.to_bits() == y.to_bits(),
        (MetaValue::F64(x), MetaValue::F64(y)) => x.to_bits() == y.to_bits(),
        (MetaValue::Array(ta, xs), MetaValue::Array(tb, ys)) => {
            ta == tb && xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_meta(x, y))
        }
        _ => a == b,
    }
}
