"""Each distinct request is paid once, on every executor: the fake server counts its answers per distinct body
(a body answered twice is `repeated_ok`). A dilemmas run over few topic groups holds many identical requests;
the loop, in-memory Beam and multi-process Beam must each send every distinct body exactly once, and ask the
endpoint's /models (the key check and the dialect probe) as often as the loop does: once per run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from canned import Responder
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

EXECUTORS = {
    "loop": ("--executor", "loop"),
    "beam-in-memory": ("--executor", "beam"),
    "beam-multi-process": ("--executor", "beam", "--", "--direct_running_mode=multi_processing",
                           "--direct_num_workers=2"),
}


@pytest.fixture(scope="module")
def counts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = {}
    for name, flags in EXECUTORS.items():
        with FakeServer(FakeServerConfig(responder=Responder(), model="fake-model")) as server:
            home = tmp_path_factory.mktemp(name) / "home"
            res = _cli(home, "generate", "dilemmas", "--n", "24", "--base-url", server.base_url,
                             "--model", "fake-model", "--no-progress", "--run-id", "r", *flags)
            assert res.code == 0, (name, res.stderr[-3000:])
            out[name] = {**server.stats(), "engine": _engine(home)}
    return out


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "valuecorpus", *args], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "VALUECORPUS_HOME": str(home)})
    proc.code = proc.returncode  # type: ignore[attr-defined]
    return proc


def _engine(home: Path) -> dict:
    from valuecorpus.schemas.layout import DataHome

    return DataHome(home).run("r").read_manifest().model_extra["engine"]


@pytest.mark.parametrize("executor", list(EXECUTORS))
def test_each_distinct_body_is_answered_once(counts: dict[str, dict], executor: str) -> None:
    stats = counts[executor]
    chat = stats["by_path"]["/v1/chat/completions"]
    assert stats["repeated_ok"] == 0, stats  # no body answered twice
    assert chat == stats["distinct_requests"]
    assert chat == counts["loop"]["by_path"]["/v1/chat/completions"]  # the same distinct bodies everywhere
    # the run holds identical requests: fewer were sent than the chain made
    assert counts["loop"]["engine"]["requests"] > chat - 3  # (the probe's few bodies are chat requests too)


@pytest.mark.parametrize("executor", list(EXECUTORS))
def test_the_endpoint_is_checked_once_per_run(counts: dict[str, dict], executor: str) -> None:
    assert counts[executor]["by_path"].get("/v1/models", 0) == counts["loop"]["by_path"].get("/v1/models", 0)
