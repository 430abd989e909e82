//! The [`Engine`] worker API that the app and the server drive: loading with progress and
//! cancel, the FIFO queue, streamed events equal to a direct [`Generator`] run, cancellation by
//! drop, log-probabilities, and history trimming. CPU backend on a synth model (exact and fast);
//! one GPU test on lavapipe.
#![allow(clippy::unwrap_used)]

mod gpu_common;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use lanternfish::chat_template::{ChatMessage, RenderOptions};
use lanternfish::engine::{
    Backend, CpuSequence, Engine, EngineConfig, Event, GenerateOptions, Generation, Generator,
    Request, StopReason,
};
use lanternfish::gguf::GgufModel;
use lanternfish::quant::GgmlType;
use lanternfish::synth::{Layout, SynthConfig, SynthOptions, WeightType, write_model};
use lanternfish::tokenizer::Tokenizer;

/// A tiny-v2 synth model written to a temp file (the engine opens files).
fn synth_file(dir: &tempfile::TempDir) -> PathBuf {
    let options = SynthOptions {
        config: SynthConfig::preset("tiny-v2").unwrap(),
        weights: WeightType::Float(GgmlType::F32),
        layout: Layout::Mla,
        seed: 5,
    };
    let path = dir.path().join("tiny-v2.gguf");
    let file = std::fs::File::create(&path).unwrap();
    write_model(&options, std::io::BufWriter::new(file), &|_, _| {}).unwrap();
    path
}

fn cpu_engine(path: &PathBuf, n_ctx: usize) -> Engine {
    let config = EngineConfig {
        backend: Backend::Cpu,
        n_ctx: lanternfish::engine::ContextSize::Tokens(n_ctx),
        ..EngineConfig::new(path)
    };
    Engine::load(config, &mut |_, _| {}, &AtomicBool::new(false)).unwrap()
}

/// All events of a job, in order.
fn drain(job: &lanternfish::engine::Job) -> Vec<Event> {
    let mut events = Vec::new();
    while let Ok(event) = job.events.recv() {
        let last = matches!(event, Event::Done { .. } | Event::Error(_));
        events.push(event);
        if last {
            break;
        }
    }
    events
}

fn done(events: &[Event]) -> &Generation {
    match events.last() {
        Some(Event::Done { generation, .. }) => generation,
        other => panic!("expected Done last, got {other:?}"),
    }
}

fn streamed_text(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn options(max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        ..GenerateOptions::default()
    }
}

#[test]
fn streams_what_a_direct_generator_produces_and_reuses_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(&dir);
    let engine = cpu_engine(&path, 256);
    let info = engine.info();
    assert_eq!(info.arch, "deepseek2");
    assert_eq!(info.n_ctx, 256);
    assert_eq!(info.device, "CPU reference (f32)");
    assert!(info.file_bytes > 0);

    let messages = [ChatMessage::user("Hello there")];
    let prompt = engine
        .render_chat(&messages, &RenderOptions::default(), 16)
        .unwrap();
    assert_eq!(prompt.dropped, 0);
    let job = engine.submit(Request {
        tokens: prompt.tokens.clone(),
        options: options(12),
    });
    let events = drain(&job);
    assert!(matches!(events[0], Event::Started));
    let first = done(&events).clone();
    assert_eq!(streamed_text(&events), first.answer);

    // The same generation run directly on a fresh CPU sequence.
    let model = GgufModel::open(&path).unwrap();
    let tokenizer = Tokenizer::from_gguf(&model).unwrap();
    let cpu = lanternfish::cpu::CpuModel::load(&model).unwrap();
    let mut seq = CpuSequence {
        session: cpu.session(),
        n_ctx: 256,
    };
    let direct = Generator::new(&tokenizer)
        .generate(
            &mut seq,
            &prompt.tokens,
            &options(12),
            &AtomicBool::new(false),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(first.tokens, direct.tokens);
    assert_eq!(first.answer, direct.answer);

    // A second request that extends the first reuses its cache.
    let mut extended = prompt.tokens.clone();
    extended.extend_from_slice(&first.tokens);
    extended.extend_from_slice(&prompt.tokens[prompt.tokens.len() - 3..]);
    let job = engine.submit(Request {
        tokens: extended.clone(),
        options: options(4),
    });
    let second = done(&drain(&job)).clone();
    assert_eq!(second.stats.prompt_tokens, extended.len());
    assert!(
        second.stats.reused_tokens >= prompt.tokens.len(),
        "{:?}",
        second.stats
    );
}

#[test]
fn queue_is_fifo_and_a_dropped_job_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(&dir);
    let engine = cpu_engine(&path, 256);
    let tokens = engine.tokenizer().encode("one two three", true).unwrap();

    // Three jobs queued at once; the middle one is dropped before it runs.
    let first = engine.submit(Request {
        tokens: tokens.clone(),
        options: options(6),
    });
    let dropped = engine.submit(Request {
        tokens: tokens.clone(),
        options: options(200),
    });
    let third = engine.submit(Request {
        tokens: tokens.clone(),
        options: options(6),
    });
    drop(dropped);
    let a = done(&drain(&first)).clone();
    let c = done(&drain(&third)).clone();
    assert_eq!(a.tokens, c.tokens, "greedy on the same prompt");
    assert_eq!(a.stop_reason, c.stop_reason);

    // Cancel while running: stops early with Cancelled.
    let long = engine.submit(Request {
        tokens: tokens.clone(),
        options: GenerateOptions {
            max_tokens: 200,
            stop: Vec::new(),
            ..GenerateOptions::default()
        },
    });
    let mut n_text = 0;
    let generation = loop {
        match long.events.recv().unwrap() {
            Event::Text { .. } => {
                n_text += 1;
                if n_text == 2 {
                    long.cancel();
                }
            }
            Event::Done { generation, .. } => break generation,
            Event::Error(error) => panic!("{error}"),
            _ => {}
        }
    };
    if generation.stop_reason != StopReason::EndOfText {
        assert_eq!(generation.stop_reason, StopReason::Cancelled);
        assert!(generation.tokens.len() < 200);
    }
    // The engine still serves.
    let after = engine.submit(Request {
        tokens,
        options: options(6),
    });
    assert_eq!(done(&drain(&after)).tokens, a.tokens);
}

#[test]
fn logprobs_are_normalised_sorted_and_match_the_greedy_choice() {
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(&dir);
    let engine = cpu_engine(&path, 256);
    let tokens = engine.tokenizer().encode("a b c", true).unwrap();
    let plain = done(&drain(&engine.submit(Request {
        tokens: tokens.clone(),
        options: options(8),
    })))
    .clone();
    let job = engine.submit(Request {
        tokens,
        options: GenerateOptions {
            logprobs: Some(3),
            ..options(8)
        },
    });
    let events = drain(&job);
    let generation = done(&events);
    // Reading logits back instead of the device argmax picks the same tokens.
    assert_eq!(generation.tokens, plain.tokens);
    let streamed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Token(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed, generation.logprobs);
    assert_eq!(streamed.len(), generation.tokens.len());
    for (token, id) in streamed.iter().zip(&generation.tokens) {
        assert_eq!(token.id, *id);
        assert!(token.logprob <= 0.0);
        assert_eq!(token.top.len(), 3);
        assert_eq!(
            token.top[0].0, token.id,
            "greedy takes the most likely token"
        );
        assert_eq!(token.top[0].2, token.logprob);
        assert!(token.top.windows(2).all(|w| w[0].2 >= w[1].2));
        assert_eq!(
            token.bytes,
            engine.tokenizer().piece(token.id, false).to_vec()
        );
    }
}

#[test]
fn render_chat_drops_the_oldest_turns_and_rejects_what_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(&dir);
    let engine = cpu_engine(&path, 96);
    let long = "word ".repeat(20);
    let messages = vec![
        ChatMessage::system("Be brief."),
        ChatMessage::user(long.as_str()),
        ChatMessage::assistant(long.as_str()),
        ChatMessage::user(long.as_str()),
        ChatMessage::assistant(long.as_str()),
        ChatMessage::user("last question"),
    ];
    let prompt = engine
        .render_chat(&messages, &RenderOptions::default(), 16)
        .unwrap();
    assert!(prompt.dropped >= 2, "dropped {}", prompt.dropped);
    assert!(prompt.tokens.len() + 16 <= 96);
    assert!(prompt.text.contains("Be brief."), "the system prompt stays");
    assert!(prompt.text.contains("last question"));

    let huge = "word ".repeat(200);
    let error = engine
        .render_chat(
            &[ChatMessage::user(huge.as_str())],
            &RenderOptions::default(),
            16,
        )
        .unwrap_err();
    assert!(
        matches!(error, lanternfish::Error::ContextFull { .. }),
        "{error}"
    );
}

#[test]
fn gpu_engine_loads_with_progress_streams_and_cancels_a_load() {
    gpu_common::test_gpu();
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(&dir);
    let mut last = (0, 0);
    let engine = Engine::load(
        EngineConfig {
            n_ctx: lanternfish::engine::ContextSize::Tokens(128),
            ..EngineConfig::new(&path)
        },
        &mut |done, total| last = (done, total),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(last.1 > 0 && last.0 == last.1, "progress {last:?}");
    assert!(engine.info().gpu_bytes >= last.1);
    let tokens = engine.tokenizer().encode("Hello", true).unwrap();
    let gpu = done(&drain(&engine.submit(Request {
        tokens: tokens.clone(),
        options: options(8),
    })))
    .clone();
    let cpu = cpu_engine(&path, 128);
    let reference = done(&drain(&cpu.submit(Request {
        tokens,
        options: options(8),
    })))
    .clone();
    assert_eq!(gpu.tokens, reference.tokens);
    drop(engine);

    let cancelled = Engine::load(
        EngineConfig::new(&path),
        &mut |_, _| {},
        &AtomicBool::new(true),
    );
    assert!(
        matches!(cancelled, Err(lanternfish::Error::Cancelled)),
        "expected Cancelled, got {:?}",
        cancelled.err()
    );
}
