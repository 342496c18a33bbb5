"""The non-LLM filters over a run's records (see the package docstring for the order)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import ValidationError

from valuecorpus.pipelines.filters.duplicates import (
    DuplicateSettings,
    duplicate_drops,
    hash_texts,
    near_duplicate_reason,
)
from valuecorpus.pipelines.filters.echo import PromptEcho, drop_repeated, echo_in_record, prompt_echo
from valuecorpus.pipelines.filters.text import find_terms, language_confidence
from valuecorpus.schemas.records import Record
from valuecorpus.schemas.run_tables import FilteredSample

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain

__all__ = ["FilterResult", "apply_filters", "near_duplicate_reason"]


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

    texts: list[tuple[Record, str]] = []  # survivors with a text, in id order
    for record in survivors:
        text = chain.text_of(record)
        if text:
            texts.append((record, text))
        else:
            out.kept.append(record)
    settings = DuplicateSettings.of(f)
    run = hash_texts(settings, [([r.id for r, _t in texts], [t for _r, t in texts])])
    against = None
    if settings.near and f.near_duplicate.against_published and published:
        against = hash_texts(settings, [([i for i, _t in published], [t for _i, t in published])], exact_keys=False)
    dropped = {d.position: d for d in duplicate_drops(run, against)}
    for position, (record, _text) in enumerate(texts):
        if (d := dropped.get(position)) is not None:
            _drop(out, record, d.filter, d.reason, matched=d.matched, score=d.score)
        else:
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
