//! Hostile GGUF input: a corpus generated from valid seed files (truncations at every byte, huge
//! counts and lengths, bad type ids, bad dimensions, offsets and alignments, duplicates, invalid
//! UTF-8, bad versions and magic, seeded random bit flips). The parser must never panic; every
//! targeted case must be an error naming the file, the byte offset and the offending key or
//! tensor; and `lanternfish info` must fail cleanly (exit 1 or 2, "error", no panic) on a few
//! hundred of them while loading every valid seed.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Rng, to_bytes, walk, writer_with};
use lanternfish::gguf::{GgufFile, GgufModel, GgufWriter, MetaValue, ValueType};
use lanternfish::quant::GgmlType;

// ---------------------------------------------------------------------------------------------
// A raw GGUF builder: every field can be set to any value, valid or not, and the byte offset of
// every field is recorded so a test can say where the error must be reported.

#[derive(Clone, Debug)]
struct RawKv {
    key: Vec<u8>,
    type_id: u32,
    payload: Vec<u8>,
}

#[derive(Clone, Debug)]
struct RawTensor {
    name: Vec<u8>,
    n_dims: u32,
    dims: Vec<i64>,
    type_id: u32,
    offset: u64,
}

#[derive(Clone, Debug)]
struct RawFile {
    magic: [u8; 4],
    version: u32,
    n_tensors: Option<u64>,
    n_kv: Option<u64>,
    kvs: Vec<RawKv>,
    tensors: Vec<RawTensor>,
    /// Padding of the header and between tensors.
    align: usize,
    data: Vec<u8>,
}

/// Byte offsets of the fields of a serialised [`RawFile`].
#[derive(Debug, Default)]
struct Layout {
    n_tensors: usize,
    n_kv: usize,
    kv: Vec<usize>,
    kv_type: Vec<usize>,
    kv_value: Vec<usize>,
    tensor: Vec<usize>,
    tensor_dims: Vec<usize>,
    tensor_type: Vec<usize>,
    tensor_offset: Vec<usize>,
    data_start: usize,
}

fn gstr(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

fn kv(key: &str, ty: ValueType, payload: Vec<u8>) -> RawKv {
    RawKv {
        key: key.as_bytes().to_vec(),
        type_id: ty.id(),
        payload,
    }
}

fn array_payload(elem: ValueType, count: u64, items: &[u8]) -> Vec<u8> {
    let mut out = elem.id().to_le_bytes().to_vec();
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(items);
    out
}

fn strings_payload(items: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = items.iter().flat_map(|s| gstr(s)).collect();
    array_payload(ValueType::String, items.len() as u64, &body)
}

impl RawFile {
    fn serialize(&self) -> (Vec<u8>, Layout) {
        let mut out = Vec::new();
        let mut l = Layout::default();
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        l.n_tensors = out.len();
        let n_tensors = self.n_tensors.unwrap_or(self.tensors.len() as u64);
        out.extend_from_slice(&n_tensors.to_le_bytes());
        l.n_kv = out.len();
        out.extend_from_slice(&self.n_kv.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for kv in &self.kvs {
            l.kv.push(out.len());
            out.extend_from_slice(&gstr(&kv.key));
            l.kv_type.push(out.len());
            out.extend_from_slice(&kv.type_id.to_le_bytes());
            l.kv_value.push(out.len());
            out.extend_from_slice(&kv.payload);
        }
        for t in &self.tensors {
            l.tensor.push(out.len());
            out.extend_from_slice(&gstr(&t.name));
            l.tensor_dims.push(out.len());
            out.extend_from_slice(&t.n_dims.to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            l.tensor_type.push(out.len());
            out.extend_from_slice(&t.type_id.to_le_bytes());
            l.tensor_offset.push(out.len());
            out.extend_from_slice(&t.offset.to_le_bytes());
        }
        out.resize(out.len().next_multiple_of(self.align), 0);
        l.data_start = out.len();
        out.extend_from_slice(&self.data);
        (out, l)
    }

    fn bytes(&self) -> Vec<u8> {
        self.serialize().0
    }

    fn tensor(&mut self, name: &str, ty: GgmlType, shape: &[i64]) {
        let size = common::tensor_size(ty, &shape.iter().map(|&d| d as u64).collect::<Vec<_>>());
        let offset = self.data.len().next_multiple_of(self.align);
        self.data.resize(offset, 0);
        let seed = self.tensors.len() as u64 + 1;
        self.data.extend(common::fill(seed, size));
        self.data
            .resize(self.data.len().next_multiple_of(self.align), 0);
        self.tensors.push(RawTensor {
            name: name.as_bytes().to_vec(),
            n_dims: shape.len() as u32,
            dims: shape.to_vec(),
            type_id: ty.id(),
            offset: offset as u64,
        });
    }
}

/// The file the targeted cases corrupt: five keys (string, u32, u8 array, string array, bool)
/// and three tensors (F32, Q8_0, Q4_K) at the default alignment.
fn base() -> RawFile {
    let mut f = RawFile {
        magic: *b"GGUF",
        version: 3,
        n_tensors: None,
        n_kv: None,
        kvs: vec![
            kv(
                "general.architecture",
                ValueType::String,
                gstr(b"deepseek2"),
            ),
            kv("x.u32", ValueType::U32, 7u32.to_le_bytes().to_vec()),
            kv(
                "x.bytes",
                ValueType::Array,
                array_payload(ValueType::U8, 3, &[1, 2, 3]),
            ),
            kv(
                "x.strings",
                ValueType::Array,
                strings_payload(&[b"a", b"bc", "ü".as_bytes()]),
            ),
            kv("x.bool", ValueType::Bool, vec![1]),
        ],
        tensors: Vec::new(),
        align: 32,
        data: Vec::new(),
    };
    f.tensor("tok_embd.weight", GgmlType::F32, &[8, 2]);
    f.tensor("blk.0.attn_q.weight", GgmlType::Q8_0, &[32, 2]);
    f.tensor("blk.0.ffn_down.weight", GgmlType::Q4K, &[256]);
    f
}

/// What the writer produces for [`base`]'s content, to check the raw builder against.
fn base_by_writer() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set(
        "general.architecture",
        MetaValue::String("deepseek2".into()),
    );
    w.set("x.u32", MetaValue::U32(7));
    w.set(
        "x.bytes",
        MetaValue::Array(
            ValueType::U8,
            vec![MetaValue::U8(1), MetaValue::U8(2), MetaValue::U8(3)],
        ),
    );
    w.set("x.strings", MetaValue::strings(["a", "bc", "ü"]));
    w.set("x.bool", MetaValue::Bool(true));
    let f = base();
    for t in &f.tensors {
        let ty = GgmlType::from_id(t.type_id).unwrap();
        let shape: Vec<u64> = t.dims.iter().map(|&d| d as u64).collect();
        let size = common::tensor_size(ty, &shape);
        let start = t.offset as usize;
        let data = f.data[start..start + size].to_vec();
        w.add_tensor(std::str::from_utf8(&t.name).unwrap(), ty, &shape, data)
            .unwrap();
    }
    to_bytes(w)
}

// ---------------------------------------------------------------------------------------------
// Seeds: valid files made by the writer.

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let all = common::all_types_metadata();
    let mixed = common::mixed_tensors();
    let small_kvs = vec![
        (
            "general.architecture".to_owned(),
            MetaValue::String("deepseek2".into()),
        ),
        ("general.name".to_owned(), MetaValue::String("ü".into())),
        ("x.strings".to_owned(), MetaValue::strings(["a", "", "xyz"])),
        ("x.f32".to_owned(), MetaValue::F32(0.25)),
    ];
    let small_tensors = vec![
        ("a.weight".to_owned(), GgmlType::F32, vec![3, 2]),
        ("b.weight".to_owned(), GgmlType::Q4_0, vec![32]),
    ];
    let mut v2 = to_bytes(writer_with(&small_kvs, &small_tensors, 32));
    v2[4..8].copy_from_slice(&2u32.to_le_bytes());
    vec![
        (
            "small",
            to_bytes(writer_with(&small_kvs, &small_tensors, 32)),
        ),
        ("all_types_align64", to_bytes(writer_with(&all, &mixed, 64))),
        ("align1", to_bytes(writer_with(&small_kvs, &mixed, 1))),
        ("align8", to_bytes(writer_with(&all[..6], &mixed[..3], 8))),
        ("metadata_only", to_bytes(writer_with(&all, &[], 32))),
        ("tensors_only", to_bytes(writer_with(&[], &mixed, 32))),
        ("empty", to_bytes(GgufWriter::new())),
        ("version2", v2),
        ("raw_base", base().bytes()),
    ]
}

fn parse(name: &str, bytes: Vec<u8>) -> Result<GgufFile, lanternfish::Error> {
    GgufFile::from_bytes(Path::new(name), bytes)
}

/// Parses and, on success, touches everything the file exposes; panics only on a bug.
fn parse_and_walk(name: &str, bytes: Vec<u8>) -> bool {
    match parse(name, bytes) {
        Ok(file) => {
            walk(&file);
            let model = GgufModel::from_parts(vec![file]).unwrap();
            for t in model.tensors() {
                assert_eq!(model.tensor_data(t).len() as u64, t.n_bytes);
            }
            true
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(name) && msg.contains("at byte"), "{msg}");
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Targeted cases.

/// A hostile file and what its error must say.
struct Case {
    label: String,
    bytes: Vec<u8>,
    /// Substrings of the error's `what`.
    expect: Vec<String>,
    /// The byte offset the error must report, where it is well defined.
    at: Option<usize>,
}

fn case(label: &str, f: &RawFile, expect: &[&str], at: Option<usize>) -> Case {
    Case {
        label: label.to_owned(),
        bytes: f.bytes(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
        at,
    }
}

fn targeted_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let b = base();
    let (base_bytes, l) = b.serialize();
    let len = base_bytes.len();

    // Magic and version.
    for (label, magic) in [
        ("magic_ggug", *b"GGUG"),
        ("magic_swapped", *b"FUGG"),
        ("magic_zero", [0; 4]),
    ] {
        let mut f = b.clone();
        f.magic = magic;
        cases.push(case(label, &f, &["not a GGUF file"], Some(0)));
    }
    for (version, expect) in [
        (0u32, "version 0"),
        (1, "version 1"),
        (4, "version 4"),
        (0x0300_0000, "big-endian"),
        (0x0200_0000, "big-endian"),
        (u32::MAX, "version 4294967295"),
    ] {
        let mut f = b.clone();
        f.version = version;
        cases.push(case(
            &format!("version_{version:#x}"),
            &f,
            &[expect],
            Some(4),
        ));
    }
    // A whole big-endian file (every integer byte-swapped), not just its version.
    {
        let mut f = b.clone();
        f.version = 3u32.swap_bytes();
        f.n_tensors = Some(3u64.swap_bytes());
        f.n_kv = Some(5u64.swap_bytes());
        cases.push(case("big_endian", &f, &["big-endian"], Some(4)));
    }

    // Counts: negative, huge, just past what the file can hold, one too many or too few.
    for (label, value) in [
        ("u64_max", u64::MAX),
        ("i64_max", i64::MAX as u64),
        ("i64_min", i64::MIN as u64),
        ("u32_max", u64::from(u32::MAX)),
    ] {
        let mut f = b.clone();
        f.n_kv = Some(value);
        let what = if (value as i64) < 0 {
            "key/value count is negative"
        } else {
            "key/value records cannot fit"
        };
        cases.push(case(&format!("n_kv_{label}"), &f, &[what], Some(l.n_kv)));
        let mut f = b.clone();
        f.n_tensors = Some(value);
        let what = if (value as i64) < 0 {
            "tensor count is negative"
        } else {
            "truncated"
        };
        cases.push(case(&format!("n_tensors_{label}"), &f, &[what], None));
    }
    {
        let mut f = b.clone();
        f.n_kv = Some(((len - l.kv[0]) / 13 + 1) as u64);
        cases.push(case(
            "n_kv_just_past_file",
            &f,
            &["cannot fit"],
            Some(l.n_kv),
        ));
        let mut f = b.clone();
        f.n_tensors = Some(((len - l.tensor[0]) / 32 + 1) as u64);
        cases.push(case(
            "n_tensors_just_past_file",
            &f,
            &["tensor-info records cannot fit"],
            Some(l.n_tensors),
        ));
        let mut f = b.clone();
        f.n_kv = Some(6);
        cases.push(case("n_kv_plus_one", &f, &[], None));
        let mut f = b.clone();
        f.n_kv = Some(4);
        cases.push(case("n_kv_minus_one", &f, &[], None));
        let mut f = b.clone();
        f.n_tensors = Some(4);
        cases.push(case("n_tensors_plus_one", &f, &[], None));
    }

    // String lengths: of a key, of a string value, of a tensor name.
    // `None`: one byte more than remains after the length field.
    for (label, n) in [
        ("u64_max", Some(u64::MAX)),
        ("i64_max", Some(i64::MAX as u64)),
        ("past_end", Some(len as u64)),
        ("one_past_end", None),
    ] {
        let n_at = |pos: usize| n.unwrap_or((len - pos - 8 + 1) as u64);
        let mut bytes = base_bytes.clone();
        bytes[l.kv[1]..l.kv[1] + 8].copy_from_slice(&n_at(l.kv[1]).to_le_bytes());
        cases.push(Case {
            label: format!("key_len_{label}"),
            bytes,
            expect: vec!["truncated".into(), "key of record 1".into()],
            at: Some(l.kv[1] + 8),
        });
        let mut bytes = base_bytes.clone();
        bytes[l.kv_value[0]..l.kv_value[0] + 8].copy_from_slice(&n_at(l.kv_value[0]).to_le_bytes());
        cases.push(Case {
            label: format!("string_len_{label}"),
            bytes,
            expect: vec![
                "truncated".into(),
                "value of key general.architecture".into(),
            ],
            at: Some(l.kv_value[0] + 8),
        });
        let mut bytes = base_bytes.clone();
        bytes[l.tensor[1]..l.tensor[1] + 8].copy_from_slice(&n_at(l.tensor[1]).to_le_bytes());
        cases.push(Case {
            label: format!("tensor_name_len_{label}"),
            bytes,
            expect: vec!["truncated".into(), "name of tensor 1".into()],
            at: Some(l.tensor[1] + 8),
        });
    }

    // Array lengths: of bytes, of u32s (the byte count overflows), of strings.
    for (label, n) in [
        ("u64_max", u64::MAX),
        ("i64_max", i64::MAX as u64),
        ("past_end", len as u64),
    ] {
        let mut f = b.clone();
        f.kvs[2].payload = array_payload(ValueType::U8, n, &[1, 2, 3]);
        cases.push(case(
            &format!("u8_array_len_{label}"),
            &f,
            &["truncated", "array x.bytes"],
            None,
        ));
        let mut f = b.clone();
        f.kvs[2].payload = array_payload(ValueType::U32, n, &[1, 2, 3]);
        // An overflowing byte count is reported at the count, a short file where the data start.
        let (expect, at) = match n.checked_mul(4) {
            None => ("too large", l.kv_value[2] + 4),
            Some(_) => ("truncated", l.kv_value[2] + 12),
        };
        cases.push(case(
            &format!("u32_array_len_{label}"),
            &f,
            &[expect, "array x.bytes"],
            Some(at),
        ));
        let mut f = b.clone();
        let mut payload = strings_payload(&[b"a", b"bc", "ü".as_bytes()]);
        payload[4..12].copy_from_slice(&n.to_le_bytes());
        f.kvs[3].payload = payload;
        cases.push(case(
            &format!("string_array_len_{label}"),
            &f,
            &["truncated", "array x.strings"],
            Some(l.kv_value[3] + 4),
        ));
    }
    {
        // One string more than the array holds: the next key is read as a string.
        let mut f = b.clone();
        f.kvs[3].payload[4..12].copy_from_slice(&4u64.to_le_bytes());
        cases.push(case("string_array_one_more", &f, &[], None));
        // A string inside the array longer than the file.
        let mut f = b.clone();
        f.kvs[3].payload[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        cases.push(case(
            "string_array_elem_len",
            &f,
            &["truncated", "element 0 of array x.strings"],
            None,
        ));
    }

    // Value types and array element types.
    for id in [13u32, 255, 0x0800_0000, u32::MAX] {
        let mut f = b.clone();
        f.kvs[1].type_id = id;
        cases.push(case(
            &format!("value_type_{id}"),
            &f,
            &["key x.u32", &format!("unknown value type id {id}")],
            Some(l.kv_type[1]),
        ));
        let mut f = b.clone();
        f.kvs[2].payload[0..4].copy_from_slice(&id.to_le_bytes());
        cases.push(case(
            &format!("array_elem_type_{id}"),
            &f,
            &["array x.bytes", "unknown element type id"],
            Some(l.kv_value[2]),
        ));
    }
    {
        let mut f = b.clone();
        f.kvs[2].payload =
            array_payload(ValueType::Array, 1, &array_payload(ValueType::U8, 1, &[5]));
        cases.push(case(
            "nested_array",
            &f,
            &["array x.bytes holds arrays"],
            Some(l.kv_value[2]),
        ));
        let mut f = b.clone();
        f.kvs[2].payload = array_payload(ValueType::Array, 0, &[]);
        cases.push(case(
            "nested_empty_array",
            &f,
            &["array x.bytes holds arrays"],
            Some(l.kv_value[2]),
        ));
    }
    {
        let mut f = b.clone();
        f.kvs[4].payload = vec![2];
        cases.push(case(
            "bool_2",
            &f,
            &["key x.bool", "bool value 2"],
            Some(l.kv_value[4]),
        ));
        let mut f = b.clone();
        f.kvs[1].key.clear();
        cases.push(case(
            "empty_key",
            &f,
            &["key of record 1 is empty"],
            Some(l.kv[1]),
        ));
    }

    // Tensor types, dimension counts, dimensions.
    for id in [4u32, 5, 31, 32, 33, 36, 1000, u32::MAX] {
        let mut f = b.clone();
        f.tensors[1].type_id = id;
        cases.push(case(
            &format!("ggml_type_{id}"),
            &f,
            &[
                "tensor blk.0.attn_q.weight",
                &format!("unknown type id {id}"),
            ],
            Some(l.tensor_type[1]),
        ));
    }
    for n in [0u32, 5, 8, u32::MAX] {
        let mut f = b.clone();
        f.tensors[0].n_dims = n;
        cases.push(case(
            &format!("n_dims_{n}"),
            &f,
            &["tensor tok_embd.weight", &format!("{n} dimensions")],
            Some(l.tensor_dims[0]),
        ));
    }
    for (label, dims) in [
        ("neg_dim0", vec![-1i64, 2]),
        ("neg_dim1", vec![8, -2]),
        ("min_dim", vec![8, i64::MIN]),
    ] {
        let mut f = b.clone();
        f.tensors[0].dims = dims;
        cases.push(case(
            label,
            &f,
            &["tensor tok_embd.weight", "is negative"],
            None,
        ));
    }
    for (label, dims, expect) in [
        (
            "product_overflow",
            vec![1i64 << 32, 1 << 32],
            "element count overflows",
        ),
        (
            "product_overflow_4d",
            vec![1 << 16, 1 << 16, 1 << 16, 1 << 16],
            "element count overflows",
        ),
        (
            "product_i64_max_2",
            vec![i64::MAX, 2],
            "element count overflows",
        ),
        ("bytes_overflow", vec![1 << 62], "overflows"),
        ("huge_but_fits_u64", vec![1 << 40], "ends past the end"),
        ("one_element_too_many", vec![8, 3], "ends past the end"),
    ] {
        let mut f = b.clone();
        f.tensors[0].n_dims = dims.len() as u32;
        f.tensors[0].dims = dims;
        // Keep the one-too-many case honest: the F32 tensor is the last one in the data.
        if label == "one_element_too_many" {
            f.tensors.swap(0, 2);
            f.tensors[2].offset = f.tensors[0].offset;
            f.tensors[0].offset = 0;
            f.data.truncate(f.tensors[2].offset as usize + 64);
        }
        cases.push(case(label, &f, &["tensor tok_embd.weight", expect], None));
    }
    for (label, ne0, t) in [
        ("q8_0_row_33", 33i64, 1usize),
        ("q8_0_row_16", 16, 1),
        ("q4_k_row_128", 128, 2),
    ] {
        let mut f = b.clone();
        f.tensors[t].dims[0] = ne0;
        let name = String::from_utf8(f.tensors[t].name.clone()).unwrap();
        cases.push(case(
            label,
            &f,
            &[&format!("tensor {name}"), "is not a multiple of the"],
            Some(l.tensor_dims[t]),
        ));
    }

    // Offsets.
    for (label, offset, expect) in [
        (
            "offset_misaligned",
            65u64,
            "not a multiple of the alignment 32",
        ),
        (
            "offset_past_end",
            (len as u64).next_multiple_of(32) * 4,
            "ends past the end",
        ),
        (
            "offset_at_end",
            (len - l.data_start) as u64,
            "ends past the end",
        ),
        ("offset_max", u64::MAX - 31, "ends past the end"),
        ("offset_u64_max", u64::MAX, "not a multiple"),
    ] {
        let mut f = b.clone();
        f.tensors[1].offset = offset;
        cases.push(case(
            label,
            &f,
            &["blk.0.attn_q.weight", expect],
            Some(l.tensor_offset[1]),
        ));
    }
    {
        // The data section itself cut short.
        let mut f = b.clone();
        f.data.truncate(100);
        cases.push(case(
            "data_cut",
            &f,
            &["truncated", "blk.0.attn_q.weight"],
            None,
        ));
        let mut f = b.clone();
        f.data.clear();
        cases.push(case("data_missing", &f, &["truncated"], None));
        let mut bytes = base_bytes.clone();
        bytes.truncate(l.data_start - 1);
        cases.push(Case {
            label: "header_padding_cut".into(),
            bytes,
            expect: vec!["data section starts at byte".into()],
            at: None,
        });
    }

    // Alignment.
    for (label, value) in [
        (
            "align_u32_0",
            kv(
                "general.alignment",
                ValueType::U32,
                0u32.to_le_bytes().to_vec(),
            ),
        ),
        (
            "align_u32_3",
            kv(
                "general.alignment",
                ValueType::U32,
                3u32.to_le_bytes().to_vec(),
            ),
        ),
        (
            "align_u32_48",
            kv(
                "general.alignment",
                ValueType::U32,
                48u32.to_le_bytes().to_vec(),
            ),
        ),
        (
            "align_u32_2e31",
            kv(
                "general.alignment",
                ValueType::U32,
                (1u32 << 31).to_le_bytes().to_vec(),
            ),
        ),
        (
            "align_u32_max",
            kv(
                "general.alignment",
                ValueType::U32,
                u32::MAX.to_le_bytes().to_vec(),
            ),
        ),
        (
            "align_u64_2e40",
            kv(
                "general.alignment",
                ValueType::U64,
                (1u64 << 40).to_le_bytes().to_vec(),
            ),
        ),
        (
            "align_u64_2e63",
            kv(
                "general.alignment",
                ValueType::U64,
                (1u64 << 63).to_le_bytes().to_vec(),
            ),
        ),
        (
            "align_i32_neg",
            kv(
                "general.alignment",
                ValueType::I32,
                (-32i32).to_le_bytes().to_vec(),
            ),
        ),
        (
            "align_string",
            kv("general.alignment", ValueType::String, gstr(b"32")),
        ),
        (
            "align_f32",
            kv(
                "general.alignment",
                ValueType::F32,
                32f32.to_le_bytes().to_vec(),
            ),
        ),
    ] {
        let mut f = b.clone();
        f.kvs.insert(1, value);
        // A string's position is that of its bytes, after the length.
        let at = f.serialize().1.kv_value[1] + if label == "align_string" { 8 } else { 0 };
        cases.push(case(
            label,
            &f,
            &["general.alignment", "not a power of two"],
            Some(at),
        ));
    }
    {
        // A valid but larger alignment than the file was laid out for.
        let mut f = b.clone();
        f.kvs.push(kv(
            "general.alignment",
            ValueType::U32,
            64u32.to_le_bytes().to_vec(),
        ));
        cases.push(case("align_64_layout_32", &f, &[], None));
        let mut f = b.clone();
        f.kvs.push(kv(
            "general.alignment",
            ValueType::U32,
            (1u32 << 30).to_le_bytes().to_vec(),
        ));
        cases.push(case("align_2e30", &f, &["truncated"], None));
    }

    // Duplicates.
    {
        let mut f = b.clone();
        let dup = f.kvs[1].clone();
        f.kvs.push(dup);
        let at = f.serialize().1.kv[5];
        cases.push(case(
            "duplicate_key",
            &f,
            &["duplicate key x.u32"],
            Some(at),
        ));
        let mut f = b.clone();
        f.kvs[4].key = f.kvs[0].key.clone();
        cases.push(case(
            "duplicate_key_other_type",
            &f,
            &["duplicate key general.architecture"],
            Some(l.kv[4]),
        ));
        let mut f = b.clone();
        f.tensors[2].name = f.tensors[0].name.clone();
        let at = f.serialize().1.tensor[2];
        cases.push(case(
            "duplicate_tensor",
            &f,
            &["duplicate tensor name tok_embd.weight"],
            Some(at),
        ));
    }

    // Invalid UTF-8 (a stray continuation byte, an overlong encoding, a surrogate, a cut char).
    for (label, bad) in [
        ("ff", &b"ab\xffcd"[..]),
        ("overlong", &b"\xc0\xaf"[..]),
        ("surrogate", &b"x\xed\xa0\x80"[..]),
        ("cut", &b"\xe4\xbd"[..]),
    ] {
        let mut f = b.clone();
        f.kvs[1].key = bad.to_vec();
        cases.push(case(
            &format!("utf8_key_{label}"),
            &f,
            &["key of record 1", "not valid UTF-8"],
            None,
        ));
        let mut f = b.clone();
        f.kvs[0].payload = gstr(bad);
        cases.push(case(
            &format!("utf8_value_{label}"),
            &f,
            &["value of key general.architecture", "not valid UTF-8"],
            None,
        ));
        let mut f = b.clone();
        f.kvs[3].payload = strings_payload(&[b"ok", bad]);
        cases.push(case(
            &format!("utf8_array_{label}"),
            &f,
            &["element 1 of array x.strings", "not valid UTF-8"],
            None,
        ));
        let mut f = b.clone();
        f.tensors[2].name = bad.to_vec();
        cases.push(case(
            &format!("utf8_tensor_{label}"),
            &f,
            &["name of tensor 2", "not valid UTF-8"],
            None,
        ));
    }
    cases
}

#[test]
fn raw_builder_matches_the_writer() {
    assert_eq!(base().bytes(), base_by_writer());
}

#[test]
fn seeds_are_valid() {
    for (name, bytes) in seeds() {
        assert!(parse_and_walk(name, bytes), "seed {name}");
    }
}

#[test]
fn targeted_cases_are_clear_errors() {
    let mut failures = Vec::new();
    for c in targeted_cases() {
        let name = format!("{}.gguf", c.label);
        let err = match parse(&name, c.bytes.clone()) {
            Ok(_) => {
                failures.push(format!("{}: parsed without error", c.label));
                continue;
            }
            Err(e) => e,
        };
        let display = err.to_string();
        let lanternfish::Error::Gguf { offset, what, .. } = &err else {
            failures.push(format!("{}: not a GGUF error: {display}", c.label));
            continue;
        };
        if !display.contains(&name) || !display.contains(&format!("at byte {offset}")) {
            failures.push(format!(
                "{}: message lacks file or offset: {display}",
                c.label
            ));
        }
        for s in &c.expect {
            if !what.contains(s.as_str()) {
                failures.push(format!("{}: {what:?} does not contain {s:?}", c.label));
            }
        }
        if let Some(at) = c.at
            && *offset != at as u64
        {
            failures.push(format!(
                "{}: error at byte {offset}, expected {at}: {what}",
                c.label
            ));
        }
        // Offsets must lie within the file (or at its end, for truncation).
        if *offset > c.bytes.len() as u64 {
            failures.push(format!(
                "{}: offset {offset} past the end of {} bytes",
                c.label,
                c.bytes.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every proper prefix of every seed that cuts into a record or a tensor's data is an error
/// mentioning truncation; prefixes that only drop trailing padding still open.
#[test]
fn truncation_at_every_byte() {
    for (seed, bytes) in seeds() {
        let full = parse(seed, bytes.clone()).unwrap();
        let data_end = full
            .tensors()
            .iter()
            .map(|t| t.offset + t.n_bytes)
            .max()
            .unwrap_or(full.data_start());
        let header_end = if full.tensors().is_empty() {
            // Without tensors the padding after the last record is not needed.
            let w_len = bytes.len() as u64;
            (0..=w_len)
                .find(|&n| parse(seed, bytes[..n as usize].to_vec()).is_ok())
                .unwrap()
        } else {
            data_end
        };
        for n in 0..bytes.len() {
            let result = parse(seed, bytes[..n].to_vec());
            if (n as u64) < header_end {
                let e = result
                    .err()
                    .unwrap_or_else(|| panic!("{seed} cut at {n} parsed"));
                let msg = e.to_string();
                assert!(
                    msg.contains("truncated") && msg.contains(seed),
                    "{seed} cut at {n}: {msg}"
                );
            } else {
                let file = result.unwrap_or_else(|e| panic!("{seed} cut at {n}: {e}"));
                assert_eq!(file.tensors(), full.tensors());
            }
        }
    }
}

/// The random part of the corpus: each file is a seed with one to four mutations (a bit flip, a
/// random byte, an interesting 8- or 4-byte value, a cut, or a duplicated slice).
fn mutants(count: usize) -> Vec<(String, Vec<u8>)> {
    const INTERESTING: [u64; 10] = [
        0,
        1,
        u64::MAX,
        i64::MAX as u64,
        i64::MIN as u64,
        u32::MAX as u64,
        0x7fff_ffff,
        0x8000_0000,
        4096,
        31,
    ];
    let seeds = seeds();
    let mut rng = Rng(0x6767_7566);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let (seed, base) = &seeds[i % seeds.len()];
        let mut bytes = base.clone();
        for _ in 0..=rng.below(4) {
            if bytes.is_empty() {
                break;
            }
            let pos = rng.below(bytes.len() as u64) as usize;
            match rng.below(6) {
                0 => bytes[pos] ^= 1 << rng.below(8),
                1 => bytes[pos] = rng.next_u64() as u8,
                2 | 3 => {
                    let v = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
                    let width = if rng.below(2) == 0 { 8 } else { 4 };
                    let end = (pos + width).min(bytes.len());
                    bytes[pos..end].copy_from_slice(&v.to_le_bytes()[..end - pos]);
                }
                4 => bytes.truncate(pos),
                _ => {
                    let end = (pos + 1 + rng.below(16) as usize).min(bytes.len());
                    let slice = bytes[pos..end].to_vec();
                    let at = rng.below(bytes.len() as u64) as usize;
                    bytes.splice(at..at, slice);
                }
            }
        }
        out.push((format!("mutant-{i:04}-{seed}"), bytes));
    }
    out
}

#[test]
fn random_mutations_never_panic() {
    let mut ok = 0;
    let mutants = mutants(4000);
    for (name, bytes) in &mutants {
        if parse_and_walk(name, bytes.clone()) {
            ok += 1;
        }
    }
    // Most mutants are rejected, some (flips inside tensor data or string contents) are valid.
    assert!(
        ok > 0 && ok < mutants.len(),
        "{ok} of {} parsed",
        mutants.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The CLI on the corpus.

struct CliRun {
    code: Option<i32>,
    stderr: String,
}

fn run_info(path: &Path, extra: &[&str]) -> CliRun {
    let out = Command::new(env!("CARGO_BIN_EXE_lanternfish"))
        .arg("info")
        .arg(path)
        .args(extra)
        .output()
        .unwrap();
    CliRun {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `lanternfish info` on `files`, two at a time; returns a line per unexpected result.
fn check_cli(files: Vec<(PathBuf, bool)>) -> Vec<String> {
    let chunks: Vec<Vec<(PathBuf, bool)>> = {
        let mid = files.len() / 2;
        let mut files = files;
        let second = files.split_off(mid);
        vec![files, second]
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                s.spawn(move || {
                    let mut problems = Vec::new();
                    for (path, valid) in chunk {
                        let name = path.file_name().unwrap().to_string_lossy().into_owned();
                        let runs = if *valid {
                            vec![
                                run_info(path, &[]),
                                run_info(path, &["--json", "--tensors", "--metadata"]),
                            ]
                        } else {
                            vec![run_info(path, &[])]
                        };
                        for r in runs {
                            let panicked = r.stderr.contains("panicked");
                            let good = if *valid {
                                r.code == Some(0) && !panicked
                            } else {
                                matches!(r.code, Some(1 | 2))
                                    && r.stderr.contains("error")
                                    && r.stderr.contains(&name)
                                    && !panicked
                            };
                            if !good {
                                problems.push(format!(
                                    "{name}: exit {:?}, stderr {:?}",
                                    r.code, r.stderr
                                ));
                            }
                        }
                    }
                    problems
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn cli_info_fails_cleanly_on_the_hostile_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: &[u8], valid: bool| {
        let path = dir.path().join(format!("{name}.gguf"));
        std::fs::write(&path, bytes).unwrap();
        files.push((path, valid));
    };
    for (name, bytes) in seeds() {
        write(&format!("seed-{name}"), &bytes, true);
    }
    for c in targeted_cases() {
        write(&format!("case-{}", c.label), &c.bytes, false);
    }
    // Truncations of the all-types seed at every 16th byte (every field kind gets cut).
    let (_, all) = &seeds()[1];
    let data_start = parse("x", all.clone()).unwrap().data_start() as usize;
    for n in (0..data_start)
        .step_by(16)
        .chain([0, 1, 3, 4, 7, 8, 23, 24])
    {
        write(&format!("trunc-{n:05}"), &all[..n], false);
    }
    // Mutants, valid or not; the reader's verdict decides what the CLI must do.
    for (name, bytes) in mutants(300) {
        let valid = parse(&name, bytes.clone()).is_ok();
        write(&name, &bytes, valid);
    }
    let total = files.len();
    assert!(total >= 250, "{total} files");
    let start = std::time::Instant::now();
    let problems = check_cli(files);
    eprintln!("lanternfish info on {total} files: {:.1?}", start.elapsed());
    assert!(
        problems.is_empty(),
        "{} of {total} files:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn cli_reports_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_info(&dir.path().join("nope.gguf"), &[]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("error") && r.stderr.contains("nope.gguf"),
        "{}",
        r.stderr
    );
    let r = run_info(dir.path(), &[]);
    assert!(
        matches!(r.code, Some(1 | 2)) && r.stderr.contains("error"),
        "{}",
        r.stderr
    );
}

/// Writes the fuzzing seed corpus (`fuzz/corpus/gguf_parse/`): the valid seeds above, plus a few
/// targeted cases so the fuzzer starts next to the error paths.
#[test]
#[ignore = "regenerates fuzz/corpus/gguf_parse; run by hand (see fuzz/README.md)"]
fn write_fuzz_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/gguf_parse");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(dir.join(format!("seed-{name}.gguf")), bytes).unwrap();
    }
    for c in targeted_cases().into_iter().step_by(7) {
        std::fs::write(dir.join(format!("case-{}.gguf", c.label)), c.bytes).unwrap();
    }
}

/// Regression: counts are bounded by the file's length, but a multi-gigabyte file (a real model,
/// or here a sparse one) with a corrupt count used to make the reader reserve memory for billions
/// of records up front, which aborts the process. The reservation is now capped, so the first
/// bad record is reported as usual.
#[test]
fn huge_counts_in_a_huge_file_reserve_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let len: u64 = 16 << 30;
    for (label, n_tensors, n_kv, expect) in [
        (
            "kv",
            0,
            (len - 24) / 13,
            "at byte 24: key of record 0 is empty",
        ),
        (
            "tensors",
            (len - 24) / 32,
            0,
            "at byte 32: tensor  has 0 dimensions",
        ),
    ] {
        let path = dir.path().join(format!("sparse-{label}.gguf"));
        let file = std::fs::File::create(&path).unwrap();
        let mut header = b"GGUF".to_vec();
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&n_tensors.to_le_bytes());
        header.extend_from_slice(&n_kv.to_le_bytes());
        std::io::Write::write_all(&mut &file, &header).unwrap();
        if file.set_len(len).is_err() {
            eprintln!("skipped: this file system cannot hold a sparse {len}-byte file");
            return;
        }
        drop(file);
        let msg = GgufFile::open(&path).unwrap_err().to_string();
        assert!(msg.contains(expect), "{msg}");
    }
}
