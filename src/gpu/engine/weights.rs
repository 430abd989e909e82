//! The model's weights on the GPU: every tensor copied from the memory map into its own device
//! buffer, in the file's raw blocks (no f32 copies of quantized weights), through one bounded
//! staging chunk, so host memory never holds a second copy of the model.
//!
//! Tensors made of slices ("slots": the H heads of `attn_k_b`/`attn_v_b`, the E routed experts
//! of `ffn_*_exps`) are stored slot after slot, `slot_bytes` apart, which is the layout the
//! `matvec_id` kernel reads through its slot table.

use std::sync::atomic::{AtomicBool, Ordering};

use lanternfish_quant::GgmlType;
use wgpu::{Buffer, BufferUsages};

use crate::cpu::matrix::Matrix;
use crate::cpu::weights::{FfnWeights, LayerWeights, QWeights, SwiGlu, Weights};
use crate::gpu::Gpu;
use crate::model::DeepSeekConfig;
use crate::{Error, Result};

/// Bytes gathered on the host before one `write_buffer` (the staging bound).
pub const STAGING_CHUNK: usize = 16 << 20;
/// Bytes written between queue flushes, which release wgpu's internal staging memory.
const FLUSH_EVERY: u64 = 256 << 20;

/// One weight tensor on the GPU: `n_slots` matrices `[n_rows, n_cols]` of type `ty`.
#[derive(Debug)]
pub struct GpuTensor {
    pub name: String,
    pub buffer: Buffer,
    pub ty: GgmlType,
    pub n_rows: usize,
    pub n_cols: usize,
    pub n_slots: usize,
    /// The first slot this buffer holds (experts split into pools; 0 otherwise).
    pub slot_base: usize,
}

impl GpuTensor {
    /// Bytes of one row.
    pub fn row_bytes(&self) -> u64 {
        (self.n_cols / self.ty.block_elems() * self.ty.block_bytes()) as u64
    }

    /// Bytes of one slot.
    pub fn slot_bytes(&self) -> u64 {
        self.n_rows as u64 * self.row_bytes()
    }

    /// Bytes of the whole tensor (without the padding to 4).
    pub fn bytes(&self) -> u64 {
        self.n_slots as u64 * self.slot_bytes()
    }
}

/// The query projection.
#[derive(Debug)]
pub enum GpuQ {
    Plain(GpuTensor),
    Lora {
        a: GpuTensor,
        norm: Buffer,
        b: GpuTensor,
    },
}

/// gate and up of a SwiGLU FFN.
#[derive(Debug)]
pub enum GateUp {
    /// One tensor of 2 slots, gate rows then up rows (same type and shape, within one
    /// storage binding): decode runs gate, up and silu as one `matvec_swiglu` dispatch.
    Fused(GpuTensor),
    Split {
        gate: GpuTensor,
        up: GpuTensor,
    },
}

impl GateUp {
    /// The tensors, for byte counts and type lists.
    pub fn tensors(&self) -> Vec<&GpuTensor> {
        match self {
            GateUp::Fused(t) => vec![t],
            GateUp::Split { gate, up } => vec![gate, up],
        }
    }

    /// Rows of the gate (the FFN width).
    pub fn width(&self) -> usize {
        match self {
            GateUp::Fused(t) => t.n_rows,
            GateUp::Split { gate, .. } => gate.n_rows,
        }
    }
}

/// gate, up and down of a SwiGLU FFN.
#[derive(Debug)]
pub struct GpuSwiGlu {
    pub gate_up: GateUp,
    pub down: GpuTensor,
}

impl GpuSwiGlu {
    pub fn tensors(&self) -> Vec<&GpuTensor> {
        let mut out = self.gate_up.tensors();
        out.push(&self.down);
        out
    }
}

/// The routed experts of one layer: gate and up, and down, each as one or more pools of slots
/// (a tensor larger than one storage binding is split into several buffers).
#[derive(Debug)]
pub struct ExpertPools {
    pub gate_up: ExpertGateUp,
    pub down: Vec<GpuTensor>,
}

/// The routed experts' gate and up projections.
#[derive(Debug)]
pub enum ExpertGateUp {
    /// One set of pools whose slot e holds expert e's gate rows, then its up rows (`n_rows` is
    /// twice the expert width): `matvec_id_swiglu` reads both and applies SwiGLU in one
    /// dispatch. Used whenever gate and up share a type and shape.
    Fused(Vec<GpuTensor>),
    Split {
        gate: Vec<GpuTensor>,
        up: Vec<GpuTensor>,
    },
}

impl ExpertPools {
    /// Bytes of one expert's gate, up and down.
    pub fn expert_bytes(&self) -> u64 {
        self.pool_sets()
            .iter()
            .filter_map(|pools| pools.first())
            .map(GpuTensor::slot_bytes)
            .sum()
    }

    pub fn all(&self) -> impl Iterator<Item = &GpuTensor> {
        self.pool_sets().into_iter().flatten()
    }

    fn pool_sets(&self) -> Vec<&[GpuTensor]> {
        match &self.gate_up {
            ExpertGateUp::Fused(gate_up) => vec![gate_up, &self.down],
            ExpertGateUp::Split { gate, up } => vec![gate, up, &self.down],
        }
    }

    /// Where an expert's gate, up and down (in that order) go: the pools that hold them and the
    /// byte offset of each inside an expert's slot (up follows gate in a fused slot).
    pub fn destinations(&self) -> [(&[GpuTensor], u64); 3] {
        match &self.gate_up {
            ExpertGateUp::Fused(gate_up) => {
                let gate_bytes = gate_up.first().map_or(0, |p| p.slot_bytes() / 2);
                [(gate_up, 0), (gate_up, gate_bytes), (&self.down, 0)]
            }
            ExpertGateUp::Split { gate, up } => [(gate, 0), (up, 0), (&self.down, 0)],
        }
    }
}

/// A MoE layer: router, routed experts (E slots each) and the optional shared experts.
#[derive(Debug)]
pub struct GpuMoe {
    pub router: GpuTensor,
    pub selection_bias: Option<Buffer>,
    pub experts: ExpertPools,
    /// Expert id → slot of `experts` (the identity while every expert is resident).
    pub slot_of: Buffer,
    pub shared: Option<GpuSwiGlu>,
}

#[derive(Debug)]
pub enum GpuFfn {
    Dense(Box<GpuSwiGlu>),
    Moe(Box<GpuMoe>),
}

/// One block.
#[derive(Debug)]
pub struct GpuLayer {
    pub attn_norm: Buffer,
    pub q: GpuQ,
    pub kv_a: GpuTensor,
    pub kv_a_norm: Buffer,
    /// H slots of `[r, dn]` (W_UK,hᵀ).
    pub k_b: GpuTensor,
    /// H slots of `[dv, r]` (W_UV,h).
    pub v_b: GpuTensor,
    pub attn_output: GpuTensor,
    pub ffn_norm: Buffer,
    pub ffn: GpuFfn,
}

/// Every weight of the model on the GPU.
#[derive(Debug)]
pub struct GpuWeights {
    pub token_embd: GpuTensor,
    pub output_norm: Buffer,
    pub output: GpuTensor,
    pub layers: Vec<GpuLayer>,
    /// `[0, 1, …, max(H, E) − 1]`: the ids and slot table of the per-head dispatches.
    pub identity: Buffer,
    /// Bytes of all weight buffers.
    pub bytes: u64,
}

/// Progress of a load: bytes done of bytes in all, and a flag that cancels it.
pub struct LoadProgress<'a> {
    pub on_bytes: &'a dyn Fn(u64, u64),
    pub cancel: Option<&'a AtomicBool>,
}

/// Copies tensors into device buffers through one staging chunk.
struct Uploader<'g> {
    gpu: &'g Gpu,
    /// Per block: the global slot range of its paged routed experts (`None`: resident).
    paged: &'g [Option<std::ops::Range<u32>>],
    staging: Vec<u8>,
    since_flush: u64,
    done: u64,
    total: u64,
    progress: Option<&'g LoadProgress<'g>>,
}

impl Uploader<'_> {
    /// A tensor made of `slots` (all the same type and shape), slot after slot.
    fn tensor(&mut self, name: &str, slots: &[Matrix<'_>]) -> Result<GpuTensor> {
        let first = slots.first().ok_or_else(|| Error::Tensor {
            name: name.to_owned(),
            what: "no slices".to_owned(),
        })?;
        let (ty, _) = first.raw();
        let (n_rows, n_cols) = (first.n_rows(), first.n_cols());
        let size: u64 = slots.iter().map(|m| m.raw().1.len() as u64).sum();
        let buffer = self.gpu.create_buffer(
            &format!("tensor {name}"),
            size.next_multiple_of(4).max(4),
            BufferUsages::STORAGE | BufferUsages::COPY_DST,
        )?;
        let mut offset = 0u64;
        for slot in slots {
            let (slot_ty, bytes) = slot.raw();
            if slot_ty != ty || slot.n_rows() != n_rows || slot.n_cols() != n_cols {
                return Err(Error::Tensor {
                    name: name.to_owned(),
                    what: "slices differ in type or shape".to_owned(),
                });
            }
            for piece in bytes.chunks(STAGING_CHUNK) {
                self.staging.extend_from_slice(piece);
                // Flush whole words; the remainder (< 4 bytes) waits for the next piece.
                if self.staging.len() >= STAGING_CHUNK {
                    offset = self.flush(&buffer, offset, false)?;
                }
            }
        }
        self.flush(&buffer, offset, true)?;
        Ok(GpuTensor {
            name: name.to_owned(),
            buffer,
            ty,
            n_rows,
            n_cols,
            n_slots: slots.len(),
            slot_base: 0,
        })
    }

    /// How many slots of `slot_bytes` one pool (one storage binding, u32 byte addresses) holds;
    /// an error naming `name` when not even one does.
    fn slots_per_pool(&self, name: &str, slot_bytes: u64) -> Result<u32> {
        let limit = self
            .gpu
            .limits
            .max_storage_buffer_binding_size
            .min(u64::from(u32::MAX));
        // At most u32::MAX, as the limit is.
        let per_pool = (limit / slot_bytes.max(1)) as u32;
        if per_pool == 0 {
            return Err(Error::Tensor {
                name: name.to_owned(),
                what: format!("one {slot_bytes}-byte slice exceeds a {limit}-byte storage binding"),
            });
        }
        Ok(per_pool)
    }

    /// Slots split into pools that each fit one storage binding (with u32 byte addresses).
    fn pools(&mut self, name: &str, slots: &[Matrix<'_>]) -> Result<Vec<GpuTensor>> {
        let slot_bytes = slots.first().map_or(1, |m| m.raw().1.len() as u64);
        let per_pool = self.slots_per_pool(name, slot_bytes)? as usize;
        let mut pools = Vec::new();
        for (i, chunk) in slots.chunks(per_pool).enumerate() {
            let mut pool = self.tensor(&format!("{name} pool {i}"), chunk)?;
            pool.slot_base = i * per_pool;
            pools.push(pool);
        }
        Ok(pools)
    }

    /// Pools of experts whose slot e holds `gates[e]`'s rows then `ups[e]`'s (one type and
    /// shape), split to fit one storage binding each.
    fn fused_pools(
        &mut self,
        name: &str,
        gates: &[Matrix<'_>],
        ups: &[Matrix<'_>],
    ) -> Result<Vec<GpuTensor>> {
        let slot_bytes = gates.first().map_or(1, |m| 2 * m.raw().1.len() as u64);
        let per_pool = self.slots_per_pool(name, slot_bytes)? as usize;
        let mut pools = Vec::new();
        for (i, (gates, ups)) in gates.chunks(per_pool).zip(ups.chunks(per_pool)).enumerate() {
            // Slices 2e and 2e + 1 of the uploaded tensor are expert e's gate and up: one slot
            // of twice the rows.
            let slices: Vec<Matrix<'_>> = gates
                .iter()
                .zip(ups)
                .flat_map(|(g, u)| [g.clone(), u.clone()])
                .collect();
            let mut pool = self.tensor(&format!("{name} pool {i}"), &slices)?;
            pool.n_rows *= 2;
            pool.n_slots /= 2;
            pool.slot_base = i * per_pool;
            pools.push(pool);
        }
        Ok(pools)
    }

    /// Empty pools for the slots `range` of experts shaped like `first` (`parts` of them per
    /// slot: 2 for gate and up together) (paged experts: the pager fills them on demand), split
    /// to fit one storage binding each.
    fn empty_pools(
        &mut self,
        name: &str,
        first: &Matrix<'_>,
        parts: usize,
        range: std::ops::Range<u32>,
    ) -> Result<Vec<GpuTensor>> {
        let (ty, bytes) = first.raw();
        let slot_bytes = (parts as u64 * bytes.len() as u64).max(1);
        let per_pool = self.slots_per_pool(name, slot_bytes)?;
        let mut pools = Vec::new();
        let mut base = range.start;
        while base < range.end {
            let n = per_pool.min(range.end - base);
            let buffer = self.gpu.create_buffer(
                &format!("expert slots {name} {base}..{}", base + n),
                (u64::from(n) * slot_bytes).next_multiple_of(4).max(4),
                BufferUsages::STORAGE | BufferUsages::COPY_DST,
            )?;
            pools.push(GpuTensor {
                name: format!("{name} slots {base}.."),
                buffer,
                ty,
                n_rows: parts * first.n_rows(),
                n_cols: first.n_cols(),
                n_slots: n as usize,
                slot_base: base as usize,
            });
            base += n;
        }
        Ok(pools)
    }

    /// Writes the staged bytes at `offset` (all of them, zero-padded, when `last`; else the
    /// largest multiple of 4) and returns the next offset.
    fn flush(&mut self, buffer: &Buffer, offset: u64, last: bool) -> Result<u64> {
        if let Some(cancel) = self.progress.and_then(|p| p.cancel)
            && cancel.load(Ordering::Relaxed)
        {
            return Err(Error::Cancelled);
        }
        if last {
            let padded = self.staging.len().next_multiple_of(4);
            self.staging.resize(padded, 0);
        }
        let n = self.staging.len() / 4 * 4;
        if n > 0 {
            self.gpu
                .queue
                .write_buffer(buffer, offset, &self.staging[..n]);
        }
        self.staging.drain(..n);
        self.done += n as u64;
        self.since_flush += n as u64;
        if self.since_flush >= FLUSH_EVERY {
            self.since_flush = 0;
            self.gpu.queue.submit([]);
            self.gpu
                .device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|error| Error::Gpu {
                    what: "uploading weights".to_owned(),
                    message: error.to_string(),
                })?;
        }
        if let Some(progress) = self.progress {
            (progress.on_bytes)(self.done, self.total);
        }
        Ok(offset + n as u64)
    }

    fn matrix(&mut self, name: &str, m: &Matrix<'_>) -> Result<GpuTensor> {
        self.tensor(name, std::slice::from_ref(m))
    }

    fn vector(&mut self, name: &str, values: &[f32]) -> Result<Buffer> {
        let bytes: &[u8] = if values.is_empty() {
            &[0; 4]
        } else {
            bytemuck::cast_slice(values)
        };
        self.done += bytes.len() as u64;
        self.gpu
            .upload(&format!("vector {name}"), bytes, BufferUsages::STORAGE)
    }

    fn swiglu(&mut self, prefix: &str, w: &SwiGlu<'_>) -> Result<GpuSwiGlu> {
        let (gate_ty, gate_bytes) = w.gate.raw();
        let (up_ty, up_bytes) = w.up.raw();
        let limit = self
            .gpu
            .limits
            .max_storage_buffer_binding_size
            .min(u64::from(u32::MAX));
        let fusable = gate_ty == up_ty
            && w.gate.n_rows() == w.up.n_rows()
            && w.gate.n_cols() == w.up.n_cols()
            && (gate_bytes.len() + up_bytes.len()) as u64 <= limit;
        let gate_up = if fusable {
            let slots = [w.gate.clone(), w.up.clone()];
            GateUp::Fused(self.tensor(&format!("{prefix}_gate_up"), &slots)?)
        } else {
            GateUp::Split {
                gate: self.matrix(&format!("{prefix}_gate"), &w.gate)?,
                up: self.matrix(&format!("{prefix}_up"), &w.up)?,
            }
        };
        Ok(GpuSwiGlu {
            gate_up,
            down: self.matrix(&format!("{prefix}_down"), &w.down)?,
        })
    }

    fn layer(&mut self, il: usize, w: &LayerWeights<'_>, c: &DeepSeekConfig) -> Result<GpuLayer> {
        let n = |what: &str| format!("blk.{il}.{what}");
        let q = match &w.q {
            QWeights::Plain(attn_q) => GpuQ::Plain(self.matrix(&n("attn_q"), attn_q)?),
            QWeights::Lora {
                attn_q_a,
                attn_q_a_norm,
                attn_q_b,
            } => GpuQ::Lora {
                a: self.matrix(&n("attn_q_a"), attn_q_a)?,
                norm: self.vector(&n("attn_q_a_norm"), attn_q_a_norm)?,
                b: self.matrix(&n("attn_q_b"), attn_q_b)?,
            },
        };
        let ffn = match &w.ffn {
            FfnWeights::Dense(ffn) => GpuFfn::Dense(Box::new(self.swiglu(&n("ffn"), ffn)?)),
            FfnWeights::Moe(moe) => {
                let gates: Vec<Matrix<'_>> = moe.experts.iter().map(|e| e.gate.clone()).collect();
                let ups: Vec<Matrix<'_>> = moe.experts.iter().map(|e| e.up.clone()).collect();
                let downs: Vec<Matrix<'_>> = moe.experts.iter().map(|e| e.down.clone()).collect();
                let paged = self.paged.get(il).cloned().flatten();
                let table: Vec<u32> = match paged {
                    Some(_) => vec![crate::gpu::paging::NOT_RESIDENT; c.n_expert],
                    None => (0..c.n_expert as u32).collect(),
                };
                // Gate and up of one type and shape share a slot (fused SwiGLU dispatch).
                let fusable = moe.experts.first().is_some_and(|e| {
                    e.gate.raw().0 == e.up.raw().0
                        && e.gate.n_rows() == e.up.n_rows()
                        && e.gate.n_cols() == e.up.n_cols()
                });
                let experts = match (paged, moe.experts.first()) {
                    (Some(range), Some(first)) => ExpertPools {
                        gate_up: if fusable {
                            let fused = self.empty_pools(
                                &n("ffn_gate_up_exps"),
                                &first.gate,
                                2,
                                range.clone(),
                            )?;
                            ExpertGateUp::Fused(fused)
                        } else {
                            ExpertGateUp::Split {
                                gate: self.empty_pools(
                                    &n("ffn_gate_exps"),
                                    &first.gate,
                                    1,
                                    range.clone(),
                                )?,
                                up: self.empty_pools(
                                    &n("ffn_up_exps"),
                                    &first.up,
                                    1,
                                    range.clone(),
                                )?,
                            }
                        },
                        down: self.empty_pools(&n("ffn_down_exps"), &first.down, 1, range)?,
                    },
                    _ => ExpertPools {
                        gate_up: if fusable {
                            ExpertGateUp::Fused(self.fused_pools(
                                &n("ffn_gate_up_exps"),
                                &gates,
                                &ups,
                            )?)
                        } else {
                            ExpertGateUp::Split {
                                gate: self.pools(&n("ffn_gate_exps"), &gates)?,
                                up: self.pools(&n("ffn_up_exps"), &ups)?,
                            }
                        },
                        down: self.pools(&n("ffn_down_exps"), &downs)?,
                    },
                };
                GpuFfn::Moe(Box::new(GpuMoe {
                    router: self.matrix(&n("ffn_gate_inp"), &moe.router)?,
                    selection_bias: moe
                        .selection_bias
                        .as_deref()
                        .map(|b| self.vector(&n("exp_probs_b"), b))
                        .transpose()?,
                    experts,
                    slot_of: self.gpu.upload(
                        &n("slot_of"),
                        bytemuck::cast_slice(&table),
                        BufferUsages::STORAGE | BufferUsages::COPY_DST,
                    )?,
                    shared: moe
                        .shared
                        .as_ref()
                        .map(|s| self.swiglu(&n("ffn_shexp"), s))
                        .transpose()?,
                }))
            }
        };
        Ok(GpuLayer {
            attn_norm: self.vector(&n("attn_norm"), &w.attn_norm)?,
            q,
            kv_a: self.matrix(&n("attn_kv_a_mqa"), &w.attn_kv_a_mqa)?,
            kv_a_norm: self.vector(&n("attn_kv_a_norm"), &w.attn_kv_a_norm)?,
            k_b: self.tensor(&n("attn_k_b"), &w.attn_k_b)?,
            v_b: self.tensor(&n("attn_v_b"), &w.attn_v_b)?,
            attn_output: self.matrix(&n("attn_output"), &w.attn_output)?,
            ffn_norm: self.vector(&n("ffn_norm"), &w.ffn_norm)?,
            ffn,
        })
    }
}

impl GpuWeights {
    /// Uploads every tensor of `w` (views into the file's map made by the CPU loader), except
    /// the routed experts of the blocks `paged` gives a slot range: those get empty slot pools.
    pub fn upload(
        gpu: &Gpu,
        c: &DeepSeekConfig,
        w: &Weights<'_>,
        paged: &[Option<std::ops::Range<u32>>],
        total_bytes: u64,
        progress: Option<&LoadProgress<'_>>,
    ) -> Result<GpuWeights> {
        let mut up = Uploader {
            gpu,
            paged,
            staging: Vec::with_capacity(STAGING_CHUNK + 4),
            since_flush: 0,
            done: 0,
            total: total_bytes,
            progress,
        };
        let token_embd = up.matrix("token_embd", &w.token_embd)?;
        let layers = w
            .layers
            .iter()
            .enumerate()
            .map(|(il, layer)| up.layer(il, layer, c))
            .collect::<Result<Vec<_>>>()?;
        let output_norm = up.vector("output_norm", &w.output_norm)?;
        let output = up.matrix("output", &w.output)?;
        let n_ids = c.n_head.max(c.n_expert).max(1) as u32;
        let identity: Vec<u32> = (0..n_ids).collect();
        let identity = gpu.upload(
            "identity ids",
            bytemuck::cast_slice(&identity),
            BufferUsages::STORAGE,
        )?;
        gpu.queue.submit([]);
        Ok(GpuWeights {
            token_embd,
            output_norm,
            output,
            layers,
            identity,
            bytes: up.done,
        })
    }
}

/// One block of a dense (llama/qwen2/qwen3) model.
#[derive(Debug)]
pub struct DenseGpuLayer {
    pub attn_norm: Buffer,
    pub q: GpuTensor,
    pub k: GpuTensor,
    pub v: GpuTensor,
    pub q_bias: Option<Buffer>,
    pub k_bias: Option<Buffer>,
    pub v_bias: Option<Buffer>,
    /// Per-head RMSNorm weights of q and k (`[hd]`, qwen3).
    pub q_norm: Option<Buffer>,
    pub k_norm: Option<Buffer>,
    pub attn_output: GpuTensor,
    pub ffn_norm: Buffer,
    pub ffn: GpuSwiGlu,
}

/// Every weight of a dense model on the GPU.
#[derive(Debug)]
pub struct DenseGpuWeights {
    pub token_embd: GpuTensor,
    pub output_norm: Buffer,
    pub output: GpuTensor,
    pub layers: Vec<DenseGpuLayer>,
    pub bytes: u64,
}

impl DenseGpuWeights {
    /// Uploads every tensor of a dense model (views into the file's map).
    pub fn upload(
        gpu: &Gpu,
        m: &crate::cpu::dense::DenseModel<'_>,
        total_bytes: u64,
        progress: Option<&LoadProgress<'_>>,
    ) -> Result<DenseGpuWeights> {
        let mut up = Uploader {
            gpu,
            paged: &[],
            staging: Vec::with_capacity(STAGING_CHUNK + 4),
            since_flush: 0,
            done: 0,
            total: total_bytes,
            progress,
        };
        let token_embd = up.matrix("token_embd", &m.token_embd)?;
        let mut layers = Vec::with_capacity(m.layers.len());
        for (il, l) in m.layers.iter().enumerate() {
            let n = |what: &str| format!("blk.{il}.{what}");
            let mut vector = |what: &str, b: &Option<Vec<f32>>| {
                b.as_deref().map(|b| up.vector(&n(what), b)).transpose()
            };
            let (q_bias, k_bias, v_bias) = (
                vector("attn_q.bias", &l.attn_q_bias)?,
                vector("attn_k.bias", &l.attn_k_bias)?,
                vector("attn_v.bias", &l.attn_v_bias)?,
            );
            let (q_norm, k_norm) = (
                vector("attn_q_norm", &l.attn_q_norm)?,
                vector("attn_k_norm", &l.attn_k_norm)?,
            );
            layers.push(DenseGpuLayer {
                attn_norm: up.vector(&n("attn_norm"), &l.attn_norm)?,
                q: up.matrix(&n("attn_q"), &l.attn_q)?,
                k: up.matrix(&n("attn_k"), &l.attn_k)?,
                v: up.matrix(&n("attn_v"), &l.attn_v)?,
                q_bias,
                k_bias,
                v_bias,
                q_norm,
                k_norm,
                attn_output: up.matrix(&n("attn_output"), &l.attn_output)?,
                ffn_norm: up.vector(&n("ffn_norm"), &l.ffn_norm)?,
                ffn: up.swiglu(&n("ffn"), &l.ffn)?,
            });
        }
        let output_norm = up.vector("output_norm", &m.output_norm)?;
        let output = up.matrix("output", &m.output)?;
        gpu.queue.submit([]);
        Ok(DenseGpuWeights {
            token_embd,
            output_norm,
            output,
            layers,
            bytes: up.done,
        })
    }
}
