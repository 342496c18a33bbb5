"""What a perfect client could do against the fault benchmark's server: the bound the measured share sits under.

The perfect client spends no CPU, refills a freed slot at once, sends a due retry before a new request, and
follows the engine's retry rule (`attempts.backoff_delay`: Retry-After kept, 429/503 from 0.5 s and other
faults from 0.1 s, doubling per repeat of the same signal; invalid JSON is a dead letter, not retried). Faults
are drawn by the fake server's own `FaultPlan`, in the mode the benchmark uses. With 1 s hangs and 1 s
Retry-After, the makespan is set by the last requests' retry chains, not by the slots: this is why the
benchmark measures a share of requests (mode `first`) as well as a share of attempts (mode `hash`).

    python -m bench.fault_bound --mode hash --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
from dataclasses import dataclass, replace
from typing import Any

from valuecorpus_testing.fake_server_content import request_hash
from valuecorpus_testing.fake_server_faults import ANSWERED_AT_ONCE, parse_faults

from bench.clients.workload import SCHEMA, messages
from valuecorpus.pipelines.engine.attempts import OVERLOAD, backoff_delay
from valuecorpus.pipelines.engine.config import EngineConfig
from valuecorpus.pipelines.engine.outcomes import PARSE_CLASSES
from valuecorpus.pipelines.engine.structured import compile_schema, shape_body

FAULTS_20 = "429:0.05,500:0.05,503:0.03,hang:0.02,reset:0.02,truncated:0.02,invalid_json:0.01"
"""The benchmark's fault mix: every kind the fake server can inject, 20 % in all."""
_ENGINE = EngineConfig(backend="openai", base_url="http://127.0.0.1/v1", model="m")  # the retry defaults


@dataclass
class Setup:
    n: int = 10_000
    c: int = 256
    latency_s: float = 0.2
    timeout_s: float = 1.0
    retry_after_s: float = 1.0
    faults: str = ""
    mode: str = "hash"
    seed: int = 0


def request_keys(n: int) -> list[str]:
    """The fake server's keys of the benchmark's requests as the engine sends them (dialect openai): the
    perfect client meets the very faults the engine met in the same run."""
    structured = shape_body({}, "openai", compile_schema(SCHEMA))["response_format"]
    return [request_hash(messages(i), structured) for i in range(n)]


def attempt_counts(s: Setup, keys: list[str]) -> dict[str, int]:
    """What the server answers each attempt of every request, counted by kind ("ok" for an answer): the same
    for any client that retries to the same cap, so the engine's run must show the server exactly these."""
    plan = parse_faults(s.faults, s.mode, s.seed)
    counts: dict[str, int] = {}
    for key in keys[: s.n]:
        for attempt in range(1, _ENGINE.max_attempts + 1):
            fault = plan.decide(key, attempt, attempt)
            counts[fault or "ok"] = counts.get(fault or "ok", 0) + 1
            if fault is None or fault in PARSE_CLASSES:
                break
    return counts


def perfect_client_s(s: Setup, keys: list[str]) -> float:
    """The makespan of `s.n` requests through `s.c` slots for a client with no cost of its own."""
    plan = parse_faults(s.faults, s.mode, s.seed)
    random.seed(s.seed)  # backoff_delay's jitter
    fresh = iter(range(s.n))
    due: list[tuple[float, int]] = []  # retries: (when, request)
    running: list[tuple[float, int, str | None]] = []  # (ends, request, fault)
    attempts = [0] * s.n
    strikes = [[0, 0] for _ in range(s.n)]  # per request: [other faults, overload]
    now, free, done, seq = 0.0, s.c, 0, 0
    while done < s.n:
        while free:
            if due and due[0][0] <= now:
                i = heapq.heappop(due)[1]
            elif (i := next(fresh, -1)) < 0:
                break
            attempts[i] += 1
            seq += 1
            fault = plan.decide(keys[i], attempts[i], seq) if plan.active else None
            took = s.timeout_s if fault == "hang" else 0.0 if fault in ANSWERED_AT_ONCE else s.latency_s
            heapq.heappush(running, (now + took, i, fault))
            free -= 1
        ends = running[0][0] if running else math.inf
        if free and due and due[0][0] < ends:  # a slot is idle until the next retry is due
            now = due[0][0]
            continue
        now, i, fault = heapq.heappop(running)
        free += 1
        if fault is None or fault in PARSE_CLASSES or attempts[i] >= _ENGINE.max_attempts:
            done += 1
            continue
        overload = fault.isdigit() and int(fault) in OVERLOAD
        strikes[i][overload] += 1
        base = _ENGINE.backoff_base_s if overload else _ENGINE.transient_backoff_s
        retry_after = s.retry_after_s if fault == "429" else None
        wait = backoff_delay(strikes[i][overload], base, _ENGINE.backoff_max_s, retry_after)
        heapq.heappush(due, (now + wait, i))
    return now


def same_faults(server: dict[str, Any], expected: dict[str, int]) -> bool:
    """Whether the server (its `/stats`) answered the attempts `attempt_counts` expects, kind by kind. Its "ok"
    count is left out: it also counts `GET /models`."""
    seen = {kind: count for kind, count in server.get("by_outcome", {}).items() if kind != "ok"}
    return server.get("requests") == sum(expected.values()) and seen == {
        kind: count for kind, count in expected.items() if kind != "ok"}


def bound(s: Setup, seeds: list[int]) -> dict[str, float | list[float]]:
    """The perfect client's makespan with the faults of each seed, and its share of its own fault-free
    throughput. Seed 0 is the fake server's default: the draw the benchmark's engine run meets."""
    keys = request_keys(s.n)
    clean = perfect_client_s(replace(s, faults=""), keys)
    walls = [perfect_client_s(replace(s, seed=seed), keys) for seed in seeds]
    shares = [round(clean / wall, 3) for wall in walls]
    return {"fault_free_s": round(clean, 3), "with_faults_s": [round(w, 3) for w in walls], "seeds": seeds,
            "attempts_seed_0": attempt_counts(replace(s, seed=0), keys),
            "shares": shares, "median": statistics.median(shares), "min": min(shares), "max": max(shares)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faults", default=FAULTS_20)
    p.add_argument("--mode", default="hash", help="hash: a share of attempts; first: a share of requests")
    p.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--c", type=int, default=256)
    a = p.parse_args()
    setup = Setup(n=a.n, c=a.c, faults=a.faults, mode=a.mode)
    print(json.dumps(bound(setup, [int(x) for x in a.seeds.split(",")])))


if __name__ == "__main__":
    main()
