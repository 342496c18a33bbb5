"""Structured output: how each endpoint dialect is asked for JSON that follows a schema, and the check that it did.

Schemas are compiled once (by identity of the schema object) and reused for every request that carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from valuecorpus.pipelines.engine.attempts import AttemptError
from valuecorpus.pipelines.engine.grammar import SchemaGrammar, schema_grammar

_TEMPLATES = resources.files("valuecorpus.pipelines.engine") / "templates"
_INSTRUCTION = Template((_TEMPLATES / "schema_instruction.txt").read_text(encoding="utf-8"))
_REPAIR = Template((_TEMPLATES / "schema_repair.txt").read_text(encoding="utf-8"))


@dataclass(slots=True)
class CompiledSchema:
    schema: dict[str, Any]
    text: str
    validator: Any  # jsonschema_rs: ~1 µs per check where the pure-Python validator takes 30-300 µs
    explainer: Draft202012Validator  # only for the message of a failed check
    grammar: SchemaGrammar | None  # what llama.cpp backends are sent, and its worst case (None: not covered)

    def max_tokens(self, local: bool) -> int | None:
        """Completion tokens that always hold a grammar-constrained answer (None: no bound known): under our
        grammar on the embedded model, under llama-cpp-python's converter on a server."""
        if self.grammar is None:
            return None
        return self.grammar.max_tokens if local else self.grammar.server_max_tokens


_by_id: dict[int, CompiledSchema] = {}
_by_text: dict[str, CompiledSchema] = {}


def compile_schema(schema: dict[str, Any]) -> CompiledSchema:
    """Compile once per distinct schema: by identity first (free, for callers that share one schema object),
    then by canonical text (requests that each carry their own copy of the same schema)."""
    hit = _by_id.get(id(schema))
    if hit is not None and hit.schema is schema:
        return hit
    text = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()
    compiled = _by_text.get(text)
    if compiled is not None:
        return compiled  # a copy: not remembered by identity, so per-request copies are not kept alive
    # the meta-schema check in Rust (µs) and, only for a schema it rejects, in Python for the message (ms: chains
    # that constrain a schema to each sample's names compile one per sample)
    if not jsonschema_rs.meta.is_valid(schema):
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as err:
            raise ValueError(f"not a valid JSON Schema: {err.message}") from None
    compiled = CompiledSchema(schema, text, jsonschema_rs.validator_for(schema), Draft202012Validator(schema),
                              schema_grammar(schema))
    if len(_by_text) > 1024:  # a long-lived worker seeing ever-new schemas: start over
        _by_text.clear()
        _by_id.clear()
    _by_text[text] = compiled
    # the entry holds this very object, so its id cannot be reused by another while it is cached
    _by_id[id(schema)] = compiled
    return compiled


# the repeat penalty under each dialect's name; dialects without one do not get it (OpenAI rejects unknown keys)
_REPEAT_PENALTY = {"local": "repeat_penalty", "llamacpp": "repeat_penalty", "vllm": "repetition_penalty"}


def shape_body(body: dict[str, Any], dialect: str, compiled: CompiledSchema | None) -> dict[str, Any]:
    """Add the dialect's structured-output fields to a chat-completions body (in place)."""
    penalty = body.pop("repeat_penalty", None)
    if penalty is not None and dialect in _REPEAT_PENALTY:
        body[_REPEAT_PENALTY[dialect]] = penalty
    if compiled is None:
        return body
    if dialect == "openai":
        body["response_format"] = {
            "type": "json_schema", "json_schema": {"name": "output", "schema": compiled.schema, "strict": True},
        }
    elif dialect == "vllm":
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": compiled.schema}}
    elif dialect == "local" and compiled.grammar is not None:
        body["grammar"] = compiled.grammar.text  # ours: no escapes, no whitespace, a known worst case
    elif dialect in ("llamacpp", "local"):
        body["response_format"] = {"type": "json_object", "schema": compiled.schema}
    elif dialect == "prompt":
        instruction = _INSTRUCTION.substitute(schema=compiled.text)
        body["messages"] = [*body["messages"], {"role": "system", "content": instruction}]
    else:
        raise ValueError(f"unknown structured-output dialect {dialect!r}")
    return body


def repair_messages(messages: list[dict[str, str]], raw: str, error: str) -> list[dict[str, str]]:
    repair = {"role": "user", "content": _REPAIR.substitute(error=error)}
    return [*messages, {"role": "assistant", "content": raw}, repair]


def _extract_json(text: str) -> str:
    """For the prompt dialect: the JSON inside a code fence or between the outermost brackets of prose."""
    text = text.strip()
    fence = text.find("```")
    if fence != -1:
        start = text.find("\n", fence)
        end = text.find("```", start + 1) if start != -1 else -1
        if start != -1 and end != -1:
            return text[start + 1 : end].strip()
    if text[:1] in "{[":
        return text
    opens = [i for i in (text.find("{"), text.find("[")) if i != -1]
    if not opens:
        return text
    start = min(opens)
    end = max(text.rfind("}"), text.rfind("]"))
    return text[start : end + 1] if end > start else text


def parse_output(content: str, compiled: CompiledSchema, lenient: bool = False) -> Any:
    """The JSON value, schema-valid; otherwise AttemptError 'invalid_json' or 'schema' carrying the raw text."""
    text = _extract_json(content) if lenient else content
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise AttemptError("invalid_json", f"the output is not valid JSON ({err})", raw=content) from None
    if not compiled.validator.is_valid(value):
        error = best_match(compiled.explainer.iter_errors(value))
        where = "/".join(str(p) for p in error.absolute_path) if error is not None else ""
        msg = error.message if error is not None else "does not validate"
        raise AttemptError("schema", f"the output does not match the schema at '{where or '(root)'}': {msg[:300]}",
                           raw=content)
    return value
