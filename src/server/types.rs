//! The OpenAI wire types this server reads and writes (Chat Completions and legacy Completions).
//!
//! Requests are parsed leniently where OpenAI is lenient (unknown fields are ignored, since
//! clients send fields such as `user` or `frequency_penalty`) and strictly where a wrong type
//! would change the answer (a string where a number belongs is a 400 naming the field).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// `stop`: one string or a list of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// `response_format`: `{"type": "text" | "json_object" | "json_schema", "json_schema": {…}}`.
#[derive(Clone, Debug, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub json_schema: Option<Json>,
}

/// A message's `content`: a string, or a list of parts of which only `text` parts are supported.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Clone, Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// One incoming chat message.
#[derive(Clone, Debug, Deserialize)]
pub struct InMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<InToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct InToolCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub function: InFunction,
}

#[derive(Clone, Debug, Deserialize)]
pub struct InFunction {
    pub name: String,
    /// JSON text per the API; an object is accepted and serialised.
    #[serde(default)]
    pub arguments: Option<Json>,
}

/// `POST /v1/chat/completions`.
#[derive(Clone, Debug, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<InMessage>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub logprobs: Option<bool>,
    #[serde(default)]
    pub top_logprobs: Option<u64>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    #[serde(default)]
    pub tools: Option<Vec<Json>>,
    #[serde(default)]
    pub tool_choice: Option<Json>,
    /// Extra chat-template variables (llama-server's `chat_template_kwargs`, e.g.
    /// `{"thinking": true}` for DeepSeek-V3.1's template).
    #[serde(default)]
    pub chat_template_kwargs: Option<serde_json::Map<String, Json>>,
    /// OpenAI's `reasoning_effort`, mapped to the template's thinking switch.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
}

/// `prompt`: a string, a list of one string, or token ids.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

/// `POST /v1/completions`.
#[derive(Clone, Debug, Deserialize)]
pub struct CompletionRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub prompt: Prompt,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default)]
    pub best_of: Option<u64>,
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Legacy API: the number of top alternatives per token (0..=20 here).
    #[serde(default)]
    pub logprobs: Option<u64>,
}

/// Token counts of one request.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    pub prompt_tokens_details: PromptDetails,
}

/// Prompt tokens served from the KV cache of the previous request.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct PromptDetails {
    pub cached_tokens: usize,
}

impl Usage {
    pub fn new(prompt: usize, completion: usize, cached: usize) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: PromptDetails {
                cached_tokens: cached,
            },
        }
    }
}

/// An outgoing tool call (`index` is set only in stream deltas).
#[derive(Clone, Debug, Serialize)]
pub struct OutToolCall {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: OutFunction,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutFunction {
    pub name: String,
    pub arguments: String,
}

/// One token's log-probability in the Chat Completions shape.
#[derive(Clone, Debug, Serialize)]
pub struct ChatLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<TopLogprob>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

/// `choices[].logprobs` of a chat response or chunk.
#[derive(Clone, Debug, Serialize)]
pub struct ChatLogprobs {
    pub content: Vec<ChatLogprob>,
}

/// `choices[].logprobs` of a legacy completion.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CompletionLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<f32>,
    pub top_logprobs: Vec<serde_json::Map<String, Json>>,
    pub text_offset: Vec<usize>,
}

/// `GET /v1/models` entry.
#[derive(Clone, Debug, Serialize)]
pub struct ModelEntry {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn chat_request_parses_common_shapes() {
        let r: ChatRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},
                {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
                  "function":{"name":"f","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"c1","content":"42"}],
               "stop":"x","stream":true,"stream_options":{"include_usage":true},
               "frequency_penalty":0,"user":"someone"}"#,
        )
        .unwrap();
        assert_eq!(r.messages.len(), 4);
        assert!(matches!(r.stop, Some(Stop::One(_))));
        assert!(r.stream_options.unwrap().include_usage);
        let many: Stop = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!(many.into_vec(), ["a", "b"]);
    }

    #[test]
    fn wrong_types_are_errors() {
        for bad in [
            r#"{"messages":"hi"}"#,
            r#"{"messages":[],"max_tokens":"ten"}"#,
            r#"{"messages":[],"temperature":[1]}"#,
            r#"{"messages":[{"content":"no role"}]}"#,
            r#"{"messages":[],"stop":5}"#,
        ] {
            assert!(serde_json::from_str::<ChatRequest>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prompt_variants() {
        for (text, ok) in [
            (r#"{"prompt":"x"}"#, true),
            (r#"{"prompt":["x"]}"#, true),
            (r#"{"prompt":[1,2,3]}"#, true),
            (r#"{"prompt":[[1,2]]}"#, true),
            (r#"{"prompt":{"a":1}}"#, false),
            (r#"{"prompt":[-1]}"#, false),
        ] {
            assert_eq!(
                serde_json::from_str::<CompletionRequest>(text).is_ok(),
                ok,
                "{text}"
            );
        }
    }
}
