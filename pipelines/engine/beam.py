"""The engine inside Beam: `Generate(config)` turns a PCollection of `GenerationRequest` into `results` and
`dead_letters`. Each worker process shares one engine per config across steps (a local model loads once);
elements are submitted in batches to the engine's loop thread without waiting for earlier batches, so one
worker keeps hundreds of requests in flight and the window never drains between batches.

Each distinct request is paid once on every runner: `Generate` groups the requests by their body
(`GroupByKey` on `body_fingerprint`), sends one of each group and hands its outcome to the others, whichever
bundles, threads or machines they came from. The config reaches the workers without its API key: they read
it from their environment (`credential_env`)."""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from valuecorpus.pipelines.engine.cache import body_fingerprint
from valuecorpus.pipelines.engine.config import EngineConfig
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult
from valuecorpus.schemas.run_tables import DeadLetter

RESULTS = "results"
DEAD_LETTERS = "dead_letters"


_ENGINES_LOCK = threading.Lock()
_ENGINES: dict[str, Any] = {}  # one engine per worker process and config: a local model loads once, not per step


def close_engines() -> None:
    """Flush the caches and free the models of this process's engines (the launcher calls it after a run;
    worker processes call it at exit)."""
    while _ENGINES:
        _ENGINES.popitem()[1].close()


def _engine(config: EngineConfig, progress: bool) -> Any:
    from valuecorpus.pipelines.engine.core import Engine

    key = config.model_dump_json()
    with _ENGINES_LOCK:  # the in-memory runner sets up a DoFn per worker thread, at the same time
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
    """Buffers `batch_size` requests, submits them to the engine's loop thread and goes on reading: up to
    `max_pending` batches are in flight at once, in one window, and their outcomes are emitted in order as
    they complete. `finish_bundle` waits for the rest: every request of a bundle has its outcome in it."""

    def __init__(self, config: EngineConfig, batch_size: int, max_pending: int, label: str, progress: bool,
                 grouped: bool = False, batched: bool = False) -> None:
        self._config = config.worker_copy()  # never the key: workers read it from their environment
        self._grouped = grouped  # elements are groups of identical requests: one is sent, all get its outcome
        # elements are whole batches, answered within process(): for runners that drop what finish_bundle emits
        # (Beam 2.77's Dask runner collects a bundle's outputs before it calls finish_bundle)
        self._batched = batched
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._label = label
        # the progress display belongs to the launching process (in-memory runner), never to worker processes
        self._progress_pid = os.getpid() if progress else None
        self._engine: Any = None
        self._buffer: list[tuple[Any, Any, Any]] = []
        self._pending: deque[tuple[Future[list[Any]], list[tuple[Any, Any, Any]]]] = deque()
        self._requests = Metrics.counter("engine", "requests")
        self._cached = Metrics.counter("engine", "cached")
        self._failed = Metrics.counter("engine", "dead_letters")
        self._shared = Metrics.counter("engine", "shared")

    def setup(self) -> None:
        self._engine = _engine(self._config, self._progress_pid == os.getpid())

    def start_bundle(self) -> None:
        self._buffer = []
        self._pending = deque()

    def process(self, request: Any, timestamp: Any = beam.DoFn.TimestampParam,
                window: Any = beam.DoFn.WindowParam) -> Iterator[Any]:
        if self._batched:
            self._buffer = [(one, timestamp, window) for one in request[1]]
            self._submit()
            yield from self._collect(all_of_them=True)
            return
        self._buffer.append((request, timestamp, window))
        if len(self._buffer) >= self._batch_size:
            self._submit()
        yield from self._collect(all_of_them=False)

    def finish_bundle(self) -> Iterator[Any]:
        self._submit()
        yield from self._collect(all_of_them=True)

    def _submit(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        if self._engine.progress is not None:
            self._engine.progress.label = self._label
        sent = [item[0][0] if self._grouped else item[0] for item in batch]
        self._pending.append((self._engine.submit(sent), batch))

    def _collect(self, all_of_them: bool) -> Iterator[Any]:
        """Emit finished batches in order; block only when too many are in flight (or at the bundle's end)."""
        while self._pending and (all_of_them or len(self._pending) > self._max_pending or self._pending[0][0].done()):
            future, batch = self._pending.popleft()
            outcomes = future.result()
            for (element, ts, window), outcome in zip(batch, outcomes, strict=True):
                ts = MIN_TIMESTAMP if ts is None else ts
                windows = [window if window is not None else GlobalWindow()]
                copies = [outcome]
                if self._grouped:
                    copies += [_share(outcome, other) for other in element[1:]]
                    self._shared.inc(len(element) - 1)
                for i, one in enumerate(copies):
                    value = WindowedValue(one, ts, windows)
                    self._requests.inc()
                    if isinstance(one, GenerationResult):
                        if one.cached and i == 0:
                            self._cached.inc()
                        yield value
                    else:
                        self._failed.inc()
                        yield beam.pvalue.TaggedOutput(DEAD_LETTERS, value)


def _share(outcome: Any, request: GenerationRequest) -> Any:
    """The outcome of an identical request, for this one (as the engine shares a duplicate within one call)."""
    if isinstance(outcome, DeadLetter):
        plan_item = request.metadata.get("plan_item")
        return outcome.model_copy(update={"request_id": request.request_id,
                                          "plan_item": plan_item if isinstance(plan_item, str) else None})
    return outcome.model_copy(update={"request_id": request.request_id, "metadata": request.metadata,
                                      "cached": True})


def _fingerprint(request: GenerationRequest) -> str:
    p = request.params
    return body_fingerprint(request.messages, [p.temperature, p.max_tokens, p.seed, p.top_p], request.json_schema)


def _batch_of(element: Any, batches: int) -> int:
    import zlib

    first = element[0] if isinstance(element, list) else element
    return zlib.crc32(first.request_id.encode()) % batches


def _group(element: tuple[str, Any]) -> list[GenerationRequest]:
    return sorted(element[1], key=lambda r: r.request_id)


class Generate(beam.PTransform):
    """PCollection[GenerationRequest] → tagged outputs `results` (GenerationResult) and `dead_letters`
    (DeadLetter); exactly one outcome per request. Each worker submits batches of `batch_size` requests
    (default: max_in_flight) to its engine without waiting, up to `max_pending` batches at once, so the window
    never drains between batches. `redistribute` spreads the requests over workers first. Engine counters go
    to Beam metrics (namespace `engine`); `progress` shows the display in the launching process only."""

    def __init__(self, config: EngineConfig, batch_size: int | None = None, redistribute: bool = True,
                 label: str = "generate", progress: bool = False, max_pending: int = 4,
                 single_flight: bool = True, batches: int = 0) -> None:
        super().__init__()
        self.single_flight = single_flight
        self.batches = batches  # > 0: this many batches made by a GroupByKey, each answered within process()
        self.config = config
        self.batch_size = batch_size or max(16, config.max_in_flight)
        self.max_pending = max(1, max_pending)
        self.redistribute = redistribute
        self.label, self.progress = label, progress

    def expand(self, requests: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        if self.single_flight:  # the grouping also spreads the distinct requests over the workers
            requests = (requests
                        | "KeyByBody" >> beam.Map(lambda r: (_fingerprint(r), r))
                        | "IdenticalRequests" >> beam.GroupByKey()
                        | "OneOfEach" >> beam.Map(_group))
        elif self.redistribute:
            requests = requests | "Redistribute" >> beam.Reshuffle()
        if self.batches:
            batches = self.batches
            requests = (requests
                        | "KeyByBatch" >> beam.Map(lambda g: (_batch_of(g, batches), g))
                        | "Batches" >> beam.GroupByKey())
        return requests | "CallModel" >> beam.ParDo(
            _GenerateFn(self.config, self.batch_size, self.max_pending, self.label, self.progress,
                        grouped=self.single_flight, batched=bool(self.batches))).with_outputs(
            DEAD_LETTERS, main=RESULTS)
