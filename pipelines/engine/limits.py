"""Per-endpoint limits: a concurrency window that adapts (AIMD) and token buckets for rpm / tpm.

The window shrinks multiplicatively when 429/503 make up a real share of recent answers and when latency rises
well above its baseline (self-hosted servers saturate without ever answering 429), and grows by about one slot
per window of successes. Isolated 429/503s (a server that sheds a few percent at any load) are retried with
Retry-After but do not shrink the window: halving on each one collapses throughput to a trickle. It never
exceeds `max_in_flight`. All of it runs on the event loop: no locks, O(1) per request.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class AdaptiveLimiter:
    def __init__(
        self,
        max_in_flight: int,
        adaptive: bool = True,
        backoff_factor: float = 0.5,
        latency_factor: float = 0.8,
        latency_tolerance: float = 3.0,
        min_latency_rise_s: float = 0.05,
        overload_share: float = 0.25,
    ) -> None:
        self.max = max_in_flight
        self.limit = float(max_in_flight)
        self.adaptive = adaptive
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._retries: deque[asyncio.Future[None]] = deque()
        self._backoff = backoff_factor
        self._latency_factor = latency_factor
        self._tolerance = latency_tolerance
        self._min_rise = min_latency_rise_s
        self._overload_share = overload_share
        self._overload = 0.0  # moving share of 429/503 among recent answers
        self._ewma: float | None = None  # recent latency
        self._baseline: float | None = None  # the lowest recent latency seen: the unloaded server
        self._samples = 0
        self._warmup = max(20, max_in_flight)
        self._since_cut = 0
        self._last_cut = 0.0
        self.cuts = 0
        self.loop_lag = 0.0  # how late our own event loop runs: latency the server did not cause

    async def watch_loop_lag(self, interval_s: float = 0.02) -> None:
        """Run while requests are in flight: a busy client must not read its own lag as a slow server."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(interval_s)
            lag = max(0.0, loop.time() - start - interval_s)
            self.loop_lag = self.loop_lag * 0.7 + lag * 0.3

    async def acquire(self, retry: bool = False) -> None:
        """A slot in the window. A retry goes before fresh requests: it has waited once already, and the run
        cannot end before its slowest retry chain does."""
        if self.in_flight < int(self.limit) and not self._waiters and not self._retries:
            self.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._retries if retry else self._waiters
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just before the cancel
            else:
                queue.remove(fut)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while (self._retries or self._waiters) and self.in_flight < max(1, int(self.limit)):
            fut = (self._retries or self._waiters).popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    # ---- signals
    def _observe(self, overloaded: bool) -> None:
        # a window-sized memory: the share reflects about the last `limit` answers
        alpha = 1.0 / max(8.0, self.limit)
        self._overload += ((1.0 if overloaded else 0.0) - self._overload) * alpha

    def on_success(self, latency_s: float) -> None:
        if not self.adaptive:
            return
        self._observe(False)
        self._samples += 1
        self._since_cut += 1
        warm = self._samples > 2 * self._warmup  # judge only on a full window of settled samples
        if self._ewma is None or self._samples == self._warmup + 1:
            self._ewma = latency_s
        elif self._samples <= self._warmup:  # the first window also opens the connections: not a signal
            return
        else:
            self._ewma = self._ewma * 0.9 + latency_s * 0.1
        if self._baseline is None or self._ewma < self._baseline:
            self._baseline = self._ewma
        else:  # let the baseline follow slowly, so a permanently slower server is re-learned
            self._baseline += (self._ewma - self._baseline) * 0.0001
        rise = self._ewma - self._baseline
        if (
            warm
            and self._ewma > self._baseline * self._tolerance
            and rise > self._min_rise
            and self.loop_lag < rise / 2  # mostly our own busy loop: backing off would not help the server
            and self._since_cut >= self.limit  # judge a cut only by answers to requests sent after it
        ):
            self._cut(self._latency_factor)
        elif self.limit < self.max:
            self.limit = min(self.max, self.limit + 1.0 / max(1.0, self.limit))
            self._wake()

    def on_overload(self) -> None:
        """A 429 or 503: the server says it is full — believed once it says so for a real share of requests."""
        if not self.adaptive:
            return
        self._observe(True)
        if self._overload >= self._overload_share:
            self._cut(self._backoff)

    def _cut(self, factor: float) -> None:
        # at most one cut per recent latency: a burst of 429s from one window is one signal, not fifty
        now = time.monotonic()
        if now - self._last_cut < max(0.05, self._ewma or 0.5):
            return
        self._last_cut = now
        self._since_cut = 0
        self.limit = max(1.0, self.limit * factor)
        self.cuts += 1


class TokenBucket:
    """`rate_per_min` units per minute, bursting up to `burst_s` seconds' worth."""

    def __init__(self, rate_per_min: float, burst_s: float = 1.0) -> None:
        self.rate = rate_per_min / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.tokens = self.capacity
        self._stamp = time.monotonic()

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)  # one request bigger than the burst still goes, alone
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self.tokens >= amount:
                self.tokens -= amount
                return
            await asyncio.sleep((amount - self.tokens) / self.rate)
