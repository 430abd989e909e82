#!/usr/bin/env python3
"""Records how Mistral's Tekken pattern splits a corpus (tests/golden/tokenizer/tekken-pieces.json).

The pattern is the tiktoken `pat_str` shipped in mistral-common's tekken.json
(`pip download --no-deps mistral-common`, `mistral_common/data/tekken_240911.json`,
`config.pattern`); the splitting is Python's `regex` module (`regex.findall`), an implementation
independent of the Rust `fancy-regex` engine our pre-tokenizer runs on. Read by the
`tekken_splits_as_the_reference_pattern` test in src/tokenizer/pre.rs.

    python3 tools/make_tekken_pieces.py PATH/TO/tekken_240911.json
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
]


def main():
    source = Path(sys.argv[1])
    pattern = json.loads(source.read_text())["config"]["pattern"]
    cases = [{"text": t, "pieces": regex.findall(pattern, t)} for t in CORPUS]
    out = {
        "source": f"mistral-common {source.name} config.pattern, split by Python regex "
        f"{regex.__version__} findall",
        "pattern": pattern,
        "cases": cases,
    }
    dest = Path(__file__).resolve().parent.parent / "tests/golden/tokenizer/tekken-pieces.json"
    dest.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {dest}: {len(cases)} cases")


if __name__ == "__main__":
    main()
