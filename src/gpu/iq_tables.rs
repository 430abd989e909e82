//! The IQ lookup tables the GPU decoders read, as WGSL `const` arrays written from
//! `lanternfish_quant::grids` (the one copy of ggml-common.h's tables in the codebase) into the
//! composed module of an IQ type by [`crate::gpu::shader::compose`], before its quant file.
//!
//! Today that is `kvalues_iq4nl` for IQ4_NL and IQ4_XS, as f32s (exact small integers). The
//! grid-based IQ types (IQ1_S … IQ3_S) have no GPU decoder on main yet: branch `iq17-gpu-grids`
//! holds decoders for them, bit-exact on lavapipe, whose grids (up to 16 KiB) made the matvec
//! tests too slow there as dynamically indexed `const` arrays.

use lanternfish_quant::GgmlType;
use lanternfish_quant::grids::KVALUES_IQ4NL;

/// The WGSL constants the quant file of `ty` reads (empty for the types without tables).
pub(crate) fn wgsl_tables(ty: GgmlType) -> String {
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
    }
}
