"""Fitting the free strings of an output schema to a step's token budget.

A constrained answer always closes: the engine asks for at least the schema's worst case in tokens
(`engine.grammar`: every string at maxLength in 3-byte characters, every array at maxItems, the longest enum,
all punctuation; one token per byte). What remains for a chain is to keep that worst case near the budget
the recipe gives the step (`model.max_tokens` / `model.step_max_tokens`): `bound_strings` sets each free
string's maxLength so that the worst case fits it. Where a schema's fixed part (enums, item counts, minimum
lengths) alone needs more than the budget, the request asks for what it needs: the answer still closes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from valuecorpus.pipelines.engine.grammar import MAX_CHAR_BYTES, worst_case_tokens

MIN_CHARS = 8


def _free(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "string" and "enum" not in node and "const" not in node


def _slots(node: Any, multiplier: int = 1) -> int:
    """Free string slots, arrays counted maxItems times (4 when unbounded: bounding it is the caller's job)."""
    if not isinstance(node, dict):
        return 0
    if _free(node):
        return multiplier
    if node.get("type") == "array":
        return _slots(node.get("items"), multiplier * int(node.get("maxItems", 4)))
    total = sum(_slots(child, multiplier) for child in (node.get("properties") or {}).values())
    for alt in node.get("anyOf", []):
        total = max(total, _slots(alt, multiplier))
    return total


def _apply(node: Any, limit: int) -> None:
    if isinstance(node, dict):
        if _free(node):
            node["maxLength"] = min(int(node.get("maxLength", limit)), limit)
            node.setdefault("minLength", 2)
            node["minLength"] = min(node["minLength"], node["maxLength"])
        for value in node.values():
            if isinstance(value, dict | list):
                _apply(value, limit)
    elif isinstance(node, list):
        for value in node:
            _apply(value, limit)


def bound_chars(schema: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """Bound every free string to `max_chars` (in place; returns the schema). The engine sizes max_tokens."""
    _apply(schema, max_chars)
    return schema


def fixed_tokens(schema: dict[str, Any]) -> int:
    """The worst case of everything but the free strings' characters (punctuation, keys, enums, numbers)."""
    return _fixed_tokens(orjson.dumps(schema))


@lru_cache(maxsize=4096)  # ever-new schemas (constrained to each sample's names) do not pile up
def _fixed_tokens(text: bytes) -> int:
    # a step asks the same question of each sample's copy of its schema: building its grammar (about 0.2 ms)
    # once per distinct schema text, not once per request
    empty = orjson.loads(text)
    _apply(empty, 0)
    return worst_case_tokens(empty) or 0


def bound_strings(schema: dict[str, Any], max_tokens: int, max_chars: int | None = None) -> dict[str, Any]:
    """Set maxLength on every free string so the schema's worst case fits `max_tokens` (in place)."""
    slots = max(1, _slots(schema))
    room = max_tokens - fixed_tokens(schema)
    limit = max(MIN_CHARS, room // (MAX_CHAR_BYTES * slots))
    if max_chars is not None:
        limit = min(limit, max_chars)
    _apply(schema, limit)
    return schema
