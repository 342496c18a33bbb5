"""End to end against a real llama.cpp OpenAI-compatible server (`llama-cpp-python[server]` in its own venv,
`.venv-llamaserver`, built from requirements/llamaserver.txt) serving SmolLM2: the dialect probe finds
llama.cpp's structured-output form, and answers are schema-valid with enum values respected."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from valuecorpus.pipelines.engine import Engine, EngineConfig, GenerationRequest, GenerationResult
from valuecorpus.pipelines.engine.config import default_local_model_path

REPO = Path(__file__).resolve().parents[2]
SERVER_PYTHON = REPO / ".venv-llamaserver" / "bin" / "python"
SCHEMA = {
    "type": "object",
    "properties": {"value": {"type": "string", "enum": ["honesty", "courage", "humility"]}},
    "required": ["value"],
    "additionalProperties": False,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert SERVER_PYTHON.exists(), (
        f"{SERVER_PYTHON} is missing: build it with `python3 -m venv .venv-llamaserver && "
        ".venv-llamaserver/bin/pip install -r requirements/llamaserver.txt` (make test does)"
    )
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(SERVER_PYTHON), "-m", "llama_cpp.server", "--model", default_local_model_path(),
             "--host", "127.0.0.1", "--port", str(port), "--n_threads", "2", "--n_ctx", "2048",
             "--chat_format", "chatml", "--model_alias", "smollm2"],
            stdout=fh, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"llama.cpp server exited: {log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(base + "/models", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"llama.cpp server did not start: {log.read_text()[-2000:]}"
                time.sleep(0.5)
        yield base
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_llamacpp_server_end_to_end(llama_server: str, tmp_path: Path) -> None:
    config = EngineConfig(backend="openai", base_url=llama_server, model="smollm2", dialect="auto",
                          cache_dir=str(tmp_path / "cache"), max_in_flight=2, timeout_s=300)
    requests = [
        GenerationRequest(request_id=f"e2e-{i}", json_schema=SCHEMA, params={"max_tokens": 24},
                          messages=[{"role": "user", "content": text}])
        for i, text in enumerate(["Which value is telling the truth? Say 'truthfulness'.",
                                  "Which value is admitting a mistake?"])
    ]
    with Engine(config) as engine:
        outcomes = engine.generate(requests)
        assert engine.dialect == "llamacpp"  # its OpenAI-style json_schema answers HTTP 500
    for outcome in outcomes:
        assert isinstance(outcome, GenerationResult), outcome
        assert outcome.parsed["value"] in SCHEMA["properties"]["value"]["enum"]
        assert outcome.endpoint_kind == "llamacpp" and outcome.usage.prompt_tokens > 0
    with Engine(config) as engine:  # probe result and answers come from the cache: no request at all
        assert [o.content for o in engine.generate(requests)] == [o.content for o in outcomes]
        assert engine.stats.sent == 0
