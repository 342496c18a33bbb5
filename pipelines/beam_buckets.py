"""`GroupInBuckets`: `FlatMap(entries) | GroupByKey() | FlatMap(group)` for many small groups, with the shuffle
carrying a bundle's entries per bucket instead of one element per key.

The duplicate filter groups every record's ten-odd LSH band keys and each echo field's text hash; almost every
group has one member. As a `GroupByKey` that is ten elements per record through the shuffle and through two
steps on each side of it, most of a Beam filter run's time (Beam's per-element cost, not the work). Here a
bundle's entries are made in batches (the band keys of a batch of signatures with one numpy call), gathered by
bucket (a hash of the key that is the same in every process), and each bucket's groups are handed to `group`
inside one step: the elements that leave are what `group` yields (the candidate pairs, the repeated texts).
The same groups as a `GroupByKey`, in no particular order (as there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

BUCKETS = 256  # enough to spread over many workers; a bucket holds 1/256 of the entries
FLUSH = 20_000  # input elements gathered before a bundle's entries are emitted (bounds a worker's memory)


class _Gather(beam.DoFn):
    def __init__(self, entries: Callable[[list[Any]], Iterable[tuple[Any, Any]]],
                 bucket: Callable[[Any], int]) -> None:
        self.entries, self.bucket = entries, bucket
        self.pending: list[Any] = []

    def start_bundle(self) -> None:
        self.pending = []

    def process(self, element: Any) -> Iterator[tuple[int, list[tuple[Any, Any]]]]:
        self.pending.append(element)
        if len(self.pending) >= FLUSH:
            yield from self._emit()

    def finish_bundle(self) -> Iterator[Any]:
        for kv in self._emit():
            yield GlobalWindows.windowed_value(kv)

    def _emit(self) -> list[tuple[int, list[tuple[Any, Any]]]]:
        buckets: dict[int, list[tuple[Any, Any]]] = {}
        for key, value in self.entries(self.pending):
            buckets.setdefault(self.bucket(key) % BUCKETS, []).append((key, value))
        self.pending = []
        return list(buckets.items())


def _groups(element: tuple[int, Iterable[list[tuple[Any, Any]]]],
            group: Callable[[Any, list[Any]], Iterable[Any]]) -> Iterator[Any]:
    _bucket, batches = element
    by_key: dict[Any, list[Any]] = {}
    for batch in batches:
        for key, value in batch:
            by_key.setdefault(key, []).append(value)
    for key, values in by_key.items():
        yield from group(key, values)


class GroupInBuckets(beam.PTransform):
    """PCollection[x] → what `group(key, [values])` yields for each key of the (key, value) pairs that
    `entries([x, …])` makes. `bucket(key)` must be the same in every process (not Python's salted `hash`)."""

    def __init__(self, entries: Callable[[list[Any]], Iterable[tuple[Any, Any]]], bucket: Callable[[Any], int],
                 group: Callable[[Any, list[Any]], Iterable[Any]]) -> None:
        super().__init__()
        self.entries, self.bucket, self.group = entries, bucket, group

    def expand(self, pcoll: Any) -> Any:
        return (pcoll
                | "Gather" >> beam.ParDo(_Gather(self.entries, self.bucket)).with_output_types(
                    tuple[int, list[tuple[Any, Any]]])
                | "ByBucket" >> beam.GroupByKey()
                | "Groups" >> beam.FlatMap(_groups, self.group))
