//! Chat templates against Python: every template × conversation in
//! `tests/golden/chat_template/goldens.json` (made by `tools/make_template_goldens.py` with Jinja2
//! the way Hugging Face renders) must come out byte for byte, or fail where Python fails. Plus the
//! GGUF side: templates and special-token texts read from a file, built-in fallbacks by
//! architecture, and errors.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use lanternfish::Error;
use lanternfish::chat_template::{
    Builtin, ChatMessage, ChatTemplate, RenderOptions, TemplateOrigin, ToolCall,
};
use lanternfish::gguf::{GgufModel, GgufWriter, MetaValue};
use serde_json::Value as Json;

const BOS: &str = "<｜begin▁of▁sentence｜>";
const EOS: &str = "<｜end▁of▁sentence｜>";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn goldens() -> Json {
    let path = root().join("tests/golden/chat_template/goldens.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn options(case: &Json, now_unix: u64) -> RenderOptions {
    RenderOptions {
        add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap(),
        tools: serde_json::from_value(case["tools"].clone()).unwrap(),
        extra: serde_json::from_value(case["extra"].clone()).unwrap(),
        now: Some(UNIX_EPOCH + Duration::from_secs(now_unix)),
    }
}

#[test]
fn renders_like_python_jinja2() {
    let golden = goldens();
    let bos = golden["bos_token"].as_str().unwrap();
    let eos = golden["eos_token"].as_str().unwrap();
    let now = golden["now_unix"].as_u64().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, info) in golden["templates"].as_object().unwrap() {
        let source = info["source"].as_str().unwrap();
        let on_disk = std::fs::read_to_string(root().join(info["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            on_disk, source,
            "{name}: template changed since the goldens were made; rerun the generator"
        );
        let template = ChatTemplate::new(source, bos, eos).unwrap();
        for case in golden["cases"].as_array().unwrap() {
            let case_name = case["name"].as_str().unwrap();
            let messages: Vec<ChatMessage> =
                serde_json::from_value(case["messages"].clone()).unwrap();
            let got = template.render(&messages, &options(case, now));
            let want = &golden["expected"][name][case_name];
            match (want.get("output").and_then(Json::as_str), got) {
                (Some(want), Ok(got)) if got == want => {}
                (Some(want), got) => failures.push(format!(
                    "{name}/{case_name}:\n  want {want:?}\n  got  {got:?}"
                )),
                (None, Ok(got)) => failures.push(format!(
                    "{name}/{case_name}: Python fails, Rust rendered {got:?}"
                )),
                (None, Err(err)) => {
                    // A template's own raise_exception message must survive; other Python errors
                    // (TypeError, UndefinedError) only need to be errors here too.
                    let python = want["error"].as_str().unwrap();
                    if let Some(message) = python.strip_prefix("TemplateError: ")
                        && !err.to_string().contains(message)
                    {
                        failures.push(format!("{name}/{case_name}: error {err} lacks {message:?}"));
                    }
                    assert!(matches!(err, Error::ChatTemplate { .. }), "{err:?}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 80, "only {checked} goldens");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn messages_serialize_as_the_golden_dicts() {
    // The keys a template can test for (`'tool_calls' in message`, `content is none`) must be the
    // ones Python was given: absent optionals left out, content always present.
    for case in goldens()["cases"].as_array().unwrap() {
        for message in case["messages"].as_array().unwrap() {
            let parsed: ChatMessage = serde_json::from_value(message.clone()).unwrap();
            assert_eq!(&serde_json::to_value(&parsed).unwrap(), message);
        }
    }
}

#[test]
fn builtins_are_the_golden_sources() {
    let golden = goldens();
    for builtin in Builtin::ALL {
        let source = golden["templates"][builtin.name()]["source"]
            .as_str()
            .unwrap();
        assert_eq!(builtin.source(), source, "{}", builtin.name());
        assert_eq!(Builtin::from_name(builtin.name()), Some(builtin));
    }
}

#[test]
fn constructors_match_golden_renders() {
    let golden = goldens();
    let template = ChatTemplate::builtin(Builtin::DeepSeekR1, BOS, EOS).unwrap();
    assert_eq!(
        template.origin(),
        TemplateOrigin::Builtin(Builtin::DeepSeekR1)
    );
    let messages = [
        ChatMessage::system("You are a helpful assistant."),
        ChatMessage::user("Weather in Paris?"),
        ChatMessage::assistant_tool_calls(vec![ToolCall::function(
            Some("call_1".into()),
            "get_weather",
            r#"{"city": "Paris"}"#,
        )]),
        ChatMessage::tool("call_1", r#"{"temperature": 21, "unit": "C"}"#),
        ChatMessage::assistant("It is 21 °C in Paris."),
        ChatMessage::user("Thanks!"),
    ];
    let opts = RenderOptions {
        add_generation_prompt: true,
        ..RenderOptions::default()
    };
    let want = &golden["expected"]["deepseek-r1"]["tool-call-and-result"]["output"];
    assert_eq!(
        template.render(&messages, &opts).unwrap(),
        want.as_str().unwrap()
    );
}

#[test]
fn templates_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<ChatTemplate>();
}

#[test]
fn template_errors_are_clear() {
    let err = ChatTemplate::new("{% for m in messages %}", BOS, EOS).unwrap_err();
    assert!(
        matches!(&err, Error::ChatTemplate { what } if what.contains("does not compile")),
        "{err}"
    );

    let raising =
        ChatTemplate::new("{{ raise_exception('roles must alternate') }}", BOS, EOS).unwrap();
    let err = raising.render(&[], &RenderOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("raise_exception: roles must alternate"),
        "{err}"
    );

    let bad_kwarg = ChatTemplate::new("{{ messages | tojson(indnt=2) }}", BOS, EOS).unwrap();
    assert!(bad_kwarg.render(&[], &RenderOptions::default()).is_err());

    // V3 concatenates tool arguments into the prompt; an object there is a type error, as in Python.
    let v3 = ChatTemplate::builtin(Builtin::DeepSeekV3, BOS, EOS).unwrap();
    let mut call = ToolCall::function(None, "f", "");
    call.function.arguments = serde_json::json!({"a": 1});
    let err = v3
        .render(
            &[ChatMessage::assistant_tool_calls(vec![call])],
            &RenderOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::ChatTemplate { .. }), "{err}");
}

#[test]
fn carriage_returns_in_the_source_read_as_newlines() {
    // Jinja2 normalizes the template's newlines (not the data's) before rendering.
    let template = ChatTemplate::new("a\r\nb\r{{ messages[0].content }}", BOS, EOS).unwrap();
    let out = template
        .render(&[ChatMessage::user("x\r\ny")], &RenderOptions::default())
        .unwrap();
    assert_eq!(out, "a\nb\nx\r\ny");
}

/// A GGUF with only metadata: `arch`, a small vocabulary and optionally a template.
fn write_gguf(dir: &Path, arch: &str, tokens: &[&str], template: Option<MetaValue>) -> GgufModel {
    let mut w = GgufWriter::new();
    w.set("general.architecture", MetaValue::String(arch.into()));
    w.set(
        "tokenizer.ggml.tokens",
        MetaValue::strings(tokens.iter().copied()),
    );
    w.set("tokenizer.ggml.bos_token_id", MetaValue::U32(0));
    w.set("tokenizer.ggml.eos_token_id", MetaValue::U32(1));
    if let Some(t) = template {
        w.set("tokenizer.chat_template", t);
    }
    let path = dir.join(format!("{arch}-{}.gguf", tokens.len()));
    let mut bytes = Vec::new();
    w.write_to(&mut bytes).unwrap();
    std::fs::write(&path, bytes).unwrap();
    GgufModel::open(&path).unwrap()
}

#[test]
fn gguf_template_and_special_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = [BOS, EOS, "a"];
    let source = "{{ bos_token }}|{{ eos_token }}|{{ unk_token is defined }}";
    let model = write_gguf(
        dir.path(),
        "deepseek2",
        &tokens,
        Some(MetaValue::String(source.into())),
    );
    let template = ChatTemplate::from_gguf(&model).unwrap();
    assert_eq!(template.origin(), TemplateOrigin::Gguf);
    assert_eq!(template.special_token("bos_token"), Some(BOS));
    let out = template.render(&[], &RenderOptions::default()).unwrap();
    assert_eq!(out, format!("{BOS}|{EOS}|False"));

    let model = write_gguf(
        dir.path(),
        "deepseek2",
        &tokens[..2],
        Some(MetaValue::U32(3)),
    );
    let err = ChatTemplate::from_gguf(&model).unwrap_err();
    assert!(
        matches!(&err, Error::Metadata { key, .. } if key == "tokenizer.chat_template"),
        "{err}"
    );

    // An EOS id past the end of the vocabulary is a broken file, not a silent empty string.
    let model = write_gguf(dir.path(), "deepseek2", &tokens[..1], None);
    assert!(matches!(
        ChatTemplate::from_gguf(&model),
        Err(Error::Metadata { .. })
    ));
}

#[test]
fn files_without_a_template_get_a_builtin_by_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "deepseek2",
            vec![BOS, EOS, "<｜User｜>", "<｜Assistant｜>"],
            Builtin::DeepSeekV3,
        ),
        (
            "deepseek2",
            vec![BOS, EOS, "User", "Assistant"],
            Builtin::DeepSeekV2Chat,
        ),
        ("llama", vec!["<s>", "</s>"], Builtin::ChatMl),
        (
            "qwen2",
            vec!["<|endoftext|>", "<|im_end|>"],
            Builtin::ChatMl,
        ),
    ];
    let golden = goldens();
    for (arch, tokens, want) in cases {
        let model = write_gguf(dir.path(), arch, &tokens, None);
        let template = ChatTemplate::from_gguf(&model).unwrap();
        assert_eq!(
            template.origin(),
            TemplateOrigin::Builtin(want),
            "{arch} {tokens:?}"
        );
        assert_eq!(template.source(), want.source());
        if arch == "deepseek2" {
            let opts = RenderOptions {
                add_generation_prompt: true,
                ..RenderOptions::default()
            };
            let out = template
                .render(&[ChatMessage::user("Hello")], &opts)
                .unwrap();
            assert_eq!(
                out,
                golden["expected"][want.name()]["single-user"]["output"]
                    .as_str()
                    .unwrap()
            );
        }
    }
}

/// A model file's template is untrusted: one that loops for ever or builds a huge string fails
/// with a clear error in well under a second, and the bundled templates stay far inside the
/// budget on a conversation larger than any context.
#[test]
fn hostile_templates_are_stopped_and_real_ones_fit_the_budget() {
    use lanternfish::chat_template::{MAX_RENDERED_BYTES, RENDER_FUEL};
    // 1,000 messages of 4 KB (4 MB of text, ~1 M tokens: far past any context) with tools, in every bundled
    // template: under a tenth of the budget.
    let text = "word ".repeat(800);
    let mut messages = vec![ChatMessage::system("You are terse.")];
    for i in 0..1000 {
        messages.push(if i % 2 == 0 {
            ChatMessage::user(&text)
        } else {
            ChatMessage::assistant(&text)
        });
    }
    let tools: Json = serde_json::json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let opts = RenderOptions {
        add_generation_prompt: true,
        tools: Some(serde_json::from_value(tools).unwrap()),
        ..RenderOptions::default()
    };
    for which in [
        Builtin::DeepSeekV2Chat,
        Builtin::DeepSeekV3,
        Builtin::DeepSeekR1,
        Builtin::ChatMl,
    ] {
        let template = ChatTemplate::builtin(which, BOS, EOS).unwrap();
        let (rendered, fuel) = template.render_measured(&messages, &opts).unwrap();
        let (_, small) = template.render_measured(&messages[..100], &opts).unwrap();
        eprintln!(
            "{which:?}: {fuel} units for {} bytes, {small} for 100 messages",
            rendered.len()
        );
        assert!(rendered.len() > 4_000_000);
        assert!(fuel > 0 && fuel * 10 <= RENDER_FUEL, "{which:?}: {fuel}");
    }

    let hostile = [
        // Nested loops: 10^10 iterations (hung `run --chat` before the bound).
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        // A doubling string: 2^40 bytes.
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}\
         {% endfor %}{{ ns.s }}",
        // One huge value.
        "{{ 'x' * 10000000000 }}",
        // Output alone past the byte limit, cheaply per byte.
        "{% for i in range(100000) %}{{ 'y' * 10000 }}{% endfor %}",
    ];
    for source in hostile {
        let template = ChatTemplate::new(source, BOS, EOS).unwrap();
        let started = std::time::Instant::now();
        let err = template
            .render(&[ChatMessage::user("hi")], &RenderOptions::default())
            .unwrap_err();
        let took = started.elapsed();
        eprintln!("{source:.40}…: {took:?}: {err}");
        assert!(matches!(err, Error::ChatTemplate { .. }), "{err}");
        assert!(
            err.to_string().contains("units of work")
                || err
                    .to_string()
                    .contains(&format!("{MAX_RENDERED_BYTES} bytes"))
                || err.to_string().contains("fuel"),
            "{err}"
        );
        assert!(took < Duration::from_secs(1), "{source}: {took:?}");
    }
}
