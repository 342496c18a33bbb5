"""The filters as a Beam composite: the same kept / filtered result as `apply_filters`, with no step that
holds the run's records in one element.

    (record, language) → PerRecord → ExactGroups (GroupByKey on the normalised text hash; the smallest id of
    each group represents it) → Signatures (MinHash of each representative and of each published text)
    → CandidatePairs (grouped by LSH band key, in buckets: `beam_buckets.GroupInBuckets`) → Verify (each
    pair's halves joined with their signatures and grouped by pair: the estimated Jaccard) → Resolve
    → Decide (joined back with each group) → Repeats (the echo filter's cross-sample check: each field's text
    hash grouped, in buckets too; the smallest id keeps the text, joined back by record id) → DropDependents.

`PerRecord` includes the echo filter's per-record checks (the prompt's own text, indexed in `setup()` on each
worker; the same text twice in a record).

`Resolve` is the one step that sees the whole run, and it sees only the verified duplicate pairs (as
datatrove's MinHash clustering stage does): it replays `apply_filters`'s rule, in id order — a text is a
near-duplicate when a kept text (or a published one) reaches the threshold — over the records that have a
pair. Every other representative is kept; the rest of each exact group are exact duplicates of it (or, when
the representative itself fell as a near-duplicate, near-duplicates of what it matched, as in the loop).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import apache_beam as beam
import numpy as np

from valuecorpus.pipelines.beam_buckets import GroupInBuckets
from valuecorpus.pipelines.beam_join import JoinOnKey
from valuecorpus.pipelines.filters.core import _per_record
from valuecorpus.pipelines.filters.duplicates import EXACT_REASON, PUBLISHED, best_match, near_duplicate_reason
from valuecorpus.pipelines.filters.echo import PromptEcho, prompt_echo, repeat_hit, repeat_keys, sample_of
from valuecorpus.pipelines.filters.minhash import SIG_DTYPE, band_hashes, jaccard, lsh_params, minhash_values
from valuecorpus.pipelines.filters.text import text_hash
from valuecorpus.schemas.run_tables import FilteredSample

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain

KEPT = "kept"
FILTERED = "filtered"


def _filtered(record: Any, name: str, reason: str, matched: str | None = None,
              score: float | None = None) -> FilteredSample:
    return FilteredSample(sample_id=record.id, kind=record.kind, filter=name, reason=reason, matched_id=matched,
                          score=score)


class _PerRecord(beam.DoFn):
    """Schema, the chain's checks, length, language, leakage. Survivors with a text go on to the duplicate
    steps keyed by their text hash (or their id when exact duplicates are not filtered)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.echo: PromptEcho | None = None

    def setup(self) -> None:
        # the prompt strings, indexed once per worker (not pickled into the pipeline)
        self.echo = prompt_echo(self.chain) if self.chain.recipe.filters.echo.enabled else None

    def process(self, element: tuple[Any, str]) -> Iterator[Any]:
        record, language = element
        dropped = _per_record(self.chain, record, language, self.echo)
        if dropped:
            yield beam.pvalue.TaggedOutput(FILTERED, _filtered(record, dropped[0], dropped[1], score=dropped[2]))
            return
        text = self.chain.text_of(record)
        if not text:
            yield beam.pvalue.TaggedOutput(KEPT, record)
            return
        key = text_hash(text) if self.chain.recipe.filters.exact_duplicate else record.id
        yield key, record


def _representative(element: tuple[str, Iterable[Any]]) -> tuple[str, list[Any]]:
    """(rep id, [records of the group, smallest id first])."""
    _key, records = element
    group = sorted(records, key=lambda r: r.id)
    return group[0].id, group


def _signature(text: str, num_perm: int) -> bytes:
    """The loop's signature (`minhash.minhash_values`), as bytes for Beam's coders."""
    return minhash_values(text, num_perm).tobytes()


def _band_entries(batch: list[tuple[str, bytes]], bands: int, rows: int) -> Iterator[tuple[int, str]]:
    """(band key, text key) for each band of each signature: the loop's `band_hashes`, a batch at a time."""
    if not batch:
        return
    sigs = np.frombuffer(b"".join(sig for _key, sig in batch), dtype=SIG_DTYPE).reshape(len(batch), -1)
    for (key, _sig), row in zip(batch, band_hashes(sigs, bands, rows).view(np.int64).tolist(), strict=True):
        for band_key in row:
            yield band_key, key


def _band_bucket(band_key: int) -> int:
    return band_key  # already a well-mixed 64-bit hash (as int64: in range of Beam's varint coder, not pickled)


def _pairs(_band: int, keys: list[str]) -> Iterator[tuple[str, str]]:
    """Candidate pairs of one band key (published texts are never compared with each other)."""
    members = sorted(set(keys))
    for i, a in enumerate(members):
        for b in members[i + 1:]:
            if not (a.startswith(PUBLISHED) and b.startswith(PUBLISHED)):
                yield a, b


def _halves(pair: tuple[str, str]) -> Iterator[tuple[str, tuple[str, str]]]:
    yield pair[0], pair
    yield pair[1], pair


def _signed_halves(element: tuple[str, dict[str, list[Any]]]
                   ) -> Iterator[tuple[tuple[str, str], tuple[str, bytes]]]:
    """Each pair a text is part of, with the text's signature (both halves meet again by pair)."""
    key, joined = element
    if not joined["sig"]:
        return
    for pair in joined["pair"]:
        yield tuple(pair), (key, joined["sig"][0])  # type: ignore[misc]


def _verify(element: tuple[tuple[str, str], Iterable[tuple[str, bytes]]], threshold: float
            ) -> Iterator[tuple[str, str, float]]:
    (a, b), halves = element
    sigs = dict(halves)
    if a not in sigs or b not in sigs:
        return
    score = jaccard(np.frombuffer(sigs[a], dtype=SIG_DTYPE), np.frombuffer(sigs[b], dtype=SIG_DTYPE))
    if score >= threshold:
        yield a, b, score


def _resolve(edges: list[tuple[str, str, float]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The loop's greedy rule over the records that have a verified pair, in id order. For each such record:
    whether it is kept, and the neighbours that were kept or published (with their score) — what its exact
    duplicates are matched against."""
    neighbours: dict[str, list[tuple[str, float]]] = {}
    for a, b, score in edges:
        neighbours.setdefault(a, []).append((b, score))
        neighbours.setdefault(b, []).append((a, score))
    kept: set[str] = set()
    nodes = sorted(n for n in neighbours if not n.startswith(PUBLISHED))
    for node in nodes:  # kept records before `node` are decided when it comes: the loop's order
        visible = [(k, s) for k, s in neighbours[node] if k.startswith(PUBLISHED) or k in kept]
        if _best(visible, node) is None:
            kept.add(node)
    for node in nodes:
        visible = [(k, s) for k, s in neighbours[node] if k.startswith(PUBLISHED) or k in kept]
        yield node, {"kept": node in kept, "visible": visible}


def _best(visible: list[tuple[str, float]], node: str) -> tuple[str, float] | None:
    """`duplicates.best_match` among the published texts and the kept records before `node` (the loop had
    added no later one yet)."""
    return best_match((k, s) for k, s in visible if k.startswith(PUBLISHED) or k < node)


def _decide(element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
    """One exact group with the near-duplicate decision of its representative (none: no pair, kept)."""
    _rep, joined = element
    for group in joined["group"]:
        decision = joined["decision"][0] if joined["decision"] else None
        rep = group[0]
        if decision is None or decision["kept"]:
            yield rep
            for other in group[1:]:
                yield beam.pvalue.TaggedOutput(FILTERED, _filtered(other, "exact_duplicate", EXACT_REASON,
                                                                   matched=rep.id))
            continue
        for record in group:
            key, score = _best(decision["visible"], record.id)  # type: ignore[misc]
            name, reason, other = near_duplicate_reason(key, score)
            yield beam.pvalue.TaggedOutput(FILTERED, _filtered(record, name, reason, matched=other, score=score))


class FilterRecords(beam.PTransform):
    """PCollection[(record, language)] → tagged outputs `kept` (records) and `filtered` (FilteredSample).
    `published`: PCollection[(id, text)] of the latest published version (or None)."""

    def __init__(self, chain: Chain, published: Any = None) -> None:
        super().__init__()
        self.chain, self.published = chain, published

    def expand(self, records: Any) -> Any:
        chain = self.chain
        f = chain.recipe.filters
        checked = records | "PerRecord" >> beam.ParDo(_PerRecord(chain)).with_outputs(KEPT, FILTERED, main="dup")
        groups = (checked.dup
                  | "ExactGroups" >> beam.GroupByKey()
                  | "Representative" >> beam.Map(_representative))
        nd = f.near_duplicate
        filtered_parts = [checked[FILTERED]]
        if nd.enabled:
            (bands, rows), num_perm, threshold = lsh_params(nd.threshold, nd.num_perm), nd.num_perm, nd.threshold
            signed = tuple[str, bytes]  # declared: the flatten with the published ones needs one coder
            sigs = groups | "Signature" >> beam.Map(
                lambda g: (g[0], _signature(chain.text_of(g[1][0]), num_perm))).with_output_types(signed)
            if self.published is not None and nd.against_published:
                published = (self.published
                             | "PublishedSignature" >> beam.Map(
                                 lambda it: (PUBLISHED + it[0], _signature(it[1], num_perm)))
                             | "OnePerPublishedId" >> beam.combiners.Top.LargestPerKey(1)
                             | "Unwrap" >> beam.Map(lambda kv: (kv[0], kv[1][0])).with_output_types(signed))
                sigs = (sigs, published) | "AllSignatures" >> beam.Flatten()
            pairs = (sigs
                     | "CandidatePairs" >> GroupInBuckets(lambda batch: _band_entries(batch, bands, rows),
                                                          _band_bucket, _pairs)
                     | "UniquePairs" >> beam.Distinct())
            halves = pairs | "PairHalves" >> beam.FlatMap(_halves).with_output_types(tuple[str, tuple[str, str]])
            edges = ({"sig": sigs, "pair": halves}
                     | "JoinSignatures" >> JoinOnKey()
                     | "SignedHalves" >> beam.FlatMap(_signed_halves).with_output_types(
                         tuple[tuple[str, str], tuple[str, bytes]])
                     | "ByPair" >> beam.GroupByKey()
                     | "Verify" >> beam.FlatMap(_verify, threshold))
            decisions = (edges  # the duplicate pairs only, never the records; no default (a side input)
                         | "Pairs" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
                         | "Resolve" >> beam.FlatMap(_resolve))
        else:
            decisions = groups | "NoPairs" >> beam.FlatMap(lambda _g: iter(()))
        decided = ({"group": groups, "decision": decisions}
                   | "JoinDecision" >> JoinOnKey()
                   | "Decide" >> beam.FlatMap(_decide).with_outputs(FILTERED, main=KEPT))
        filtered_parts.append(decided[FILTERED])
        kept = (checked[KEPT], decided[KEPT]) | "Kept" >> beam.Flatten()
        if f.echo.enabled:
            kept, repeated = kept | "Repeats" >> _DropRepeated(chain)
            filtered_parts.append(repeated)
        filtered = tuple(filtered_parts) | "Filtered" >> beam.Flatten()
        if type(chain).depends_on is not _base_depends_on():
            kept, dependents = kept | "DropDependents" >> _DropDependents(chain, filtered)
            filtered = (filtered, dependents) | "WithDependents" >> beam.Flatten()
        return kept, filtered


def _holders(key: Any, holders: list[tuple[str, str]]) -> Iterator[tuple[str, tuple[Any, tuple[str, str]]]]:
    """One (field kind, text hash) group: the smallest id holds the text; every record of another sample in
    the group is told (record id → (key, holder)). Records told nothing keep all their texts."""
    members = sorted(set(holders))
    first = members[0]
    for record_id, sample in members[1:]:
        if sample != first[1]:
            yield record_id, (key, first)


class _DropRepeated(beam.PTransform):
    """The echo filter's cross-sample check (`echo.drop_repeated`): a GroupByKey on each field's text hash finds
    the smallest id that wrote it, and a join by record id tells the others; no step holds the run."""

    def __init__(self, chain: Chain) -> None:
        super().__init__()
        self.chain = chain

    def expand(self, kept: Any) -> Any:
        chain = self.chain
        min_words = chain.recipe.filters.echo.min_words

        def keys(records: list[Any]) -> Iterator[tuple[Any, tuple[str, str]]]:
            for record in records:
                for key in dict.fromkeys(repeat_keys(chain, record, min_words)):
                    yield key, (record.id, sample_of(record))

        def decide(element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
            _id, joined = element
            if not joined["first"]:  # told nothing (most records): every text is its own
                yield from joined["record"]
                return
            first = {tuple(key): tuple(holder) for key, holder in joined["first"]}
            for record in joined["record"]:
                hit = repeat_hit(chain, record, min_words, first)  # type: ignore[arg-type]
                if hit is None:
                    yield record
                else:
                    yield beam.pvalue.TaggedOutput(FILTERED, _filtered(record, "echo", hit[0], matched=hit[1]))

        told = kept | "FirstHolders" >> GroupInBuckets(keys, _text_bucket, _holders)
        decided = ({"record": kept | "ById" >> beam.Map(lambda r: (r.id, r)), "first": told}
                   | "JoinHolders" >> JoinOnKey()
                   | "DecideRepeats" >> beam.FlatMap(decide).with_outputs(FILTERED, main=KEPT))
        return decided[KEPT], decided[FILTERED]


def _text_bucket(key: tuple[str, str]) -> int:
    return int(key[1][:8], 16)  # the text's sha256, the same in every process


def _base_depends_on() -> Any:
    from valuecorpus.pipelines.chains.base import Chain

    return Chain.depends_on


def _dependent(element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
    parent, joined = element
    why = joined["dropped"][0] if joined["dropped"] else None
    for record in joined["child"]:
        if why is None:
            yield record
        else:
            yield beam.pvalue.TaggedOutput(FILTERED, _filtered(
                record, "dependent", f"part of {why.kind} {parent}, filtered by {why.filter}: {why.reason}",
                matched=parent))


class _DropDependents(beam.PTransform):
    """A record that is part of a filtered one (a rubric of a filtered case) goes with it, with the reason: the
    loop's `_drop_dependents`, by a join on the parent's id."""

    def __init__(self, chain: Chain, filtered: Any) -> None:
        super().__init__()
        self.chain, self.filtered = chain, filtered

    def expand(self, kept: Any) -> Any:
        chain = self.chain

        def split(record: Any) -> Iterator[Any]:
            parent = chain.depends_on(record)
            if parent is None:
                yield beam.pvalue.TaggedOutput("free", record)
            else:
                yield parent, record

        parts = kept | "ByParent" >> beam.FlatMap(split).with_outputs("free", main="child")
        dropped = self.filtered | "KeyDropped" >> beam.Map(lambda f: (f.sample_id, f))
        decided = ({"child": parts.child, "dropped": dropped}
                   | "JoinParents" >> JoinOnKey()
                   | "Dependents" >> beam.FlatMap(_dependent).with_outputs(FILTERED, main=KEPT))
        return (parts.free, decided[KEPT]) | "KeptWithParents" >> beam.Flatten(), decided[FILTERED]
