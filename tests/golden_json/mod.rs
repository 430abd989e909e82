//! Reading recorded goldens (JSON) and comparing log-probabilities with them, shared by the tests
//! that teacher-force our models along llama.cpp's recordings. Include with `mod golden_json;`.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use serde_json::Value as Json;

/// The JSON file at `path` relative to the repository root; a missing file names itself.
pub fn read(path: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of token ids.
pub fn ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// `log softmax(row)` in f64, max-subtracted.
pub fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = row
        .iter()
        .map(|&x| (x as f64 - max).exp())
        .sum::<f64>()
        .ln()
        + max;
    row.iter().map(|&x| x as f64 - lse).collect()
}
