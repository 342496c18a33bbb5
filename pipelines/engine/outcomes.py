"""What a request ends as: a `GenerationResult` (parsed and schema-checked) or a `DeadLetter` with its reason.

Outcomes are built without per-field pydantic validation: the engine made every value itself, with the right
type, and validating them again cost a third of the engine's own CPU per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from valuecorpus.pipelines.engine.accounting import EngineStats, estimate_prompt_tokens
from valuecorpus.pipelines.engine.attempts import AttemptError
from valuecorpus.pipelines.engine.backends import Completion
from valuecorpus.pipelines.engine.structured import CompiledSchema, parse_output
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult, Outcome, Usage
from valuecorpus.schemas.run_tables import DeadLetter

PARSE_CLASSES = {"invalid_json", "schema"}


@dataclass(slots=True)
class Item:
    """A request as the engine works on it: prepared once (messages, params, compiled schema, cache key)."""

    index: int
    request: GenerationRequest
    key: str
    messages: list[dict[str, str]]
    params: dict[str, Any]
    compiled: CompiledSchema | None

    @property
    def prompt_estimate(self) -> int:
        """For the budget, only when the request is sent (a cached one needs none)."""
        chars = sum(len(m.get("content") or "") + len(str(m.get("tool_calls") or "")) for m in self.messages)
        chars += len(str(self.params.get("tools") or ""))
        return estimate_prompt_tokens(chars + (len(self.compiled.text) if self.compiled is not None else 0))


_ALL_FIELDS: dict[type[Any], set[str]] = {}
_set_fields_set = BaseModel.__pydantic_fields_set__.__set__  # type: ignore[attr-defined]
_set_extra = BaseModel.__pydantic_extra__.__set__  # type: ignore[attr-defined]
_set_private = BaseModel.__pydantic_private__.__set__  # type: ignore[attr-defined]


def cached_completion(hit: dict[str, Any]) -> Completion:
    """A completion as the cache stores it (see `core._attempts`: c, p, k, m, f)."""
    return Completion(hit["c"], hit["p"], hit["k"], hit["m"], hit.get("f"), tool_calls=hit.get("t"))


def construct(cls: type[Any], values: dict[str, Any]) -> Any:
    """A pydantic model from values the engine built itself (every field, right types): what `model_construct`
    does, without its per-field loop. Every field is set, so all instances of a class share one fields-set
    (pydantic only ever adds names to it, and they are all in it already): one object less per outcome for
    the garbage collector to walk."""
    fields = _ALL_FIELDS.get(cls)
    if fields is None:
        fields = _ALL_FIELDS[cls] = set(cls.model_fields)
    if len(values) != len(fields):  # not every field given: this one needs its own set
        fields = set(values)
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    _set_fields_set(obj, fields)  # BaseModel's slots, set through their descriptors: half the cost of setattr
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


class Outcomes:
    """Builds outcomes and counts them in the engine's stats."""

    def __init__(self, stats: EngineStats, raw_output_chars: int) -> None:
        self.stats = stats
        self.raw_output_chars = raw_output_chars

    def result(self, it: Item, comp: Completion, attempts: int, cached: bool, latency: float,
               cost: float | None, dialect: str, billed: bool | None = None, endpoint: str = "") -> Outcome:
        """The answer parsed and checked against the request's schema, or the dead letter saying why not."""
        parsed = None
        if it.compiled is not None:
            try:
                parsed = parse_output(comp.content, it.compiled, lenient=dialect == "prompt")
            except AttemptError as err:
                if comp.finish_reason == "length":
                    err.reason += f"; the answer was cut at max_tokens={it.params['max_tokens']}: raise it"
                return self.dead_from(it, err, attempts)
        if cost is None:
            cost = comp.cost_usd
        self.stats.results += 1
        return construct(GenerationResult, {
            "request_id": it.request.request_id, "content": comp.content, "parsed": parsed,
            "tool_calls": comp.tool_calls,
            "usage": construct(Usage, {"prompt_tokens": comp.prompt_tokens,
                                       "completion_tokens": comp.completion_tokens}),
            "cost_usd": cost, "model": comp.model, "endpoint_kind": dialect, "cache_key": it.key, "cached": cached,
            "billed": not cached if billed is None else billed, "endpoint": endpoint,
            "attempts": attempts, "latency_s": latency, "metadata": it.request.metadata,
        })

    def invalid(self, request: Any, err: Exception) -> DeadLetter:
        """A request that could not even be prepared (not a GenerationRequest, not a JSON Schema)."""
        self.stats.dead_letters["invalid_request"] += 1
        rid = request.get("request_id") if isinstance(request, dict) else getattr(request, "request_id", None)
        reason = " ".join(str(err).split())[:500]
        return construct(DeadLetter, {
            "request_id": str(rid), "stage": "generate", "attempts": 0, "error_class": "invalid_request",
            "http_status": None, "reason": f"the request is malformed: {reason}", "raw_output": None,
            "plan_item": None,
        })

    def dead_from(self, it: Item, err: AttemptError, attempts: int) -> DeadLetter:
        stage = "parse" if err.error_class in PARSE_CLASSES else "generate"
        return self.dead(it, err.error_class, err.reason, err.attempts or attempts, err.http_status, err.raw, stage)

    def dead(self, it: Item, error_class: str, reason: str, attempts: int, status: int | None,
             raw: str | None, stage: str) -> DeadLetter:
        self.stats.dead_letters[error_class] += 1
        limit = self.raw_output_chars
        if raw is not None and len(raw) > limit:
            raw = raw[:limit] + f"… [{len(raw) - limit} more chars]"
        plan_item = it.request.metadata.get("plan_item") if it.request.metadata else None
        return construct(DeadLetter, {
            "request_id": it.request.request_id, "stage": stage, "attempts": attempts, "error_class": error_class,
            "http_status": status, "reason": reason, "raw_output": raw,
            "plan_item": plan_item if isinstance(plan_item, str) else None,
        })
