"""Style checks for preference pairs: chosen and rejected must differ in the value they serve, not in style.

Each check compares the two responses and returns a reason when they differ in something other than their
stance — a model trained on the pair should learn the value, not "longer wins" or "confident wins":

- length_ratio: longer / shorter (words; characters for Chinese) above the recipe's bound;
- hedging: one response hedges ("perhaps", "it depends", "可能"…) more than the other by more than the bound;
- format: one uses a list or headings and the other plain prose;
- register: exclamation marks, all-caps words or emoji on one side only (beyond the bound), or average
  sentence length differing by more than the bound (ratio);
- refusal: either response refuses or talks about being an AI;
- no_value_gap: the two responses are near-identical (character n-gram cosine ≥ 0.95).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEDGES_EN = (
    "perhaps", "maybe", "might", "possibly", "arguably", "it depends", "it seems", "i think", "i believe",
    "some argue", "some people", "in some cases", "to some extent", "could be", "not necessarily", "probably",
    "on the other hand", "however",
)
HEDGES_ZH = ("可能", "也许", "或许", "大概", "似乎", "一方面", "另一方面", "不一定", "取决于", "某种程度上")
REFUSALS = (
    "as an ai", "i am an ai", "i'm an ai", "language model", "i cannot", "i can't", "i won't", "i am unable",
    "i'm unable", "i'm not able", "作为一个ai", "作为人工智能", "我不能", "无法回答",
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[A-Za-z0-9']+")
_SENTENCE = re.compile(r"[.!?。！？]+")
_LIST = re.compile(r"(^|\n)\s*([-*•]|\d+[.)]|#+)\s", re.MULTILINE)
_CAPS = re.compile(r"\b[A-Z]{3,}\b")
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")


@dataclass(frozen=True)
class StyleBounds:
    max_length_ratio: float = 1.3
    max_hedge_diff: int = 1
    max_marker_diff: int = 1
    max_sentence_ratio: float = 1.8
    max_similarity: float = 0.95


def size(text: str) -> int:
    """Words, or characters for text that is mostly Chinese."""
    cjk = len(_CJK.findall(text))
    return cjk + len(_WORD.findall(text)) if cjk else len(_WORD.findall(text))


def length_ratio(a: str, b: str) -> float:
    sa, sb = max(size(a), 1), max(size(b), 1)
    return round(max(sa, sb) / min(sa, sb), 4)


def hedges(text: str) -> int:
    low = text.casefold()
    return sum(len(re.findall(rf"\b{re.escape(h)}\b", low)) for h in HEDGES_EN) + sum(low.count(h) for h in HEDGES_ZH)


def markers(text: str) -> int:
    return text.count("!") + text.count("！") + len(_CAPS.findall(text)) + len(_EMOJI.findall(text))


def mean_sentence_size(text: str) -> float:
    parts = [p for p in _SENTENCE.split(text) if p.strip()]
    return size(text) / max(len(parts), 1)


def refuses(text: str) -> bool:
    low = text.casefold()
    return any(r in low for r in REFUSALS)


def style_problem(chosen: str, rejected: str, bounds: StyleBounds | None = None) -> tuple[str, str] | None:
    """(check name, reason) for the first style difference beyond the bounds, or None."""
    b = bounds or StyleBounds()
    ratio = length_ratio(chosen, rejected)
    if ratio > b.max_length_ratio:
        return "length_ratio", (f"length ratio {ratio:.2f} > {b.max_length_ratio} "
                                f"({size(chosen)} vs {size(rejected)} words)")
    for name, text in (("chosen", chosen), ("rejected", rejected)):
        if refuses(text):
            return "refusal", f"the {name} response refuses or speaks as an AI"
    hc, hr = hedges(chosen), hedges(rejected)
    if abs(hc - hr) > b.max_hedge_diff:
        return "hedging", f"hedging asymmetry: {hc} hedges in chosen vs {hr} in rejected"
    lc, lr = bool(_LIST.search(chosen)), bool(_LIST.search(rejected))
    if lc != lr:
        return "format", f"list or headings in {'chosen' if lc else 'rejected'} only"
    mc, mr = markers(chosen), markers(rejected)
    if abs(mc - mr) > b.max_marker_diff:
        return "register", f"emphasis markers (!, CAPS, emoji): {mc} in chosen vs {mr} in rejected"
    sc, sr = mean_sentence_size(chosen), mean_sentence_size(rejected)
    sent_ratio = max(sc, sr) / max(min(sc, sr), 1e-9)
    if sent_ratio > b.max_sentence_ratio:
        return "register", f"mean sentence length {sc:.1f} vs {sr:.1f} words (ratio {sent_ratio:.2f})"
    from valuecorpus.pipelines.similarity import char_ngram_vectors

    vec = char_ngram_vectors([chosen, rejected])
    sim = float(vec[0] @ vec[1])
    if sim >= b.max_similarity:
        return "no_value_gap", f"chosen and rejected are near-identical (cosine {sim:.2f})"
    return None
