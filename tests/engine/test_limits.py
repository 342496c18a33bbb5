"""Per-endpoint limits: AIMD backs off on rising latency (a saturating self-hosted server) and on 429s;
rpm and tpm budgets pace requests; max_in_flight is never exceeded."""

from __future__ import annotations

import time
from pathlib import Path

from engine_helpers import http_config, make_requests

from valuecorpus.pipelines.engine import Engine, GenerationResult


def test_backs_off_when_latency_rises_without_429(fake_server, tmp_path: Path) -> None:
    # beyond 8 in flight the server slows down in proportion, and never says 429 (like vLLM)
    server = fake_server("--saturate-at", "8", "--latency-ms", "40")
    with Engine(http_config(server, tmp_path, max_in_flight=64)) as engine:
        outcomes = engine.generate(make_requests(600))
        limiter = engine._limiter
    assert all(isinstance(o, GenerationResult) for o in outcomes)
    assert limiter is not None and limiter.cuts >= 2
    # from 64 it settles where latency is about 3 × the unloaded baseline (some 35-50 here), never back at 64
    assert limiter.limit < 60


def test_backs_off_on_429_and_every_request_succeeds(fake_server, tmp_path: Path) -> None:
    server = fake_server("--max-inflight", "8", "--latency-ms", "30", "--retry-after", "0.05")
    with Engine(http_config(server, tmp_path, max_in_flight=64, max_attempts=30)) as engine:
        outcomes = engine.generate(make_requests(300))
        limiter = engine._limiter
    assert all(isinstance(o, GenerationResult) for o in outcomes)
    assert limiter is not None and limiter.cuts >= 1 and limiter.limit < 64
    assert server.stats()["by_outcome"].get("429", 0) > 0


def test_max_in_flight_is_a_hard_ceiling(fake_server, tmp_path: Path) -> None:
    server = fake_server("--latency-ms", "20")
    with Engine(http_config(server, tmp_path, max_in_flight=5)) as engine:
        engine.generate(make_requests(100))
    assert server.stats()["max_in_flight"] == 5


def test_rpm_paces_requests(fake_server, tmp_path: Path) -> None:
    server = fake_server()
    started = time.monotonic()
    # 20 per second, bursting to one second's worth: 61 requests take at least 2 s
    with Engine(http_config(server, tmp_path, rpm=1200, max_in_flight=64)) as engine:
        engine.generate(make_requests(61))
    assert time.monotonic() - started >= 1.9


def test_tpm_paces_requests(fake_server, tmp_path: Path) -> None:
    server = fake_server()
    started = time.monotonic()
    # each request counts its prompt estimate (messages + schema, ~100 tokens) + 60 max_tokens; 60,000 tpm is
    # 1,000 tokens per second, bursting to one second's worth: 24 requests take about 3 s
    with Engine(http_config(server, tmp_path, tpm=60000, max_in_flight=64)) as engine:
        engine.generate(make_requests(24, max_tokens=60))
    assert time.monotonic() - started >= 2.0


def test_isolated_429s_do_not_collapse_the_window(fake_server, tmp_path: Path) -> None:
    # a server that sheds a few percent at any load: retried, but no reason to halve the window each time
    server = fake_server("--faults", "429:0.04,503:0.03", "--latency-ms", "30", "--retry-after", "0.05")
    with Engine(http_config(server, tmp_path, max_in_flight=64, max_attempts=10)) as engine:
        outcomes = engine.generate(make_requests(800))
        limiter = engine._limiter
    assert all(isinstance(o, GenerationResult) for o in outcomes)
    assert server.stats()["by_outcome"].get("429", 0) > 0
    assert limiter is not None and limiter.limit >= 48, limiter.limit


def test_submitted_batches_share_one_window(fake_server, tmp_path: Path) -> None:
    # what Beam's Generate does: several batches handed over without waiting, one window across all of them
    server = fake_server("--latency-ms", "200")
    with Engine(http_config(server, tmp_path, max_in_flight=8)) as engine:
        futures = [engine.submit(make_requests(8, prefix=f"b{b}-")) for b in range(3)]
        outcomes = [o for f in futures for o in f.result(timeout=60)]
    assert len(outcomes) == 24 and all(isinstance(o, GenerationResult) for o in outcomes)
    assert [o.request_id for o in outcomes[:8]] == [f"b0-{i}" for i in range(8)]
    assert server.stats()["max_in_flight"] == 8


def test_collector_thresholds_are_restored_after_a_run(fake_server, tmp_path: Path) -> None:
    import gc

    before = gc.get_threshold()
    server = fake_server()
    with Engine(http_config(server, tmp_path)) as engine:
        engine.generate(make_requests(20))
    assert gc.get_threshold() == before
