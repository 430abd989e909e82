#!/usr/bin/env python3
"""Render the chat-template goldens in tests/golden/chat_template/goldens.json.

Each template is rendered for each conversation exactly as Hugging Face transformers'
`apply_chat_template` does: `jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True)` with the loop-controls extension, a `tojson` filter that is `json.dumps`
(HTML characters not escaped, non-ASCII kept), the globals `raise_exception` (raises
`TemplateError`) and `strftime_now`, rendered with `messages`, `tools` (None when absent),
`documents=None`, `add_generation_prompt` and the special-token strings, plus any extra keyword
arguments. `strftime_now` is pinned to a fixed UTC instant so the goldens are reproducible.

Messages are written as the Rust `ChatMessage` serializes: keys in the order role, content
(always present, null when absent), reasoning_content, tool_calls, tool_call_id, name, each
optional key only when set. Objects inside tool arguments and tool schemas have their keys in
sorted order, because serde_json (without its preserve_order feature) sorts them on the Rust side.

Usage: pip install jinja2 && python3 tools/make_template_goldens.py
       (--check-transformers also renders through transformers.apply_chat_template, when it is
       installed (4.x: 5.x drops None-valued message keys, see the README), and fails on any
       difference.)
"""

import argparse
import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "golden" / "chat_template" / "goldens.json"

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
NOW = 1738328709  # 2025-01-31 13:05:09 UTC

TEMPLATES = {
    "deepseek-v2-chat": "src/chat_template/templates/deepseek-v2-chat.jinja",
    "deepseek-v3": "src/chat_template/templates/deepseek-v3.jinja",
    "deepseek-r1": "src/chat_template/templates/deepseek-r1.jinja",
    "chatml": "src/chat_template/templates/chatml.jinja",
    "deepseek-v3.1-llamacpp": "tests/golden/chat_template/deepseek-v3.1-llamacpp.jinja",
    "features": "tests/golden/chat_template/features.jinja",
}


def msg(role, content, reasoning_content=None, tool_calls=None, tool_call_id=None, name=None, **extra):
    """A message dict with the keys in the order the Rust ChatMessage serializes them (further
    keys last, sorted, as its flattened serde_json map writes them)."""
    m = {"role": role, "content": content}
    if reasoning_content is not None:
        m["reasoning_content"] = reasoning_content
    if tool_calls:
        m["tool_calls"] = tool_calls
    if tool_call_id is not None:
        m["tool_call_id"] = tool_call_id
    if name is not None:
        m["name"] = name
    m.update(sorted(extra.items()))
    return m


def call(call_id, name, arguments):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def case(name, messages, add_generation_prompt=True, tools=None, extra=None):
    return {
        "name": name,
        "messages": messages,
        "add_generation_prompt": add_generation_prompt,
        "tools": tools,
        "extra": extra or {},
    }


SYSTEM = "You are a helpful assistant."
WEATHER_TOOL = {
    "function": {
        "description": "Current weather for a city",
        "name": "get_weather",
        "parameters": {
            "properties": {"city": {"description": "City name, e.g. Zürich", "type": "string"}},
            "required": ["city"],
            "type": "object",
        },
    },
    "type": "function",
}

CASES = [
    case("single-user", [msg("user", "Hello")]),
    case("single-user-no-generation-prompt", [msg("user", "Hello")], add_generation_prompt=False),
    case("system-and-user", [msg("system", SYSTEM), msg("user", "What is 2+2?")]),
    case(
        "two-system-messages",
        [msg("system", SYSTEM), msg("system", "Answer briefly."), msg("user", "Hi")],
    ),
    case(
        "multi-turn",
        [
            msg("system", SYSTEM),
            msg("user", "Hello"),
            msg("assistant", "Hi there"),
            msg("user", "Who are you"),
            msg("assistant", "   I am an assistant   "),
            msg("user", "Another question"),
        ],
    ),
    case(
        "multi-turn-without-system-ending-with-assistant",
        [msg("user", "Hello"), msg("assistant", "Hi!"), msg("user", "Bye"), msg("assistant", "Goodbye.")],
        add_generation_prompt=False,
    ),
    case(
        "reasoning",
        [
            msg("user", "What is 2+2?"),
            msg(
                "assistant",
                "<think>\nThe user asks for 2+2. That is 4.\n</think>\n\nIt is 4.",
                reasoning_content="The user asks for 2+2. That is 4.",
            ),
            msg("user", "And 3+3?"),
        ],
    ),
    case(
        "reasoning-last-turn",
        [msg("user", "Think first."), msg("assistant", "<think>hmm</think>Done.")],
        add_generation_prompt=False,
    ),
    case(
        "tool-call-and-result",
        [
            msg("system", SYSTEM),
            msg("user", "Weather in Paris?"),
            msg("assistant", None, tool_calls=[call("call_1", "get_weather", '{"city": "Paris"}')]),
            msg("tool", '{"temperature": 21, "unit": "C"}', tool_call_id="call_1"),
            msg("assistant", "It is 21 °C in Paris."),
            msg("user", "Thanks!"),
        ],
        tools=[WEATHER_TOOL],
    ),
    case(
        "two-tool-calls-pending-results",
        [
            msg("user", "Weather in Paris and Tokyo?"),
            msg(
                "assistant",
                None,
                tool_calls=[
                    call("call_1", "get_weather", '{"city": "Paris"}'),
                    call("call_2", "get_weather", '{"city": "東京"}'),
                ],
            ),
            msg("tool", "21", tool_call_id="call_1"),
            msg("tool", "18", tool_call_id="call_2"),
        ],
    ),
    case(
        "tool-call-with-content",
        [
            msg("user", "Weather in Oslo?"),
            msg("assistant", "Let me check.", tool_calls=[call("call_9", "get_weather", '{"city": "Oslo"}')]),
            msg("tool", "-3", tool_call_id="call_9", name="get_weather"),
            msg("assistant", "It is -3 °C."),
        ],
        add_generation_prompt=False,
    ),
    case(
        "tool-arguments-as-object",
        [
            msg("user", "Weather?"),
            msg("assistant", None, tool_calls=[call("call_1", "get_weather", {"city": "Paris", "days": 2})]),
        ],
    ),
    case(
        "unicode",
        [
            msg("system", "Réponds en français. 用中文回答也可以。"),
            msg("user", "你好，世界！🌍🚀 こんにちは 안녕하세요 — café naïve ‘quotes’ “double”"),
            msg("assistant", "😀 Ça va? Family: 👨‍👩‍👧 flag: 🇫🇷 math: ∀x∈ℝ"),
            msg("user", "Ünïcödé\u3000ideographic space and\u00a0nbsp"),
        ],
    ),
    case(
        "jinja-like-content",
        [
            msg("system", "{{ bos_token }} is not expanded; neither is {% if true %}this{% endif %}"),
            msg("user", "Print {{ '{{' }} and {# a comment #} and {%- raw %} literally"),
            msg("assistant", "}} {{ {% %} #}"),
            msg("user", "ok"),
        ],
    ),
    case(
        "whitespace-and-empty-content",
        [msg("user", ""), msg("assistant", "\n"), msg("user", "  padded\ttext  \n\nend\r\nwindows")],
    ),
    case("system-after-user", [msg("user", "Hi"), msg("system", "Late system prompt"), msg("user", "Again")]),
    case("extra-template-variable", [msg("user", "Hi")], extra={"enable_thinking": False}),
    case(
        "thinking-enabled",
        [
            msg("user", "2+2?"),
            msg("assistant", "<think>easy</think>4", reasoning_content="easy"),
            msg("user", "3+3?"),
        ],
        extra={"thinking": True},
    ),
    case(
        "prefix-continuation",
        [msg("user", "Write a haiku."), msg("assistant", "Autumn moonlight", prefix=True)],
        add_generation_prompt=False,
        extra={"thinking": True},
    ),
]


def environment():
    """The environment transformers builds in `_compile_jinja_template` (its AssistantTracker
    extension only adds the `{% generation %}` tag, which none of these templates use)."""

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.fromtimestamp(NOW, timezone.utc).strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, c):
    try:
        template = env.from_string(source)
        text = template.render(
            messages=c["messages"],
            tools=c["tools"],
            documents=None,
            add_generation_prompt=c["add_generation_prompt"],
            bos_token=BOS,
            eos_token=EOS,
            **c["extra"],
        )
        return {"output": text}
    except Exception as e:  # the golden records that (and how) Python fails
        return {"error": f"{type(e).__name__}: {e}"}


def pin_transformers_clock():
    """Makes transformers' `strftime_now` (which calls `datetime.now()`) see NOW, if it can."""
    try:
        import transformers.utils.chat_template_utils as ctu
    except ImportError:
        return False
    if getattr(ctu, "datetime", None) is not datetime:
        return False

    class PinnedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(NOW, timezone.utc).replace(tzinfo=None)

    ctu.datetime = PinnedDatetime
    return True


def check_transformers(sources, expected):
    """Cross-checks the replica above against transformers itself, if it is installed."""
    from transformers import PreTrainedTokenizerFast

    tok_dir = ROOT.parent / "shared" / "tokenizers" / "deepseek-v3"
    if not tok_dir.is_dir():
        tok_dir = Path("/work/shared/tokenizers/deepseek-v3")
    tok = PreTrainedTokenizerFast.from_pretrained(str(tok_dir))
    assert tok.bos_token == BOS and tok.eos_token == EOS
    pinned = pin_transformers_clock()
    checked = 0
    for name, source in sources.items():
        if "strftime_now" in source and not pinned:
            continue
        for c in CASES:
            want = expected[name][c["name"]]
            try:
                got = {
                    "output": tok.apply_chat_template(
                        c["messages"],
                        tools=c["tools"],
                        add_generation_prompt=c["add_generation_prompt"],
                        tokenize=False,
                        chat_template=source,
                        **c["extra"],
                    )
                }
            except Exception as e:
                got = {"error": f"{type(e).__name__}: {e}"}
            same = got == want or ("error" in got and "error" in want)
            if not same:
                sys.exit(f"transformers differs for {name}/{c['name']}:\n{got!r}\n{want!r}")
            checked += 1
    import transformers

    print(f"transformers {transformers.__version__} agrees on {checked} renders")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check-transformers", action="store_true")
    args = parser.parse_args()

    env = environment()
    sources = {name: (ROOT / path).read_text(encoding="utf-8") for name, path in TEMPLATES.items()}
    expected = {name: {c["name"]: render(env, source, c) for c in CASES} for name, source in sources.items()}
    golden = {
        "generator": "tools/make_template_goldens.py",
        "jinja2_version": jinja2.__version__,
        "python_version": sys.version.split()[0],
        "bos_token": BOS,
        "eos_token": EOS,
        "now_unix": NOW,
        "templates": {
            name: {
                "path": TEMPLATES[name],
                "sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
                "source": source,
            }
            for name, source in sources.items()
        },
        "cases": CASES,
        "expected": expected,
    }
    OUT.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    n_err = sum("error" in r for t in expected.values() for r in t.values())
    print(f"wrote {OUT.relative_to(ROOT)}: {len(sources)} templates x {len(CASES)} cases ({n_err} errors)")
    if args.check_transformers:
        check_transformers(sources, expected)


if __name__ == "__main__":
    main()
