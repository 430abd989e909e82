//! Splitting a reply into its reasoning and its answer: R1-style models write
//! `<think> … </think>` before the answer (the R1 template opens the tag itself at the end of
//! the prompt). [`ThinkSplitter`] turns streamed text pieces into (channel, text) segments,
//! recognising a tag even when it arrives split over several tokens.

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Which part of a reply a piece of text belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Thinking,
    Answer,
}

/// A streaming `<think>` splitter.
#[derive(Clone, Debug)]
pub struct ThinkSplitter {
    thinking: bool,
    /// Text that may be the start of a tag, held back until the next piece decides.
    pending: String,
    /// The answer has not started yet after a closing tag: drop its leading newlines.
    trim_answer_start: bool,
}

impl ThinkSplitter {
    /// `starts_thinking`: the prompt already opened a `<think>` block (see
    /// [`prompt_opens_thinking`]).
    pub fn new(starts_thinking: bool) -> ThinkSplitter {
        ThinkSplitter {
            thinking: starts_thinking,
            pending: String::new(),
            trim_answer_start: false,
        }
    }

    /// Whether the text so far is inside a think block.
    pub fn is_thinking(&self) -> bool {
        self.thinking
    }

    /// Feeds the next decoded text; returns the segments that are certain.
    pub fn push(&mut self, text: &str) -> Vec<(Channel, String)> {
        let mut buf = std::mem::take(&mut self.pending);
        buf.push_str(text);
        let mut out = Vec::new();
        loop {
            let tag = if self.thinking { CLOSE } else { OPEN };
            if let Some(i) = buf.find(tag) {
                self.emit(&mut out, &buf[..i]);
                self.thinking = !self.thinking;
                self.trim_answer_start = !self.thinking;
                buf.drain(..i + tag.len());
                continue;
            }
            // Hold back the longest suffix that could still become the tag.
            let keep = (1..tag.len().min(buf.len() + 1))
                .rev()
                .find(|&n| {
                    buf.is_char_boundary(buf.len() - n) && tag.starts_with(&buf[buf.len() - n..])
                })
                .unwrap_or(0);
            let split = buf.len() - keep;
            self.emit(&mut out, &buf[..split]);
            self.pending = buf[split..].to_owned();
            return out;
        }
    }

    /// The held-back text at the end of the reply.
    pub fn finish(&mut self) -> Vec<(Channel, String)> {
        let rest = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        self.emit(&mut out, &rest);
        out
    }

    fn emit(&mut self, out: &mut Vec<(Channel, String)>, text: &str) {
        let channel = if self.thinking {
            Channel::Thinking
        } else {
            Channel::Answer
        };
        let text = if channel == Channel::Answer && self.trim_answer_start {
            let trimmed = text.trim_start_matches(['\n', '\r', ' ']);
            if !trimmed.is_empty() {
                self.trim_answer_start = false;
            }
            trimmed
        } else {
            text
        };
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some((c, s)) if *c == channel => s.push_str(text),
            _ => out.push((channel, text.to_owned())),
        }
    }
}

/// Whether a rendered prompt ends inside an opened `<think>` block (the R1 templates end the
/// generation prompt with `<think>\n`).
pub fn prompt_opens_thinking(prompt: &str) -> bool {
    match (prompt.rfind(OPEN), prompt.rfind(CLOSE)) {
        (Some(open), Some(close)) => open > close,
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(starts: bool, pieces: &[&str]) -> Vec<(Channel, String)> {
        let mut s = ThinkSplitter::new(starts);
        let mut all: Vec<(Channel, String)> = Vec::new();
        for p in pieces {
            all.extend(s.push(p));
        }
        all.extend(s.finish());
        // Merge neighbours of one channel, as a display would.
        let mut merged: Vec<(Channel, String)> = Vec::new();
        for (c, t) in all {
            match merged.last_mut() {
                Some((lc, lt)) if *lc == c => lt.push_str(&t),
                _ => merged.push((c, t)),
            }
        }
        merged
    }

    #[test]
    fn tags_split_over_tokens() {
        let got = run(false, &["<th", "ink>", "hmm, 2+2", "</", "think>\n\n", "4"]);
        assert_eq!(
            got,
            vec![
                (Channel::Thinking, "hmm, 2+2".to_owned()),
                (Channel::Answer, "4".to_owned())
            ]
        );
    }

    #[test]
    fn prompt_opened_block_and_plain_text() {
        let got = run(true, &["a < b", "</think>", "yes <t"]);
        assert_eq!(
            got,
            vec![
                (Channel::Thinking, "a < b".to_owned()),
                (Channel::Answer, "yes <t".to_owned())
            ]
        );
        assert_eq!(
            run(false, &["x<y", " z"]),
            vec![(Channel::Answer, "x<y z".to_owned())]
        );
        assert!(prompt_opens_thinking("<｜Assistant｜><think>\n"));
        assert!(!prompt_opens_thinking("<think>a</think>b"));
    }
}
