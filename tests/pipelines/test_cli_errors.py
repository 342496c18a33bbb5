"""A mistake a user can make ends with one `error:` line and its exit code, on the Beam executor as on the
loop: no runner log, no traceback (those only with --debug)."""

from __future__ import annotations

from pathlib import Path

import pytest
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.schemas.errors import BudgetExhausted, EndpointError
from valuecorpus.schemas.layout import DataHome

EXECUTORS = ("beam", "loop")


def _one_error_line(stderr: str) -> str:
    """The only line besides the 'generating …' banner, which must be the error."""
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("generating ")]
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith("error: ") and "while running" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_unreachable_endpoint(cli, home: Path, executor: str) -> None:
    res = cli("generate", "dilemmas", "--n", "2", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
              "--no-progress", "--executor", executor)
    assert res.code == EndpointError.exit_code
    line = _one_error_line(res.stderr)
    assert "http://127.0.0.1:9/v1" in line and "openai_base_url" in line


@pytest.mark.parametrize("executor", EXECUTORS)
def test_wrong_api_key(cli, home: Path, executor: str) -> None:
    with FakeServer(FakeServerConfig(api_key="the-right-key")) as server:
        res = cli("generate", "dilemmas", "--n", "2", "--base-url", server.base_url, "--model", "fake-model",
                  "--no-progress", "--executor", executor, env={"OPENAI_API_KEY": "a-wrong-key-0123"})
    assert res.code == EndpointError.exit_code
    line = _one_error_line(res.stderr)
    assert "openai_api_key" in line and "a-wrong-key-0123" not in res.stderr + res.stdout


@pytest.mark.parametrize("executor", EXECUTORS)
def test_budget_stop(cli, home: Path, fake_llm, tmp_path: Path, executor: str) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("prices: {fake-model: {prompt: 100, completion: 100}}\n", encoding="utf-8")
    res = cli("generate", "dilemmas", "--n", "4", "--run-id", "capped", "--base-url", fake_llm.base_url,
              "--model", "fake-model", "--no-progress", "--executor", executor, "--max-cost", "0.05",
              env={"VALUECORPUS_SETTINGS": str(settings)})
    assert res.code == BudgetExhausted.exit_code
    assert "run 'capped' was staged" in _one_error_line(res.stderr)
    assert DataHome(home).run("capped").read_manifest().model_extra["dead_letter_classes"]["budget_exhausted"] > 0


def test_debug_shows_the_traceback_on_beam(cli, home: Path) -> None:
    res = cli("--debug", "generate", "dilemmas", "--n", "1", "--base-url", "http://127.0.0.1:9/v1", "--model",
              "m", "--no-progress", "--executor", "beam")
    assert res.code != 0 and "Traceback" in res.stderr and "EndpointError" in res.stderr
