"""Transports: each turns a chat-completions body into a `Completion` or raises a classified `AttemptError`.
Retry, cache, limits and budget live in the engine and serve all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class Completion:
    content: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    finish_reason: str | None = None
    latency_s: float = 0.0
    cost_usd: float = 0.0
    tool_calls: list[dict[str, Any]] | None = None  # [{id, name, arguments}] when the model called tools


class Backend(Protocol):
    kind: str
    max_concurrency: int | None  # a hard ceiling of the backend itself (the local model: its batch slots, twice)
    adapts: bool  # whether latency and 429s say something about capacity (AIMD); not for the local model

    async def complete(self, body: dict[str, Any], timeout: float) -> Completion: ...

    async def list_models(self) -> list[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


def completion_from_json(data: dict[str, Any], fallback_model: str) -> Completion:
    """Read an OpenAI-style chat completion (`choices[0].message.content`, `usage`)."""
    from valuecorpus.pipelines.engine.attempts import AttemptError

    try:
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise AttemptError("bad_response", "the endpoint answered without choices[0].message") from None
    usage = data.get("usage") or {}
    calls = choice["message"].get("tool_calls")
    return Completion(
        content, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
        data.get("model") or fallback_model, choice.get("finish_reason"),
        tool_calls=tool_calls_from_json(calls) if calls else None,
    )


def tool_calls_from_json(calls: Any) -> list[dict[str, Any]]:
    """OpenAI `message.tool_calls` → [{id, name, arguments}] (arguments stay the JSON text the model wrote)."""
    from valuecorpus.pipelines.engine.attempts import AttemptError

    out = []
    try:
        for i, call in enumerate(calls):
            fn = call["function"]
            args = fn.get("arguments")
            out.append({"id": str(call.get("id") or f"call_{i}"), "name": str(fn["name"]),
                        "arguments": args if isinstance(args, str) else _json_text(args)})
    except (KeyError, TypeError, AttributeError):
        raise AttemptError("bad_response", "the endpoint answered malformed tool_calls") from None
    return out


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value if value is not None else {}, ensure_ascii=False)
