"""Money that survives a resume: a run killed mid-way and rerun under its id shows in its manifest what the
whole run paid (each distinct answer once, at the price table's rates), per (step, endpoint, model); a run
answered from another run's cache entries shows 0. The expected amounts are what the fake server itself
counted for an uninterrupted run of the same recipe (its usage is a fixed function of each request)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from valuecorpus_testing.fake_server_process import FakeServerProcess

from valuecorpus.schemas.layout import DataHome

PROMPT_PRICE, COMPLETION_PRICE = 100.0, 200.0  # USD per 1M tokens


def _args(server: FakeServerProcess, run_id: str) -> list[str]:
    return ["generate", "dilemmas", "--n", "3", "--run-id", run_id, "--base-url", server.base_url, "--model",
            "fake-model", "--executor", "loop", "--no-progress"]


def _settings(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "settings.yaml"
    path.write_text(f"structured_output: openai\nprices: {{fake-model: {{prompt: {PROMPT_PRICE}, "
                    f"completion: {COMPLETION_PRICE}}}}}\n", encoding="utf-8")
    return {"VALUECORPUS_SETTINGS": str(path)}


def _cost(tokens: dict[str, int]) -> float:
    return (tokens["prompt"] * PROMPT_PRICE + tokens["completion"] * COMPLETION_PRICE) / 1e6


def test_cost_totals_across_a_kill_and_resume(cli, home: Path, tmp_path: Path) -> None:
    env = _settings(tmp_path)
    clean_home = tmp_path / "clean-home"
    with FakeServerProcess() as server:  # the reference: what one uninterrupted run costs at the server
        res = cli(*_args(server, "clean"), env={**env, "VALUECORPUS_HOME": str(clean_home)})
        assert res.code == 0, res.stderr[-3000:]
        paid_once = server.stats()["tokens"]
        assert server.stats()["repeated_ok"] == 0
    with FakeServerProcess("--latency-ms", "300") as server:
        proc = subprocess.Popen([sys.executable, "-m", "valuecorpus", *_args(server, "money")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, **env, "VALUECORPUS_HOME": str(home)})
        deadline = time.monotonic() + 120
        while server.chat_requests() < 6:  # the first step answered, the second under way
            assert proc.poll() is None and time.monotonic() < deadline, "generate ended before the kill"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert not DataHome(home).run("money").exists()
        res = cli(*_args(server, "money"), env=env)  # resumed: the same run id
        assert res.code == 0, res.stderr[-3000:]
        manifest = DataHome(home).run("money").read_manifest()
        # each distinct answer paid once, the killed attempt's included (a kill can lose the answers in flight:
        # those the server answers twice, and the run counts them once)
        assert manifest.tokens == {"prompt": paid_once["prompt"], "completion": paid_once["completion"]}
        assert abs(manifest.cost_usd - _cost(paid_once)) < 1e-6
        spend = manifest.model_extra["spend"]
        assert {row["endpoint"] for row in spend} == {server.base_url}
        assert {row["model"] for row in spend} == {"fake-model"}
        assert [row["step"] for row in spend][:2] == ["situation", "consequence"]
        assert abs(sum(row["cost_usd"] for row in spend) - manifest.cost_usd) < 1e-5
        assert sum(row["prompt_tokens"] for row in spend) == paid_once["prompt"]

        # another run of the same recipe: every answer from the cache, paid by another run, at 0
        res = cli(*_args(server, "again"), env=env)
        assert res.code == 0, res.stderr[-3000:]
        again = DataHome(home).run("again").read_manifest()
        assert again.cost_usd == 0 and sum(again.tokens.values()) == 0
        assert all(row["cached"] == row["requests"] > 0 and row["cost_usd"] == 0 for row in again.model_extra["spend"])

    shown = cli("run", "show", "money", env={**env, "COLUMNS": "200"})
    assert shown.code == 0, shown.stderr
    assert "paid per step" in shown.stdout and "situation" in shown.stdout and "consequence" in shown.stdout
