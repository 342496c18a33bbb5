"""The filters as a Beam composite: the same kept / filtered result as `apply_filters`, with no step that
holds the run's records in one element, and the records through one shuffle only.

    (record, language) → Check (the per-record filters; each survivor's `Fact`: id, sample, text hash, MinHash
    signature, echo keys, parent — a few hundred bytes, in batches)
    facts → ExactGroups (grouped by text hash; the smallest id represents its group) → Signatures (of each
    representative, with each published text's) → CandidatePairs (grouped by LSH band key) → Verify (each pair's
    halves joined with their signatures, grouped by pair: the estimated Jaccard) → Resolve → Decide (joined
    back with each group) → Repeats (the echo filter's cross-sample check: each field's (kind, text hash) grouped;
    the smallest id keeps the text) → Dependents (a record that is part of a filtered one)
    records ⋈ what those steps dropped, by (id, text hash) → kept.

Every grouping and join here is a `beam_buckets` one: a bundle's entries travel as one element per bucket, and
the decisions on facts travel as one batch per bucket. The records themselves are shuffled once, at the end, to
meet their drops: before, each record went through four joins and a dozen steps, and Beam's per-element cost
and its coders (each record pickled and unpickled at every shuffle) were most of an in-process run's time.

`Check` includes the echo filter's per-record checks (the prompt's own text, indexed in `setup()` on each
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
from apache_beam.transforms.window import GlobalWindows

from valuecorpus.pipelines.beam_buckets import GroupInBuckets, JoinInBuckets, flattened
from valuecorpus.pipelines.filters.beam_facts import (
    FILTERED,
    KEPT,
    Fact,
    RecordKey,
    dropped,
    filtered_sample,
    str_bucket,
)
from valuecorpus.pipelines.filters.beam_repeats import DropDependents, DropRepeated, has_dependents
from valuecorpus.pipelines.filters.core import _per_record
from valuecorpus.pipelines.filters.duplicates import EXACT_REASON, PUBLISHED, best_match, near_duplicate_reason
from valuecorpus.pipelines.filters.echo import PromptEcho, prompt_echo, repeat_entries, sample_of
from valuecorpus.pipelines.filters.minhash import (
    SIG_DTYPE,
    band_hashes,
    jaccard,
    lsh_params,
    minhash_signatures,
    minhash_values,
    shares_band,
)
from valuecorpus.pipelines.filters.text import text_hash
from valuecorpus.schemas.run_tables import FilteredSample

__all__ = ["FILTERED", "KEPT", "FilterRecords"]

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain

_FACTS = "facts"
_BATCH = 2_000  # facts per batch out of Check (one signature call per batch)


class _Check(beam.DoFn):
    """Schema, the chain's checks, length, language, leakage, the echo filter's per-record checks. Each survivor
    goes on as ((id, key), record) to meet its drops at the end, and as a `Fact`, in batches."""

    def __init__(self, chain: Chain, dependents: bool) -> None:
        self.chain, self.dependents = chain, dependents
        self.echo: PromptEcho | None = None
        self.pending: list[tuple[Any, str, str | None]] = []

    def setup(self) -> None:
        # the prompt strings, indexed once per worker (not pickled into the pipeline)
        self.echo = prompt_echo(self.chain) if self.chain.recipe.filters.echo.enabled else None

    def start_bundle(self) -> None:
        self.pending = []

    def process(self, element: tuple[Any, str]) -> Iterator[Any]:
        record, language = element
        chain = self.chain
        dropped = _per_record(chain, record, language, self.echo)
        if dropped:
            yield beam.pvalue.TaggedOutput(FILTERED, filtered_sample(record, dropped[0], dropped[1], score=dropped[2]))
            return
        text = chain.text_of(record)
        key = (text_hash(text) if chain.recipe.filters.exact_duplicate else record.id) if text else None
        yield (record.id, key), record
        self.pending.append((record, text, key))
        if len(self.pending) >= _BATCH:
            yield beam.pvalue.TaggedOutput(_FACTS, self._facts())

    def finish_bundle(self) -> Iterator[Any]:
        if self.pending:
            yield beam.pvalue.TaggedOutput(_FACTS, GlobalWindows.windowed_value(self._facts()))

    def _facts(self) -> list[Fact]:
        f = self.chain.recipe.filters
        pending, self.pending = self.pending, []
        signatures: dict[int, bytes] = {}
        if f.near_duplicate.enabled:
            texts = [(i, text) for i, (_r, text, _k) in enumerate(pending) if text]
            sigs = minhash_signatures([t for _i, t in texts], f.near_duplicate.num_perm)  # one call per batch
            signatures = {i: sig.tobytes() for (i, _t), sig in zip(texts, sigs, strict=True)}
        min_words = f.echo.min_words
        return [Fact(record.id, record.kind, sample_of(record), key, signatures.get(i),
                     repeat_entries(self.chain, record, min_words) if f.echo.enabled else [],
                     self.chain.depends_on(record) if self.dependents else None)
                for i, (record, _text, key) in enumerate(pending)]


def _keyed_facts(batches: list[list[Fact]]) -> Iterator[tuple[str, Fact]]:
    for fact in flattened(batches):
        if fact.key is not None:
            yield fact.key, fact


def _exact_groups(by_key: dict[str, list[Fact]]) -> Iterator[list[list[Fact]]]:
    """One bucket's exact groups, each smallest id first (its representative)."""
    groups = [sorted(facts, key=lambda f: f.id) for facts in by_key.values()]
    if groups:
        yield groups


def _textless(batch: list[Fact]) -> list[Any]:
    return [f for f in batch if f.key is None]


def _signature(text: str, num_perm: int) -> bytes:
    """The loop's signature (`minhash.minhash_values`), as bytes for Beam's coders."""
    return minhash_values(text, num_perm).tobytes()


def _rep_signatures(groups: list[list[Fact]]) -> list[tuple[str, bytes]]:
    return [(group[0].id, group[0].signature) for group in groups]  # type: ignore[misc]


def _band_entries(batches: list[list[tuple[str, bytes]]], bands: int, rows: int) -> Iterator[tuple[int, str]]:
    """(band key, text key) for each band of each signature: the loop's `band_hashes`, a batch at a time."""
    batch = flattened(batches)
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


def _pair_halves(pairs: list[tuple[str, str]]) -> Iterator[tuple[str, tuple[str, str]]]:
    for pair in pairs:
        yield pair[0], pair
        yield pair[1], pair


def _signed_halves(by_key: dict[str, dict[str, list[Any]]]) -> Iterator[tuple[tuple[str, str], tuple[str, bytes]]]:
    """Each pair a text is part of, with the text's signature (both halves meet again by pair)."""
    for key, joined in by_key.items():
        if joined["sig"]:
            for pair in joined["pair"]:
                yield tuple(pair), (key, joined["sig"][0])  # type: ignore[misc]


def _verify(element: tuple[tuple[str, str], Iterable[tuple[str, bytes]]], threshold: float, bands: int,
            rows: int) -> Iterator[tuple[str, str, float]]:
    (a, b), halves = element
    sigs = dict(halves)
    if a not in sigs or b not in sigs:
        return
    sig_a, sig_b = np.frombuffer(sigs[a], dtype=SIG_DTYPE), np.frombuffer(sigs[b], dtype=SIG_DTYPE)
    if not shares_band(sig_a, sig_b, bands, rows):  # band keys collided: not an LSH candidate (as the loop)
        return
    score = jaccard(sig_a, sig_b)
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


def _group_entries(batches: list[list[list[Fact]]]) -> Iterator[tuple[str, list[Fact]]]:
    for groups in batches:
        for group in groups:
            yield group[0].id, group


def _items(batch: list[Any]) -> list[Any]:
    return batch  # the input's elements are (key, value) already


def _decide(by_key: dict[str, dict[str, list[Any]]]) -> Iterator[Any]:
    """A bucket's exact groups with the near-duplicate decisions of their representatives (none: no pair,
    kept): the drops, and the facts of the kept representatives as one batch."""
    kept: list[Fact] = []
    for joined in by_key.values():
        decision = joined["decision"][0] if joined["decision"] else None
        for group in joined["group"]:
            rep = group[0]
            if decision is None or decision["kept"]:
                kept.append(rep)
                for other in group[1:]:
                    yield dropped(other, "exact_duplicate", EXACT_REASON, matched=rep.id)
                continue
            for fact in group:
                key, score = _best(decision["visible"], fact.id)  # type: ignore[misc]
                name, reason, other = near_duplicate_reason(key, score)
                yield dropped(fact, name, reason, matched=other, score=score)
    if kept:
        yield kept


class FilterRecords(beam.PTransform):
    """PCollection[(record, language)] → (kept records, FilteredSample). `published`: PCollection[(id, text)]
    of the latest published version (or None)."""

    def __init__(self, chain: Chain, published: Any = None) -> None:
        super().__init__()
        self.chain, self.published = chain, published

    def expand(self, records: Any) -> Any:
        chain = self.chain
        f = chain.recipe.filters
        dependents = has_dependents(chain)
        checked = records | "Check" >> beam.ParDo(_Check(chain, dependents)).with_outputs(
            FILTERED, _FACTS, main="records")
        facts = checked[_FACTS]
        groups = facts | "ExactGroups" >> GroupInBuckets(_keyed_facts, str_bucket, _exact_groups, per_bucket=True)
        decisions = self._near_duplicates(groups)
        decided = ({"group": groups, "decision": decisions}
                   | "Decide" >> JoinInBuckets({"group": _group_entries, "decision": _items}, str_bucket, _decide,
                                               outputs=(FILTERED,), main=KEPT))
        drops = [decided[FILTERED]]
        survivors = (decided[KEPT], facts | "Textless" >> beam.Map(_textless)) | "Survivors" >> beam.Flatten()
        echo_drops = None
        if f.echo.enabled:
            echo_drops = survivors | "Repeats" >> DropRepeated()
            drops.append(echo_drops)
        if dependents:
            so_far = tuple(drops) | "DropsSoFar" >> beam.Flatten()
            dropped = ((checked[FILTERED], so_far | "SamplesSoFar" >> beam.Map(lambda d: d[0]))
                       | "AllDropped" >> beam.Flatten())
            drops.append(survivors | "Dependents" >> DropDependents(dropped, echo_drops))
        all_drops = tuple(drops) | "Drops" >> beam.Flatten()
        kept = ({"record": checked.records, "drop": all_drops}
                | "KeepRecords" >> JoinInBuckets({"record": _items, "drop": _drop_entries}, _record_bucket,
                                                 _undropped))
        filtered = ((checked[FILTERED], all_drops | "DropSamples" >> beam.Map(lambda d: d[0]))
                    | "Filtered" >> beam.Flatten())
        return kept, filtered

    def _near_duplicates(self, groups: Any) -> Any:
        """(representative id, decision) of each representative with a verified pair; nothing when near
        duplicates are not filtered."""
        nd = self.chain.recipe.filters.near_duplicate
        if not nd.enabled:
            return groups | "NoPairs" >> beam.FlatMap(lambda _g: iter(()))
        (bands, rows), num_perm, threshold = lsh_params(nd.threshold, nd.num_perm), nd.num_perm, nd.threshold
        signed = list[tuple[str, bytes]]  # declared: the flatten with the published ones needs one coder
        sigs = groups | "Signatures" >> beam.Map(_rep_signatures).with_output_types(signed)
        if self.published is not None and nd.against_published:
            published = (self.published
                         | "PublishedSignature" >> beam.Map(
                             lambda it: (PUBLISHED + it[0], _signature(it[1], num_perm)))
                         | "OnePerPublishedId" >> beam.combiners.Top.LargestPerKey(1)
                         | "Unwrap" >> beam.Map(lambda kv: [(kv[0], kv[1][0])]).with_output_types(signed))
            sigs = (sigs, published) | "AllSignatures" >> beam.Flatten()
        pairs = (sigs
                 | "CandidatePairs" >> GroupInBuckets(lambda batch: _band_entries(batch, bands, rows), _band_bucket,
                                                      _pairs)
                 | "UniquePairs" >> beam.Distinct())
        edges = ({"sig": sigs, "pair": pairs}
                 | "JoinSignatures" >> JoinInBuckets({"sig": flattened, "pair": _pair_halves}, str_bucket,
                                                     _signed_halves)
                 | "ByPair" >> beam.GroupByKey()
                 | "Verify" >> beam.FlatMap(_verify, threshold, bands, rows))
        return (edges  # the duplicate pairs only, never the records
                | "Pairs" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
                | "Resolve" >> beam.FlatMap(_resolve))


def _record_bucket(key: RecordKey) -> int:
    return str_bucket(key[0])


def _drop_entries(drops: list[tuple[FilteredSample, RecordKey]]) -> Iterator[tuple[RecordKey, bool]]:
    for _sample, key in drops:
        yield key, True


def _undropped(by_key: dict[RecordKey, dict[str, list[Any]]]) -> Iterator[Any]:
    """The records nothing dropped. Records of one id and text are alike: as many of them go as drops came."""
    for joined in by_key.values():
        yield from joined["record"][len(joined["drop"]):]
