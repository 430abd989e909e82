#!/usr/bin/env python3
"""Compare lanternfish-quant's reference quantizers with ggml's and gguf-py's on the same data.

Usage: python3 tools/compare_quantizers.py          (from the repository root)

Needs: pip install gguf numpy libggml-python; cargo. For every block type it quantizes each data
set with
  * ggml:    ggml_quantize_chunk(type, ..., imatrix = NULL) from libggml-python's libggml-base.so,
             i.e. ggml-quants.c quantize_row_*_ref, what llama-quantize uses without an imatrix;
  * ours:    quant/examples/quantize_stdin.rs (lanternfish_quant::quantize_row);
  * gguf-py: gguf.quants.quantize, where gguf-py has a numpy quantizer for the type;
dequantizes every result with gguf-py (an independent decoder) and prints the RMS error relative to
the RMS of the data, and whether our bytes equal ggml's. Without libggml-python the ggml column is
left out.
"""
import ctypes
import importlib.util
import os
import subprocess
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

TYPES = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
         T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
GGUF_PY = {T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0}
ROWS, COLS = 256, 4096


def data_sets():
    rng = np.random.default_rng(7)
    gauss = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    heavy = rng.standard_t(3, (ROWS, COLS)).astype(np.float32)
    # Weight-like: small Gaussian values with a few large-magnitude input channels (columns).
    weights = (rng.standard_normal((ROWS, COLS)) * 0.02).astype(np.float32)
    weights[:, rng.choice(COLS, 16, replace=False)] *= 20
    return [("gaussian N(0,1)", gauss), ("student-t(3)", heavy), ("weights+outlier cols", weights)]


def ggml_quantizer():
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
        fn(int(qtype), x.ctypes.data, out.ctypes.data, 0, x.shape[0], x.shape[1], None)
        return out

    return run


def ours(qtype, x):
    cmd = ["cargo", "run", "-q", "--release", "-p", "lanternfish-quant", "--example",
           "quantize_stdin", "--", qtype.name.lower()]
    res = subprocess.run(cmd, input=x.astype("<f4").tobytes(), capture_output=True, check=True)
    return np.frombuffer(res.stdout, dtype=np.uint8)


def rel_rms(qtype, blocks, x):
    y = dequantize(np.asarray(blocks).view(np.uint8).reshape(-1), qtype).reshape(-1)
    x = x.reshape(-1).astype(np.float64)
    return float(np.sqrt(np.mean((y.astype(np.float64) - x) ** 2) / np.mean(x**2)))


def main():
    ggml = ggml_quantizer()
    if ggml is None:
        print("libggml-python not installed: no ggml column", file=sys.stderr)
    print(f"{'data':<22} {'type':<5} {'ggml ref':>10} {'ours':>10} {'gguf-py':>10}  bytes == ggml")
    for label, x in data_sets():
        for qtype in TYPES:
            mine = ours(qtype, x)
            cells = []
            same = "-"
            if ggml is not None:
                theirs = ggml(qtype, x)
                cells.append(f"{rel_rms(qtype, theirs, x):10.6f}")
                same = "yes" if np.array_equal(theirs, mine) else "NO"
            else:
                cells.append(f"{'-':>10}")
            cells.append(f"{rel_rms(qtype, mine, x):10.6f}")
            if qtype in GGUF_PY:
                cells.append(f"{rel_rms(qtype, quantize(x, qtype), x):10.6f}")
            else:
                cells.append(f"{'-':>10}")
            print(f"{label:<22} {qtype.name:<5} {' '.join(cells)}  {same}")


if __name__ == "__main__":
    main()
