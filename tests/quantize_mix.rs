//! The per-tensor type rules of `lanternfish quantize` against the types llama.cpp's
//! `llama-quantize` chose for the same tensors (tests/golden/llamacpp-mix/README.md).

#![allow(clippy::unwrap_used)]

use lanternfish::quant::GgmlType;
use lanternfish::quantize::{QuantMix, target_type};

fn check(file: &str, mix: QuantMix) {
    let path = format!(
        "{}/tests/golden/llamacpp-mix/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let n_layer = manifest["block_count"].as_u64().unwrap();
    let tensors = manifest["tensors"].as_array().unwrap();
    let has_output = tensors.iter().any(|t| t[0] == "output.weight");
    let mut mismatches = Vec::new();
    for t in tensors {
        let name = t[0].as_str().unwrap();
        let shape: Vec<u64> = t[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        let expected = GgmlType::from_name(t[2].as_str().unwrap()).unwrap();
        // Tensors llama.cpp leaves alone are F32 in these converted files.
        let ours = target_type(mix, name, &shape, n_layer, has_output).unwrap_or(GgmlType::F32);
        if ours != expected {
            mismatches.push(format!(
                "{name} {shape:?}: llama.cpp {expected}, ours {ours}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{file}:\n{}", mismatches.join("\n"));
    assert_eq!(
        manifest["file_type"]["id"].as_u64().unwrap(),
        u64::from(mix.file_type())
    );
}

#[test]
fn q4_k_m_matches_llama_quantize_v2() {
    check("tiny-v2-Q4_K_M.json", QuantMix::Q4KM);
}

#[test]
fn q4_k_m_matches_llama_quantize_v3() {
    check("tiny-v3-Q4_K_M.json", QuantMix::Q4KM);
}

#[test]
fn q4_0_matches_llama_quantize_v3() {
    check("tiny-v3-Q4_0.json", QuantMix::Uniform(GgmlType::Q4_0));
}
