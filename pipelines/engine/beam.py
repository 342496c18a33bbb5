"""The engine inside Beam: `Generate(config)` turns a PCollection of `GenerationRequest` into `results` and
`dead_letters`. Each worker process shares one engine per config across steps (a local model loads once);
elements are buffered per bundle and run concurrently on the engine's event loop, so one worker keeps hundreds
of requests in flight."""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from valuecorpus.pipelines.engine.config import EngineConfig
from valuecorpus.pipelines.engine.types import GenerationResult

RESULTS = "results"
DEAD_LETTERS = "dead_letters"


_ENGINES: dict[str, Any] = {}  # one engine per worker process and config: a local model loads once, not per step


def close_engines() -> None:
    """Flush the caches and free the models of this process's engines (the launcher calls it after a run;
    worker processes call it at exit)."""
    while _ENGINES:
        _ENGINES.popitem()[1].close()


def _engine(config: EngineConfig, progress: bool) -> Any:
    from valuecorpus.pipelines.engine.core import Engine

    key = config.model_dump_json()
    if not _ENGINES:
        atexit.register(close_engines)
    if key not in _ENGINES:
        display = None
        if progress:
            from valuecorpus.pipelines.engine.progress import Progress

            display = Progress()
        _ENGINES[key] = Engine(config.model_copy(update={"progress": False}), progress=display)
    return _ENGINES[key]


class _GenerateFn(beam.DoFn):
    def __init__(self, config: EngineConfig, batch_size: int, label: str, progress: bool) -> None:
        # the config (API key included) travels pickled to the workers, like any worker credential
        self._config = config
        self._batch_size = batch_size
        self._label = label
        # the progress display belongs to the launching process (in-memory runner), never to worker processes
        self._progress_pid = os.getpid() if progress else None
        self._engine: Any = None
        self._buffer: list[tuple[Any, Any, Any]] = []
        self._requests = Metrics.counter("engine", "requests")
        self._cached = Metrics.counter("engine", "cached")
        self._failed = Metrics.counter("engine", "dead_letters")

    def setup(self) -> None:
        self._engine = _engine(self._config, self._progress_pid == os.getpid())

    def start_bundle(self) -> None:
        self._buffer = []

    def process(self, request: Any, timestamp: Any = beam.DoFn.TimestampParam,
                window: Any = beam.DoFn.WindowParam) -> Iterator[Any]:
        self._buffer.append((request, timestamp, window))
        if len(self._buffer) >= self._batch_size:
            yield from self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush()

    def _flush(self) -> Iterator[Any]:
        if not self._buffer:
            return
        buffered, self._buffer = self._buffer, []
        if self._engine.progress is not None:
            self._engine.progress.label = self._label
        outcomes = self._engine.generate([item[0] for item in buffered])
        for (_, ts, window), outcome in zip(buffered, outcomes, strict=True):
            ts = MIN_TIMESTAMP if ts is None else ts
            value = WindowedValue(outcome, ts, [window if window is not None else GlobalWindow()])
            self._requests.inc()
            if isinstance(outcome, GenerationResult):
                if outcome.cached:
                    self._cached.inc()
                yield value
            else:
                self._failed.inc()
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, value)

class Generate(beam.PTransform):
    """PCollection[GenerationRequest] → tagged outputs `results` (GenerationResult) and `dead_letters`
    (DeadLetter); exactly one outcome per request. `batch_size` bounds the requests buffered per worker
    (default: 4 × max_in_flight); `redistribute` spreads the requests over workers first. Engine counters go to
    Beam metrics (namespace `engine`); `progress` shows the display in the launching process only."""

    def __init__(self, config: EngineConfig, batch_size: int | None = None, redistribute: bool = True,
                 label: str = "generate", progress: bool = False) -> None:
        super().__init__()
        self.config = config
        self.batch_size = batch_size or max(64, 4 * config.max_in_flight)
        self.redistribute = redistribute
        self.label, self.progress = label, progress

    def expand(self, requests: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        if self.redistribute:
            requests = requests | "Redistribute" >> beam.Reshuffle()
        return requests | "CallModel" >> beam.ParDo(
            _GenerateFn(self.config, self.batch_size, self.label, self.progress)).with_outputs(
            DEAD_LETTERS, main=RESULTS
        )
