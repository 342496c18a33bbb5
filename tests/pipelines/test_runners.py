"""Runners give the same run: plain loop, Beam in memory, Beam multi-processing (same ids and content, order
aside); a killed generate leaves no half run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from run_content import run_content
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.schemas.layout import DataHome


def _content(layout) -> dict[str, list[dict]]:
    return run_content(layout)


def test_loop_in_memory_and_multi_processing_give_identical_runs(cli, home: Path, fake_llm) -> None:
    common = ("dilemmas", "--n", "5", "--base-url", fake_llm.base_url, "--model", "fake-model", "--no-progress")
    runs = {
        "loop": cli("generate", *common, "--run-id", "loop", "--executor", "loop"),
        "mem": cli("generate", *common, "--run-id", "mem", "--executor", "beam", "--refresh"),
        "mp": cli("generate", *common, "--run-id", "mp", "--executor", "beam", "--",
                  "--direct_running_mode=multi_processing", "--direct_num_workers=2"),
    }
    for name, res in runs.items():
        assert res.code == 0, (name, res.stderr[-3000:])
    home_ = DataHome(home)
    contents = {name: _content(home_.run(name)) for name in runs}
    assert len(contents["mem"]["dilemma"]) >= 3
    assert contents["loop"] == contents["mem"] == contents["mp"]
    manifest = home_.run("mp").read_manifest()
    assert manifest.model_extra["beam_args"] == ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert manifest.model_extra["executor"] == "beam"
    engine = home_.run("mem").read_manifest().model_extra["engine"]
    assert engine["requests"] > 0 and engine.get("cached", 0) == 0  # --refresh: Beam sent them all


def _chat_requests(server: FakeServer) -> int:
    return server.stats()["by_path"].get("/v1/chat/completions", 0)


def test_rerun_of_a_finished_job_is_answered_from_the_cache_without_beam(cli, home: Path, fake_llm) -> None:
    common = ("dilemmas", "--n", "4", "--base-url", fake_llm.base_url, "--model", "fake-model", "--no-progress")
    first = cli("generate", *common, "--run-id", "first")
    assert first.code == 0, first.stderr[-3000:]
    home_ = DataHome(home)
    assert home_.run("first").read_manifest().model_extra["executor"] == "beam"  # a cold cache: Beam runs it
    sent = _chat_requests(fake_llm)
    rerun = cli("generate", *common, "--run-id", "rerun")
    assert rerun.code == 0, rerun.stderr[-3000:]
    assert _chat_requests(fake_llm) == sent  # not one request
    extra = home_.run("rerun").read_manifest().model_extra
    assert extra["executor"] == "cache"
    assert extra["engine"]["sent"] == 0 and extra["engine"]["cached"] == extra["engine"]["requests"] > 0
    assert _content(home_.run("rerun")) == _content(home_.run("first"))
    # a plan the cache cannot answer in full: Beam runs it
    more = cli("generate", "dilemmas", "--n", "5", "--base-url", fake_llm.base_url, "--model", "fake-model",
               "--no-progress", "--run-id", "more")
    assert more.code == 0, more.stderr[-3000:]
    assert home_.run("more").read_manifest().model_extra["executor"] == "beam"
    assert _chat_requests(fake_llm) > sent


def test_killed_generate_leaves_no_half_run(cli, home: Path) -> None:
    with FakeServer(FakeServerConfig(latency="400", model="fake-model")) as server:
        cmd = [sys.executable, "-m", "valuecorpus", "generate", "dilemmas", "--n", "6", "--run-id", "killed",
               "--base-url", server.base_url, "--model", "fake-model", "--no-progress"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "VALUECORPUS_HOME": str(home)})
        runs = DataHome(home).runs_dir
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.stats()["requests"] == 0:
            time.sleep(0.2)
        time.sleep(1.0)  # requests in flight
        assert proc.poll() is None, "generate finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    leftovers = list(runs.iterdir())
    assert leftovers and all(p.name.startswith(".killed.") for p in leftovers)  # hidden scratch, no run
    assert DataHome(home).list_runs() == []
    listed = cli("runs")
    assert listed.code == 0 and "killed" not in listed.stdout
    # the next generate removes the dead run's leftovers and completes
    with FakeServer(FakeServerConfig(model="fake-model")) as server:
        res = cli("generate", "dilemmas", "--n", "2", "--run-id", "killed", "--base-url", server.base_url,
                      "--model", "fake-model", "--no-progress", "--executor", "loop")
        assert res.code == 0, res.stderr
    assert [p.name for p in runs.iterdir()] == ["killed"]
    assert DataHome(home).run("killed").exists()


def test_cost_cap_stops_requests_stages_what_was_made_and_exits_with_budget_code(cli, home: Path, fake_llm,
                                                                                   tmp_path: Path) -> None:
    from valuecorpus.schemas.errors import BudgetExhausted

    settings = tmp_path / "settings.yaml"
    settings.write_text("prices: {fake-model: {prompt: 100, completion: 100}}\n", encoding="utf-8")
    res = cli("generate", "dilemmas", "--n", "4", "--run-id", "capped", "--base-url", fake_llm.base_url,
              "--model", "fake-model", "--no-progress", "--executor", "loop", "--max-cost", "0.05",
              env={"VALUECORPUS_SETTINGS": str(settings)})
    assert res.code == BudgetExhausted.exit_code, res.stderr
    assert "budget exhausted (cost cap $0.0500): spent $" in res.stderr and "run 'capped' was staged" in res.stderr
    layout = DataHome(home).run("capped")
    manifest = layout.read_manifest()
    assert manifest.model_extra["dead_letter_classes"].get("budget_exhausted", 0) > 0
    assert manifest.cost_usd <= 0.05


def test_unknown_executor_is_one_clear_error(cli) -> None:
    res = cli("generate", "dilemmas", "--n", "1", "--executor", "spark")
    assert res.code == 2, res.stderr
    assert "--executor must be 'auto', 'beam' or 'loop', not 'spark'" in res.stderr
    assert "Traceback" not in res.stderr
