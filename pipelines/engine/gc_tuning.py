"""Fewer garbage-collector passes while requests are in flight, and none while a job is answered from the cache.

Each request leaves a few container objects alive for its whole round trip (its coroutine, its body, aiohttp's
request and response), so with hundreds in flight the collector's young generations are always full of live
objects that it walks again and again: at C = 256 that was a fifth of the engine's CPU and a tenth of its
throughput. While a run is going the thresholds are raised (cyclic garbage is still collected, in larger, rarer
passes) and they are put back when the last concurrent run ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

RUN_THRESHOLDS = (20_000, 20, 100)

_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    global _depth, _saved
    if _depth == 0:
        _saved = gc.get_threshold()
        gc.set_threshold(*(max(a, b) for a, b in zip(RUN_THRESHOLDS, _saved, strict=True)))
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None


@contextmanager
def paused_collections() -> Iterator[None]:
    """No cyclic collection at all, for bounded CPU-only work that makes no reference cycles worth collecting
    (answering a whole job from the cache: tens of thousands of acyclic objects, where every pass is waste).
    Nests; the collector runs again when the outermost pause ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
