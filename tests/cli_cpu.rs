//! `tokenize`, `run` and `logits` on the CPU backend, end to end through the binary, against the HF
//! goldens of the tiny V3-style model (tests/golden/tiny/README.md).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> PathBuf {
    root().join("tests/golden/tiny/gguf/tiny-v3-F16.gguf")
}

fn inputs() -> serde_json::Value {
    let text =
        std::fs::read_to_string(root().join("tests/golden/tiny/tiny-v3/inputs.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn lanternfish(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_lanternfish"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn ids(value: &serde_json::Value) -> Vec<u64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn joined(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn tokenize_matches_the_reference_ids() {
    let inputs = inputs();
    let chat = &inputs["chat"];
    let out = lanternfish(&[
        "tokenize",
        "--model",
        model().to_str().unwrap(),
        chat["text"].as_str().unwrap(),
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&json["ids"]), ids(&chat["ids"]));
}

#[test]
fn greedy_run_continues_like_hf() {
    let inputs = inputs();
    let chat = &inputs["chat"];
    let prompt = joined(&ids(&chat["ids"]));
    let out = lanternfish(&[
        "run",
        "--model",
        model().to_str().unwrap(),
        "--tokens",
        &prompt,
        "-n",
        "32",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&json["generated_tokens"]), ids(&chat["greedy"]));
}

#[test]
fn logits_npy_matches_the_golden_logits() {
    let inputs = inputs();
    let fixed = ids(&inputs["fixed"]["ids"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("logits.npy");
    lanternfish(&[
        "logits",
        "--model",
        model().to_str().unwrap(),
        "--tokens",
        &joined(&fixed),
        "--all-positions",
        "--out",
        out.to_str().unwrap(),
    ]);
    let ours = std::fs::read(&out).unwrap();
    let golden = std::fs::read(root().join("tests/golden/tiny/tiny-v3/fixed_logits.npy")).unwrap();
    // Both are version-1.0 .npy files of little-endian f32 with a 64-byte-aligned header.
    let data = |bytes: &[u8]| -> Vec<f32> {
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        bytes[10 + header_len..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let (ours, golden) = (data(&ours), data(&golden));
    assert_eq!(ours.len(), golden.len());
    let max_abs = golden.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_err = ours
        .iter()
        .zip(&golden)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    // The tolerance: max |Δlogit| ≤ 1e-3 × max |logit|.
    assert!(
        max_err <= 1e-3 * max_abs,
        "max error {max_err}, max |logit| {max_abs}"
    );
}

#[test]
fn chat_prompt_uses_the_template() {
    let out = lanternfish(&[
        "run",
        "--model",
        model().to_str().unwrap(),
        "--prompt",
        "Hi",
        "--chat",
        "-n",
        "2",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prompt = ids(&json["prompt_tokens"]);
    // <｜begin▁of▁sentence｜> … <｜User｜>Hi<｜Assistant｜> in the mini vocabulary (4003/4004 are
    // the User/Assistant tokens, tests/golden/tiny/tiny-v3/inputs.json).
    assert_eq!(prompt.first(), Some(&0));
    assert!(
        prompt.contains(&4003) && prompt.last() == Some(&4004),
        "{prompt:?}"
    );
}

/// `lanternfish tokenize … | head`: the reader closing the pipe ends the command quietly
/// (status 141, as a C tool killed by SIGPIPE), without a panic report. The output (~320 KB) is
/// larger than a pipe's buffer, so the command meets the closed pipe whenever it starts writing.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let text = "hello world ".repeat(8000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanternfish"))
        .args([
            "tokenize",
            "--model",
            model().to_str().unwrap(),
            "--json",
            &text,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}
