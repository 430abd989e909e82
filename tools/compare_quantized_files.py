#!/usr/bin/env python3
"""Compare the quantization error of two quantized GGUFs made from the same F16/F32 source.

Usage: compare_quantized_files.py SOURCE.gguf OURS.gguf THEIRS.gguf

Every tensor is dequantized with gguf-py (PyPI `gguf`, an independent decoder) and compared with the
source tensor; prints, per quant type, the RMS error of each file relative to the RMS of the source
values (over the tensors that both files store in that type), and flags tensors whose types differ.
Used to check `lanternfish quantize` against llama.cpp's `llama-quantize` (closing note of the
foundation issue). Needs: pip install gguf numpy.
"""
import sys
from collections import defaultdict

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def tensors(path):
    reader = GGUFReader(path)
    out = {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)
        out[t.name] = (t.tensor_type.name, values)
    return out


def main():
    source, ours, theirs = (tensors(p) for p in sys.argv[1:4])
    err = defaultdict(lambda: [0.0, 0.0, 0.0, 0])  # ours², theirs², source², tensors
    mismatched = []
    for name, (src_type, src) in source.items():
        our_type, our_values = ours[name]
        their_type, their_values = theirs[name]
        if our_type != their_type:
            mismatched.append(f"{name}: ours {our_type}, theirs {their_type}")
            continue
        if our_type == src_type:
            continue
        acc = err[our_type]
        acc[0] += float(np.sum((our_values - src) ** 2))
        acc[1] += float(np.sum((their_values - src) ** 2))
        acc[2] += float(np.sum(src**2))
        acc[3] += 1
    print(f"{'type':<6} {'tensors':>7} {'ours rel. RMS':>14} {'theirs rel. RMS':>16} {'ours/theirs':>11}")
    for ty, (e_ours, e_theirs, e_src, n) in sorted(err.items()):
        r_ours, r_theirs = np.sqrt(e_ours / e_src), np.sqrt(e_theirs / e_src)
        print(f"{ty:<6} {n:>7} {r_ours:>14.6f} {r_theirs:>16.6f} {r_ours / r_theirs:>11.4f}")
    if mismatched:
        print("type differences:")
        print("\n".join(mismatched))


if __name__ == "__main__":
    main()
