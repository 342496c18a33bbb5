"""The benchmark's perfect-client bound: what the fault benchmark's measured share is compared with."""

from __future__ import annotations

import math

import pytest

from bench.clients.workload import MAX_TOKENS, MODEL, SCHEMA, messages
from bench.fault_bound import Setup, attempt_counts, bound, perfect_client_s, request_keys
from valuecorpus.pipelines.engine import Engine, EngineConfig


def test_without_faults_it_is_the_ideal() -> None:
    keys = request_keys(1_000)
    assert perfect_client_s(Setup(n=1_000, c=16), keys) == pytest.approx(math.ceil(1_000 / 16) * 0.2)
    assert len(set(keys)) == 1_000  # one fake-server key per request


def test_a_fault_costs_what_the_server_and_the_retry_rule_make_it_cost() -> None:
    keys = request_keys(64)
    # every first attempt hangs until the 1 s timeout, then waits 0–0.1 s (a transient fault) and is answered
    hung = perfect_client_s(Setup(n=64, c=64, faults="hang@1"), keys)
    assert 1.2 <= hung <= 1.3
    # a 429 is answered at once and its Retry-After (1 s, spread by up to 5 %) is the wait
    limited = perfect_client_s(Setup(n=64, c=64, faults="429@1"), keys)
    assert 1.2 <= limited <= 1.25
    # an answer that is not JSON is a dead letter, not retried: no time beyond its one round
    assert perfect_client_s(Setup(n=64, c=64, faults="invalid_json@1"), keys) == pytest.approx(0.2)


def test_faults_on_attempts_chain_and_cost_more_than_faults_on_requests() -> None:
    mix = "429:0.1,500:0.1"
    per_request = bound(Setup(n=2_000, c=64, faults=mix, mode="first"), seeds=[0, 1])
    per_attempt = bound(Setup(n=2_000, c=64, faults=mix, mode="hash"), seeds=[0, 1])
    assert per_request["fault_free_s"] == per_attempt["fault_free_s"] == pytest.approx(math.ceil(2_000 / 64) * 0.2)
    assert 0 < per_attempt["max"] < per_request["min"] < 1


def test_the_bound_meets_the_faults_the_engine_met(fake_server) -> None:
    """The fake server answers the engine's attempts exactly as the bound counts them, kind by kind: the bound is
    computed on the same faults, not on faults like them."""
    mix, n = "429:0.1,500:0.1,503:0.05,reset:0.05,invalid_json:0.05", 300
    server = fake_server("--faults", mix, "--latency-ms", "5", "--retry-after", "0")
    config = EngineConfig(backend="openai", base_url=server.base_url, model=MODEL, dialect="openai",
                          max_in_flight=32, max_attempts=5, backoff_base_s=0.01, transient_backoff_s=0.01)
    requests = [{"request_id": f"r{i}", "messages": messages(i), "json_schema": SCHEMA,
                 "params": {"max_tokens": MAX_TOKENS}} for i in range(n)]
    with Engine(config) as engine:
        outcomes = engine.generate(requests)
    assert len(outcomes) == n
    seen = server.stats()["by_path_outcome"]["/v1/chat/completions"]
    expected = attempt_counts(Setup(n=n, faults=mix), request_keys(n))
    assert seen == expected
    assert {"429", "500", "503", "reset", "invalid_json"} <= set(seen)
