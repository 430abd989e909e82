//! Pre-built dispatches: a pipeline, a bind group (with its uniform parameters) and a grid,
//! made once when a decode plan is built and recorded into a compute pass for every token.
//!
//! wgpu resources are reference counted, so a [`Dispatch`] keeps its buffers alive; recording
//! one costs three calls and no allocation on the device.

use wgpu::{BindGroup, Buffer, ComputePass, ComputePipeline};

/// A storage binding: a whole buffer, or `size` bytes of it from `offset`.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub buffer: &'a Buffer,
    pub offset: u64,
    /// `None`: to the end of the buffer.
    pub size: Option<u64>,
}

impl<'a> Binding<'a> {
    /// Bytes `offset..offset + size` of `buffer`.
    pub fn range(buffer: &'a Buffer, offset: u64, size: u64) -> Binding<'a> {
        Binding {
            buffer,
            offset,
            size: Some(size),
        }
    }

    /// Bytes the binding covers.
    pub fn len(&self) -> u64 {
        self.size
            .unwrap_or_else(|| self.buffer.size().saturating_sub(self.offset))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn entry(&self, binding: u32) -> wgpu::BindGroupEntry<'a> {
        wgpu::BindGroupEntry {
            binding,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: self.buffer,
                offset: self.offset,
                size: self.size.and_then(wgpu::BufferSize::new),
            }),
        }
    }
}

impl<'a> From<&'a Buffer> for Binding<'a> {
    fn from(buffer: &'a Buffer) -> Binding<'a> {
        Binding {
            buffer,
            offset: 0,
            size: None,
        }
    }
}

/// One compute dispatch, ready to record.
#[derive(Clone, Debug)]
pub struct Dispatch {
    pub(crate) label: String,
    pub(crate) pipeline: ComputePipeline,
    pub(crate) bind_group: BindGroup,
    /// Group 1: an IQ type's grid (`crate::gpu::iq_tables`); `None` for every other kernel.
    pub(crate) tables: Option<BindGroup>,
    /// Workgroups in x and y.
    pub(crate) groups: (u32, u32),
}

impl Dispatch {
    /// The kernel's label, for errors and profiles.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Records the dispatch into `pass`.
    pub fn record(&self, pass: &mut ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        if let Some(tables) = &self.tables {
            pass.set_bind_group(1, tables, &[]);
        }
        pass.dispatch_workgroups(self.groups.0, self.groups.1, 1);
    }

    /// Records `dispatches` into one new compute pass of `encoder`.
    pub fn record_all<'d>(
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        dispatches: impl IntoIterator<Item = &'d Dispatch>,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        for dispatch in dispatches {
            dispatch.record(&mut pass);
        }
    }
}
