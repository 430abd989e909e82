//! GGUF writer → reader round trips: random metadata of all 13 value types, random tensors of
//! several ggml types and random alignments survive `GgufWriter` and `GgufFile::from_bytes`
//! unchanged, in file order, with every tensor aligned where llama.cpp expects it. Also the
//! streaming path (`start` / `write_tensor` / `finish`) and the writer's error cases.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{fill, same_value, tensor_size, to_bytes, walk, writer_with};
use lanternfish::gguf::{
    DEFAULT_ALIGNMENT, GgufFile, GgufModel, GgufWriter, MetaValue, ValueType, align_up,
};
use lanternfish::quant::GgmlType;
use proptest::prelude::*;

/// Tensor types the property test draws from: plain, 32-element and 256-element blocks, odd
/// block sizes (Q8_0 34 B, MXFP4 17 B, IQ2_XXS 66 B) and types lanternfish cannot compute with.
const TYPES: [GgmlType; 12] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::I8,
    GgmlType::F64,
    GgmlType::Q4_0,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q6K,
    GgmlType::Mxfp4,
    GgmlType::Iq2Xxs,
    GgmlType::Q1_0,
];

fn scalar_of(ty: ValueType) -> BoxedStrategy<MetaValue> {
    use MetaValue as M;
    match ty {
        ValueType::U8 => any::<u8>().prop_map(M::U8).boxed(),
        ValueType::I8 => any::<i8>().prop_map(M::I8).boxed(),
        ValueType::U16 => any::<u16>().prop_map(M::U16).boxed(),
        ValueType::I16 => any::<i16>().prop_map(M::I16).boxed(),
        ValueType::U32 => any::<u32>().prop_map(M::U32).boxed(),
        ValueType::I32 => any::<i32>().prop_map(M::I32).boxed(),
        // Any bit pattern, NaNs with payloads and subnormals included.
        ValueType::F32 => any::<u32>().prop_map(|b| M::F32(f32::from_bits(b))).boxed(),
        ValueType::Bool => any::<bool>().prop_map(M::Bool).boxed(),
        ValueType::String => string().prop_map(M::String).boxed(),
        ValueType::U64 => any::<u64>().prop_map(M::U64).boxed(),
        ValueType::I64 => any::<i64>().prop_map(M::I64).boxed(),
        ValueType::F64 => any::<u64>().prop_map(|b| M::F64(f64::from_bits(b))).boxed(),
        ValueType::Array => unreachable!("arrays are built by value()"),
    }
}

/// Strings: often empty, often ASCII, sometimes any Unicode (multi-byte, astral, controls).
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        2 => "[a-z._0-9]{0,12}",
        2 => any::<String>(),
        1 => "[Ġ你好🦙\u{0}\u{7f}é]{1,6}",
    ]
}

const NON_ARRAY: [ValueType; 12] = [
    ValueType::U8,
    ValueType::I8,
    ValueType::U16,
    ValueType::I16,
    ValueType::U32,
    ValueType::I32,
    ValueType::F32,
    ValueType::Bool,
    ValueType::String,
    ValueType::U64,
    ValueType::I64,
    ValueType::F64,
];

/// Any value: one of the 12 non-array types, or an array (possibly empty) of one of them.
fn value() -> impl Strategy<Value = MetaValue> {
    let scalar = proptest::sample::select(NON_ARRAY.to_vec()).prop_flat_map(scalar_of);
    let array = proptest::sample::select(NON_ARRAY.to_vec()).prop_flat_map(|t| {
        proptest::collection::vec(scalar_of(t), 0..6)
            .prop_map(move |items| MetaValue::Array(t, items))
    });
    prop_oneof![3 => scalar, 2 => array]
}

/// Unique keys: an index prefix keeps them distinct and non-empty, the rest is any string.
fn metadata() -> impl Strategy<Value = Vec<(String, MetaValue)>> {
    proptest::collection::vec((string(), value()), 0..12).prop_map(|kvs| {
        kvs.into_iter()
            .enumerate()
            .map(|(i, (k, v))| (format!("k{i}.{k}"), v))
            .collect()
    })
}

#[derive(Clone, Debug)]
struct TensorSpec {
    name: String,
    ty: GgmlType,
    shape: Vec<u64>,
    seed: u64,
}

fn tensors() -> impl Strategy<Value = Vec<TensorSpec>> {
    let one = (
        string(),
        proptest::sample::select(TYPES.to_vec()),
        0u64..3,
        proptest::collection::vec(0u64..4, 0..4),
        any::<u64>(),
    )
        .prop_map(|(name, ty, blocks, rest, seed)| {
            let mut shape = vec![blocks * ty.block_elems() as u64];
            shape.extend(rest);
            TensorSpec {
                name,
                ty,
                shape,
                seed,
            }
        });
    proptest::collection::vec(one, 0..6).prop_map(|ts| {
        ts.into_iter()
            .enumerate()
            .map(|(i, t)| TensorSpec {
                name: format!("t{i}.{}", t.name),
                ..t
            })
            .collect()
    })
}

fn build(
    kvs: &[(String, MetaValue)],
    ts: &[TensorSpec],
    alignment: u64,
) -> (GgufWriter, Vec<Vec<u8>>) {
    let mut w = GgufWriter::new();
    w.set_alignment(alignment).unwrap();
    for (k, v) in kvs {
        w.set(k, v.clone());
    }
    let mut datas = Vec::new();
    for t in ts {
        let data = fill(t.seed, tensor_size(t.ty, &t.shape));
        w.add_tensor(&t.name, t.ty, &t.shape, data.clone()).unwrap();
        datas.push(data);
    }
    (w, datas)
}

/// Parses `bytes` and checks it holds exactly what `w` (before writing) described.
fn check_file(
    bytes: Vec<u8>,
    w: &GgufWriter,
    ts: &[TensorSpec],
    datas: &[Vec<u8>],
    alignment: u64,
) {
    let expected_kvs: Vec<(String, MetaValue)> = w
        .metadata()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    let header_len = w.header_bytes().unwrap().len() as u64;
    let total_len = bytes.len() as u64;
    let file = GgufFile::from_bytes(Path::new("roundtrip.gguf"), bytes).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), alignment);
    assert_eq!(file.data_start(), header_len);
    assert!(file.data_start().is_multiple_of(alignment));

    let read: Vec<_> = file.metadata().collect();
    assert_eq!(read.len(), expected_kvs.len());
    for ((wk, wv), (rk, rv)) in expected_kvs.iter().zip(&read) {
        assert_eq!(wk, rk);
        assert!(same_value(wv, rv), "key {wk:?}: wrote {wv:?}, read {rv:?}");
        assert!(same_value(wv, &file.get(wk).unwrap()), "get({wk:?})");
    }
    if alignment == DEFAULT_ALIGNMENT {
        assert!(file.get("general.alignment").is_none());
    } else {
        assert_eq!(
            file.get("general.alignment").unwrap().as_u64(),
            Some(alignment)
        );
    }

    assert_eq!(file.tensors().len(), ts.len());
    // llama.cpp's strict layout: tensors in record order, each padded to the alignment.
    let mut expected_offset = file.data_start();
    for ((info, spec), data) in file.tensors().iter().zip(ts).zip(datas) {
        assert_eq!(info.name, spec.name);
        assert_eq!(info.ggml_type, spec.ty);
        assert_eq!(info.shape, spec.shape);
        assert_eq!(info.part, 0);
        assert_eq!(info.n_bytes, data.len() as u64);
        assert_eq!(info.offset, expected_offset, "tensor {}", info.name);
        assert!(info.offset.is_multiple_of(alignment));
        assert_eq!(file.data(info), &data[..], "data of {}", info.name);
        expected_offset = align_up(expected_offset + info.n_bytes, alignment).unwrap();
    }
    assert_eq!(total_len, expected_offset);
    walk(&file);
    let model = GgufModel::from_parts(vec![file]).unwrap();
    for (info, spec) in model.tensors().zip(ts) {
        assert_eq!(model.tensor(&spec.name), Some(info));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn write_then_read_is_identity(
        kvs in metadata(),
        ts in tensors(),
        align_log2 in 0u32..=12,
    ) {
        let alignment = 1u64 << align_log2;
        let (w, datas) = build(&kvs, &ts, alignment);
        let bytes = to_bytes(w.clone());
        check_file(bytes.clone(), &w, &ts, &datas, alignment);

        // Streaming the same tensors after the header gives the same bytes.
        let mut streamed = GgufWriter::new();
        streamed.set_alignment(alignment).unwrap();
        for (k, v) in &kvs {
            streamed.set(k, v.clone());
        }
        for t in &ts {
            streamed.add_tensor_info(&t.name, t.ty, &t.shape).unwrap();
        }
        let mut stream = streamed.start(Vec::new()).unwrap();
        for (t, data) in ts.iter().zip(&datas) {
            prop_assert_eq!(stream.next_name(), Some(t.name.as_str()));
            stream.write_tensor(data).unwrap();
        }
        prop_assert_eq!(stream.next_name(), None);
        let out = stream.finish().unwrap();
        prop_assert_eq!(out, bytes);
    }

    /// Reading a file and writing everything back (via `MetaValue::from`) reproduces it byte for
    /// byte, so a tool that copies metadata loses nothing.
    #[test]
    fn read_then_rewrite_is_identity(kvs in metadata(), ts in tensors(), align_log2 in 0u32..=12) {
        let alignment = 1u64 << align_log2;
        let (w, _) = build(&kvs, &ts, alignment);
        let bytes = to_bytes(w);
        let file = GgufFile::from_bytes(Path::new("a.gguf"), bytes.clone()).unwrap();
        let mut copy = GgufWriter::new();
        copy.set_alignment(file.alignment()).unwrap();
        for (k, v) in file.metadata() {
            copy.set(k, MetaValue::from(v));
        }
        for t in file.tensors() {
            copy.add_tensor(&t.name, t.ggml_type, &t.shape, file.data(t).to_vec()).unwrap();
        }
        prop_assert_eq!(to_bytes(copy), bytes);
    }
}

#[test]
fn all_value_types_round_trip() {
    let kvs = common::all_types_metadata();
    let tensors = common::mixed_tensors();
    for alignment in [1, 8, 32, 64, 4096] {
        let w = writer_with(&kvs, &tensors, alignment);
        let file = GgufFile::from_bytes(Path::new("all.gguf"), to_bytes(w.clone())).unwrap();
        let types: Vec<ValueType> = file.metadata().map(|(_, v)| v.value_type()).collect();
        for ty in (0..13).map(|id| ValueType::from_id(id).unwrap()) {
            assert!(types.contains(&ty), "{} missing", ty.name());
        }
        for (k, v) in &kvs {
            assert!(same_value(v, &file.get(k).unwrap()), "{k}");
        }
        let strings: Vec<&str> = file
            .get("t.arr.string")
            .unwrap()
            .as_array()
            .unwrap()
            .strings()
            .collect();
        assert_eq!(strings, ["a", "", "Ġhello", "你好", "🦙🦙"]);
        for (i, ((name, ty, shape), info)) in tensors.iter().zip(file.tensors()).enumerate() {
            assert_eq!(
                (&info.name, info.ggml_type, &info.shape),
                (name, *ty, shape)
            );
            assert_eq!(
                file.data(info),
                &common::fill(i as u64 + 1, tensor_size(*ty, shape))[..]
            );
            assert!(info.offset.is_multiple_of(alignment));
        }
    }
}

#[test]
fn version_2_files_are_read() {
    let mut bytes = to_bytes(writer_with(
        &common::all_types_metadata(),
        &common::mixed_tensors(),
        32,
    ));
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let file = GgufFile::from_bytes(Path::new("v2.gguf"), bytes).unwrap();
    assert_eq!(file.version(), 2);
    assert_eq!(file.tensors().len(), common::mixed_tensors().len());
}

#[test]
fn empty_file_round_trips() {
    let bytes = to_bytes(GgufWriter::new());
    assert_eq!(
        bytes.len(),
        32,
        "24-byte header padded to the default alignment"
    );
    let file = GgufFile::from_bytes(Path::new("empty.gguf"), bytes).unwrap();
    assert_eq!(file.metadata().count(), 0);
    assert!(file.tensors().is_empty());
}

fn two_tensor_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set("general.name", MetaValue::String("s".into()));
    w.add_tensor_info("a", GgmlType::Q8_0, &[32, 2]).unwrap();
    w.add_tensor_info("b", GgmlType::F32, &[3]).unwrap();
    w
}

#[test]
fn stream_rejects_a_wrong_size() {
    let mut stream = two_tensor_writer().start(Vec::new()).unwrap();
    let err = stream.write_tensor(&[0u8; 67]).unwrap_err().to_string();
    assert!(
        err.contains("tensor a") && err.contains("67") && err.contains("68"),
        "{err}"
    );
    // The failed write did not advance the stream.
    assert_eq!(stream.next_name(), Some("a"));
    stream.write_tensor(&[0u8; 68]).unwrap();
    let err = stream.write_tensor(&[0u8; 11]).unwrap_err().to_string();
    assert!(err.contains("tensor b"), "{err}");
}

#[test]
fn stream_rejects_too_many_tensors() {
    let mut stream = two_tensor_writer().start(Vec::new()).unwrap();
    stream.write_tensor(&[1u8; 68]).unwrap();
    stream.write_tensor(&[2u8; 12]).unwrap();
    let err = stream.write_tensor(&[3u8; 12]).unwrap_err().to_string();
    assert!(err.contains("more tensors written than declared"), "{err}");
    let bytes = stream.finish().unwrap();
    let file = GgufFile::from_bytes(Path::new("s.gguf"), bytes).unwrap();
    assert_eq!(file.data(&file.tensors()[1]), &[2u8; 12]);
}

#[test]
fn stream_rejects_too_few_tensors() {
    let mut stream = two_tensor_writer().start(Vec::new()).unwrap();
    stream.write_tensor(&[1u8; 68]).unwrap();
    let err = stream.finish().unwrap_err().to_string();
    assert!(
        err.contains("tensor b was declared but not written"),
        "{err}"
    );
    let err = two_tensor_writer()
        .start(Vec::new())
        .unwrap()
        .finish()
        .unwrap_err()
        .to_string();
    assert!(err.contains("tensor a"), "{err}");
}

#[test]
fn write_to_needs_every_tensors_data() {
    let mut w = GgufWriter::new();
    w.add_tensor("x", GgmlType::F32, &[2], vec![0; 8]).unwrap();
    w.add_tensor_info("y", GgmlType::F32, &[2]).unwrap();
    let err = w.write_to(Vec::new()).unwrap_err().to_string();
    assert!(err.contains("tensor y has no data"), "{err}");
}

#[test]
fn writer_rejects_invalid_tensors() {
    let mut w = GgufWriter::new();
    type Case<'a> = (&'a str, GgmlType, &'a [u64], Option<usize>, &'a str);
    let cases: [Case; 6] = [
        ("no_dims", GgmlType::F32, &[], None, "0 dimensions"),
        (
            "five_dims",
            GgmlType::F32,
            &[1, 1, 1, 1, 1],
            None,
            "5 dimensions",
        ),
        (
            "row",
            GgmlType::Q4K,
            &[128, 2],
            None,
            "not a multiple of the Q4_K block size 256",
        ),
        ("size", GgmlType::F32, &[4], Some(15), "15 bytes given"),
        (
            "overflow",
            GgmlType::F32,
            &[1 << 40, 1 << 40],
            None,
            "overflows",
        ),
        (
            "bytes_overflow",
            GgmlType::F64,
            &[1 << 62],
            None,
            "overflows",
        ),
    ];
    for (name, ty, shape, data, expect) in cases {
        let err = match data {
            Some(n) => w.add_tensor(name, ty, shape, vec![0; n]),
            None => w.add_tensor_info(name, ty, shape),
        }
        .unwrap_err()
        .to_string();
        assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
    }
    w.add_tensor_info("dup", GgmlType::F32, &[1]).unwrap();
    let err = w
        .add_tensor_info("dup", GgmlType::F16, &[2])
        .unwrap_err()
        .to_string();
    assert!(err.contains("duplicate tensor name dup"), "{err}");
}

#[test]
fn writer_rejects_invalid_metadata() {
    let mut w = GgufWriter::new();
    w.set("nested", MetaValue::Array(ValueType::Array, vec![]));
    let err = w.header_bytes().unwrap_err().to_string();
    assert!(
        err.contains("key nested") && err.contains("arrays of arrays"),
        "{err}"
    );

    let mut w = GgufWriter::new();
    w.set(
        "mixed",
        MetaValue::Array(ValueType::U32, vec![MetaValue::U32(1), MetaValue::I32(2)]),
    );
    let err = w.header_bytes().unwrap_err().to_string();
    assert!(
        err.contains("key mixed") && err.contains("array of u32 holds a i32"),
        "{err}"
    );

    let mut w = GgufWriter::new();
    w.set("", MetaValue::U8(1));
    assert!(w.header_bytes().unwrap_err().to_string().contains("empty"));

    for bad in [0, 3, 48, 1 << 31, u64::MAX] {
        let err = GgufWriter::new()
            .set_alignment(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&bad.to_string()), "{err}");
    }
}

#[test]
fn set_replaces_in_place_and_remove_removes() {
    let mut w = GgufWriter::new();
    w.set("a", MetaValue::U8(1));
    w.set("b", MetaValue::U8(2));
    w.set("a", MetaValue::String("x".into()));
    w.remove("b");
    w.remove("missing");
    let file = GgufFile::from_bytes(Path::new("r.gguf"), to_bytes(w)).unwrap();
    let kvs: Vec<_> = file
        .metadata()
        .map(|(k, v)| (k.to_owned(), v.to_string()))
        .collect();
    assert_eq!(kvs, [("a".to_owned(), "\"x\"".to_owned())]);
}

/// Regression: going back to the default alignment used to leave the earlier non-default
/// `general.alignment` in the file while the data were padded to 32, so the file was unreadable.
#[test]
fn alignment_can_be_changed_back_to_the_default() {
    let mut w = GgufWriter::new();
    w.set_alignment(64).unwrap();
    w.set_alignment(32).unwrap();
    w.add_tensor("t", GgmlType::F32, &[3], vec![7; 12]).unwrap();
    w.add_tensor("u", GgmlType::F32, &[1], vec![9; 4]).unwrap();
    let file = GgufFile::from_bytes(Path::new("a.gguf"), to_bytes(w)).unwrap();
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.data(&file.tensors()[1]), &[9; 4]);
}

/// Regression: a `general.alignment` set directly with `set` that disagrees with the padding
/// used to produce a file whose tensors a reader finds at the wrong offsets.
#[test]
fn alignment_key_must_match_the_padding() {
    let mut w = GgufWriter::new();
    w.set("general.alignment", MetaValue::U32(64));
    w.add_tensor("t", GgmlType::F32, &[3], vec![7; 12]).unwrap();
    let err = w.write_to(Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("general.alignment") && err.contains("set_alignment"),
        "{err}"
    );

    // Agreeing values of any integer type are fine.
    let mut w = GgufWriter::new();
    w.set_alignment(64).unwrap();
    w.set("general.alignment", MetaValue::U64(64));
    w.add_tensor("t", GgmlType::F32, &[3], vec![7; 12]).unwrap();
    let file = GgufFile::from_bytes(Path::new("a.gguf"), to_bytes(w)).unwrap();
    assert_eq!(file.alignment(), 64);
}

/// Regression: declaring tensors whose offsets overflow u64 must be an error, not a panic.
#[test]
fn huge_declared_tensors_are_an_error() {
    let mut w = GgufWriter::new();
    w.add_tensor_info("a", GgmlType::I8, &[1 << 63]).unwrap();
    w.add_tensor_info("b", GgmlType::I8, &[1 << 63]).unwrap();
    w.add_tensor_info("c", GgmlType::I8, &[1]).unwrap();
    let err = w.header_bytes().unwrap_err().to_string();
    assert!(err.contains("overflows"), "{err}");
}

/// Writes files for `tools/check_writer_with_ggufpy.py` into `$LANTERNFISH_GGUFPY_DIR`: one
/// file with every value type, string arrays, several quant types and alignment 64, a 3-part
/// split of it, and a JSON manifest of what the writer was given.
#[test]
#[ignore = "run by tools/check_writer_with_ggufpy.py"]
fn write_ggufpy_fixture() {
    let dir = std::env::var_os("LANTERNFISH_GGUFPY_DIR").expect("set LANTERNFISH_GGUFPY_DIR");
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let kvs = common::all_types_metadata();
    let tensors = common::mixed_tensors();
    let w = writer_with(&kvs, &tensors, 64);
    let expected_kvs: Vec<(String, MetaValue)> = w
        .metadata()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    std::fs::write(dir.join("all.gguf"), to_bytes(w.clone())).unwrap();
    let parts = w.into_split(3);
    let n_parts = parts.len();
    let mut part_manifests = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let name = lanternfish::gguf::split_file_name("split", i, n_parts);
        let kvs: Vec<_> = part.metadata().map(|(k, v)| meta_json(k, v)).collect();
        std::fs::write(dir.join(&name), to_bytes(part)).unwrap();
        part_manifests.push(serde_json::json!({ "file": name, "metadata": kvs }));
    }
    let manifest = serde_json::json!({
        "file": "all.gguf",
        "alignment": 64,
        "metadata": expected_kvs.iter().map(|(k, v)| meta_json(k, v)).collect::<Vec<_>>(),
        "tensors": tensors.iter().enumerate().map(|(i, (name, ty, shape))| serde_json::json!({
            "name": name,
            "type": ty.name(),
            "type_id": ty.id(),
            "shape": shape,
            "hex": hex(&common::fill(i as u64 + 1, tensor_size(*ty, shape))),
        })).collect::<Vec<_>>(),
        "parts": part_manifests,
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key, its value type id, its array element type id and its value; floats as their bit
/// patterns so NaN and -0.0 compare exactly.
fn meta_json(key: &str, value: &MetaValue) -> serde_json::Value {
    fn scalar(v: &MetaValue) -> serde_json::Value {
        use serde_json::json;
        match v {
            MetaValue::U8(x) => json!(x),
            MetaValue::I8(x) => json!(x),
            MetaValue::U16(x) => json!(x),
            MetaValue::I16(x) => json!(x),
            MetaValue::U32(x) => json!(x),
            MetaValue::I32(x) => json!(x),
            MetaValue::F32(x) => json!({ "f32_bits": x.to_bits() }),
            MetaValue::Bool(x) => json!(x),
            MetaValue::String(x) => json!(x),
            MetaValue::U64(x) => json!(x),
            MetaValue::I64(x) => json!(x),
            MetaValue::F64(x) => json!({ "f64_bits": x.to_bits() }),
            MetaValue::Array(_, items) => json!(items.iter().map(scalar).collect::<Vec<_>>()),
        }
    }
    let elem = match value {
        MetaValue::Array(t, _) => Some(t.id()),
        _ => None,
    };
    serde_json::json!({
        "key": key,
        "type_id": value.value_type().id(),
        "elem_type_id": elem,
        "value": scalar(value),
    })
}
