//! `axpy`: `y = a * x + y` over f32 vectors. The smoke path that proves a device can compile,
//! dispatch and read back; see `shaders/kernels/axpy.wgsl`.

use bytemuck::{Pod, Zeroable};
use wgpu::BufferUsages;

use super::elementwise::{Family, gpu_error, grid_for, len_u32, submit_all};
use crate::Result;
use crate::gpu::Gpu;

/// The kernel's name: the WGSL file stem and the label of every object it creates.
pub const LABEL: &str = "axpy";

const SOURCE: &str = include_str!("../../../shaders/kernels/axpy.wgsl");

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Mirrors the WGSL `Params` struct: 16 bytes, the smallest uniform binding size.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AxpyParams {
    a: f32,
    n: u32,
    _pad: [u32; 2],
}

/// A compiled `axpy` pipeline, reusable for any number of calls on the device it was built on.
pub struct Axpy {
    family: Family,
}

impl Axpy {
    /// Compiles the shader and builds the pipeline. WGSL or layout errors become
    /// [`crate::Error::Gpu`].
    pub fn new(gpu: &Gpu) -> Result<Axpy> {
        let params = size_of::<AxpyParams>() as u64;
        Ok(Axpy {
            family: Family::new(gpu, LABEL, SOURCE, "main", 1, 1, params)?,
        })
    }

    /// Returns `a * x + y` computed on the GPU. `x` and `y` must have the same length, and each
    /// must fit in one storage binding.
    pub fn run(&self, gpu: &Gpu, a: f32, x: &[f32], y: &[f32]) -> Result<Vec<f32>> {
        if x.len() != y.len() {
            return Err(gpu_error(
                LABEL,
                format!("x has {} elements but y has {}", x.len(), y.len()),
            ));
        }
        if x.is_empty() {
            return Ok(Vec::new());
        }
        // One thread per element, 64 per workgroup, spilling into the second grid dimension.
        let n = len_u32(gpu, LABEL, x.len())?;
        let groups = grid_for(gpu, LABEL, n.div_ceil(WORKGROUP_SIZE))?;
        let x_buffer = gpu.upload("axpy.x", bytemuck::cast_slice(x), BufferUsages::STORAGE)?;
        let y_buffer = gpu.upload(
            "axpy.y",
            bytemuck::cast_slice(y),
            BufferUsages::STORAGE | BufferUsages::COPY_SRC,
        )?;
        let params = AxpyParams { a, n, _pad: [0; 2] };
        let storage = [(&x_buffer).into(), (&y_buffer).into()];
        let dispatch = self
            .family
            .bind(gpu, &storage, bytemuck::bytes_of(&params), groups)?;
        submit_all(gpu, LABEL, [&dispatch])?;
        gpu.read_f32("axpy.y", &y_buffer, x.len())
    }
}

/// Computes `a * x + y` on the GPU, building the pipeline for this one call.
pub fn axpy(gpu: &Gpu, a: f32, x: &[f32], y: &[f32]) -> Result<Vec<f32>> {
    Axpy::new(gpu)?.run(gpu, a, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        let span = super::super::elementwise::validated_params_size(LABEL, SOURCE);
        assert_eq!(span, size_of::<AxpyParams>());
        assert_eq!(size_of::<AxpyParams>(), 16);
    }
}
