//! Composition of the dequantizing kernels' WGSL: one source per (kernel family, weight type,
//! reduction).
//!
//! A composed module is, in order:
//! 1. the layout constants `BLOCK_BYTES` and `BLOCK_ELEMS`, written here from
//!    [`GgmlType::block_bytes`] and [`GgmlType::block_elems`] (the one table of block geometry,
//!    so no WGSL file types them by hand), and `SEGMENT` (32);
//!    for the IQ types their tables follow (`gpu::iq_tables`, written from
//!    `lanternfish_quant::grids`): IQ4's levels as a WGSL `const` array, the other IQ types'
//!    grid as a storage buffer at `@group(1) @binding(0)`, which `QuantKernel` uploads and
//!    binds;
//! 2. `shaders/common/bytes.wgsl`, `k_scales.wgsl` and `iq.wgsl`: byte, u16, u32 and f16 reads
//!    from the raw block bytes, exact small-integer conversion, the K-quant scale unpacking and
//!    the IQ sign helpers;
//! 3. `shaders/quant/<type>.wgsl`: the format's segment decoder, `struct Segment`,
//!    `segment_at(row_base, seg)` and `segment_quad(segment, q)` (elements `4q .. 4q + 4` of the
//!    32-element segment `seg` of the row at byte `row_base` of `weights`);
//! 4. `shaders/common/element.wgsl`: `dequantize_element(row_base, c)` through that decoder;
//! 5. for the decode matvecs (`matvec`, `matvec_swiglu`, `matvec_id`, `moe_down`):
//!    `shaders/common/row_dots.wgsl` (their shared inner loop) and one of
//!    `shaders/common/reduce_{subgroup,workgroup}.wgsl` (the lane reduction, see [`Reduction`]);
//! 6. `shaders/kernels/<kernel>.wgsl`: declares `weights: array<u32>` at binding 0.
//!
//! See `shaders/README.md` for the contract.
//!
//! It also holds what the host code of the quant-composed kernels (`matvec`, `matmul`,
//! `matvec_swiglu`, `embed`, `matvec_id`, `dequantize`) shares: the compiled kernel with its
//! label, row-size and buffer-size checks and errors, and the split of a weight tensor into
//! storage-binding windows of whole rows.

use lanternfish_quant::GgmlType;
use wgpu::{BindGroup, BindGroupLayout, Buffer, BufferUsages, ComputePipeline, ShaderStages};

use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
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
    /// `shaders/kernels/moe_down.wgsl`: routed down projections weighted into the residual.
    MoeDown,
    /// `shaders/kernels/matvec_id_swiglu.wgsl`: routed gate, up and silu_mul in one dispatch.
    MatvecIdSwiglu,
}

impl Kernel {
    /// Every kernel family.
    pub const ALL: [Kernel; 8] = [
        Kernel::Dequantize,
        Kernel::Matvec,
        Kernel::MatvecId,
        Kernel::Embed,
        Kernel::Matmul,
        Kernel::MatvecSwiglu,
        Kernel::MoeDown,
        Kernel::MatvecIdSwiglu,
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
            Kernel::MoeDown => "moe_down",
            Kernel::MatvecIdSwiglu => "matvec_id_swiglu",
        }
    }

    /// Whether the kernel is one of the decode matvecs, which share `row_dots` and a
    /// [`Reduction`].
    pub fn reduces(self) -> bool {
        matches!(
            self,
            Kernel::Matvec
                | Kernel::MatvecSwiglu
                | Kernel::MatvecId
                | Kernel::MoeDown
                | Kernel::MatvecIdSwiglu
        )
    }

    fn source(self) -> &'static str {
        match self {
            Kernel::Dequantize => include_str!("../../shaders/kernels/dequantize.wgsl"),
            Kernel::Matvec => include_str!("../../shaders/kernels/matvec.wgsl"),
            Kernel::Matmul => include_str!("../../shaders/kernels/matmul.wgsl"),
            Kernel::MatvecId => include_str!("../../shaders/kernels/matvec_id.wgsl"),
            Kernel::Embed => include_str!("../../shaders/kernels/embed.wgsl"),
            Kernel::MatvecSwiglu => include_str!("../../shaders/kernels/matvec_swiglu.wgsl"),
            Kernel::MoeDown => include_str!("../../shaders/kernels/moe_down.wgsl"),
            Kernel::MatvecIdSwiglu => {
                include_str!("../../shaders/kernels/matvec_id_swiglu.wgsl")
            }
        }
    }
}

/// The weight types that have a `shaders/quant/` file, in GGML id order.
pub const QUANT_TYPES: [GgmlType; 22] = [
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
    GgmlType::Iq2Xxs,
    GgmlType::Iq2Xs,
    GgmlType::Iq3Xxs,
    GgmlType::Iq1S,
    GgmlType::Iq4Nl,
    GgmlType::Iq3S,
    GgmlType::Iq2S,
    GgmlType::Iq4Xs,
    GgmlType::Iq1M,
    GgmlType::Bf16,
];

const COMMON: [&str; 3] = [
    include_str!("../../shaders/common/bytes.wgsl"),
    include_str!("../../shaders/common/k_scales.wgsl"),
    include_str!("../../shaders/common/iq.wgsl"),
];

const ELEMENT: &str = include_str!("../../shaders/common/element.wgsl");
const ROW_DOTS: &str = include_str!("../../shaders/common/row_dots.wgsl");
const SLOT_POOL: &str = include_str!("../../shaders/common/slot_pool.wgsl");

/// How the decode matvecs add their 64 lanes' partial sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// `subgroupShuffleXor` butterflies inside each subgroup, then one barrier and the subgroups'
    /// sums in order (`shaders/common/reduce_subgroup.wgsl`); needs [`wgpu::Features::SUBGROUP`].
    Subgroup,
    /// A tree in workgroup memory with a barrier per step
    /// (`shaders/common/reduce_workgroup.wgsl`); runs everywhere.
    Workgroup,
}

/// Set to `workgroup` to make every matvec use [`Reduction::Workgroup`] even where the adapter
/// has subgroups (to compare the two paths, or to work around a driver).
pub const REDUCTION_ENV: &str = "LANTERNFISH_REDUCTION";

impl Reduction {
    /// Both reductions.
    pub const ALL: [Reduction; 2] = [Reduction::Subgroup, Reduction::Workgroup];

    /// The reduction the engine uses on `gpu`: subgroups when the device has them, unless
    /// [`REDUCTION_ENV`] says `workgroup`.
    pub fn best(gpu: &Gpu) -> Reduction {
        let forced =
            std::env::var(REDUCTION_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("workgroup"));
        if gpu.features.contains(wgpu::Features::SUBGROUP) && !forced {
            Reduction::Subgroup
        } else {
            Reduction::Workgroup
        }
    }

    /// Its name, as `bench --json` reports it.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Subgroup => "subgroup",
            Reduction::Workgroup => "workgroup",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Reduction::Subgroup => include_str!("../../shaders/common/reduce_subgroup.wgsl"),
            Reduction::Workgroup => include_str!("../../shaders/common/reduce_workgroup.wgsl"),
        }
    }
}

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
        GgmlType::Iq2Xxs => include_str!("../../shaders/quant/iq2_xxs.wgsl"),
        GgmlType::Iq2Xs => include_str!("../../shaders/quant/iq2_xs.wgsl"),
        GgmlType::Iq3Xxs => include_str!("../../shaders/quant/iq3_xxs.wgsl"),
        GgmlType::Iq1S => include_str!("../../shaders/quant/iq1_s.wgsl"),
        GgmlType::Iq4Nl => include_str!("../../shaders/quant/iq4_nl.wgsl"),
        GgmlType::Iq3S => include_str!("../../shaders/quant/iq3_s.wgsl"),
        GgmlType::Iq2S => include_str!("../../shaders/quant/iq2_s.wgsl"),
        GgmlType::Iq4Xs => include_str!("../../shaders/quant/iq4_xs.wgsl"),
        GgmlType::Iq1M => include_str!("../../shaders/quant/iq1_m.wgsl"),
        _ => return None,
    })
}

/// The composed WGSL of `kernel` for weights of type `ty` (with `reduction` for the kernels that
/// [`Kernel::reduces`]; the others ignore it), or [`Error::Gpu`] for a type without a quant file.
pub fn compose(kernel: Kernel, ty: GgmlType, reduction: Reduction) -> Result<String> {
    let quant = quant_source(ty).ok_or_else(|| Error::Gpu {
        what: format!("{}.{}", kernel.name(), ty.name()),
        message: format!("no GPU kernel for weight type {}", ty.name()),
    })?;
    // No `enable subgroups;`: naga 30 rejects the directive and gates subgroup operations on the
    // device's SUBGROUP feature instead.
    let mut source = String::new();
    source.push_str(&format!(
        "// Composed by src/gpu/shader.rs: {kernel} for {ty}{with}.\n\
         const BLOCK_BYTES: u32 = {bytes}u;\n\
         const BLOCK_ELEMS: u32 = {elems}u;\n\
         const SEGMENT: u32 = 32u;\n\n",
        kernel = kernel.name(),
        ty = ty.name(),
        with = if kernel.reduces() {
            format!(", {} reduction", reduction.name())
        } else {
            String::new()
        },
        bytes = ty.block_bytes(),
        elems = ty.block_elems(),
    ));
    source.push_str(&crate::gpu::iq_tables::wgsl_tables(ty));
    let mut parts: Vec<&str> = COMMON.to_vec();
    parts.extend([quant, ELEMENT]);
    if kernel.reduces() {
        parts.extend([ROW_DOTS, reduction.source()]);
    }
    if matches!(kernel, Kernel::MatvecId | Kernel::MatvecIdSwiglu) {
        parts.push(SLOT_POOL);
    }
    parts.push(kernel.source());
    for part in parts {
        source.push_str(part);
        source.push('\n');
    }
    Ok(source)
}

/// A compiled pipeline with its bind group layout, and for an IQ grid type the bind group of
/// its grid (group 1, see [`crate::gpu::iq_tables`]), which every dispatch binds beside its own.
pub(crate) struct Pipeline {
    pub pipeline: ComputePipeline,
    pub layout: BindGroupLayout,
    pub tables: Option<BindGroup>,
}

impl Pipeline {
    /// One dispatch of `groups` (x, y) workgroups: `storage` bound in order from binding 0,
    /// then `params` in a fresh uniform buffer; built once, recorded later (every token).
    pub(crate) fn bind(
        &self,
        gpu: &Gpu,
        label: &str,
        storage: &[Binding<'_>],
        params: &[u8],
        groups: (u32, u32),
    ) -> Result<Dispatch> {
        let params_buffer =
            gpu.upload(&format!("{label}.params"), params, BufferUsages::UNIFORM)?;
        gpu.checked(&format!("binding {label}"), |device| {
            let entries: Vec<wgpu::BindGroupEntry<'_>> = storage
                .iter()
                .chain([&Binding::from(&params_buffer)])
                .enumerate()
                .map(|(binding, b)| b.entry(binding as u32))
                .collect();
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout: &self.layout,
                entries: &entries,
            });
            Dispatch {
                label: label.to_owned(),
                pipeline: self.pipeline.clone(),
                bind_group,
                tables: self.tables.clone(),
                groups,
            }
        })
    }
}

/// Compiles `source` and builds a pipeline with entry point `entry_point` whose group 0 has the
/// given bindings, in order from 0: `Some(read_only)` for a storage buffer, `None` for a
/// uniform buffer of `uniform_size` bytes.
pub(crate) fn build_pipeline(
    gpu: &Gpu,
    label: &str,
    source: &str,
    entry_point: &str,
    bindings: &[Option<bool>],
    uniform_size: u64,
) -> Result<Pipeline> {
    let module = gpu.create_shader_module(label, source)?;
    pipeline_for_module(
        gpu,
        label,
        &module,
        entry_point,
        bindings,
        uniform_size,
        None,
    )
}

/// [`build_pipeline`] for a compiled module; with `tables`, group 1 binds that buffer read-only
/// at binding 0 (an IQ grid).
fn pipeline_for_module(
    gpu: &Gpu,
    label: &str,
    module: &wgpu::ShaderModule,
    entry_point: &str,
    bindings: &[Option<bool>],
    uniform_size: u64,
    tables: Option<&Buffer>,
) -> Result<Pipeline> {
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
        let tables = tables.map(|buffer| {
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &[wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                }],
            });
            let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout: &layout,
                entries: &[Binding::from(buffer).entry(0)],
            });
            (layout, group)
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &match &tables {
                Some((tables_layout, _)) => vec![Some(&layout), Some(tables_layout)],
                None => vec![Some(&layout)],
            },
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pipeline_layout),
            module,
            entry_point: Some(entry_point),
            compilation_options: Default::default(),
            cache: None,
        });
        Pipeline {
            pipeline,
            layout,
            tables: tables.map(|t| t.1),
        }
    })
}

/// A compiled quant-composed kernel for one weight type, with what every such kernel's host
/// code shares: its label (`<kernel>.<type>`), errors under that label, the bytes of a row of
/// whole blocks, buffer-size checks, the split of a weight tensor into binding windows, and
/// binding.
pub(crate) struct QuantKernel {
    pub ty: GgmlType,
    pub label: String,
    pub pipeline: Pipeline,
}

impl QuantKernel {
    /// Composes `kernel` for `ty` (and `reduction`, see [`compose`]) and builds its pipeline
    /// with `bindings` (see [`build_pipeline`]) and a uniform of `params_size` bytes; a type
    /// without a quant file or a WGSL error becomes [`Error::Gpu`]. The module is compiled
    /// without wgpu's runtime checks ([`Gpu::create_trusted_shader_module`] says why that is
    /// sound for these kernels).
    pub(crate) fn new(
        gpu: &Gpu,
        (kernel, reduction): (Kernel, Reduction),
        ty: GgmlType,
        bindings: &[Option<bool>],
        params_size: u64,
    ) -> Result<QuantKernel> {
        let label = format!("{}.{}", kernel.name(), ty.name());
        let source = compose(kernel, ty, reduction)?;
        let module = gpu.create_trusted_shader_module(&label, &source)?;
        let grid = crate::gpu::iq_tables::grid(ty)
            .map(|(_, words)| {
                let bytes = bytemuck::cast_slice(&words);
                gpu.upload(&format!("{label}.grid"), bytes, BufferUsages::STORAGE)
            })
            .transpose()?;
        let pipeline = pipeline_for_module(
            gpu,
            &label,
            &module,
            "main",
            bindings,
            params_size,
            grid.as_ref(),
        )?;
        Ok(QuantKernel {
            ty,
            label,
            pipeline,
        })
    }

    /// [`QuantKernel::new`] with the binding layout the single-input quant kernels share
    /// (matvec, matmul, matvec_swiglu, embed): weights and input read-only, output read-write,
    /// then the uniform `P`.
    pub(crate) fn single_input<P>(
        gpu: &Gpu,
        kernel: (Kernel, Reduction),
        ty: GgmlType,
    ) -> Result<QuantKernel> {
        let bindings = [Some(true), Some(true), Some(false), None];
        QuantKernel::new(gpu, kernel, ty, &bindings, size_of::<P>() as u64)
    }

    /// [`Error::Gpu`] under this kernel's label.
    pub(crate) fn error(&self, message: String) -> Error {
        Error::Gpu {
            what: self.label.clone(),
            message,
        }
    }

    /// Bytes per row of `n_cols` elements, or an error when that is not whole blocks.
    pub(crate) fn row_bytes(&self, n_cols: usize) -> Result<usize> {
        let (block_bytes, block_elems) = (self.ty.block_bytes(), self.ty.block_elems());
        if !n_cols.is_multiple_of(block_elems) {
            return Err(self.error(format!(
                "{n_cols} columns are not whole {block_elems}-element blocks"
            )));
        }
        Ok(n_cols / block_elems * block_bytes)
    }

    /// Checks that `len` bytes of `what` (e.g. "weight") are exactly `n_rows` rows of
    /// `row_bytes`.
    pub(crate) fn check_rows(
        &self,
        what: &str,
        len: usize,
        n_rows: usize,
        row_bytes: usize,
    ) -> Result<()> {
        if n_rows.checked_mul(row_bytes) != Some(len) {
            return Err(self.error(format!(
                "{len} {what} bytes are not {n_rows} rows of {row_bytes} bytes"
            )));
        }
        Ok(())
    }

    /// Checks that each `(name, bytes held, bytes needed)` holds enough (`None` needed: the
    /// size overflowed); the error names the buffer and `shape`.
    pub(crate) fn check_sizes(
        &self,
        needed: &[(&str, u64, Option<u64>)],
        shape: &str,
    ) -> Result<()> {
        for &(name, have, bytes) in needed {
            if bytes.is_none_or(|bytes| bytes > have) {
                return Err(self.error(format!("{name} holds {have} bytes, too few for {shape}")));
            }
        }
        Ok(())
    }

    /// [`windows`] for `n_rows` rows of `row_bytes` in a weight buffer of `buffer_len` bytes,
    /// each at most the device's storage binding, `max_binding` and u32 byte addresses; an error
    /// when one row does not fit.
    pub(crate) fn windows(
        &self,
        gpu: &Gpu,
        n_rows: u64,
        row_bytes: u64,
        buffer_len: u64,
        max_binding: u64,
    ) -> Result<Vec<Window>> {
        // Byte addresses inside a window are u32 in WGSL.
        let limit = (gpu.limits.max_storage_buffer_binding_size)
            .min(max_binding)
            .min(u64::from(u32::MAX));
        let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment);
        windows(n_rows, row_bytes, buffer_len, limit, align).ok_or_else(|| {
            self.error(format!(
                "a {row_bytes}-byte row does not fit a {limit}-byte storage binding"
            ))
        })
    }

    /// One dispatch: `storage` bound in order from binding 0, then `params`.
    pub(crate) fn bind(
        &self,
        gpu: &Gpu,
        storage: &[Binding<'_>],
        params: &[u8],
        groups: (u32, u32),
    ) -> Result<Dispatch> {
        self.pipeline
            .bind(gpu, &self.label, storage, params, groups)
    }
}

/// One dispatch's share of a weight tensor: rows `row0..row0 + n_rows`, bound as bytes
/// `start..end` of the weight buffer with row `row0` at `base_byte` inside the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub row0: u64,
    pub n_rows: u64,
    pub start: u64,
    pub end: u64,
    pub base_byte: u64,
}

impl Window {
    /// The window's bytes of `buffer`.
    pub(crate) fn binding<'a>(&self, buffer: &'a Buffer) -> Binding<'a> {
        Binding::range(buffer, self.start, self.end - self.start)
    }
}

/// Splits `n_rows` rows of `row_bytes` bytes (stored in a buffer of `buffer_len` bytes, a
/// multiple of 4) into windows no larger than `max_binding` bytes whose starts are multiples of
/// `align`. `None` when one row does not fit a window. Every window binds at least one word, and
/// no rows still give one (empty) window (`embed` zeroes ids past the table in it).
pub(crate) fn windows(
    n_rows: u64,
    row_bytes: u64,
    buffer_len: u64,
    max_binding: u64,
    align: u64,
) -> Option<Vec<Window>> {
    // Worst case a window carries align - 1 bytes before its first row and 3 after its last.
    // Rows of no columns (row_bytes 0) read nothing and all go in one window.
    let rows_per_window = max_binding
        .checked_sub(align + 3)?
        .checked_div(row_bytes)
        .unwrap_or(n_rows)
        .max(u64::from(n_rows == 0));
    if rows_per_window == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut row0 = 0;
    while row0 < n_rows || out.is_empty() {
        let rows = rows_per_window.min(n_rows - row0);
        let first = row0 * row_bytes;
        let start = first / align * align;
        let end = ((row0 + rows) * row_bytes)
            .next_multiple_of(4)
            .min(buffer_len)
            .max(start + 4);
        out.push(Window {
            row0,
            n_rows: rows,
            start,
            end,
            base_byte: first - start,
        });
        row0 += rows;
    }
    Some(out)
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
        assert_eq!(grid(65535, 65535), Some((65535, 1)));
        assert_eq!(grid(65536, 65535), Some((65535, 2)));
        assert_eq!(grid(524_288, 65535), Some((65535, 9)));
        assert_eq!(grid(u32::MAX, 65535), None);
    }

    #[test]
    fn one_window_when_everything_fits() {
        let w = windows(7, 18, 128, 1 << 20, 256);
        assert_eq!(
            w,
            Some(vec![Window {
                row0: 0,
                n_rows: 7,
                start: 0,
                end: 128,
                base_byte: 0
            }])
        );
    }

    #[test]
    fn windows_cover_all_rows_with_aligned_starts() {
        let (n_rows, row_bytes, align, limit) = (33u64, 18u64, 256u64, 300u64);
        let buffer_len = (n_rows * row_bytes).next_multiple_of(4);
        let w = windows(n_rows, row_bytes, buffer_len, limit, align).unwrap_or_default();
        assert!(w.len() > 1);
        let mut next = 0;
        for window in &w {
            assert_eq!(window.row0, next);
            assert_eq!(window.start % align, 0);
            assert_eq!(window.start + window.base_byte, window.row0 * row_bytes);
            assert!(window.end - window.start <= limit);
            assert!(window.end >= (window.row0 + window.n_rows) * row_bytes);
            next += window.n_rows;
        }
        assert_eq!(next, n_rows);
        assert_eq!(windows(1, 300, 300, 300, 256), None);
        assert_eq!(windows(0, 18, 4, 300, 256).map(|w| w.len()), Some(1));
    }

    #[test]
    fn every_type_composes_and_others_do_not() {
        for ty in GgmlType::all() {
            let has = QUANT_TYPES.contains(&ty);
            for kernel in Kernel::ALL {
                for reduction in Reduction::ALL {
                    let composed = compose(kernel, ty, reduction);
                    assert_eq!(composed.is_ok(), has, "{kernel:?} {ty:?}");
                }
            }
        }
    }

    #[test]
    fn injected_constants_come_from_the_type_table() {
        let source =
            compose(Kernel::Matvec, GgmlType::Q6K, Reduction::Workgroup).unwrap_or_default();
        assert!(source.contains("const BLOCK_BYTES: u32 = 210u;"));
        assert!(source.contains("const BLOCK_ELEMS: u32 = 256u;"));
    }
}
