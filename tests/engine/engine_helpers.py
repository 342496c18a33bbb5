"""Helpers for the engine tests: the fake OpenAI-compatible server in a subprocess on a free loopback port
(stopped by its PID), and request builders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from valuecorpus.pipelines.engine import EngineConfig, GenerationRequest

VALUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "value": {"type": "string", "enum": ["care", "fairness", "loyalty"]},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["value", "score"],
    "additionalProperties": False,
}


class FakeServerProcess:
    def __init__(self, tmp: Path, *args: str) -> None:
        port_file = tmp / f"port-{time.monotonic_ns()}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "valuecorpus.pipelines.engine.fake_server", "--port", "0",
             "--port-file", str(port_file), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake server did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def chat_requests(self) -> int:
        return int(self.stats()["by_path"].get("/v1/chat/completions", 0))

    def reset(self, **change: Any) -> None:
        req = urllib.request.Request(self.url + "/reset", data=json.dumps(change).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def http_config(server: FakeServerProcess, tmp_path: Path | None, **overrides: Any) -> EngineConfig:
    values: dict[str, Any] = {
        "backend": "openai", "base_url": server.base_url, "model": "fake-model", "dialect": "openai",
        "max_in_flight": 16, "timeout_s": 5.0, "max_attempts": 4,
        "backoff_base_s": 0.02, "transient_backoff_s": 0.02, "backoff_max_s": 0.2,
        "cache_dir": str(tmp_path / "cache") if tmp_path is not None else None,
    }
    values.update(overrides)
    return EngineConfig(**values)


def make_requests(n: int, schema: dict[str, Any] | None = VALUE_SCHEMA, prefix: str = "r",
                  max_tokens: int = 64) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            request_id=f"{prefix}{i}",
            messages=[{"role": "user", "content": f"Classify the rule of thumb number {i} into a value."}],
            json_schema=schema, params={"max_tokens": max_tokens}, metadata={"plan_item": f"item-{i}"},
        )
        for i in range(n)
    ]


def by_id(outcomes: list[Any]) -> dict[str, Any]:
    return {o.request_id: o for o in outcomes}


def assert_accounted(requests: list[GenerationRequest], outcomes: list[Any]) -> None:
    """requests = results + dead letters, in input order, one outcome each."""
    assert [o.request_id for o in outcomes] == [r.request_id for r in requests]
