//! The CPU reference's view of the weights: one [`Matrix`] per projection (rows decoded on use),
//! norms and biases as f32, routed experts and MLA heads as row slices of their 3-D tensors.
//! Legacy files get their per-head `k_b`/`v_b` derived from `attn_kv_b` here (spec §3.4).

use super::indexer::IndexerWeights;
use super::matrix::Matrix;
use crate::Result;
use crate::gguf::{GgufModel, TensorInfo};
use crate::model::{
    DeepSeekConfig, FfnTensors, KvBTensors, LayerTensors, ModelTensors, MoeTensors, QTensors,
};

/// All weights of a model.
#[derive(Debug)]
pub struct Weights<'a> {
    /// `[V, d]`
    pub token_embd: Matrix<'a>,
    /// `[d]`
    pub output_norm: Vec<f32>,
    /// `[V, d]`: `output.weight`, or `token_embd` when the file ties them.
    pub output: Matrix<'a>,
    pub layers: Vec<LayerWeights<'a>>,
}

/// One block's weights.
#[derive(Debug)]
pub struct LayerWeights<'a> {
    /// `[d]`
    pub attn_norm: Vec<f32>,
    pub q: QWeights<'a>,
    /// `[r + dr, d]`
    pub attn_kv_a_mqa: Matrix<'a>,
    /// `[r]`
    pub attn_kv_a_norm: Vec<f32>,
    /// Per head h, `[r, dn]` = W_UK,hᵀ (row c holds column c of W_UK,h).
    pub attn_k_b: Vec<Matrix<'a>>,
    /// Per head h, `[dv, r]` = W_UV,h.
    pub attn_v_b: Vec<Matrix<'a>>,
    /// `[d, H·dv]`
    pub attn_output: Matrix<'a>,
    /// `[d]`
    pub ffn_norm: Vec<f32>,
    pub ffn: FfnWeights<'a>,
    /// DeepSeek-V3.2's lightning indexer.
    pub indexer: Option<IndexerWeights<'a>>,
}

/// Query projection.
#[derive(Debug)]
pub enum QWeights<'a> {
    /// `attn_q` `[H·(dn+dr), d]`.
    Plain(Matrix<'a>),
    /// `attn_q_a` `[rq, d]`, `attn_q_a_norm` `[rq]`, `attn_q_b` `[H·(dn+dr), rq]`.
    Lora {
        attn_q_a: Matrix<'a>,
        attn_q_a_norm: Vec<f32>,
        attn_q_b: Matrix<'a>,
    },
}

/// `down · (silu(gate · x) ⊙ (up · x))`: gate/up `[width, d]`, down `[d, width]`.
#[derive(Clone, Debug)]
pub struct SwiGlu<'a> {
    pub gate: Matrix<'a>,
    pub up: Matrix<'a>,
    pub down: Matrix<'a>,
}

#[derive(Debug)]
pub enum FfnWeights<'a> {
    Dense(SwiGlu<'a>),
    Moe(Box<MoeWeights<'a>>),
}

/// A MoE layer.
#[derive(Debug)]
pub struct MoeWeights<'a> {
    /// `ffn_gate_inp` `[E, d]`.
    pub router: Matrix<'a>,
    /// `exp_probs_b` `[E]`: added to the scores for selection only.
    pub selection_bias: Option<Vec<f32>>,
    /// Routed expert e: slice e of `ffn_{gate,up,down}_exps` (width f).
    pub experts: Vec<SwiGlu<'a>>,
    /// The S shared experts as one SwiGLU of width f·S.
    pub shared: Option<SwiGlu<'a>>,
}

impl<'a> Weights<'a> {
    /// Builds views of every tensor (no weight is copied except a legacy file's k_b).
    pub fn load(model: &'a GgufModel, config: &DeepSeekConfig) -> Result<Weights<'a>> {
        let tensors = ModelTensors::load(model, config)?;
        let m = |info: &TensorInfo| Matrix::from_tensor(model, info);
        let token_embd = m(tensors.token_embd)?;
        let output = match tensors.output {
            Some(info) => m(info)?,
            None => token_embd.clone(),
        };
        let layers = tensors
            .layers
            .iter()
            .map(|layer| load_layer(model, config, layer))
            .collect::<Result<Vec<_>>>()?;
        Ok(Weights {
            token_embd,
            output_norm: m(tensors.output_norm)?.to_vec(),
            output,
            layers,
        })
    }
}

fn load_layer<'a>(
    model: &'a GgufModel,
    c: &DeepSeekConfig,
    t: &LayerTensors<'a>,
) -> Result<LayerWeights<'a>> {
    let m = |info: &TensorInfo| Matrix::from_tensor(model, info);
    let q = match t.q {
        QTensors::Plain { attn_q } => QWeights::Plain(m(attn_q)?),
        QTensors::Lora {
            attn_q_a,
            attn_q_a_norm,
            attn_q_b,
        } => QWeights::Lora {
            attn_q_a: m(attn_q_a)?,
            attn_q_a_norm: m(attn_q_a_norm)?.to_vec(),
            attn_q_b: m(attn_q_b)?,
        },
    };
    let (h, r, dn, dv) = (
        c.n_head,
        c.n_lora_kv,
        c.n_embd_head_qk_nope,
        c.n_embd_head_v,
    );
    let (attn_k_b, attn_v_b) = match t.kv_b {
        KvBTensors::Split { attn_k_b, attn_v_b } => {
            // {dn, r, H} is H·r rows of dn; {r, dv, H} is H·dv rows of r.
            let (k_b, v_b) = (m(attn_k_b)?, m(attn_v_b)?);
            (
                (0..h).map(|i| k_b.rows(i * r, r)).collect(),
                (0..h).map(|i| v_b.rows(i * dv, dv)).collect(),
            )
        }
        KvBTensors::Legacy { attn_kv_b } => split_kv_b(&m(attn_kv_b)?, h, dn, dv),
    };
    let ffn = match &t.ffn {
        FfnTensors::Dense {
            ffn_gate,
            ffn_up,
            ffn_down,
        } => FfnWeights::Dense(SwiGlu {
            gate: m(ffn_gate)?,
            up: m(ffn_up)?,
            down: m(ffn_down)?,
        }),
        FfnTensors::Moe(moe) => FfnWeights::Moe(Box::new(load_moe(model, c, moe)?)),
    };
    let indexer = match &t.indexer {
        Some(ix) => Some(IndexerWeights {
            attn_q_b: m(ix.attn_q_b)?,
            attn_k: m(ix.attn_k)?,
            k_norm: m(ix.k_norm)?.to_vec(),
            k_norm_b: m(ix.k_norm_b)?.to_vec(),
            proj: m(ix.proj)?,
        }),
        None => None,
    };
    Ok(LayerWeights {
        indexer,
        attn_norm: m(t.attn_norm)?.to_vec(),
        q,
        attn_kv_a_mqa: m(t.attn_kv_a_mqa)?,
        attn_kv_a_norm: m(t.attn_kv_a_norm)?.to_vec(),
        attn_k_b,
        attn_v_b,
        attn_output: m(t.attn_output)?,
        ffn_norm: m(t.ffn_norm)?.to_vec(),
        ffn,
    })
}

fn load_moe<'a>(
    model: &'a GgufModel,
    c: &DeepSeekConfig,
    t: &MoeTensors<'a>,
) -> Result<MoeWeights<'a>> {
    let m = |info: &TensorInfo| Matrix::from_tensor(model, info);
    let (gate, up) = (m(t.ffn_gate_exps)?, m(t.ffn_up_exps)?);
    let down = m(t.ffn_down_exps)?;
    let (f, d) = (c.n_ff_exp, c.n_embd);
    // {d, f, E}: expert e is rows e·f .. (e+1)·f; {f, d, E}: rows e·d .. (e+1)·d.
    let experts = (0..c.n_expert)
        .map(|e| SwiGlu {
            gate: gate.rows(e * f, f),
            up: up.rows(e * f, f),
            down: down.rows(e * d, d),
        })
        .collect();
    let shared = match t.shared {
        Some([g, u, dn]) => Some(SwiGlu {
            gate: m(g)?,
            up: m(u)?,
            down: m(dn)?,
        }),
        None => None,
    };
    Ok(MoeWeights {
        router: m(t.ffn_gate_inp)?,
        selection_bias: t
            .exp_probs_b
            .map(|b| m(b).map(|b| b.to_vec()))
            .transpose()?,
        experts,
        shared,
    })
}

/// Per-head `k_b` `[r, dn]` and `v_b` `[dv, r]` from a legacy `attn_kv_b` `[H·(dn+dv), r]`
/// (spec §3.4; the converter's `DeepseekV2Model.modify_tensors` split): head h's rows
/// `h·(dn+dv) + j` are W_UK,h row j for j < dn, then W_UV,h. v_b is a row slice (no copy); k_b is
/// W_UK,h transposed, so it is materialised in f32: r·dn values per head.
pub fn split_kv_b<'a>(
    kv_b: &Matrix<'a>,
    n_head: usize,
    dn: usize,
    dv: usize,
) -> (Vec<Matrix<'a>>, Vec<Matrix<'a>>) {
    let r = kv_b.n_cols();
    let mut k_b = Vec::with_capacity(n_head);
    let mut v_b = Vec::with_capacity(n_head);
    let mut row = vec![0f32; r];
    for h in 0..n_head {
        let base = h * (dn + dv);
        // [r, dn]: element (c, j) = W_UK,h[j][c].
        let mut k_t = vec![0f32; r * dn];
        for j in 0..dn {
            kv_b.row(base + j, &mut row);
            for (c, &v) in row.iter().enumerate() {
                k_t[c * dn + j] = v;
            }
        }
        k_b.push(Matrix::from_f32(k_t, r, dn));
        v_b.push(kv_b.rows(base + dn, dv));
    }
    (k_b, v_b)
}
