//! The blocks of a dense (llama / qwen2 / qwen3) forward pass, as [`super::plan`] builds them for
//! deepseek2. Per layer:
//!   a = rmsnorm(x)      q = mm(Wq, a) (+ bq)   k = mm(Wk, a) (+ bk)   v = mm(Wv, a) (+ bv)
//!   (for one token the norms fold into the matvecs that read them: no rmsnorm dispatch)
//!   qwen3: q and k through a per-head rmsnorm (rows of head_dim, one weight vector for all
//!   heads), the projection written to the free `o` scratch and normed into `q` / `kv`
//!   K/V cache rows at each token's position = rope(k), v, and rope(q) in place, in one
//!   kv_append dispatch (adjacent pairs for llama, whose Q/K rows the converter permuted; halves
//!   for qwen2)
//!   o = attention(q, K, V) (GQA form; split over position chunks for decode)   x += mm(Wo, o)   a = rmsnorm(x)   x += down(silu(gate a) ⊙ up a)

use wgpu::Buffer;

use super::model::GpuModel;
use super::plan::{Scratch, Step};
use super::plan_blocks::{Input, embed, first, mm, rmsnorm, swiglu};
use super::weights::DenseGpuWeights;
use crate::Result;
use crate::gpu::dispatch::Dispatch;
use crate::gpu::ops::attention::{QPeLayout, Split};
use crate::gpu::ops::kv_append::KvRope;
use crate::model::dense::{DenseConfig, RopeStyle};

/// The embedding and every block of one forward pass over `n` tokens; `cache` holds K then V
/// per layer.
pub(super) fn layers(
    model: &GpuModel,
    c: &DenseConfig,
    w: &DenseGpuWeights,
    s: &Scratch,
    cache: &[Buffer],
    (n_ctx, split): (usize, Split),
    n: usize,
) -> Result<Vec<Step>> {
    let gpu = &*model.gpu;
    let k = &model.kernels;
    let (d, h, hd) = (c.n_embd, c.n_head, c.head_dim);
    let (q_width, kv_width) = (h * hd, c.kv_width());
    let t32 = n as u32;
    let mut steps: Vec<Step> = Vec::new();
    let mut push =
        |dispatches: Vec<Dispatch>| steps.extend(dispatches.into_iter().map(Step::Dispatch));
    push(embed(model, s, &w.token_embd, d, n)?);
    let shape = model.attention_shape();
    for (il, layer) in w.layers.iter().enumerate() {
        let (attn_in, norm) =
            Input::after_norm(model, [&s.x, &layer.attn_norm, &s.a], d, n, c.rms_eps)?;
        push(norm);
        for (t, bias, head_norm, y, width) in [
            (&layer.q, &layer.q_bias, &layer.q_norm, &s.q, q_width),
            (&layer.k, &layer.k_bias, &layer.k_norm, &s.kv, kv_width),
            (&layer.v, &layer.v_bias, &None, &s.v, kv_width),
        ] {
            // `o` is free until attention writes it, and holds q_width ≥ kv_width per token.
            let raw = if head_norm.is_some() { &s.o } else { y };
            push(mm(model, t, attn_in, raw, n, false)?);
            if let Some(b) = bias {
                push(vec![k.bias_add.bind(
                    gpu,
                    [b.into(), first(raw, n * width)],
                    width as u32,
                    t32,
                )?]);
            }
            if let Some(w) = head_norm {
                let heads = n * width / hd;
                push(vec![rmsnorm(model, [raw, w, y], hd, heads, c.rms_eps)?]);
            }
        }

        let (k_cache, v_cache) = (&cache[2 * il], &cache[2 * il + 1]);
        push(vec![k.kv_append.bind(
            gpu,
            [
                first(&s.kv, n * kv_width),
                first(&s.v, n * kv_width),
                first(&s.positions, n),
                k_cache.into(),
                v_cache.into(),
            ],
            kv_width as u32,
            t32,
            n_ctx as u32,
            // rope(q) and rope(k) in the same pass.
            (c.n_rot > 0).then(|| KvRope {
                turns: (&model.rope_turns).into(),
                q: first(&s.q, n * q_width),
                q_heads: h as u32,
                head_dim: hd as u32,
                n_pairs: (c.n_rot / 2) as u32,
                neox: c.rope_style == RopeStyle::Neox,
            }),
            s.cache_type,
        )?]);
        push(k.attention.bind(
            gpu,
            [
                first(&s.q, n * q_width),
                first(&s.q, n * q_width),
                k_cache.into(),
                v_cache.into(),
                first(&s.positions, n),
                first(&s.o, n * q_width),
                (&s.att_acc).into(),
                (&s.att_ml).into(),
            ],
            shape,
            QPeLayout {
                stride: 0,
                offset: 0,
            },
            t32,
            n_ctx as u32,
            1.0 / (hd as f32).sqrt(),
            s.cache_type,
            split,
        )?);
        push(mm(
            model,
            &layer.attn_output,
            Input::plain(&s.o),
            &s.x,
            n,
            true,
        )?);
        let (ffn_in, norm) =
            Input::after_norm(model, [&s.x, &layer.ffn_norm, &s.a], d, n, c.rms_eps)?;
        push(norm);
        push(swiglu(model, s, &layer.ffn, n, ffn_in)?);
    }
    Ok(steps)
}
