#!/usr/bin/env python3
"""Generate the known-answer vectors of `lanternfish-quant` (quant/tests/data/).

Usage: python3 tools/make_quant_vectors.py [OUT_DIR]     (default: quant/tests/data)

Needs: pip install gguf numpy         (gguf-py: an independent numpy (de)quantizer)
Optional: pip install libggml-python  (ships libggml-base.so with ggml's own quantize_row_*_ref)

Writes, for every type name T in TYPES and IQ_TYPES (lower-case ggml names):
  deq_T.blocks   random-but-valid raw blocks (every f16 scale field finite), fixed numpy seed;
                 for the grid-based IQ types followed by blocks whose grid indices, together,
                 take every value of the type's grid
  deq_T.f32      gguf-py's `gguf.quants.dequantize` of those blocks, little-endian f32
  quant_input.f32            ROWS x 256 little-endian f32 inputs (Gaussian, heavy-tailed, edge cases)
  quant_T.gguf_py            gguf-py's `gguf.quants.quantize` of quant_input (types it can quantize)
  quant_T.ggml               ggml's `ggml_quantize_chunk(..., imatrix = NULL)` of quant_input, which
                             calls `quantize_row_*_ref`, for IQ4_NL/IQ4_XS `quantize_iq4_*`
                             (only when libggml-python is installed)
The Rust test quant/tests/known_answers.rs reads these files.
"""
import ctypes
import importlib.util
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

SEED = 20260523
BLOCKS = 8
TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
         T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
# Byte offsets of the f16 fields (ggml_half) inside one block, from ggml-common.h.
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
# The IQ types come from a second generator (seed SEED + 1), so that adding them left the vectors
# of TYPES and quant_input.f32 byte-identical.
IQ_TYPES = [T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ3_XXS, T.IQ3_S, T.IQ1_S, T.IQ1_M, T.IQ4_NL,
            T.IQ4_XS]
for _t in IQ_TYPES:
    if _t != T.IQ1_M:  # IQ1_M's f16 is spread over four nibbles: see random_blocks
        F16_FIELDS[_t] = [0]
GGML_QUANTIZERS = TYPES[1:] + [T.IQ4_NL, T.IQ4_XS]
GGUF_PY_QUANTIZERS = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]


def random_scales(rng, n):
    """Finite f16 scales: mostly N(0, 0.05), plus zero, -0, subnormals and the largest f16."""
    v = (rng.standard_normal(n) * 0.05).astype(np.float16)
    special = np.array([0.0, -0.0, 2.0**-24, -(2.0**-14), 65504.0, -3.0e-5], dtype=np.float16)
    v[: min(n, len(special))] = special[: min(n, len(special))]
    assert np.all(np.isfinite(v))
    return v


def set_grid_indices(raw, qtype, idx):
    """Writes grid index idx[b, k] into octet (or, for IQ3, quad) k of block b of `raw`, keeping
    every other bit (signs, scales, the other index bits' neighbours) as it was."""
    idx = idx.astype(np.uint32)
    for k in range(idx.shape[1]):
        v = idx[:, k]
        g, l = divmod(k, 4)
        if qtype == T.IQ2_XXS:                       # qs byte 8g + l of each group's u32 pair
            raw[:, 2 + 8 * g + l] = v
        elif qtype == T.IQ2_XS:                      # u16 @2 + 2k: 9-bit index | sign index << 9
            lo = 2 + 2 * k
            word = raw[:, lo].astype(np.uint32) | (raw[:, lo + 1].astype(np.uint32) << 8)
            word = (word & ~np.uint32(511)) | v
            raw[:, lo], raw[:, lo + 1] = word & 0xFF, word >> 8
        elif qtype == T.IQ2_S:                       # qs[4g + l] @2, 2 high bits in qh[g] @66
            raw[:, 2 + k] = v & 0xFF
            raw[:, 66 + g] = (raw[:, 66 + g] & ~np.uint8(3 << (2 * l))) | ((v >> 8) << (2 * l))
        elif qtype == T.IQ3_XXS:                     # qs[k] @2, one byte per quad
            raw[:, 2 + k] = v
        elif qtype == T.IQ3_S:                       # qs[k] @2, ninth bit k % 8 of qh[k / 8] @66
            g, bit = divmod(k, 8)
            raw[:, 2 + k] = v & 0xFF
            raw[:, 66 + g] = (raw[:, 66 + g] & ~np.uint8(1 << bit)) | ((v >> 8) << bit)
        elif qtype == T.IQ1_S:                       # qs[k] @2, 3 high bits at 3l of u16 qh[g] @34
            raw[:, 2 + k] = v & 0xFF
            lo = 34 + 2 * g
            word = raw[:, lo].astype(np.uint32) | (raw[:, lo + 1].astype(np.uint32) << 8)
            word = (word & ~np.uint32(7 << (3 * l))) | ((v >> 8) << (3 * l))
            raw[:, lo], raw[:, lo + 1] = word & 0xFF, word >> 8
        elif qtype == T.IQ1_M:                       # qs[k] @0, 3 high bits in a nibble of qh @32
            raw[:, k] = v & 0xFF
            byte, shift = 32 + k // 2, 4 * (k % 2)
            raw[:, byte] = (raw[:, byte] & ~np.uint8(7 << shift)) | ((v >> 8) << shift)
        else:
            raise ValueError(qtype)


# (grid entries, grid indices per block) of the grid-based IQ types
GRID_SIZES = {T.IQ2_XXS: (256, 32), T.IQ2_XS: (512, 32), T.IQ2_S: (1024, 32),
              T.IQ3_XXS: (256, 64), T.IQ3_S: (512, 64), T.IQ1_S: (2048, 32), T.IQ1_M: (2048, 32)}


def random_blocks(rng, qtype):
    block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
    if qtype == T.F32:
        v = (rng.standard_normal(256) * 10.0 ** rng.integers(-6, 6, 256)).astype(np.float32)
        v[:6] = [0.0, -0.0, 1e-40, -3.0e38, np.inf, -np.inf]
        return v.view(np.uint8)
    if qtype in (T.F16, T.BF16):
        bits = rng.integers(0, 1 << 16, 256, dtype=np.uint32).astype(np.uint16)
        exp_mask, man_mask = (0x7C00, 0x03FF) if qtype == T.F16 else (0x7F80, 0x007F)
        nan = ((bits & exp_mask) == exp_mask) & ((bits & man_mask) != 0)
        bits[nan] &= ~np.uint16(exp_mask)  # NaN payloads are not compared: make them finite
        return bits.view(np.uint8)
    n = BLOCKS
    if qtype in GRID_SIZES:  # extra blocks that use every grid index, in a random order
        entries, per_block = GRID_SIZES[qtype]
        n += entries // per_block
    raw = rng.integers(0, 256, (n, block_bytes), dtype=np.uint16).astype(np.uint8)
    if qtype in GRID_SIZES:
        idx = rng.permutation(entries).reshape(-1, per_block)
        set_grid_indices(raw[BLOCKS:], qtype, idx)
    for off in F16_FIELDS.get(qtype, []):
        raw[:, off:off + 2] = random_scales(rng, n).view(np.uint8).reshape(n, 2)
    if qtype == T.IQ1_M:  # d's nibbles are the top 4 bits of the u16 scale words @48, 50, 52, 54
        d = random_scales(rng, n).view(np.uint16).astype(np.uint32)
        for i in range(4):
            lo = 48 + 2 * i
            word = raw[:, lo].astype(np.uint32) | (raw[:, lo + 1].astype(np.uint32) << 8)
            word = (word & 0x0FFF) | (((d >> (4 * i)) & 0xF) << 12)
            raw[:, lo], raw[:, lo + 1] = word & 0xFF, word >> 8
    return raw.reshape(-1)


def quant_input(rng):
    """12 rows of 256 values covering the quantizers' code paths."""
    rows = [
        rng.standard_normal(256),                                  # Gaussian
        rng.standard_normal(256) * 0.02,                           # typical weight scale
        rng.standard_t(2, 256),                                    # heavy-tailed
        rng.uniform(-100, 100, 256),                               # uniform, large
        np.abs(rng.standard_normal(256)) + 0.5,                    # all positive, offset
        -np.abs(rng.standard_normal(256)) - 0.1,                   # all negative
        np.round(rng.standard_normal(256) * 8) / 8,                # on a grid: rounding ties
        rng.standard_normal(256) * 1e-6,                           # f16 subnormal scales
        rng.standard_normal(256) * 1e-20,                          # below GROUP_MAX_EPS / f16 range
        np.concatenate([np.zeros(128), np.full(64, 0.75), rng.standard_normal(64)]),  # zero, constant
        np.where(np.arange(256) % 37 == 0, 40.0, rng.standard_normal(256)),  # outliers
        rng.standard_normal(256) * 2000,                           # large, f16 scales still finite
    ]
    return np.stack(rows).astype(np.float32)


def ggml_library():
    """libggml-python's libggml-base.so, or None."""
    spec = importlib.util.find_spec("libggml")
    if spec is None or not spec.submodule_search_locations:
        return None
    return ctypes.CDLL(os.path.join(spec.submodule_search_locations[0], "lib64", "libggml-base.so"))


class TypeTraits(ctypes.Structure):
    """`struct ggml_type_traits` of ggml.h (ggml 0.20.2)."""
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


def ggml_dequantizer(lib):
    """Returns dequantize(qtype, blocks) -> f32 values via ggml's own `to_float`
    (`dequantize_row_*`)."""
    lib.ggml_get_type_traits.restype = ctypes.POINTER(TypeTraits)
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
    to_float = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)

    def run(qtype, blocks):
        block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
        blocks = np.ascontiguousarray(blocks, dtype=np.uint8)
        out = np.zeros(blocks.size // block_bytes * block_elems, dtype=np.float32)
        fn = to_float(lib.ggml_get_type_traits(int(qtype)).contents.to_float)
        fn(blocks.ctypes.data, out.ctypes.data, out.size)
        return out

    return run


def ggml_quantizer(lib):
    """Returns quantize(qtype, x) -> bytes via ggml's `ggml_quantize_chunk`."""
    fn = lib.ggml_quantize_chunk
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                   ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]

    def run(qtype, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
        out = np.zeros(x.size // block_elems * block_bytes, dtype=np.uint8)
        n = fn(int(qtype), x.ctypes.data, out.ctypes.data, 0, x.shape[0], x.shape[1], None)
        assert n == out.size, (qtype.name, n, out.size)
        return out

    return run


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("quant", "tests", "data")
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(SEED)

    def write(name, arr):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(np.ascontiguousarray(arr).tobytes())

    for qtype in TYPES:
        name = qtype.name.lower()
        blocks = random_blocks(rng, qtype)
        values = dequantize(blocks, qtype).astype("<f4")
        assert np.all(~np.isnan(values)), name
        write(f"deq_{name}.blocks", blocks)
        write(f"deq_{name}.f32", values)

    x = quant_input(rng)
    write("quant_input.f32", x.astype("<f4"))

    iq_rng = np.random.default_rng(SEED + 1)
    for qtype in IQ_TYPES:
        name = qtype.name.lower()
        blocks = random_blocks(iq_rng, qtype)
        values = dequantize(blocks, qtype).astype("<f4")
        assert np.all(np.isfinite(values)), name
        write(f"deq_{name}.blocks", blocks)
        write(f"deq_{name}.f32", values)

    for qtype in GGUF_PY_QUANTIZERS:
        q = quantize(x, qtype)
        write(f"quant_{qtype.name.lower()}.gguf_py", np.asarray(q).view(np.uint8))
    lib = ggml_library()
    if lib is None:
        print("libggml-python not installed: quant_*.ggml not written", file=sys.stderr)
        return
    ggml_deq = ggml_dequantizer(lib)
    for qtype in IQ_TYPES:  # gguf-py's decoding of the IQ vectors is also ggml's, bit for bit
        name = qtype.name.lower()
        with open(os.path.join(out_dir, f"deq_{name}.blocks"), "rb") as f:
            blocks = np.frombuffer(f.read(), dtype=np.uint8)
        ours = dequantize(blocks, qtype).astype("<f4").view(np.uint32)
        theirs = ggml_deq(qtype, blocks).view(np.uint32)
        assert np.array_equal(ours, theirs), f"{name}: gguf-py and ggml decode differently"
    ggml = ggml_quantizer(lib)
    for qtype in GGML_QUANTIZERS:
        write(f"quant_{qtype.name.lower()}.ggml", ggml(qtype, x))


if __name__ == "__main__":
    main()
