//! The tiny deepseek2 goldens (tests/golden/tiny/README.md): file access, `.npy` reading and the
//! logits comparison shared by the CPU-reference and GPU-engine tests. Include with
//! `mod tiny_golden;`.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use lanternfish::gguf::GgufModel;

pub fn golden(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/tiny")
        .join(path)
}

/// A little-endian `.npy` file (`<f4` or `<i4`, C order): shape outermost first, values as f32.
pub fn read_npy(path: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(golden(path)).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path}");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'fortran_order': False"),
        "{path}: {header}"
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data = &bytes[10 + header_len..];
    let words = data.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
    let values: Vec<f32> = if header.contains("'descr': '<f4'") {
        words.map(f32::from_le_bytes).collect()
    } else if header.contains("'descr': '<i4'") {
        words.map(|w| i32::from_le_bytes(w) as f32).collect()
    } else {
        panic!("{path}: unsupported dtype in {header}")
    };
    assert_eq!(values.len(), shape.iter().product::<usize>(), "{path}");
    (shape, values)
}

pub fn inputs(model: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(golden(&format!("{model}/inputs.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

pub fn open(file: &str) -> GgufModel {
    GgufModel::open(&golden(&format!("gguf/{file}"))).unwrap()
}

pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

pub fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// max|Δ| ≤ 1e-3·max|ref| and the same argmax in every row of `n_vocab`.
pub fn assert_logits_match(what: &str, ours: &[f32], reference: &[f32], n_vocab: usize) {
    let diff = max_abs_diff(ours, reference);
    let bound = 1e-3 * max_abs(reference);
    assert!(diff <= bound, "{what}: max |Δlogit| {diff:e} > {bound:e}");
    for (pos, (a, b)) in ours
        .chunks_exact(n_vocab)
        .zip(reference.chunks_exact(n_vocab))
        .enumerate()
    {
        assert_eq!(
            argmax(a),
            argmax(b),
            "{what}: top-1 differs at position {pos}"
        );
    }
    eprintln!(
        "{what}: max |Δlogit| = {diff:.2e} (max |logit| {:.2})",
        max_abs(reference)
    );
}
