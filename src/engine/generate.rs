//! The generation loop shared by `run`, `chat`, `bench`, the app and the server: prefix reuse of
//! the KV cache, prompt prefill, sampling, end-of-generation and stop strings, cancellation, and
//! a stream of text events split into thinking and answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::sequence::Sequence;
use super::think::{Channel, ThinkSplitter};
use crate::gpu::engine::DeviceChoice;
use crate::gpu::ops::sample::{MAX_TOP_K, SampleStep};
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
    /// `Some(n)`: report each generated token's log-probability and its `n` most likely
    /// alternatives (this reads the logits back each step, so greedy no longer runs on the GPU).
    pub logprobs: Option<usize>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampler: SamplerConfig::default(),
            stop: Vec::new(),
            starts_thinking: false,
            logprobs: None,
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

/// One generated token's log-probability under the model (log-softmax of the raw logits) and
/// the most likely alternatives at that step, most likely first.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    pub id: u32,
    /// The token's bytes (a piece of a UTF-8 character for byte tokens).
    pub bytes: Vec<u8>,
    pub logprob: f32,
    pub top: Vec<(u32, Vec<u8>, f32)>,
}

/// What [`Generator::generate_events`] reports while it runs.
#[derive(Clone, Copy, Debug)]
pub enum GenEvent<'a> {
    /// Decoded text of one channel.
    Text(Channel, &'a str),
    /// A sampled token's log-probabilities (only when [`GenerateOptions::logprobs`] is set).
    Token(&'a TokenLogprob),
}

/// The result of one generation.
#[derive(Clone, Debug)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub answer: String,
    pub thinking: String,
    pub stop_reason: StopReason,
    pub stats: GenerationStats,
    /// Per generated token, when [`GenerateOptions::logprobs`] asked for them.
    pub logprobs: Vec<TokenLogprob>,
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

    /// The tokens the sequence's cache holds (the last prompt and what was generated after it).
    pub fn cached(&self) -> &[u32] {
        &self.cached
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
        self.generate_events(seq, prompt, options, cancel, &mut |event| {
            if let GenEvent::Text(channel, text) = event {
                on_text(channel, text);
            }
        })
    }

    /// [`Generator::generate`] that also reports token log-probabilities as they are sampled.
    pub fn generate_events(
        &mut self,
        seq: &mut dyn Sequence,
        prompt: &[u32],
        options: &GenerateOptions,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(GenEvent<'_>),
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
        let on_device = DeviceMode::of(options);
        // Pipelined: each step is submitted before the token it feeds is read back (see
        // `GpuSession::submit_choice`).
        let pipelined = on_device.is_some() && seq.chooses_on_device();
        let greedy_on_device = on_device == Some(DeviceMode::Greedy);
        let top_n = options.logprobs.map(|n| n.min(MAX_TOP_LOGPROBS));
        let tokenizer = self.tokenizer;
        let mut stats = GenerationStats {
            prompt_tokens: prompt.len(),
            reused_tokens: keep,
            ..Default::default()
        };
        let mut history = prompt.to_vec();
        let started = Instant::now();
        let next = |seq: &mut dyn Sequence,
                    sampler: &mut Sampler,
                    feed: &[u32],
                    history: &[u32]|
         -> Result<(u32, Option<TokenLogprob>)> {
            if greedy_on_device {
                return Ok((seq.forward_greedy(feed)?, None));
            }
            let logits = seq.forward_last(feed)?;
            let token = sampler.sample(&logits, history);
            let logprob = top_n.map(|n| token_logprob(tokenizer, &logits, token, n));
            Ok((token, logprob))
        };
        // A failed prefill leaves the cache in an unknown state: start over next time.
        let mut logprobs = Vec::new();
        let first = if let (true, Some(mode)) = (pipelined, on_device) {
            let choice = mode.choice(&mut sampler);
            seq.submit_choice(&prompt[keep..], &choice)
                .and_then(|()| seq.wait_choice())
                .map(|token| (token, None))
        } else {
            next(seq, &mut sampler, &prompt[keep..], &history)
        };
        let (mut token, mut logprob) = match first {
            Ok(next) => next,
            Err(error) => {
                self.reset(seq);
                return Err(error);
            }
        };
        self.cached.extend_from_slice(&prompt[keep..]);
        stats.prefill_s = started.elapsed().as_secs_f64();
        // Pipelined: whether the step that feeds `token` was submitted (before `token` was
        // read back), and whether the sequence had room for `token` before that.
        let mut fed_ahead = false;
        let mut room = seq.n_past() < seq.n_ctx();
        let decode_started = Instant::now();
        let ahead = Ahead {
            mode: on_device,
            tokenizer,
            max_tokens: options.max_tokens,
        };
        if pipelined {
            match ahead.feed(seq, &mut sampler, token, 0) {
                Ok(fed) => fed_ahead = fed,
                Err(error) => {
                    self.reset(seq);
                    return Err(error);
                }
            }
        }

        let mut splitter = ThinkSplitter::new(options.starts_thinking);
        let mut stream = self.tokenizer.stream();
        let (mut answer, mut thinking) = (String::new(), String::new());
        let mut tokens = Vec::new();
        let emit = |on_event: &mut dyn FnMut(GenEvent<'_>),
                    segments: Vec<(Channel, String)>,
                    answer: &mut String,
                    thinking: &mut String| {
            for (channel, text) in segments {
                on_event(GenEvent::Text(channel, &text));
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
            if let Some(logprob) = logprob.take() {
                on_event(GenEvent::Token(&logprob));
                logprobs.push(logprob);
            }
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
            emit(on_event, kept, &mut answer, &mut thinking);
            if hit_stop {
                break StopReason::Stop;
            }
            if cancel.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            if tokens.len() >= options.max_tokens {
                break StopReason::Length;
            }
            if !room {
                break StopReason::ContextFull;
            }
            let ahead_step = pipelined && fed_ahead;
            let stepped = if ahead_step {
                // `token` is already fed: read the one it led to, and queue the step that feeds
                // that one before looking at it.
                seq.wait_choice().and_then(|t| {
                    room = seq.n_past() < seq.n_ctx();
                    Ok(((t, None), ahead.feed(seq, &mut sampler, t, tokens.len())?))
                })
            } else {
                next(seq, &mut sampler, &[token], &history).map(|next| (next, false))
            };
            match stepped {
                Ok(((t, l), fed)) => {
                    self.cached.push(token);
                    token = t;
                    logprob = l;
                    fed_ahead = fed;
                    if !ahead_step {
                        room = seq.n_past() < seq.n_ctx();
                    }
                }
                Err(error) => {
                    self.reset(seq);
                    return Err(error);
                }
            }
        };
        if pipelined {
            // A step queued ahead fed a token that ended the reply: forget it (and its pending
            // choice), so the cache holds exactly the tokens in `cached`.
            seq.truncate(self.cached.len());
        }
        if stop_reason != StopReason::Stop {
            let tail = stream.finish();
            let mut segments = splitter.push(&tail);
            segments.extend(splitter.finish());
            emit(on_event, segments, &mut answer, &mut thinking);
        }
        stats.generated_tokens = tokens.len();
        stats.decode_s = decode_started.elapsed().as_secs_f64();
        Ok(Generation {
            tokens,
            answer,
            thinking,
            stop_reason,
            stats,
            logprobs,
        })
    }
}

/// How the device chooses tokens for a generation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum DeviceMode {
    Greedy,
    /// Top-k sampling with these settings (the draw is taken per token).
    Sample {
        top_k: usize,
        top_p: f32,
        min_p: f32,
        temperature: f32,
    },
}

impl DeviceMode {
    /// The device's way to choose for `options`, or `None` where the host must see the logits:
    /// a repetition penalty, log-probabilities, or top_k 0 or above [`MAX_TOP_K`].
    fn of(options: &GenerateOptions) -> Option<DeviceMode> {
        let c = &options.sampler;
        if c.repeat_penalty != 1.0 || options.logprobs.is_some() {
            return None;
        }
        if c.temperature <= 0.0 {
            return Some(DeviceMode::Greedy);
        }
        (1..=MAX_TOP_K)
            .contains(&c.top_k)
            .then_some(DeviceMode::Sample {
                top_k: c.top_k,
                top_p: c.top_p,
                min_p: c.min_p,
                temperature: c.temperature,
            })
    }

    /// This token's choice, taking its draw from `sampler`'s stream.
    fn choice(self, sampler: &mut Sampler) -> DeviceChoice {
        match self {
            DeviceMode::Greedy => DeviceChoice::Greedy,
            DeviceMode::Sample {
                top_k,
                top_p,
                min_p,
                temperature,
            } => DeviceChoice::Sample {
                top_k,
                step: SampleStep {
                    top_p,
                    min_p,
                    temperature,
                    u: sampler.next_draw() as f32,
                },
            },
        }
    }
}

/// Queuing the step that feeds a token before the host has looked at it.
struct Ahead<'t> {
    mode: Option<DeviceMode>,
    tokenizer: &'t Tokenizer,
    max_tokens: usize,
}

impl Ahead<'_> {
    /// Submits the step that feeds `token` (the one the last step chose, still in the device's
    /// token buffer) when the reply will go on after it, whatever the host then finds in its
    /// text: it is not an end-of-generation token, another token is wanted after it, and the
    /// context has room for it. `generated` counts the tokens before it. Returns whether it did.
    fn feed(
        &self,
        seq: &mut dyn Sequence,
        sampler: &mut Sampler,
        token: u32,
        generated: usize,
    ) -> Result<bool> {
        let Some(mode) = self.mode else {
            return Ok(false);
        };
        if self.tokenizer.is_eog(token)
            || generated + 1 >= self.max_tokens
            || seq.n_past() >= seq.n_ctx()
        {
            return Ok(false);
        }
        seq.submit_choice(&[], &mode.choice(sampler))?;
        Ok(true)
    }
}

/// The most alternatives [`GenerateOptions::logprobs`] reports (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// `token`'s log-softmax of `logits` and the `n` most likely tokens.
fn token_logprob(tokenizer: &Tokenizer, logits: &[f32], token: u32, n: usize) -> TokenLogprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits
        .iter()
        .map(|&l| ((l - max) as f64).exp())
        .sum::<f64>()
        .ln() as f32
        + max;
    let logprob_of = |id: u32| {
        logits
            .get(id as usize)
            .map_or(f32::NEG_INFINITY, |&l| l - log_sum)
    };
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    let n = n.min(order.len());
    if n > 0 {
        order.select_nth_unstable_by(n - 1, |&a, &b| {
            logits[b as usize].total_cmp(&logits[a as usize])
        });
    }
    order.truncate(n);
    order.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });
    TokenLogprob {
        id: token,
        bytes: tokenizer.piece(token, false).to_vec(),
        logprob: logprob_of(token),
        top: order
            .into_iter()
            .map(|id| (id, tokenizer.piece(id, false).to_vec(), logprob_of(id)))
            .collect(),
    }
}
