"""What the Beam filter's decisions travel as: a record's `Fact` (a few hundred bytes instead of the record),
and a drop decided on one — the filtered sample with the (id, key) that finds its record at the end."""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple

import apache_beam as beam

from valuecorpus.pipelines.filters.echo import RepeatKey
from valuecorpus.schemas.run_tables import FilteredSample

KEPT = "kept"
FILTERED = "filtered"


class Fact(NamedTuple):
    """What the duplicate, echo and dependent decisions need of a record that passed the per-record filters."""

    id: str
    kind: str
    sample: str
    key: str | None  # the normalised text's hash (the record's id when exact duplicates are not filtered);
    # None: no text
    signature: bytes | None  # MinHash of the text (None: no text, or near duplicates not filtered)
    repeats: list[tuple[str, RepeatKey]]  # the echo filter's cross-sample (field name, key) entries, in order
    parent: str | None  # `Chain.depends_on`


RecordKey = tuple[str, "str | None"]  # (id, key): how a drop finds its record


def filtered_sample(record: Any, name: str, reason: str, matched: str | None = None,
                    score: float | None = None) -> FilteredSample:
    """`record`: anything with the record's `id` and `kind` (a record or its fact)."""
    return FilteredSample(sample_id=record.id, kind=record.kind, filter=name, reason=reason, matched_id=matched,
                          score=score)


def dropped(fact: Fact, name: str, reason: str, matched: str | None = None, score: float | None = None) -> Any:
    """A drop decided on a fact, on the `FILTERED` output."""
    return beam.pvalue.TaggedOutput(FILTERED, (filtered_sample(fact, name, reason, matched, score),
                                               (fact.id, fact.key)))


def str_bucket(key: str) -> int:
    return zlib.crc32(key.encode())  # the same in every process (Python's `hash` of a str is salted)

