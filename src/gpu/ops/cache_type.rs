//! The element type of the attention caches (`--cache-type`): what one cached value costs and the
//! WGSL that reads and writes it (`shaders/common/cache_{f32,f16}.wgsl`, one `CacheWord` per quad
//! of values), composed in front of the kernels that touch a cache.

use super::elementwise::Family;
use crate::Result;
use crate::gpu::Gpu;

/// How cached keys and values are stored on the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum CacheType {
    /// IEEE binary16: half the bytes and half the reading of f32 (llama.cpp's default too).
    #[default]
    F16,
    /// f32: exact, the mode the CPU comparison tests use.
    F32,
}

impl CacheType {
    /// Both types.
    pub const ALL: [CacheType; 2] = [CacheType::F16, CacheType::F32];

    /// Bytes of one cached value.
    pub fn value_bytes(self) -> u64 {
        match self {
            CacheType::F16 => 2,
            CacheType::F32 => 4,
        }
    }

    /// The name `--cache-type` takes and `bench --json` prints.
    pub fn name(self) -> &'static str {
        match self {
            CacheType::F16 => "f16",
            CacheType::F32 => "f32",
        }
    }

    /// The WGSL defining `CacheWord`, `word_quad`, `quad_word` and `word_value` for this type.
    pub fn wgsl(self) -> &'static str {
        match self {
            CacheType::F16 => include_str!("../../../shaders/common/cache_f16.wgsl"),
            CacheType::F32 => include_str!("../../../shaders/common/cache_f32.wgsl"),
        }
    }

    /// The index of this type in [`CacheType::ALL`] (for per-type pipeline arrays).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One pipeline per cache type (indexed by [`CacheType::index`]) of the kernel `label` whose
/// source for a type is `source(type)`, labelled `label.f16` / `label.f32`, with `n_read`
/// read-only and `n_write` read-write storage bindings and a `params_size`-byte uniform.
pub(crate) fn families(
    gpu: &Gpu,
    label: &str,
    source: impl Fn(CacheType) -> String,
    (n_read, n_write): (u32, u32),
    params_size: u64,
) -> Result<Vec<Family>> {
    CacheType::ALL
        .iter()
        .map(|&ty| {
            let label = format!("{label}.{ty}");
            Family::new(
                gpu,
                &label,
                &source(ty),
                "main",
                n_read,
                n_write,
                params_size,
            )
        })
        .collect()
}

impl std::fmt::Display for CacheType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
