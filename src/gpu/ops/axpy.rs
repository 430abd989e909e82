//! `axpy`: `y = a * x + y` over f32 vectors. The smoke path that proves a device can compile,
//! dispatch and read back; see `shaders/kernels/axpy.wgsl`.

use bytemuck::{Pod, Zeroable};
use wgpu::{BindGroupLayout, BufferUsages, ComputePipeline, ShaderStages};

use crate::gpu::Gpu;
use crate::{Error, Result};

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
    pipeline: ComputePipeline,
    layout: BindGroupLayout,
}

impl Axpy {
    /// Compiles the shader and builds the pipeline. WGSL or layout errors become [`Error::Gpu`].
    pub fn new(gpu: &Gpu) -> Result<Axpy> {
        let module = gpu.create_shader_module(LABEL, SOURCE)?;
        gpu.checked(&format!("creating pipeline {LABEL}"), |device| {
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(LABEL),
                entries: &[
                    storage_entry(0, true),
                    storage_entry(1, false),
                    uniform_entry(2),
                ],
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(LABEL),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(LABEL),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            Axpy { pipeline, layout }
        })
    }

    /// Returns `a * x + y` computed on the GPU. `x` and `y` must have the same length, and each
    /// must fit in one storage binding.
    pub fn run(&self, gpu: &Gpu, a: f32, x: &[f32], y: &[f32]) -> Result<Vec<f32>> {
        let gpu_error = |message: String| Error::Gpu {
            what: LABEL.to_owned(),
            message,
        };
        if x.len() != y.len() {
            return Err(gpu_error(format!(
                "x has {} elements but y has {}",
                x.len(),
                y.len()
            )));
        }
        if x.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = size_of_val(x) as u64;
        let limit = gpu.limits.max_storage_buffer_binding_size;
        let n = u32::try_from(x.len())
            .ok()
            .filter(|_| bytes <= limit)
            .ok_or_else(|| {
                gpu_error(format!(
                    "{} elements need a {bytes}-byte binding but the limit is {limit} bytes",
                    x.len()
                ))
            })?;
        let n_groups = n.div_ceil(WORKGROUP_SIZE);
        let (groups_x, groups_y) = grid(n_groups, gpu.limits.max_compute_workgroups_per_dimension)
            .ok_or_else(|| gpu_error(format!("{n_groups} workgroups do not fit a 2D grid")))?;

        let x_buffer = gpu.upload("axpy.x", bytemuck::cast_slice(x), BufferUsages::STORAGE)?;
        let y_buffer = gpu.upload(
            "axpy.y",
            bytemuck::cast_slice(y),
            BufferUsages::STORAGE | BufferUsages::COPY_SRC,
        )?;
        let params = AxpyParams { a, n, _pad: [0; 2] };
        let params_buffer = gpu.upload(
            "axpy.params",
            bytemuck::bytes_of(&params),
            BufferUsages::UNIFORM,
        )?;

        gpu.checked(&format!("dispatching {LABEL}"), |device| {
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(LABEL),
                layout: &self.layout,
                entries: &[
                    bind(0, &x_buffer),
                    bind(1, &y_buffer),
                    bind(2, &params_buffer),
                ],
            });
            let mut encoder = device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(LABEL) });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(LABEL),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(groups_x, groups_y, 1);
            }
            gpu.queue.submit([encoder.finish()]);
        })?;
        gpu.read_f32("axpy.y", &y_buffer, x.len())
    }
}

/// Computes `a * x + y` on the GPU, building the pipeline for this one call.
pub fn axpy(gpu: &Gpu, a: f32, x: &[f32], y: &[f32]) -> Result<Vec<f32>> {
    Axpy::new(gpu)?.run(gpu, a, x, y)
}

/// Lays `n_groups` workgroups out as `(x, y)` with both at most `max_per_dim`, or `None` when
/// even a square grid is too small.
fn grid(n_groups: u32, max_per_dim: u32) -> Option<(u32, u32)> {
    let groups_x = n_groups.min(max_per_dim).max(1);
    let groups_y = n_groups.div_ceil(groups_x);
    (groups_y <= max_per_dim).then_some((groups_x, groups_y))
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: wgpu::BufferSize::new(size_of::<AxpyParams>() as u64),
        },
        count: None,
    }
}

fn bind(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_stays_one_dimensional_when_it_fits() {
        assert_eq!(grid(1, 65535), Some((1, 1)));
        assert_eq!(grid(65535, 65535), Some((65535, 1)));
    }

    #[test]
    fn grid_spills_into_the_second_dimension() {
        assert_eq!(grid(65536, 65535), Some((65535, 2)));
        assert_eq!(grid(524_288, 65535), Some((65535, 9)));
        assert_eq!(grid(u32::MAX, 65535), None);
    }

    /// Parses and validates the WGSL without a device, and checks that `AxpyParams` has the
    /// size naga computes for the WGSL `Params` struct.
    #[test]
    fn wgsl_validates_and_params_match() {
        use wgpu::naga;
        let module = match naga::front::wgsl::parse_str(SOURCE) {
            Ok(module) => module,
            Err(error) => panic!("{}", error.emit_to_string(SOURCE)),
        };
        let flags = naga::valid::ValidationFlags::all();
        let capabilities = naga::valid::Capabilities::empty();
        if let Err(error) = naga::valid::Validator::new(flags, capabilities).validate(&module) {
            panic!("{}", error.emit_to_string(SOURCE));
        }
        let params = module
            .types
            .iter()
            .find(|(_, ty)| ty.name.as_deref() == Some("Params"))
            .map(|(_, ty)| &ty.inner);
        match params {
            Some(naga::TypeInner::Struct { span, .. }) => {
                assert_eq!(*span as usize, size_of::<AxpyParams>());
            }
            other => panic!("no struct Params in {LABEL}.wgsl: {other:?}"),
        }
        assert_eq!(size_of::<AxpyParams>(), 16);
    }
}
