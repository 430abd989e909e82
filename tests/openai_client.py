"""The real `openai` Python client against `lanternfish serve` (run by tests/server.rs).

    python tests/openai_client.py BASE_URL THINKING_BASE_URL TOOLS_BASE_URL

BASE_URL serves the tiny model without a key; THINKING_BASE_URL serves it with the DeepSeek-R1
template (which opens a <think> block) and the API key "k"; TOOLS_BASE_URL serves the scripted
model that always calls get_weather(city="Paris", days=2) (tests/server_common/scripted.rs).
Exits non-zero on the first failure.
"""

import json
import sys

import openai
from openai import OpenAI

base, thinking_base, tools_base = sys.argv[1], sys.argv[2], sys.argv[3]
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

# Tool calls: the scripted model's call arrives as `tool_calls`, whole and streamed.
caller = OpenAI(base_url=tools_base, api_key="unused", max_retries=0, timeout=120)
tool_model = caller.models.list().data[0].id
weather = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
        },
    }
]
question = [{"role": "user", "content": "Weather in Paris?"}]
r = caller.chat.completions.create(model=tool_model, messages=question, tools=weather, temperature=0)
choice = r.choices[0]
assert choice.finish_reason == "tool_calls", choice
assert choice.message.content is None, choice.message
(call,) = choice.message.tool_calls
assert call.type == "function" and call.id, call
assert call.function.name == "get_weather", call
assert json.loads(call.function.arguments) == {"city": "Paris", "days": 2}, call
calls, finish = {}, None
for chunk in caller.chat.completions.create(
    model=tool_model, messages=question, tools=weather, temperature=0, stream=True
):
    for c in chunk.choices:
        assert not c.delta.content, c.delta
        finish = c.finish_reason or finish
        for d in c.delta.tool_calls or []:
            entry = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] = d.id or entry["id"]
            if d.function is not None:
                entry["name"] += d.function.name or ""
                entry["arguments"] += d.function.arguments or ""
assert finish == "tool_calls", finish
assert list(calls) == [0], calls
assert calls[0]["id"] and calls[0]["name"] == "get_weather", calls
assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "days": 2}, calls

print("openai client: all checks passed")
