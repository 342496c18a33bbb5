"""Latency distributions and fault injection for the fake OpenAI-compatible server.

Fault spec: comma-separated items, each one of
- `KIND:RATE`   — a share of requests, e.g. `429:0.05,500:0.05,hang:0.02`;
- `KIND@A` or `KIND@A-B` — by schedule: attempt A (to B) of every request, e.g. `429@1` fails each first try;
- `KIND%N`      — every Nth request the server receives (global sequence).
KIND is one of FAULT_KINDS or any HTTP status code (e.g. `401`, `404`).

By rate, the default `hash` mode draws from a hash of (request hash, attempt): the same request fails the
same way on the same attempt, and a retry (the next attempt) draws again, so a retried request can succeed and
a rerun of a whole test sees the same faults. `first` mode draws the same way on a request's first attempt
only, and answers its retries: the rates are then shares of requests rather than of attempts. `random` mode
draws every attempt from a seeded generator instead.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

FAULT_MODES = ("hash", "first", "random")
FAULT_KINDS = ("429", "500", "503", "hang", "reset", "truncated", "cut", "invalid_json")
"""hang: never answers; reset: TCP reset (RST) instead of an answer; truncated: a complete HTTP 200 whose JSON
body is cut short; cut: the connection closes mid-body (fewer bytes than Content-Length); invalid_json: a
well-formed completion whose message content is not valid JSON."""
ANSWERED_AT_ONCE = ("429", "503")
"""Faults a rate limiter or an overloaded gateway answers at once, without the latency of a completion."""


@dataclass
class FaultPlan:
    rates: list[tuple[str, float]] = field(default_factory=list)
    by_attempt: list[tuple[str, int, int]] = field(default_factory=list)
    every: list[tuple[str, int]] = field(default_factory=list)
    mode: str = "hash"
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def active(self) -> bool:
        return bool(self.rates or self.by_attempt or self.every)

    def decide(self, request_hash: str, attempt: int, seq: int) -> str | None:
        """The fault for this request (None = answer normally). `attempt` is 1-based, `seq` 1-based."""
        for kind, lo, hi in self.by_attempt:
            if lo <= attempt <= hi:
                return kind
        for kind, n in self.every:
            if seq % n == 0:
                return kind
        if not self.rates or (self.mode == "first" and attempt > 1):
            return None
        if self.mode == "random":
            u = self._rng.random()
        else:
            digest = hashlib.blake2b(f"{self.seed}:{request_hash}:{attempt}".encode(), digest_size=8).digest()
            u = int.from_bytes(digest, "big") / 2**64
        acc = 0.0
        for kind, rate in self.rates:
            acc += rate
            if u < acc:
                return kind
        return None


def _check_kind(kind: str, item: str) -> str:
    kind = kind.strip().lower()
    if kind in FAULT_KINDS or (kind.isdigit() and len(kind) == 3):
        return kind
    raise ValueError(f"fault spec item {item!r}: unknown kind {kind!r} (one of {', '.join(FAULT_KINDS)} "
                     "or an HTTP status code)")


def parse_faults(spec: str | None, mode: str = "hash", seed: int = 0) -> FaultPlan:
    plan = FaultPlan(mode=mode, seed=seed)
    if mode not in FAULT_MODES:
        raise ValueError(f"fault mode {mode!r}: expected one of {', '.join(FAULT_MODES)}")
    for raw in (spec or "").split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            if "@" in item:
                kind, span = item.split("@", 1)
                lo, _, hi = span.partition("-")
                plan.by_attempt.append((_check_kind(kind, item), int(lo), int(hi or lo)))
            elif "%" in item:
                kind, n = item.split("%", 1)
                plan.every.append((_check_kind(kind, item), max(1, int(n))))
            elif ":" in item:
                kind, rate = item.rsplit(":", 1)
                value = float(rate)
                if not 0 <= value <= 1:
                    raise ValueError(f"fault spec item {item!r}: rate must be within 0..1")
                plan.rates.append((_check_kind(kind, item), value))
            else:
                raise ValueError(f"fault spec item {item!r}: expected KIND:RATE, KIND@ATTEMPT or KIND%N")
        except ValueError as exc:
            if str(exc).startswith("fault spec"):
                raise
            raise ValueError(f"fault spec item {item!r}: {exc}") from None
    if sum(rate for _, rate in plan.rates) > 1 + 1e-9:
        raise ValueError(f"fault spec {spec!r}: rates add up to more than 1")
    return plan


Latency = Callable[[], float]
"""Draws one latency, in seconds."""


def parse_latency(spec: str | float | None, seed: int = 0) -> Latency:
    """`200` or `fixed:200` (ms); `uniform:LO,HI`; `normal:MEAN,SD`; `lognormal:MEDIAN,SIGMA` (ms; sigma is
    the log-space spread). Never negative."""
    if spec is None or spec == "":
        return lambda: 0.0
    if isinstance(spec, int | float):
        fixed = max(0.0, float(spec)) / 1000
        return lambda: fixed
    name, _, args = spec.partition(":")
    if not args:
        name, args = "fixed", name
    try:
        values = [float(v) for v in args.replace(":", ",").split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"latency spec {spec!r}: expected numbers in milliseconds") from None
    rng = random.Random(seed)
    name = name.strip().lower()
    want = {"fixed": 1, "uniform": 2, "normal": 2, "lognormal": 2}
    if name not in want or len(values) != want[name]:
        raise ValueError(f"latency spec {spec!r}: expected fixed:MS, uniform:LO,HI, normal:MEAN,SD or "
                         "lognormal:MEDIAN,SIGMA (milliseconds)")
    if name == "fixed":
        fixed = max(0.0, values[0]) / 1000
        return lambda: fixed
    a, b = values
    if name == "uniform":
        return lambda: max(0.0, rng.uniform(a, b)) / 1000
    if name == "normal":
        return lambda: max(0.0, rng.gauss(a, b)) / 1000
    mu = math.log(max(a, 1e-6))
    return lambda: rng.lognormvariate(mu, b) / 1000
