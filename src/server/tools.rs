//! Tool calls in DeepSeek's format (spec §7.4), parsed back out of a reply:
//!
//! ```text
//! <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
//! ```json
//! ARGS
//! ```<｜tool▁call▁end｜>
//! <｜tool▁call▁begin｜>…<｜tool▁call▁end｜><｜tool▁calls▁end｜>
//! ```
//!
//! V3.1 writes `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>` (no type, no fence);
//! both are accepted, and so is the Hermes form Qwen-family templates ask for
//! (`<tool_call>{"name": …, "arguments": {…}}</tool_call>`, one block per call). Text before the
//! calls is the message's content. A reply whose calls do not parse stays plain content: a
//! model's malformed output is never a server error.

use serde_json::Value as Json;

pub const CALLS_BEGIN: &str = "<｜tool▁calls▁begin｜>";
pub const CALLS_END: &str = "<｜tool▁calls▁end｜>";
pub const CALL_BEGIN: &str = "<｜tool▁call▁begin｜>";
pub const CALL_END: &str = "<｜tool▁call▁end｜>";
pub const SEP: &str = "<｜tool▁sep｜>";
pub const HERMES_BEGIN: &str = "<tool_call>";
pub const HERMES_END: &str = "</tool_call>";

/// The markers that open a block of calls.
const MARKERS: [&str; 2] = [CALLS_BEGIN, HERMES_BEGIN];

/// One parsed call: the function's name and its arguments as JSON text.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedCall {
    pub name: String,
    pub arguments: String,
}

/// A reply split into content and calls.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedReply {
    /// Text before the calls (the whole reply when there are none).
    pub content: String,
    pub calls: Vec<ParsedCall>,
}

/// Where the first block of calls starts, if any marker occurs.
fn first_marker(text: &str) -> Option<(usize, &'static str)> {
    MARKERS
        .iter()
        .filter_map(|m| text.find(m).map(|at| (at, *m)))
        .min()
}

/// Splits `text` into content and tool calls. With no call marker, or with calls that do not
/// parse, everything is content.
pub fn parse(text: &str) -> ParsedReply {
    let plain = || ParsedReply {
        content: text.to_owned(),
        calls: Vec::new(),
    };
    let Some((start, marker)) = first_marker(text) else {
        return plain();
    };
    let calls = if marker == HERMES_BEGIN {
        parse_hermes(&text[start..])
    } else {
        parse_deepseek(&text[start + CALLS_BEGIN.len()..])
    };
    if calls.is_empty() {
        return plain();
    }
    ParsedReply {
        content: text[..start].to_owned(),
        calls,
    }
}

/// `<tool_call>{"name": …, "arguments": …}</tool_call>` blocks, from the first one on.
fn parse_hermes(mut rest: &str) -> Vec<ParsedCall> {
    let mut calls = Vec::new();
    loop {
        rest = rest.trim_start();
        let Some(after) = rest.strip_prefix(HERMES_BEGIN) else {
            break;
        };
        let (body, next) = match after.find(HERMES_END) {
            Some(end) => (&after[..end], &after[end + HERMES_END.len()..]),
            None => (after, ""),
        };
        let Ok(Json::Object(call)) = serde_json::from_str::<Json>(body.trim()) else {
            break;
        };
        let Some(name) = call.get("name").and_then(Json::as_str) else {
            break;
        };
        let arguments = match call.get("arguments") {
            None => "{}".to_owned(),
            Some(Json::String(s)) => match serde_json::from_str::<Json>(s) {
                Ok(value) => value.to_string(),
                Err(_) => break,
            },
            Some(value) => value.to_string(),
        };
        calls.push(ParsedCall {
            name: name.to_owned(),
            arguments,
        });
        rest = next;
    }
    calls
}

/// The calls after `<｜tool▁calls▁begin｜>`.
fn parse_deepseek(mut rest: &str) -> Vec<ParsedCall> {
    let mut calls = Vec::new();
    loop {
        rest = rest.trim_start();
        let Some(after_begin) = rest.strip_prefix(CALL_BEGIN) else {
            break;
        };
        // A call cut off by max_tokens (no end marker) is still parsed if it is complete JSON.
        let (body, next) = match after_begin.find(CALL_END) {
            Some(end) => (&after_begin[..end], &after_begin[end + CALL_END.len()..]),
            None => (after_begin, ""),
        };
        match parse_call(body) {
            Some(call) => calls.push(call),
            None => break,
        }
        rest = next;
    }
    calls
}

/// One call's body between `<｜tool▁call▁begin｜>` and `<｜tool▁call▁end｜>`.
fn parse_call(body: &str) -> Option<ParsedCall> {
    let (head, tail) = body.split_once(SEP)?;
    let head = head.trim();
    // V3: `function<｜tool▁sep｜>NAME\n```json\nARGS\n```` ; V3.1: `NAME<｜tool▁sep｜>ARGS`.
    let (name, args) = if head == "function" || head.is_empty() {
        let (name, args) = match tail.split_once('\n') {
            Some((name, args)) => (name, args),
            None => (tail, ""),
        };
        (name.trim(), strip_fence(args))
    } else {
        (head, tail.trim())
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let args = if args.is_empty() { "{}" } else { args };
    // The arguments must be JSON; re-serialise them compactly as the API does.
    let value: Json = serde_json::from_str(args).ok()?;
    Some(ParsedCall {
        name: name.to_owned(),
        arguments: value.to_string(),
    })
}

/// The text inside a ```` ```json … ``` ```` fence, or the trimmed text if there is none.
fn strip_fence(text: &str) -> &str {
    let t = text.trim();
    let Some(inner) = t.strip_prefix("```") else {
        return t;
    };
    let inner = inner.strip_prefix("json").unwrap_or(inner);
    inner.strip_suffix("```").unwrap_or(inner).trim()
}

/// A system instruction describing `tools` and the call format, for templates that do not
/// render `tools` themselves (the DeepSeek-V3 template ignores the variable).
pub fn system_instruction(tools: &[Json]) -> String {
    let list: Vec<String> = tools.iter().map(|t| t.to_string()).collect();
    format!(
        "You can call these functions (OpenAI tool schemas, one per line):\n{}\n\n\
         To call one or more of them, answer with nothing but:\n\
         {CALLS_BEGIN}{CALL_BEGIN}function{SEP}FUNCTION_NAME\n```json\n{{ARGUMENTS AS JSON}}\n```{CALL_END}{CALLS_END}\n\
         (several calls are joined by a newline between {CALL_END} and {CALL_BEGIN}). \
         Otherwise answer normally.",
        list.join("\n")
    )
}

/// How many bytes at the end of `text` could be the start of `marker` (so a stream holds them
/// back until it knows whether the marker follows). Always on a character boundary.
pub fn partial_marker_len(text: &str, marker: &str) -> usize {
    let max = marker.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && marker.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

/// Streams an answer while tool calls may follow: text is released as it comes, except what
/// could be the start of a call marker, and nothing after the marker; [`CallGate::finish`]
/// parses the calls from what was held back.
#[derive(Debug, Default)]
pub struct CallGate {
    /// Whether tools were offered (without them everything is content at once).
    active: bool,
    answer: String,
    sent: usize,
    in_calls: bool,
}

impl CallGate {
    pub fn new(active: bool) -> CallGate {
        CallGate {
            active,
            ..CallGate::default()
        }
    }

    /// Adds streamed answer text; returns the content that can be sent now.
    pub fn push(&mut self, text: &str) -> String {
        self.answer.push_str(text);
        let end = if !self.active {
            self.answer.len()
        } else if self.in_calls {
            self.sent
        } else if let Some((at, _)) = first_marker(&self.answer[self.sent..]) {
            self.in_calls = true;
            self.sent + at
        } else {
            let pending = &self.answer[self.sent..];
            let held = MARKERS
                .iter()
                .map(|m| partial_marker_len(pending, m))
                .max()
                .unwrap_or(0);
            self.answer.len() - held
        };
        let ready = self.answer[self.sent..end].to_owned();
        self.sent = end;
        ready
    }

    /// At the end: the content still to send, and the calls (empty if none parsed, in which
    /// case the held-back text is content).
    pub fn finish(&mut self) -> (String, Vec<ParsedCall>) {
        let rest = self.answer[self.sent..].to_owned();
        self.sent = self.answer.len();
        if self.active {
            let parsed = parse(&rest);
            if !parsed.calls.is_empty() {
                return (parsed.content, parsed.calls);
            }
        }
        (rest, Vec::new())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_has_no_calls() {
        let r = parse("Hello there");
        assert_eq!(r.content, "Hello there");
        assert!(r.calls.is_empty());
    }

    #[test]
    fn v3_single_and_multiple_calls() {
        let one = format!(
            "Let me check.{CALLS_BEGIN}{CALL_BEGIN}function{SEP}get_weather\n```json\n{{\"city\": \"Paris\"}}\n```{CALL_END}{CALLS_END}"
        );
        let r = parse(&one);
        assert_eq!(r.content, "Let me check.");
        assert_eq!(
            r.calls,
            vec![ParsedCall {
                name: "get_weather".into(),
                arguments: "{\"city\":\"Paris\"}".into()
            }]
        );
        let two = format!(
            "{CALLS_BEGIN}{CALL_BEGIN}function{SEP}a\n```json\n{{}}\n```{CALL_END}\n{CALL_BEGIN}function{SEP}b\n```json\n[1, 2]\n```{CALL_END}{CALLS_END}"
        );
        let r = parse(&two);
        assert_eq!(r.content, "");
        let names: Vec<&str> = r.calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(r.calls[1].arguments, "[1,2]");
    }

    #[test]
    fn v31_format_and_truncated_call() {
        let v31 =
            format!("{CALLS_BEGIN}{CALL_BEGIN}search{SEP}{{\"q\":\"rust\"}}{CALL_END}{CALLS_END}");
        let r = parse(&v31);
        assert_eq!(r.calls.len(), 1);
        assert_eq!(r.calls[0].name, "search");
        // Cut off before the end marker, but the JSON is whole.
        let cut = format!("{CALLS_BEGIN}{CALL_BEGIN}function{SEP}f\n```json\n{{\"x\": 1}}\n```");
        assert_eq!(parse(&cut).calls.len(), 1);
    }

    #[test]
    fn hermes_calls() {
        let text = "ok <tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>{\"name\": \"g\", \"arguments\": \"{}\"}</tool_call>";
        let r = parse(text);
        assert_eq!(r.content, "ok ");
        assert_eq!(
            r.calls,
            vec![
                ParsedCall {
                    name: "f".into(),
                    arguments: "{\"x\":1}".into()
                },
                ParsedCall {
                    name: "g".into(),
                    arguments: "{}".into()
                }
            ]
        );
        for bad in [
            "<tool_call>not json</tool_call>",
            "<tool_call>{\"arguments\": {}}</tool_call>",
            "<tool_call>{\"name\": \"f\", \"arguments\": \"{oops\"}</tool_call>",
        ] {
            assert!(parse(bad).calls.is_empty(), "{bad}");
        }
        let mut gate = CallGate::new(true);
        assert_eq!(gate.push("a <tool_"), "a ");
        assert_eq!(gate.push("call>{\"name\": \"f\"}"), "");
        assert_eq!(gate.finish().1.len(), 1);
    }

    #[test]
    fn malformed_calls_stay_content() {
        for text in [
            CALLS_BEGIN.to_owned(),
            format!("{CALLS_BEGIN}{CALL_BEGIN}function{SEP}f\n```json\n{{not json\n```{CALL_END}"),
            format!("{CALLS_BEGIN}{CALL_BEGIN}no separator{CALL_END}"),
            format!("x{CALLS_BEGIN}{CALL_BEGIN}function{SEP}\n```json\n{{}}\n```{CALL_END}"),
        ] {
            let r = parse(&text);
            assert!(r.calls.is_empty(), "{text}");
            assert_eq!(r.content, text);
        }
    }

    #[test]
    fn partial_marker() {
        assert_eq!(partial_marker_len("abc", CALLS_BEGIN), 0);
        assert_eq!(partial_marker_len("abc<", CALLS_BEGIN), 1);
        let half = &CALLS_BEGIN[..4];
        assert_eq!(partial_marker_len(&format!("x{half}"), CALLS_BEGIN), 4);
        assert_eq!(partial_marker_len("", CALLS_BEGIN), 0);
        assert_eq!(partial_marker_len("héllo", CALLS_BEGIN), 0);
    }

    #[test]
    fn gate_holds_back_calls_while_streaming() {
        let reply = format!(
            "Sure. {CALLS_BEGIN}{CALL_BEGIN}function{SEP}f\n```json\n{{\"a\": 1}}\n```{CALL_END}{CALLS_END}"
        );
        // Fed in pieces of every size, the content comes out once and the marker never does.
        for step in [1, 2, 3, 7, 64] {
            let mut gate = CallGate::new(true);
            let mut sent = String::new();
            let chars: Vec<char> = reply.chars().collect();
            for piece in chars.chunks(step) {
                sent.push_str(&gate.push(&piece.iter().collect::<String>()));
                assert!(!sent.contains('<'), "{sent}");
            }
            let (rest, calls) = gate.finish();
            sent.push_str(&rest);
            assert_eq!(sent, "Sure. ");
            assert_eq!(calls.len(), 1);
        }
        // A lone `<` is held only until it cannot be the marker any more.
        let mut gate = CallGate::new(true);
        assert_eq!(gate.push("a <"), "a ");
        assert_eq!(gate.push("b"), "<b");
        assert_eq!(gate.finish(), (String::new(), Vec::new()));
        // A marker with no parsable call is content after all; without tools nothing is held.
        let mut gate = CallGate::new(true);
        assert_eq!(gate.push(&format!("x{CALLS_BEGIN}junk")), "x");
        assert_eq!(gate.finish().0, format!("{CALLS_BEGIN}junk"));
        let mut gate = CallGate::new(false);
        assert_eq!(gate.push(CALLS_BEGIN), CALLS_BEGIN);
        assert_eq!(gate.finish(), (String::new(), Vec::new()));
    }

    #[test]
    fn instruction_names_tools_and_format() {
        let tools = vec![serde_json::json!({"type": "function", "function": {"name": "f"}})];
        let s = system_instruction(&tools);
        assert!(s.contains("\"name\":\"f\""));
        assert!(s.contains(CALLS_BEGIN));
    }
}
