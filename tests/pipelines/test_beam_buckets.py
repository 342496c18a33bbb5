"""`GroupInBuckets` hands `group` the same groups as a `GroupByKey` would: every value of a key in one call,
keys whose bucket is shared kept apart, entries emitted mid-bundle (past `FLUSH`) and at the bundle's end alike;
`JoinInBuckets` gives the groups of a `CoGroupByKey`, an input of batches beside one of single elements."""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from valuecorpus.pipelines.beam_buckets import BUCKETS, FLUSH, GroupInBuckets, JoinInBuckets
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


def _left(batch: list[list[int]]) -> Iterator[tuple[str, int]]:
    for items in batch:  # this input's elements are batches
        for i in items:
            yield f"k{i % 997}", i


def _right(batch: list[int]) -> Iterator[tuple[str, str]]:
    for i in batch:
        yield f"k{i}", f"r{i}"


def _joined(by_key: dict[str, dict[str, list]]) -> Iterator[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    for key, joined in by_key.items():
        yield key, tuple(sorted(joined["left"])), tuple(sorted(joined["right"]))


def test_join_in_buckets_gives_the_groups_of_a_co_group_by_key() -> None:
    n = FLUSH + 4321
    left: dict[str, list[int]] = {}
    for i in range(n):
        left.setdefault(f"k{i % 997}", []).append(i)
    right = {f"k{i}": [f"r{i}"] for i in range(500, 1500)}  # half of them meet a left key, half do not
    keys = sorted({*left, *right})
    expected = [(k, tuple(sorted(left.get(k, []))), tuple(sorted(right.get(k, [])))) for k in keys]

    with beam.Pipeline(options=pipeline_options([])) as pipeline:
        lefts = pipeline | "Left" >> beam.Create([list(range(s, min(n, s + 1000))) for s in range(0, n, 1000)])
        rights = pipeline | "Right" >> beam.Create(list(range(500, 1500)))
        joined = ({"left": lefts, "right": rights}
                  | JoinInBuckets({"left": _left, "right": _right}, _bucket, _joined))
        assert_that(joined, equal_to(expected))
