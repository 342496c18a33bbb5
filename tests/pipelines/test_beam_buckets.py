"""`GroupInBuckets` hands `group` the same groups as a `GroupByKey` would: every value of a key in one call,
keys whose bucket is shared kept apart, entries emitted mid-bundle (past `FLUSH`) and at the bundle's end alike."""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from valuecorpus.pipelines.beam_buckets import BUCKETS, FLUSH, GroupInBuckets
from valuecorpus.pipelines.beam_pipeline import pipeline_options


def _entries(batch: list[int]) -> Iterator[tuple[str, int]]:
    for i in batch:
        yield f"k{i % 3001}", i  # 3,001 keys, several per bucket
        if i % 5 == 0:
            yield "five", i  # one large group


def _bucket(key: str) -> int:
    return sum(key.encode())  # the same in every process; many keys share a bucket


def _group(key: str, values: list[int]) -> Iterator[tuple[str, tuple[int, ...]]]:
    yield key, tuple(sorted(values))


def test_group_in_buckets_gives_the_groups_of_a_group_by_key() -> None:
    n = 2 * FLUSH + 123  # two flushes within the bundle and a remainder at its end
    expected: dict[str, list[int]] = {}
    for i in range(n):
        expected.setdefault(f"k{i % 3001}", []).append(i)
    expected["five"] = list(range(0, n, 5))
    assert len({_bucket(k) % BUCKETS for k in expected}) < len(expected)  # buckets really are shared

    with beam.Pipeline(options=pipeline_options([])) as pipeline:
        groups = (pipeline
                  | beam.Create([list(range(n))])
                  | beam.FlatMap(lambda xs: xs)
                  | GroupInBuckets(_entries, _bucket, _group))
        assert_that(groups, equal_to([(k, tuple(v)) for k, v in expected.items()]))
