//! Checks and conversions shared by both completion endpoints: sampling parameters, `stop`,
//! `max_tokens` against the context, finish reasons, log-probabilities and response ids.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value as Json};

use super::error::ApiError;
use super::types::{ChatLogprob, CompletionLogprobs, Stop, TopLogprob};
use crate::engine::{Generation, StopReason, TokenLogprob};
use crate::sampler::SamplerConfig;

/// The most `stop` strings a request may give.
const MAX_STOP: usize = 16;
/// The most alternatives per token the engine reports.
pub const MAX_TOP_LOGPROBS: u64 = 20;

/// Seconds since the Unix epoch (`created` fields).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh response id such as `chatcmpl-18c7…-3`: time-based and counted, unique per process.
pub fn response_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{nanos:x}{n:x}")
}

/// `n` must be absent or 1: the engine generates one choice per request.
pub fn check_n(n: Option<u64>) -> Result<(), ApiError> {
    match n {
        None | Some(1) => Ok(()),
        Some(n) => Err(ApiError::invalid_param(
            "n",
            format!("n = {n} is not supported: this server generates exactly one choice (n = 1)"),
        )),
    }
}

/// The sampler for `temperature`, `top_p` and `seed` (OpenAI's defaults: temperature 1,
/// top_p 1; without a seed every request draws a new one).
pub fn sampler(
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<i64>,
) -> Result<SamplerConfig, ApiError> {
    let temperature = temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid_param(
            "temperature",
            format!("temperature must be between 0 and 2, got {temperature}"),
        ));
    }
    let top_p = top_p.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&top_p) {
        return Err(ApiError::invalid_param(
            "top_p",
            format!("top_p must be between 0 and 1, got {top_p}"),
        ));
    }
    let seed = match seed {
        Some(seed) => seed as u64,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    };
    Ok(SamplerConfig {
        temperature,
        top_p: top_p.max(f32::MIN_POSITIVE),
        seed,
        ..SamplerConfig::default()
    })
}

/// The stop strings, without empty ones (which would stop at once).
pub fn stop_strings(stop: Option<Stop>) -> Result<Vec<String>, ApiError> {
    let stop: Vec<String> = stop
        .map(Stop::into_vec)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if stop.len() > MAX_STOP {
        return Err(ApiError::invalid_param(
            "stop",
            format!(
                "at most {MAX_STOP} stop strings are supported, got {}",
                stop.len()
            ),
        ));
    }
    Ok(stop)
}

/// Tokens to generate: the request's limit, clamped to what the context leaves after the
/// prompt (the context is checked before). 0 is a 400, as in OpenAI's API.
pub fn max_tokens(
    requested: Option<u64>,
    param: &str,
    prompt: usize,
    n_ctx: usize,
) -> Result<usize, ApiError> {
    if prompt >= n_ctx {
        return Err(ApiError::context_length(format!(
            "the prompt has {prompt} tokens, but the context window is {n_ctx} tokens (start the \
             server with a larger --ctx, or send less)"
        )));
    }
    let room = n_ctx - prompt;
    match requested {
        Some(0) => Err(ApiError::invalid_param(
            param,
            format!("{param} must be at least 1"),
        )),
        Some(n) => Ok((n.min(room as u64)) as usize),
        None => Ok(room),
    }
}

/// Counts a finished request in `metrics` and (when `log` is on) prints one line on stderr: the
/// endpoint, the response id, the token counts and speeds.
pub fn log_done(
    (log, metrics): (bool, &super::metrics::Metrics),
    endpoint: super::metrics::Endpoint,
    id: &str,
    generation: &Generation,
) {
    metrics.record(endpoint, generation);
    if !log {
        return;
    }
    let endpoint = endpoint.name();
    let s = &generation.stats;
    eprintln!(
        "{endpoint} {id}: prompt {} tokens ({} cached) in {:.2} s, {} tokens at {:.1} tok/s, {:?}",
        s.prompt_tokens,
        s.reused_tokens,
        s.prefill_s,
        s.generated_tokens,
        s.decode_tok_s(),
        generation.stop_reason,
    );
}

/// `finish_reason` for a stop reason. Cancelled only happens when nobody is listening.
pub fn finish_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndOfText | StopReason::Stop | StopReason::Cancelled => "stop",
        StopReason::Length | StopReason::ContextFull => "length",
    }
}

fn token_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One token's log-probabilities in the chat shape.
pub fn chat_logprob(t: &TokenLogprob) -> ChatLogprob {
    ChatLogprob {
        token: token_text(&t.bytes),
        logprob: t.logprob,
        bytes: t.bytes.clone(),
        top_logprobs: t
            .top
            .iter()
            .map(|(_, bytes, logprob)| TopLogprob {
                token: token_text(bytes),
                logprob: *logprob,
                bytes: bytes.clone(),
            })
            .collect(),
    }
}

/// Appends tokens in the legacy completions shape; `offset` is the text offset of the first.
pub fn push_completion_logprobs(
    out: &mut CompletionLogprobs,
    tokens: &[TokenLogprob],
    offset: &mut usize,
) {
    for t in tokens {
        let text = token_text(&t.bytes);
        out.text_offset.push(*offset);
        *offset += text.len();
        out.tokens.push(text);
        out.token_logprobs.push(t.logprob);
        let mut top = Map::new();
        for (_, bytes, logprob) in &t.top {
            top.insert(token_text(bytes), Json::from(*logprob));
        }
        out.top_logprobs.push(top);
    }
}

/// The chat-template variables of a request: `reasoning_effort` sets the template's thinking
/// switch where it has one (`enable_thinking` as Qwen3 and R1-0528-Qwen3 name it, `thinking` as
/// DeepSeek-V3.1 does; "none" turns it off, "minimal", "low", "medium" and "high" on), then
/// `chat_template_kwargs` are added as they are (they win). The names the renderer sets itself
/// are 400s.
pub fn template_variables(
    template_source: &str,
    kwargs: Option<&serde_json::Map<String, serde_json::Value>>,
    reasoning_effort: Option<&str>,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let mut extra = serde_json::Map::new();
    if let Some(effort) = reasoning_effort {
        let on = match effort {
            "none" => false,
            "minimal" | "low" | "medium" | "high" => true,
            other => {
                return Err(ApiError::invalid_param(
                    "reasoning_effort",
                    format!(
                        "reasoning_effort {other:?} is not one of none, minimal, low, medium, high"
                    ),
                ));
            }
        };
        for switch in ["enable_thinking", "thinking"] {
            if template_source.contains(switch) {
                extra.insert(switch.to_owned(), serde_json::Value::Bool(on));
            }
        }
    }
    for (name, value) in kwargs.into_iter().flatten() {
        if ["messages", "tools", "documents", "add_generation_prompt"].contains(&name.as_str()) {
            return Err(ApiError::invalid_param(
                "chat_template_kwargs",
                format!("chat_template_kwargs may not set {name:?}: the request sets it"),
            ));
        }
        extra.insert(name.clone(), value.clone());
    }
    Ok(extra)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sampling_ranges() {
        assert!(sampler(Some(2.5), None, None).is_err());
        assert!(sampler(Some(-0.1), None, None).is_err());
        assert!(sampler(None, Some(1.5), None).is_err());
        assert!(sampler(Some(f32::NAN), None, None).is_err());
        let s = sampler(Some(0.0), Some(0.5), Some(7)).unwrap_or_default();
        assert_eq!((s.temperature, s.top_p, s.seed), (0.0, 0.5, 7));
        assert_eq!(sampler(None, None, None).map(|s| s.temperature), Ok(1.0));
    }

    #[test]
    fn n_stop_and_max_tokens() {
        assert!(check_n(None).is_ok() && check_n(Some(1)).is_ok());
        assert_eq!(check_n(Some(2)).map_err(|e| e.param), Err(Some("n".into())));
        assert_eq!(
            stop_strings(Some(Stop::Many(vec!["".into(), "x".into()]))),
            Ok(vec!["x".to_owned()])
        );
        assert!(stop_strings(Some(Stop::Many(vec!["a".into(); 17]))).is_err());
        assert_eq!(max_tokens(Some(10), "max_tokens", 5, 100), Ok(10));
        assert_eq!(max_tokens(Some(1000), "max_tokens", 5, 100), Ok(95));
        assert_eq!(max_tokens(None, "max_tokens", 5, 100), Ok(95));
        assert!(max_tokens(Some(0), "max_tokens", 5, 100).is_err());
        let full = max_tokens(Some(1), "max_tokens", 100, 100).map_err(|e| e.code);
        assert_eq!(full, Err(Some("context_length_exceeded")));
    }

    #[test]
    fn ids_are_unique() {
        assert_ne!(response_id("chatcmpl"), response_id("chatcmpl"));
    }

    #[test]
    fn legacy_logprobs_offsets() {
        let t = |s: &str| TokenLogprob {
            id: 0,
            bytes: s.as_bytes().to_vec(),
            logprob: -0.5,
            top: vec![(0, s.as_bytes().to_vec(), -0.5)],
        };
        let mut out = CompletionLogprobs::default();
        let mut offset = 3;
        push_completion_logprobs(&mut out, &[t("ab"), t("c")], &mut offset);
        assert_eq!(out.text_offset, [3, 5]);
        assert_eq!(offset, 6);
        assert_eq!(out.tokens, ["ab", "c"]);
    }
}
