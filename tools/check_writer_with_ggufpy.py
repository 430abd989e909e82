#!/usr/bin/env python3
"""Checks that files written by lanternfish's GGUF writer are read correctly by gguf-py.

gguf-py is the reference Python reader of the GGUF format (PyPI package `gguf`, from
llama.cpp's gguf-py/). This script

1. runs the ignored test `write_ggufpy_fixture` in tests/gguf_roundtrip.rs, which writes, with
   `GgufWriter`, a file holding every metadata value type (arrays of each, empty arrays, string
   arrays, unicode), seven tensors of F32, F16, Q8_0, Q4_K, Q6_K and MXFP4 (an empty one
   included) at alignment 64, the same model split into three parts, and a JSON manifest of what
   the writer was given;
2. opens every file with `gguf.GGUFReader` and asserts that keys, value types, element types,
   values (bit-exact for floats), tensor names, types, shapes and bytes all match the manifest,
   that tensors sit at multiples of the alignment, and that the split parts carry llama.cpp's
   `split.*` keys with its types and together hold exactly the tensors of the unsplit file.

Usage:  pip install gguf numpy
        python3 tools/check_writer_with_ggufpy.py            # builds and writes the fixture
        python3 tools/check_writer_with_ggufpy.py --dir D    # checks files already written to D
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf
from gguf import GGUFReader, GGUFValueType

REPO = Path(__file__).resolve().parent.parent

# struct format of each fixed-size GGUF value type, by type id.
PACK = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<I", 7: "<?", 10: "<Q", 11: "<q", 12: "<Q"}
STRING, ARRAY = 8, 9


def write_fixture(out_dir: Path) -> None:
    env = dict(os.environ, LANTERNFISH_GGUFPY_DIR=str(out_dir))
    cmd = ["cargo", "test", "--test", "gguf_roundtrip", "--", "--ignored", "--exact", "write_ggufpy_fixture"]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


def scalar_bytes(type_id: int, value) -> bytes:
    """The little-endian bytes of one scalar from the manifest (floats are given as bit patterns)."""
    if type_id == STRING:
        return value.encode("utf-8")
    if type_id == 6:
        return struct.pack("<I", value["f32_bits"])
    if type_id == 12:
        return struct.pack("<Q", value["f64_bits"])
    return struct.pack(PACK[type_id], value)


def plain(value):
    """The manifest value as gguf-py's `contents()` shows it (floats as Python floats)."""
    if isinstance(value, dict) and "f32_bits" in value:
        return struct.unpack("<f", struct.pack("<I", value["f32_bits"]))[0]
    if isinstance(value, dict) and "f64_bits" in value:
        return struct.unpack("<d", struct.pack("<Q", value["f64_bits"]))[0]
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def same(a, b) -> bool:
    """Equality that treats NaN as equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def check_metadata(reader: GGUFReader, expected: list, where: str) -> None:
    # gguf-py lists the three header fields (GGUF.version, GGUF.tensor_count, GGUF.kv_count) too.
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    assert keys == [m["key"] for m in expected], f"{where}: keys {keys}"
    for m in expected:
        key, type_id, elem, value = m["key"], m["type_id"], m["elem_type_id"], m["value"]
        field = reader.fields[key]
        assert field.types[0] == GGUFValueType(type_id), f"{where} {key}: type {field.types}"
        if type_id == ARRAY:
            # parts: key length, key, value type, element type, count, elements...
            assert int(field.parts[3][0]) == elem, f"{where} {key}: element type {field.parts[3]}"
            assert int(field.parts[4][0]) == len(value), f"{where} {key}: length {field.parts[4]}"
            if value:
                assert field.types[1] == GGUFValueType(elem), f"{where} {key}: {field.types}"
            got = b"".join(field.parts[i].tobytes() for i in field.data)
            want = b"".join(scalar_bytes(elem, v) for v in value)
        else:
            got = field.parts[field.data[0]].tobytes()
            want = scalar_bytes(type_id, value)
        assert got == want, f"{where} {key}: bytes {got!r} != {want!r}"
        assert same(field.contents(), plain(value)), f"{where} {key}: {field.contents()!r} != {plain(value)!r}"


def check_tensor(t, want: dict, alignment: int, where: str) -> None:
    assert t.tensor_type == gguf.GGMLQuantizationType(want["type_id"]), f"{where} {t.name}: {t.tensor_type}"
    assert t.tensor_type.name == want["type"], f"{where} {t.name}: {t.tensor_type.name}"
    assert [int(d) for d in t.shape] == want["shape"], f"{where} {t.name}: shape {t.shape}"
    assert t.data.tobytes() == bytes.fromhex(want["hex"]), f"{where} {t.name}: data differ"
    assert t.n_bytes == len(want["hex"]) // 2, f"{where} {t.name}: n_bytes {t.n_bytes}"
    assert t.data_offset % alignment == 0, f"{where} {t.name}: offset {t.data_offset}"


def check(dir_: Path) -> None:
    manifest = json.loads((dir_ / "manifest.json").read_text())
    alignment = manifest["alignment"]
    by_name = {t["name"]: t for t in manifest["tensors"]}

    reader = GGUFReader(dir_ / manifest["file"])
    assert reader.alignment == alignment, reader.alignment
    assert reader.fields["GGUF.version"].contents() == 3
    check_metadata(reader, manifest["metadata"], manifest["file"])
    assert [t.name for t in reader.tensors] == list(by_name), [t.name for t in reader.tensors]
    for t in reader.tensors:
        check_tensor(t, by_name[t.name], alignment, manifest["file"])
    types = sorted({m["type_id"] for m in manifest["metadata"]})
    elems = sorted({m["elem_type_id"] for m in manifest["metadata"] if m["elem_type_id"] is not None})
    print(f"{manifest['file']}: {len(manifest['metadata'])} keys (value types {types}, array element "
          f"types {elems}), {len(reader.tensors)} tensors "
          f"({', '.join(sorted({t.tensor_type.name for t in reader.tensors}))}), alignment {reader.alignment}: OK")

    seen = []
    n_parts = len(manifest["parts"])
    for i, part in enumerate(manifest["parts"]):
        r = GGUFReader(dir_ / part["file"])
        check_metadata(r, part["metadata"], part["file"])
        assert r.fields["split.no"].types == [GGUFValueType.UINT16] and r.fields["split.no"].contents() == i
        assert r.fields["split.count"].types == [GGUFValueType.UINT16] and r.fields["split.count"].contents() == n_parts
        count = r.fields["split.tensors.count"]
        assert count.types == [GGUFValueType.INT32] and count.contents() == len(by_name)
        assert r.alignment == alignment, r.alignment
        for t in r.tensors:
            check_tensor(t, by_name[t.name], alignment, part["file"])
            seen.append(t.name)
        print(f"{part['file']}: {len(part['metadata'])} keys, {len(r.tensors)} tensors: OK")
    assert seen == list(by_name), f"split parts hold {seen}"
    print(f"gguf-py {gguf_version()} reads every file written by GgufWriter: OK")


def gguf_version() -> str:
    try:
        from importlib.metadata import version

        return version("gguf")
    except Exception:  # noqa: BLE001 - only used for the report line
        return "(unknown version)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="check files already written here instead of running cargo")
    args = parser.parse_args()
    if args.dir:
        check(args.dir)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write_fixture(Path(tmp))
        check(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
