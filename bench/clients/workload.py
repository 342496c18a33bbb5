"""The benchmark workload and the client-side meter. Standard library only: the client scripts import this
from the venvs of the tools they measure."""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

# One small structured request, the shape a recipe sends (a dilemma with values from a closed list).
SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["situation", "question", "values"],
    "properties": {
        "situation": {"type": "string"},
        "question": {"type": "string"},
        "values": {"type": "array", "minItems": 1, "maxItems": 3,
                   "items": {"type": "string", "enum": ["honesty", "loyalty", "care", "fairness", "liberty"]}},
    },
}
SYSTEM = "You write short everyday moral dilemmas as JSON."
MODEL = "fake-model"
MAX_TOKENS = 256


def messages(i: int) -> list[dict[str, str]]:
    user = f"Write dilemma number {i} about a conflict between two values at work or at home."
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def response_format() -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "dilemma", "strict": True, "schema": SCHEMA}}


def params() -> dict[str, Any]:
    """The run's parameters: argv[1] is a JSON object (base_url, n, c, ...)."""
    return json.loads(sys.argv[1])


class Meter:
    """Wall time and this process's CPU time (user + system) over the timed section; peak RSS at the end."""

    def __enter__(self) -> Meter:
        self.cpu0 = _cpu()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = _cpu() - self.cpu0

    def report(self, n: int, succeeded: int, **extra: Any) -> None:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({
            "n": n, "succeeded": succeeded, "wall_s": round(self.wall, 3), "req_per_s": round(n / self.wall, 1),
            "cpu_s": round(self.cpu, 3), "cpu_ms_per_req": round(1000 * self.cpu / n, 3),
            "peak_rss_mb": round(peak_kb / 1024, 1), **extra,
        }), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
