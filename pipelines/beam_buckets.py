"""Groupings for many small groups, with the shuffle carrying a bundle's entries per bucket instead of one
element per key.

- `GroupInBuckets`: `FlatMap(entries) | GroupByKey() | FlatMap(group)`.
- `JoinInBuckets`: `CoGroupByKey` of several inputs, each made into (key, value) entries by its own function.

The duplicate filter groups every record's ten-odd LSH band keys, each echo field's text hash, and joins its
decisions back by id; almost every group has one member. As a `GroupByKey` that is ten elements per record
through the shuffle and through two steps on each side of it, most of a Beam filter run's time (Beam's
per-element cost and its coders, not the work). Here a bundle's entries are made in batches (the band keys of a
batch of signatures with one numpy call), gathered by bucket (a hash of the key that is the same in every
process), and each bucket's groups are handed to `group` inside one step: the elements that leave are what
`group` yields. With `per_bucket=True` (and always in `JoinInBuckets`) the function gets the whole bucket,
`{key: values}`, and can hand on one batch per bucket instead of one element per key. The same groups as a
`GroupByKey`, in no particular order (as there). An input element may itself be a batch (a list): it weighs
its length towards `FLUSH`.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from valuecorpus.pipelines.beam_join import by_tag

BUCKETS = 256  # enough to spread over many workers; a bucket holds 1/256 of the entries
FLUSH = 20_000  # input items gathered before a bundle's entries are emitted (bounds a worker's memory)

Entries = Callable[[list[Any]], Iterable[tuple[Any, Any]]]


def flattened(batches: list[list[Any]]) -> list[Any]:
    """The items of an input whose elements are batches (what `entries` gets is a list of them)."""
    return [item for batch in batches for item in batch]


class _Gather(beam.DoFn):
    def __init__(self, entries: Entries, bucket: Callable[[Any], int]) -> None:
        self.entries, self.bucket = entries, bucket
        self.pending: list[Any] = []
        self.weight = 0

    def start_bundle(self) -> None:
        self.pending, self.weight = [], 0

    def process(self, element: Any) -> Iterator[tuple[int, bytes]]:
        self.pending.append(element)
        self.weight += len(element) if isinstance(element, list) else 1
        if self.weight >= FLUSH:
            yield from self._emit()

    def finish_bundle(self) -> Iterator[Any]:
        for kv in self._emit():
            yield GlobalWindows.windowed_value(kv)

    def _emit(self) -> list[tuple[int, bytes]]:
        buckets: dict[int, list[tuple[Any, Any]]] = {}
        for key, value in self.entries(self.pending):
            buckets.setdefault(self.bucket(key) % BUCKETS, []).append((key, value))
        self.pending, self.weight = [], 0
        # one pickle per bucket: Beam's coder would encode each entry on its own (a record or a fact through its
        # fallback pickler, one call each), a third of a filter run's time
        return [(bucket, pickle.dumps(entries, pickle.HIGHEST_PROTOCOL)) for bucket, entries in buckets.items()]


def _by_key(batches: Iterable[bytes]) -> dict[Any, list[Any]]:
    by_key: dict[Any, list[Any]] = {}
    for batch in batches:
        for key, value in pickle.loads(batch):
            by_key.setdefault(key, []).append(value)
    return by_key


def _groups(element: tuple[int, Iterable[bytes]],
            group: Callable[[Any, list[Any]], Iterable[Any]]) -> Iterator[Any]:
    for key, values in _by_key(element[1]).items():
        yield from group(key, values)


def _bucket_groups(element: tuple[int, Iterable[bytes]],
                   group: Callable[[dict[Any, list[Any]]], Iterable[Any]]) -> Iterator[Any]:
    yield from group(_by_key(element[1]))


def _gathered(pcoll: Any, label: str, entries: Entries, bucket: Callable[[Any], int]) -> Any:
    return pcoll | label >> beam.ParDo(_Gather(entries, bucket)).with_output_types(tuple[int, bytes])


class GroupInBuckets(beam.PTransform):
    """PCollection[x] → what `group(key, [values])` yields for each key of the (key, value) pairs that
    `entries([x, …])` makes (with `per_bucket`: what `group({key: [values]})` yields for each bucket).
    `bucket(key)` must be the same in every process (not Python's salted `hash`)."""

    def __init__(self, entries: Entries, bucket: Callable[[Any], int], group: Callable[..., Iterable[Any]],
                 per_bucket: bool = False) -> None:
        super().__init__()
        self.entries, self.bucket, self.group, self.per_bucket = entries, bucket, group, per_bucket

    def expand(self, pcoll: Any) -> Any:
        return (_gathered(pcoll, "Gather", self.entries, self.bucket)
                | "ByBucket" >> beam.GroupByKey()
                | "Groups" >> beam.FlatMap(_bucket_groups if self.per_bucket else _groups, self.group))


class _Tagged:
    """An input's entries with the input's tag on each value (picklable, unlike a closure in a loop)."""

    def __init__(self, entries: Entries, tag: str) -> None:
        self.entries, self.tag = entries, tag

    def __call__(self, batch: list[Any]) -> Iterator[tuple[Any, tuple[str, Any]]]:
        for key, value in self.entries(batch):
            yield key, (self.tag, value)


def _join_bucket(element: tuple[int, Iterable[bytes]], tags: list[str],
                 join: Callable[[dict[Any, dict[str, list[Any]]]], Iterable[Any]]) -> Iterator[Any]:
    yield from join({key: by_tag(tagged, tags) for key, tagged in _by_key(element[1]).items()})


class JoinInBuckets(beam.PTransform):
    """{tag: PCollection[x]} → what `join({key: {tag: [values]}})` yields for each bucket, where each input's
    (key, value) pairs are what `entries[tag]([x, …])` makes. `outputs`: the tags `join` may also emit
    (`TaggedOutput`); the result is then a `DoOutputsTuple` whose main output is `main`."""

    def __init__(self, entries: dict[str, Entries], bucket: Callable[[Any], int],
                 join: Callable[[dict[Any, dict[str, list[Any]]]], Iterable[Any]],
                 outputs: tuple[str, ...] = (), main: str = "main") -> None:
        super().__init__()
        self.entries, self.bucket, self.join, self.outputs, self.main = entries, bucket, join, outputs, main

    def expand(self, pcolls: dict[str, Any]) -> Any:
        tags = list(pcolls)
        gathered = [_gathered(pcoll, f"Gather[{tag}]", _Tagged(self.entries[tag], tag), self.bucket)
                    for tag, pcoll in pcolls.items()]
        join = beam.FlatMap(_join_bucket, tags, self.join)
        return (gathered
                | "Flatten" >> beam.Flatten()
                | "ByBucket" >> beam.GroupByKey()
                | "Join" >> (join.with_outputs(*self.outputs, main=self.main) if self.outputs else join))
