"""The non-LLM filters over a run's records (see the package docstring for the order)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import ValidationError

from valuecorpus.pipelines.filters.echo import PromptEcho, drop_repeated, echo_in_record, prompt_echo
from valuecorpus.pipelines.filters.minhash import candidate_pairs, jaccard, lsh_params, minhash_signatures
from valuecorpus.pipelines.filters.text import find_terms, language_confidence, text_hash
from valuecorpus.schemas.records import Record
from valuecorpus.schemas.run_tables import FilteredSample

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain


@dataclass
class FilterResult:
    kept: list[Record] = field(default_factory=list)
    filtered: list[FilteredSample] = field(default_factory=list)


def _drop(out: FilterResult, record: Record, name: str, reason: str, matched: str | None = None,
          score: float | None = None) -> None:
    out.filtered.append(FilteredSample(sample_id=record.id, kind=record.kind, filter=name, reason=reason,
                                       matched_id=matched, score=score))


def _schema_problem(record: Record) -> str | None:
    try:
        type(record).model_validate(record.model_dump(mode="json"))
    except ValidationError as err:
        first = err.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return None


def _per_record(chain: Chain, record: Record, language: str, echo: PromptEcho | None = None
                ) -> tuple[str, str, float | None] | None:
    """The first per-record filter that drops the record: (filter, reason, score)."""
    f = chain.recipe.filters
    if f.schema_validity and (problem := _schema_problem(record)):
        return "schema", problem, None
    if found := chain.check(record):
        return found[0], found[1], None
    text = chain.text_of(record)
    if text:
        if not f.length.min_chars <= len(text) <= f.length.max_chars:
            bounds = f"{f.length.min_chars}-{f.length.max_chars}"
            return "length", f"{len(text)} characters (bounds {bounds})", None
        if f.language.enabled:
            conf = language_confidence(text, language)
            if conf < f.language.min_confidence:
                return "language", f"not recognisably '{language}' (confidence {conf:.2f})", conf
    if f.leakage:
        for leak_text, terms in chain.leakage(record):
            if found_terms := find_terms(leak_text, terms):
                return "leakage", f"names {', '.join(repr(t) for t in found_terms[:5])}", None
    if echo is not None and (why := echo_in_record(chain, record, echo)):
        return "echo", why, None
    return None


def apply_filters(chain: Chain, records: list[Record], published: list[tuple[str, str]] | None = None,
                  languages: dict[str, str] | None = None) -> FilterResult:
    """Filter a run's records. `published`: (id, text) of the latest published version (near-duplicates
    against it are dropped); `languages`: plan item (sample id) → expected language (default en)."""
    f = chain.recipe.filters
    out = FilterResult()
    survivors: list[Record] = []
    echo = prompt_echo(chain) if f.echo.enabled and records else None
    for record in sorted(records, key=lambda r: r.id):  # order-independent: smallest id wins a duplicate
        lang = (languages or {}).get(record.provenance.plan_item or "", "en")
        if dropped := _per_record(chain, record, lang, echo):
            _drop(out, record, dropped[0], dropped[1], score=dropped[2])
        else:
            survivors.append(record)

    seen: dict[str, str] = {}
    nd = f.near_duplicate
    texts: list[tuple[Record, str, str]] = []  # (record, text, normalised text hash) of survivors with a text
    for record in survivors:
        text = chain.text_of(record)
        if text:
            texts.append((record, text, text_hash(text)))
        else:
            out.kept.append(record)
    near = None
    if nd.enabled:
        groups = {key: text for _r, text, key in reversed(texts)}  # one text per normalised text: MinHashed once
        near = _NearDuplicates(nd.threshold, nd.num_perm, (published or []) if nd.against_published else [], groups)
    for record, _text, key in texts:
        if f.exact_duplicate and key in seen:
            _drop(out, record, "exact_duplicate", "same normalised text", matched=seen[key])
            continue
        if near is not None:
            match = near.match(key)
            if match is not None:
                name, reason, other = near_duplicate_reason(*match)
                _drop(out, record, name, reason, matched=other, score=match[1])
                continue
            near.add(key, record.id)
        seen.setdefault(key, record.id)
        out.kept.append(record)
    if f.echo.enabled:  # a field repeated across samples: over what the duplicate filters kept
        out.kept, repeated = drop_repeated(chain, out.kept, f.echo.min_words)
        for record, reason, matched in repeated:
            _drop(out, record, "echo", reason, matched=matched)
    _drop_dependents(chain, out)
    return out


def _drop_dependents(chain: Chain, out: FilterResult) -> None:
    """A record that is part of a filtered one (a rubric of a filtered case) goes with it, with the reason."""
    dropped = {f.sample_id: f for f in out.filtered}
    if not dropped:
        return
    kept = []
    for record in out.kept:
        parent = chain.depends_on(record)
        if parent is not None and parent in dropped:
            why = dropped[parent]
            _drop(out, record, "dependent", f"part of {why.kind} {parent}, filtered by {why.filter}: {why.reason}",
                  matched=parent)
        else:
            kept.append(record)
    out.kept = kept


def near_duplicate_reason(matched: str, score: float) -> tuple[str, str, str]:
    """(filter, reason, matched id) of a near-duplicate of `matched` (`published:<id>` or a record id)."""
    where = "the published version" if matched.startswith("published:") else "this run"
    other = matched.removeprefix("published:")
    return "near_duplicate", f"similar to {other} in {where} (Jaccard ≈ {score:.2f})", other


class _NearDuplicates:
    """MinHash LSH over word 3-shingles, computed at once: one signature per published text and per distinct
    normalised text of the run, candidate pairs by LSH banding, kept when their estimated Jaccard reaches the
    threshold. `match` then answers what a `MinHashLSH` holding the published texts and the records kept so far
    would: the best verified candidate, ties to the first key in sorted order."""

    def __init__(self, threshold: float, num_perm: int, published: Iterable[tuple[str, str]],
                 groups: dict[str, str]) -> None:
        pub_keys: list[str] = []
        pub_texts: list[str] = []
        seen: set[str] = set()
        for pid, ptext in published:
            key = f"published:{pid}"
            if key not in seen:  # a repeated id: its first text, as an LSH insert of a known key is ignored
                seen.add(key)
                pub_keys.append(key)
                pub_texts.append(ptext)
        group_keys = list(groups)
        signatures = minhash_signatures([*pub_texts, *groups.values()], num_perm)
        n_pub = len(pub_keys)
        self.published: dict[str, list[tuple[str, float]]] = {}  # group → (published key, score)
        self.similar: dict[str, list[tuple[str, float]]] = {}  # group → (other group, score), both ways
        for i, j in candidate_pairs(signatures, *lsh_params(threshold, num_perm)):
            if j < n_pub:  # published texts are never compared with each other
                continue
            score = jaccard(signatures[i], signatures[j])
            if score < threshold:
                continue
            gj = group_keys[j - n_pub]
            if i < n_pub:
                self.published.setdefault(gj, []).append((pub_keys[i], score))
            else:
                gi = group_keys[i - n_pub]
                self.similar.setdefault(gi, []).append((gj, score))
                self.similar.setdefault(gj, []).append((gi, score))
        self.kept: dict[str, list[str]] = {}  # group → ids of its kept records

    def add(self, group: str, record_id: str) -> None:
        self.kept.setdefault(group, []).append(record_id)

    def match(self, group: str) -> tuple[str, float] | None:
        candidates = list(self.published.get(group, ()))
        for other, score in [*self.similar.get(group, ()), (group, 1.0)]:  # the same text: identical signature
            candidates += [(rid, score) for rid in self.kept.get(other, ())]
        best: tuple[str, float] | None = None
        for key, score in sorted(candidates):
            if best is None or score > best[1]:
                best = (key, score)
        return best
