#!/usr/bin/env python3
"""Compares `lanternfish tensor FILE NAME --out X.npy` with gguf-py's dequantization, whole
tensors, on the real files that scripts/fetch-test-models.sh downloads.

    scripts/fetch-test-models.sh
    pip install gguf numpy
    cargo build --bin lanternfish
    python3 tools/check_tensor_vs_ggufpy.py [--sample N] [--bin target/debug/lanternfish]

For every tensor (or N per type and file with --sample N: always including the largest one) it
runs the CLI, loads the .npy (shape outermost first, i.e. GGUF `ne` reversed; float32), and checks
shape, dtype and max |ours - gguf-py| <= 1e-5 * max|x| (x: gguf-py's values). It prints one line per
failure and a table per file and type; the exit status is 1 if anything failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import gguf
    from gguf.quants import dequantize
except ImportError:  # pragma: no cover
    sys.exit("needs gguf-py and numpy: pip install gguf numpy")

REPO = Path(__file__).resolve().parent.parent
FILES = ["smollm2-135m-instruct-q4_1.gguf", "gemma3-270m-q4_k_m.gguf"]
REL_TOL = 1e-5


def pick(tensors, sample: int):
    if sample <= 0:
        return list(tensors)
    by_type: dict[str, list] = {}
    for t in tensors:
        by_type.setdefault(t.tensor_type.name, []).append(t)
    chosen = []
    for ts in by_type.values():
        largest = max(ts, key=lambda t: int(t.n_elements))
        rest = [t for t in ts if t is not largest]
        step = max(1, len(rest) // max(1, sample - 1))
        chosen.append(largest)
        chosen.extend(rest[::step][: sample - 1])
    order = {t.name: i for i, t in enumerate(tensors)}
    return sorted(chosen, key=lambda t: order[t.name])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models",
        type=Path,
        default=Path(os.environ.get("LANTERNFISH_TEST_MODELS", REPO / ".cache" / "models")),
    )
    ap.add_argument("--bin", type=Path, default=None, help="lanternfish binary (default: target/debug)")
    ap.add_argument("--sample", type=int, default=0, help="tensors per type and file (0: all)")
    ap.add_argument("files", nargs="*", default=FILES)
    args = ap.parse_args()

    binary = args.bin
    if binary is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        binary = target / "debug" / "lanternfish"
    if not binary.is_file():
        sys.exit(f"{binary} not found: cargo build --bin lanternfish (or pass --bin)")

    failures = 0
    # (file, type) -> [tensors, elements, bit-identical elements, worst err / max|x|, failed]
    table: dict[tuple[str, str], list] = {}
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="lanternfish-check-") as tmp:
        out = Path(tmp) / "t.npy"
        for file_name in args.files:
            path = args.models / file_name
            if not path.is_file():
                sys.exit(f"{path} is missing: run scripts/fetch-test-models.sh")
            reader = gguf.GGUFReader(path)
            chosen = pick(reader.tensors, args.sample)
            print(f"{file_name}: {len(chosen)} of {len(reader.tensors)} tensors", file=sys.stderr)
            for t in chosen:
                ty = t.tensor_type.name
                row = table.setdefault((file_name, ty), [0, 0, 0, 0.0, 0])
                want_shape = tuple(int(d) for d in reversed(t.shape))
                proc = subprocess.run(
                    [str(binary), "tensor", str(path), t.name, "--out", str(out)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                problem = None
                if proc.returncode != 0:
                    problem = f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
                else:
                    ours = np.load(out)
                    want = dequantize(t.data, t.tensor_type)
                    want = np.asarray(want, dtype=np.float32).reshape(want_shape)
                    if ours.dtype != np.float32:
                        problem = f"dtype {ours.dtype}, expected float32"
                    elif ours.shape != want_shape:
                        problem = f"shape {ours.shape}, expected {want_shape}"
                    else:
                        max_abs = float(np.max(np.abs(want))) if want.size else 0.0
                        err = float(np.max(np.abs(ours.astype(np.float64) - want))) if want.size else 0.0
                        rel = err / max_abs if max_abs > 0 else err
                        row[1] += want.size
                        row[2] += int(np.count_nonzero(ours.view(np.uint32) == want.view(np.uint32)))
                        row[3] = max(row[3], rel)
                        if not np.all(np.isfinite(ours)) or err > REL_TOL * max_abs:
                            problem = f"max error {err:.3e} > {REL_TOL:g} * max|x| ({max_abs:.3e})"
                    del ours
                row[0] += 1
                if problem:
                    row[4] += 1
                    failures += 1
                    print(f"FAIL {file_name} {t.name} ({ty} {list(map(int, t.shape))}): {problem}")
                out.unlink(missing_ok=True)

    print()
    print(f"{'file':34} {'type':5} {'tensors':>7} {'elements':>12} {'bit-identical':>14} {'max err/max|x|':>15} result")
    for (file_name, ty), (n, elems, same, rel, failed) in sorted(table.items()):
        result = "ok" if failed == 0 else f"{failed} FAILED"
        print(f"{file_name:34} {ty:5} {n:7} {elems:12} {same:14} {rel:15.3e} {result}")
    total = sum(r[0] for r in table.values())
    print(f"\n{total - failures} passed, {failures} failed ({time.time() - t_start:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
