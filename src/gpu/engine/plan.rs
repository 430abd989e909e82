//! The decode/prefill plan: every dispatch of one forward pass over `n_tok` tokens, built once
//! per (batch size, output) with all shapes validated, then recorded into one command buffer per
//! call. Token ids and positions live in GPU buffers that the host rewrites before each submit,
//! so a plan serves every step (spec §4.11 lists the per-layer ops).
//!
//! Per layer (MoE case; `mm` is matvec for one token and the tiled matmul for a batch):
//!
//! ```text
//!   a = rmsnorm(x)                      q = mm(attn_q, a)  (or q_a → norm → q_b)
//!   kv = mm(kv_a, a)
//!   cache[pos] = [norm(c_kv) ‖ rope(k_pe)], rope(q_pe) in place   (one kv_store dispatch)
//!   q_abs = k_b[h] · q_nope[h]  (matvec_id over heads)
//!   o_lat = attention(q_abs, q_pe, cache)   o = v_b[h] · o_lat[h]   x += mm(attn_output, o)
//!   a = rmsnorm(x)   router → ids, weights (on the GPU)
//!   h_e = silu(gate_e a) ⊙ up_e a, y_e = down_e h_e for the k chosen experts (matvec_id;
//!   h_e in one matvec_id_swiglu dispatch when gate and up share a slot)
//!   x += shared(a) (accumulating matvec)     x += Σ_e w_e y_e (moe_combine)
//!   (one pool, not paged: y_e and the weighted sum in one moe_down dispatch)
//! then a = rmsnorm(x) for the rows whose logits are wanted, logits = mm(output, a).
//! ```
//!
//! For one token (decode) every `a = rmsnorm(x)` is folded into the matvecs that read `a`
//! (`Input::after_norm`, [`FoldedNorm`](crate::gpu::ops::matvec::FoldedNorm)): they read `x`
//! and the norm weight, so the norms take no dispatch of their own.

use wgpu::Buffer;

use super::model::GpuArch;
use super::model::GpuModel;
use super::plan_blocks::{Input, embed, first, mm, swiglu};
use super::weights::{ExpertGateUp, GpuFfn, GpuMoe, GpuQ, GpuSwiGlu, GpuTensor, GpuWeights};
use crate::Result;
use crate::gpu::dispatch::Dispatch;
use crate::gpu::ops::attention::{QPeLayout, ScoreScale, Split, target_workgroups};
use crate::gpu::ops::cache_type::CacheType;
use crate::gpu::ops::elementwise::ElementwiseOp;
use crate::gpu::ops::kv_store::QRope;
use crate::gpu::ops::matvec_id::MatvecIdShape;
use crate::gpu::ops::matvec_id_swiglu::SwigluIdShape;
use crate::gpu::ops::moe_down::MoeDownShape;
use crate::gpu::ops::moe_router::RouterConfig;
use crate::gpu::paging::Prefetch;
use crate::model::DeepSeekConfig;

/// Which logits a forward pass produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// None (a prefill chunk before the last).
    Nothing,
    /// `[V]` for the last token.
    Last,
    /// `[n_tok, V]`.
    All,
    /// The argmax of the last token's logits, as one u32 (greedy decoding: 4 bytes back).
    Greedy,
    /// A token sampled on the GPU from the last token's logits with this top_k
    /// ([`crate::gpu::ops::sample`]; the rest of the settings are in [`Scratch::sample_step`]).
    Sample(usize),
}

/// One recorded step: a compute dispatch, or a buffer copy between passes.
#[derive(Debug)]
pub enum Step {
    Dispatch(Dispatch),
    Copy {
        src: Buffer,
        src_offset: u64,
        dst: Buffer,
        size: u64,
    },
    /// Paged experts: the router's ids of block `layer` are in [`Scratch::ids`] (and, when
    /// `next` names the next paged block, the ids its router picks from the same hidden state
    /// in [`Scratch::pred_ids`]). The session submits what came before, reads the ids back,
    /// pages the experts in and records the steps up to [`Step::ExpertsEnd`] once per group of
    /// experts that fits the layer's slots.
    PageIn {
        layer: usize,
        next: Option<usize>,
    },
    /// The end of a paged layer's expert steps.
    ExpertsEnd,
}

/// Scratch buffers for batches of up to `max_batch` tokens (f32 unless noted).
#[derive(Debug)]
pub struct Scratch {
    pub max_batch: usize,
    /// u32 `[B]`.
    pub tokens: Buffer,
    /// u32 `[B]`.
    pub positions: Buffer,
    /// The residual stream `[B, d]`.
    pub x: Buffer,
    /// Normalised input of a block `[B, d]`.
    pub a: Buffer,
    /// `[B, rq]`, twice (projection, normalised).
    pub cq: Buffer,
    pub cq_norm: Buffer,
    /// `[B, H, dn + dr]`.
    pub q: Buffer,
    /// `[B, r + dr]` (deepseek2), or the keys `[B, H_kv·hd]` (dense).
    pub kv: Buffer,
    /// The values `[B, H_kv·hd]` (dense).
    pub v: Buffer,
    /// `[B, H, r]`, twice.
    pub q_abs: Buffer,
    pub o_lat: Buffer,
    /// Split decode attention: the chunks' accumulators and (max, sum) pairs
    /// ([`Split::scratch`] of the largest split any batch size takes).
    pub att_acc: Buffer,
    pub att_ml: Buffer,
    /// How the caches store their values, and their length in tokens.
    pub cache_type: CacheType,
    pub n_ctx: usize,
    /// Workgroups split attention aims for ([`target_workgroups`], read once).
    pub attention_target: u32,
    /// `[B, H·dv]`.
    pub o: Buffer,
    /// Dense/shared FFN: gate `[B, width]` (or gate ‖ up `[B, 2·width]` from a fused tensor), up
    /// `[B, width]`, and silu(gate)·up `[B, width]`.
    pub g: Buffer,
    pub u: Buffer,
    pub h: Buffer,
    /// Router logits `[B, E]`, ids u32 `[B, k]`, weights `[B, k]`.
    pub router_logits: Buffer,
    pub ids: Buffer,
    pub expert_weights: Buffer,
    /// The next paged layer's router on the current state (prefetch): logits `[B, E]`, ids u32
    /// `[B, k]`, weights `[B, k]`.
    pub pred_logits: Buffer,
    pub pred_ids: Buffer,
    pub pred_weights: Buffer,
    /// Routed experts: `[B, k, f]` ×3 and `[B, k, d]`.
    pub eg: Buffer,
    pub eu: Buffer,
    pub eh: Buffer,
    pub ey: Buffer,
    /// The last token's normalised state `[d]`, logits `[V]`, and the chosen token u32 `[1]`
    /// (argmax or sampled).
    pub last: Buffer,
    pub logits: Buffer,
    pub argmax: Buffer,
    /// The GPU sampler's candidates (two buffers of
    /// [`candidate_bytes`](crate::gpu::ops::sample::candidate_bytes)) and its per-token
    /// [`SampleStep`](crate::gpu::ops::sample::SampleStep).
    pub cand_a: Buffer,
    pub cand_b: Buffer,
    pub sample_step: Buffer,
    /// Bytes of all scratch buffers.
    pub bytes: u64,
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl Scratch {
    /// The scratch of batches up to `max_batch` tokens over caches of `n_ctx` tokens of
    /// `cache_type`.
    pub fn new(
        model: &GpuModel,
        max_batch: usize,
        n_ctx: usize,
        cache_type: CacheType,
    ) -> Result<Scratch> {
        let gpu = &model.gpu;
        let b = max_batch.max(1);
        // The largest split-attention scratch of any batch size (splits stop at small batches).
        let shape = model.attention_shape();
        let target = target_workgroups(gpu);
        let (att_acc, att_ml) = (1..=b as u32)
            .map(|n| Split::for_batch(n, &shape, n_ctx as u32, target).scratch(n, &shape))
            .take_while(|&(acc, _)| acc > 0)
            .fold((0, 0), |(a, m), (acc, ml)| (a.max(acc), m.max(ml)));
        // Widths per token; the other architecture's buffers are one element.
        let (d, rq, q, kv, v, lat, o, width, e, k, f) = match &model.arch {
            GpuArch::DeepSeek { config: c, .. } => (
                c.n_embd,
                c.n_lora_q.max(1),
                c.n_head * c.n_embd_head_qk(),
                c.n_lora_kv + c.n_rot,
                1,
                c.n_head * c.n_lora_kv,
                c.n_head * c.n_embd_head_v,
                c.n_ff.max(c.n_ff_exp * c.n_expert_shared).max(1),
                c.n_expert.max(1),
                c.n_expert_used.max(1),
                c.n_ff_exp.max(1),
            ),
            GpuArch::Dense { config: c, .. } => (
                c.n_embd,
                1,
                c.n_head * c.head_dim,
                c.kv_width(),
                c.kv_width(),
                1,
                c.n_head * c.head_dim,
                c.n_ff,
                1,
                1,
                1,
            ),
        };
        let candidates = crate::gpu::ops::sample::candidate_bytes(model.n_vocab) as usize / 4;
        let mut bytes = 0;
        let mut make = |label: &str, values: usize| {
            let size = (values.max(1) * 4) as u64;
            bytes += size;
            gpu.create_buffer(&format!("scratch {label}"), size, STORAGE)
        };
        Ok(Scratch {
            max_batch: b,
            tokens: make("tokens", b)?,
            positions: make("positions", b)?,
            x: make("x", b * d)?,
            a: make("a", b * d)?,
            cq: make("cq", b * rq)?,
            cq_norm: make("cq_norm", b * rq)?,
            q: make("q", b * q)?,
            kv: make("kv", b * kv)?,
            v: make("v", b * v)?,
            q_abs: make("q_abs", b * lat)?,
            o_lat: make("o_lat", b * lat)?,
            att_acc: make("attention acc", att_acc as usize)?,
            att_ml: make("attention ml", 2 * att_ml.max(1) as usize)?,
            cache_type,
            n_ctx,
            attention_target: target,
            o: make("o", b * o)?,
            g: make("g", b * 2 * width)?,
            u: make("u", b * width)?,
            h: make("h", b * width)?,
            router_logits: make("router_logits", b * e)?,
            ids: make("ids", b * k)?,
            expert_weights: make("expert_weights", b * k)?,
            pred_logits: make("pred_logits", b * e)?,
            pred_ids: make("pred_ids", b * k)?,
            pred_weights: make("pred_weights", b * k)?,
            eg: make("eg", b * k * f)?,
            eu: make("eu", b * k * f)?,
            eh: make("eh", b * k * f)?,
            ey: make("ey", b * k * d)?,
            last: make("last", d)?,
            logits: make("logits", model.n_vocab)?,
            argmax: make("argmax", 1)?,
            cand_a: make("cand_a", candidates)?,
            cand_b: make("cand_b", candidates)?,
            sample_step: make("sample_step", 4)?,
            bytes,
        })
    }
}

/// Builds the steps of one forward pass over `n_tok` tokens (≤ the scratch's batch) that write
/// into `cache` (deepseek2: one latent buffer per layer; dense: K then V per layer; `n_ctx` rows
/// each), with attention split over positions as `split` says (see [`Split::for_batch`]).
/// `all_logits` receives `[n_tok, V]` for [`Output::All`].
pub fn build(
    model: &GpuModel,
    s: &Scratch,
    cache: &[Buffer],
    (n_ctx, split): (usize, Split),
    n_tok: usize,
    output: Output,
    all_logits: Option<&Buffer>,
) -> Result<Vec<Step>> {
    let (mut steps, d, eps, output_norm, output_tensor) = match &model.arch {
        GpuArch::DeepSeek { config, weights } => (
            deepseek_layers(model, config, weights, s, cache, (n_ctx, split), n_tok)?,
            config.n_embd,
            config.rms_eps,
            &weights.output_norm,
            &weights.output,
        ),
        GpuArch::Dense { config, weights } => (
            super::plan_dense::layers(model, config, weights, s, cache, (n_ctx, split), n_tok)?,
            config.n_embd,
            config.rms_eps,
            &weights.output_norm,
            &weights.output,
        ),
    };
    output_head(
        model,
        s,
        n_tok,
        d,
        eps,
        output_norm,
        output_tensor,
        output,
        all_logits,
        &mut steps,
    )?;
    Ok(steps)
}

/// The deepseek2 blocks (and the embedding) of one forward pass.
#[allow(clippy::too_many_arguments)]
fn deepseek_layers<'a>(
    model: &GpuModel,
    c: &DeepSeekConfig,
    w: &'a GpuWeights,
    s: &'a Scratch,
    cache: &[Buffer],
    (n_ctx, split): (usize, Split),
    n_tok: usize,
) -> Result<Vec<Step>> {
    let gpu = &*model.gpu;
    let k = &model.kernels;
    let (d, h, dn, dk, r, dr, dv) = (
        c.n_embd,
        c.n_head,
        c.n_embd_head_qk_nope,
        c.n_embd_head_qk(),
        c.n_lora_kv,
        c.n_rot,
        c.n_embd_head_v,
    );
    let n = n_tok;
    let t32 = n as u32;
    let steps = std::cell::RefCell::new(Vec::new());
    let push = |dispatches: Vec<Dispatch>| {
        steps
            .borrow_mut()
            .extend(dispatches.into_iter().map(Step::Dispatch));
    };
    let mark = |step: Step| steps.borrow_mut().push(step);
    // Paged experts: which blocks page, and the prefetch setting.
    let paging = model.pager.as_ref().map(|pager| {
        let pager = pager
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let paged: Vec<bool> = (0..c.n_layer)
            .map(|il| pager.paged_index(il).is_some())
            .collect();
        (paged, pager.prefetch != Prefetch::Off)
    });

    let mm = |t: &GpuTensor, x: Input<'_>, y: &Buffer, rows: usize, acc: bool| {
        mm(model, t, x, y, rows, acc)
    };
    // RMSNorm(x) · weight as the next projections' input: folded into them for one token.
    let normed = |x: &'a Buffer, weight: &'a Buffer, out: &'a Buffer, width: usize| {
        let (input, norm) = Input::after_norm(model, [x, weight, out], width, n, c.rms_eps)?;
        push(norm);
        Ok::<_, crate::Error>(input)
    };
    let swiglu = |f: &GpuSwiGlu, a: Input<'_>| swiglu(model, s, f, n, a);
    push(embed(model, s, &w.token_embd, d, n)?);
    let heads = MatvecIdShape {
        n_rows: 0,
        n_cols: 0,
        n_slots: h as u32,
        slot_base: 0,
        k: h as u32,
        n_tok: t32,
        ids_offset: 0,
        ids_tok_stride: 0,
        x_stride: 0,
        x_tok_stride: 0,
    };
    let shape = model.attention_shape();
    for (il, layer) in w.layers.iter().enumerate() {
        // Attention block.
        let attn_in = normed(&s.x, &layer.attn_norm, &s.a, d)?;
        match &layer.q {
            GpuQ::Plain(q) => push(mm(q, attn_in, &s.q, n, false)?),
            GpuQ::Lora { a, norm, b } => {
                push(mm(a, attn_in, &s.cq, n, false)?);
                let cq = normed(&s.cq, norm, &s.cq_norm, a.n_rows)?;
                push(mm(b, cq, &s.q, n, false)?);
            }
        }
        push(mm(&layer.kv_a, attn_in, &s.kv, n, false)?);
        let cache_l = &cache[il];
        push(vec![k.kv_store.bind(
            gpu,
            [
                first(&s.kv, n * (r + dr)),
                (&layer.kv_a_norm).into(),
                first(&s.positions, n),
                cache_l.into(),
            ],
            r as u32,
            dr as u32,
            t32,
            n_ctx as u32,
            c.rms_eps,
            // rope(q_pe) of every head and rope(k_pe) in the same pass.
            (dr > 0).then(|| QRope {
                turns: (&model.rope_turns).into(),
                q: first(&s.q, n * h * dk),
                heads: h as u32,
                stride: dk as u32,
                offset: dn as u32,
            }),
            s.cache_type,
        )?]);
        // q_abs[t, h] = k_b[h] · q_nope[t, h]
        push(vec![k.matvec_id[&layer.k_b.ty].bind(
            gpu,
            [
                (&layer.k_b.buffer).into(),
                first(&w.identity, h),
                first(&w.identity, h),
                first(&s.q, n * h * dk),
                first(&s.q_abs, n * h * r),
            ],
            &MatvecIdShape {
                n_rows: r as u32,
                n_cols: dn as u32,
                x_stride: dk as u32,
                x_tok_stride: (h * dk) as u32,
                ..heads
            },
            None,
        )?]);
        push(k.attention.bind(
            gpu,
            [
                first(&s.q_abs, n * h * r),
                first(&s.q, n * h * dk),
                cache_l.into(),
                cache_l.into(),
                first(&s.positions, n),
                first(&s.o_lat, n * h * r),
                (&s.att_acc).into(),
                (&s.att_ml).into(),
            ],
            shape,
            QPeLayout {
                stride: dk as u32,
                offset: dn as u32,
            },
            t32,
            n_ctx as u32,
            ScoreScale {
                kq_scale: c.kq_scale(),
                temperature: c.attn_temperature,
            },
            s.cache_type,
            split,
        )?);
        // o[t, h] = v_b[h] · o_lat[t, h]
        push(vec![k.matvec_id[&layer.v_b.ty].bind(
            gpu,
            [
                (&layer.v_b.buffer).into(),
                first(&w.identity, h),
                first(&w.identity, h),
                first(&s.o_lat, n * h * r),
                first(&s.o, n * h * dv),
            ],
            &MatvecIdShape {
                n_rows: dv as u32,
                n_cols: r as u32,
                x_stride: r as u32,
                x_tok_stride: (h * r) as u32,
                ..heads
            },
            None,
        )?]);
        push(mm(&layer.attn_output, Input::plain(&s.o), &s.x, n, true)?);

        // Feed-forward block.
        let ffn_in = normed(&s.x, &layer.ffn_norm, &s.a, d)?;
        match &layer.ffn {
            GpuFfn::Dense(f) => push(swiglu(f, ffn_in)?),
            GpuFfn::Moe(moe) => {
                let (e, kk, f) = (c.n_expert, c.n_expert_used, c.n_ff_exp);
                // The router of `m` on the current state into (logits, ids, weights).
                let route = |m: &GpuMoe, [logits, ids, weights]: [&Buffer; 3]| -> Result<()> {
                    push(mm(&m.router, ffn_in, logits, n, false)?);
                    let bias = m.selection_bias.as_ref().unwrap_or(logits);
                    push(vec![k.router.bind(
                        gpu,
                        &RouterConfig::from_model(c),
                        [
                            first(logits, n * e),
                            bias.into(),
                            first(ids, n * kk),
                            first(weights, n * kk),
                        ],
                        t32,
                        m.selection_bias.is_some(),
                    )?]);
                    Ok(())
                };
                route(moe, [&s.router_logits, &s.ids, &s.expert_weights])?;
                let paged =
                    paging
                        .as_ref()
                        .filter(|(paged, _)| paged[il])
                        .map(|(paged, prefetch)| {
                            let next = (il + 1..c.n_layer).find(|&l| paged[l]);
                            (next, *prefetch)
                        });
                if let Some((next, prefetch)) = paged {
                    // Prefetch: the next paged layer's router on this layer's state.
                    let next = next.filter(|_| prefetch);
                    if let Some(GpuFfn::Moe(next_moe)) = next.map(|l| &w.layers[l].ffn) {
                        route(next_moe, [&s.pred_logits, &s.pred_ids, &s.pred_weights])?;
                    }
                    mark(Step::PageIn { layer: il, next });
                }
                let routed = MatvecIdShape {
                    n_rows: f as u32,
                    n_cols: d as u32,
                    n_slots: 0,
                    k: kk as u32,
                    n_tok: t32,
                    ids_offset: 0,
                    ids_tok_stride: kk as u32,
                    x_stride: 0,
                    x_tok_stride: d as u32,
                    slot_base: 0,
                };
                let down_shape = MatvecIdShape {
                    n_rows: d as u32,
                    n_cols: f as u32,
                    x_stride: f as u32,
                    x_tok_stride: (kk * f) as u32,
                    ..routed
                };
                // One dispatch per pool; each writes the outputs whose slot it holds.
                let experts = |pools: &[GpuTensor],
                               x: Input<'_>,
                               x_len: usize,
                               y: &Buffer,
                               y_len: usize,
                               shape: &MatvecIdShape| {
                    pools
                        .iter()
                        .map(|pool| {
                            k.matvec_id[&pool.ty].bind(
                                gpu,
                                [
                                    (&pool.buffer).into(),
                                    (&moe.slot_of).into(),
                                    first(&s.ids, n * kk),
                                    first(x.x, x_len),
                                    first(y, y_len),
                                ],
                                &MatvecIdShape {
                                    n_slots: pool.n_slots as u32,
                                    slot_base: pool.slot_base as u32,
                                    ..*shape
                                },
                                x.folded(shape.n_cols as usize),
                            )
                        })
                        .collect::<Result<Vec<_>>>()
                };
                let e = &moe.experts;
                match &e.gate_up {
                    // Gate, up and silu_mul in one dispatch per pool.
                    ExpertGateUp::Fused(pools) => push(
                        pools
                            .iter()
                            .map(|pool| {
                                k.matvec_id_swiglu[&pool.ty].bind(
                                    gpu,
                                    [
                                        (&pool.buffer).into(),
                                        (&moe.slot_of).into(),
                                        first(&s.ids, n * kk),
                                        first(ffn_in.x, n * d),
                                        first(&s.eh, n * kk * f),
                                    ],
                                    &SwigluIdShape {
                                        n_rows: f as u32,
                                        n_cols: d as u32,
                                        n_slots: pool.n_slots as u32,
                                        slot_base: pool.slot_base as u32,
                                        k: kk as u32,
                                        n_tok: t32,
                                        x_tok_stride: d as u32,
                                    },
                                    ffn_in.folded(d),
                                )
                            })
                            .collect::<Result<Vec<_>>>()?,
                    ),
                    ExpertGateUp::Split { gate, up } => {
                        push(experts(gate, ffn_in, n * d, &s.eg, n * kk * f, &routed)?);
                        push(experts(up, ffn_in, n * d, &s.eu, n * kk * f, &routed)?);
                        push(vec![k.elementwise.bind(
                            gpu,
                            ElementwiseOp::SiluMul,
                            [
                                first(&s.eg, n * kk * f),
                                first(&s.eu, n * kk * f),
                                first(&s.eh, n * kk * f),
                            ],
                            (n * kk * f) as u32,
                        )?]);
                    }
                }
                // One pool and no paging: down, the routing weights and the residual add in one
                // dispatch (moe_down), after the shared experts as the combine came after them.
                if let ([down], None) = (e.down.as_slice(), paged) {
                    if let Some(shared) = &moe.shared {
                        push(swiglu(shared, ffn_in)?);
                    }
                    push(vec![k.moe_down[&down.ty].bind(
                        gpu,
                        [
                            (&down.buffer).into(),
                            (&moe.slot_of).into(),
                            first(&s.ids, n * kk),
                            first(&s.eh, n * kk * f),
                            first(&s.expert_weights, n * kk),
                            first(&s.x, n * d),
                        ],
                        &MoeDownShape {
                            n_rows: d as u32,
                            n_cols: f as u32,
                            n_slots: down.n_slots as u32,
                            k: kk as u32,
                            n_tok: t32,
                        },
                    )?]);
                } else {
                    push(experts(
                        &e.down,
                        Input::plain(&s.eh),
                        n * kk * f,
                        &s.ey,
                        n * kk * d,
                        &down_shape,
                    )?);
                    if paged.is_some() {
                        mark(Step::ExpertsEnd);
                    }
                    if let Some(shared) = &moe.shared {
                        push(swiglu(shared, ffn_in)?);
                    }
                    push(vec![k.combine.bind(
                        gpu,
                        [
                            first(&s.expert_weights, n * kk),
                            first(&s.ey, n * kk * d),
                            first(&s.x, n * d),
                        ],
                        d as u32,
                        kk as u32,
                        t32,
                    )?]);
                }
            }
        }
    }

    Ok(steps.into_inner())
}

/// The final norm and the output projection for the rows `output` wants.
#[allow(clippy::too_many_arguments)]
fn output_head(
    model: &GpuModel,
    s: &Scratch,
    n: usize,
    d: usize,
    eps: f32,
    output_norm: &Buffer,
    output_tensor: &GpuTensor,
    output: Output,
    all_logits: Option<&Buffer>,
    steps: &mut Vec<Step>,
) -> Result<()> {
    let vocab = model.n_vocab;
    let mut push =
        |dispatches: Vec<Dispatch>| steps.extend(dispatches.into_iter().map(Step::Dispatch));
    match output {
        Output::Nothing => {}
        Output::All => {
            let logits = all_logits.ok_or_else(|| crate::Error::Gpu {
                what: "plan".to_owned(),
                message: "all-position logits need a logits buffer".to_owned(),
            })?;
            let (input, norm) = Input::after_norm(model, [&s.x, output_norm, &s.a], d, n, eps)?;
            push(norm);
            push(mm(model, output_tensor, input, logits, n, false)?);
        }
        Output::Last | Output::Greedy | Output::Sample(_) => {
            steps.push(Step::Copy {
                src: s.x.clone(),
                src_offset: ((n - 1) * d * 4) as u64,
                dst: s.last.clone(),
                size: (d * 4) as u64,
            });
            // One row: the final norm folds into the output projection.
            let (input, norm) = Input::after_norm(model, [&s.last, output_norm, &s.a], d, 1, eps)?;
            steps.extend(norm.into_iter().map(Step::Dispatch));
            steps.extend(
                mm(model, output_tensor, input, &s.logits, 1, false)?
                    .into_iter()
                    .map(Step::Dispatch),
            );
            if output == Output::Greedy {
                steps.push(Step::Dispatch(model.kernels.argmax.bind(
                    &model.gpu,
                    [first(&s.logits, vocab), first(&s.argmax, 1)],
                    vocab as u32,
                    1,
                )?));
            }
            if let Output::Sample(top_k) = output {
                steps.extend(
                    model
                        .kernels
                        .sampler
                        .bind(
                            &model.gpu,
                            [
                                first(&s.logits, vocab),
                                (&s.cand_a).into(),
                                (&s.cand_b).into(),
                                (&s.sample_step).into(),
                                first(&s.argmax, 1),
                            ],
                            vocab,
                            top_k,
                        )?
                        .into_iter()
                        .map(Step::Dispatch),
                );
            }
        }
    }
    Ok(())
}

/// Records `steps` into `encoder`: consecutive dispatches share one compute pass.
pub fn record(encoder: &mut wgpu::CommandEncoder, steps: &[Step]) {
    let mut i = 0;
    while i < steps.len() {
        match &steps[i] {
            Step::Copy {
                src,
                src_offset,
                dst,
                size,
            } => {
                encoder.copy_buffer_to_buffer(src, *src_offset, dst, 0, *size);
                i += 1;
            }
            Step::PageIn { .. } | Step::ExpertsEnd => i += 1,
            Step::Dispatch(_) => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("forward"),
                    timestamp_writes: None,
                });
                while let Some(Step::Dispatch(d)) = steps.get(i) {
                    d.record(&mut pass);
                    i += 1;
                }
            }
        }
    }
}

/// Dispatches in `steps`.
pub fn dispatch_count(steps: &[Step]) -> usize {
    steps
        .iter()
        .filter(|s| matches!(s, Step::Dispatch(_)))
        .count()
}
