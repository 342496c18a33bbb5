"""What the fake OpenAI-compatible server answers: deterministic content keyed by the request.

Responses are a pure function of the request's messages (and schema), so a rerun of the same request gets the
same answer. With a JSON Schema the answer is a schema-valid instance built from the schema; canned responses
(a callable, or a JSON file of rules) let a test give field-meaningful content where that matters.

Hot path: each schema is compiled once into a generator closure (cached by its canonical JSON), and
`Rng` seeded from the request hash drives every choice, so a request costs a few tens of µs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

WORDS = (
    "honesty", "care", "fairness", "loyalty", "liberty", "harm", "duty", "trust", "promise", "family",
    "friend", "community", "rule", "value", "choice", "truth", "kindness", "justice", "respect", "courage",
    "privacy", "safety", "dignity", "autonomy", "neighbour", "colleague", "patient", "teacher", "student",
    "doctor", "parent", "child", "elder", "village", "city", "river", "garden", "market", "letter",
    "secret", "debt", "gift", "decision", "conflict", "question", "answer", "reason", "balance",
    "tradition", "change", "future", "memory", "story", "law", "mercy",
)


class Rng:
    """A tiny deterministic generator (64-bit LCG): seeding `random.Random` costs ~20x more than the choices
    a response needs, and the hot path makes one per request."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = (seed ^ 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF

    def next(self) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return self.state >> 16

    def random(self) -> float:
        return self.next() / 2**48

    def randint(self, lo: int, hi: int) -> int:
        return lo + self.next() % (hi - lo + 1)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.random()

    def choice(self, seq: Any) -> Any:
        return seq[self.next() % len(seq)]

    def getrandbits(self, k: int) -> int:
        return self.next() & ((1 << k) - 1)


Generator = Callable[[Rng], Any]
Responder = Callable[[dict[str, Any]], Any]


def request_hash(messages: list[Any], structured: Any = None) -> str:
    """The key of a request: a hash of its messages and of how it asks for structured output (the body's
    `response_format`, else `guided_json`, else `structured_outputs`), as canonical JSON."""
    canonical = orjson.dumps(messages if structured is None else [messages, structured], option=_SORTED)
    return hashlib.blake2b(canonical, digest_size=12).hexdigest()


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


# --- schema → generator -------------------------------------------------------------------------------------

_COMPILED: dict[bytes, Generator] = {}
_SORTED = orjson.OPT_SORT_KEYS


def instance_for(schema: dict[str, Any], seed: int, key: bytes | None = None) -> Any:
    """A schema-valid JSON value, the same for the same (schema, seed). `key`: the schema's canonical JSON
    when the caller has it already."""
    if key is None:
        key = orjson.dumps(schema, option=_SORTED)
    gen = _COMPILED.get(key)
    if gen is None:
        if len(_COMPILED) > 4096:  # bounded: a long-running server sees few distinct schemas
            _COMPILED.clear()
        gen = _COMPILED[key] = _compile(schema, schema.get("$defs", schema.get("definitions", {})), 0)
    return gen(Rng(seed))


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target = defs.get(ref.split("/")[-1], {})
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _compile(node: Any, defs: dict[str, Any], depth: int) -> Generator:
    if not isinstance(node, dict) or depth > 12:
        return lambda rng: None if depth > 12 else _word(rng)
    node = _resolve(node, defs)
    if "const" in node:
        value = node["const"]
        return lambda rng: value
    if "enum" in node:
        choices = list(node["enum"])
        return lambda rng: rng.choice(choices)
    for key in ("anyOf", "oneOf"):
        if key in node:
            alts = [a for a in node[key] if _resolve(a, defs).get("type") != "null"] or node[key]
            # the first alternative only: sibling alternatives of oneOf may overlap, the first is always valid
            return _compile({**{k: v for k, v in node.items() if k != key}, **_resolve(alts[0], defs)},
                            defs, depth + 1)
    if "allOf" in node:
        merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
        for part in node["allOf"]:
            part = _resolve(part, defs)
            merged.setdefault("properties", {}).update(part.get("properties", {}))
            merged["required"] = sorted(set(merged.get("required", [])) | set(part.get("required", [])))
            merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
        return _compile(merged, defs, depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "array" if "items" in node else "string"
    return _BUILDERS.get(kind, _string)(node, defs, depth)


def _object(node: dict[str, Any], defs: dict[str, Any], depth: int) -> Generator:
    fields = [(name, _questioned(name, sub, _compile(sub, defs, depth + 1)))
              for name, sub in node.get("properties", {}).items()]
    for name in node.get("required", []):
        if name not in node.get("properties", {}):
            fields.append((name, lambda rng: _word(rng)))
    return lambda rng: {name: gen(rng) for name, gen in fields}


def _questioned(name: str, node: Any, gen: Generator) -> Generator:
    """A free string field that is a question by its name or description ends with "?" (a dilemma's text,
    an interview question), so answers look like what a recipe checks for."""
    if not isinstance(node, dict) or node.get("type") != "string" or "enum" in node or "format" in node \
            or "pattern" in node or "maxLength" in node:
        return gen
    if "question" not in name.lower() and "question" not in str(node.get("description", "")).lower():
        return gen
    return lambda rng: gen(rng).rstrip(".") + "?"


def _array(node: dict[str, Any], defs: dict[str, Any], depth: int) -> Generator:
    prefix = [_compile(sub, defs, depth + 1) for sub in node.get("prefixItems", [])]
    item = _compile(node.get("items", {"type": "string"}), defs, depth + 1)
    lo = max(int(node.get("minItems", 1)), len(prefix))
    hi = max(lo, min(int(node.get("maxItems", 3)), max(lo, 3)))
    unique = bool(node.get("uniqueItems"))

    def gen(rng: Rng) -> list[Any]:
        n = rng.randint(lo, hi)
        out = [g(rng) for g in prefix]
        tries = 0
        while len(out) < n and tries < 10 * n + 10:
            value = item(rng)
            tries += 1
            if unique and value in out:
                continue
            out.append(value)
        return out

    return gen


_FORMATS: dict[str, Callable[[Rng], str]] = {
    "date-time": lambda rng: f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z",
    "date": lambda rng: f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    "email": lambda rng: f"{rng.choice(WORDS)}@example.org",
    "uri": lambda rng: f"https://example.org/{rng.choice(WORDS)}",
    "uuid": lambda rng: f"{rng.getrandbits(32):08x}-0000-4000-8000-{rng.getrandbits(48):012x}",
}


def _word(rng: Rng) -> str:
    return rng.choice(WORDS)


def _string(node: dict[str, Any], defs: dict[str, Any], depth: int) -> Generator:
    fmt = _FORMATS.get(node.get("format", ""))
    if fmt:
        return fmt
    lo = int(node.get("minLength", 0))
    hi = int(node.get("maxLength", 10_000))
    pattern = node.get("pattern")
    compiled = re.compile(pattern) if pattern else None

    def gen(rng: Rng) -> str:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
        while len(text) < lo:
            text += " " + rng.choice(WORDS)
        text = text[:hi]
        if compiled is not None and not compiled.search(text):
            # a pattern cannot be inverted in general: fall back to an instance built from its literal parts
            text = _pattern_example(pattern or "", lo, hi)
        return text

    return gen


def _pattern_example(pattern: str, lo: int, hi: int) -> str:
    literal = re.sub(r"\\(.)", r"\1", re.sub(r"[\^\$\(\)\[\]\{\}\*\+\?\|]|\\d|\\w|\\s", "", pattern))
    return (literal or "x").ljust(lo, "x")[:hi]


def _number(node: dict[str, Any], defs: dict[str, Any], depth: int, integer: bool = False) -> Generator:
    lo = node.get("minimum", node.get("exclusiveMinimum", 0 if integer else 0.0))
    hi = node.get("maximum", node.get("exclusiveMaximum", lo + 100))
    if "exclusiveMinimum" in node and "minimum" not in node:
        lo = lo + 1 if integer else lo + (hi - lo) * 1e-3
    if "exclusiveMaximum" in node and "maximum" not in node:
        hi = hi - 1 if integer else hi - (hi - lo) * 1e-3
    step = node.get("multipleOf")
    if integer:
        ilo, ihi = int(-(-lo // 1)), int(hi // 1)
        if step:
            ilo = int(-(-ilo // step) * step)
            return lambda rng: min(ilo + int(step) * rng.randint(0, max(0, (ihi - ilo) // int(step))), ihi)
        return lambda rng: rng.randint(ilo, max(ilo, ihi))
    return lambda rng: min(max(round(rng.uniform(lo, hi), 3), lo), hi)


_BUILDERS: dict[str, Callable[[dict[str, Any], dict[str, Any], int], Generator]] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "number": _number,
    "integer": lambda node, defs, depth: _number(node, defs, depth, integer=True),
    "boolean": lambda node, defs, depth: lambda rng: rng.random() < 0.5,
    "null": lambda node, defs, depth: lambda rng: None,
}


def free_text(seed: int, words: int = 24) -> str:
    rng = Rng(seed)
    body = " ".join(rng.choice(WORDS) for _ in range(words))
    return body[0].upper() + body[1:] + "."


# --- canned responses ---------------------------------------------------------------------------------------


def load_responses(path: str | Path) -> Responder:
    """A responder from a JSON file.

    Either a plain mapping `{"substring of the last user message": content, ...}`, or
    `{"by_hash": {request_hash: content}, "rules": [{"contains": "...", "role": "user"|"any",
    "content": ... | "choices": [...] | "fields": {...} | "tool_script": [{"name", "arguments"}, ...]}]}`
    (`tool_script`: a scripted tool-calling model, see `script_step`). A `content` that is not a string is sent as its
    JSON text; with `choices` one is picked by the request hash; `fields` are set over the schema-generated
    answer's top-level keys (the rest stays generated). The first matching rule wins; no match → generated.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object (mapping or {{'rules': [...]}})")
    if "rules" in data or "by_hash" in data:
        rules = list(data.get("rules", []))
        by_hash = dict(data.get("by_hash", {}))
    else:
        rules = [{"contains": key, "content": value} for key, value in data.items()]
        by_hash = {}
    return rule_responder(rules, by_hash)


class Overlay(dict):  # type: ignore[type-arg]
    """A responder's answer meaning "the generated JSON answer, with these top-level fields set"."""


class ToolCalls(list):  # type: ignore[type-arg]
    """A responder's answer meaning "call these tools": [{"name": ..., "arguments": {...}}, ...]."""


def script_step(script: list[dict[str, Any]], messages: list[Any], final: str) -> ToolCalls | str:
    """A scripted tool-calling model: the n-th call of the script once the conversation holds n-1 assistant
    turns that called tools; after the script, the final text answer."""
    done = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant" and m.get("tool_calls"))
    return ToolCalls([script[done]]) if done < len(script) else final


def rule_responder(rules: list[dict[str, Any]], by_hash: dict[str, Any] | None = None) -> Responder:
    by_hash = by_hash or {}

    def respond(request: dict[str, Any]) -> Any:
        if request["hash"] in by_hash:
            return by_hash[request["hash"]]
        user = request["last_user"]
        everything = None
        for rule in rules:
            needle = rule.get("contains", "")
            if rule.get("role", "user") == "any":
                if everything is None:
                    everything = "\n".join(str(m.get("content", "")) for m in request["messages"])
                haystack = everything
            else:
                haystack = user
            if needle in haystack:
                if "tool_script" in rule:
                    return script_step(rule["tool_script"], request["messages"], rule.get("final", "Done."))
                if "choices" in rule:
                    return rule["choices"][request["seed"] % len(rule["choices"])]
                if "fields" in rule:
                    return Overlay(rule["fields"])
                return rule.get("content")
        return None

    return respond


def schema_in_prompt(messages: list[Any]) -> dict[str, Any] | None:
    """A JSON Schema written into the prompt (how a client asks a server with no structured output)."""
    for message in messages:
        text = message.get("content") if isinstance(message, dict) else None
        if not isinstance(text, str) or '"type"' not in text:
            continue
        start = text.find("{")
        while start != -1:
            try:
                value, _ = json.JSONDecoder().raw_decode(text, start)
            except json.JSONDecodeError:
                start = text.find("{", start + 1)
                continue
            if isinstance(value, dict) and ("properties" in value or "type" in value):
                return value
            start = text.find("{", start + 1)
    return None
