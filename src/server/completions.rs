//! `POST /v1/completions`: a raw prompt continued, or with `suffix` a fill-in-the-middle prompt
//! (what editors send for inline completion), answered as one `text_completion` object or
//! streamed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, stream};
use serde_json::{Value as Json, json};

use super::ServerState;
use super::error::ApiError;
use super::job::AsyncJob;
use super::params::{self, MAX_TOP_LOGPROBS};
use super::routes::{check_model, read_json};
use super::types::{CompletionLogprobs, CompletionRequest, Prompt, Usage};
use crate::engine::{Channel, Event, GenerateOptions, Generation, Request, TokenLogprob};

const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// The answer to `POST /v1/completions`.
pub async fn handle(State(state): State<Arc<ServerState>>, body: Body) -> Response {
    match respond(state, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn respond(state: Arc<ServerState>, body: Body) -> Result<Response, ApiError> {
    let request: CompletionRequest = read_json(&state, body).await?;
    check_model(&state, request.model.as_deref())?;
    params::check_n(request.n)?;
    if request.best_of.is_some_and(|b| b != 1) {
        return Err(ApiError::invalid_param("best_of", "best_of must be 1"));
    }
    if request.echo == Some(true) {
        return Err(ApiError::invalid_param("echo", "echo is not supported"));
    }
    let logprobs = match request.logprobs {
        Some(n) if n > MAX_TOP_LOGPROBS => {
            return Err(ApiError::invalid_param(
                "logprobs",
                format!("logprobs must be between 0 and {MAX_TOP_LOGPROBS}"),
            ));
        }
        n => n.map(|n| n as usize),
    };
    let sampler = params::sampler(request.temperature, request.top_p, request.seed)?;
    let stop = params::stop_strings(request.stop.clone())?;
    let stream = request.stream.unwrap_or(false);
    let include_usage = request
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);

    let for_prompt = state.clone();
    let tokens = tokio::task::spawn_blocking(move || {
        prompt_tokens(&for_prompt, request.prompt, request.suffix)
    })
    .await
    .map_err(|e| ApiError::server(format!("preparing the prompt failed: {e}")))??;
    let max_tokens = params::max_tokens(
        Some(request.max_tokens.unwrap_or(16)),
        "max_tokens",
        tokens.len(),
        state.engine.info().n_ctx,
    )
    .map_err(|e| match e.code {
        Some("context_length_exceeded") => e.with_param("prompt"),
        _ => e,
    })?;
    let options = GenerateOptions {
        max_tokens,
        sampler,
        stop,
        logprobs,
        ..GenerateOptions::default()
    };
    let job = AsyncJob::submit(&state, Request { tokens, options })?;
    let reply = Reply {
        id: params::response_id("cmpl"),
        created: params::unix_now(),
        model: state.options.model_id.clone(),
        logprobs: logprobs.is_some(),
        log: !state.options.quiet,
        metrics: state.metrics.clone(),
    };
    if stream {
        let streamer = Streamer {
            job,
            reply,
            include_usage,
            text: Text::default(),
            finished: false,
        };
        Ok(Sse::new(streamer.into_stream())
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response())
    } else {
        complete(job, reply).await
    }
}

/// The prompt's tokens: with a suffix, a FIM prompt (400 if the model has no FIM tokens).
fn prompt_tokens(
    state: &ServerState,
    prompt: Prompt,
    suffix: Option<String>,
) -> Result<Vec<u32>, ApiError> {
    let tokenizer = state.engine.tokenizer();
    let text = match prompt {
        Prompt::Text(text) => Some(text),
        Prompt::Texts(mut texts) if texts.len() == 1 => texts.pop(),
        Prompt::Texts(_) | Prompt::TokenLists(_) => {
            return Err(ApiError::invalid_param(
                "prompt",
                "one prompt per request is supported (a string, a list of one string, or token ids)",
            ));
        }
        Prompt::Tokens(tokens) => {
            if suffix.is_some() {
                return Err(ApiError::invalid_param(
                    "suffix",
                    "suffix needs a text prompt",
                ));
            }
            let n_vocab = state.engine.info().n_vocab;
            if let Some(bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
                return Err(ApiError::invalid_param(
                    "prompt",
                    format!("token id {bad} is outside the vocabulary of {n_vocab} tokens"),
                ));
            }
            if tokens.is_empty() {
                return Err(ApiError::invalid_param("prompt", "the prompt is empty"));
            }
            return Ok(tokens);
        }
    };
    let text = text.unwrap_or_default();
    let tokens = match suffix {
        Some(suffix) => {
            let fim = state.fim.ok_or_else(|| {
                ApiError::invalid_param(
                    "suffix",
                    "this model has no fill-in-the-middle tokens (<｜fim▁begin｜>, <|fim_prefix|>), so suffix is not supported",
                )
            })?;
            fim.prompt(tokenizer, &text, &suffix)?
        }
        None => {
            let mut tokens = Vec::new();
            if tokenizer.add_bos_token()
                && let Some(bos) = tokenizer.bos()
            {
                tokens.push(bos);
            }
            tokens.extend(tokenizer.encode_with(&text, false, true)?);
            tokens
        }
    };
    if tokens.is_empty() {
        return Err(ApiError::invalid_param("prompt", "the prompt is empty"));
    }
    Ok(tokens)
}

struct Reply {
    id: String,
    created: u64,
    model: String,
    logprobs: bool,
    /// Print one line per finished request on stderr.
    log: bool,
    /// Where finished requests are counted.
    metrics: Arc<super::metrics::Metrics>,
}

impl Reply {
    fn object(&self, text: &str, logprobs: Json, finish_reason: Option<&str>) -> Json {
        json!({
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": Json::Null,
            "choices": [{"text": text, "index": 0, "logprobs": logprobs, "finish_reason": finish_reason}],
        })
    }
}

fn usage(generation: &Generation) -> Usage {
    let s = &generation.stats;
    Usage::new(s.prompt_tokens, s.generated_tokens, s.reused_tokens)
}

/// The completion's text from both channels: thinking (which the engine splits off) is put back
/// between its tags, since a raw completion has no separate field for it.
#[derive(Default)]
struct Text {
    thinking: bool,
    /// Bytes of text produced so far (legacy logprob offsets).
    offset: usize,
}

impl Text {
    fn push(&mut self, channel: Channel, text: &str) -> String {
        let mut out = String::new();
        match (self.thinking, channel) {
            (false, Channel::Thinking) => out.push_str("<think>"),
            (true, Channel::Answer) => out.push_str("</think>"),
            _ => {}
        }
        self.thinking = channel == Channel::Thinking;
        out.push_str(text);
        out
    }
}

fn logprobs_json(tokens: &[TokenLogprob], offset: &mut usize) -> Json {
    let mut out = CompletionLogprobs::default();
    params::push_completion_logprobs(&mut out, tokens, offset);
    json!(out)
}

async fn complete(mut job: AsyncJob, reply: Reply) -> Result<Response, ApiError> {
    let mut text = String::new();
    let mut parts = Text::default();
    let mut tokens = Vec::new();
    let generation = loop {
        match job.next().await {
            Some(Event::Text { channel, text: t }) => text.push_str(&parts.push(channel, &t)),
            Some(Event::Token(t)) if reply.logprobs => tokens.push(t),
            Some(Event::Done { generation, .. }) => {
                params::log_done(
                    (reply.log, &reply.metrics),
                    super::metrics::Endpoint::Completion,
                    &reply.id,
                    &generation,
                );
                break generation;
            }
            Some(Event::Error(error)) => return Err(error.into()),
            Some(_) => {}
            None => {
                return Err(ApiError::server(
                    "the engine stopped before finishing the request",
                ));
            }
        }
    };
    let logprobs = if reply.logprobs {
        logprobs_json(&tokens, &mut 0)
    } else {
        Json::Null
    };
    let mut body = reply.object(
        &text,
        logprobs,
        Some(params::finish_reason(generation.stop_reason)),
    );
    body["usage"] = json!(usage(&generation));
    Ok(axum::Json(body).into_response())
}

struct Streamer {
    job: AsyncJob,
    reply: Reply,
    include_usage: bool,
    text: Text,
    finished: bool,
}

impl Streamer {
    fn into_stream(self) -> impl Stream<Item = Result<sse::Event, Infallible>> + Send {
        stream::unfold(self, |mut s| async move {
            let events = s.next_events().await?;
            Some((stream::iter(events.into_iter().map(Ok)), s))
        })
        .flatten()
    }

    fn event(&self, mut object: Json) -> sse::Event {
        if self.include_usage {
            object["usage"] = Json::Null;
        }
        sse::Event::default().data(object.to_string())
    }

    async fn next_events(&mut self) -> Option<Vec<sse::Event>> {
        if self.finished {
            return None;
        }
        let mut tokens: Vec<TokenLogprob> = Vec::new();
        loop {
            match self.job.next().await {
                Some(Event::Text { channel, text }) if !text.is_empty() => {
                    let text = self.text.push(channel, &text);
                    let logprobs = if self.reply.logprobs {
                        logprobs_json(&tokens, &mut self.text.offset.clone())
                    } else {
                        Json::Null
                    };
                    self.text.offset += text.len();
                    let object = self.reply.object(&text, logprobs, None);
                    return Some(vec![self.event(object)]);
                }
                Some(Event::Token(t)) if self.reply.logprobs => tokens.push(t),
                Some(Event::Done { generation, .. }) => {
                    params::log_done(
                        (self.reply.log, &self.reply.metrics),
                        super::metrics::Endpoint::Completion,
                        &self.reply.id,
                        &generation,
                    );
                    self.finished = true;
                    let reason = params::finish_reason(generation.stop_reason);
                    let logprobs = if self.reply.logprobs {
                        logprobs_json(&tokens, &mut self.text.offset.clone())
                    } else {
                        Json::Null
                    };
                    let mut events =
                        vec![self.event(self.reply.object("", logprobs, Some(reason)))];
                    if self.include_usage {
                        let mut object = self.reply.object("", Json::Null, None);
                        object["choices"] = json!([]);
                        object["usage"] = json!(usage(&generation));
                        events.push(sse::Event::default().data(object.to_string()));
                    }
                    events.push(sse::Event::default().data("[DONE]"));
                    return Some(events);
                }
                Some(Event::Error(error)) => {
                    self.finished = true;
                    let error = ApiError::from(error);
                    return Some(vec![sse::Event::default().data(error.body().to_string())]);
                }
                Some(_) => {}
                None => {
                    self.finished = true;
                    let error = ApiError::server("the engine stopped before finishing the request");
                    return Some(vec![sse::Event::default().data(error.body().to_string())]);
                }
            }
        }
    }
}
