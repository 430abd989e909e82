//! `lanternfish quantize` end to end: quantizing the F16 tiny models gives files byte-identical to
//! what llama.cpp's `llama-quantize` wrote from the same input (tests/golden/tiny/README.md), and
//! bad requests fail with a one-line error.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/tiny/gguf")
        .join(name)
}

fn lanternfish(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lanternfish"))
        .args(args)
        .output()
        .unwrap()
}

fn quantize_matches_llama_quantize(source: &str, mix: &str, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let src = golden(source);
    let result = lanternfish(&[
        "quantize",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        mix,
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let ours = std::fs::read(&out).unwrap();
    let theirs = std::fs::read(golden(expected)).unwrap();
    assert_eq!(ours.len(), theirs.len(), "file sizes differ");
    let first_difference = ours.iter().zip(&theirs).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "first differing byte");
    // No temporary file is left beside the output.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn q4_k_m_is_byte_identical_to_llama_quantize() {
    quantize_matches_llama_quantize("tiny-v3-F16.gguf", "q4_k_m", "tiny-v3-Q4_K_M.gguf");
    quantize_matches_llama_quantize("tiny-v2-F16.gguf", "q4_k_m", "tiny-v2-Q4_K_M.gguf");
}

#[test]
fn q4_0_is_byte_identical_to_llama_quantize() {
    quantize_matches_llama_quantize("tiny-v3-F16.gguf", "q4_0", "tiny-v3-Q4_0.gguf");
}

#[test]
fn every_type_gives_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = golden("tiny-v3-F16.gguf");
    for mix in lanternfish::quantize::QuantMix::NAMES {
        let out = dir.path().join(format!("{mix}.gguf"));
        let result = lanternfish(&[
            "quantize",
            src.to_str().unwrap(),
            out.to_str().unwrap(),
            "--type",
            mix,
        ]);
        assert!(
            result.status.success(),
            "{mix}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        let info = lanternfish(&["info", out.to_str().unwrap(), "--json"]);
        assert!(info.status.success(), "{mix}");
        let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        let mix = lanternfish::quantize::QuantMix::from_name(mix).unwrap();
        assert_eq!(json["file_type"]["id"], u64::from(mix.file_type()));
        assert_eq!(json["tensor_count"], 70);
    }
}

#[test]
fn requantizing_needs_a_flag_and_bad_types_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let quantized = golden("tiny-v3-Q4_0.gguf");
    let result = lanternfish(&[
        "quantize",
        quantized.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        "q8_0",
    ]);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.starts_with("error:") && stderr.contains("--allow-requantize"),
        "{stderr}"
    );
    assert!(!out.exists());

    let result = lanternfish(&[
        "quantize",
        quantized.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        "q8_0",
        "--allow-requantize",
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );

    let result = lanternfish(&[
        "quantize",
        quantized.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        "iq2_xxs",
    ]);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("q4_k_m"));
}

#[test]
fn tensor_writes_npy_outermost_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.npy");
    let src = golden("tiny-v3-Q4_K_M.gguf");
    let result = lanternfish(&[
        "tensor",
        src.to_str().unwrap(),
        "blk.1.ffn_up_exps.weight",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let header = String::from_utf8_lossy(&bytes[10..128]);
    // GGUF ne = {256, 64, 16} → numpy (16, 64, 256).
    assert!(header.contains("'shape': (16, 64, 256)"), "{header}");
    assert_eq!(bytes.len() % 64, 0);
    assert!(bytes.len() >= 16 * 64 * 256 * 4);

    let missing = lanternfish(&[
        "tensor",
        src.to_str().unwrap(),
        "no.such.tensor",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no tensor named no.such.tensor"));
}
