"""What every benchmark part shares: the fake server as a subprocess, the workload, measurement, results."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuecorpus.schemas.layout import write_json_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CLIENTS = REPO / "bench" / "clients"
MAIN_PYTHON = Path(sys.executable)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class FakeServerProcess:
    """The fake server in its own process (as a real endpoint would be), stopped by its PID."""

    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    port: int = 0

    def start(self) -> FakeServerProcess:
        self.proc = subprocess.Popen(
            [str(MAIN_PYTHON), "-m", "valuecorpus.pipelines.engine.fake_server", "--port", "0", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if "127.0.0.1:" not in line:
            raise RuntimeError(f"fake server did not start: {line}{self.proc.stderr.read()}")  # type: ignore
        self.port = int(line.split("127.0.0.1:", 1)[1].split("/", 1)[0])
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def cpu_s(self) -> float:
        assert self.proc is not None
        return proc_cpu_s(self.proc.pid)

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return self.control("/stats")

    def reset(self, **change: Any) -> None:
        self.control("/reset", change)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


@contextmanager
def fake_server(*args: str):  # type: ignore[no-untyped-def]
    server = FakeServerProcess(list(args)).start()
    try:
        yield server
    finally:
        server.stop()


def run_client(python: Path | str, script: str, params: dict[str, Any], server: FakeServerProcess | None,
               timeout: float = 1800, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one client script in its own process (its own CPU and RSS accounting); it prints one JSON line.

    Adds the server's CPU time, the request count the server saw, and the load average around the run."""
    before_load = load()
    server_cpu0 = server.cpu_s() if server else 0.0
    if server:
        server.reset()
    proc = subprocess.run([str(python), str(CLIENTS / script), json.dumps(params)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=str(REPO))
    out: dict[str, Any] = {"client": script, "params": params, "load_before": before_load, "load_after": load()}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        out.update(ok=False, error=(proc.stderr.strip().splitlines() or ["no output"])[-1][:500],
                   stderr_tail=proc.stderr[-3000:])
        return out
    out.update(json.loads(lines[-1]))
    out["ok"] = True
    if server:
        stats = server.stats()
        out["server"] = {"requests": stats["by_path"].get("/v1/chat/completions", 0),
                         "by_outcome": stats["by_outcome"], "max_in_flight": stats["max_in_flight"],
                         "cpu_s": round(server.cpu_s() - server_cpu0, 3)}
    return out


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    write_json_atomic(path, data)
    return path
