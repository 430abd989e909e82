//! The GGUF-metadata tokenizer against the real DeepSeek-V3 and V4 tokenizers.
//!
//! Goldens (tests/golden/tokenizer/, see its README): `ids.json` holds the ids the `tokenizers`
//! package gives with the real tokenizer.json files over a diverse corpus; V3 is read from the
//! real vocab-only GGUF, V4 is converted here from its tokenizer.json (less the vocabulary and
//! merges it shares with V3) by `tokenizer::hf`. When the steering repo's shared/ folder is
//! beside the checkout, `shared_tokenizer_json_equivalence` also compares with
//! `tokenizers::Tokenizer::from_file` directly on many more strings.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lanternfish::gguf::{GgufFile, GgufModel, GgufWriter, MetaValue, ValueType};
use lanternfish::tokenizer::{self, TokenType, Tokenizer, hf};
use serde_json::Value as Json;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/tokenizer")
        .join(name)
}

fn read_json(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A GGUF held in memory, from metadata pairs.
fn gguf_from_metadata(meta: Vec<(String, MetaValue)>) -> GgufModel {
    let mut w = GgufWriter::new();
    w.set(
        "general.architecture",
        MetaValue::String("deepseek2".into()),
    );
    for (k, v) in meta {
        w.set(&k, v);
    }
    let mut bytes = Vec::new();
    w.write_to(&mut bytes).unwrap();
    GgufModel::from_parts(vec![
        GgufFile::from_bytes(Path::new("mem.gguf"), bytes).unwrap(),
    ])
    .unwrap()
}

fn v3_gguf() -> GgufModel {
    GgufModel::open(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/tokenizers/deepseek-v3.gguf"),
    )
    .unwrap()
}

fn v3() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::from_gguf(&v3_gguf()).unwrap())
}

/// V4's tokenizer.json rebuilt from the committed parts: its own added tokens and settings,
/// and the vocabulary (rows 0..128000) and merges of the V3 GGUF, which the golden tool checked
/// to be identical to V4's.
fn v4_tokenizer_json() -> Json {
    let mut json = read_json(&golden("deepseek-v4-added.json"));
    let note = json["lanternfish_note"].clone();
    let model = v3_gguf();
    let array = |key: &str| -> Vec<String> {
        let v = model.get(key).unwrap().as_array().unwrap();
        v.strings().map(str::to_owned).collect()
    };
    let n_vocab = note["vocab_len"].as_u64().unwrap() as usize;
    let vocab: serde_json::Map<String, Json> = array(tokenizer::KEY_TOKENS)
        .into_iter()
        .take(n_vocab)
        .enumerate()
        .map(|(id, text)| (text, Json::from(id)))
        .collect();
    assert_eq!(
        vocab.len(),
        n_vocab,
        "V3 rows 0..{n_vocab} are not distinct"
    );
    let merges = array(tokenizer::KEY_MERGES);
    assert_eq!(merges.len() as u64, note["merges_len"].as_u64().unwrap());
    json["model"]["vocab"] = Json::Object(vocab);
    json["model"]["merges"] = Json::from(merges);
    json
}

fn v4() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let json = v4_tokenizer_json();
        let config = read_json(&golden("deepseek-v4-tokenizer_config.json"));
        // V4's pre-tokenizer is V3's, step for step (three isolated splits, then byte-level).
        let pre = hf::detect_pre(&json).unwrap();
        assert_eq!(pre, "deepseek-v3");
        let meta = hf::gguf_metadata(&json, Some(&config), pre, None).unwrap();
        Tokenizer::from_gguf(&gguf_from_metadata(meta)).unwrap()
    })
}

struct Case {
    name: String,
    text: String,
    case: Json,
}

fn cases() -> Vec<Case> {
    let json = read_json(&golden("ids.json"));
    let cases = json["cases"].as_array().unwrap();
    cases
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_owned(),
            text: c["text"].as_str().unwrap().to_owned(),
            case: c.clone(),
        })
        .collect()
}

fn ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Encodes and decodes every golden case; reports all mismatches at once.
fn check_goldens(tok: &Tokenizer, version: &str) {
    let mut failures = Vec::new();
    let all = cases();
    for Case { name, text, case } in &all {
        let want = ids(&case[version]);
        let got = tok.encode(text, false).unwrap();
        if got != want {
            failures.push(format!("{name}: ids\n  want {want:?}\n  got  {got:?}"));
        }
        let want_text = case
            .get(format!("{version}_decoded"))
            .and_then(Json::as_str)
            .unwrap_or(text);
        let decoded = tok.decode(&want);
        if decoded != want_text {
            failures.push(format!("{name}: decode {decoded:?} != {want_text:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    assert!(
        all.iter()
            .any(|c| c.name == "long_10k" && c.text.chars().count() == 10_000)
    );
}

#[test]
fn v3_ids_match_hugging_face() {
    check_goldens(v3(), "v3");
}

#[test]
fn v4_ids_match_hugging_face() {
    check_goldens(v4(), "v4");
}

/// With special-token parsing off, CONTROL texts are plain text (llama.cpp's rule) while
/// USER_DEFINED tokens stay whole. Hugging Face only leaves `special: true` tokens unparsed, and
/// the converter makes some `special: false` tokens CONTROL (`<｜User｜>` …), so the goldens are
/// exact only where Hugging Face's ids hold no CONTROL token.
#[test]
fn plain_text_mode_never_yields_control_tokens() {
    let mut exact = 0;
    for (tok, version) in [(v3(), "v3"), (v4(), "v4")] {
        for Case { name, text, case } in cases() {
            let got = tok.encode_with(&text, false, false).unwrap();
            let has_control = |ids: &[u32]| {
                ids.iter()
                    .any(|&id| tok.token_type(id) == Some(TokenType::Control))
            };
            assert!(!has_control(&got), "{version} {name}: {got:?}");
            assert_eq!(
                tok.decode(&got),
                tok.decode(&tok.encode(&text, false).unwrap())
            );
            let want = ids(case
                .get(format!("{version}_plain"))
                .unwrap_or(&case[version]));
            if !has_control(&want) {
                assert_eq!(got, want, "{version} {name}");
                exact += 1;
            }
        }
    }
    assert!(exact > 400, "only {exact} exact comparisons");
    // `<think>` is USER_DEFINED in V4: one token even as plain text.
    let think = v4().token_id("<think>").unwrap();
    assert_eq!(
        v4().encode_with("<think>x", false, false).unwrap()[0],
        think
    );
}

/// The llama.cpp/HF goldens of the shared golden set (ids without BOS, full V3 vocabulary).
#[test]
fn llama_cpp_tokenizer_goldens() {
    let json = read_json(&golden("tokenizer-golden.json"));
    let cases = json["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 19);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            v3().encode(text, false).unwrap(),
            ids(&case["full_ids"]),
            "{text:?}"
        );
    }
}

#[test]
fn special_ids_and_flags() {
    let (t3, t4) = (v3(), v4());
    assert_eq!(t3.vocab_size(), 129_280);
    assert_eq!(t4.vocab_size(), 129_280);
    assert_eq!(t3.pre(), "deepseek-v3");
    for t in [t3, t4] {
        assert_eq!(t.bos(), Some(0));
        assert_eq!(t.eos(), Some(1));
        assert!(t.is_eog(1));
        assert!(!t.is_eog(0));
        assert_eq!(t.token_text(0), Some("<｜begin▁of▁sentence｜>"));
        assert_eq!(
            t.token_type(t.token_id("<｜User｜>").unwrap()),
            Some(TokenType::Control)
        );
    }
    // tokenizer_config.json: V3 adds BOS, V4 does not.
    assert!(t3.add_bos_token());
    assert!(!t4.add_bos_token());
    // `<|EOT|>` is a coder marker, not an end-of-generation token (spec §7.2).
    let eot_text = t3.token_id("<|EOT|>").unwrap();
    assert_eq!(eot_text, 128_805);
    assert!(!t3.is_eog(eot_text));
    assert_eq!(t3.eog_ids().collect::<Vec<_>>(), [1]);
    // Rows beyond the tokenizer are padding.
    assert_eq!(t3.token_text(128_815), Some("[PAD128815]"));
    assert_eq!(t3.token_type(128_815), Some(TokenType::Unused));
    assert_eq!(t3.decode(&[128_815]), "");
    for text in ["<think>", "</think>", "｜DSML｜", "<dsml:", "<｜/table>｜"] {
        let id = t4.token_id(text).unwrap();
        assert_eq!(t4.token_type(id), Some(TokenType::UserDefined), "{text}");
    }
    assert_eq!(
        t4.token_type(t4.token_id("<｜table｜>").unwrap()),
        Some(TokenType::Control)
    );
    assert_eq!(t3.token_id("<think>"), None);
}

#[test]
fn bos_is_added_once() {
    let t = v3();
    let plain = t.encode("Hello", false).unwrap();
    assert_eq!(plain, [19923]);
    assert_eq!(t.encode("Hello", true).unwrap(), [0, 19923]);
    // A rendered template already starts with the BOS text: no second BOS.
    let rendered = "<｜begin▁of▁sentence｜>Hello";
    assert_eq!(t.encode(rendered, true).unwrap(), [0, 19923]);
    assert_eq!(t.encode(rendered, false).unwrap(), [0, 19923]);
    // As plain text the BOS string is not a BOS token, so one is added in front.
    let as_text = t.encode_with(rendered, true, false).unwrap();
    assert_eq!(as_text[0], 0);
    assert_ne!(as_text[1], 0);
    // Two BOS texts written by the caller are kept: only adding is suppressed.
    assert_eq!(
        &t.encode("<｜begin▁of▁sentence｜><｜begin▁of▁sentence｜>", true)
            .unwrap(),
        &[0, 0]
    );
}

/// Pushes ids one at a time; returns the chunks.
fn stream_chunks(tok: &Tokenizer, ids: &[u32], skip_special: bool) -> Vec<String> {
    let mut s = tok.stream().skip_special(skip_special);
    let mut chunks: Vec<String> = ids.iter().map(|&id| s.push(id)).collect();
    chunks.push(s.finish());
    chunks
}

#[test]
fn streaming_yields_whole_characters() {
    let t = v3();
    let mut split_chars = 0;
    for Case { name, text, .. } in cases() {
        let ids = t.encode(&text, false).unwrap();
        let chunks = stream_chunks(t, &ids, false);
        assert_eq!(chunks.concat(), t.decode(&ids), "{name}");
        for (i, chunk) in chunks.iter().enumerate() {
            assert!(
                !chunk.contains('\u{FFFD}') || text.contains('\u{FFFD}'),
                "{name} chunk {i}"
            );
        }
        // Tokens that end inside a character give no text until the character is complete.
        split_chars += ids
            .iter()
            .filter(|&&id| std::str::from_utf8(t.piece(id, false)).is_err())
            .count();
    }
    assert!(
        split_chars > 100,
        "the corpus splits only {split_chars} characters"
    );

    // "🦙" is one token per byte group here; feed its bytes' tokens one by one.
    let ids = t.encode("a🦙", false).unwrap();
    assert!(ids.len() > 2, "{ids:?}");
    let chunks = stream_chunks(t, &ids, false);
    assert_eq!(chunks[0], "a");
    assert!(
        chunks[1..ids.len() - 1].iter().all(String::is_empty),
        "{chunks:?}"
    );
    assert_eq!(chunks[ids.len() - 1], "🦙");
}

#[test]
fn streaming_replaces_bytes_that_cannot_complete() {
    let t = v3();
    let byte = |b: u8| -> u32 {
        (0..t.vocab_size() as u32)
            .find(|&id| t.token_type(id) == Some(TokenType::Normal) && t.piece(id, false) == [b])
            .unwrap()
    };
    let a = t.encode("A", false).unwrap()[0];
    // A lone continuation byte is invalid at once; a lead byte waits for its continuation.
    let ids = [
        byte(0x80),
        a,
        byte(0xE4),
        byte(0xBD),
        byte(0xA0),
        byte(0xE4),
        a,
        byte(0xF0),
    ];
    let mut s = t.stream();
    let chunks: Vec<String> = ids.iter().map(|&id| s.push(id)).collect();
    assert_eq!(chunks, ["\u{FFFD}", "A", "", "", "你", "", "\u{FFFD}A", ""]);
    assert!(s.has_pending());
    assert_eq!(s.finish(), "\u{FFFD}");
    let mut all = chunks.concat();
    all.push('\u{FFFD}');
    assert_eq!(all, t.decode(&ids));
}

#[test]
fn special_tokens_can_be_hidden() {
    let t = v3();
    let ids = t
        .encode("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>", false)
        .unwrap();
    assert_eq!(stream_chunks(t, &ids, true).concat(), "Hi");
    assert_eq!(t.decode_with(&ids, true), "Hi");
    assert_eq!(
        t.decode(&ids),
        "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>"
    );
    // USER_DEFINED tokens are text and always shown.
    let ids = v4().encode("<think>ok</think>", false).unwrap();
    assert_eq!(v4().decode_with(&ids, true), "<think>ok</think>");
}

/// A small byte-level vocabulary (all 256 stand-ins, a few merges) under a given pre value.
fn tiny_metadata(pre: &str) -> Vec<(String, MetaValue)> {
    let mut tokens: Vec<String> = (0..0x200u32)
        .filter_map(char::from_u32)
        .filter(|&c| {
            let mut buf = [0u8; 4];
            // The stand-ins are exactly the characters that decode to one byte.
            gpt2_byte_of(c.encode_utf8(&mut buf)).is_some()
        })
        .map(String::from)
        .collect();
    assert_eq!(tokens.len(), 256);
    let merges = ["Ġ t", "h e", "Ġt he", "1 2", "12 3"];
    tokens.extend(["Ġt", "he", "Ġthe", "12", "123", "<|bos|>", "<|end|>"].map(String::from));
    let n = tokens.len();
    let mut types = vec![MetaValue::I32(1); n];
    types[n - 2] = MetaValue::I32(3);
    types[n - 1] = MetaValue::I32(3);
    vec![
        (
            "tokenizer.ggml.model".into(),
            MetaValue::String("gpt2".into()),
        ),
        ("tokenizer.ggml.pre".into(), MetaValue::String(pre.into())),
        ("tokenizer.ggml.tokens".into(), MetaValue::strings(tokens)),
        (
            "tokenizer.ggml.token_type".into(),
            MetaValue::Array(ValueType::I32, types),
        ),
        ("tokenizer.ggml.merges".into(), MetaValue::strings(merges)),
        (
            "tokenizer.ggml.bos_token_id".into(),
            MetaValue::U32(n as u32 - 2),
        ),
    ]
}

/// GPT-2's byte for a stand-in character, via a vocabulary-free route: the characters that are
/// printable Latin-1 stand for themselves, U+0100.. for the rest in byte order.
fn gpt2_byte_of(s: &str) -> Option<u8> {
    let c = s.chars().next()? as u32;
    let printable = |b: u32| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    if c < 256 {
        return printable(c).then_some(c as u8);
    }
    (0..256u32)
        .filter(|&b| !printable(b))
        .nth((c - 256) as usize)
        .map(|b| b as u8)
}

#[test]
fn every_supported_pre_tokenizer_round_trips() {
    let text = "the 12345 the tests' THE\n\tthe你好 ¡ñ! 🦙 <|end|>";
    for pre in tokenizer::supported_pre_tokenizers() {
        let t = Tokenizer::from_gguf(&gguf_from_metadata(tiny_metadata(pre))).unwrap();
        let ids = t.encode(text, false).unwrap();
        assert_eq!(t.decode(&ids), text, "{pre}");
        assert_eq!(
            *ids.last().unwrap(),
            t.vocab_size() as u32 - 1,
            "{pre}: {ids:?}"
        );
        assert!(
            t.is_eog(t.vocab_size() as u32 - 1),
            "{pre}: <|end|> ends generation"
        );
        let the = t.token_id("Ġthe").unwrap();
        assert!(ids.contains(&the), "{pre}: merges not applied: {ids:?}");
    }
    let by = |pre: &str| {
        let t = Tokenizer::from_gguf(&gguf_from_metadata(tiny_metadata(pre))).unwrap();
        t.encode("12345", false).unwrap().len()
    };
    // Digits in groups of three (then BPE merges "123"), or one by one.
    assert_eq!(by("deepseek-v3"), 3);
    assert_eq!(by("qwen2"), 5);
    // The default for add_bos_token when the file does not say: llama.cpp's, per family.
    let t = Tokenizer::from_gguf(&gguf_from_metadata(tiny_metadata("llama-bpe"))).unwrap();
    assert!(t.add_bos_token());
    let t = Tokenizer::from_gguf(&gguf_from_metadata(tiny_metadata("deepseek-llm"))).unwrap();
    assert!(!t.add_bos_token());
}

#[test]
fn unsupported_metadata_is_a_clear_error() {
    let err = Tokenizer::from_gguf(&gguf_from_metadata(tiny_metadata("jais-x"))).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("\"jais-x\"") && msg.contains("deepseek-v3"),
        "{msg}"
    );

    let mut meta = tiny_metadata("deepseek-v3");
    meta.retain(|(k, _)| k != "tokenizer.ggml.pre");
    let msg = Tokenizer::from_gguf(&gguf_from_metadata(meta))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("tokenizer.ggml.pre"), "{msg}");

    let mut meta = tiny_metadata("deepseek-v3");
    meta[0].1 = MetaValue::String("llama".into());
    let msg = Tokenizer::from_gguf(&gguf_from_metadata(meta))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("\"llama\""), "{msg}");

    let mut meta = tiny_metadata("deepseek-v3");
    meta.push((
        "tokenizer.ggml.eos_token_id".into(),
        MetaValue::U32(1_000_000),
    ));
    let msg = Tokenizer::from_gguf(&gguf_from_metadata(meta))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("1000000"), "{msg}");

    let mut meta = tiny_metadata("deepseek-v3");
    meta.push(("tokenizer.ggml.merges".into(), MetaValue::strings(["Ġ q"])));
    let msg = Tokenizer::from_gguf(&gguf_from_metadata(meta))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("BPE"), "{msg}");
}

/// Deterministic strings cut from the corpus at random character boundaries and glued
/// together: joins that no hand-written case has.
fn recombined(texts: &[String], count: usize) -> Vec<String> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let chars: Vec<Vec<char>> = texts.iter().map(|t| t.chars().collect()).collect();
    (0..count)
        .map(|_| {
            let mut s = String::new();
            for _ in 0..1 + next(4) {
                let c = &chars[next(chars.len())];
                let a = next(c.len() + 1);
                let b = (a + next(40)).min(c.len());
                s.extend(&c[a..b]);
            }
            s
        })
        .collect()
}

/// Direct comparison with `tokenizers::Tokenizer::from_file` on the real tokenizer.json files,
/// and of our converter with llama.cpp's conversion of V3. Skipped (with a note) when the
/// steering repo's shared/ folder is not beside the checkout.
#[test]
fn shared_tokenizer_json_equivalence() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tokenizers");
    if !shared.join("deepseek-v3/tokenizer.json").exists() {
        eprintln!("skipped: {} not found", shared.display());
        return;
    }
    let texts: Vec<String> = cases().into_iter().map(|c| c.text).collect();
    let mut inputs = texts.clone();
    inputs.extend(recombined(&texts, 3000));
    for version in ["deepseek-v3", "deepseek-v4"] {
        let path = shared.join(version).join("tokenizer.json");
        let reference = tokenizers::Tokenizer::from_file(&path).unwrap();
        let json = read_json(&path);
        let config = read_json(&shared.join(version).join("tokenizer_config.json"));
        let pre = hf::detect_pre(&json).unwrap();
        assert_eq!(pre, "deepseek-v3", "{version}");
        let meta = hf::gguf_metadata(&json, Some(&config), pre, Some(129_280)).unwrap();
        if version == "deepseek-v3" {
            same_as_real_v3_gguf(&meta);
        }
        let ours = Tokenizer::from_gguf(&gguf_from_metadata(meta)).unwrap();
        for text in &inputs {
            let want = reference.encode(text.as_str(), false).unwrap();
            let got = ours.encode(text, false).unwrap();
            assert_eq!(got, want.get_ids(), "{version}: {text:?}");
            assert_eq!(
                ours.decode(&got),
                reference.decode(&got, false).unwrap(),
                "{version}: {text:?}"
            );
        }
    }
}

/// Our tokenizer.json → GGUF conversion gives what llama.cpp's converter wrote for V3.
fn same_as_real_v3_gguf(meta: &[(String, MetaValue)]) {
    let real = v3_gguf();
    for (key, value) in meta {
        let stored = MetaValue::from(real.get(key).unwrap_or_else(|| panic!("{key} missing")));
        assert!(stored == *value, "{key} differs from the real conversion");
    }
    assert_eq!(meta.len(), 11);
}
