//! Text ⇄ token ids from a GGUF file's tokenizer metadata (spec §7), for byte-level BPE
//! vocabularies (`tokenizer.ggml.model = "gpt2"`: DeepSeek V2/V3/R1, Qwen2, Llama 3, …).
//!
//! Encoding is done by the `tokenizers` crate, assembled from the metadata: a BPE model from
//! `tokenizer.ggml.tokens`/`merges`, the pre-tokenizer named by `tokenizer.ggml.pre` (the table
//! is in `pre.rs`; [`supported_pre_tokenizers`] lists the names), and CONTROL / USER_DEFINED /
//! UNKNOWN tokens as added tokens, so the ids are those of the model's Hugging Face
//! `tokenizer.json`. Decoding maps token strings back to bytes here, so that text can be
//! streamed token by token ([`StreamDecoder`]). [`hf`] converts a `tokenizer.json` into GGUF
//! metadata for models that come without a GGUF.
//!
//! ```no_run
//! use lanternfish::{gguf::GgufModel, tokenizer::Tokenizer};
//! let model = GgufModel::open("model.gguf".as_ref())?;
//! let tok = Tokenizer::from_gguf(&model)?;
//! let ids = tok.encode("Hello", tok.add_bos_token())?;
//! let mut out = tok.stream();
//! for &id in &ids {
//!     print!("{}", out.push(id));
//! }
//! # Ok::<(), lanternfish::Error>(())
//! ```

mod bytes;
pub mod hf;
mod pieces;
mod pre;
mod stream;
mod vocab;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::{AddedToken, Tokenizer as HfTokenizer};

use crate::gguf::GgufModel;
use crate::{Error, Result};

use pieces::Pieces;
pub use stream::StreamDecoder;
pub use vocab::TokenType;
pub use vocab::{
    KEY_ADD_BOS, KEY_ADD_EOS, KEY_BOS, KEY_CHAT_TEMPLATE, KEY_EOM, KEY_EOS, KEY_EOT, KEY_MERGES,
    KEY_MODEL, KEY_PAD, KEY_PRE, KEY_TOKEN_TYPE, KEY_TOKENS,
};

/// The `tokenizer.ggml.pre` values this module knows, canonical names first in each group.
pub fn supported_pre_tokenizers() -> impl Iterator<Item = &'static str> {
    pre::TABLE
        .iter()
        .flat_map(|spec| spec.names.iter().copied())
}

/// A byte-level BPE tokenizer built from GGUF metadata.
pub struct Tokenizer {
    /// Matches CONTROL tokens in the text ("parse special" on).
    hf: HfTokenizer,
    /// The same with CONTROL tokens left as text; built on first use.
    hf_plain: OnceLock<HfTokenizer>,
    types: Vec<TokenType>,
    pieces: Pieces,
    pre: String,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    eog: BTreeSet<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("pre", &self.pre)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eot", &self.eot)
            .field("add_bos", &self.add_bos)
            .field("eog", &self.eog)
            .finish_non_exhaustive()
    }
}

fn tok_err(what: impl Into<String>) -> Error {
    Error::Tokenizer { what: what.into() }
}

/// The `tokenizers` tokenizer for a vocabulary: BPE model, normalizer, pre-tokenizer and the
/// added (CONTROL / USER_DEFINED / UNKNOWN) tokens.
fn build_hf(
    tokens: &[String],
    types: &[TokenType],
    merges: Vec<(String, String)>,
    spec: &pre::PreSpec,
) -> Result<HfTokenizer> {
    // Every token goes into the BPE vocabulary, so that added tokens keep their GGUF ids (the
    // `tokenizers` crate reuses a model id for an added token of the same text). A later
    // duplicate text wins, as in llama.cpp's text → id map.
    let bpe_vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, text)| (text.clone(), id as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(bpe_vocab, merges)
        .ignore_merges(spec.ignore_merges)
        .build()
        .map_err(|e| tok_err(format!("cannot build the BPE model: {e}")))?;

    let mut hf = HfTokenizer::new(bpe);
    if spec.nfc {
        hf.with_normalizer(Some(NFC))
            .map_err(|e| tok_err(format!("cannot set the normalizer: {e}")))?;
    }
    hf.with_pre_tokenizer(Some(pre::build(spec)?));
    // CONTROL and UNKNOWN tokens are "special": not matched when parsing special tokens is off.
    // USER_DEFINED tokens are always matched. None is stripped of surrounding spaces.
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(types)
        .filter(|(_, ty)| ty.is_added())
        .map(|(text, ty)| {
            let special = *ty != TokenType::UserDefined;
            AddedToken::from(text.clone(), special).normalized(!special)
        })
        .collect();
    hf.add_tokens(added)
        .map_err(|e| tok_err(format!("cannot add the special tokens: {e}")))?;
    Ok(hf)
}

impl Tokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.*` metadata. Fails on a tokenizer model other
    /// than "gpt2", an unknown or missing `tokenizer.ggml.pre`, or inconsistent arrays.
    pub fn from_gguf(model: &GgufModel) -> Result<Tokenizer> {
        let mut vocab = vocab::Vocab::from_gguf(model)?;
        let spec = pre::lookup(&vocab.pre)?;
        let merges = std::mem::take(&mut vocab.merges);
        let hf = build_hf(&vocab.tokens, &vocab.types, merges, spec)?;
        let pieces = Pieces::new(&vocab.tokens, &vocab.types);
        Ok(Tokenizer {
            hf,
            hf_plain: OnceLock::new(),
            types: vocab.types,
            pieces,
            pre: vocab.pre,
            bos: vocab.bos,
            eos: vocab.eos,
            eot: vocab.eot,
            add_bos: vocab.add_bos.unwrap_or(spec.add_bos),
            add_eos: vocab.add_eos,
            eog: vocab.eog,
        })
    }

    /// Tokenizes `text`, turning special-token texts in it (e.g. `<｜User｜>`) into their ids, as
    /// for rendered chat templates. With `add_bos` a BOS id is put first unless the text already
    /// starts with the BOS token, so a template that writes `bos_token` never gets two.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        self.encode_with(text, add_bos, true)
    }

    /// [`Tokenizer::encode`] with the choice of `parse_special`: when false, CONTROL token texts
    /// are tokenized as ordinary text (user input); USER_DEFINED tokens are matched either way.
    pub fn encode_with(&self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>> {
        let hf = if parse_special {
            &self.hf
        } else {
            self.plain()
        };
        let encoding = hf
            .encode_fast(text, false)
            .map_err(|e| tok_err(format!("cannot encode text: {e}")))?;
        let mut ids = encoding.get_ids().to_vec();
        if add_bos {
            let bos = self
                .bos
                .ok_or_else(|| tok_err("a BOS token was asked for, but the model has none"))?;
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// The tokenizer for `parse_special = false`: a copy with special-token matching off (the
    /// `tokenizers` switch is a setting, not an argument), made the first time it is needed.
    fn plain(&self) -> &HfTokenizer {
        self.hf_plain.get_or_init(|| {
            let mut hf = self.hf.clone();
            hf.set_encode_special_tokens(true);
            hf
        })
    }

    /// The text of `ids`, special tokens included as their text. Ids outside the vocabulary
    /// and UNUSED tokens give nothing; invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.decode_with(ids, false)
    }

    /// [`Tokenizer::decode`], leaving out CONTROL (and UNKNOWN) tokens when `skip_special`.
    pub fn decode_with(&self, ids: &[u32], skip_special: bool) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.piece(id, skip_special));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The bytes token `id` stands for ("" for unknown ids, UNUSED tokens and, with
    /// `skip_special`, CONTROL/UNKNOWN tokens). A piece may be part of a UTF-8 sequence.
    pub fn piece(&self, id: u32, skip_special: bool) -> &[u8] {
        if skip_special
            && matches!(
                self.token_type(id),
                Some(TokenType::Control | TokenType::Unknown)
            )
        {
            return &[];
        }
        self.pieces.get(id)
    }

    /// A decoder that turns ids into text one at a time (special tokens shown).
    pub fn stream(&self) -> StreamDecoder<'_> {
        StreamDecoder::new(self)
    }

    /// The stored text of token `id` (byte-level stand-ins such as `Ġ` for NORMAL tokens).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.pieces.text(id)
    }

    /// The id of a token text, if the vocabulary has it.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.hf.token_to_id(text)
    }

    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// Number of rows in the vocabulary (= `tokenizer.ggml.tokens` length).
    pub fn vocab_size(&self) -> usize {
        self.types.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// End-of-turn: `tokenizer.ggml.eot_token_id`, or a token with one of llama.cpp's
    /// end-of-turn texts (`<|eot_id|>`, `<|im_end|>`, …).
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }

    /// Whether the model wants a BOS in front of a prompt (`tokenizer.ggml.add_bos_token`, or
    /// llama.cpp's default for the pre-tokenizer family when the key is absent).
    pub fn add_bos_token(&self) -> bool {
        self.add_bos
    }

    /// `tokenizer.ggml.add_eos_token` (false when absent); not applied by [`Tokenizer::encode`].
    pub fn add_eos_token(&self) -> bool {
        self.add_eos
    }

    /// Whether generation stops at `id`: EOS, EOT, EOM and llama.cpp's end-of-generation texts.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// The end-of-generation ids, ascending.
    pub fn eog_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.eog.iter().copied()
    }

    /// The `tokenizer.ggml.pre` value the tokenizer was built with.
    pub fn pre(&self) -> &str {
        &self.pre
    }
}
