"""Progress of a run: a rich display on a terminal, a plain line every few seconds otherwise, nothing in Beam
workers. The engine calls `advance()` once per outcome; rendering runs on its own clock."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from valuecorpus.pipelines.engine.accounting import EngineStats
from valuecorpus.schemas.run_tables import DeadLetter


class Progress:
    def __init__(self, label: str = "generate", stream: TextIO | None = None, rich: bool | None = None,
                 interval_s: float = 5.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.rich = self.stream.isatty() if rich is None else rich
        self.interval_s = interval_s
        self.total = 0
        self.done = 0
        self.errors = 0
        self._stats: EngineStats | None = None
        self._started = 0.0
        self._last = 0.0
        self._live: Any = None
        self._task: Any = None
        self._active = 0  # runs in progress (overlapping batches share the display)

    def start(self, total: int, stats: EngineStats) -> None:
        """A run begins. Runs that overlap (batches submitted while others are in flight) add to one display."""
        self._active += 1
        if self._active > 1:
            self.total += total
            if self._live is not None:
                self._live.update(self._task, total=self.total)
            return
        self.total, self.done, self.errors, self._stats = total, 0, 0, stats
        self._started = self._last = time.monotonic()
        if self.rich:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._live = Progress(TextColumn("{task.description}"), BarColumn(),
                                  TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
                                  TimeRemainingColumn(), transient=False, refresh_per_second=4)
            self._live.start()
            self._task = self._live.add_task(self.label, total=total, info="")

    def line(self) -> str:
        s = self._stats or EngineStats()
        elapsed = max(1e-9, time.monotonic() - self._started)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        return (f"{self.done}/{self.total} done, {rate:.1f} req/s, {s.tokens} tokens, ${s.cost_usd:.4f}, "
                f"{self.errors} errors, {s.cached} cached, ETA {eta:.0f} s")

    def advance(self, outcome: object) -> None:
        self.done += 1
        if isinstance(outcome, DeadLetter):
            self.errors += 1
        now = time.monotonic()
        if now - self._last < (0.25 if self.rich else self.interval_s):
            return
        self._last = now
        self._render()

    def _render(self) -> None:
        if self._live is not None:
            s = self._stats or EngineStats()
            elapsed = max(1e-9, time.monotonic() - self._started)
            info = f"{self.done / elapsed:.1f} req/s · {s.tokens} tok · ${s.cost_usd:.4f} · {self.errors} err"
            self._live.update(self._task, completed=self.done, info=info)
        else:
            print(f"{self.label}: {self.line()}", file=self.stream, flush=True)

    def finish(self) -> None:
        self._active = max(0, self._active - 1)
        if self._active:
            return
        self._render()
        if self._live is not None:
            self._live.stop()
            self._live = None
