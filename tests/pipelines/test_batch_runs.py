"""`valuecorpus generate --batch` and `run resume` against the fake server's /v1/files and /v1/batches.

The guarantee under test: a run goes through every chain step as Batch API jobs, and a `kill -9` at any phase
(uploading, creating a batch, polling, downloading answers, submitting the next step or a resubmission),
followed by a rerun, never submits one request twice. What the server received is read back from the server
itself (every batch's input file), not from the run's own records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from valuecorpus_testing.fake_server_process import FakeServerProcess

from valuecorpus.schemas.layout import DataHome

FAIL_RATE = "0.25"  # a quarter of the items land in the error file, every time they are sent
RECIPE = """\
kind: dilemmas
count: 2
seed: 7
taxonomy: dailydilemmas_values
model: {max_attempts: 2, dialect: openai}  # no probe: the server sees batches only
output: {dataset: batchy}
"""


@pytest.fixture
def server() -> Any:
    with FakeServerProcess("--batch-delay", "0.2", "--batch-fail-rate", FAIL_RATE) as srv:
        yield srv


def _get(server: FakeServerProcess, path: str) -> Any:
    with urllib.request.urlopen(server.url + path, timeout=30) as resp:
        body = resp.read()
    return json.loads(body) if path.startswith("/v1/batches") else body


def submitted(server: FakeServerProcess) -> Counter[str]:
    """custom_id -> how many batches the server holds it in, read from the input files it stored."""
    seen: Counter[str] = Counter()
    for batch in _get(server, "/v1/batches")["data"]:
        for line in _get(server, f"/v1/files/{batch['input_file_id']}/content").splitlines():
            if line.strip():
                seen[json.loads(line)["custom_id"]] += 1
    return seen


def _recipe(tmp_path: Path) -> str:
    path = tmp_path / "batchy.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    return str(path)


def _generate_args(server: FakeServerProcess, recipe: str, *extra: str) -> list[str]:
    return ["generate", recipe, "--base-url", server.base_url, "--model", "fake-model", "--batch",
            "--no-progress", *extra]


def _killed_at(server: FakeServerProcess, route: str, args: list[str], home: Path) -> None:
    """Run the command, hold the server's answer on `route` back, and kill -9 the command while it waits:
    the server has done what was asked, the command never learnt it."""
    before = server.stats()["received"].get(route, 0)
    server.control("/delay", {"route_delay": f"{route}=30"})
    proc = subprocess.Popen([sys.executable, "-m", "valuecorpus", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "VALUECORPUS_HOME": str(home)})
    deadline = time.monotonic() + 120
    try:
        while server.stats()["received"].get(route, 0) == before:
            assert proc.poll() is None, f"finished before reaching {route}: {proc.stderr.read()[-2000:]!r}"
            assert time.monotonic() < deadline, f"never reached {route}"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        server.control("/delay", {"route_delay": None})
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _pending(home: Path) -> str:
    from valuecorpus.pipelines.batch_run import pending_runs

    (run_id,) = pending_runs(DataHome(home))
    return run_id


def _finish_and_check(cli, server: FakeServerProcess, home: Path, run_id: str) -> None:
    res = cli("run", "resume", run_id, "--wait", "--interval", "0.2", timeout=600)
    assert res.code == 0, res.stderr[-3000:]
    layout = DataHome(home).run(run_id)
    assert layout.exists(), res.stdout[-2000:]
    manifest = layout.read_manifest()
    extra = manifest.model_extra
    # every planned sample ends as a record, a filtered row or a failed sample with its dead letters
    assert extra["generated"] + extra["samples_failed"] == manifest.plan_items == 2
    state = json.loads(layout.batches.read_text(encoding="utf-8"))
    seen = submitted(server)
    assert seen, "nothing reached the Batch API"
    # never twice: each item sits in exactly as many batches as submissions were planned for it, and an item
    # that never failed in exactly one
    assert dict(seen) == state["attempts"]
    assert all(n == 1 for k, n in seen.items() if k not in state["failures"])
    assert max(seen.values()) <= 2  # max_attempts
    assert server.chat_requests() == 0  # no live call: every answer came through a batch
    steps = {row["step"] for row in extra["spend"]}
    if extra["generated"]:  # a sample that came through every step was answered in each (a quarter of the
        # items fail each time they are sent, so now and then both samples fail at the first step)
        assert {"situation", "consequence"} <= steps
    # nothing is left pending, and resuming a staged run says so
    assert not (DataHome(home).runs_dir / f".{run_id}.batch").exists()
    again = cli("run", "resume", run_id)
    assert again.code == 0 and "is staged" in again.stdout


def test_killed_submits_then_rerun_submits_nothing_twice(cli, home: Path, server: FakeServerProcess,
                                                        tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    # killed while uploading the first input file (the server stored it), then the rerun killed while creating
    # the batch (the server created it): each rerun finds what the killed one sent, by its token
    _killed_at(server, "POST /v1/files", _generate_args(server, recipe), home)
    run_id = _pending(home)
    _killed_at(server, "POST /v1/batches", _generate_args(server, recipe), home)
    assert _pending(home) == run_id
    # the same command again (no run id): it finds the killed submission and continues it
    res = cli(*_generate_args(server, recipe))
    assert res.code == 0, res.stderr[-3000:]
    assert f"run {run_id}:" in res.stdout
    _finish_and_check(cli, server, home, run_id)


def test_killed_resumes_then_rerun_submits_nothing_twice(cli, home: Path, server: FakeServerProcess,
                                                        tmp_path: Path) -> None:
    res = cli(*_generate_args(server, _recipe(tmp_path), "--run-id", "resumed"))
    assert res.code == 0, res.stderr[-3000:]
    assert "run resume resumed" in res.stdout
    assert not DataHome(home).run("resumed").exists()  # not a run until every step is answered
    assert "resumed" not in cli("runs").stdout
    time.sleep(0.5)  # the first step's batch has ended
    # killed while polling, while downloading the answers, while submitting the next step and the failed items
    for route in ("GET /v1/batches/{id}", "GET /v1/files/{id}/content", "POST /v1/batches"):
        _killed_at(server, route, ["run", "resume", "resumed"], home)
        time.sleep(0.3)
    _finish_and_check(cli, server, home, "resumed")


def test_batch_needs_an_endpoint(cli, home: Path, tmp_path: Path) -> None:
    res = cli("generate", _recipe(tmp_path), "--batch", "--no-progress")
    assert res.code == 2 and res.stderr.startswith("error:") and "openai_base_url" in res.stderr
