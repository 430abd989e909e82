//! The IQ lookup tables the GPU decoders read, from `lanternfish_quant::grids` (the one copy of
//! ggml-common.h's tables in the codebase), composed into the module of an IQ type by
//! [`crate::gpu::shader::compose`] before its quant file.
//!
//! - `kvalues_iq4nl` (IQ4_NL, IQ4_XS): 16 levels, a WGSL `const` array of f32s (exact small
//!   integers).
//! - The grids of IQ1_S/IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S (1–16 KiB): a read-only
//!   storage buffer at `@group(1) @binding(0)`, uploaded once per compiled kernel
//!   ([`crate::gpu::shader::QuantKernel`]) and bound beside the kernel's own group 0, so the other
//!   types' bindings are unchanged. Not `const` arrays: naga lowers a dynamically indexed
//!   `const` array to a function-local copy of the whole table at every access, which lavapipe
//!   executes literally (the matvec tests went from ~25 s to past 900 s); a storage read is one
//!   load. A u64 grid entry (8 elements, byte `j` = element `j`) becomes two u32 words, low
//!   first: word `2·idx + h` holds elements `4h .. 4h + 4` of entry `idx`, i.e. one decoded quad.
//!   u32 entries (4 elements) stay one word. `ksigns_iq2xs` is not a table on the GPU:
//!   `shaders/common/iq.wgsl` computes it.

use lanternfish_quant::GgmlType;
use lanternfish_quant::grids::{
    IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KVALUES_IQ4NL,
};

/// The grid `ty`'s quant file reads from the `@group(1)` storage buffer: its WGSL name and its
/// words (`None` for the types without one).
pub(crate) fn grid(ty: GgmlType) -> Option<(&'static str, Vec<u32>)> {
    Some(match ty {
        GgmlType::Iq2Xxs => ("IQ2XXS_GRID", wide(&IQ2XXS_GRID)),
        GgmlType::Iq2Xs => ("IQ2XS_GRID", wide(&IQ2XS_GRID)),
        GgmlType::Iq2S => ("IQ2S_GRID", wide(&IQ2S_GRID)),
        GgmlType::Iq3Xxs => ("IQ3XXS_GRID", IQ3XXS_GRID.to_vec()),
        GgmlType::Iq3S => ("IQ3S_GRID", IQ3S_GRID.to_vec()),
        GgmlType::Iq1S | GgmlType::Iq1M => ("IQ1S_GRID", wide(&IQ1S_GRID)),
        _ => return None,
    })
}

/// The WGSL declarations of the tables the quant file of `ty` reads (empty for the types without
/// tables).
pub(crate) fn wgsl_tables(ty: GgmlType) -> String {
    if let Some((name, words)) = grid(ty) {
        return format!(
            "// {} of ggml-common.h, {} little-endian words from lanternfish_quant::grids, bound \
             by the host (src/gpu/iq_tables.rs).\n\
             @group(1) @binding(0) var<storage, read> {name}: array<u32>;\n",
            name.to_lowercase(),
            words.len(),
        );
    }
    match ty {
        GgmlType::Iq4Nl | GgmlType::Iq4Xs => {
            let values: Vec<String> = KVALUES_IQ4NL.iter().map(|v| format!("{v}.0")).collect();
            format!(
                "// kvalues_iq4nl (ggml-common.h), from lanternfish_quant::grids.\n\
                 const KVALUES_IQ4NL = array<f32, 16>({});\n",
                values.join(", ")
            )
        }
        _ => String::new(),
    }
}

/// A u64 grid as pairs of u32 words, low word first.
fn wide(grid: &[u64]) -> Vec<u32> {
    grid.iter()
        .flat_map(|&entry| [entry as u32, (entry >> 32) as u32])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WGSL levels are the CPU's, in order, written as exact float literals.
    #[test]
    fn iq4_levels_match_the_cpu_table() {
        let src = wgsl_tables(GgmlType::Iq4Xs);
        let list = src.split("array<f32, 16>(").nth(1).unwrap_or_default();
        let list = list.trim_end().trim_end_matches(");");
        let parsed: Vec<f32> = list
            .split(", ")
            .map(|v| v.parse().unwrap_or(f32::NAN))
            .collect();
        let want: Vec<f32> = KVALUES_IQ4NL.iter().map(|&v| v as f32).collect();
        assert_eq!(parsed, want);
        assert_eq!(wgsl_tables(GgmlType::Iq4Nl), src);
        assert!(wgsl_tables(GgmlType::Q4K).is_empty());
        assert!(grid(GgmlType::Q4K).is_none() && grid(GgmlType::Iq4Xs).is_none());
    }

    /// Word `2·idx + h` of a wide grid is elements `4h .. 4h + 4` of entry `idx`; u32 grids are
    /// copied as they are; each grid is declared once, in group 1.
    #[test]
    fn grids_split_entries_low_word_first() {
        let (name, words) = grid(GgmlType::Iq2Xxs).unwrap_or_default();
        assert_eq!(name, "IQ2XXS_GRID");
        assert_eq!(words.len(), 2 * IQ2XXS_GRID.len());
        for (i, &entry) in IQ2XXS_GRID.iter().enumerate() {
            assert_eq!(words[2 * i], entry as u32);
            assert_eq!(words[2 * i + 1], (entry >> 32) as u32);
        }
        assert_eq!(grid(GgmlType::Iq3S).map(|g| g.1), Some(IQ3S_GRID.to_vec()));
        assert_eq!(grid(GgmlType::Iq1M), grid(GgmlType::Iq1S));
        let src = wgsl_tables(GgmlType::Iq1M);
        assert!(src.contains("@group(1) @binding(0) var<storage, read> IQ1S_GRID: array<u32>;"));
    }
}
