//! Device calls that report errors as [`Error::Gpu`] instead of through wgpu's uncaptured-error
//! handler, which panics by default.
//!
//! Each helper runs its wgpu calls inside error scopes. Scopes are thread-local in wgpu, so the
//! helpers are safe to call from several threads on one device.

use wgpu::util::DeviceExt;
use wgpu::{Buffer, BufferUsages, Device, ErrorFilter, ShaderModule};

use super::Gpu;
use crate::{Error, Result};

impl Gpu {
    /// Runs `f` inside validation, out-of-memory and internal error scopes, and turns the first
    /// error any of them caught into [`Error::Gpu`] (or [`Error::GpuOutOfMemory`]) with `what` as
    /// its context.
    pub fn checked<T>(&self, what: &str, f: impl FnOnce(&Device) -> T) -> Result<T> {
        let internal = self.device.push_error_scope(ErrorFilter::Internal);
        let out_of_memory = self.device.push_error_scope(ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(ErrorFilter::Validation);
        let value = f(&self.device);
        // Scopes must be popped in the reverse order of pushing.
        let validation = pollster::block_on(validation.pop());
        let out_of_memory = pollster::block_on(out_of_memory.pop());
        let internal = pollster::block_on(internal.pop());
        match (validation, out_of_memory, internal) {
            (None, None, None) => Ok(value),
            (None, Some(error), _) => Err(Error::GpuOutOfMemory {
                what: what.to_owned(),
                message: error.to_string(),
                advice: String::new(),
            }),
            (Some(error), _, _) | (None, None, Some(error)) => Err(Error::Gpu {
                what: what.to_owned(),
                message: error.to_string(),
            }),
        }
    }

    /// Creates an uninitialized buffer of `size` bytes.
    pub fn create_buffer(&self, label: &str, size: u64, usage: BufferUsages) -> Result<Buffer> {
        self.checked(
            &format!("creating buffer {label} of {size} bytes"),
            |device| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage,
                    mapped_at_creation: false,
                })
            },
        )
    }

    /// Creates a buffer holding `contents`.
    pub fn upload(&self, label: &str, contents: &[u8], usage: BufferUsages) -> Result<Buffer> {
        let what = format!("uploading buffer {label} of {} bytes", contents.len());
        self.checked(&what, |device| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage,
            })
        })
    }

    /// Compiles WGSL `source`; parse and validation errors come back as [`Error::Gpu`] naming
    /// `label`.
    pub fn create_shader_module(&self, label: &str, source: &str) -> Result<ShaderModule> {
        self.checked(&format!("compiling shader {label}"), |device| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            })
        })
    }

    /// [`Gpu::create_shader_module`] without wgpu's injected bounds checks and loop bounding
    /// (integer-division checks stay: they cost a select).
    ///
    /// Only for the quant-composed kernels (`src/gpu/shader.rs`): every index they use is derived
    /// from uniforms that the host validated against the bound buffers when the dispatch was
    /// built (`QuantKernel::check_rows`, `check_sizes`, the row windows), the only
    /// data-dependent indices (token ids, expert ids) are compared with the table lengths before
    /// use, and the float formats' tail quads read through `read_u32_clamped`. Loop bounding is
    /// what this is for: it keeps drivers from unrolling the decode loops (wgpu#7698, #6521).
    #[allow(unsafe_code)]
    pub(crate) fn create_trusted_shader_module(
        &self,
        label: &str,
        source: &str,
    ) -> Result<ShaderModule> {
        let checks = wgpu::ShaderRuntimeChecks {
            int_div_checks: true,
            ..wgpu::ShaderRuntimeChecks::unchecked()
        };
        self.checked(&format!("compiling shader {label}"), |device| {
            let descriptor = wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            };
            // SAFETY: see above: the kernels composed from shaders/ index only inside their
            // bindings, given the host-side checks every dispatch passes before it is built.
            unsafe { device.create_shader_module_trusted(descriptor, checks) }
        })
    }
}
