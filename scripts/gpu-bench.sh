#!/usr/bin/env bash
# The real-GPU measurement recipe of the decode work (issue 15): on a machine with a GPU and no
# network it prints the adapter, writes a V2-Lite-shaped model with `synth` (all 27 layers,
# Q4_K_M), and runs `bench --json` at several depths, with part of the routed experts paged
# (`--expert-cache 50%` and `25%`) with `--sync` (no pipelining) and with `--profile`, then writes one JSON file and one
# markdown table.
#
#   scripts/gpu-bench.sh [--bin PATH] [--out DIR] [--model FILE] [--layers N]
#                        [--depths "512 4096"] [-n TOKENS] [--caches "50% 25%"]
#
# --bin     the lanternfish binary (default target/release/lanternfish; build it first, the
#           device machine has no network to fetch crates)
# --out     where the model, the logs, results.json and results.md go (default gpu-bench-out)
# --model   use this GGUF instead of writing the synthetic one
# --layers  layers of the synthetic V2-Lite (default 27, the real model's; a smaller number
#           makes the recipe fit lavapipe)
# --depths  prompt tokens prefilled before the timed decode: decode speed at each depth
# -n        tokens decoded per run (default 128)
# --caches  expert-cache shares run at the first depth (default "50% 25%")
#
# Each bench run is a separate process, so a failure (out of memory, say) is recorded in its log
# and the table, and the next run still happens.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=target/release/lanternfish
out=gpu-bench-out
model=""
layers=27
depths="512 4096"
n_decode=128
caches="50% 25%"
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --depths) depths=$2; shift 2 ;;
    -n) n_decode=$2; shift 2 ;;
    --caches) caches=$2; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu-bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "gpu-bench.sh: no binary at $bin: cargo build --release first" >&2; exit 1; }
mkdir -p "$out"

echo "== adapter"
"$bin" info --gpu | tee "$out/info-gpu.txt"

if [ -z "$model" ]; then
    model="$out/v2-lite-${layers}l-q4_k_m.gguf"
    if [ ! -s "$model" ]; then
        echo "== writing $model (synth v2-lite, $layers layers, Q4_K_M)"
        start=$SECONDS
        "$bin" synth --preset v2-lite --layers "$layers" --type q4_k_m --seed 1 --out "$model"
        echo "synth took $((SECONDS - start)) s"
    fi
fi
"$bin" info "$model" --json >"$out/model-info.json"

# One bench run: name, then bench's arguments. Its JSON goes to $out/$name.json, stderr to .log.
runs=()
bench() {
    local name=$1
    shift
    echo "== $name: bench $*"
    if "$bin" bench --model "$model" --json "$@" >"$out/$name.json" 2>"$out/$name.log"; then
        runs+=("$name")
    else
        echo "   failed (status $?): see $out/$name.log" >&2
        tail -n 3 "$out/$name.log" >&2 || true
        rm -f "$out/$name.json"
        runs+=("$name")
    fi
}

first_depth=${depths%% *}
for depth in $depths; do
    ctx=$(((depth + n_decode) * 2))
    bench "depth-$depth" -p "$depth" -n "$n_decode" --ctx "$ctx"
done
ctx=$(((first_depth + n_decode) * 2))
for share in $caches; do
    bench "depth-$first_depth-experts-${share%\%}pct" -p "$first_depth" -n "$n_decode" \
        --ctx "$ctx" --expert-cache "$share"
done
bench "depth-$first_depth-sync" -p "$first_depth" -n "$n_decode" --ctx "$ctx" --sync
bench "depth-$first_depth-profile" -p "$first_depth" -n "$n_decode" --ctx "$ctx" --profile

echo "== results"
python3 - "$out" "$model" "${runs[@]}" <<'EOF'
import json, os, sys

out, model, names = sys.argv[1], sys.argv[2], sys.argv[3:]
info = open(os.path.join(out, "info-gpu.txt")).read().strip()
results = {"model": model, "adapter": info, "runs": {}}
fields = [
    ("prefill_tok_s", "prefill tok/s", "{:.1f}"),
    ("decode_tok_s", "decode tok/s", "{:.2f}"),
    ("weight_bytes_per_token", "weight MB/token", None),
    ("achieved_gb_s", "achieved GB/s", "{:.1f}"),
    ("copy_gb_s", "copy GB/s", "{:.1f}"),
    ("roofline_fraction", "roofline", "{:.3f}"),
    ("dispatches_per_token", "dispatches/token", "{:.0f}"),
    ("host_us_per_token", "host µs/token", "{:.0f}"),
    ("submit_us_per_token", "submit µs/token", "{:.0f}"),
]
rows = []
for name in names:
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        results["runs"][name] = None
        rows.append([name] + ["failed"] + [""] * (len(fields) - 1))
        continue
    run = json.load(open(path))
    log = open(os.path.join(out, name + ".log")).read()
    if "profile" in name:
        run["profile_text"] = log
    results["runs"][name] = run
    row = [name]
    for key, _, fmt in fields:
        value = run.get(key)
        if value is None:
            row.append("–")
        elif key == "weight_bytes_per_token":
            row.append("{:.1f}".format(value / 1e6))
        else:
            row.append(fmt.format(value))
    rows.append(row)
json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=1)
header = ["run"] + [label for _, label, _ in fields]
lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
lines += ["| " + " | ".join(row) + " |" for row in rows]
table = "\n".join(lines)
open(os.path.join(out, "results.md"), "w").write(
    "Model: `{}`\n\n```\n{}\n```\n\n{}\n".format(model, info, table)
)
print(table)
EOF
echo "wrote $out/results.json and $out/results.md"
