#!/usr/bin/env python3
"""Records greedy continuations of SmolLM2-135M-Instruct Q4_1 from llama.cpp's llama-server.

Run once by hand (never at test time); the output is tests/golden/smollm2/goldens.json, read by
tests/dense_cpu.rs. llama.cpp is the independent implementation of the `llama` architecture that
our CPU reference (src/cpu/dense.rs) is checked against.

    # start the server (see tools/peer/README.md for where the binary comes from)
    cd /tmp/lanternfish-peer/llama-server-bin
    LD_LIBRARY_PATH=. ./llama-server -m <repo>/.cache/models/smollm2-135m-instruct-q4_1.gguf \
        --port 18931 -ngl 0 --device none -c 1024 -t 1 &
    # then
    python3 tools/record_smollm2_goldens.py --port 18931

goldens_f32.json is the same against the activation-exact llama.cpp: the server started on
`tools/gguf_to_f32.py`'s F32 copy of the file with `-ctk f32 -ctv f32 -fa off` added, then
`--out tests/golden/smollm2/goldens_f32.json`.

For each prompt: its token ids from `/tokenize` (`add_special: true`, which for this file adds no
BOS: `tokenizer.ggml.add_bos_token` is false; special tokens such as `<|im_start|>` are parsed),
then `/completion` with exactly those ids, `n_predict` 32, temperature 0, `n_probs` 2
(pre-sampling probabilities: log-softmax of the raw logits), `cache_prompt: false`. Each step
keeps the chosen token and its top-2 (id, logprob).
"""

import argparse
import datetime
import json
import os
import urllib.request

PROMPTS = [
    ("plain", "The capital of France is"),
    ("code", "def fibonacci(n):"),
    (
        "chat",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\nWhat is the tallest mountain in the world?<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
]
N_PREDICT = 32


def post(port, path, body):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=18931)
    ap.add_argument(
        "--out",
        default=os.path.join(
            os.path.dirname(__file__), "..", "tests", "golden", "smollm2", "goldens.json"
        ),
    )
    args = ap.parse_args()
    props = get(args.port, "/props")
    cases = []
    for name, text in PROMPTS:
        ids = [t if isinstance(t, int) else t["id"]
               for t in post(args.port, "/tokenize", {"content": text, "add_special": True})["tokens"]]
        res = post(
            args.port,
            "/completion",
            {
                "prompt": ids,
                "n_predict": N_PREDICT,
                "temperature": 0,
                "n_probs": 2,
                "cache_prompt": False,
                "return_tokens": True,
            },
        )
        steps = []
        for p in res["completion_probabilities"]:
            steps.append(
                {
                    "id": p["id"],
                    "logprob": p["logprob"],
                    "top": [[t["id"], t["logprob"]] for t in p["top_logprobs"]],
                }
            )
        cases.append(
            {
                "name": name,
                "prompt": text,
                "prompt_ids": ids,
                "continuation_ids": res["tokens"],
                "continuation_text": res["content"],
                "steps": steps,
            }
        )
        print(f"{name}: {len(ids)} prompt ids, {len(steps)} steps: {res['content']!r}")
    out = {
        "model": "smollm2-135m-instruct-q4_1.gguf (scripts/fetch-test-models.sh)",
        "llama_server_build": props.get("build_info"),
        "recorded": datetime.date.today().isoformat(),
        "n_predict": N_PREDICT,
        "cases": cases,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
