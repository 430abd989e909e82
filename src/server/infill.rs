//! `POST /infill`, llama-server's code-completion endpoint that llama.vscode and llama.vim call:
//! `input_prefix` and `input_suffix` around the cursor, `prompt` (text typed right before the
//! cursor, appended to the prefix), `input_extra` (chunks of other files: `{filename, text}`),
//! `n_predict` (0 only warms the cache with the prompt), `t_max_predict_ms` (stop at the first
//! newline after this much generation time), `n_indent` (stop before a line indented less), the
//! usual sampling fields, and `stream`.
//!
//! The prompt: extra chunks first (with the model's repo-level tokens `<|repo_name|>` /
//! `<|file_sep|>` where it has them, else each chunk after a `\n--- snippet ---\n` line, as
//! llama-server formats them), then the model's FIM prompt (see `fim.rs`). What does not fit the
//! context next to `n_predict` is dropped: the suffix keeps at most a quarter of the room (its
//! start), the prefix its end, and the extra chunks nearest the end of the list what is left (the
//! same shares as llama-server, which applies them to a batch rather than to the context).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::ServerState;
use super::error::ApiError;
use super::job::AsyncJob;
use super::params;
use super::routes::{check_model, read_json};
use super::types::Stop;
use crate::engine::{Event, GenerateOptions, Generation, Request, StopReason};
use crate::tokenizer::Tokenizer;

const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Tokens generated when the request does not say (`n_predict` absent or negative).
const DEFAULT_PREDICT: usize = 128;

#[derive(Debug, Deserialize)]
struct ExtraChunk {
    #[serde(default)]
    filename: String,
    text: String,
}

/// The fields of llama-server's `/infill` that change the answer; others (`samplers`,
/// `cache_prompt`, `t_max_prompt_ms`, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
struct InfillRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    input_prefix: String,
    #[serde(default)]
    input_suffix: String,
    #[serde(default)]
    input_extra: Vec<ExtraChunk>,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    n_predict: Option<i64>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    t_max_predict_ms: Option<u64>,
    #[serde(default)]
    n_indent: Option<usize>,
}

/// The answer to `POST /infill`.
pub async fn handle(State(state): State<Arc<ServerState>>, body: Body) -> Response {
    match respond(state, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn respond(state: Arc<ServerState>, body: Body) -> Result<Response, ApiError> {
    let request: InfillRequest = read_json(&state, body).await?;
    check_model(&state, request.model.as_deref())?;
    let fim = state.fim.ok_or_else(|| {
        ApiError::bad_request(
            "this model has no fill-in-the-middle tokens (<｜fim▁begin｜>, <|fim_prefix|>), so \
             /infill is not supported",
        )
    })?;
    let sampler = params::sampler(request.temperature, request.top_p, request.seed)?;
    let stop = params::stop_strings(request.stop.clone())?;
    let n_ctx = state.engine.info().n_ctx;
    let n_predict = match request.n_predict {
        Some(n) if n >= 0 => n as usize,
        _ => DEFAULT_PREDICT,
    };
    let for_prompt = state.clone();
    let (tokens, truncated, request) = tokio::task::spawn_blocking(move || {
        let tokenizer = for_prompt.engine.tokenizer();
        let budget = n_ctx.saturating_sub(n_predict.max(1));
        let (tokens, truncated) = infill_prompt(tokenizer, fim, &request, budget)?;
        Ok::<_, ApiError>((tokens, truncated, request))
    })
    .await
    .map_err(|e| ApiError::server(format!("preparing the prompt failed: {e}")))??;
    let max_tokens = n_predict.min(n_ctx.saturating_sub(tokens.len()));
    let options = GenerateOptions {
        max_tokens,
        sampler,
        stop,
        ..GenerateOptions::default()
    };
    let job = AsyncJob::submit(&state, Request { tokens, options })?;
    let reply = Reply {
        model: state.options.model_id.clone(),
        truncated,
        log: !state.options.quiet,
        metrics: state.metrics.clone(),
        cut: Cut::new(request.n_indent.unwrap_or(0)),
        time_limit: request.t_max_predict_ms.map(Duration::from_millis),
    };
    if request.stream {
        let stream = stream::unfold(Some((job, reply, None)), |s| async move {
            let (mut job, mut reply, mut started) = s?;
            let (events, done) = reply.next_events(&mut job, &mut started).await;
            let next = (!done).then_some((job, reply, started));
            Some((
                stream::iter(events.into_iter().map(Ok::<_, Infallible>)),
                next,
            ))
        })
        .flatten();
        Ok(Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response())
    } else {
        let mut reply = reply;
        let mut job = job;
        let mut content = String::new();
        let mut started = None;
        loop {
            match job.next().await {
                Some(Event::Text { text, .. }) => {
                    let started = *started.get_or_insert_with(Instant::now);
                    content.push_str(&reply.take(&job, &text, started));
                }
                Some(Event::Done { generation, .. }) => {
                    return Ok(axum::Json(reply.finish(&content, &generation)).into_response());
                }
                Some(Event::Error(error)) => return Err(error.into()),
                Some(_) => {}
                None => {
                    return Err(ApiError::server(
                        "the engine stopped before finishing the request",
                    ));
                }
            }
        }
    }
}

/// The prompt tokens within `budget` and whether anything was left out.
fn infill_prompt(
    tokenizer: &Tokenizer,
    fim: super::fim::FimTokens,
    request: &InfillRequest,
    budget: usize,
) -> Result<(Vec<u32>, bool), ApiError> {
    let encode = |text: &str| tokenizer.encode_with(text, false, false);
    let mut prefix = encode(&request.input_prefix)?;
    prefix.extend(encode(&request.prompt)?);
    let mut suffix = encode(&request.input_suffix)?;
    // The extra chunks, each as its own token run.
    let repo = tokenizer
        .token_id("<|repo_name|>")
        .zip(tokenizer.token_id("<|file_sep|>"));
    let mut chunks: Vec<Vec<u32>> = Vec::new();
    if let Some((repo_name, file_sep)) = repo
        && !request.input_extra.is_empty()
    {
        let mut head = vec![repo_name];
        head.extend(encode("myproject\n")?);
        chunks.push(head);
        for chunk in &request.input_extra {
            let mut tokens = vec![file_sep];
            tokens.extend(encode(&format!("{}\n{}", chunk.filename, chunk.text))?);
            chunks.push(tokens);
        }
    } else {
        for chunk in &request.input_extra {
            chunks.push(encode(&format!("\n--- snippet ---\n{}", chunk.text))?);
        }
    }
    let mut bos = Vec::new();
    if tokenizer.add_bos_token()
        && let Some(id) = tokenizer.bos()
    {
        bos.push(id);
    }
    // Markers, then the suffix (at most a quarter), then the prefix's end, then extra chunks.
    let fixed = bos.len() + 3;
    if budget <= fixed + 1 {
        return Err(ApiError::invalid_param(
            "n_predict",
            "n_predict leaves no room for the prompt in the context window",
        ));
    }
    let room = budget - fixed;
    let mut truncated = false;
    let suffix_take = suffix.len().min(room / 4);
    if suffix_take < suffix.len() {
        suffix.truncate(suffix_take);
        truncated = true;
    }
    let prefix_take = prefix.len().min(room - suffix.len());
    if prefix_take < prefix.len() {
        prefix.drain(..prefix.len() - prefix_take);
        truncated = true;
    }
    let mut left = room - suffix.len() - prefix.len();
    let mut extra = Vec::new();
    // The chunks nearest the cursor come last in the request; keep the latest that fit.
    let mut kept: Vec<&Vec<u32>> = Vec::new();
    for chunk in chunks.iter().rev() {
        if chunk.len() <= left {
            left -= chunk.len();
            kept.push(chunk);
        } else {
            truncated = true;
        }
    }
    for chunk in kept.into_iter().rev() {
        extra.extend_from_slice(chunk);
    }
    let mut tokens = bos;
    tokens.extend(extra);
    tokens.push(fim.prefix);
    tokens.extend(prefix);
    tokens.push(fim.suffix);
    tokens.extend(suffix);
    tokens.push(fim.middle);
    Ok((tokens, truncated))
}

/// The `n_indent` rule: generation stops before the first line (after the first) whose first
/// non-blank character comes after fewer than `n_indent` blanks; that line and the newline
/// before it are dropped. Text after a newline is held back until its line is known to pass, so
/// a stream never sends what the rule cuts.
struct Cut {
    n_indent: usize,
    /// Held back: from a newline to the first non-blank character of its line.
    pending: String,
    stopped: bool,
}

impl Cut {
    fn new(n_indent: usize) -> Cut {
        Cut {
            n_indent,
            pending: String::new(),
            stopped: false,
        }
    }

    /// The part of `text` that may be sent now.
    fn push(&mut self, text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            if self.stopped {
                break;
            }
            if self.n_indent == 0 {
                out.push(c);
                continue;
            }
            if !self.pending.is_empty() {
                if c == ' ' || c == '\t' {
                    self.pending.push(c);
                    continue;
                }
                if c == '\n' {
                    // A blank line passes; the next line is held back in turn.
                    out.push_str(&self.pending);
                    self.pending.clear();
                    self.pending.push('\n');
                    continue;
                }
                let indent = self.pending.chars().count() - 1;
                if indent < self.n_indent {
                    self.pending.clear();
                    self.stopped = true;
                    break;
                }
                out.push_str(&self.pending);
                self.pending.clear();
                out.push(c);
                continue;
            }
            if c == '\n' {
                self.pending.push('\n');
            } else {
                out.push(c);
            }
        }
        out
    }

    /// What is still held back once generation ended (a trailing newline and blanks).
    fn flush(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        std::mem::take(&mut self.pending)
    }
}

struct Reply {
    model: String,
    truncated: bool,
    log: bool,
    metrics: Arc<super::metrics::Metrics>,
    cut: Cut,
    time_limit: Option<Duration>,
}

impl Reply {
    /// The part of `text` to send, stopping the job when the indentation rule or the time limit
    /// (past it, at the first newline) says so.
    fn take(&mut self, job: &AsyncJob, text: &str, started: Instant) -> String {
        let out = self.cut.push(text);
        let late = self
            .time_limit
            .is_some_and(|limit| started.elapsed() >= limit && text.contains('\n'));
        if self.cut.stopped || late {
            job.stop();
        }
        out
    }

    /// The final object: llama-server's fields for a finished completion.
    fn finish(&mut self, content: &str, generation: &Generation) -> Json {
        params::log_done(
            (self.log, &self.metrics),
            super::metrics::Endpoint::Infill,
            "infill",
            generation,
        );
        let mut content = content.to_owned();
        content.push_str(&self.cut.flush());
        let s = &generation.stats;
        let stop_type = match generation.stop_reason {
            StopReason::EndOfText => "eos",
            StopReason::Stop => "word",
            StopReason::Length | StopReason::ContextFull | StopReason::Cancelled => "limit",
        };
        json!({
            "content": content,
            "stop": true,
            "model": self.model,
            "stop_type": stop_type,
            "tokens_predicted": s.generated_tokens,
            "tokens_evaluated": s.prompt_tokens,
            "tokens_cached": s.reused_tokens,
            "truncated": self.truncated,
            "timings": {
                "prompt_n": s.prompt_tokens - s.reused_tokens,
                "prompt_ms": s.prefill_s * 1e3,
                "prompt_per_second": s.prefill_tok_s(),
                "predicted_n": s.generated_tokens,
                "predicted_ms": s.decode_s * 1e3,
                "predicted_per_second": s.decode_tok_s(),
            },
        })
    }

    /// The next stream events and whether the stream is over.
    async fn next_events(
        &mut self,
        job: &mut AsyncJob,
        started: &mut Option<Instant>,
    ) -> (Vec<sse::Event>, bool) {
        let data = |object: Json| sse::Event::default().data(object.to_string());
        loop {
            match job.next().await {
                Some(Event::Text { text, .. }) => {
                    let at = *started.get_or_insert_with(Instant::now);
                    let out = self.take(job, &text, at);
                    if !out.is_empty() {
                        return (vec![data(json!({"content": out, "stop": false}))], false);
                    }
                }
                Some(Event::Done { generation, .. }) => {
                    let held = self.cut.flush();
                    let mut events = Vec::new();
                    if !held.is_empty() {
                        events.push(data(json!({"content": held, "stop": false})));
                    }
                    events.push(data(self.finish("", &generation)));
                    return (events, true);
                }
                Some(Event::Error(error)) => {
                    let error: ApiError = error.into();
                    return (vec![data(error.body())], true);
                }
                Some(_) => {}
                None => return (Vec::new(), true),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(n_indent: usize, pieces: &[&str]) -> (String, bool) {
        let mut cut = Cut::new(n_indent);
        let mut out: String = pieces.iter().map(|p| cut.push(p)).collect();
        out.push_str(&cut.flush());
        (out, cut.stopped)
    }

    #[test]
    fn n_indent_stops_before_a_shallower_line() {
        // Off: everything passes.
        assert_eq!(cut(0, &["a\n", "b"]), ("a\nb".to_owned(), false));
        // The second line is indented 4 ≥ 4: kept; the third has 0: cut with its newline.
        let (text, stopped) = cut(4, &["x = 1\n", "    y", " = 2\n", "z = 3\n"]);
        assert_eq!(text, "x = 1\n    y = 2");
        assert!(stopped);
        // Indentation split over pieces, tabs count one each, blank lines pass.
        let (text, stopped) = cut(2, &["a\n", " ", "\tb\n", "\n", "  c"]);
        assert_eq!(text, "a\n \tb\n\n  c");
        assert!(!stopped);
        // A trailing newline is flushed at the end.
        assert_eq!(cut(2, &["a\n"]), ("a\n".to_owned(), false));
    }
}
