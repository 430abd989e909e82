#!/usr/bin/env python3
"""Records llama.cpp's teacher-forcing goldens for the synthetic presets of the DeepSeek family
as other labs and the R1 distills ship it (issue 18).

Run once by hand (never at test time); writes tests/golden/families/<preset>.json, read by
tests/model_families.rs. llama.cpp's llama-server (the peer of tools/peer/README.md) is the
independent implementation of `qwen3`, `llama` with llama3 RoPE, and the `deepseek2` files of
Kimi-K2 (384 experts, top-8), GLM-4.7-Flash (dn + dr = dv, an MTP block after the trunk) and
Mistral Large 3 (query temperature, softmax gating with top-2-sum groups), and `deepseek32`
(DeepSeek-V3.2: the lightning indexer; its top_k of 64 makes the 700-id case sparse).

    cargo build --bin lanternfish
    python3 tools/record_family_goldens.py --lanternfish target/debug/lanternfish \
        --server /tmp/lanternfish-peer/llama-server-bin

For each preset: `lanternfish synth --preset P --type f32 --seed 7` (the
test writes the same file with the library), then llama-server on the CPU with F32 weights and an
f32 K/V cache, flash attention off (`-ctk f32 -ctv f32 -fa off`): nothing is quantized, so both
sides compute the same f32 function. Two cases per preset:

- "text": `/tokenize` of a short code prompt (`add_special: true`), 24 greedy steps;
- "long": 700 token ids from a fixed linear congruential sequence over [100, 4000), 16 greedy
  steps: positions past 700, where YaRN's and llama3's frequency changes have turned the slow
  pairs by a visible angle.

Each `/completion` has `n_probs` 8 (llama-server's log-softmax of the raw logits, before any
sampler) and the grammar `root ::= [a-z ]*` (random weights emit bytes that are not UTF-8, which
the server refuses to return; the grammar changes which token is chosen, not the recorded
probabilities). Each step keeps the chosen token and the top 8 (id, logprob).
"""

import argparse
import datetime
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

PRESETS = ["r1-qwen3", "r1-llama", "kimi-k2", "glm-4.7-flash", "mistral-large-3", "v3.2"]
SEED = 7
TOP = 8


def post(port, path, body):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def long_ids(n):
    x, out = 12345, []
    for _ in range(n):
        x = (x * 1103515245 + 12345) % (1 << 31)
        out.append(100 + x % 3900)
    return out


def completion(port, ids, n_predict):
    res = post(
        port,
        "/completion",
        {
            "prompt": ids,
            "n_predict": n_predict,
            "temperature": 0,
            "n_probs": TOP,
            "cache_prompt": False,
            "return_tokens": True,
            "grammar": "root ::= [a-z ]*",
        },
    )
    steps = [
        {
            "id": p["id"],
            "logprob": p["logprob"],
            "top": [[t["id"], t["logprob"]] for t in p["top_logprobs"]],
        }
        for p in res["completion_probabilities"]
    ]
    return res["tokens"], steps


def record(preset, lanternfish, server_dir, out_dir):
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, f"{preset}.gguf")
        subprocess.run(
            [lanternfish, "synth", "--preset", preset, "--type", "f32", "--seed", str(SEED),
             "--out", model],
            check=True,
        )
        port = free_port()
        env = dict(os.environ, LD_LIBRARY_PATH=server_dir)
        server = subprocess.Popen(
            [os.path.join(server_dir, "llama-server"), "-m", model, "--port", str(port),
             "-ngl", "0", "--device", "none", "-c", "2048", "-t", "2",
             "-ctk", "f32", "-ctv", "f32", "-fa", "off"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(120):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                        break
                except OSError:
                    time.sleep(0.5)
            props = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/props").read())
            text = "def fibonacci(n):\n"
            text_ids = [
                t if isinstance(t, int) else t["id"]
                for t in post(port, "/tokenize", {"content": text, "add_special": True})["tokens"]
            ]
            cases = []
            for name, ids, n_predict in [("text", text_ids, 24), ("long", long_ids(700), 16)]:
                continuation, steps = completion(port, ids, n_predict)
                cases.append({"name": name, "prompt_ids": ids, "continuation_ids": continuation,
                              "steps": steps})
                print(f"{preset} {name}: {len(ids)} prompt ids, {len(steps)} steps")
        finally:
            server.terminate()
            server.wait()
    out = {
        "preset": preset,
        "synth": f"lanternfish synth --preset {preset} --type f32 --seed {SEED}",
        "llama_server_build": props.get("build_info"),
        "server_args": "-ngl 0 --device none -c 2048 -ctk f32 -ctv f32 -fa off",
        "recorded": datetime.date.today().isoformat(),
        "cases": cases,
    }
    with open(os.path.join(out_dir, f"{preset}.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lanternfish", default="target/debug/lanternfish")
    ap.add_argument("--server", default="/tmp/lanternfish-peer/llama-server-bin")
    ap.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "families"),
    )
    ap.add_argument("presets", nargs="*", default=PRESETS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for preset in args.presets:
        record(preset, os.path.abspath(args.lanternfish), args.server, args.out)


if __name__ == "__main__":
    main()
