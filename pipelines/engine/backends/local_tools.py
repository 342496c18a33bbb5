"""Tool calling for the embedded model, which has no native tool-call format: the request's tools become a
grammar (JSON Schema: `{"tool": one of the names, "arguments": {...}}` or `{"answer": text}`), the
conversation's tool turns become plain turns, and the answer becomes OpenAI-style `tool_calls`. The engine,
the cache and the episode runner see the same shapes as from an HTTP endpoint."""

from __future__ import annotations

import json
from importlib import resources
from string import Template
from typing import Any

_TEMPLATE = Template((resources.files("valuecorpus.pipelines.engine") / "templates" / "tool_instruction.txt")
                     .read_text(encoding="utf-8"))


def _functions(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t.get("function", t) for t in tools if isinstance(t, dict)]


def tool_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """`{"tool": one of the names, "arguments": an object}` or `{"answer": text}`. The arguments are a plain
    object, not each tool's own schema: per-tool alternatives crashed llama.cpp's grammar sampler here, and the
    interpreter checks the arguments against the tool's schema anyway (a bad call is an error observation)."""
    names = [fn["name"] for fn in _functions(tools)]
    call = {"type": "object", "properties": {"tool": {"type": "string", "enum": names},
                                             "arguments": {"type": "object"}},
            "required": ["tool", "arguments"]}
    # no maxLength on the answer: max_tokens bounds it, and a cut answer ends the episode as text
    answer = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    return {"anyOf": [call, answer]}


def plain_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation as system/user/assistant text turns, with the tools described up front."""
    listing = "\n".join(
        f"- {fn['name']}: {(fn.get('description') or '').strip().splitlines()[0] if fn.get('description') else ''}"
        f" arguments: {json.dumps(fn.get('parameters') or {}, ensure_ascii=False)}"
        for fn in _functions(tools)
    )
    out: list[dict[str, str]] = [{"role": "system", "content": _TEMPLATE.substitute(tools=listing)}]
    for m in messages:
        role = m.get("role")
        if role == "tool":
            out.append({"role": "user", "content": f"Result of {m.get('name') or 'the tool'}: {m.get('content')}"})
        elif role == "assistant" and m.get("tool_calls"):
            call = m["tool_calls"][0]["function"]
            args = call.get("arguments")
            args = json.loads(args) if isinstance(args, str) and args.strip() else args or {}
            out.append({"role": "assistant", "content": json.dumps({"tool": call["name"], "arguments": args})})
        else:
            out.append({"role": str(role), "content": str(m.get("content") or "")})
    return out


def read_answer(content: str) -> tuple[str, list[dict[str, Any]] | None]:
    """(text, tool_calls) from the grammar-constrained answer."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return content, None
    if isinstance(value, dict) and "tool" in value:
        args = value.get("arguments")
        return "", [{"id": "call_0", "name": str(value["tool"]),
                     "arguments": json.dumps(args if args is not None else {}, ensure_ascii=False)}]
    if isinstance(value, dict) and "answer" in value:
        return str(value["answer"]), None
    return content, None
