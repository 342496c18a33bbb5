"""The longest answer a JSON Schema allows, built from the schema alone (test side, independent of the
engine's grammar code): every string at maxLength in a 3-byte character, every array at maxItems, the enum
value with the longest JSON text, integers at their widest."""

from __future__ import annotations

import json
from typing import Any

WIDE = "語"  # U+8A9E: 3 bytes in UTF-8, needs no JSON escape (CJK text, as the value-rule chain writes)


def worst_instance(node: dict[str, Any]) -> Any:
    alts = node.get("anyOf") or node.get("oneOf")
    if alts:
        return max((worst_instance(a) for a in alts), key=size)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return max(node["enum"], key=lambda v: size(v))
    kind = node.get("type")
    if kind == "string":
        return WIDE * int(node["maxLength"])
    if kind == "array":
        return [worst_instance(node["items"]) for _ in range(int(node["maxItems"]))]
    if kind == "object":
        return {k: worst_instance(v) for k, v in (node.get("properties") or {}).items()}
    if kind == "integer":
        lo, hi = int(node.get("minimum", -(10**15) + 1)), int(node.get("maximum", 10**16 - 1))
        return min(lo, 0) if len(str(min(lo, 0))) > len(str(hi)) else hi
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    raise AssertionError(f"no worst case for {node}")


def size(value: Any) -> int:
    """Bytes of the compact JSON text, characters unescaped: one token per byte is the worst tokenizer."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def escaped_spaced_size(value: Any) -> int:
    """Bytes of the same value with every character escaped (`\\u8a9e`) and a space after each separator:
    the longest form llama-cpp-python's own converter admits for it, but the space after each closing token."""
    return len(json.dumps(value, ensure_ascii=True, separators=(", ", ": ")).encode())
