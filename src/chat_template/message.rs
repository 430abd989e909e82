//! The conversation handed to a template. Field names and shapes follow the OpenAI-style dicts
//! Hugging Face passes (`role`, `content`, `tool_calls[].function.arguments`, …), because the
//! templates index them by those names and test which keys exist.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// One message. Serialized in field order, leaving out absent optional fields, since templates
/// test `'tool_calls' in message` or `message.reasoning_content is defined`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Always present in the dict, as `None` when absent: the DeepSeek templates recognise a
    /// tool-call turn by `message['content'] is none`.
    #[serde(default)]
    pub content: Option<String>,
    /// R1-style thinking kept apart from the answer (templates that know it render or drop it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Calls made by an assistant turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// On a `tool` message: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// On a `tool` message: the function's name (some templates print it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Any further keys, passed through after the ones above (e.g. DeepSeek's `prefix`).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Json>,
}

impl ChatMessage {
    fn with(role: &str, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: Some(content.into()),
            ..ChatMessage::default()
        }
    }

    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage::with("system", content)
    }

    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage::with("user", content)
    }

    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage::with("assistant", content)
    }

    /// An assistant turn that only calls tools (its content is `None`).
    pub fn assistant_tool_calls(calls: Vec<ToolCall>) -> ChatMessage {
        ChatMessage {
            role: "assistant".into(),
            tool_calls: calls,
            ..ChatMessage::default()
        }
    }

    /// A tool result answering call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            tool_call_id: Some(tool_call_id.into()),
            ..ChatMessage::with("tool", content)
        }
    }
}

/// One call in an assistant turn: `{"id": …, "type": "function", "function": {…}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `function` today; the DeepSeek templates print it.
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_kind() -> String {
    "function".into()
}

impl ToolCall {
    /// A function call whose arguments are JSON text, as the OpenAI API and the DeepSeek
    /// templates (which concatenate them into the prompt) expect.
    pub fn function(
        id: Option<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> ToolCall {
        ToolCall {
            id,
            kind: function_kind(),
            function: FunctionCall {
                name: name.into(),
                arguments: Json::String(arguments.into()),
            },
        }
    }
}

/// The function part of a [`ToolCall`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text (a string) in the OpenAI convention; an object works with templates that apply
    /// `tojson` to it, and fails in those that concatenate it, exactly as in Python.
    pub arguments: Json,
}

/// Options of one rendering, mirroring `apply_chat_template`'s keyword arguments.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// End with the header of an assistant turn so the model answers next.
    pub add_generation_prompt: bool,
    /// Tool schemas (`tools` in the template); `None` passes `None`, as Hugging Face does.
    pub tools: Option<Vec<Json>>,
    /// Further template variables (e.g. `enable_thinking`, `thinking`); they may override the
    /// special-token strings but not `messages`, `tools`, `documents` or `add_generation_prompt`.
    pub extra: Map<String, Json>,
    /// The time `strftime_now` reports; `None` means the system clock.
    pub now: Option<SystemTime>,
}
