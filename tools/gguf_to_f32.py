#!/usr/bin/env python3
"""Writes an F32 GGUF that holds exactly the dequantized weights of a quantized GGUF.

Used once, by hand, to record the activation-exact llama.cpp oracle of
tests/golden/smollm2/perplexity_2048_f32.json: with F32 weights llama.cpp's CPU backend multiplies in
f32 instead of quantizing activations to 8 bits, so it computes what our engine computes on the
quantized file. Every metadata key (tokenizer arrays included) is copied unchanged except
`general.file_type`, which becomes 0 (all F32). Dequantization is gguf-py's (PyPI `gguf` 0.19.0).

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf==0.19.0 numpy
    /tmp/gguf-venv/bin/python tools/gguf_to_f32.py MODEL.gguf MODEL-f32.gguf
"""

import sys

import gguf
import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize

# Written by GGUFWriter itself.
SKIP = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture"}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gguf_to_f32.py IN.gguf OUT.gguf")
    src, dst = sys.argv[1], sys.argv[2]
    reader = GGUFReader(src)
    writer = GGUFWriter(dst, reader.fields["general.architecture"].contents())
    for name, field in reader.fields.items():
        if name in SKIP:
            continue
        if name == "general.file_type":
            writer.add_uint32(name, 0)
            continue
        vtype = field.types[0]
        if vtype == GGUFValueType.ARRAY:
            writer.add_key_value(name, field.contents(), vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(name, field.contents(), vtype)
    for tensor in reader.tensors:
        values = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        values = values.reshape(tuple(int(n) for n in reversed(tensor.shape)))
        writer.add_tensor(tensor.name, values, raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
