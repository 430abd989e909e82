//! The dispatch builders that both architectures' plans share (`plan.rs` for deepseek2,
//! `plan_dense.rs` for llama/qwen2): projections (`mm`: matvec for one token, matmul for a batch),
//! their inputs with an RMSNorm folded in at decode (`Input`), RMSNorm, the SwiGLU FFN and the
//! embedding gather.

use wgpu::Buffer;

use super::model::GpuModel;
use super::plan::Scratch;
use super::weights::{GateUp, GpuSwiGlu, GpuTensor};
use crate::Result;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::ops::elementwise::ElementwiseOp;
use crate::gpu::ops::embed::EmbedShape;
use crate::gpu::ops::matvec::FoldedNorm;

/// The first `n` f32 (or u32) values of `buffer`.
pub(super) fn first(buffer: &Buffer, n: usize) -> Binding<'_> {
    Binding::range(buffer, 0, (n.max(1) * 4) as u64)
}

/// The input of a projection: `x`, or `RMSNorm(x) · weight` with the norm folded into the
/// decode matvec that reads it ([`FoldedNorm`]: no RMSNorm dispatch of its own).
#[derive(Clone, Copy)]
pub(super) struct Input<'a> {
    pub x: &'a Buffer,
    /// The norm weight and epsilon, for decode (one token) only.
    pub norm: Option<(&'a Buffer, f32)>,
}

impl<'a> Input<'a> {
    pub(super) fn plain(x: &'a Buffer) -> Input<'a> {
        Input { x, norm: None }
    }

    /// The input after `RMSNorm(x) · weight` over `n` rows of `width`: for one token the norm is
    /// folded into the consumers; for a batch the RMSNorm dispatch writing `normed` is
    /// returned, to be recorded before the consumers, and `normed` is their input.
    pub(super) fn after_norm(
        model: &GpuModel,
        [x, weight, normed]: [&'a Buffer; 3],
        width: usize,
        n: usize,
        eps: f32,
    ) -> Result<(Input<'a>, Vec<Dispatch>)> {
        if n == 1 {
            let input = Input {
                x,
                norm: Some((weight, eps)),
            };
            return Ok((input, Vec::new()));
        }
        let norm = rmsnorm(model, [x, weight, normed], width, n, eps)?;
        Ok((Input::plain(normed), vec![norm]))
    }

    /// The folded norm for rows of `width`, if any.
    pub(super) fn folded(&self, width: usize) -> Option<FoldedNorm<'a>> {
        self.norm.map(|(weight, eps)| FoldedNorm {
            weight: first(weight, width),
            eps,
        })
    }

    /// An error for a folded norm in a batch (only the decode matvecs fold norms).
    fn check_rows(&self, rows: usize) -> Result<()> {
        if rows != 1 && self.norm.is_some() {
            return Err(crate::Error::Gpu {
                what: "plan".to_owned(),
                message: format!("a folded RMSNorm needs one token, not {rows}"),
            });
        }
        Ok(())
    }
}

/// `y = W x` (+ `y` when `acc`) for `rows` tokens: matvec for one, the tiled matmul for a batch.
pub(super) fn mm(
    model: &GpuModel,
    t: &GpuTensor,
    input: Input<'_>,
    y: &Buffer,
    rows: usize,
    acc: bool,
) -> Result<Vec<Dispatch>> {
    let (gpu, k) = (&*model.gpu, &model.kernels);
    input.check_rows(rows)?;
    let (xb, yb) = (first(input.x, rows * t.n_cols), first(y, rows * t.n_rows));
    match (rows, input.folded(t.n_cols)) {
        (1, Some(norm)) => {
            k.matvec[&t.ty].bind_normed(gpu, &t.buffer, t.n_rows, t.n_cols, xb, norm, yb, acc)
        }
        (1, None) => k.matvec[&t.ty].bind(gpu, &t.buffer, t.n_rows, t.n_cols, xb, yb, acc),
        _ => k.matmul[&t.ty].bind(gpu, &t.buffer, t.n_rows, t.n_cols, rows, xb, yb, acc),
    }
}

/// `y[r] = rmsnorm(x[r]) · w` for `rows` rows of `width`.
pub(super) fn rmsnorm(
    model: &GpuModel,
    [x, w, y]: [&Buffer; 3],
    width: usize,
    rows: usize,
    eps: f32,
) -> Result<Dispatch> {
    model.kernels.rmsnorm.bind(
        &model.gpu,
        [first(x, rows * width), w.into(), first(y, rows * width)],
        width as u32,
        rows as u32,
        eps,
    )
}

/// `x += down · (silu(gate · a) ⊙ (up · a))` for `n` tokens, `a` the input.
pub(super) fn swiglu(
    model: &GpuModel,
    s: &Scratch,
    f: &GpuSwiGlu,
    n: usize,
    a: Input<'_>,
) -> Result<Vec<Dispatch>> {
    let width = f.gate_up.width();
    let (gpu, k) = (&*model.gpu, &model.kernels);
    a.check_rows(n)?;
    let mut out = Vec::new();
    match &f.gate_up {
        // Decode: gate, up and silu in one pass over both tensors.
        GateUp::Fused(t) if n == 1 => out.push(k.matvec_swiglu[&t.ty].bind(
            gpu,
            &t.buffer,
            width,
            t.n_cols,
            (first(a.x, t.n_cols), a.folded(t.n_cols)),
            first(&s.h, width),
        )?),
        // Prefill: one matmul over the 2·width rows ([n, gate ‖ up] per token), then silu.
        GateUp::Fused(t) => {
            out.extend(k.matmul[&t.ty].bind(
                gpu,
                &t.buffer,
                2 * width,
                t.n_cols,
                n,
                first(a.x, n * t.n_cols),
                first(&s.g, n * 2 * width),
                false,
            )?);
            out.push(k.elementwise.bind_halves(
                gpu,
                [first(&s.g, n * 2 * width), first(&s.h, n * width)],
                width as u32,
                n as u32,
            )?);
        }
        GateUp::Split { gate, up } => {
            out.extend(mm(model, gate, a, &s.g, n, false)?);
            out.extend(mm(model, up, a, &s.u, n, false)?);
            out.push(k.elementwise.bind(
                gpu,
                ElementwiseOp::SiluMul,
                [
                    first(&s.g, n * width),
                    first(&s.u, n * width),
                    first(&s.h, n * width),
                ],
                (n * width) as u32,
            )?);
        }
    }
    out.extend(mm(model, &f.down, Input::plain(&s.h), &s.x, n, true)?);
    Ok(out)
}

/// The embedding gather of `n` tokens into `x`.
pub(super) fn embed(
    model: &GpuModel,
    s: &Scratch,
    table: &GpuTensor,
    d: usize,
    n: usize,
) -> Result<Vec<Dispatch>> {
    model.kernels.embed.bind(
        &model.gpu,
        &table.buffer,
        [first(&s.tokens, n), first(&s.x, n * d)],
        &EmbedShape {
            n_vocab: table.n_rows as u32,
            n_embd: d as u32,
            n_tok: n as u32,
        },
    )
}
