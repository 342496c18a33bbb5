"""`JoinOnKey`: Beam's `CoGroupByKey` for inputs keyed by strings (sample ids, record ids, text hashes).

Beam infers `Any` for the keys our lambdas make, so each input's coder has a non-deterministic key while the
grouping needs a deterministic one; the in-memory runner then adds a "transcode" stage per input that decodes
every element and encodes it again (`fix_flatten_coders`). On the chain that was each state, request and
outcome pickled twice more per step, a quarter of a Beam run's CPU. Here the inputs are tagged with their key
declared a `str`: every input and the grouping share one coder, no extra stage, the same groups. (Tagging,
`Flatten` and `GroupByKey` are what `CoGroupByKey` expands to.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam


def _tag(kv: tuple[str, Any], tag: str) -> tuple[str, tuple[str, Any]]:
    return kv[0], (tag, kv[1])


def by_tag(tagged: Iterable[tuple[str, Any]], tags: list[str]) -> dict[str, list[Any]]:
    """A key's (tag, value) pairs as {tag: [values]}, every tag present."""
    grouped: dict[str, list[Any]] = {tag: [] for tag in tags}
    for tag, value in tagged:
        grouped[tag].append(value)
    return grouped


def _collect(element: tuple[str, Iterable[tuple[str, Any]]], tags: list[str]) -> tuple[str, dict[str, list[Any]]]:
    key, tagged = element
    return key, by_tag(tagged, tags)


class JoinOnKey(beam.PTransform):
    """{tag: PCollection[(str, value)]} → PCollection[(str, {tag: [values]})], as `beam.CoGroupByKey()`."""

    def expand(self, pcolls: dict[str, Any]) -> Any:
        tags = list(pcolls)
        tagged = [pcoll | f"Tag[{tag}]" >> beam.Map(_tag, tag).with_output_types(tuple[str, tuple[str, Any]])
                  for tag, pcoll in pcolls.items()]
        return (tagged
                | "Flatten" >> beam.Flatten()
                | "GroupByKey" >> beam.GroupByKey()
                | "Collect" >> beam.Map(_collect, tags))
