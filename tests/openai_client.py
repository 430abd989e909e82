"""The real `openai` Python client against `lanternfish serve` (run by tests/server.rs).

    python tests/openai_client.py BASE_URL THINKING_BASE_URL

BASE_URL serves the tiny model without a key; THINKING_BASE_URL serves it with the DeepSeek-R1
template (which opens a <think> block) and the API key "k". Exits non-zero on the first failure.
"""

import sys

import openai
from openai import OpenAI

base, thinking_base = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=120)

# Models.
models = client.models.list()
ids = [m.id for m in models.data]
assert ids == ["tiny-v3-Q4_K_M"], ids
model = ids[0]

messages = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello."},
]

# Chat, not streamed.
r = client.chat.completions.create(model=model, messages=messages, max_tokens=5, temperature=0, seed=1)
choice = r.choices[0]
assert choice.message.role == "assistant"
assert isinstance(choice.message.content, str)
assert choice.finish_reason in ("stop", "length"), choice.finish_reason
assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens <= 5
assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

# The same, streamed, with usage: greedy decoding gives the same text.
stream = client.chat.completions.create(
    model=model,
    messages=messages,
    max_tokens=5,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
)
text, finish, usage = "", None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        text += c.delta.content or ""
        finish = c.finish_reason or finish
assert text == choice.message.content, (text, choice.message.content)
assert finish == choice.finish_reason
assert usage is not None and usage.completion_tokens == r.usage.completion_tokens

# Stop strings, top_p, max_completion_tokens, logprobs and a tool definition are accepted.
r = client.chat.completions.create(
    model=model,
    messages=messages + [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Again."}],
    max_completion_tokens=4,
    temperature=0.8,
    top_p=0.9,
    seed=7,
    stop=["\n\n", "END"],
    logprobs=True,
    top_logprobs=3,
    tools=[{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}],
    response_format={"type": "json_object"},
)
assert r.usage.completion_tokens <= 4
assert len(r.choices[0].logprobs.content) == r.usage.completion_tokens
assert all(len(t.top_logprobs) == 3 for t in r.choices[0].logprobs.content)

# A tool-call history (assistant tool_calls + tool result) renders and answers.
r = client.chat.completions.create(
    model=model,
    messages=[
        {"role": "user", "content": "What time is it?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
    ],
    max_tokens=3,
)
assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")

# Completions with a suffix: fill-in-the-middle.
c = client.completions.create(
    model=model, prompt="def add(a, b):\n    return ", suffix="\n\nprint(add(1, 2))", max_tokens=5, temperature=0
)
assert isinstance(c.choices[0].text, str)
assert c.usage.prompt_tokens > 5 and c.usage.completion_tokens <= 5
text = ""
for chunk in client.completions.create(model=model, prompt="x = ", suffix=";", max_tokens=4, stream=True):
    text += chunk.choices[0].text if chunk.choices else ""

# Errors arrive as the client's exception types with the server's message.
try:
    client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=2)
    raise AssertionError("unknown model accepted")
except openai.NotFoundError as e:
    assert e.status_code == 404 and "no-such-model" in str(e)
try:
    client.chat.completions.create(model=model, messages=messages, max_tokens=2, n=2)
    raise AssertionError("n=2 accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x " * 3000}], max_tokens=2)
    raise AssertionError("overlong prompt accepted")
except openai.BadRequestError as e:
    assert e.code == "context_length_exceeded", e.code

# Thinking: the R1 template's reply arrives as reasoning_content (and the key is required).
try:
    OpenAI(base_url=thinking_base, api_key="wrong", max_retries=0).models.list()
    raise AssertionError("wrong key accepted")
except openai.AuthenticationError as e:
    assert e.status_code == 401
thinker = OpenAI(base_url=thinking_base, api_key="k", max_retries=0, timeout=120)
r = thinker.chat.completions.create(model=model, messages=messages, max_tokens=6, temperature=0)
reasoning = getattr(r.choices[0].message, "reasoning_content", None)
assert isinstance(reasoning, str) and reasoning, r.choices[0].message
streamed = ""
for chunk in thinker.chat.completions.create(model=model, messages=messages, max_tokens=6, temperature=0, stream=True):
    for c in chunk.choices:
        streamed += getattr(c.delta, "reasoning_content", None) or ""
assert streamed == reasoning, (streamed, reasoning)

print("openai client: all checks passed")
