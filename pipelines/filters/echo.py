"""The echo filter: output that copies the prompt instead of answering it.

A small model at temperature 0 copies what it is shown: the worked example of a prompt ("Your neighbour falls
from the old ladder."), the prompt's own instructions, or, once it has found an answer, the same text for every
sample. Three checks, each recorded with its reason as filter `echo`:

- **the prompt's own text**: a field whose normalised text is one of the chain's template strings (an example's
  field, an instruction), a field with a sentence that is a sentence of them, or a field of which at least
  `prompt_share` of the word 4-grams (character 4-grams for Chinese) occur in them. The templates are the
  chain's steps' (after recipe overrides), every example of each, not only the one a request showed;
- **the same text twice in a sample** (`Chain.distinct_fields`): e.g. the to-do and not-to-do actions;
- **a field repeated across samples** (`Chain.echo_fields` marked across): a text of at least `min_words` words
  that another sample of the run also has, among the records the other filters kept. Found by hashing: the
  smallest record id per (field, normalised-text hash) keeps the text, as with exact duplicates, so the cost is
  linear in the run (no pairs of samples are compared) and the result does not depend on arrival order. Every
  kept record holds its texts, including one this check drops (it still wrote its text before the next), so the
  decision is one lookup per field: a dict in the loop, one GroupByKey on Beam (`filters/beam.py`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from valuecorpus.pipelines.filters.text import CJK, normalise, normalised_hash, normalised_shingles, shingles, text_hash

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain
    from valuecorpus.schemas.records import Record

GRAM = 4
MIN_SENTENCE_TOKENS = 4  # shorter sentences ("You decide.") are too common to call a copy
MIN_WHOLE_TOKENS = 3  # a whole field equal to a prompt string: "You" as a party is not an echo
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")


def tokens(text: str) -> int:
    """Words; for Chinese, characters / 2 (a word is about two characters)."""
    return _tokens(normalise(text))


def _tokens(norm: str) -> int:
    if CJK.search(norm):
        return len(norm.replace(" ", "")) // 2
    return len(norm.split())


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s.strip()]


class PromptEcho:
    """The chain's prompt strings, indexed for copy checks that cost a few set lookups per field."""

    def __init__(self, texts: list[str], share: float) -> None:
        self.share = share
        self.whole = {text_hash(t) for t in texts if tokens(t) >= MIN_WHOLE_TOKENS}
        self.sentences = {normalise(s) for t in texts for s in sentences(t) if tokens(s) >= MIN_SENTENCE_TOKENS}
        self.grams: set[str] = set()
        for t in texts:
            self.grams |= shingles(t, GRAM)

    def copy_reason(self, text: str) -> str | None:
        norm = normalise(text)  # once per text and sentence: a record's dozen fields are each checked three ways
        if _tokens(norm) >= MIN_WHOLE_TOKENS and normalised_hash(norm) in self.whole:
            return "is the prompt's own text"
        for s in sentences(text):
            sentence = normalise(s)
            if _tokens(sentence) >= MIN_SENTENCE_TOKENS and sentence in self.sentences:
                return f"copies the prompt's sentence {s[:80]!r}"
        grams = normalised_shingles(norm, GRAM)
        if len(grams) >= 3:
            found = len(grams & self.grams) / len(grams)
            if found >= self.share:
                return f"{found:.0%} of its {GRAM}-grams are the prompt's"
        return None


def prompt_echo(chain: Chain) -> PromptEcho:
    texts = []
    for step in chain.steps():
        if step.template is not None or step.name in chain.recipe.prompts:
            texts.extend(step.prompt.literal_texts())
    return PromptEcho(texts, chain.recipe.filters.echo.prompt_share)


def echo_in_record(chain: Chain, record: Record, index: PromptEcho) -> str | None:
    """Why this record echoes its prompt or repeats itself, or None."""
    for name, text, _across in chain.echo_fields(record):
        if text and (why := index.copy_reason(text)):
            return f"{name} {why}"
    for name_a, text_a, name_b, text_b in chain.distinct_fields(record):
        if text_a and text_b and text_hash(text_a) == text_hash(text_b):
            return f"{name_a} and {name_b} have the same text"
    return None


RepeatKey = tuple[str, str]  # (field kind, normalised-text hash)
Holder = tuple[str, str]  # (record id, sample)


def sample_of(record: Record) -> str:
    return record.provenance.plan_item or record.id


def repeat_entries(chain: Chain, record: Record, min_words: int) -> list[tuple[str, RepeatKey]]:
    """(field name, key) of a record's fields checked across samples, in `echo_fields` order: the key is (field
    kind, text hash) of each long enough text. "negative_consequence (to_do)" and "(not_to_do)" are one field
    kind."""
    entries = []
    for name, text, across in chain.echo_fields(record):
        if across and text and _tokens(norm := normalise(text)) >= min_words:
            entries.append((name, (name.split(" (")[0], normalised_hash(norm))))
    return entries


def repeat_keys(chain: Chain, record: Record, min_words: int) -> list[RepeatKey]:
    """The keys of `repeat_entries`."""
    return [key for _name, key in repeat_entries(chain, record, min_words)]


def repeat_reason(name: str) -> str:
    return f"{name} repeats the text of another sample"


def first_repeat(entries: list[tuple[str, RepeatKey]], sample: str, first: dict[RepeatKey, Holder]
                 ) -> tuple[str, str] | None:
    """(reason, matched record id) for the first entry whose text the run's first holder of it (the smallest
    id, `first`) wrote in another sample; None when it has none. Records of one sample may share a field."""
    for name, key in entries:
        holder = first.get(key)
        if holder is not None and holder[1] != sample:
            return repeat_reason(name), holder[0]
    return None


def repeat_hit(chain: Chain, record: Record, min_words: int, first: dict[RepeatKey, Holder]
               ) -> tuple[str, str] | None:
    """`first_repeat` of a record's fields (in `echo_fields` order)."""
    return first_repeat(repeat_entries(chain, record, min_words), sample_of(record), first)


def drop_repeated(chain: Chain, records: list[Record], min_words: int
                  ) -> tuple[list[Record], list[tuple[Record, str, str]]]:
    """(kept, [(record, reason, matched id)]): the cross-sample check over the records the other filters kept.
    Every one of them holds its texts (a record dropped here still wrote them first), so each decision needs
    only the smallest id per key — what `filters/beam.py` computes with one GroupByKey."""
    first: dict[RepeatKey, Holder] = {}
    for record in sorted(records, key=lambda r: r.id):
        for key in repeat_keys(chain, record, min_words):
            first.setdefault(key, (record.id, sample_of(record)))
    kept, dropped = [], []
    for record in records:
        if hit := repeat_hit(chain, record, min_words, first):
            dropped.append((record, *hit))
        else:
            kept.append(record)
    return kept, dropped
