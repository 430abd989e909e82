//! `kv_store`: normalises the latent part of `n_tok` new `attn_kv_a_mqa` outputs and writes them,
//! with their roped key, into the layer's latent cache at each token's position; see
//! `shaders/kernels/kv_store.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::elementwise::{Family, gpu_error, grid_for};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "kv_store";

const SOURCE: &str = include_str!("../../../shaders/kernels/kv_store.wgsl");

/// Mirrors the WGSL `Params` struct (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct KvStoreParams {
    r: u32,
    dr: u32,
    n_tok: u32,
    n_ctx: u32,
    eps: f32,
    _pad: [u32; 3],
}

/// A compiled `kv_store` pipeline.
pub struct KvStore {
    family: Family,
}

impl KvStore {
    pub fn new(gpu: &Gpu) -> Result<KvStore> {
        let params = size_of::<KvStoreParams>() as u64;
        Ok(KvStore {
            family: Family::new(gpu, LABEL, SOURCE, "main", 3, 1, params)?,
        })
    }

    /// The dispatch writing `kv [n_tok, r + dr]` (normalised by `w [r]`) into rows
    /// `positions[t]` of `cache [n_ctx, r + dr]`; positions are read when it runs.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        gpu: &Gpu,
        [kv, w, positions, cache]: [Binding<'_>; 4],
        r: u32,
        dr: u32,
        n_tok: u32,
        n_ctx: u32,
        eps: f32,
    ) -> Result<Dispatch> {
        let row = 4 * u64::from(r + dr);
        let needs = [
            ("kv", kv, row * u64::from(n_tok)),
            ("w", w, 4 * u64::from(r)),
            ("positions", positions, 4 * u64::from(n_tok)),
            ("cache", cache, row * u64::from(n_ctx)),
        ];
        for (name, binding, bytes) in needs {
            if binding.len() < bytes || bytes == 0 {
                return Err(gpu_error(
                    LABEL,
                    format!("{name} has {} bytes, needs {bytes}", binding.len()),
                ));
            }
        }
        let groups = grid_for(gpu, LABEL, n_tok)?;
        let params = KvStoreParams {
            r,
            dr,
            n_tok,
            n_ctx,
            eps,
            _pad: [0; 3],
        };
        self.family.bind(
            gpu,
            &[kv, w, positions, cache],
            bytemuck::bytes_of(&params),
            groups,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        let span = super::super::elementwise::validated_params_size(LABEL, SOURCE);
        assert_eq!(span, size_of::<KvStoreParams>());
    }
}
