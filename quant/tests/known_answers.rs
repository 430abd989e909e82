//! Known-answer tests against independent implementations (see `tests/data/README.md`).
//!
//! * Dequantization: random-but-valid blocks decoded by gguf-py's numpy decoder
//!   (`gguf.quants.dequantize`). gguf-py computes each value with the same float operations in the
//!   same order as ggml's `dequantize_row_*` (e.g. Q4_K `(d·sc)·q − dmin·m`, Q6_K `(d·sc)·q`), and
//!   neither side fuses multiply-adds, so the results must be bit-identical: no tolerance.
//!   The IQ vectors include blocks that together use every index of the type's grid.
//! * Quantization: the bytes of gguf-py's numpy quantizers (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
//!   Q8_0) and of ggml's own `quantize_row_*_ref` (all types with a quantizer, IQ4_NL/IQ4_XS
//!   through `quantize_iq4_*`, all through libggml-python's `ggml_quantize_chunk`) for fixed
//!   inputs. Our reference quantizers follow the same algorithms with the same float operation
//!   order, so the bytes must be identical too.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use lanternfish_quant::{GgmlType, dequantize_row, quantize_row};

const TYPES: [GgmlType; 22] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Bf16,
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
    GgmlType::Iq2S,
    GgmlType::Iq3Xxs,
    GgmlType::Iq3S,
    GgmlType::Iq1S,
    GgmlType::Iq1M,
    GgmlType::Iq4Nl,
    GgmlType::Iq4Xs,
];

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn quant_input() -> Vec<f32> {
    f32s(&data("quant_input.f32"))
}

#[test]
fn dequantize_matches_gguf_py_bit_for_bit() {
    for ty in TYPES {
        let name = ty.name().to_lowercase();
        let blocks = data(&format!("deq_{name}.blocks"));
        let expected = f32s(&data(&format!("deq_{name}.f32")));
        assert_eq!(
            blocks.len() / ty.block_bytes() * ty.block_elems(),
            expected.len(),
            "{ty}: vector files disagree"
        );
        let mut got = vec![0f32; expected.len()];
        dequantize_row(ty, &blocks, &mut got).unwrap();
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                g.to_bits(),
                e.to_bits(),
                "{ty} element {i} (block {}): ours {g:e}, gguf-py {e:e}",
                i / ty.block_elems()
            );
        }
    }
}

fn assert_quantize_matches(ty: GgmlType, expected: &[u8], who: &str) {
    let x = quant_input();
    let mut got = vec![0u8; x.len() / ty.block_elems() * ty.block_bytes()];
    quantize_row(ty, &x, &mut got).unwrap();
    assert_eq!(got.len(), expected.len(), "{ty}: size");
    let block = ty.block_bytes();
    for (b, (g, e)) in got.chunks(block).zip(expected.chunks(block)).enumerate() {
        assert_eq!(g, e, "{ty} block {b}: ours vs {who}");
    }
}

#[test]
fn quantize_matches_gguf_py_bytes() {
    for ty in [
        GgmlType::F16,
        GgmlType::Bf16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
    ] {
        let name = ty.name().to_lowercase();
        assert_quantize_matches(ty, &data(&format!("quant_{name}.gguf_py")), "gguf-py");
    }
}

#[test]
fn quantize_matches_ggml_reference_bytes() {
    let quantizable = TYPES[1..].iter().filter(|ty| ty.can_quantize());
    let names: Vec<_> = quantizable.clone().map(|ty| ty.name()).collect();
    assert_eq!(names.len(), 14, "{names:?}");
    for ty in quantizable {
        let name = ty.name().to_lowercase();
        assert_quantize_matches(*ty, &data(&format!("quant_{name}.ggml")), "ggml");
    }
}

/// The 1–3-bit IQ types decode but have no quantizer: `quantize_row` says so instead of writing
/// anything.
#[test]
fn iq_types_without_quantizer_are_refused() {
    let x = quant_input();
    for ty in TYPES.iter().filter(|ty| !ty.can_quantize()) {
        assert!(ty.is_supported());
        let mut out = vec![0xA5u8; x.len() / ty.block_elems() * ty.block_bytes()];
        assert_eq!(
            quantize_row(*ty, &x, &mut out),
            Err(lanternfish_quant::UnsupportedType(*ty))
        );
        assert!(out.iter().all(|&b| b == 0xA5), "{ty}: bytes written");
    }
}

/// The inputs hold every code path the tests rely on: an all-zero sub-block, a constant one and
/// values too small for an f16 scale.
#[test]
fn quant_input_covers_edge_cases() {
    let x = quant_input();
    assert_eq!(x.len(), 12 * 256);
    let row9 = &x[9 * 256..10 * 256];
    assert!(row9[..128].iter().all(|&v| v == 0.0));
    assert!(row9[128..192].iter().all(|&v| v == 0.75));
    assert!(x[8 * 256..9 * 256].iter().all(|v| v.abs() < 1e-15));
}
