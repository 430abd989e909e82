//! The whole deepseek2 forward pass on the CPU (spec §4), llama2.c style: embeddings, then per
//! block `x += attn_output · MLA(attn_norm(x))` and `x += FFN(ffn_norm(x))` (dense SwiGLU or MoE),
//! then `logits = output · output_norm(x)`. A [`Session`] owns the latent KV cache; `forward`
//! runs a batch of tokens layer by layer, `step` one token, and both continue the same sequence.

use super::attention::{MlaForm, attention, project};
use super::indexer;
use super::kv_cache::LatentCache;
use super::moe::{Routing, moe_ffn, swiglu};
use super::ops::{matmul, rmsnorm_rows, rope_freqs};
use super::weights::{FfnWeights, LayerWeights, Weights};
use crate::gguf::GgufModel;
use crate::model::DeepSeekConfig;
use crate::{Error, Result};

/// A loaded model: config, weight views into the GGUF mapping, RoPE frequencies.
#[derive(Debug)]
pub struct CpuModel<'a> {
    pub config: DeepSeekConfig,
    pub weights: Weights<'a>,
    /// ω_i per rotary pair, `[dr / 2]`.
    pub rope_freqs: Vec<f64>,
}

/// Intermediate values of a `forward_traced` call, for tests and debugging.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// `[n_layer + 2]` entries of `[n_tok, d]`: the embeddings, the residual stream after each
    /// layer, and the final RMSNorm output (the input of `output`).
    pub hidden: Vec<Vec<f32>>,
    /// `[n_layer]`: per MoE layer the routing of each token, `None` for dense layers.
    pub routing: Vec<Option<Vec<Routing>>>,
}

impl<'a> CpuModel<'a> {
    /// Reads the config, checks every tensor and builds the weight views.
    pub fn load(model: &'a GgufModel) -> Result<CpuModel<'a>> {
        let config = DeepSeekConfig::from_gguf(model)?;
        let weights = Weights::load(model, &config)?;
        let rope_freqs = rope_freqs(config.n_rot, config.rope_freq_base, &config.rope_scaling);
        Ok(CpuModel {
            config,
            weights,
            rope_freqs,
        })
    }

    /// An empty sequence using the absorbed MLA form.
    pub fn session(&self) -> Session<'_, 'a> {
        let c = &self.config;
        Session {
            model: self,
            cache: LatentCache::new(c.n_layer, c.n_lora_kv, c.n_rot),
            index_keys: vec![Vec::new(); c.n_layer],
            n_past: 0,
            mla_form: MlaForm::default(),
        }
    }
}

/// One token sequence: the latent cache and the number of tokens already in it.
#[derive(Debug)]
pub struct Session<'m, 'a> {
    model: &'m CpuModel<'a>,
    cache: LatentCache,
    /// DeepSeek-V3.2: per layer the index keys `[n_past, dk]` (empty without an indexer).
    index_keys: Vec<Vec<f32>>,
    n_past: usize,
    /// The form of attention used by the next calls.
    pub mla_form: MlaForm,
}

impl Session<'_, '_> {
    /// Tokens processed so far (the position of the next one).
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// Forgets every token after the first `n`.
    pub fn truncate(&mut self, n: usize) {
        self.n_past = self.n_past.min(n);
        self.cache.truncate(self.n_past);
        let dk = self.model.config.indexer.map_or(0, |ix| ix.head_dim);
        for keys in &mut self.index_keys {
            keys.truncate(self.n_past * dk);
        }
    }

    pub fn cache(&self) -> &LatentCache {
        &self.cache
    }

    /// Appends `tokens` to the sequence; returns their logits `[n_tok, V]`.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.run(tokens, None)
    }

    /// [`Session::forward`] that also records hidden states and routing into `trace`.
    pub fn forward_traced(&mut self, tokens: &[u32], trace: &mut Trace) -> Result<Vec<f32>> {
        self.run(tokens, Some(trace))
    }

    /// Appends one token; returns its logits `[V]`.
    pub fn step(&mut self, token: u32) -> Result<Vec<f32>> {
        self.run(&[token], None)
    }

    /// DeepSeek-V3.2: appends the new tokens' index keys of layer `il` and returns, for each new
    /// token, the positions its MLA attends to (`None` for models without an indexer). `qr` is
    /// the normalised q latent [`project`] computed (the config requires q-LoRA with an indexer).
    fn select(
        &mut self,
        il: usize,
        layer: &LayerWeights<'_>,
        normed: &[f32],
        qr: Option<&[f32]>,
    ) -> Option<Vec<Vec<usize>>> {
        let (model, c) = (self.model, &self.model.config);
        let (ix, top_k, qr) = (layer.indexer.as_ref()?, c.indexer?.top_k, qr?);
        let keys = indexer::keys(ix, &model.rope_freqs, c.n_rot, normed, self.n_past);
        self.index_keys[il].extend_from_slice(&keys);
        let freqs = &model.rope_freqs;
        let keys = &self.index_keys[il];
        Some(indexer::select(
            ix,
            c,
            freqs,
            qr,
            normed,
            keys,
            self.n_past,
            top_k,
        ))
    }

    fn run(&mut self, tokens: &[u32], mut trace: Option<&mut Trace>) -> Result<Vec<f32>> {
        let (model, c) = (self.model, &self.model.config);
        let w = &model.weights;
        let (d, n_tok) = (c.n_embd, tokens.len());
        let mut x = embed(w, c, tokens)?; // [n_tok, d]
        if let Some(t) = trace.as_deref_mut() {
            *t = Trace::default();
            t.hidden.push(x.clone());
        }
        let mut normed = vec![0f32; n_tok * d]; // [n_tok, d]
        let mut delta = vec![0f32; n_tok * d]; // [n_tok, d]
        for (il, layer) in w.layers.iter().enumerate() {
            // Attention block.
            normed.copy_from_slice(&x);
            rmsnorm_rows(&mut normed, &layer.attn_norm, c.rms_eps);
            let (q, latent, qr) = project(layer, c, &model.rope_freqs, &normed, self.n_past); // [n_tok, H, dn+dr], [n_tok, r+dr], [n_tok, rq]
            self.cache.push(il, &latent);
            let selected = self.select(il, layer, &normed, qr.as_deref()); // V3.2: the positions MLA may use
            let o = attention(
                layer,
                c,
                self.mla_form,
                &q,
                &self.cache,
                il,
                selected.as_deref(),
            ); // [n_tok, H·dv]
            matmul(&mut delta, &layer.attn_output, &o); // [n_tok, d]
            x.iter_mut().zip(&delta).for_each(|(x, v)| *x += v);
            // Feed-forward block.
            normed.copy_from_slice(&x);
            rmsnorm_rows(&mut normed, &layer.ffn_norm, c.rms_eps);
            let routing = match &layer.ffn {
                FfnWeights::Dense(ffn) => {
                    swiglu(&mut delta, ffn, &normed); // [n_tok, d]
                    None
                }
                FfnWeights::Moe(moe) => Some(moe_ffn(moe, c, &normed, &mut delta)), // [n_tok, d]
            };
            x.iter_mut().zip(&delta).for_each(|(x, v)| *x += v);
            if let Some(t) = trace.as_deref_mut() {
                t.hidden.push(x.clone());
                t.routing.push(routing);
            }
        }
        rmsnorm_rows(&mut x, &w.output_norm, c.rms_eps);
        if let Some(t) = trace {
            t.hidden.push(x.clone());
        }
        let mut logits = vec![0f32; n_tok * c.n_vocab]; // [n_tok, V]
        matmul(&mut logits, &w.output, &x);
        self.n_past += n_tok;
        Ok(logits)
    }
}

/// Rows of `token_embd` (spec §4.1, no scaling): `[n_tok, d]`.
fn embed(w: &Weights<'_>, c: &DeepSeekConfig, tokens: &[u32]) -> Result<Vec<f32>> {
    let mut x = vec![0f32; tokens.len() * c.n_embd];
    for (&token, row) in tokens.iter().zip(x.chunks_exact_mut(c.n_embd)) {
        let id = token as usize;
        if id >= c.n_vocab {
            return Err(Error::Tensor {
                name: "token_embd.weight".into(),
                what: format!(
                    "token id {token} is out of range (vocabulary of {})",
                    c.n_vocab
                ),
            });
        }
        w.token_embd.row(id, row);
    }
    Ok(x)
}
