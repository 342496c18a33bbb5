"""How many requests per second the fake server sustains, measured with `wrk` (apt-get install -y wrk).

Two figures: with no latency (the server's raw capacity: CPU per request) and with the benchmark's 200 ms
latency and many connections (timers and sockets at scale). The benchmark asks at most C/L = 1,280 req/s of it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.common import fake_server, load, server_cpu_s

LUA = Path(__file__).with_name("wrk_chat.lua")


def wrk(url: str, connections: int, seconds: int, threads: int = 1) -> dict[str, Any]:
    before = load()
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA),
                          url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+(\S+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return {"connections": connections, "seconds": seconds, "req_per_s": rate,
            "socket_errors": errors.group(1) if errors else None, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "p50": p50.group(1) if p50 else None, "p99": p99.group(1) if p99 else None,
            "load_before": before, "load_after": load()}


def run(seconds: int = 10, asked: float = 1280.0) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"ok": False, "error": "wrk is not installed (apt-get install -y wrk)"}
    result: dict[str, Any] = {"ok": True, "asked_req_per_s": asked}
    with fake_server() as server:
        url = server.base_url + "/chat/completions"
        wrk(url, 16, 2)  # warm-up: compile the schema once, fill caches
        cpu0 = server_cpu_s(server)
        result["no_latency"] = wrk(url, 64, seconds)
        result["no_latency"]["server_cpu_s"] = round(server_cpu_s(server) - cpu0, 2)
    with fake_server("--latency-ms", "200") as server:
        result["latency_200ms"] = wrk(server.base_url + "/chat/completions", 2048, seconds)
    best = max(result["no_latency"]["req_per_s"], result["latency_200ms"]["req_per_s"])
    result["capacity_req_per_s"] = best
    result["headroom"] = round(best / asked, 1)
    return result
