//! `sample`: temperature sampling after top-k, top-p and min-p on the GPU, so a sampled token
//! comes back as 4 bytes instead of the logits and can feed the next step without the host.
//! It mirrors `crate::sampler::Sampler::sample` (without the repetition penalty) for
//! `1 ≤ top_k ≤` [`MAX_TOP_K`]; the host keeps the seeded random stream and writes each step's
//! uniform draw into [`SampleStep`], so a seed gives the same tokens on either side.
//!
//! Two kernels (`shaders/kernels/sample_reduce.wgsl`, `sample_pick.wgsl`, sharing
//! `shaders/common/candidates.wgsl`): reduction passes that keep the top k of every 1024
//! candidates until at most 1024 remain, then one workgroup that sorts those and draws.

use bytemuck::{Pod, Zeroable};
use wgpu::{Buffer, BufferUsages};

use super::elementwise::{Family, gpu_error, grid_for, len_u32, output_buffer, upload_f32};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernels' names: the WGSL file stems.
pub const REDUCE_LABEL: &str = "sample_reduce";
pub const PICK_LABEL: &str = "sample_pick";

/// The largest `top_k` the GPU sampler takes (each reduction pass must shrink its input).
pub const MAX_TOP_K: usize = 256;

/// Candidates one workgroup sorts (`CHUNK` in the WGSL).
const CHUNK: usize = 1024;

const COMMON: &str = include_str!("../../../shaders/common/candidates.wgsl");
const REDUCE: &str = include_str!("../../../shaders/kernels/sample_reduce.wgsl");
const PICK: &str = include_str!("../../../shaders/kernels/sample_pick.wgsl");

/// Mirrors the WGSL `Params` of `sample_reduce` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct ReduceParams {
    n_in: u32,
    keep: u32,
    from_logits: u32,
    _pad: u32,
}

/// Mirrors the WGSL `Params` of `sample_pick` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct PickParams {
    n_in: u32,
    k: u32,
    _pad: [u32; 2],
}

/// What changes from token to token: mirrors the WGSL `Step` of `sample_pick` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct SampleStep {
    pub top_p: f32,
    pub min_p: f32,
    /// Greater than 0 (temperature 0 is greedy: the argmax kernel).
    pub temperature: f32,
    /// The uniform draw in [0, 1) from the sampler's seeded stream.
    pub u: f32,
}

/// The candidate counts of each reduction pass's input for `n` logits and `top_k`: `n`, then
/// `ceil(n / 1024) · k` while more than 1024 remain. The last entry is `sample_pick`'s input.
fn pass_sizes(n: usize, k: usize) -> Vec<usize> {
    let mut sizes = vec![n];
    loop {
        let next = n_groups(sizes[sizes.len() - 1]) * k;
        sizes.push(next);
        if next <= CHUNK {
            return sizes;
        }
    }
}

fn n_groups(n: usize) -> usize {
    n.div_ceil(CHUNK).max(1)
}

/// Bytes each of the two candidate buffers needs for `n_vocab` logits and any top_k up to
/// [`MAX_TOP_K`] (the first pass's output is the largest).
pub fn candidate_bytes(n_vocab: usize) -> u64 {
    (n_groups(n_vocab) * MAX_TOP_K * 8) as u64
}

/// The compiled sampler pipelines.
pub struct GpuSampler {
    reduce: Family,
    pick: Family,
}

impl GpuSampler {
    pub fn new(gpu: &Gpu) -> Result<GpuSampler> {
        let reduce = format!("{COMMON}\n{REDUCE}");
        let pick = format!("{COMMON}\n{PICK}");
        Ok(GpuSampler {
            reduce: Family::new(
                gpu,
                REDUCE_LABEL,
                &reduce,
                "main",
                2,
                1,
                size_of::<ReduceParams>() as u64,
            )?,
            pick: Family::new(
                gpu,
                PICK_LABEL,
                &pick,
                "main",
                2,
                1,
                size_of::<PickParams>() as u64,
            )?,
        })
    }

    /// The dispatches that write the token sampled from `logits[..n_vocab]` with `top_k` to
    /// `out[0]` (u32), reading the per-token [`SampleStep`] from `step`; `cand` are two scratch
    /// buffers of [`candidate_bytes`] each. Built once per `top_k` and recorded every token.
    pub fn bind(
        &self,
        gpu: &Gpu,
        [logits, cand_a, cand_b, step, out]: [Binding<'_>; 5],
        n_vocab: usize,
        top_k: usize,
    ) -> Result<Vec<Dispatch>> {
        if !(1..=MAX_TOP_K).contains(&top_k) {
            return Err(gpu_error(
                REDUCE_LABEL,
                format!("top_k {top_k} is outside 1..={MAX_TOP_K}"),
            ));
        }
        let n = len_u32(gpu, REDUCE_LABEL, n_vocab)?;
        if n == 0 {
            return Err(gpu_error(REDUCE_LABEL, "no logits to sample".to_owned()));
        }
        let need = candidate_bytes(n_vocab);
        if logits.len() < 4 * u64::from(n)
            || cand_a.len() < need
            || cand_b.len() < need
            || step.len() < size_of::<SampleStep>() as u64
            || out.len() < 4
        {
            return Err(gpu_error(
                REDUCE_LABEL,
                format!(
                    "buffers too small for {n} logits (candidates need {need} bytes each, the \
                     step {} bytes, the output 4)",
                    size_of::<SampleStep>()
                ),
            ));
        }
        let sizes = pass_sizes(n_vocab, top_k);
        let mut dispatches = Vec::with_capacity(sizes.len());
        for (pass, &n_in) in sizes[..sizes.len() - 1].iter().enumerate() {
            // Pass 0 reads the logits; pass p writes buffer a when p is even, b when odd.
            let (input, output) = if pass.is_multiple_of(2) {
                (cand_b, cand_a)
            } else {
                (cand_a, cand_b)
            };
            let params = ReduceParams {
                n_in: n_in as u32,
                keep: top_k as u32,
                from_logits: u32::from(pass == 0),
                _pad: 0,
            };
            let groups = grid_for(gpu, REDUCE_LABEL, n_groups(n_in) as u32)?;
            dispatches.push(self.reduce.bind(
                gpu,
                &[logits, input, output],
                bytemuck::bytes_of(&params),
                groups,
            )?);
        }
        let last = if sizes.len().is_multiple_of(2) {
            cand_a
        } else {
            cand_b
        };
        let params = PickParams {
            n_in: sizes[sizes.len() - 1] as u32,
            k: top_k as u32,
            _pad: [0; 2],
        };
        dispatches.push(self.pick.bind(
            gpu,
            &[last, step, out],
            bytemuck::bytes_of(&params),
            (1, 1),
        )?);
        Ok(dispatches)
    }

    /// Samples one token from `logits` on the GPU (tests and one-off use).
    pub fn run(&self, gpu: &Gpu, logits: &[f32], top_k: usize, step: SampleStep) -> Result<u32> {
        let x = upload_f32(gpu, "sample.logits", logits)?;
        let cand_bytes = candidate_bytes(logits.len());
        let cand_a = output_buffer(gpu, "sample.cand_a", cand_bytes)?;
        let cand_b = output_buffer(gpu, "sample.cand_b", cand_bytes)?;
        let step_buffer = gpu.upload(
            "sample.step",
            bytemuck::bytes_of(&step),
            BufferUsages::STORAGE | BufferUsages::COPY_DST,
        )?;
        let out = output_buffer(gpu, "sample.out", 4)?;
        let bound: [&Buffer; 5] = [&x, &cand_a, &cand_b, &step_buffer, &out];
        let dispatches = self.bind(gpu, bound.map(Binding::from), logits.len(), top_k)?;
        super::elementwise::submit_all(gpu, REDUCE_LABEL, &dispatches)?;
        let bytes = gpu.read_buffer("sample.out", &out, 4)?;
        Ok(bytemuck::pod_read_unaligned(&bytes[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::ops::elementwise::validated_params_size;

    #[test]
    fn wgsl_validates_and_params_match() {
        let reduce = format!("{COMMON}\n{REDUCE}");
        let pick = format!("{COMMON}\n{PICK}");
        assert_eq!(
            validated_params_size(REDUCE_LABEL, &reduce),
            size_of::<ReduceParams>()
        );
        assert_eq!(
            validated_params_size(PICK_LABEL, &pick),
            size_of::<PickParams>()
        );
    }

    #[test]
    fn passes_shrink_to_one_workgroup() {
        assert_eq!(pass_sizes(1, 1), vec![1, 1]);
        assert_eq!(pass_sizes(1000, 256), vec![1000, 256]);
        assert_eq!(pass_sizes(129_280, 40), vec![129_280, 5080, 200]);
        assert_eq!(
            pass_sizes(129_280, 256),
            vec![129_280, 32_512, 8192, 2048, 512]
        );
        for n in [1, 1023, 1024, 1025, 49_152, 151_936, 262_144] {
            for k in [1, 40, 255, 256] {
                let sizes = pass_sizes(n, k);
                assert!(sizes[sizes.len() - 1] <= CHUNK);
                assert!(sizes[1] * 8 <= candidate_bytes(n) as usize);
            }
        }
    }
}
