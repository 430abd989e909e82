//! `elementwise`: f32 vector operations with one thread per element: `silu_mul` (SwiGLU,
//! `silu(gate) ⊙ up`) and `add` (residual add); see `shaders/kernels/elementwise.wgsl`.
//!
//! This module also holds the small pipeline helper (`Family`) that the other f32 kernel
//! families (`rmsnorm`, `rope`, `argmax`, `moe_router`) share: a bind group layout of read-only
//! storage inputs, then storage outputs, then a uniform `Params`, and encoding of one dispatch.

use bytemuck::{Pod, Zeroable};
use wgpu::{Buffer, BufferUsages, CommandEncoder};

use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::shader::{self, Pipeline};
use crate::{Error, Result};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "elementwise";

const SOURCE: &str = include_str!("../../../shaders/kernels/elementwise.wgsl");

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Mirrors the WGSL `Params` struct (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct ElementwiseParams {
    n: u32,
    width: u32,
    _pad: [u32; 2],
}

/// Which entry point of `elementwise.wgsl` to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementwiseOp {
    /// `out = silu(a) ⊙ b` (SwiGLU with `a` = gate, `b` = up).
    SiluMul,
    /// `out = a + b`.
    Add,
}

impl ElementwiseOp {
    fn entry_point(self) -> &'static str {
        match self {
            ElementwiseOp::SiluMul => "silu_mul",
            ElementwiseOp::Add => "add",
        }
    }
}

/// The compiled `elementwise` pipelines, one per entry point.
pub struct Elementwise {
    silu_mul: Family,
    add: Family,
    silu_mul_halves: Family,
}

impl Elementwise {
    /// Compiles the shader and builds both pipelines.
    pub fn new(gpu: &Gpu) -> Result<Elementwise> {
        let params = size_of::<ElementwiseParams>() as u64;
        let build = |op: ElementwiseOp| {
            let label = format!("{LABEL}/{}", op.entry_point());
            Family::new(gpu, &label, SOURCE, op.entry_point(), 2, 1, params)
        };
        Ok(Elementwise {
            silu_mul: build(ElementwiseOp::SiluMul)?,
            add: build(ElementwiseOp::Add)?,
            silu_mul_halves: Family::new(
                gpu,
                &format!("{LABEL}/silu_mul_halves"),
                SOURCE,
                "silu_mul_halves",
                2,
                1,
                params,
            )?,
        })
    }

    /// Records `out[..n] = op(a[..n], b[..n])` into `encoder`. The buffers hold f32 values and
    /// `out` must not alias `a` or `b`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut CommandEncoder,
        op: ElementwiseOp,
        [a, b, out]: [&Buffer; 3],
        n: u32,
    ) -> Result<()> {
        let dispatch = self.bind(gpu, op, [a.into(), b.into(), out.into()], n)?;
        Dispatch::record_all(encoder, LABEL, [&dispatch]);
        Ok(())
    }

    /// The dispatch of [`Elementwise::encode`], built once and recorded every step.
    pub fn bind(
        &self,
        gpu: &Gpu,
        op: ElementwiseOp,
        [a, b, out]: [Binding<'_>; 3],
        n: u32,
    ) -> Result<Dispatch> {
        let family = match op {
            ElementwiseOp::SiluMul => &self.silu_mul,
            ElementwiseOp::Add => &self.add,
        };
        let bytes = 4 * u64::from(n);
        if a.len() < bytes || b.len() < bytes || out.len() < bytes {
            return Err(gpu_error(
                family.label(),
                format!("buffers too small for {n} values"),
            ));
        }
        let groups = grid_for(gpu, family.label(), n.div_ceil(WORKGROUP_SIZE).max(1))?;
        let params = ElementwiseParams {
            n,
            width: 0,
            _pad: [0; 2],
        };
        family.bind(gpu, &[a, b, out], bytemuck::bytes_of(&params), groups)
    }

    /// Returns `op(a, b)` computed on the GPU (uploads, one dispatch, readback).
    pub fn run(&self, gpu: &Gpu, op: ElementwiseOp, a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
        let label = format!("{LABEL}/{}", op.entry_point());
        if a.len() != b.len() {
            return Err(gpu_error(
                &label,
                format!("a has {} elements but b has {}", a.len(), b.len()),
            ));
        }
        if a.is_empty() {
            return Ok(Vec::new());
        }
        let n = len_u32(gpu, &label, a.len())?;
        let a_buffer = upload_f32(gpu, "elementwise.a", a)?;
        let b_buffer = upload_f32(gpu, "elementwise.b", b)?;
        let out = output_buffer(gpu, "elementwise.out", size_of_val(a) as u64)?;
        submit(gpu, &label, |encoder| {
            self.encode(gpu, encoder, op, [&a_buffer, &b_buffer, &out], n)
        })?;
        gpu.read_f32("elementwise.out", &out, a.len())
    }
}

impl Elementwise {
    /// The dispatch of `out[t, c] = silu(gu[t, c]) · gu[t, width + c]` for `n_tok` rows of a
    /// fused gate ‖ up projection `gu [n_tok, 2·width]`, into `out [n_tok, width]`.
    pub fn bind_halves(
        &self,
        gpu: &Gpu,
        [gate_up, out]: [Binding<'_>; 2],
        width: u32,
        n_tok: u32,
    ) -> Result<Dispatch> {
        let family = &self.silu_mul_halves;
        let n = u64::from(width) * u64::from(n_tok);
        if gate_up.len() < 8 * n || out.len() < 4 * n || n == 0 {
            return Err(gpu_error(
                family.label(),
                format!("buffers too small for {n_tok} rows of {width}"),
            ));
        }
        let n = u32::try_from(n).map_err(|_| gpu_error(family.label(), format!("{n} values")))?;
        let groups = grid_for(gpu, family.label(), n.div_ceil(WORKGROUP_SIZE))?;
        let params = ElementwiseParams {
            n,
            width,
            _pad: [0; 2],
        };
        family.bind(
            gpu,
            &[gate_up, gate_up, out],
            bytemuck::bytes_of(&params),
            groups,
        )
    }
}

impl Elementwise {
    /// Returns `silu(gate) ⊙ up` for the rows `[gate ‖ up]` of `gate_up` (`[n_tok, 2·width]`),
    /// computed on the GPU with the `silu_mul_halves` entry point.
    pub fn run_halves(&self, gpu: &Gpu, gate_up: &[f32], width: usize) -> Result<Vec<f32>> {
        let label = self.silu_mul_halves.label();
        if width == 0 || !gate_up.len().is_multiple_of(2 * width) || gate_up.is_empty() {
            return Err(gpu_error(
                label,
                format!("{} values are not rows of 2 x {width}", gate_up.len()),
            ));
        }
        let n_tok = gate_up.len() / (2 * width);
        let input = upload_f32(gpu, "elementwise.gate_up", gate_up)?;
        let out = output_buffer(gpu, "elementwise.out", (n_tok * width * 4) as u64)?;
        let dispatch = self.bind_halves(
            gpu,
            [(&input).into(), (&out).into()],
            len_u32(gpu, label, width)?,
            len_u32(gpu, label, n_tok)?,
        )?;
        submit_all(gpu, label, [&dispatch])?;
        gpu.read_f32("elementwise.out", &out, n_tok * width)
    }
}

/// `silu(gate) ⊙ up` on the GPU, building the pipelines for this one call.
pub fn swiglu(gpu: &Gpu, gate: &[f32], up: &[f32]) -> Result<Vec<f32>> {
    Elementwise::new(gpu)?.run(gpu, ElementwiseOp::SiluMul, gate, up)
}

/// `a + b` on the GPU, building the pipelines for this one call.
pub fn add(gpu: &Gpu, a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    Elementwise::new(gpu)?.run(gpu, ElementwiseOp::Add, a, b)
}

// ---------------------------------------------------------------------------------------------
// Shared helpers for the f32 kernel families.

/// One compute pipeline with the binding convention of `shaders/kernels/`: `n_read` read-only
/// storage buffers, then `n_write` read-write storage buffers, then the uniform `Params` of
/// `params_size` bytes in the last binding.
pub(crate) struct Family {
    label: String,
    pipeline: Pipeline,
    n_storage: usize,
}

impl Family {
    /// Compiles `source` and builds the pipeline for `entry_point`.
    pub(crate) fn new(
        gpu: &Gpu,
        label: &str,
        source: &str,
        entry_point: &str,
        n_read: u32,
        n_write: u32,
        params_size: u64,
    ) -> Result<Family> {
        let bindings: Vec<Option<bool>> = (0..n_read + n_write)
            .map(|binding| Some(binding < n_read))
            .chain([None])
            .collect();
        let pipeline =
            shader::build_pipeline(gpu, label, source, entry_point, &bindings, params_size)?;
        Ok(Family {
            label: label.to_owned(),
            pipeline,
            n_storage: (n_read + n_write) as usize,
        })
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Builds one dispatch of `groups` (x, y) workgroups with `storage` bound in order and
    /// `params` uploaded into a fresh uniform buffer, to be recorded later (every token).
    pub(crate) fn bind(
        &self,
        gpu: &Gpu,
        storage: &[Binding<'_>],
        params: &[u8],
        groups: (u32, u32),
    ) -> Result<Dispatch> {
        if storage.len() != self.n_storage {
            return Err(gpu_error(
                &self.label,
                format!(
                    "{} storage buffers given, the kernel binds {}",
                    storage.len(),
                    self.n_storage
                ),
            ));
        }
        self.pipeline
            .bind(gpu, &self.label, storage, params, groups)
    }
}

pub(crate) fn gpu_error(what: &str, message: String) -> Error {
    Error::Gpu {
        what: what.to_owned(),
        message,
    }
}

/// [`shader::grid`] with the device's limit, as an error when it does not fit.
pub(crate) fn grid_for(gpu: &Gpu, label: &str, n_groups: u32) -> Result<(u32, u32)> {
    shader::grid(n_groups, gpu.limits.max_compute_workgroups_per_dimension)
        .ok_or_else(|| gpu_error(label, format!("{n_groups} workgroups do not fit a 2D grid")))
}

/// `len` as u32, checking that `len` f32 values fit one storage binding.
pub(crate) fn len_u32(gpu: &Gpu, label: &str, len: usize) -> Result<u32> {
    let bytes = (len * size_of::<f32>()) as u64;
    let limit = gpu.limits.max_storage_buffer_binding_size;
    u32::try_from(len)
        .ok()
        .filter(|_| bytes <= limit)
        .ok_or_else(|| {
            gpu_error(
                label,
                format!(
                    "{len} elements need a {bytes}-byte binding but the limit is {limit} bytes"
                ),
            )
        })
}

/// Checks that each `(name, binding, bytes)` binds at least `bytes` bytes; the error reads
/// `"{name} has {len} bytes, {shape}needs {bytes}"`, `shape()` being empty or ending in a space.
pub(crate) fn check_lens(
    label: &str,
    needs: &[(&str, Binding<'_>, u64)],
    shape: impl Fn() -> String,
) -> Result<()> {
    for (name, binding, bytes) in needs {
        if binding.len() < *bytes {
            let len = binding.len();
            let shape = shape();
            let message = format!("{name} has {len} bytes, {shape}needs {bytes}");
            return Err(gpu_error(label, message));
        }
    }
    Ok(())
}

/// A storage buffer holding `values`.
pub(crate) fn upload_f32(gpu: &Gpu, label: &str, values: &[f32]) -> Result<Buffer> {
    gpu.upload(
        label,
        bytemuck::cast_slice(values),
        BufferUsages::STORAGE | BufferUsages::COPY_SRC,
    )
}

/// A storage buffer of `size` bytes (at least 4) that can be read back.
pub(crate) fn output_buffer(gpu: &Gpu, label: &str, size: u64) -> Result<Buffer> {
    gpu.create_buffer(
        label,
        size.max(4),
        BufferUsages::STORAGE | BufferUsages::COPY_SRC | BufferUsages::COPY_DST,
    )
}

/// Records commands with `f` into a fresh encoder and submits them.
pub(crate) fn submit(
    gpu: &Gpu,
    label: &str,
    f: impl FnOnce(&mut CommandEncoder) -> Result<()>,
) -> Result<()> {
    let mut encoder = gpu.checked(&format!("creating encoder {label}"), |device| {
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    })?;
    f(&mut encoder)?;
    gpu.checked(&format!("submitting {label}"), |_| {
        gpu.queue.submit([encoder.finish()]);
    })
}

/// Records `dispatches` into one compute pass of a fresh encoder and submits them.
pub(crate) fn submit_all<'d>(
    gpu: &Gpu,
    label: &str,
    dispatches: impl IntoIterator<Item = &'d Dispatch>,
) -> Result<()> {
    submit(gpu, label, |encoder| {
        Dispatch::record_all(encoder, label, dispatches);
        Ok(())
    })
}

/// Parses and validates `source` with naga and returns the size of its `Params` struct.
#[cfg(test)]
pub(crate) fn validated_params_size(label: &str, source: &str) -> usize {
    params_size(label, source, true)
}

/// Parses `source` with naga, validating it too when `validate`, and returns the size of its
/// `Params` struct.
#[cfg(test)]
pub(crate) fn params_size(label: &str, source: &str, validate: bool) -> usize {
    use wgpu::naga;
    let module = match naga::front::wgsl::parse_str(source) {
        Ok(module) => module,
        Err(error) => panic!("{}", error.emit_to_string(source)),
    };
    let flags = naga::valid::ValidationFlags::all();
    // What wgpu grants on every Vulkan, Metal and D3D12 adapter and the f16 caches use
    // (unpack2x16float / pack2x16float).
    let capabilities = naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    if validate
        && let Err(error) = naga::valid::Validator::new(flags, capabilities).validate(&module)
    {
        panic!("{}", error.emit_to_string(source));
    }
    let params = module
        .types
        .iter()
        .find(|(_, ty)| ty.name.as_deref() == Some("Params"))
        .map(|(_, ty)| &ty.inner);
    match params {
        Some(naga::TypeInner::Struct { span, .. }) => *span as usize,
        other => panic!("no struct Params in {label}.wgsl: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        assert_eq!(
            validated_params_size(LABEL, SOURCE),
            size_of::<ElementwiseParams>()
        );
    }
}
