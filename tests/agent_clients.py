"""The real `anthropic` and `openai` Python clients on the Messages and Responses APIs of
`lanternfish serve` (run by tests/server_agents.rs), the calls Claude Code and Codex CLI make.

    python tests/agent_clients.py ROOT_URL THINKING_ROOT_URL TOOLS_ROOT_URL

ROOT_URL serves the tiny model without a key; THINKING_ROOT_URL serves it with the DeepSeek-R1
template (which opens a <think> block) and the API key "k"; TOOLS_ROOT_URL serves the scripted
model that always calls get_weather(city="Paris", days=2) (tests/server_common/scripted.rs).
The URLs have no /v1 (the Anthropic client adds it). Exits non-zero on the first failure.
"""

import json
import sys

import anthropic
import openai

root, thinking_root, tools_root = sys.argv[1], sys.argv[2], sys.argv[3]
WEATHER_ARGS = {"city": "Paris", "days": 2}
# Anthropic's current API has no sampling parameters; the server still takes them (older clients
# send them), so the tests pass them as extra fields to get greedy, repeatable replies.
GREEDY = {"extra_body": {"temperature": 0}}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}


def anthropic_client(url, key="unused"):
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=120)


def openai_client(url, key="unused"):
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)


# ---- Anthropic Messages API --------------------------------------------------------------------
claude = anthropic_client(root)
system = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.1.abc; cc_entrypoint=cli; cch=11111;"},
    {"type": "text", "text": "You are terse."},
]
question = [{"role": "user", "content": "Say hello."}]

m = claude.messages.create(
    model="claude-sonnet-4-5", max_tokens=5, system=system, messages=question, **GREEDY
)
assert m.type == "message" and m.role == "assistant", m
assert m.model == "tiny-v3-Q4_K_M", m.model
assert m.stop_reason in ("end_turn", "max_tokens"), m.stop_reason
(block,) = m.content
assert block.type == "text" and isinstance(block.text, str), m.content
assert m.usage.output_tokens <= 5 and m.usage.input_tokens + m.usage.cache_read_input_tokens > 5, m.usage

# Claude Code's billing line changes every request; it is dropped, so the prompt is the same one,
# counted the same and served from the cache the second time.
count = claude.messages.count_tokens(model="any", system=system, messages=question).input_tokens
plain = claude.messages.count_tokens(model="any", system="You are terse.", messages=question).input_tokens
assert count == plain == m.usage.input_tokens + m.usage.cache_read_input_tokens, (count, plain, m.usage)
system[0]["text"] = "x-anthropic-billing-header: cc_version=2.1.1.abc; cc_entrypoint=cli; cch=22222;"
again = claude.messages.create(model="claude-haiku", max_tokens=5, system=system, messages=question, **GREEDY)
assert again.content[0].text == block.text, (again.content, block)
assert again.usage.cache_read_input_tokens >= 0.9 * count, again.usage

# Streamed, greedy: the same text; the final message has usage and a stop reason.
with claude.messages.stream(
    model="m", max_tokens=5, system=system, messages=question, **GREEDY
) as stream:
    streamed = "".join(stream.text_stream)
    final = stream.get_final_message()
assert streamed == block.text, (streamed, block.text)
assert final.content[0].text == block.text and final.stop_reason == m.stop_reason, final
assert final.usage.output_tokens == m.usage.output_tokens, final.usage

# Stop sequences, top_p and top_k are accepted; stop_reason says which stop ended it.
r = claude.messages.create(
    model="m",
    max_tokens=8,
    messages=question,
    stop_sequences=["\n\n", "END"],
    extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 20},
)
assert r.stop_reason in ("end_turn", "max_tokens", "stop_sequence"), r.stop_reason
assert (r.stop_reason == "stop_sequence") == (r.stop_sequence is not None), r

# Errors in Anthropic's shape, as the client's exception types.
try:
    claude.messages.create(model="m", max_tokens=5, messages=question, extra_body={"temperature": 1.5})
    raise AssertionError("temperature 1.5 accepted")
except anthropic.BadRequestError as e:
    assert e.status_code == 400 and e.body["error"]["type"] == "invalid_request_error", e.body
    assert "temperature" in e.body["error"]["message"], e.body
try:
    claude.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x " * 3000}])
    raise AssertionError("overlong prompt accepted")
except anthropic.BadRequestError as e:
    assert "context" in e.body["error"]["message"], e.body

# Thinking: the R1 template's reasoning arrives as a thinking block, whole and streamed; the key
# is checked (the Anthropic client sends it as x-api-key).
try:
    anthropic_client(thinking_root, "wrong").messages.create(model="m", max_tokens=2, messages=question)
    raise AssertionError("wrong key accepted")
except anthropic.AuthenticationError as e:
    assert e.status_code == 401 and e.body["error"]["type"] == "authentication_error", e.body
thinker = anthropic_client(thinking_root, "k")
thinking = {"type": "enabled", "budget_tokens": 1024}
m = thinker.messages.create(model="m", max_tokens=6, messages=question, thinking=thinking, **GREEDY)
assert m.content[0].type == "thinking" and m.content[0].thinking, m.content
with thinker.messages.stream(model="m", max_tokens=6, messages=question, thinking=thinking, **GREEDY) as stream:
    kinds = [event.type for event in stream]
    final = stream.get_final_message()
assert final.content[0].type == "thinking" and final.content[0].thinking == m.content[0].thinking, final
assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
assert "content_block_start" in kinds and "content_block_stop" in kinds, kinds

# Tool use: the scripted model's call is a tool_use block, whole and streamed, and the history
# with its tool_result renders.
caller = anthropic_client(tools_root)
tools = [{"name": "get_weather", "description": "The forecast for a city.", "input_schema": SCHEMA}]
weather = [{"role": "user", "content": "Weather in Paris?"}]
m = caller.messages.create(model="m", max_tokens=64, messages=weather, tools=tools, **GREEDY)
assert m.stop_reason == "tool_use", m
(use,) = [b for b in m.content if b.type == "tool_use"]
assert use.name == "get_weather" and use.input == WEATHER_ARGS and use.id, use
with caller.messages.stream(
    model="m", max_tokens=64, messages=weather, tools=tools, tool_choice={"type": "auto"}, **GREEDY
) as stream:
    final = stream.get_final_message()
assert final.stop_reason == "tool_use", final
(use,) = [b for b in final.content if b.type == "tool_use"]
assert use.name == "get_weather" and use.input == WEATHER_ARGS, use
history = weather + [
    {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21 C"}]},
]
m = caller.messages.create(model="m", max_tokens=64, messages=history, tools=tools, **GREEDY)
assert m.stop_reason == "tool_use", m
with_tools = caller.messages.count_tokens(model="m", messages=weather, tools=tools).input_tokens
without = caller.messages.count_tokens(model="m", messages=weather).input_tokens
assert with_tools > without + 20, (with_tools, without)

# ---- OpenAI Responses API ----------------------------------------------------------------------
client = openai_client(root)
model = "tiny-v3-Q4_K_M"
r = client.responses.create(
    model=model, instructions="You are terse.", input="Say hello.", max_output_tokens=5, temperature=0, store=False
)
assert r.object == "response" and r.status in ("completed", "incomplete"), r
assert isinstance(r.output_text, str), r
assert r.usage.input_tokens > 5 and r.usage.output_tokens <= 5, r.usage
assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens, r.usage
assert r.usage.input_tokens_details.cached_tokens >= 0, r.usage
(item,) = r.output
assert item.type == "message" and item.content[0].type == "output_text", item

# Streamed: the event sequence, numbered in order, and the same text.
with client.responses.stream(
    model=model, instructions="You are terse.", input="Say hello.", max_output_tokens=5, **GREEDY
) as stream:
    events = list(stream)
# Cut by max_output_tokens, the stream ends with response.incomplete (as OpenAI's does), which
# get_final_response() does not take: the last event carries the response either way.
final = events[-1].response
kinds = [e.type for e in events]
assert kinds[:2] == ["response.created", "response.in_progress"], kinds
assert kinds[-1] in ("response.completed", "response.incomplete"), kinds
assert [e.sequence_number for e in events] == list(range(len(events))), events
for kind in ("response.output_item.added", "response.content_part.added", "response.output_text.done",
             "response.content_part.done", "response.output_item.done"):
    assert kind in kinds, (kind, kinds)
deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
assert deltas == r.output_text == final.output_text, (deltas, r.output_text, final.output_text)
assert final.usage.output_tokens == r.usage.output_tokens, final.usage
# The same input again: the prompt comes from the cache.
assert final.usage.input_tokens_details.cached_tokens >= 0.9 * final.usage.input_tokens, final.usage

# Items as Codex sends them: a developer message and input_text parts.
r = client.responses.create(
    model=model,
    input=[
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]},
        {"role": "user", "content": "Again."},
    ],
    max_output_tokens=3,
)
assert r.usage.output_tokens <= 3, r.usage

# Stateless: previous_response_id is a clear 400.
try:
    client.responses.create(model=model, input="x", previous_response_id=r.id)
    raise AssertionError("previous_response_id accepted")
except openai.BadRequestError as e:
    assert "previous_response_id" in str(e), e

# Reasoning: the R1 template's thinking is a reasoning item, whole and streamed.
thinker = openai_client(thinking_root, "k")
r = thinker.responses.create(model=model, input="Think.", max_output_tokens=6, temperature=0)
reasoning = r.output[0]
assert reasoning.type == "reasoning" and reasoning.content[0].text, r.output
with thinker.responses.stream(model=model, input="Think.", max_output_tokens=6, temperature=0) as stream:
    events = list(stream)
streamed = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
assert streamed == reasoning.content[0].text, (streamed, reasoning)

# A function tool: the scripted model's call is a function_call item, whole and streamed; the
# next turn with its output renders.
caller = openai_client(tools_root)
tool_model = caller.models.list().data[0].id
# A hosted tool beside it (Codex may list some) is left out of the prompt, not an error.
tools = [
    {"type": "function", "name": "get_weather", "description": "The forecast.", "parameters": SCHEMA},
    {"type": "web_search"},
]
r = caller.responses.create(model=tool_model, input="Weather in Paris?", tools=tools, temperature=0)
(call,) = [o for o in r.output if o.type == "function_call"]
assert call.name == "get_weather" and json.loads(call.arguments) == WEATHER_ARGS and call.call_id, call
with caller.responses.stream(model=tool_model, input="Weather in Paris?", tools=tools, temperature=0) as stream:
    events = list(stream)
    final = stream.get_final_response()
args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
assert json.loads(args) == WEATHER_ARGS, args
assert "response.function_call_arguments.done" in [e.type for e in events]
(call,) = [o for o in final.output if o.type == "function_call"]
assert call.name == "get_weather" and json.loads(call.arguments) == WEATHER_ARGS, call
r = caller.responses.create(
    model=tool_model,
    input=[
        {"role": "user", "content": "Weather in Paris?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"},
    ],
    tools=tools,
    tool_choice="auto",
)
assert any(o.type == "function_call" for o in r.output), r.output

print("anthropic and openai agent clients: all checks passed")
