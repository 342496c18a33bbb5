"""Structured output per dialect: the probe finds what the server honours, and the prompt fallback parses
JSON out of prose and repairs once."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import VALUE_SCHEMA, assert_accounted, http_config, make_requests

from valuecorpus.pipelines.engine import DeadLetter, Engine, GenerationResult


@pytest.mark.parametrize(("structured", "expected"),
                         [("all", "openai"), ("llamacpp", "llamacpp"), ("none", "prompt")])
def test_probe_detects_the_dialect_and_results_validate(fake_server, tmp_path: Path, structured: str,
                                                        expected: str) -> None:
    server = fake_server("--structured", structured)
    requests = make_requests(20)
    with Engine(http_config(server, tmp_path, dialect="auto")) as engine:
        outcomes = engine.generate(requests)
        assert engine.dialect == expected
    assert_accounted(requests, outcomes)
    for o in outcomes:
        assert isinstance(o, GenerationResult), o
        assert o.parsed["value"] in VALUE_SCHEMA["properties"]["value"]["enum"]
        assert o.endpoint_kind == expected
    probes = server.chat_requests() - 20
    with Engine(http_config(server, tmp_path, dialect="auto")) as engine:  # the probe result is cached too
        engine.generate(requests)
        assert engine.dialect == expected
    assert server.chat_requests() == 20 + probes


def test_prompt_dialect_repairs_once(fake_server, tmp_path: Path) -> None:
    # half of all answers are broken JSON (drawn per prompt); a broken one gets one repair turn
    server = fake_server("--structured", "none", "--faults", "invalid_json:0.5")
    requests = make_requests(20)
    with Engine(http_config(server, tmp_path, dialect="prompt")) as engine:
        outcomes = engine.generate(requests)
    assert_accounted(requests, outcomes)
    repaired = [o for o in outcomes if isinstance(o, GenerationResult) and o.attempts == 2]
    first_time = [o for o in outcomes if isinstance(o, GenerationResult) and o.attempts == 1]
    dead = [o for o in outcomes if isinstance(o, DeadLetter)]
    assert repaired and first_time
    assert all(d.error_class == "invalid_json" and d.attempts == 2 for d in dead)
    assert server.chat_requests() == 20 + len(repaired) + len(dead)  # one repair turn, never more


def test_schema_violation_is_a_dead_letter_with_the_raw_output(fake_server, tmp_path: Path) -> None:
    server = fake_server("--structured", "none")  # ignores the schema: free text comes back
    requests = make_requests(3)
    with Engine(http_config(server, tmp_path, dialect="openai", raw_output_chars=40)) as engine:
        outcomes = engine.generate(requests)
    for o in outcomes:
        assert isinstance(o, DeadLetter) and o.error_class == "invalid_json" and o.stage == "parse"
        assert o.raw_output and len(o.raw_output) < 80 and "more chars" in o.raw_output


@pytest.mark.parametrize(("dialect", "structured"),
                         [("openai", "openai"), ("vllm", "vllm"), ("llamacpp", "llamacpp"), ("prompt", "none")])
def test_each_dialect_against_a_server_that_only_speaks_it(fake_server, tmp_path: Path, dialect: str,
                                                           structured: str) -> None:
    server = fake_server("--structured", structured)
    requests = make_requests(10)
    with Engine(http_config(server, tmp_path, dialect=dialect)) as engine:
        outcomes = engine.generate(requests)
    assert all(isinstance(o, GenerationResult) and o.endpoint_kind == dialect for o in outcomes), outcomes
    assert server.chat_requests() == 10


def test_openai_sdk_transport_gives_the_same_answers(fake_server, tmp_path: Path) -> None:
    server = fake_server("--faults", "500@1")
    requests = make_requests(8)
    with Engine(http_config(server, tmp_path / "a")) as engine:
        lean = engine.generate(requests)
    server.reset()
    with Engine(http_config(server, tmp_path / "b", transport="openai-sdk")) as engine:
        sdk = engine.generate(requests)
    assert [o.content for o in sdk] == [o.content for o in lean]
    assert all(isinstance(o, GenerationResult) and o.attempts == 2 for o in sdk)  # the engine retried, not the SDK


UNBOUNDED = {**VALUE_SCHEMA, "properties": {**VALUE_SCHEMA["properties"], "note": {"type": "string"}},
             "required": [*VALUE_SCHEMA["required"], "note"]}  # a string without maxLength: no worst case


def test_answer_cut_at_max_tokens_says_so(fake_server, tmp_path: Path) -> None:
    server = fake_server("--completion-tokens", "500")  # reports more tokens than allowed: cut at max_tokens
    requests = make_requests(2, schema=UNBOUNDED, max_tokens=3)
    with Engine(http_config(server, tmp_path)) as engine:
        outcomes = engine.generate(requests)
    for o in outcomes:
        assert isinstance(o, DeadLetter) and o.error_class == "invalid_json"
        assert "max_tokens=3" in o.reason


def test_a_bounded_schema_is_never_cut(fake_server, tmp_path: Path) -> None:
    """The same server and max_tokens, a schema with a worst case: the engine asks for at least that many
    tokens (llama-cpp-python's grammar on a server: 6-byte escapes, a space after each token), so it closes."""
    server = fake_server("--completion-tokens", "500")
    with Engine(http_config(server, tmp_path)) as engine:
        outcomes = engine.generate(make_requests(2, max_tokens=3))
    assert all(isinstance(o, GenerationResult) and o.parsed["value"] in ("care", "fairness", "loyalty")
               for o in outcomes)
