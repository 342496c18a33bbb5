"""Batch API mode against the fake server's /v1/files and /v1/batches: submit in chunks, resume collects into
the cache and resubmits only failed items; afterwards live generation pays only for what never came back."""

from __future__ import annotations

from pathlib import Path

from engine_helpers import http_config, make_requests

from valuecorpus.pipelines.engine import Engine, GenerationResult
from valuecorpus.pipelines.engine.batch import load_state, resume_batches, submit_batches, wait_for_batches
from valuecorpus.schemas.layout import DataHome


def test_batches_submit_resume_resubmit_and_feed_the_cache(fake_server, tmp_path: Path) -> None:
    server = fake_server("--batch-delay", "4", "--batch-fail-rate", "0.2")  # ends after the first poll
    layout = DataHome(tmp_path / "home").run("batch-run")
    config = http_config(server, tmp_path, max_attempts=2)
    requests = make_requests(30)
    report = submit_batches(config, requests, layout.batches, layout.work_dir, max_per_batch=12)
    assert report.submitted == 30
    state = load_state(layout.batches)
    assert [j.requests for j in state.jobs] == [12, 12, 6]  # chunked within the per-batch limit
    assert "api_key" not in layout.batches.read_text()

    assert resume_batches(config, layout.batches).pending == 3  # still running
    report = wait_for_batches(config, layout.batches, interval_s=0.2, timeout_s=60)
    state = load_state(layout.batches)
    first_round = [j for j in state.jobs if j.round == 1]
    failed = sum(j.failed for j in first_round)
    assert 0 < failed < 30
    resubmitted = [j for j in state.jobs if j.round > 1]  # a later round per poll that saw batches end
    assert sum(j.requests for j in resubmitted) == failed  # only the failed items went again
    assert all(j.collected for j in state.jobs)
    assert len(state.failures) == failed  # this server fails the same items every time: given up after 2

    sent = server.chat_requests()
    with Engine(config) as engine:
        outcomes = engine.generate(requests)
        assert engine.stats.cached == 30 - failed
    assert server.chat_requests() - sent == failed  # live calls only for what the batches never answered
    assert all(isinstance(o, GenerationResult) for o in outcomes)
    # a second submission of the same requests finds everything cached: nothing to send
    assert submit_batches(config, requests, layout.batches, layout.work_dir).submitted == 0


def test_run_resume_command(fake_server, tmp_path: Path, cli, home: Path) -> None:
    server = fake_server("--batch-delay", "0")
    layout = DataHome(home).run("batch-cli")
    config = http_config(server, None, cache_dir=str(home / "cache"))
    submit_batches(config, make_requests(5), layout.batches, layout.work_dir)
    env = {"OPENAI_BASE_URL": server.base_url, "VALUECORPUS_MODEL": "fake-model"}
    res = cli("run", "resume", "batch-cli", env=env)
    assert res.code == 0, res.stderr
    assert "answers collected 5" in res.stdout and "0 running" in res.stdout
    res = cli("run", "resume", "no-such-run", env=env)
    assert res.code != 0 and "no Batch API jobs" in res.stderr
