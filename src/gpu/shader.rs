//! Composition of the dequantizing kernels' WGSL: one source per (kernel family, weight type).
//!
//! A composed module is, in order:
//! 1. the layout constants `BLOCK_BYTES` and `BLOCK_ELEMS`, written here from
//!    [`GgmlType::block_bytes`] and [`GgmlType::block_elems`] (the one table of block geometry,
//!    so no WGSL file types them by hand);
//! 2. `shaders/common/*.wgsl`: byte, u16, u32 and f16 reads from the raw block bytes and the
//!    K-quant scale unpacking;
//! 3. `shaders/quant/<type>.wgsl`: `fn dequantize_value(base: u32, i: u32) -> f32`, element `i`
//!    of the block starting at byte `base` of `weights`;
//! 4. `shaders/kernels/<kernel>.wgsl`: declares `weights: array<u32>` at binding 0 and calls
//!    `dequantize_value`.
//!
//! See `shaders/README.md` for the contract.

use lanternfish_quant::GgmlType;
use wgpu::{BindGroupLayout, ComputePipeline, ShaderStages};

use crate::gpu::Gpu;
use crate::{Error, Result};

/// The kernel families composed with a quant file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `shaders/kernels/dequantize.wgsl`: raw blocks to f32.
    Dequantize,
    /// `shaders/kernels/matvec.wgsl`: `y = W x` with W in raw blocks.
    Matvec,
    /// `shaders/kernels/matvec_id.wgsl`: per-output slot-selected matvecs (experts, heads).
    MatvecId,
    /// `shaders/kernels/embed.wgsl`: embedding rows gathered by token id.
    Embed,
    /// `shaders/kernels/matmul.wgsl`: `Y = W X` (+ Y) for a tile of tokens, W in raw blocks.
    Matmul,
    /// `shaders/kernels/matvec_swiglu.wgsl`: `h = silu(G x) ⊙ (U x)` in one dispatch.
    MatvecSwiglu,
}

impl Kernel {
    /// Every kernel family.
    pub const ALL: [Kernel; 6] = [
        Kernel::Dequantize,
        Kernel::Matvec,
        Kernel::MatvecId,
        Kernel::Embed,
        Kernel::Matmul,
        Kernel::MatvecSwiglu,
    ];

    /// The WGSL file stem.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Dequantize => "dequantize",
            Kernel::Matvec => "matvec",
            Kernel::Matmul => "matmul",
            Kernel::MatvecId => "matvec_id",
            Kernel::Embed => "embed",
            Kernel::MatvecSwiglu => "matvec_swiglu",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Kernel::Dequantize => include_str!("../../shaders/kernels/dequantize.wgsl"),
            Kernel::Matvec => include_str!("../../shaders/kernels/matvec.wgsl"),
            Kernel::Matmul => include_str!("../../shaders/kernels/matmul.wgsl"),
            Kernel::MatvecId => include_str!("../../shaders/kernels/matvec_id.wgsl"),
            Kernel::Embed => include_str!("../../shaders/kernels/embed.wgsl"),
            Kernel::MatvecSwiglu => include_str!("../../shaders/kernels/matvec_swiglu.wgsl"),
        }
    }
}

/// The weight types that have a `shaders/quant/` file, in GGML id order.
pub const QUANT_TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Bf16,
];

const COMMON: [&str; 2] = [
    include_str!("../../shaders/common/bytes.wgsl"),
    include_str!("../../shaders/common/k_scales.wgsl"),
];

/// The `shaders/quant/` file for `ty`, or `None` for a type without one.
fn quant_source(ty: GgmlType) -> Option<&'static str> {
    Some(match ty {
        GgmlType::F32 => include_str!("../../shaders/quant/f32.wgsl"),
        GgmlType::F16 => include_str!("../../shaders/quant/f16.wgsl"),
        GgmlType::Bf16 => include_str!("../../shaders/quant/bf16.wgsl"),
        GgmlType::Q4_0 => include_str!("../../shaders/quant/q4_0.wgsl"),
        GgmlType::Q4_1 => include_str!("../../shaders/quant/q4_1.wgsl"),
        GgmlType::Q5_0 => include_str!("../../shaders/quant/q5_0.wgsl"),
        GgmlType::Q5_1 => include_str!("../../shaders/quant/q5_1.wgsl"),
        GgmlType::Q8_0 => include_str!("../../shaders/quant/q8_0.wgsl"),
        GgmlType::Q2K => include_str!("../../shaders/quant/q2_k.wgsl"),
        GgmlType::Q3K => include_str!("../../shaders/quant/q3_k.wgsl"),
        GgmlType::Q4K => include_str!("../../shaders/quant/q4_k.wgsl"),
        GgmlType::Q5K => include_str!("../../shaders/quant/q5_k.wgsl"),
        GgmlType::Q6K => include_str!("../../shaders/quant/q6_k.wgsl"),
        _ => return None,
    })
}

/// `dequantize_segment` for a quant file that does not define its own: element by element
/// through `dequantize_value` (correct for every type, but re-decoding the block's scales per
/// element).
const GENERIC_SEGMENT: &str = "\
// Generic: elements seg * 32 .. seg * 32 + 31 of the row at byte row_base, one at a time.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    for (var i = 0u; i < SEGMENT; i++) {
        let e = seg * SEGMENT + i;
        (*out)[i] = dequantize_value(row_base + (e / BLOCK_ELEMS) * BLOCK_BYTES, e % BLOCK_ELEMS);
    }
}
";

/// The composed WGSL of `kernel` for weights of type `ty`, or [`Error::Gpu`] for a type without
/// a quant file.
pub fn compose(kernel: Kernel, ty: GgmlType) -> Result<String> {
    let quant = quant_source(ty).ok_or_else(|| Error::Gpu {
        what: format!("{}.{}", kernel.name(), ty.name()),
        message: format!("no GPU kernel for weight type {}", ty.name()),
    })?;
    let mut source = format!(
        "// Composed by src/gpu/shader.rs: {kernel} for {ty}.\n\
         const BLOCK_BYTES: u32 = {bytes}u;\n\
         const BLOCK_ELEMS: u32 = {elems}u;\n\n",
        kernel = kernel.name(),
        ty = ty.name(),
        bytes = ty.block_bytes(),
        elems = ty.block_elems(),
    );
    source.push_str("const SEGMENT: u32 = 32u;\n\n");
    for part in COMMON.iter().chain([&quant]) {
        source.push_str(part);
        source.push('\n');
    }
    if !quant.contains("fn dequantize_segment(") {
        source.push_str(GENERIC_SEGMENT);
    }
    source.push_str(kernel.source());
    source.push('\n');
    Ok(source)
}

/// A compiled pipeline with its bind group layout.
pub(crate) struct Pipeline {
    pub pipeline: ComputePipeline,
    pub layout: BindGroupLayout,
}

/// Compiles `source` and builds a pipeline with entry point `main` whose group 0 has the given
/// bindings, in order from 0: `Some(read_only)` for a storage buffer, `None` for a uniform
/// buffer of `uniform_size` bytes.
pub(crate) fn build_pipeline(
    gpu: &Gpu,
    label: &str,
    source: &str,
    bindings: &[Option<bool>],
    uniform_size: u64,
) -> Result<Pipeline> {
    let module = gpu.create_shader_module(label, source)?;
    gpu.checked(&format!("creating pipeline {label}"), |device| {
        let entries: Vec<_> = bindings
            .iter()
            .enumerate()
            .map(|(binding, kind)| wgpu::BindGroupLayoutEntry {
                binding: binding as u32,
                visibility: ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match kind {
                        Some(read_only) => wgpu::BufferBindingType::Storage {
                            read_only: *read_only,
                        },
                        None => wgpu::BufferBindingType::Uniform,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: match kind {
                        Some(_) => None,
                        None => wgpu::BufferSize::new(uniform_size),
                    },
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Pipeline { pipeline, layout }
    })
}

/// Composes `kernel` for `ty` and builds its pipeline with the binding layout the single-input
/// quant kernels share (matvec, matmul, matvec_swiglu, embed): weights and input read-only,
/// output read-write, then a uniform of `params_size` bytes. Returns the label
/// (`<kernel>.<type>`) and the pipeline; a type without a quant file or a WGSL error becomes
/// [`Error::Gpu`].
pub(crate) fn build_quant_pipeline(
    gpu: &Gpu,
    kernel: Kernel,
    ty: GgmlType,
    params_size: u64,
) -> Result<(String, Pipeline)> {
    let label = format!("{}.{}", kernel.name(), ty.name());
    let source = compose(kernel, ty)?;
    let bindings = [Some(true), Some(true), Some(false), None];
    let pipeline = build_pipeline(gpu, &label, &source, &bindings, params_size)?;
    Ok((label, pipeline))
}

/// Lays `n_groups` workgroups out as `(x, y)` with both at most `max_per_dim`, or `None` when
/// even a square grid is too small. Kernels recover the index as `y * num_workgroups.x + x`.
pub(crate) fn grid(n_groups: u32, max_per_dim: u32) -> Option<(u32, u32)> {
    let groups_x = n_groups.min(max_per_dim).max(1);
    let groups_y = n_groups.div_ceil(groups_x);
    (groups_y <= max_per_dim).then_some((groups_x, groups_y))
}

/// `bytes` padded with zeros to a multiple of 4, the unit of an `array<u32>` binding.
pub(crate) fn pad_to_words(bytes: &[u8]) -> Vec<u8> {
    let mut padded = bytes.to_vec();
    padded.resize(bytes.len().next_multiple_of(4).max(4), 0);
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_spills_into_the_second_dimension() {
        assert_eq!(grid(1, 65535), Some((1, 1)));
        assert_eq!(grid(65536, 65535), Some((65535, 2)));
        assert_eq!(grid(u32::MAX, 65535), None);
    }

    #[test]
    fn every_type_composes_and_others_do_not() {
        for ty in GgmlType::all() {
            let has = QUANT_TYPES.contains(&ty);
            for kernel in Kernel::ALL {
                assert_eq!(compose(kernel, ty).is_ok(), has, "{kernel:?} {ty:?}");
            }
        }
    }

    #[test]
    fn injected_constants_come_from_the_type_table() {
        let source = compose(Kernel::Matvec, GgmlType::Q6K).unwrap_or_default();
        assert!(source.contains("const BLOCK_BYTES: u32 = 210u;"));
        assert!(source.contains("const BLOCK_ELEMS: u32 = 256u;"));
    }
}
