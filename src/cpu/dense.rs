//! The CPU reference forward pass of the dense `llama` / `qwen2` / `qwen3` architectures, f32 and
//! plain: pre-norm blocks of GQA attention (optional q/k/v biases, qwen3's per-head RMSNorm of q
//! and k, RoPE with the file's scaling) and a SwiGLU FFN, over a standard K/V cache (llama.cpp
//! `src/models/llama.cpp`, `qwen2.cpp`, `qwen3.cpp`).
//!
//! ```no_run
//! let gguf = lanternfish::gguf::GgufModel::open("smollm2.gguf".as_ref())?;
//! let model = lanternfish::cpu::dense::DenseModel::load(&gguf)?;
//! let mut session = model.session();
//! let logits = session.forward(&[504, 3575, 282])?; // [3, n_vocab]
//! # Ok::<(), lanternfish::Error>(())
//! ```

use super::dense_rope::{dense_freqs, mscale};
use super::matrix::Matrix;
use super::moe::swiglu;
use super::ops::{dot, matmul, rmsnorm_rows, rope, softmax};
use super::weights::SwiGlu;
use crate::gguf::{GgufModel, TensorInfo};
use crate::model::dense::{DenseConfig, DenseTensors, RopeStyle};
use crate::{Error, Result};

/// A dense model's weights (views into the GGUF map) and config.
#[derive(Debug)]
pub struct DenseModel<'a> {
    pub config: DenseConfig,
    /// `[V, d]`
    pub token_embd: Matrix<'a>,
    /// `[d]`
    pub output_norm: Vec<f32>,
    /// `[V, d]`: `output.weight`, or `token_embd` when tied.
    pub output: Matrix<'a>,
    pub layers: Vec<DenseLayer<'a>>,
    /// ω_i for the n_rot/2 rotated pairs (scaled, and divided by llama3's `rope_freqs`).
    pub rope_freqs: Vec<f64>,
    /// The factor on every rotated value (YaRN's magnitude, `rope.scaling.attn_factor`).
    pub rope_mscale: f64,
}

/// One block's weights.
#[derive(Debug)]
pub struct DenseLayer<'a> {
    /// `[d]`
    pub attn_norm: Vec<f32>,
    /// `[H·hd, d]`
    pub attn_q: Matrix<'a>,
    /// `[Hkv·hd, d]`
    pub attn_k: Matrix<'a>,
    /// `[Hkv·hd, d]`
    pub attn_v: Matrix<'a>,
    pub attn_q_bias: Option<Vec<f32>>,
    pub attn_k_bias: Option<Vec<f32>>,
    pub attn_v_bias: Option<Vec<f32>>,
    /// `[hd]`: per-head RMSNorm weights of q and k (qwen3).
    pub attn_q_norm: Option<Vec<f32>>,
    pub attn_k_norm: Option<Vec<f32>>,
    /// `[d, H·hd]`
    pub attn_output: Matrix<'a>,
    /// `[d]`
    pub ffn_norm: Vec<f32>,
    pub ffn: SwiGlu<'a>,
}

impl<'a> DenseModel<'a> {
    /// Reads the config, checks every tensor and builds views of them.
    pub fn load(model: &'a GgufModel) -> Result<DenseModel<'a>> {
        let config = DenseConfig::from_gguf(model)?;
        let t = DenseTensors::load(model, &config)?;
        let m = |info: &TensorInfo| Matrix::from_tensor(model, info);
        let v = |info: &TensorInfo| m(info).map(|x| x.to_vec());
        let ov = |info: Option<&TensorInfo>| info.map(v).transpose();
        let token_embd = m(t.token_embd)?;
        let output = match t.output {
            Some(info) => m(info)?,
            None => token_embd.clone(),
        };
        let layers = t
            .layers
            .iter()
            .map(|l| {
                Ok(DenseLayer {
                    attn_norm: v(l.attn_norm)?,
                    attn_q: m(l.attn_q)?,
                    attn_k: m(l.attn_k)?,
                    attn_v: m(l.attn_v)?,
                    attn_q_bias: ov(l.attn_q_bias)?,
                    attn_k_bias: ov(l.attn_k_bias)?,
                    attn_v_bias: ov(l.attn_v_bias)?,
                    attn_q_norm: ov(l.attn_q_norm)?,
                    attn_k_norm: ov(l.attn_k_norm)?,
                    attn_output: m(l.attn_output)?,
                    ffn_norm: v(l.ffn_norm)?,
                    ffn: SwiGlu {
                        gate: m(l.ffn_gate)?,
                        up: m(l.ffn_up)?,
                        down: m(l.ffn_down)?,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let factors = ov(t.rope_freqs)?;
        if let Some(f) = factors
            .as_deref()
            .and_then(|f| f.iter().find(|&&f| f <= 0.0 || !f.is_finite()))
        {
            return Err(Error::Tensor {
                name: "rope_freqs.weight".into(),
                what: format!("holds {f}: every factor must be positive and finite"),
            });
        }
        let rope_freqs = dense_freqs(&config.rope, config.n_rot, factors.as_deref());
        let rope_mscale = mscale(&config.rope);
        Ok(DenseModel {
            output_norm: v(t.output_norm)?,
            token_embd,
            output,
            layers,
            rope_freqs,
            rope_mscale,
            config,
        })
    }

    /// A new, empty sequence.
    pub fn session(&self) -> DenseSession<'_, 'a> {
        DenseSession {
            model: self,
            k: vec![Vec::new(); self.config.n_layer],
            v: vec![Vec::new(); self.config.n_layer],
            n_past: 0,
        }
    }
}

/// One sequence: a K and a V cache per layer, each `[n_past, Hkv·hd]` (K after RoPE).
#[derive(Debug)]
pub struct DenseSession<'m, 'a> {
    model: &'m DenseModel<'a>,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    n_past: usize,
}

impl DenseSession<'_, '_> {
    /// Tokens processed so far (the position of the next one).
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// Forgets every token after the first `n`.
    pub fn truncate(&mut self, n: usize) {
        self.n_past = self.n_past.min(n);
        let len = self.n_past * self.model.config.kv_width();
        for cache in self.k.iter_mut().chain(self.v.iter_mut()) {
            cache.truncate(len);
        }
    }

    /// Appends one token; returns its logits `[V]`.
    pub fn step(&mut self, token: u32) -> Result<Vec<f32>> {
        self.forward(&[token])
    }

    /// Appends `tokens` to the sequence; returns their logits `[n_tok, V]`.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let model = self.model;
        let c = &model.config;
        let (d, n_tok, hd) = (c.n_embd, tokens.len(), c.head_dim);
        let (q_w, kv_w) = (c.n_head * hd, c.kv_width());
        let mut x = vec![0f32; n_tok * d]; // [n_tok, d]
        for (&token, row) in tokens.iter().zip(x.chunks_exact_mut(d)) {
            if token as usize >= c.n_vocab {
                return Err(Error::Tensor {
                    name: "token_embd.weight".into(),
                    what: format!(
                        "token id {token} is out of range (vocabulary of {})",
                        c.n_vocab
                    ),
                });
            }
            model.token_embd.row(token as usize, row);
        }
        let mut normed = vec![0f32; n_tok * d];
        let mut delta = vec![0f32; n_tok * d];
        let mut q = vec![0f32; n_tok * q_w]; // [n_tok, H, hd]
        let mut k = vec![0f32; n_tok * kv_w]; // [n_tok, Hkv, hd]
        let mut v = vec![0f32; n_tok * kv_w]; // [n_tok, Hkv, hd]
        let mut o = vec![0f32; n_tok * q_w]; // [n_tok, H·hd]
        for (il, layer) in model.layers.iter().enumerate() {
            normed.copy_from_slice(&x);
            rmsnorm_rows(&mut normed, &layer.attn_norm, c.rms_eps);
            matmul(&mut q, &layer.attn_q, &normed);
            matmul(&mut k, &layer.attn_k, &normed);
            matmul(&mut v, &layer.attn_v, &normed);
            add_bias(&mut q, layer.attn_q_bias.as_deref());
            add_bias(&mut k, layer.attn_k_bias.as_deref());
            add_bias(&mut v, layer.attn_v_bias.as_deref());
            if let Some(w) = &layer.attn_q_norm {
                rmsnorm_rows(&mut q, w, c.rms_eps);
            }
            if let Some(w) = &layer.attn_k_norm {
                rmsnorm_rows(&mut k, w, c.rms_eps);
            }
            for t in 0..n_tok {
                let pos = self.n_past + t;
                for head in q[t * q_w..(t + 1) * q_w]
                    .chunks_exact_mut(hd)
                    .chain(k[t * kv_w..(t + 1) * kv_w].chunks_exact_mut(hd))
                {
                    let rotated = &mut head[..c.n_rot];
                    apply_rope(rotated, pos, &model.rope_freqs, c.rope_style);
                    if model.rope_mscale != 1.0 {
                        let m = model.rope_mscale as f32;
                        rotated.iter_mut().for_each(|v| *v *= m);
                    }
                }
            }
            self.k[il].extend_from_slice(&k);
            self.v[il].extend_from_slice(&v);
            attention(c, &q, &self.k[il], &self.v[il], self.n_past, &mut o);
            matmul(&mut delta, &layer.attn_output, &o);
            x.iter_mut().zip(&delta).for_each(|(x, v)| *x += v);
            normed.copy_from_slice(&x);
            rmsnorm_rows(&mut normed, &layer.ffn_norm, c.rms_eps);
            swiglu(&mut delta, &layer.ffn, &normed);
            x.iter_mut().zip(&delta).for_each(|(x, v)| *x += v);
        }
        rmsnorm_rows(&mut x, &model.output_norm, c.rms_eps);
        let mut logits = vec![0f32; n_tok * c.n_vocab];
        matmul(&mut logits, &model.output, &x);
        self.n_past += n_tok;
        Ok(logits)
    }
}

fn add_bias(x: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in x.chunks_exact_mut(b.len()) {
            row.iter_mut().zip(b).for_each(|(x, b)| *x += b);
        }
    }
}

/// RoPE of the rotated part of one head at `pos`.
pub fn apply_rope(x: &mut [f32], pos: usize, freqs: &[f64], style: RopeStyle) {
    match style {
        RopeStyle::Normal => rope(x, pos, freqs),
        RopeStyle::Neox => rope_neox(x, pos, freqs),
    }
}

/// NeoX RoPE: pairs `(x[i], x[i + n/2])` rotated by `pos·ω_i` (llama.cpp `LLAMA_ROPE_TYPE_NEOX`,
/// HF `rotate_half`).
pub fn rope_neox(x: &mut [f32], pos: usize, freqs: &[f64]) {
    let half = freqs.len();
    assert_eq!(x.len(), 2 * half, "rope dims");
    for (i, &w) in freqs.iter().enumerate() {
        let (sin, cos) = (pos as f64 * w).sin_cos();
        let (x0, x1) = (f64::from(x[i]), f64::from(x[i + half]));
        x[i] = (x0 * cos - x1 * sin) as f32;
        x[i + half] = (x0 * sin + x1 * cos) as f32;
    }
}

/// Causal GQA attention of the new tokens (positions `n_past..`) over the cache (which already
/// holds them): `q` `[n_tok, H, hd]`, caches `[n_past + n_tok, Hkv, hd]`, `o` `[n_tok, H·hd]`.
fn attention(
    c: &DenseConfig,
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    n_past: usize,
    o: &mut [f32],
) {
    let (hd, kv_w, q_w) = (c.head_dim, c.kv_width(), c.n_head * c.head_dim);
    let scale = 1.0 / (hd as f32).sqrt();
    let n_tok = q.len() / q_w;
    let mut scores = Vec::with_capacity(n_past + n_tok);
    for t in 0..n_tok {
        let n_kv = n_past + t + 1;
        for h in 0..c.n_head {
            let kvh = h / c.n_gqa();
            let qh = &q[t * q_w + h * hd..][..hd];
            scores.clear();
            scores
                .extend((0..n_kv).map(|j| dot(qh, &k_cache[j * kv_w + kvh * hd..][..hd]) * scale));
            softmax(&mut scores);
            let out = &mut o[t * q_w + h * hd..][..hd];
            out.fill(0.0);
            for (j, &p) in scores.iter().enumerate() {
                let vj = &v_cache[j * kv_w + kvh * hd..][..hd];
                out.iter_mut().zip(vj).for_each(|(o, v)| *o += p * v);
            }
        }
    }
}
