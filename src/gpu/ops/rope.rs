//! `rope`: rotary embedding of the rope sub-vector of each head, in place, rotating adjacent
//! pairs ("normal") or the two halves ("NeoX", [`RopeLayout::neox`]), with per-pair frequencies from [`crate::cpu::ops::rope_freqs`] and one position per
//! token; see `shaders/kernels/rope.wgsl` for the math and the angle-precision scheme.

use bytemuck::{Pod, Zeroable};
use wgpu::{Buffer, BufferUsages, CommandEncoder};

use super::elementwise::{Family, check_lens, gpu_error, grid_for, len_u32, submit, upload_f32};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "rope";

const SOURCE: &str = include_str!("../../../shaders/kernels/rope.wgsl");

/// The rotary angle both `rope` and the fused `kv_store` compute.
pub(crate) const ANGLE: &str = include_str!("../../../shaders/common/rope_angle.wgsl");

/// `rope.wgsl` after the shared angle code.
fn source() -> String {
    format!("{ANGLE}\n{SOURCE}")
}

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Positions must be below 2^24: the shader splits them into two 12-bit halves.
pub const MAX_POSITION: u32 = (1 << 24) - 1;

/// Mirrors the WGSL `Params` struct (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct RopeParams {
    n_tok: u32,
    n_head: u32,
    n_pairs: u32,
    token_stride: u32,
    head_stride: u32,
    offset: u32,
    /// 0: adjacent pairs, 1: NeoX halves.
    neox: u32,
    _pad: u32,
}

/// Where the rope sub-vectors lie in the rotated buffer, in f32 elements: pair `i` of head `h`
/// of token `t` is at `base + 2i, base + 2i + 1` (or `base + i, base + i + n_pairs` with
/// `neox`), `base = t·token_stride + h·head_stride + offset`.
/// For q `[n_tok, H, dn + dr]`: `n_head = H`, `head_stride = dn + dr`, `offset = dn`,
/// `token_stride = H·(dn + dr)`. For k_pe inside `[n_tok, r + dr]`: `n_head = 1`, `offset = r`,
/// `token_stride = r + dr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RopeLayout {
    pub n_tok: u32,
    pub n_head: u32,
    /// dr / 2.
    pub n_pairs: u32,
    pub token_stride: u32,
    pub head_stride: u32,
    pub offset: u32,
    /// NeoX pairing (qwen2 and other `LLAMA_ROPE_TYPE_NEOX` models): rotates `(i, i + n_pairs)`
    /// instead of `(2i, 2i + 1)`; same frequencies and angles.
    pub neox: bool,
}

impl RopeLayout {
    /// f32 elements the rotated buffer must hold.
    pub fn len(&self) -> u64 {
        u64::from(self.n_tok) * u64::from(self.token_stride)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that every rotated pair lies inside its token's row.
    fn check(&self) -> std::result::Result<(), String> {
        if self.n_head == 0 || self.n_pairs == 0 {
            return Ok(());
        }
        let last = u64::from(self.n_head - 1) * u64::from(self.head_stride)
            + u64::from(self.offset)
            + 2 * u64::from(self.n_pairs);
        if last > u64::from(self.token_stride) {
            return Err(format!("{self:?}: head {} ends at {last}", self.n_head - 1));
        }
        Ok(())
    }
}

/// The per-pair frequency table for the shader: `τ_i = ω_i / 2π` turns per position, split into
/// `(τ1, τ2, τ3, 1)` with `τ1`, `τ2` of at most 12 significant bits (see `rope.wgsl`); the fourth
/// value is the magnitude of the rotated values (`common/rope_angle.wgsl`), 1 here.
pub fn turns_table(freqs: &[f64]) -> Vec<[f32; 4]> {
    scaled_turns_table(freqs, 1.0)
}

/// [`turns_table`] with the rotated values multiplied by `mscale`.
pub fn scaled_turns_table(freqs: &[f64], mscale: f64) -> Vec<[f32; 4]> {
    // Rounds to f32, then clears the low 12 of the 23 stored mantissa bits: 12 significant bits.
    let top12 = |v: f64| f32::from_bits((v as f32).to_bits() & !0xfff);
    freqs
        .iter()
        .map(|&w| {
            let tau = w / std::f64::consts::TAU;
            let t1 = top12(tau);
            let t2 = top12(tau - f64::from(t1));
            let t3 = (tau - f64::from(t1) - f64::from(t2)) as f32;
            [t1, t2, t3, mscale as f32]
        })
        .collect()
}

/// Uploads [`turns_table`] of `freqs` as the kernel's frequency buffer.
pub fn upload_freqs(gpu: &Gpu, freqs: &[f64]) -> Result<Buffer> {
    upload_scaled_freqs(gpu, freqs, 1.0)
}

/// Uploads [`scaled_turns_table`] of `freqs` and `mscale` as the kernel's frequency buffer.
pub fn upload_scaled_freqs(gpu: &Gpu, freqs: &[f64], mscale: f64) -> Result<Buffer> {
    let table = scaled_turns_table(freqs, mscale);
    let bytes: &[u8] = if table.is_empty() {
        &[0; 16]
    } else {
        bytemuck::cast_slice(&table)
    };
    gpu.upload("rope.turns", bytes, BufferUsages::STORAGE)
}

/// A compiled `rope` pipeline.
pub struct Rope {
    family: Family,
}

impl Rope {
    pub fn new(gpu: &Gpu) -> Result<Rope> {
        let params = size_of::<RopeParams>() as u64;
        Ok(Rope {
            family: Family::new(gpu, LABEL, &source(), "main", 2, 1, params)?,
        })
    }

    /// Records the rotation of `x` in place. `turns` comes from [`upload_freqs`] (at least
    /// `layout.n_pairs` entries), `positions` holds `layout.n_tok` u32 positions below
    /// [`MAX_POSITION`], `x` at least [`RopeLayout::len`] f32 values.
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut CommandEncoder,
        [turns, positions, x]: [&Buffer; 3],
        layout: RopeLayout,
    ) -> Result<()> {
        if u64::from(layout.n_tok) * u64::from(layout.n_head) * u64::from(layout.n_pairs) == 0 {
            layout
                .check()
                .map_err(|message| gpu_error(LABEL, message))?;
            return Ok(());
        }
        let dispatch = self.bind(gpu, [turns.into(), positions.into(), x.into()], layout)?;
        Dispatch::record_all(encoder, LABEL, [&dispatch]);
        Ok(())
    }

    /// The dispatch of [`Rope::encode`], built once and recorded every step (positions are read
    /// when it runs).
    pub fn bind(
        &self,
        gpu: &Gpu,
        [turns, positions, x]: [Binding<'_>; 3],
        layout: RopeLayout,
    ) -> Result<Dispatch> {
        layout
            .check()
            .map_err(|message| gpu_error(LABEL, message))?;
        let needs = [
            ("turns", turns, 16 * u64::from(layout.n_pairs)),
            ("positions", positions, 4 * u64::from(layout.n_tok)),
            ("x", x, 4 * layout.len()),
        ];
        check_lens(LABEL, &needs, || format!("{layout:?} "))?;
        let threads =
            u64::from(layout.n_tok) * u64::from(layout.n_head) * u64::from(layout.n_pairs);
        let threads = u32::try_from(threads)
            .map_err(|_| gpu_error(LABEL, format!("{threads} pairs in one dispatch")))?;
        let groups = grid_for(gpu, LABEL, threads.div_ceil(WORKGROUP_SIZE).max(1))?;
        let params = RopeParams {
            n_tok: layout.n_tok,
            n_head: layout.n_head,
            n_pairs: layout.n_pairs,
            token_stride: layout.token_stride,
            head_stride: layout.head_stride,
            offset: layout.offset,
            neox: u32::from(layout.neox),
            _pad: 0,
        };
        self.family.bind(
            gpu,
            &[turns, positions, x],
            bytemuck::bytes_of(&params),
            groups,
        )
    }

    /// Returns `x` with its rope sub-vectors rotated, computed on the GPU. `freqs` are the
    /// CPU's ω_i (`layout.n_pairs` of them), `positions` one per token.
    pub fn run(
        &self,
        gpu: &Gpu,
        x: &[f32],
        positions: &[u32],
        freqs: &[f64],
        layout: RopeLayout,
    ) -> Result<Vec<f32>> {
        let fail = |message: String| Err(gpu_error(LABEL, message));
        if x.len() as u64 != layout.len() {
            return fail(format!(
                "x has {} elements, {layout:?} needs {}",
                x.len(),
                layout.len()
            ));
        }
        if positions.len() != layout.n_tok as usize || freqs.len() != layout.n_pairs as usize {
            return fail(format!(
                "{} positions and {} frequencies for {layout:?}",
                positions.len(),
                freqs.len()
            ));
        }
        if let Some(p) = positions.iter().find(|&&p| p > MAX_POSITION) {
            return fail(format!("position {p} is above {MAX_POSITION}"));
        }
        if x.is_empty() {
            return Ok(Vec::new());
        }
        len_u32(gpu, LABEL, x.len())?;
        let turns = upload_freqs(gpu, freqs)?;
        let positions = gpu.upload(
            "rope.positions",
            bytemuck::cast_slice(positions),
            BufferUsages::STORAGE,
        )?;
        let x_buffer = upload_f32(gpu, "rope.x", x)?;
        submit(gpu, LABEL, |encoder| {
            self.encode(gpu, encoder, [&turns, &positions, &x_buffer], layout)
        })?;
        gpu.read_f32("rope.x", &x_buffer, x.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        let span = super::super::elementwise::validated_params_size(LABEL, &source());
        assert_eq!(span, size_of::<RopeParams>());
    }

    #[test]
    fn turns_split_is_exact_enough() {
        for w in [1.0, 0.5, 2.688e-2, 3.334e-6 / 7.0, 0.123_456_789] {
            let [t1, t2, t3, _] = turns_table(&[w])[0];
            assert_eq!(t1.to_bits() & 0xfff, 0);
            assert_eq!(t2.to_bits() & 0xfff, 0);
            let sum = f64::from(t1) + f64::from(t2) + f64::from(t3);
            let tau = w / std::f64::consts::TAU;
            assert!((sum - tau).abs() <= tau * 1e-13, "{w}: {sum} vs {tau}");
        }
    }
}
