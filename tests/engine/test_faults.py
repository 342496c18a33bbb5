"""Every fault a server can produce ends as a result or a dead letter, with the right class and attempts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from engine_helpers import VALUE_SCHEMA, assert_accounted, http_config, make_requests

from valuecorpus.pipelines.engine import DeadLetter, Engine, GenerationResult
from valuecorpus.schemas.errors import EndpointError


@pytest.mark.parametrize("fault", ["429", "500", "503", "hang", "reset", "truncated", "cut", "invalid_json"])
def test_fault_at_a_rate_is_accounted_for(fake_server, fault: str, tmp_path: Path) -> None:
    server = fake_server("--faults", f"{fault}:0.3", "--latency-ms", "5", "--retry-after", "0.2",
                               "--hang-s", "30")
    requests = make_requests(40)
    with Engine(http_config(server, tmp_path, timeout_s=0.5)) as engine:
        outcomes = engine.generate(requests)
    assert_accounted(requests, outcomes)
    results = [o for o in outcomes if isinstance(o, GenerationResult)]
    dead = [o for o in outcomes if isinstance(o, DeadLetter)]
    assert len(results) + len(dead) == len(requests)
    for r in results:
        assert r.parsed["value"] in VALUE_SCHEMA["properties"]["value"]["enum"]
    if fault == "invalid_json":  # a paid answer that is not JSON is not retried: it is dead-lettered, kept raw
        assert dead and all(d.error_class == "invalid_json" and d.stage == "parse" and d.raw_output for d in dead)
    else:  # transient faults are retried; with 4 attempts at 30 % nearly all succeed
        assert len(results) >= 36
    assert engine.stats.requests == len(results) + len(dead)


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [("429", "http_429"), ("500", "http_500"), ("503", "http_503"), ("hang", "timeout"), ("reset", "connection"),
     ("truncated", "bad_response"), ("cut", "connection")],
)
def test_persistent_fault_dead_letters_after_the_attempt_cap(fake_server, fault: str, error_class: str,
                                                             tmp_path: Path) -> None:
    server = fake_server("--faults", f"{fault}@1-99", "--retry-after", "0", "--hang-s", "30")
    requests = make_requests(3)
    with Engine(http_config(server, tmp_path, timeout_s=0.5, max_attempts=3)) as engine:
        outcomes = engine.generate(requests)
    assert_accounted(requests, outcomes)
    for dead in outcomes:
        assert isinstance(dead, DeadLetter)
        assert dead.error_class == error_class, dead
        assert dead.attempts == 3
        assert dead.plan_item is not None
    assert server.chat_requests() == 9


def test_retry_after_is_honoured(fake_server, tmp_path: Path) -> None:
    server = fake_server("--faults", "429@1", "--retry-after", "1")
    requests = make_requests(4)
    started = time.monotonic()
    with Engine(http_config(server, tmp_path, backoff_base_s=0.0)) as engine:
        outcomes = engine.generate(requests)
    assert time.monotonic() - started >= 1.0
    assert all(isinstance(o, GenerationResult) and o.attempts == 2 for o in outcomes)


def test_wrong_api_key_fails_fast_with_a_clear_message(fake_server, tmp_path: Path) -> None:
    server = fake_server("--api-key", "right-key")
    config = http_config(server, tmp_path, api_key="wrong-key-123", max_in_flight=64)
    with Engine(config) as engine, pytest.raises(EndpointError) as err:
        engine.generate(make_requests(50))
    message = str(err.value)
    assert "401" in message and "openai_api_key" in message and "OPENAI_API_KEY" in message
    assert "wrong-key-123" not in message and "wrong-key-123" not in repr(config)
    assert "wrong-key-123" not in config.model_dump_json()
    assert server.chat_requests() == 0  # GET /models refused the key: no request was sent at all


def test_first_request_goes_alone_when_models_cannot_vouch_for_the_key(fake_server, tmp_path: Path) -> None:
    # llama.cpp serves /models to anyone, and this server does not list the configured model either
    server = fake_server("--api-key", "right-key", "--public-models")
    config = http_config(server, tmp_path, api_key="wrong-key-123", max_in_flight=64, model="not-listed")
    with Engine(config) as engine, pytest.raises(EndpointError) as err:
        engine.generate(make_requests(50))
    assert "401" in str(err.value)
    assert server.chat_requests() == 1  # the first request went alone: no fan-out, no retries


def test_a_listed_model_and_an_accepted_key_skip_the_lone_first_request(fake_server, tmp_path: Path) -> None:
    server = fake_server("--api-key", "right-key", "--latency-ms", "1000")
    config = http_config(server, tmp_path, api_key="right-key", max_in_flight=64)
    started = time.monotonic()
    with Engine(config) as engine:
        outcomes = engine.generate(make_requests(20))
    assert all(isinstance(o, GenerationResult) for o in outcomes)
    # one round of 1 s, not two: every request went at once
    assert time.monotonic() - started < 1.8
    assert server.stats()["by_path"].get("/v1/models") == 1


def test_bad_request_is_not_retried(fake_server, tmp_path: Path) -> None:
    server = fake_server("--faults", "400@1-9")
    requests = make_requests(5)
    with Engine(http_config(server, tmp_path)) as engine:
        outcomes = engine.generate(requests)
    assert all(isinstance(o, DeadLetter) and o.error_class == "http_400" and o.attempts == 1 for o in outcomes)
    assert "HTTP 400" in outcomes[0].reason
    assert server.chat_requests() == 5


def test_unreachable_endpoint_is_one_clear_error(tmp_path: Path) -> None:
    from valuecorpus.pipelines.engine import EngineConfig

    config = EngineConfig(backend="openai", base_url="http://127.0.0.1:9/v1", model="m", dialect="auto",
                          timeout_s=2)
    with Engine(config) as engine, pytest.raises(EndpointError, match="unreachable"):
        engine.generate(make_requests(2))


def test_a_malformed_request_is_its_own_dead_letter(fake_server, tmp_path: Path) -> None:
    server = fake_server()
    good = make_requests(2)
    bad_shape = {"request_id": "bad-shape", "messages": "not a list of messages"}
    bad_schema = {"request_id": "bad-schema", "messages": [{"role": "user", "content": "x"}],
                  "json_schema": {"type": "no-such-type"}}
    with Engine(http_config(server, tmp_path)) as engine:
        outcomes = engine.generate([good[0], bad_shape, bad_schema, good[1]])
    assert [o.request_id for o in outcomes] == ["r0", "bad-shape", "bad-schema", "r1"]
    assert isinstance(outcomes[0], GenerationResult) and isinstance(outcomes[3], GenerationResult)
    for dead in outcomes[1:3]:
        assert isinstance(dead, DeadLetter) and dead.error_class == "invalid_request" and dead.attempts == 0
    assert "messages" in outcomes[1].reason
    assert "not a valid JSON Schema" in outcomes[2].reason
    assert server.chat_requests() == 2  # nothing was sent for the malformed ones


def test_retry_after_is_the_wait_not_a_floor_under_growing_backoff() -> None:
    from valuecorpus.pipelines.engine.attempts import backoff_delay

    # attempt 6 with a 0.5 s base would allow up to 16 s; the server said 1 s, and 1 s it is (+ ≤ 5 % spread)
    delays = [backoff_delay(6, 0.5, 30.0, 1.0) for _ in range(200)]
    assert all(1.0 <= d <= 1.05 for d in delays)
    without = [backoff_delay(6, 0.5, 30.0, None) for _ in range(200)]
    assert max(without) > 1.05 and all(0 <= d <= 16 for d in without)


def test_outcomes_behave_as_pydantic_models(fake_server, tmp_path: Path) -> None:
    server = fake_server()
    with Engine(http_config(server, tmp_path)) as engine:
        ok = engine.generate(make_requests(1, prefix="ok"))[0]
    assert isinstance(ok, GenerationResult)
    assert GenerationResult.model_validate_json(ok.model_dump_json()) == ok
    copy = ok.model_copy(update={"attempts": 9})
    copy.cached = not ok.cached
    assert (copy.attempts, ok.attempts) == (9, ok.attempts) and copy.cached != ok.cached
    assert ok.model_dump(exclude_unset=True).keys() == ok.model_dump().keys()
