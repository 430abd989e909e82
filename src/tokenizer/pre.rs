//! The pre-tokenizers, chosen by `tokenizer.ggml.pre` (spec §7.3).
//!
//! Each entry reproduces the `pre_tokenizer` of the model family's Hugging Face `tokenizer.json`
//! (the oracle, spec §7.2), expressed with `tokenizers` components: `Split` steps with "isolated"
//! behaviour applied in order, `Digits`, and a final `ByteLevel`. The names and the regexes are
//! llama.cpp's (`src/llama-vocab.cpp`, `llm_tokenizer_bpe` and `llama_vocab::impl::load`); where
//! llama.cpp rewrote a regex for its own engine, the original from `tokenizer.json` is used
//! (noted per entry). An unknown name is an error: guessing a pre-tokenizer silently changes ids.
//!
//! Non-ASCII ranges are written as `\x{…}` escapes: the literal characters of llama.cpp's source
//! were NFC-normalised in places (U+1F7D became U+03CE, which makes a range run backwards).

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::{Error, Result};

/// One step of a pre-tokenizer sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `Split` with this regex, "isolated": matches and the gaps between them become pieces.
    Split(&'static str),
    /// `Digits(individual_digits = true)`: every digit is a piece of its own.
    Digits,
    /// `ByteLevel(use_regex = true)`: GPT-2's own split regex, then the byte mapping.
    Gpt2Regex,
}

/// A pre-tokenizer family and the llama.cpp flags that go with it.
#[derive(Debug)]
pub(crate) struct PreSpec {
    /// `tokenizer.ggml.pre` values that select it; the first is the canonical one.
    pub names: &'static [&'static str],
    pub steps: &'static [Step],
    /// Unicode NFC normalisation before splitting (the family's `tokenizer.json` has it).
    pub nfc: bool,
    /// A piece that is already a vocabulary entry is taken whole (`ignore_merges`).
    pub ignore_merges: bool,
    /// `add_bos_token` when the file does not say (llama.cpp's default for the family).
    pub add_bos: bool,
}

const DEEPSEEK_V3: &[Step] = &[
    Step::Split("\\p{N}{1,3}"),
    Step::Split("[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+"),
    Step::Split(
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    ),
];

// Letters of deepseek-llm's second regex: Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee,
// Glagolitic, Coptic, fullwidth Latin and a few astral alphabets.
const DEEPSEEK_LLM_LETTERS: &str = "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+";

/// CJK ideographs, U+0800..U+4E00 and Hangul (deepseek-llm and deepseek-coder).
const CJK_HANGUL: &str = "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";

// The last step is `Digits` as in DeepSeek-V2's tokenizer.json; llama.cpp uses `\p{N}+` instead,
// which gives the same ids only because the vocabulary has no multi-digit merges.
const DEEPSEEK_LLM: &[Step] = &[
    Step::Split("[\r\n]"),
    Step::Split(DEEPSEEK_LLM_LETTERS),
    Step::Split(
        "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
    ),
    Step::Split("\\s+$"),
    Step::Split(CJK_HANGUL),
    Step::Digits,
];

const DEEPSEEK_CODER: &[Step] = &[
    Step::Split("[\r\n]"),
    Step::Split("\\s?\\p{L}+"),
    Step::Split("\\s?\\p{P}+"),
    Step::Split(CJK_HANGUL),
    Step::Digits,
];

// Qwen2 and Llama-3 keep the `(?i:…)` group of their tokenizer.json; llama.cpp spells it out as
// `'[sS]|…` because its engine lacks case-insensitive groups.
const QWEN2: &[Step] = &[Step::Split(
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
)];

const LLAMA3: &[Step] = &[Step::Split(
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
)];

// Mistral's Tekken (Mistral Large 3 and the other Mistral files): the tiktoken `pat_str` of
// `tekken.json` (mistral-common's `data/tekken_240911.json`, `config.pattern`): words split at
// lower-to-upper case changes, single digits, `/` kept after punctuation runs. llama.cpp rewrote it
// for its engine (`[^a-z]` for the upper-case classes), which differs on non-ASCII letters.
const TEKKEN: &[Step] = &[Step::Split(
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
)];

// Moonshot's Kimi-K2 (and Moonlight): the tiktoken `pat_str` of its `tokenization_kimi.py`:
// runs of Han characters apart, the letter classes of the other alternatives intersected with
// "not Han", digits in threes. (llama.cpp implements it with a hand-written matcher.)
const KIMI_K2: &[Step] = &[Step::Split(
    "[\\p{Han}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
)];

const SMOLLM: &[Step] = &[Step::Digits, Step::Gpt2Regex];

const GPT2: &[Step] = &[Step::Gpt2Regex];

/// Every supported `tokenizer.ggml.pre` value.
pub(crate) const TABLE: &[PreSpec] = &[
    PreSpec {
        names: &["deepseek-v3"],
        steps: DEEPSEEK_V3,
        nfc: false,
        ignore_merges: false,
        add_bos: false,
    },
    PreSpec {
        names: &["deepseek-llm"],
        steps: DEEPSEEK_LLM,
        nfc: false,
        ignore_merges: false,
        add_bos: false,
    },
    PreSpec {
        names: &["deepseek-coder"],
        steps: DEEPSEEK_CODER,
        nfc: false,
        ignore_merges: false,
        add_bos: false,
    },
    // R1-Distill-Qwen is Qwen2.5's tokenizer with DeepSeek's chat tokens; both normalise to NFC,
    // which llama.cpp does not do (it only matters for text that is not already NFC).
    PreSpec {
        names: &["qwen2", "deepseek-r1-qwen"],
        steps: QWEN2,
        nfc: true,
        ignore_merges: false,
        add_bos: false,
    },
    PreSpec {
        names: &["llama-bpe", "llama3", "llama-v3"],
        steps: LLAMA3,
        nfc: false,
        ignore_merges: true,
        add_bos: true,
    },
    // GLM-4.5/4.7 (GLM-4.7-Flash): llama.cpp's CHATGLM4 regex is Llama-3's (contractions spelled
    // case by case); no BOS of its own (the template writes `[gMASK]<sop>`).
    PreSpec {
        names: &["glm4", "chatglm-bpe"],
        steps: LLAMA3,
        nfc: false,
        ignore_merges: false,
        add_bos: false,
    },
    // Tekken: a piece that is a vocabulary entry is taken whole, and BOS is added (llama.cpp's
    // `tokenizer_pre == "tekken"` flags; tiktoken's encoding does the same).
    PreSpec {
        names: &["tekken"],
        steps: TEKKEN,
        nfc: false,
        ignore_merges: true,
        add_bos: true,
    },
    // Kimi-K2: tiktoken takes a piece that is a vocabulary entry whole.
    PreSpec {
        names: &["kimi-k2"],
        steps: KIMI_K2,
        nfc: false,
        ignore_merges: true,
        add_bos: false,
    },
    PreSpec {
        names: &["smollm", "starcoder"],
        steps: SMOLLM,
        nfc: false,
        ignore_merges: false,
        add_bos: false,
    },
    // llama.cpp's converter writes "gpt-2"; "gpt2" is accepted as the same thing.
    PreSpec {
        names: &["gpt-2", "gpt2"],
        steps: GPT2,
        nfc: false,
        ignore_merges: false,
        add_bos: false,
    },
];

/// The entry for a `tokenizer.ggml.pre` value.
pub(crate) fn lookup(pre: &str) -> Result<&'static PreSpec> {
    TABLE
        .iter()
        .find(|spec| spec.names.contains(&pre))
        .ok_or_else(|| {
            let known: Vec<&str> = TABLE.iter().flat_map(|s| s.names.iter().copied()).collect();
            Error::Tokenizer {
                what: format!(
                    "unknown pre-tokenizer tokenizer.ggml.pre = {pre:?} (supported: {})",
                    known.join(", ")
                ),
            }
        })
}

/// The `tokenizers` pre-tokenizer for an entry, ending in the byte-level mapping.
pub(crate) fn build(spec: &PreSpec) -> Result<PreTokenizerWrapper> {
    let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(spec.steps.len() + 1);
    let mut byte_level_done = false;
    for step in spec.steps {
        steps.push(match step {
            Step::Split(regex) => {
                let split = Split::new(
                    SplitPattern::Regex((*regex).to_owned()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(|e| Error::Tokenizer {
                    what: format!("pre-tokenizer {}: regex {regex:?}: {e}", spec.names[0]),
                })?;
                split.into()
            }
            Step::Digits => Digits::new(true).into(),
            Step::Gpt2Regex => {
                byte_level_done = true;
                ByteLevel::new(false, true, true).into()
            }
        });
    }
    if !byte_level_done {
        steps.push(ByteLevel::new(false, true, false).into());
    }
    Ok(Sequence::new(steps).into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn pieces(pre: &str, text: &str) -> Vec<String> {
        let spec = lookup(pre).unwrap();
        let pre_tokenizer = build(spec).unwrap();
        let mut s = PreTokenizedString::from(text);
        pre_tokenizer.pre_tokenize(&mut s).unwrap();
        s.get_splits(OffsetReferential::Original, OffsetType::Char)
            .into_iter()
            .map(|(piece, _, _)| piece.to_owned())
            .collect()
    }

    /// The pieces of `text` as substrings of it (before the byte-level mapping).
    fn text_pieces(pre: &str, text: &str) -> Vec<String> {
        let spec = lookup(pre).unwrap();
        let pre_tokenizer = build(spec).unwrap();
        let mut s = PreTokenizedString::from(text);
        pre_tokenizer.pre_tokenize(&mut s).unwrap();
        let chars: Vec<char> = text.chars().collect();
        s.get_splits(OffsetReferential::Original, OffsetType::Char)
            .into_iter()
            .map(|(_, (start, end), _)| chars[start..end].iter().collect())
            .collect()
    }

    /// The tiktoken-style patterns (Mistral's Tekken, Kimi-K2's) split a corpus (camel case,
    /// contractions, paths, digits, accents, Greek, Cyrillic, CJK mixed with Latin, code,
    /// whitespace runs, emoji) exactly as Python's `regex` module splits it with the reference
    /// pattern (tools/make_pretokenizer_pieces.py).
    #[test]
    fn tiktoken_patterns_split_as_the_reference() {
        let golden: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/golden/tokenizer/pretokenizer-pieces.json"
        ))
        .unwrap();
        for (name, steps) in [("tekken", TEKKEN), ("kimi-k2", KIMI_K2)] {
            let reference = &golden[name];
            let pattern = reference["pattern"].as_str().unwrap();
            assert!(
                matches!(steps, [Step::Split(p)] if *p == pattern),
                "{name}: the pattern itself"
            );
            for case in reference["cases"].as_array().unwrap() {
                let text = case["text"].as_str().unwrap();
                let want: Vec<&str> = case["pieces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap())
                    .collect();
                assert_eq!(text_pieces(name, text), want, "{name}: {text:?}");
            }
        }
        assert!(lookup("tekken").unwrap().add_bos);
        assert_eq!(
            text_pieces("glm4", "DON'T 12345"),
            ["DON", "'T", " ", "123", "45"]
        );
    }

    #[test]
    fn every_entry_builds() {
        for spec in TABLE {
            build(spec).unwrap();
        }
    }

    #[test]
    fn unknown_name_is_named_in_the_error() {
        let err = lookup("tiktoken-x").unwrap_err().to_string();
        assert!(err.contains("\"tiktoken-x\""), "{err}");
        assert!(err.contains("deepseek-v3"), "{err}");
    }

    #[test]
    fn digit_grouping_differs_by_family() {
        assert_eq!(pieces("deepseek-v3", "12345"), ["123", "45"]);
        assert_eq!(pieces("llama-bpe", "12345"), ["123", "45"]);
        assert_eq!(pieces("qwen2", "123"), ["1", "2", "3"]);
        assert_eq!(pieces("deepseek-llm", "123"), ["1", "2", "3"]);
        assert_eq!(pieces("smollm", "a12"), ["a", "1", "2"]);
        assert_eq!(pieces("gpt-2", "a 12"), ["a", "Ġ12"]);
    }

    #[test]
    fn byte_level_mapping_follows_the_splits() {
        assert_eq!(
            pieces("deepseek-v3", "Hello world\n"),
            ["Hello", "Ġworld", "Ċ"]
        );
        // Han and kana runs are split off before the main regex.
        assert_eq!(pieces("deepseek-v3", "ab你好"), ["ab", "ä½łå¥½"]);
        assert_eq!(pieces("deepseek-coder", "x\ny"), ["x", "Ċ", "y"]);
    }

    #[test]
    fn case_insensitive_contractions() {
        assert_eq!(pieces("llama-bpe", "DON'T"), ["DON", "'T"]);
        assert_eq!(pieces("qwen2", "it's"), ["it", "'s"]);
    }

    #[test]
    fn nfc_only_where_the_family_has_it() {
        assert!(lookup("qwen2").unwrap().nfc);
        assert!(!lookup("deepseek-v3").unwrap().nfc);
    }
}
