"""Text normalisation and a light language check shared by the filters."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Frequent English function words: running English text has 30-50% of its words in this list, word salad and
# other Latin-script languages far fewer.
EN_STOPWORDS = frozenset((
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "because",
    "been", "before", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has",
    "have", "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "may", "me",
    "more", "most", "my", "no", "not", "now", "of", "on", "one", "only", "or", "other", "our", "out",
    "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "to", "too", "up", "us", "very", "was",
    "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you",
    "your",
))


def normalise(text: str) -> str:
    """Case, width, punctuation and spacing variants of a text compare equal."""
    # ASCII text is its own NFKC form, and its casefold is its lower case
    text = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


def text_hash(text: str) -> str:
    return normalised_hash(normalise(text))


def normalised_hash(norm: str) -> str:
    """`text_hash` of a text already normalised."""
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def shingle_tokens(text: str) -> list[str]:
    """The tokens shingles are made of: words of the normalised text (characters of CJK text, which has no
    spaces)."""
    return normalised_tokens(normalise(text))


def normalised_tokens(norm: str) -> list[str]:
    """`shingle_tokens` of a text already normalised."""
    return list(norm.replace(" ", "")) if CJK.search(norm) else norm.split()


def shingles(text: str, size: int = 3) -> set[str]:
    """Word n-grams (characters of CJK text); a text shorter than `size` tokens is its one shingle."""
    return normalised_shingles(normalise(text), size)


def normalised_shingles(norm: str, size: int = 3) -> set[str]:
    """`shingles` of a text already normalised."""
    tokens = normalised_tokens(norm)
    if len(tokens) < size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i:i + size]) for i in range(len(tokens) - size + 1)}


def language_confidence(text: str, language: str) -> float:
    """How sure a light heuristic is that `text` is in `language` (en or zh; others: script check only).

    zh: share of CJK characters among letters. en: Latin script, and the share of English function words
    (0.25 or more counts as sure)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    cjk = len(CJK.findall(text)) / len(letters)
    if language == "zh":
        return min(1.0, cjk / 0.5)
    if cjk > 0.2:
        return 0.0
    if language != "en":
        return 1.0 - cjk
    tokens = words(text)
    if len(tokens) < 4:
        return 1.0
    share = sum(t in EN_STOPWORDS for t in tokens) / len(tokens)
    return min(1.0, share / 0.25)


def find_terms(text: str, terms: list[str]) -> list[str]:
    """Terms that occur in text as whole words (case-insensitive)."""
    norm = f" {normalise(text)} "
    return [t for t in terms if t.strip() and f" {_normalised_term(t)} " in norm]


@lru_cache(maxsize=4096)
def _normalised_term(term: str) -> str:
    """A leakage term, normalised once per process (the same few terms are checked in every record)."""
    return normalise(term)
