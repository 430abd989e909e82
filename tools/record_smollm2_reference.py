#!/usr/bin/env python3
"""Records an f64 reference of SmolLM2-135M-Instruct Q4_1 on the perplexity text.

Run once by hand (never at test time); the output is tests/golden/smollm2/reference_f64.json, read
by tests/perplexity.rs and tests/gpu_dense_model.rs. It is what "HF transformers on the file's
dequantized weights" computes (transformers loads a llama GGUF by dequantizing it with gguf-py and
runs the llama forward pass), without torch, which this machine cannot install: the weights are
dequantized by gguf-py (`gguf.quants.dequantize`, PyPI `gguf`), and the forward pass is the plain
llama math in numpy float64 — RMSNorm (eps from the file), RoPE "normal" (adjacent pairs, as
llama.cpp applies it to the GGUF's permuted Q/K weights, base 100000), grouped-query causal
attention (9 heads, 3 KV heads), SwiGLU, tied output. Nothing here comes from our Rust code.

    pip install gguf numpy
    python3 tools/record_smollm2_reference.py

Per 128-token chunk of the perplexity text (tests/golden/smollm2/perplexity.json `tokens`, the
same ids our tokenizer and llama.cpp produce), each from an empty context: for every position the
log-probability of the text's next token and the 8 most likely tokens with their log-probabilities;
and the perplexity over positions 64..126 of each chunk (llama-perplexity's method).
"""

import datetime
import importlib.metadata
import json
import math
import os

import gguf
import numpy as np
from gguf.quants import dequantize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, ".cache/models/smollm2-135m-instruct-q4_1.gguf")
CTX = 128
TOP = 8


def main():
    reader = gguf.GGUFReader(MODEL)
    tensors = {t.name: t for t in reader.tensors}
    field = lambda key: reader.fields[key].contents()
    n_layer = int(field("llama.block_count"))
    n_head = int(field("llama.attention.head_count"))
    n_head_kv = int(field("llama.attention.head_count_kv"))
    eps = float(field("llama.attention.layer_norm_rms_epsilon"))
    base = float(field("llama.rope.freq_base"))

    def weight(name):
        t = tensors[name]
        return dequantize(t.data, t.tensor_type).astype(np.float64)

    embd = weight("token_embd.weight")
    output = weight("output.weight") if "output.weight" in tensors else embd
    hd = embd.shape[1] // n_head

    def forward(ids):
        n = len(ids)
        x = embd[ids]
        angles = np.arange(n)[:, None] * base ** (-np.arange(0, hd, 2) / hd)[None, :]
        cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]

        def rope(v):
            v = v.reshape(n, -1, hd // 2, 2)
            a, b = v[..., 0], v[..., 1]
            return np.stack([a * cos - b * sin, a * sin + b * cos], -1).reshape(n, -1, hd)

        def rms(v, w):
            return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w

        mask = np.triu(np.full((n, n), -np.inf), 1)
        for layer in range(n_layer):
            p = f"blk.{layer}."
            h = rms(x, weight(p + "attn_norm.weight"))
            q = rope((h @ weight(p + "attn_q.weight").T).reshape(n, n_head, hd))
            k = rope((h @ weight(p + "attn_k.weight").T).reshape(n, n_head_kv, hd))
            v = (h @ weight(p + "attn_v.weight").T).reshape(n, n_head_kv, hd)
            o = np.zeros((n, n_head, hd))
            for head in range(n_head):
                kv = head // (n_head // n_head_kv)
                s = q[:, head] @ k[:, kv].T / math.sqrt(hd) + mask
                s = np.exp(s - s.max(-1, keepdims=True))
                o[:, head] = (s / s.sum(-1, keepdims=True)) @ v[:, kv]
            x = x + o.reshape(n, n_head * hd) @ weight(p + "attn_output.weight").T
            h = rms(x, weight(p + "ffn_norm.weight"))
            gate = h @ weight(p + "ffn_gate.weight").T
            up = h @ weight(p + "ffn_up.weight").T
            x = x + (gate / (1 + np.exp(-gate)) * up) @ weight(p + "ffn_down.weight").T
        logits = rms(x, weight("output_norm.weight")) @ output.T
        m = logits.max(-1, keepdims=True)
        return logits - (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))

    golden = json.load(open(os.path.join(REPO, "tests/golden/smollm2/perplexity.json")))
    tokens = golden["tokens"]
    chunks, nll = [], []
    for c in range(len(tokens) // CTX):
        ids = tokens[c * CTX:(c + 1) * CTX]
        logprobs = forward(ids)
        positions = []
        for pos in range(CTX):
            top = np.argsort(-logprobs[pos])[:TOP]
            positions.append({
                "next": float(logprobs[pos, ids[pos + 1]]) if pos + 1 < CTX else None,
                "top": [[int(i), float(logprobs[pos, i])] for i in top],
            })
            if CTX // 2 <= pos < CTX - 1:
                nll.append(-float(logprobs[pos, ids[pos + 1]]))
        chunks.append({"tokens": ids, "positions": positions})
    nll_mean = sum(nll) / len(nll)
    out = {
        "recorded": datetime.date.today().isoformat(),
        "source": f"numpy float64 llama forward pass over weights dequantized by gguf-py "
                  f"{importlib.metadata.version('gguf')} (tools/record_smollm2_reference.py)",
        "ctx": CTX,
        "chunks": chunks,
        "nll_mean": nll_mean,
        "ppl": math.exp(nll_mean),
    }
    path = os.path.join(REPO, "tests/golden/smollm2/reference_f64.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f)
        f.write("\n")
    print(f"f64 reference ppl {out['ppl']:.6f} -> {path}")


if __name__ == "__main__":
    main()
