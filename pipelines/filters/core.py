"""The non-LLM filters over a run's records (see the package docstring for the order)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from valuecorpus.pipelines.filters.echo import PromptEcho, drop_repeated, echo_in_record, prompt_echo
from valuecorpus.pipelines.filters.text import find_terms, language_confidence, shingles, text_hash
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
    lsh = _NearDuplicates(nd.threshold, nd.num_perm) if nd.enabled else None
    if lsh is not None and nd.against_published:
        for pid, ptext in published or []:
            lsh.add(f"published:{pid}", ptext)
    for record in survivors:
        text = chain.text_of(record)
        if not text:
            out.kept.append(record)
            continue
        key = text_hash(text)
        if f.exact_duplicate and key in seen:
            _drop(out, record, "exact_duplicate", "same normalised text", matched=seen[key])
            continue
        if lsh is not None:
            match = lsh.match(text)
            if match is not None:
                name, reason, other = near_duplicate_reason(*match)
                _drop(out, record, name, reason, matched=other, score=match[1])
                continue
            lsh.add(record.id, text)
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


def minhash_values(text: str, num_perm: int) -> Any:
    """The MinHash signature (uint64 array) of a text's word 3-shingles: the same one `_NearDuplicates` uses."""
    return _minhash(text, num_perm).hashvalues


def _minhash(text: str, num_perm: int) -> Any:
    from datasketch import MinHash

    mh = MinHash(num_perm=num_perm, seed=1)
    mh.update_batch([s.encode("utf-8") for s in sorted(shingles(text))])
    return mh


class _NearDuplicates:
    """MinHash LSH over word 3-shingles; a candidate counts if its estimated Jaccard reaches the threshold."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        from datasketch import MinHashLSH

        self.threshold, self.num_perm = threshold, num_perm
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.hashes: dict[str, object] = {}

    def _minhash(self, text: str) -> object:
        return _minhash(text, self.num_perm)

    def add(self, key: str, text: str) -> None:
        if key in self.hashes:
            return
        mh = self._minhash(text)
        self.hashes[key] = mh
        self.lsh.insert(key, mh)

    def match(self, text: str) -> tuple[str, float] | None:
        mh = self._minhash(text)
        best: tuple[str, float] | None = None
        for key in sorted(self.lsh.query(mh)):
            score = mh.jaccard(self.hashes[key])  # type: ignore[attr-defined]
            if score >= self.threshold and (best is None or score > best[1]):
                best = (key, score)
        return best
