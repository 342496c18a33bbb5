"""The durable cache: warm reruns make no request, kill -9 loses only what was in flight, several processes
write at once, refresh bypasses it, and the `valuecorpus cache` command reports and prunes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from engine_helpers import assert_accounted, http_config, make_requests

from valuecorpus.pipelines.engine import Engine, GenerationResult
from valuecorpus.pipelines.engine.cache import CACHE_FILE

JOB = Path(__file__).with_name("engine_job.py")


def _contents(outcomes: list) -> dict[str, str]:
    return {o.request_id: o.content for o in outcomes if isinstance(o, GenerationResult)}


def _cached_keys(cache_dir: Path) -> int:
    with sqlite3.connect(cache_dir / CACHE_FILE) as conn:
        return conn.execute("SELECT count(*) FROM answers").fetchone()[0]


def test_warm_rerun_makes_zero_requests_and_refresh_bypasses(fake_server, tmp_path: Path) -> None:
    server = fake_server("--latency-ms", "5")
    requests = make_requests(50)
    with Engine(http_config(server, tmp_path)) as engine:
        cold = engine.generate(requests)
    assert server.chat_requests() == 50
    with Engine(http_config(server, tmp_path)) as engine:
        warm = engine.generate(requests)
        assert engine.stats.cached == 50 and engine.stats.sent == 0
    assert server.chat_requests() == 50
    assert_accounted(requests, warm)
    assert all(isinstance(o, GenerationResult) and o.cached for o in warm)
    assert _contents(warm) == _contents(cold)
    with Engine(http_config(server, tmp_path, refresh=True)) as engine:
        engine.generate(requests[:10])
    assert server.chat_requests() == 60


def test_cached_answers_all_or_nothing_and_sends_nothing(fake_server, tmp_path: Path) -> None:
    server = fake_server("--latency-ms", "5")
    requests = make_requests(300)  # more than one lookup chunk
    with Engine(http_config(server, tmp_path)) as engine:
        assert engine.cached(requests) is None  # nothing cached yet
        cold = engine.generate(requests[:-1])
    assert server.chat_requests() == 299
    with Engine(http_config(server, tmp_path)) as engine:
        before = engine.stats.as_dict()
        assert engine.cached(requests) is None  # the last one is missing: no answer at all, and no request
        assert engine.stats.as_dict() == before
        warm = engine.cached(requests[:-1])
        assert warm is not None and engine.stats.cached == engine.stats.requests == 299 and engine.stats.sent == 0
        assert engine.stats.elapsed_s > 0
    assert server.chat_requests() == 299
    assert_accounted(requests[:-1], warm)
    assert all(isinstance(o, GenerationResult) and o.cached for o in warm)
    assert _contents(warm) == _contents(cold)
    with Engine(http_config(server, tmp_path, refresh=True)) as engine:
        assert engine.cached(requests[:-1]) is None  # --refresh: the cache answers nothing


def test_identical_prompts_are_paid_once(fake_server, tmp_path: Path) -> None:
    server = fake_server()
    requests = make_requests(5)
    twins = [r.model_copy(update={"request_id": r.request_id + "-twin"}) for r in requests]
    with Engine(http_config(server, tmp_path)) as engine:
        outcomes = engine.generate(requests + twins)
    assert server.chat_requests() == 5
    assert [o.content for o in outcomes[:5]] == [o.content for o in outcomes[5:]]


def test_kill_9_mid_run_then_rerun_repeats_no_cached_request(fake_server, tmp_path: Path) -> None:
    n, in_flight = 400, 8
    server = fake_server("--latency-ms", "20")
    cache_dir = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, str(JOB), server.base_url, str(cache_dir), str(n), str(in_flight)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while server.stats()["by_outcome"].get("ok", 0) < 120:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    answered_before = server.stats()["by_outcome"].get("ok", 0)
    cached = _cached_keys(cache_dir)
    # lost: only what was in flight plus the last commit interval (50 ms here; longer on a starved machine)
    assert 0 < cached <= answered_before
    assert cached >= answered_before // 2

    sent_before = server.chat_requests()
    requests = make_requests(n)
    with Engine(http_config(server, tmp_path, max_in_flight=in_flight)) as engine:
        outcomes = engine.generate(requests)
        assert engine.stats.cached == cached
    assert_accounted(requests, outcomes)
    assert server.chat_requests() - sent_before == n - cached  # not one cached request was sent again
    assert server.stats()["repeated_ok"] <= answered_before - cached

    with Engine(http_config(server, tmp_path / "reference", max_in_flight=32)) as engine:
        reference = engine.generate(requests)
    assert _contents(outcomes) == _contents(reference)  # the same final set as an uninterrupted run
    assert len(_contents(outcomes)) == n


def test_several_processes_write_the_cache_at_once(fake_server, tmp_path: Path) -> None:
    server = fake_server("--latency-ms", "2")
    cache_dir = tmp_path / "cache"
    # three overlapping slices of the same 300 requests, in three processes at once
    procs = [subprocess.Popen([sys.executable, str(JOB), server.base_url, str(cache_dir), "150", "16", str(off)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for off in (0, 75, 150)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        stats = json.loads(out)
        assert stats["results"] == 150
    assert _cached_keys(cache_dir) == 300
    requests = make_requests(300)
    sent = server.chat_requests()
    with Engine(http_config(server, tmp_path)) as engine:
        outcomes = engine.generate(requests)
    assert server.chat_requests() == sent
    assert all(isinstance(o, GenerationResult) and o.cached for o in outcomes)


def test_cache_command_stats_and_prune(fake_server, tmp_path: Path, cli, home: Path) -> None:
    server = fake_server()
    with Engine(http_config(server, None, cache_dir=str(home / "cache"))) as engine:
        engine.generate(make_requests(12))
    res = cli("cache", "stats")
    assert res.code == 0, res.stderr
    assert "entries: 12" in res.stdout and "fake-model: 12" in res.stdout
    res = cli("cache", "prune")
    assert res.code != 0 and "--older-than" in res.stderr
    res = cli("cache", "prune", "--older-than", "1")
    assert res.code == 0 and "removed 0" in res.stdout
    res = cli("cache", "prune", "--model", "fake-model")
    assert res.code == 0 and "removed 12" in res.stdout
    assert "entries: 0" in cli("cache", "stats").stdout
