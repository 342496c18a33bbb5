"""The Beam filter's last decisions on facts: the echo filter's cross-sample check (`echo.drop_repeated`) and
the records that are part of a filtered one (`core._drop_dependents`). Both see the facts of the records that
the duplicate filters kept, in batches, and yield drops only: no step holds the run, no record travels."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import apache_beam as beam

from valuecorpus.pipelines.beam_buckets import GroupInBuckets, JoinInBuckets, flattened
from valuecorpus.pipelines.filters.beam_facts import Fact, RecordKey, filtered_sample, str_bucket
from valuecorpus.pipelines.filters.echo import RepeatKey, repeat_reason
from valuecorpus.schemas.run_tables import FilteredSample

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain

# (id, sample, position of the field among the record's entries, field name, kind, key of the record)
_Holding = tuple[str, str, int, str, str, "str | None"]


def has_dependents(chain: Chain) -> bool:
    from valuecorpus.pipelines.chains.base import Chain

    return type(chain).depends_on is not Chain.depends_on


def _holdings(batches: list[list[Fact]]) -> Iterator[tuple[RepeatKey, _Holding]]:
    for fact in flattened(batches):
        seen: set[RepeatKey] = set()
        for position, (name, key) in enumerate(fact.repeats):
            if key not in seen:  # a key's first field decides (`echo.first_repeat` stops there)
                seen.add(key)
                yield key, (fact.id, fact.sample, position, name, fact.kind, fact.key)


def _told(_key: RepeatKey, holdings: list[_Holding]) -> Iterator[tuple[RecordKey, tuple[Any, ...]]]:
    """One (field kind, text hash): the smallest id holds the text (`echo.drop_repeated`'s `first`); every
    record of another sample that has it is told (by its (id, key)): the field's position and name, and the
    holder."""
    members = sorted(set(holdings), key=lambda h: h[:5])
    first = members[0]
    for record_id, sample, position, name, kind, key in members[1:]:
        if sample != first[1]:
            yield (record_id, key), (position, name, kind, first[0])


def _hit(element: tuple[RecordKey, Iterable[tuple[Any, ...]]]) -> Any:
    """The record's first field (in `echo_fields` order) that repeats another sample's text."""
    record_key, told = element
    _position, name, kind, holder = min(told)
    return FilteredSample(sample_id=record_key[0], kind=kind, filter="echo", reason=repeat_reason(name),
                          matched_id=holder), record_key


class DropRepeated(beam.PTransform):
    """PCollection[list[Fact]] (the facts the duplicate filters kept) → drops (filtered sample, record key)."""

    def expand(self, survivors: Any) -> Any:
        return (survivors
                | "FirstHolders" >> GroupInBuckets(_holdings, _text_bucket, _told)
                | "ByRecord" >> beam.GroupByKey()
                | "FirstHit" >> beam.Map(_hit))


def _text_bucket(key: RepeatKey) -> int:
    return int(key[1][:8], 16)  # the text's sha256, the same in every process


def _children(batches: list[list[Fact]]) -> Iterator[tuple[str, Fact]]:
    for fact in flattened(batches):
        if fact.parent is not None:
            yield fact.parent, fact


def _samples(samples: list[Any]) -> Iterator[tuple[str, Any]]:
    for sample in samples:
        yield sample.sample_id, sample


def _orphans(by_key: dict[str, dict[str, list[Any]]]) -> Iterator[tuple[RecordKey, Any]]:
    """Each child of a filtered parent, with its drop (by its record key)."""
    for parent, joined in by_key.items():
        if not joined["dropped"]:
            continue
        why = joined["dropped"][0]
        for child in joined["child"]:
            sample = filtered_sample(
                child, "dependent", f"part of {why.kind} {parent}, filtered by {why.filter}: {why.reason}",
                matched=parent)
            yield (child.id, child.key), (sample, (child.id, child.key))


def _unless_repeated(element: tuple[Any, dict[str, list[Any]]]) -> Iterator[Any]:
    _key, joined = element
    if not joined["echo"]:  # a child the echo filter dropped is not kept, so not an orphan (as the loop)
        yield from joined["orphan"]


class DropDependents(beam.PTransform):
    """PCollection[list[Fact]] (the facts the duplicate filters kept) → drops of the records whose parent is in
    `dropped` (FilteredSample), unless the echo filter dropped them (`echo_drops`, or None)."""

    def __init__(self, dropped: Any, echo_drops: Any) -> None:
        super().__init__()
        self.dropped, self.echo_drops = dropped, echo_drops

    def expand(self, survivors: Any) -> Any:
        orphans = ({"child": survivors, "dropped": self.dropped}
                   | "JoinParents" >> JoinInBuckets({"child": _children, "dropped": _samples}, str_bucket, _orphans))
        if self.echo_drops is None:
            return orphans | "Drops" >> beam.Map(lambda kv: kv[1])
        repeated = self.echo_drops | "ByRecordKey" >> beam.Map(lambda d: (d[1], True))
        return ({"orphan": orphans, "echo": repeated}
                | "WithRepeats" >> beam.CoGroupByKey()
                | "Orphans" >> beam.FlatMap(_unless_repeated))
