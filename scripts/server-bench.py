#!/usr/bin/env python3
"""Time-to-first-token and streaming decode speed through `lanternfish serve`, to set beside
`lanternfish bench -p P -n N` on the same model (BENCHMARKS.md).

    lanternfish serve --model M.gguf --port 8080 &
    scripts/server-bench.py http://127.0.0.1:8080 -p 128 -n 32 --runs 5

Each run streams POST /v1/completions with a prompt of exactly P random token ids (a new prompt
per run, so no KV prefix is reused) and max_tokens N at temperature 0. TTFT is the time from
sending the request to the first text chunk (prefill + one decode step + HTTP); decode tok/s is
(tokens - 1) / (last chunk - first chunk). Prints one JSON object with the medians. Standard
library only.
"""

import argparse
import http.client
import json
import random
import statistics
import time
import urllib.parse


def run_once(url, tokens, n):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    body = json.dumps(
        {
            "prompt": tokens,
            "max_tokens": n,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    started = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status}: {response.read()[:500]!r}")
    first = last = None
    usage = None
    for raw in response:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            usage = chunk["usage"]
        if chunk.get("choices") and chunk["choices"][0].get("text"):
            now = time.perf_counter()
            first = first or now
            last = now
    conn.close()
    generated = usage["completion_tokens"] if usage else 0
    ttft = (first - started) if first else float("nan")
    decode = (generated - 1) / (last - first) if first and last and last > first else float("nan")
    return ttft, decode, generated


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8080")
    parser.add_argument("-p", type=int, default=128, help="prompt tokens")
    parser.add_argument("-n", type=int, default=32, help="tokens to generate")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=4000, help="draw prompt ids below this")
    args = parser.parse_args()
    rng = random.Random(1)
    # One warm-up run (pipelines, allocations), not counted.
    run_once(args.url, [rng.randrange(3, args.vocab) for _ in range(args.p)], args.n)
    ttfts, decodes, counts = [], [], []
    for _ in range(args.runs):
        ttft, decode, generated = run_once(args.url, [rng.randrange(3, args.vocab) for _ in range(args.p)], args.n)
        ttfts.append(ttft)
        decodes.append(decode)
        counts.append(generated)
    print(
        json.dumps(
            {
                "prompt_tokens": args.p,
                "max_tokens": args.n,
                "runs": args.runs,
                "generated_tokens": counts,
                "ttft_ms_median": round(statistics.median(ttfts) * 1000, 1),
                "decode_tok_s_median": round(statistics.median(decodes), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
