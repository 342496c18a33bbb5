"""The bound behind "a constrained answer always closes": the engine asks for at least the schema's worst
case in tokens (one token per byte; llama.cpp's grammar sampler refuses tokens with empty text). Shown on
every structured request the shipped chains make, at its worst-case instance."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from engine_helpers import VALUE_SCHEMA, http_config
from worst_case import escaped_spaced_size, size, worst_instance

from valuecorpus.pipelines.engine import Engine
from valuecorpus.pipelines.engine.grammar import schema_grammar
from valuecorpus.pipelines.engine.structured import compile_schema, shape_body

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))
from canned import Responder
from corpus_chains_harness import run

RECIPES = [("demo", {"count": 2}), ("dilemmas", {"count": 1}), ("perspectives", {"count": 1}),
           ("value_rules", {"count": 2}), ("preferences", {"count": 2}), ("moral_graph", {"count": 1})]


@pytest.fixture(scope="module")
def shipped_requests() -> list[dict[str, Any]]:
    """Every structured request of one small run of each shipped recipe (fake server, canned answers)."""
    seen = []
    for recipe, overrides in RECIPES:
        res = run(recipe, Responder(), overrides)
        seen += [r for r in res.requests if not r.get("probe") and r["schema"]]
    assert len(seen) > 40
    return seen


def test_every_shipped_schema_has_a_worst_case_that_the_request_holds(shipped_requests) -> None:
    for req in shipped_requests:
        schema = req["schema"]
        grammar = schema_grammar(schema)
        assert grammar is not None and grammar.max_tokens is not None, schema
        worst = worst_instance(schema)
        jsonschema.validate(worst, schema)  # the instance is an answer the schema allows
        # the grammar's worst case is exactly that instance (+1 for the end token), and the request the engine
        # sent asks for at least the server-side worst case (a remote engine: the converter's escapes and spaces)
        assert grammar.max_tokens == size(worst) + 1
        assert grammar.server_max_tokens is not None and grammar.server_max_tokens > escaped_spaced_size(worst)
        assert req["body"]["max_tokens"] >= grammar.server_max_tokens


def test_the_grammar_allows_no_escape_and_no_whitespace() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}},
              "required": ["a"], "additionalProperties": False}
    text = schema_grammar(schema).text
    char = next(line for line in text.splitlines() if line.startswith("char ::="))
    assert char == r'char ::= [^"\\\x00-\x1F\x7F\U00010000-\U0010FFFF]'  # no `\` escapes, BMP only
    rules = "\n".join(line for line in text.splitlines() if line != char)
    literals = re.findall(r'"((?:[^"\\]|\\.)*)"', rules)  # the grammar's fixed text: keys, punctuation
    assert literals and not [lit for lit in literals if " " in lit or "\\n" in lit or "\\t" in lit]


def test_unbounded_schemas_claim_no_bound() -> None:
    free = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert schema_grammar(free).max_tokens is None
    assert schema_grammar({"type": "string", "pattern": "^a+$"}) is None  # not covered: the library converts it


def test_repeat_penalty_is_in_the_request_and_its_cache_key(fake_server, tmp_path: Path) -> None:
    server = fake_server()
    base = {"request_id": "r", "messages": [{"role": "user", "content": "Classify."}], "json_schema": VALUE_SCHEMA}
    with Engine(http_config(server, tmp_path)) as engine:
        plain, penalised = engine.generate([{**base, "params": {"max_tokens": 8}},
                                            {**base, "request_id": "p",
                                             "params": {"max_tokens": 8, "repeat_penalty": 1.3}}])
    assert plain.cache_key != penalised.cache_key
    compiled = compile_schema(VALUE_SCHEMA)
    body = {"messages": [], "repeat_penalty": 1.3}
    assert shape_body(dict(body), "local", compiled)["repeat_penalty"] == 1.3
    assert shape_body(dict(body), "llamacpp", compiled)["repeat_penalty"] == 1.3
    assert shape_body(dict(body), "vllm", compiled)["repetition_penalty"] == 1.3
    assert "repeat_penalty" not in shape_body(dict(body), "openai", compiled)  # OpenAI has none: not sent
