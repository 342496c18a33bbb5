"""JSON Schemas for structured LLM output, derived from the record models.

The generator produces a record's content; toolkit fields (`id`, `provenance`) are filled afterwards, so they are
left out. `$ref`s are inlined because several structured-output backends (llama.cpp grammars among them) handle
self-contained schemas best. Taxonomy enumerations are added by `constrain()`, so a constrained model cannot
invent a value.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel

from valuecorpus.schemas.records import Record


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].split("/")[-1]]
            merged = {**_inline(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
            return merged
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _strict(node: Any) -> Any:
    """No extra keys anywhere; drop titles (noise for the model) and defaults (unsupported by strict modes)."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items() if k not in ("title", "default", "properties")}
        if "properties" in node:  # property names are data, not keywords: a field may be called "title"
            out["properties"] = {name: _strict(sub) for name, sub in node["properties"].items()}
        if out.get("type") == "object" and "properties" in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def model_json_schema(model: type[BaseModel], exclude: set[str] | None = None) -> dict[str, Any]:
    """Self-contained JSON Schema of a model (or of a record's generated content): a fresh copy on every call
    (callers tighten bounds in place), derived by pydantic once per model and exclusion set."""
    if exclude is None:
        exclude = set(model.toolkit_fields) if issubclass(model, Record) else set()
    return orjson.loads(_derived(model, frozenset(exclude)))


@cache
def _derived(model: type[BaseModel], exclude: frozenset[str]) -> bytes:
    # pydantic's generation costs about a millisecond per schema, and chains ask for one per request
    raw = model.model_json_schema(mode="validation")
    schema = _strict(_inline(raw, raw.get("$defs", {})))
    for name in exclude:
        schema.get("properties", {}).pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    return orjson.dumps(schema)


def constrain(schema: dict[str, Any], path: str, allowed: list[str]) -> dict[str, Any]:
    """Restrict the strings at `path` (dot-separated; `[]` steps into arrays) to `allowed`.

    e.g. `constrain(s, "actions[].values[].name", taxonomy.names())`.
    """
    out = orjson.loads(orjson.dumps(schema))  # a JSON Schema is JSON: the same copy as deepcopy's, 20× faster
    node = out
    for step in path.split("."):
        is_array = step.endswith("[]")
        key = step[:-2] if is_array else step
        node = node["properties"][key]
        node = _non_null(node)
        if is_array:
            node = _non_null(node["items"])
    node.pop("type", None)
    node["enum"] = list(allowed)
    return out


def _non_null(node: dict[str, Any]) -> dict[str, Any]:
    for alt in node.get("anyOf", []):
        if alt.get("type") != "null":
            return alt
    return node
