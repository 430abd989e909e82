#!/usr/bin/env python3
"""Records how the tiktoken-style pre-tokenizers split a corpus
(tests/golden/tokenizer/pretokenizer-pieces.json), for the tokenizers that ship no HF
tokenizer.json:

- `tekken` (Mistral): the `pat_str` in mistral-common's tekken.json
  (`pip download --no-deps mistral-common`, `mistral_common/data/tekken_240911.json`,
  `config.pattern`), read from the file;
- `kimi-k2` (Moonshot): the `pat_str` of `tokenization_kimi.py` in the Kimi-K2 model repositories
  (a fact written out below: eight alternatives, the letter classes intersected with "not Han",
  which Python's `regex` runs in its V1 mode and tiktoken's fancy-regex natively).

The splitting is Python's `regex` module (`regex.findall`), an implementation independent of
the Rust `fancy-regex` engine our pre-tokenizer runs on. Read by the
`tiktoken_patterns_split_as_the_reference` test in src/tokenizer/pre.rs.

    python3 tools/make_pretokenizer_pieces.py PATH/TO/tekken_240911.json
"""

import json
import sys
from pathlib import Path

import regex

CORPUS = [
    "Hello world",
    "HelloWorld camelCase XMLHttpRequest iPhone",
    "It's, don't; WE'LL they've I'm",
    "path/to/file.rs and a//b, x = y/2;",
    "1234567 12.5% 3,000",
    "naïve café Ünïcödé ÉCOLE Straße",
    "Ελληνικά Русский текст",
    "中文字符和日本語のテキスト한국어",
    "fn main() {\n    println!(\"{}\", x);\n}\n",
    "  leading and trailing  \n\n\t tabs\t\there ",
    "emoji 🦀🚀 and symbols ©®™ — “quotes”",
    "MixedCASEWords and ALLCAPS followed byLower",
    "混合English和中文text，标点！",
    "I'LL WE'VE They'D",
]


KIMI_K2 = "|".join([
    r"""[\p{Han}]+""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])


def record(name, pattern, source):
    cases = [
        {"text": t, "pieces": regex.findall(pattern, t, flags=regex.V1)} for t in CORPUS
    ]
    return {
        "source": f"{source}, split by Python regex {regex.__version__} findall (V1)",
        "pattern": pattern,
        "cases": cases,
    }


def main():
    source = Path(sys.argv[1])
    tekken = json.loads(source.read_text())["config"]["pattern"]
    out = {
        "tekken": record("tekken", tekken, f"mistral-common {source.name} config.pattern"),
        "kimi-k2": record("kimi-k2", KIMI_K2, "Kimi-K2 tokenization_kimi.py pat_str"),
    }
    dest = Path(__file__).resolve().parent.parent / "tests/golden/tokenizer/pretokenizer-pieces.json"
    dest.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {dest}: {len(CORPUS)} cases per pattern")


if __name__ == "__main__":
    main()
