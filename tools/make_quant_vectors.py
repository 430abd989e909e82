#!/usr/bin/env python3
"""Generate the known-answer vectors of `lanternfish-quant` (quant/tests/data/).

Usage: python3 tools/make_quant_vectors.py [OUT_DIR]     (default: quant/tests/data)

Needs: pip install gguf numpy         (gguf-py: an independent numpy (de)quantizer)
Optional: pip install libggml-python  (ships libggml-base.so with ggml's own quantize_row_*_ref)

Writes, for every type name T in TYPES (lower-case ggml names):
  deq_T.blocks   random-but-valid raw blocks (every f16 scale field finite), fixed numpy seed
  deq_T.f32      gguf-py's `gguf.quants.dequantize` of those blocks, little-endian f32
  quant_input.f32            ROWS x 256 little-endian f32 inputs (Gaussian, heavy-tailed, edge cases)
  quant_T.gguf_py            gguf-py's `gguf.quants.quantize` of quant_input (types it can quantize)
  quant_T.ggml               ggml's `ggml_quantize_chunk(..., imatrix = NULL)` of quant_input, which
                             calls `quantize_row_*_ref` (only when libggml-python is installed)
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
GGUF_PY_QUANTIZERS = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]


def random_scales(rng, n):
    """Finite f16 scales: mostly N(0, 0.05), plus zero, -0, subnormals and the largest f16."""
    v = (rng.standard_normal(n) * 0.05).astype(np.float16)
    special = np.array([0.0, -0.0, 2.0**-24, -(2.0**-14), 65504.0, -3.0e-5], dtype=np.float16)
    v[: min(n, len(special))] = special[: min(n, len(special))]
    assert np.all(np.isfinite(v))
    return v


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
    raw = rng.integers(0, 256, (BLOCKS, block_bytes), dtype=np.uint16).astype(np.uint8)
    for off in F16_FIELDS[qtype]:
        raw[:, off:off + 2] = random_scales(rng, BLOCKS).view(np.uint8).reshape(BLOCKS, 2)
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


def ggml_quantizer():
    """Returns quantize(qtype, x) -> bytes via libggml-python's libggml-base.so, or None."""
    spec = importlib.util.find_spec("libggml")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = ctypes.CDLL(os.path.join(spec.submodule_search_locations[0], "lib64", "libggml-base.so"))
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
    for qtype in GGUF_PY_QUANTIZERS:
        q = quantize(x, qtype)
        write(f"quant_{qtype.name.lower()}.gguf_py", np.asarray(q).view(np.uint8))
    ggml = ggml_quantizer()
    if ggml is None:
        print("libggml-python not installed: quant_*.ggml not written", file=sys.stderr)
        return
    for qtype in TYPES:
        if qtype != T.F32:
            write(f"quant_{qtype.name.lower()}.ggml", ggml(qtype, x))


if __name__ == "__main__":
    main()
