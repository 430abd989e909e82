//! `dequantize`: raw GGUF blocks of one type to f32 on the GPU; see
//! `shaders/kernels/dequantize.wgsl`. It evaluates the same `dequantize_value` as the matvec
//! kernel, so it is the vehicle for testing each `shaders/quant/` file against
//! `lanternfish_quant::dequantize_row`.

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

use super::elementwise::{grid_for, submit_all};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::shader::{self, Kernel, QuantKernel, Reduction};

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Mirrors the WGSL `Params` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct DequantizeParams {
    n: u32,
    /// 0: one thread per element (`dequantize_value`); 1: one per 32-element segment
    /// (`dequantize_segment`).
    segments: u32,
    _pad: [u32; 2],
}

/// A compiled `dequantize` pipeline for one weight type.
pub struct Dequantize {
    kernel: QuantKernel,
}

impl Dequantize {
    /// Composes and compiles the kernel for `ty`; a type without a quant file or a WGSL error
    /// becomes [`crate::Error::Gpu`].
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<Dequantize> {
        let bindings = [Some(true), Some(false), None];
        let size = size_of::<DequantizeParams>() as u64;
        Ok(Dequantize {
            kernel: QuantKernel::new(
                gpu,
                (Kernel::Dequantize, Reduction::Workgroup),
                ty,
                &bindings,
                size,
            )?,
        })
    }

    /// Decodes `bytes`, whole blocks of the pipeline's type, to f32. Input and output must each
    /// fit in one storage binding.
    pub fn run(&self, gpu: &Gpu, bytes: &[u8]) -> Result<Vec<f32>> {
        self.run_mode(gpu, bytes, false)
    }

    /// [`Dequantize::run`] through `dequantize_segment`, one thread per 32 elements, the bytes
    /// read as one row (so segments cross blocks as in a matrix row). The element count must be
    /// a multiple of 32.
    pub fn run_segments(&self, gpu: &Gpu, bytes: &[u8]) -> Result<Vec<f32>> {
        self.run_mode(gpu, bytes, true)
    }

    fn run_mode(&self, gpu: &Gpu, bytes: &[u8], segments: bool) -> Result<Vec<f32>> {
        let label = self.kernel.label.as_str();
        let gpu_error = |message: String| self.kernel.error(message);
        let ty = self.kernel.ty;
        let (block_bytes, block_elems) = (ty.block_bytes(), ty.block_elems());
        if !bytes.len().is_multiple_of(block_bytes) {
            return Err(gpu_error(format!(
                "{} bytes are not whole {block_bytes}-byte blocks",
                bytes.len()
            )));
        }
        let n_elems = bytes.len() / block_bytes * block_elems;
        if n_elems == 0 {
            return Ok(Vec::new());
        }
        let limit = gpu.limits.max_storage_buffer_binding_size;
        let out_bytes = (n_elems * size_of::<f32>()) as u64;
        let n = u32::try_from(n_elems)
            .ok()
            .filter(|_| out_bytes.max(bytes.len() as u64 + 4) <= limit.min(u64::from(u32::MAX)))
            .ok_or_else(|| {
                gpu_error(format!(
                    "{n_elems} elements do not fit one {limit}-byte storage binding"
                ))
            })?;
        if segments && !n.is_multiple_of(32) {
            return Err(gpu_error(format!(
                "{n} elements are not whole 32-element segments"
            )));
        }
        let threads = if segments { n / 32 } else { n };
        let n_groups = threads.div_ceil(WORKGROUP_SIZE);
        let groups = grid_for(gpu, label, n_groups)?;

        let weights = gpu.upload(
            "dequantize.weights",
            &shader::pad_to_words(bytes),
            BufferUsages::STORAGE,
        )?;
        let out = gpu.create_buffer(
            "dequantize.out",
            out_bytes,
            BufferUsages::STORAGE | BufferUsages::COPY_SRC,
        )?;
        let params = DequantizeParams {
            n,
            segments: u32::from(segments),
            _pad: [0; 2],
        };
        let storage = [(&weights).into(), (&out).into()];
        let dispatch = self
            .kernel
            .bind(gpu, &storage, bytemuck::bytes_of(&params), groups)?;
        submit_all(gpu, label, [&dispatch])?;
        gpu.read_f32("dequantize.out", &out, n_elems)
    }
}

/// Decodes `bytes` (whole blocks of type `ty`) to f32 on the GPU, building the pipeline for this
/// one call.
pub fn dequantize(gpu: &Gpu, ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>> {
    Dequantize::new(gpu, ty)?.run(gpu, bytes)
}
