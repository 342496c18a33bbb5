"""The engine inside Beam: `Generate(config)` turns a PCollection of `GenerationRequest` into `results` and
`dead_letters`. Each worker builds one engine in `setup()`; elements are buffered per bundle and run
concurrently on the engine's event loop, so one worker keeps hundreds of requests in flight."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from valuecorpus.pipelines.engine.config import EngineConfig
from valuecorpus.pipelines.engine.types import GenerationResult

RESULTS = "results"
DEAD_LETTERS = "dead_letters"


class _GenerateFn(beam.DoFn):
    def __init__(self, config: EngineConfig, batch_size: int) -> None:
        # the config (API key included) travels pickled to the workers, like any worker credential
        self._config = config
        self._batch_size = batch_size
        self._engine: Any = None
        self._buffer: list[tuple[Any, Any, Any]] = []

    def setup(self) -> None:
        from valuecorpus.pipelines.engine.core import Engine

        self._engine = Engine(self._config.model_copy(update={"progress": False}))

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
        outcomes = self._engine.generate([item[0] for item in buffered])
        for (_, ts, window), outcome in zip(buffered, outcomes, strict=True):
            ts = MIN_TIMESTAMP if ts is None else ts
            value = WindowedValue(outcome, ts, [window if window is not None else GlobalWindow()])
            if isinstance(outcome, GenerationResult):
                yield value
            else:
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, value)

    def teardown(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


class Generate(beam.PTransform):
    """PCollection[GenerationRequest] → tagged outputs `results` (GenerationResult) and `dead_letters`
    (DeadLetter); exactly one outcome per request. `batch_size` bounds the requests buffered per worker
    (default: 4 × max_in_flight); `redistribute` spreads the requests over workers first."""

    def __init__(self, config: EngineConfig, batch_size: int | None = None, redistribute: bool = True) -> None:
        super().__init__()
        self.config = config
        self.batch_size = batch_size or max(64, 4 * config.max_in_flight)
        self.redistribute = redistribute

    def expand(self, requests: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        if self.redistribute:
            requests = requests | "Redistribute" >> beam.Reshuffle()
        return requests | "CallModel" >> beam.ParDo(_GenerateFn(self.config, self.batch_size)).with_outputs(
            DEAD_LETTERS, main=RESULTS
        )
