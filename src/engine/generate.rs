//! The generation loop shared by `run`, `chat`, `bench`, the app and the server: prefix reuse of
//! the KV cache, prompt prefill, sampling, end-of-generation and stop strings, cancellation, and
//! a stream of text events split into thinking and answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::sequence::Sequence;
use super::think::{Channel, ThinkSplitter};
use crate::sampler::{Sampler, SamplerConfig};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Tokens to generate at most.
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    /// Stop when the answer contains one of these (it is cut before the stop string).
    pub stop: Vec<String>,
    /// The prompt opened a `<think>` block.
    pub starts_thinking: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampler: SamplerConfig::default(),
            stop: Vec::new(),
            starts_thinking: false,
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model emitted an end-of-generation token.
    EndOfText,
    /// `max_tokens` were generated.
    Length,
    /// A stop string appeared.
    Stop,
    /// The caller cancelled.
    Cancelled,
    /// The context window is full.
    ContextFull,
}

/// Timings and counts of one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose cache was kept from the previous call.
    pub reused_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_s: f64,
    pub decode_s: f64,
}

impl GenerationStats {
    pub fn prefill_tok_s(&self) -> f64 {
        (self.prompt_tokens - self.reused_tokens) as f64 / self.prefill_s.max(1e-9)
    }

    pub fn decode_tok_s(&self) -> f64 {
        self.generated_tokens as f64 / self.decode_s.max(1e-9)
    }
}

/// The result of one generation.
#[derive(Clone, Debug)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub answer: String,
    pub thinking: String,
    pub stop_reason: StopReason,
    pub stats: GenerationStats,
}

/// A generator over one sequence: remembers which tokens its cache holds so that the next
/// prompt reuses the shared prefix.
pub struct Generator<'t> {
    tokenizer: &'t Tokenizer,
    cached: Vec<u32>,
}

impl<'t> Generator<'t> {
    pub fn new(tokenizer: &'t Tokenizer) -> Generator<'t> {
        Generator {
            tokenizer,
            cached: Vec::new(),
        }
    }

    /// Forgets the cache contents (the next call prefills from scratch).
    pub fn reset(&mut self, seq: &mut dyn Sequence) {
        seq.truncate(0);
        self.cached.clear();
    }

    /// Generates a reply to `prompt` (the whole conversation's tokens) on `seq`, calling
    /// `on_text` with each piece of text as it is decoded. A prompt that does not fit the
    /// context is an error; a reply that fills it stops with [`StopReason::ContextFull`].
    pub fn generate(
        &mut self,
        seq: &mut dyn Sequence,
        prompt: &[u32],
        options: &GenerateOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(Channel, &str),
    ) -> Result<Generation> {
        if prompt.is_empty() {
            return Err(Error::Tokenizer {
                what: "the prompt has no tokens".to_owned(),
            });
        }
        if prompt.len() >= seq.n_ctx() {
            return Err(Error::ContextFull {
                what: format!(
                    "the prompt has {} tokens, and a context of {} leaves no room for a reply",
                    prompt.len(),
                    seq.n_ctx()
                ),
            });
        }
        // Keep the longest shared prefix, but always feed at least one token for the logits.
        let mut keep = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(seq.n_past());
        if keep == prompt.len() {
            keep -= 1;
        }
        seq.truncate(keep);
        self.cached.truncate(keep);

        let mut sampler = Sampler::new(options.sampler.clone());
        let greedy_on_device =
            options.sampler.temperature <= 0.0 && options.sampler.repeat_penalty == 1.0;
        let mut stats = GenerationStats {
            prompt_tokens: prompt.len(),
            reused_tokens: keep,
            ..Default::default()
        };
        let mut history = prompt.to_vec();
        let started = Instant::now();
        let next =
            |seq: &mut dyn Sequence, sampler: &mut Sampler, feed: &[u32], history: &[u32]| {
                if greedy_on_device {
                    seq.forward_greedy(feed)
                } else {
                    let logits = seq.forward_last(feed)?;
                    Ok(sampler.sample(&logits, history))
                }
            };
        // A failed prefill leaves the cache in an unknown state: start over next time.
        let mut token = match next(seq, &mut sampler, &prompt[keep..], &history) {
            Ok(token) => token,
            Err(error) => {
                self.reset(seq);
                return Err(error);
            }
        };
        self.cached.extend_from_slice(&prompt[keep..]);
        stats.prefill_s = started.elapsed().as_secs_f64();

        let decode_started = Instant::now();
        let mut splitter = ThinkSplitter::new(options.starts_thinking);
        let mut stream = self.tokenizer.stream();
        let (mut answer, mut thinking) = (String::new(), String::new());
        let mut tokens = Vec::new();
        let mut emit =
            |segments: Vec<(Channel, String)>, answer: &mut String, thinking: &mut String| {
                for (channel, text) in segments {
                    on_text(channel, &text);
                    match channel {
                        Channel::Answer => answer.push_str(&text),
                        Channel::Thinking => thinking.push_str(&text),
                    }
                }
            };
        let stop_reason = loop {
            if self.tokenizer.is_eog(token) {
                break StopReason::EndOfText;
            }
            if tokens.len() >= options.max_tokens {
                break StopReason::Length;
            }
            tokens.push(token);
            history.push(token);
            let piece = stream.push(token);
            let segments = splitter.push(&piece);
            // Stop strings apply to the answer; cut the answer before the first one.
            let mut hit_stop = false;
            let mut kept = Vec::with_capacity(segments.len());
            for (channel, text) in segments {
                if channel == Channel::Answer && !options.stop.is_empty() {
                    let combined = format!("{answer}{text}");
                    if let Some(at) = options
                        .stop
                        .iter()
                        .filter_map(|s| combined.find(s.as_str()))
                        .min()
                    {
                        kept.push((channel, combined[answer.len().min(at)..at].to_owned()));
                        hit_stop = true;
                        break;
                    }
                }
                kept.push((channel, text));
            }
            emit(kept, &mut answer, &mut thinking);
            if hit_stop {
                break StopReason::Stop;
            }
            if cancel.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            if tokens.len() >= options.max_tokens {
                break StopReason::Length;
            }
            if seq.n_past() + 1 > seq.n_ctx() {
                break StopReason::ContextFull;
            }
            match next(seq, &mut sampler, &[token], &history) {
                Ok(t) => {
                    self.cached.push(token);
                    token = t;
                }
                Err(error) => {
                    self.reset(seq);
                    return Err(error);
                }
            }
        };
        if stop_reason != StopReason::Stop {
            let tail = stream.finish();
            let mut segments = splitter.push(&tail);
            segments.extend(splitter.finish());
            emit(segments, &mut answer, &mut thinking);
        }
        stats.generated_tokens = tokens.len();
        stats.decode_s = decode_started.elapsed().as_secs_f64();
        Ok(Generation {
            tokens,
            answer,
            thinking,
            stop_reason,
            stats,
        })
    }
}
