"""The fake server in a process of its own (as a real endpoint would be), started on a free loopback port and
stopped by its PID: what tests and benchmarks use.

    with FakeServerProcess("--latency-ms", "200") as server:
        server.base_url, server.stats(), server.reset(faults="500:0.1")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any


class FakeServerProcess:
    def __init__(self, *args: str, python: str | None = None, start_timeout_s: float = 30.0) -> None:
        with tempfile.TemporaryDirectory(prefix="fake-server-") as tmp:
            port_file = Path(tmp) / "port"
            self.proc = subprocess.Popen(
                [python or sys.executable, "-m", "valuecorpus_testing.fake_server", "--port", "0",
                 "--port-file", str(port_file), *args],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            deadline = time.monotonic() + start_timeout_s
            while not port_file.exists():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    err = self.proc.stderr.read() if self.proc.stderr else ""
                    raise RuntimeError(f"fake server did not start: {err}")
                time.sleep(0.02)
            self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return self.control("/stats")

    def chat_requests(self) -> int:
        return int(self.stats()["by_path"].get("/v1/chat/completions", 0))

    def reset(self, **change: Any) -> None:
        self.control("/reset", change)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def __enter__(self) -> FakeServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
