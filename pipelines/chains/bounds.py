"""Bounding free strings in an output schema so the whole JSON fits the request's max_tokens.

A constrained decoder closes the JSON only when the schema lets it: if the strings may run longer than the
token budget, the output is cut mid-string and dead-letters as invalid JSON. Small models in particular
ramble (and repetitive text tokenises poorly), so each free string gets a maxLength that makes the worst case
fit: (max_tokens − framing) × CHARS_PER_TOKEN characters, shared by every string slot (array slots count
maxItems times).
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 2.2  # pessimistic: repetitive or punctuation-heavy text runs near 2 characters per token
FRAMING_TOKENS = 6  # per field: key, quotes, separators
MIN_CHARS = 8


def _slots(node: Any, multiplier: int = 1) -> int:
    if not isinstance(node, dict):
        return 0
    if node.get("type") == "string" and "enum" not in node:
        return multiplier
    if node.get("type") == "array":
        return _slots(node.get("items"), multiplier * int(node.get("maxItems", 4)))
    total = 0
    for child in (node.get("properties") or {}).values():
        total += _slots(child, multiplier)
    for alt in node.get("anyOf", []):
        total = max(total, _slots(alt, multiplier))
    return total


def _apply(node: Any, limit: int) -> None:
    if isinstance(node, dict):
        if node.get("type") == "string" and "enum" not in node:
            node["maxLength"] = min(int(node.get("maxLength", limit)), limit)
            node.setdefault("minLength", 2)
            if node["minLength"] > node["maxLength"]:
                node["minLength"] = node["maxLength"]
        for value in node.values():
            if isinstance(value, dict | list):
                _apply(value, limit)
    elif isinstance(node, list):
        for value in node:
            _apply(value, limit)


def bound_chars(schema: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """Bound every free string to `max_chars` (in place; returns the schema)."""
    _apply(schema, max_chars)
    return schema


def bound_strings(schema: dict[str, Any], max_tokens: int, max_chars: int | None = None) -> dict[str, Any]:
    """Set maxLength on every free string (in place; returns the schema)."""
    slots = max(1, _slots(schema))
    budget = max(0, max_tokens - FRAMING_TOKENS * slots - 4)
    limit = max(MIN_CHARS, int(budget * CHARS_PER_TOKEN / slots))
    if max_chars is not None:
        limit = min(limit, max_chars)
    _apply(schema, limit)
    return schema


def enum_tokens(schema: dict[str, Any]) -> int:
    """A generous token count for an output made of enum strings only (maxLength cannot shorten those)."""
    def walk(node: Any, multiplier: int) -> int:
        if not isinstance(node, dict):
            return 0
        if "enum" in node:
            return multiplier * (max(len(str(v)) for v in node["enum"]) // 2 + FRAMING_TOKENS)
        if node.get("type") == "array":
            return walk(node.get("items"), multiplier * int(node.get("maxItems", 4))) + 2
        return sum(walk(child, multiplier) for child in (node.get("properties") or {}).values()) + 2
    return walk(schema, 1)
