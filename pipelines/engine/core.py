"""The engine: cache → budget → limits → backend → retry → parse & check, the same code for every backend and for
Beam and plain Python. Exactly one outcome (a `GenerationResult` or a `DeadLetter`) per request, in input order.

The hot path avoids per-request pydantic validation (outcomes are built directly, see `outcomes.py`), per-request
schema compilation, per-request logging and per-request cache transactions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from valuecorpus.pipelines.engine.accounting import Budget, EngineStats
from valuecorpus.pipelines.engine.attempts import OVERLOAD, AttemptError, backoff_delay
from valuecorpus.pipelines.engine.backends import Backend, Completion
from valuecorpus.pipelines.engine.cache import cache_key, open_cache
from valuecorpus.pipelines.engine.config import EngineConfig
from valuecorpus.pipelines.engine.gc_tuning import fewer_collections, paused_collections
from valuecorpus.pipelines.engine.limits import AdaptiveLimiter, TokenBucket
from valuecorpus.pipelines.engine.outcomes import PARSE_CLASSES, Item, Outcomes, cached_completion
from valuecorpus.pipelines.engine.probe import verify_endpoint
from valuecorpus.pipelines.engine.structured import (
    compile_schema,
    repair_messages,
    shape_body,
)
from valuecorpus.pipelines.engine.types import GenerationRequest, Outcome
from valuecorpus.schemas.errors import BudgetExhausted, EndpointError
from valuecorpus.schemas.run_tables import DeadLetter

if TYPE_CHECKING:
    from valuecorpus.pipelines.engine.background import LoopThread

T = TypeVar("T")
_THREAD_LOCK = threading.Lock()
_CHUNK = 256  # requests prepared and looked up in the cache at a time
# llama.cpp's classic default: a 135M model under a grammar otherwise loops on one-character tokens ("1.1.1.")
LOCAL_REPEAT_PENALTY = 1.1


class _BudgetStop(Exception):
    """No new request may start: the next one could exceed the cap."""


def make_backend(config: EngineConfig) -> Backend:
    if config.backend == "local":
        from valuecorpus.pipelines.engine.backends.local import LocalBackend

        return LocalBackend(config.resolved_model_path(), config.n_ctx, config.n_threads, config.model)
    key = config.resolved_api_key()
    assert config.base_url is not None
    if config.transport == "openai-sdk":
        from valuecorpus.pipelines.engine.backends.sdk import SdkBackend

        return SdkBackend(config.base_url, config.model, key, config.max_in_flight)
    from valuecorpus.pipelines.engine.backends.http import HttpBackend

    return HttpBackend(config.base_url, config.model, key, config.max_in_flight, config.timeout_s)


class Engine:
    """`generate()` (sync) / `agenerate()` (async) turn requests into outcomes; `stats` counts them."""

    def __init__(self, config: EngineConfig, progress: Any | None = None) -> None:
        config.validate_ready()
        self.config = config
        self.stats = EngineStats()
        self.budget = Budget(config, self.stats)
        self.outcomes = Outcomes(self.stats, config.raw_output_chars)
        self.cache = open_cache(config.cache_dir) if config.cache_dir else None
        if progress is None and config.progress is not False:
            from valuecorpus.pipelines.engine.progress import Progress

            progress = Progress(rich=config.progress)
        self.progress = progress
        self.dialect: str | None = "local" if config.backend == "local" else (
            None if config.dialect == "auto" else config.dialect
        )
        self.fatal: AttemptError | None = None
        self._backend: Backend | None = None
        self._backend_loop: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: LoopThread | None = None
        self._verified = config.backend == "local" or config.endpoint_verified
        self._identity = config.endpoint_identity  # computed once (the local model's digest reads the file)
        self._label = config.endpoint_label
        self._limiter: AdaptiveLimiter | None = None
        self._rpm = TokenBucket(config.rpm) if config.rpm else None
        self._tpm = TokenBucket(config.tpm) if config.tpm else None
        self._inflight: dict[str, asyncio.Future[tuple[Completion, int, bool]]] = {}
        self._answered: dict[str, tuple[Completion, int, bool]] = {}  # this run's answers, for duplicates
        # runs of this engine in flight at once (Beam bundles, the loop's groups of samples): they share the
        # duplicates table, one loop-lag watcher, and the wall clock counts their overlap once
        self._active = 0
        self._active_since = 0.0
        self._watcher: asyncio.Future[None] | None = None
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    # ------------------------------------------------------------------ public API
    def generate(self, requests: Iterable[GenerationRequest | dict[str, Any]]) -> list[Outcome]:
        """Blocking; runs the requests concurrently on the engine's own event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("Engine.generate() called inside a running event loop; use `await engine.agenerate()`")
        return self.drive(self.agenerate(requests))

    def drive(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine that awaits `agenerate` (any number of times, concurrently) on the engine's loop."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(work)

    async def agenerate(self, requests: Iterable[GenerationRequest | dict[str, Any]]) -> list[Outcome]:
        if self._active == 0:
            self._active_since = time.perf_counter()
        self._active += 1
        try:
            with fewer_collections():
                outcomes = await self._run(requests)
        finally:
            self._active -= 1
            if self._active == 0:  # the last run in flight: what it shared ends with it
                self._answered.clear()
                if self._watcher is not None:
                    self._watcher.cancel()
                    self._watcher = None
                self.stats.elapsed_s += time.perf_counter() - self._active_since
            self.budget.release()
            if self.cache is not None:
                await asyncio.to_thread(self.cache.flush)
        if self.fatal is not None:
            raise self._fatal_error()
        return outcomes

    def cached(self, requests: Iterable[GenerationRequest | dict[str, Any]]) -> list[Outcome] | None:
        """Every request's outcome from the cache alone, or None as soon as one would need the model: nothing is
        sent, and then the stats are as they were. A finished job's rerun resolves here without starting a runner."""
        if self.cache is None or self.config.refresh:
            return None
        started = time.perf_counter()
        raw = list(requests)
        outcomes: list[Outcome | None] = [None] * len(raw)
        before = dataclasses.replace(self.stats, dead_letters=self.stats.dead_letters.copy())
        progress, self.progress = self.progress, None  # a lookup that may be abandoned shows no progress
        try:
            with paused_collections():
                self._recall_dialect()
                for _miss in self._misses(raw, outcomes):
                    for f in dataclasses.fields(before):  # in place: the budget and outcomes hold this object
                        setattr(self.stats, f.name, getattr(before, f.name))
                    return None
        finally:
            self.progress = progress
        self.stats.requests += len(raw)
        self.stats.elapsed_s += time.perf_counter() - started
        return outcomes  # type: ignore[return-value]

    def submit(self, requests: Iterable[GenerationRequest | dict[str, Any]]) -> Future[list[Outcome]]:
        """Non-blocking: runs the requests on the engine's own loop thread and returns a future of their outcomes.
        Batches submitted while others are in flight share the same window, pool, cache and budget."""
        with _THREAD_LOCK:  # Beam may submit from several worker threads
            if self._thread is None:
                from valuecorpus.pipelines.engine.background import LoopThread

                self._thread = LoopThread()
        return self._thread.submit(self.agenerate(list(requests)))

    def cache_keys(self, requests: Iterable[GenerationRequest | dict[str, Any]]) -> list[str]:
        """The cache key of each request (what a Batch API item is named by)."""
        return [self._prepare(i, r).key for i, r in enumerate(requests)]

    def batch_bodies(self, requests: Iterable[GenerationRequest | dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Chat-completions bodies (by cache key) of the requests the cache cannot answer: Batch API input."""
        items = [self._prepare(i, r) for i, r in enumerate(requests)]
        hits = self.cache.get_many([it.key for it in items]) if self.cache and not self.config.refresh else {}
        todo = [it for it in items if it.key not in hits]
        if todo and self.dialect is None:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()

            async def probe() -> None:
                await self._ensure_dialect(self._ensure_backend())

            self._loop.run_until_complete(probe())
        return {it.key: self._body(it) for it in todo}

    def _body(self, it: Item) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.config.model, "messages": it.messages, **it.params}
        return shape_body(body, self.dialect or self.config.endpoint_kind, it.compiled)

    def raise_if_budget_exhausted(self) -> None:
        if self.stats.budget_exhausted:
            raise BudgetExhausted(self.budget.summary())

    def close(self) -> None:
        if self._thread is not None:
            self._thread.call(self.aclose())
            self._thread.stop()
            self._thread = None
        if self._backend is not None:
            loop = self._backend_loop
            if loop is not None and not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(self._backend.aclose())
            self._backend = None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.close()
        if self.cache is not None:
            self.cache.close()
        self.budget.close()

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()
            self._backend = None
        if self.cache is not None:  # in place, not in a thread: at interpreter exit there is no executor
            self.cache.close()
        self.budget.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ preparation
    def _prepare(self, index: int, request: GenerationRequest | dict[str, Any]) -> Item:
        req = request if isinstance(request, GenerationRequest) else GenerationRequest.model_validate(request)
        messages = req.messages
        p = req.params
        compiled = compile_schema(req.json_schema) if req.json_schema is not None else None
        # a constrained answer always closes: never ask for fewer tokens than the schema's worst case
        worst = compiled.max_tokens(self.config.endpoint_kind == "local") if compiled is not None else None
        params: dict[str, Any] = {"temperature": p.temperature, "max_tokens": max(p.max_tokens, worst or 0)}
        if p.seed is not None:
            params["seed"] = p.seed
        if p.top_p is not None:
            params["top_p"] = p.top_p
        penalty = p.repeat_penalty if p.repeat_penalty is not None else (
            LOCAL_REPEAT_PENALTY if self.config.endpoint_kind == "local" else None)
        if penalty is not None:  # in the cache key: an answer made with another penalty is another answer
            params["repeat_penalty"] = penalty
        if p.model is not None:  # part of the body and of the cache key: each model's answers cached apart
            params["model"] = p.model
        if req.tools:  # in the body and in the cache key: the same messages with other tools are another request
            params["tools"] = req.tools
        key = cache_key(self._identity, self.config.model, messages, params,
                        compiled.text if compiled is not None else None)
        return Item(index, req, key, messages, params, compiled)

    def _ensure_backend(self) -> Backend:
        loop = asyncio.get_running_loop()
        if self._backend is None or self._backend_loop is not loop:
            self._backend = make_backend(self.config)
            self._backend_loop = loop
            ceiling = self._backend.max_concurrency or self.config.max_in_flight
            self._limiter = AdaptiveLimiter(min(ceiling, self.config.max_in_flight), self._adapts(self._backend))
        return self._backend

    def _adapts(self, backend: Backend) -> bool:
        return self.config.adaptive and backend.adapts

    def _recall_dialect(self) -> None:
        """A probe done before, by this or any process sharing the cache, costs nothing now."""
        if self.dialect is None and self.cache is not None:
            self.dialect = self.cache.get_probe(self._endpoint_id)

    async def _ensure_dialect(self, backend: Backend) -> str:
        self._recall_dialect()
        if self.dialect is None:
            from valuecorpus.pipelines.engine.probe import detect_dialect

            self.dialect = await detect_dialect(backend, self.config.model, self.config.timeout_s)
            if self.cache is not None:
                self.cache.put_probe(self._endpoint_id, self.dialect)
        return self.dialect

    @property
    def _endpoint_id(self) -> str:
        return f"{self._identity}|{self.config.model}"

    def check_endpoint(self) -> tuple[str | None, bool]:
        """Probe the dialect (or recall it) and check the key and model, once, before a pipeline starts: its
        workers are handed the answers instead of each asking again. Returns (dialect, verified)."""
        if self.config.backend == "local":
            return self.dialect, True
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()

        async def check() -> None:
            backend = self._ensure_backend()
            await self._ensure_dialect(backend)
            if not self._verified:
                self._verified = await verify_endpoint(backend, self.config.model)

        self._loop.run_until_complete(check())
        return self.dialect, self._verified

    # ------------------------------------------------------------------ the run
    async def _run(self, requests: Iterable[GenerationRequest | dict[str, Any]]) -> list[Outcome]:
        raw = list(requests)
        self.stats.requests += len(raw)
        outcomes: list[Outcome | None] = [None] * len(raw)
        self._recall_dialect()
        if self.progress is not None:
            self.progress.start(len(raw), self.stats)
        # requests are prepared and looked up in the cache a chunk at a time, as the workers need them: the
        # first request goes out after one chunk, not after all N, and preparation overlaps the network wait
        misses = self._misses(raw, outcomes)
        with paused_collections():  # up to the first miss (all of a cached job) only acyclic objects are made
            first = next(misses, None)
        if first is not None:
            backend = self._ensure_backend()
            assert self._limiter is not None
            # the lag watcher wakes the loop 50 times a second: only worth it where the window can adapt (not
            # for the embedded model, whose decoding thread would share the GIL with it)
            if self._watcher is None and self._adapts(backend):  # one for all the runs in flight
                self._watcher = asyncio.ensure_future(self._limiter.watch_loop_lag())
            await self._send(first, misses, outcomes)
        if self.progress is not None:
            self.progress.finish()
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]

    def _misses(self, raw: list[GenerationRequest | dict[str, Any]], outcomes: list[Outcome | None]) -> Iterator[Item]:
        """The requests the cache cannot answer, prepared lazily; cached ones are finished on the way."""
        lookup = self.cache is not None and not self.config.refresh
        for start in range(0, len(raw), _CHUNK):
            chunk: list[Item] = []
            for i, request in enumerate(raw[start : start + _CHUNK], start):
                try:
                    chunk.append(self._prepare(i, request))
                except (ValueError, TypeError) as err:  # one malformed request is its own dead letter
                    outcomes[i] = dead = self.outcomes.invalid(request, err)
                    if self.progress is not None:
                        self.progress.advance(dead)
            hits = self.cache.get_many([it.key for it in chunk]) if lookup else {}  # type: ignore[union-attr]
            for it in chunk:
                hit = hits.get(it.key)
                if hit is None:
                    yield it
                    continue
                self.stats.cached += 1
                comp = cached_completion(hit)
                scope = self.config.spend_scope
                outcome = self.outcomes.result(it, comp, hit.get("a", 1), True, 0.0, hit.get("d", 0.0),
                                               hit.get("e") or self.dialect or self.config.endpoint_kind,
                                               scope is not None and hit.get("r") == scope, self._label)
                outcomes[it.index] = outcome
                if self.progress is not None:
                    self.progress.advance(outcome)

    async def _send(self, first: Item, misses: Iterator[Item], outcomes: list[Outcome | None]) -> None:
        assert self._backend is not None
        lead: Item | None = first  # sent with the rest, or alone while the key and model are unchecked
        if self.dialect is None or not self._verified:
            async with self._probe_gate():  # runs in flight at once probe once, and risk one request between them
                if self.fatal is not None:
                    raise self._fatal_error()
                await self._ensure_dialect(self._backend)
                if not self._verified:
                    self._verified = await verify_endpoint(self._backend, self.config.model)
                if not self._verified:  # no free check said yes: a wrong key or URL costs one request, not C
                    outcomes[first.index] = await self._guarded(first)
                    self._verified = self.fatal is None
                    lead = None
        if lead is not None:
            misses = itertools.chain((lead,), misses)
        order_key = getattr(self._backend, "order_key", None)
        if order_key is not None:  # one request at a time (the local model): neighbours share prompt prefixes
            misses = iter(sorted(misses, key=lambda it: order_key(it.messages)))

        async def worker() -> None:
            for it in misses:  # one shared iterator: each item is taken by exactly one worker
                outcomes[it.index] = await self._guarded(it)

        # a pool of workers rather than one task per request: twice the window, so requests waiting out a
        # backoff do not leave slots idle, and no task for each of 10,000 requests
        await asyncio.gather(*(worker() for _ in range(min(len(outcomes), 2 * self.config.max_in_flight + 16))))

    def _fatal_error(self) -> EndpointError:
        assert self.fatal is not None
        return EndpointError(f"{self.config.base_url or 'endpoint'}: {self.fatal.reason}")

    def _probe_gate(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()  # a lock belongs to one loop; `generate` and `submit` use different ones
        if self._gate is None or self._gate[0] is not loop:
            self._gate = (loop, asyncio.Lock())
        return self._gate[1]

    async def _guarded(self, it: Item) -> Outcome:
        try:
            outcome = await self._one(it)
        except _BudgetStop:
            outcome = self.outcomes.dead(it, "budget_exhausted", self.budget.summary_short(), 0, None, None, "budget")
        except AttemptError as err:
            outcome = self.outcomes.dead_from(it, err, 0)
        if self.progress is not None:
            self.progress.advance(outcome)
        return outcome

    async def _one(self, it: Item) -> Outcome:
        dialect = self.dialect or self.config.endpoint_kind
        body = self._body(it)
        try:
            comp, attempts, cached = await self._fetch(it.key, body, it.prompt_estimate, it.params["max_tokens"])
        except AttemptError as err:
            return self.outcomes.dead_from(it, err, err.attempts)
        outcome = self.outcomes.result(it, comp, attempts, cached, comp.latency_s, None, dialect,
                                       endpoint=self._label)
        if (
            isinstance(outcome, DeadLetter)
            and dialect == "prompt"
            and outcome.error_class in PARSE_CLASSES
        ):  # the fallback dialect gets one repair turn
            repair = {**body, "messages": repair_messages(body["messages"], comp.content, outcome.reason)}
            key = cache_key(self._identity, self.config.model, repair["messages"], it.params,
                            it.compiled.text if it.compiled is not None else None)
            hit = None
            if self.cache is not None and not self.config.refresh:
                hit = (await asyncio.to_thread(self.cache.get_many, [key])).get(key)
            try:
                if hit is not None:
                    comp2 = cached_completion(hit)
                    attempts2, cached2 = hit.get("a", 1), True
                else:
                    comp2, attempts2, cached2 = await self._fetch(key, repair, it.prompt_estimate * 2,
                                                                  it.params["max_tokens"])
            except AttemptError as err:
                return self.outcomes.dead_from(it, err, attempts + err.attempts)
            outcome = self.outcomes.result(it, comp2, attempts + attempts2, cached and cached2, 0.0, None, dialect,
                                           endpoint=self._label)
        return outcome

    async def _fetch(self, key: str, body: dict[str, Any], prompt_estimate: int,
                     max_tokens: int) -> tuple[Completion, int, bool]:
        """One answer for one body: deduplicated by key, limited, budgeted, retried, cached as it arrives."""
        done = self._answered.get(key)
        if done is not None:
            return done[0], done[1], True
        shared = self._inflight.get(key)
        if shared is not None:  # the same prompt twice in one run is paid once
            comp, attempts, _ = await asyncio.shield(shared)
            return comp, attempts, True
        fut: asyncio.Future[tuple[Completion, int, bool]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await self._attempts(key, body, prompt_estimate, max_tokens)
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as err:
            fut.set_exception(err)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[key]
        fut.set_result(result)
        self._answered[key] = result
        return result

    async def _attempts(self, key: str, body: dict[str, Any], prompt_estimate: int,
                        max_tokens: int) -> tuple[Completion, int, bool]:
        assert self._limiter is not None and self._backend is not None
        limiter, backend, budget, cfg = self._limiter, self._backend, self.budget, self.config
        reservation = None
        attempt = 0
        strikes = {True: 0, False: 0}  # failures so far, overload and other: each kind backs off on its own
        try:
            while True:
                attempt += 1
                await limiter.acquire(retry=attempt > 1)
                try:
                    if self.fatal is not None:
                        raise _attempted(AttemptError(self.fatal.error_class, self.fatal.reason,
                                                      self.fatal.http_status), attempt - 1)
                    if attempt == 1 and budget.enabled:
                        reservation = budget.reserve(cfg.model, prompt_estimate, max_tokens)
                        if reservation is None:
                            raise _BudgetStop
                    if self._rpm is not None:
                        await self._rpm.take(1)
                    if self._tpm is not None:
                        await self._tpm.take(prompt_estimate + max_tokens)
                    self.stats.sent += 1
                    started = time.perf_counter()
                    comp = await backend.complete(body, cfg.timeout_s)
                    latency = time.perf_counter() - started
                except AttemptError as err:
                    error = err
                else:
                    limiter.on_success(latency)
                    cost = budget.charge(comp.model, comp.prompt_tokens, comp.completion_tokens)
                    budget.learn(prompt_estimate, comp.prompt_tokens)
                    if self.cache is not None:
                        self.cache.put(key, cfg.model, self._identity, {
                            "c": comp.content, "p": comp.prompt_tokens, "k": comp.completion_tokens,
                            "m": comp.model, "f": comp.finish_reason, "d": cost, "a": attempt, "e": self.dialect,
                            "r": cfg.spend_scope,
                            **({"t": comp.tool_calls} if comp.tool_calls else {}),
                        })
                    comp.latency_s = latency
                    comp.cost_usd = cost
                    return comp, attempt, False
                finally:
                    limiter.release()
                if error.http_status in OVERLOAD:
                    limiter.on_overload()
                if error.fatal:
                    self.fatal = self.fatal or error
                if error.fatal or not error.retryable or attempt >= cfg.max_attempts:
                    raise _attempted(error, attempt)
                # a full server is given time; a lost or garbled answer is asked again soon. The wait doubles
                # with repeats of the same signal: a timeout earlier does not make the first 503 wait longer
                overload = error.http_status in OVERLOAD
                strikes[overload] += 1
                base = cfg.backoff_base_s if overload else cfg.transient_backoff_s
                await asyncio.sleep(backoff_delay(strikes[overload], base, cfg.backoff_max_s, error.retry_after))
        finally:
            budget.settle(reservation)


def _attempted(err: AttemptError, attempts: int) -> AttemptError:
    err.attempts = attempts
    return err
