"""What every benchmark part shares: the fake server as a subprocess, the workload, measurement, results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from valuecorpus_testing.fake_server_process import FakeServerProcess

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


def fake_server(*args: str) -> FakeServerProcess:
    """The fake server in its own process (as a real endpoint would be); a context manager, stopped by its PID."""
    return FakeServerProcess(*args, python=str(MAIN_PYTHON))


def server_cpu_s(server: FakeServerProcess) -> float:
    return proc_cpu_s(server.pid)


def run_client(python: Path | str, script: str, params: dict[str, Any], server: FakeServerProcess | None,
               timeout: float = 1800, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one client script in its own process (its own CPU and RSS accounting); it prints one JSON line.

    Adds the server's CPU time, the request count the server saw, and the load average around the run."""
    before_load = load()
    server_cpu0 = server_cpu_s(server) if server else 0.0
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
                         "cpu_s": round(server_cpu_s(server) - server_cpu0, 3)}
    return out


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    write_json_atomic(path, data)
    return path
