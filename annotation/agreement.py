"""Inter-annotator agreement: Cohen's κ, Fleiss' κ (statsmodels), Krippendorff's α (`krippendorff`), and for
set-valued fields (value labels) Krippendorff's α with MASI / Jaccard distance (NLTK) plus per-value κ.

Input everywhere is a mapping item → {annotator: value}; a missing value is simply absent. Each statistic is
computed only where its assumptions hold and is otherwise reported as None with the reason in `note`:
Cohen's κ needs exactly two annotators who both rated the items; Fleiss' κ needs the same number of ratings
(≥ 2) per item (items with another count are left out and counted); Krippendorff's α accepts missing values.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

Ratings = Mapping[str, Mapping[str, Any]]  # item id -> annotator -> value


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else round(float(x), 4)


def cohen_kappa(pairs: Sequence[tuple[Any, Any]], categories: Sequence[Any] | None = None) -> float | None:
    """Cohen's κ for two annotators; `pairs` holds (annotator 1's value, annotator 2's value) per item."""
    import numpy as np
    from statsmodels.stats.inter_rater import cohens_kappa

    if not pairs:
        return None
    cats = list(categories) if categories else sorted({v for p in pairs for v in p}, key=str)
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)))
    for a, b in pairs:
        table[index[a], index[b]] += 1
    if len(cats) < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite(cohens_kappa(table, return_results=False))


def fleiss_kappa(items: Sequence[Sequence[Any]], categories: Sequence[Any] | None = None) -> float | None:
    """Fleiss' κ; each item is the list of its ratings (every item must have the same number, ≥ 2)."""
    import numpy as np
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    if not items or len({len(i) for i in items}) != 1 or len(items[0]) < 2:
        return None
    cats = list(categories) if categories else sorted({v for i in items for v in i}, key=str)
    index = {c: k for k, c in enumerate(cats)}
    table = np.zeros((len(items), len(cats)))
    for row, ratings in enumerate(items):
        for value in ratings:
            table[row, index[value]] += 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite(_fleiss(table, method="fleiss"))


def krippendorff_alpha(ratings: Ratings, level: str = "nominal", categories: Sequence[Any] | None = None
                       ) -> float | None:
    """Krippendorff's α over annotators × items with missing values. Nominal values are coded by their
    position in `categories` (or sorted order); ordinal/interval values must be numbers (or ordered
    `categories`)."""
    import krippendorff
    import numpy as np

    annotators = sorted({a for per_item in ratings.values() for a in per_item})
    items = sorted(ratings)
    values = [v for per_item in ratings.values() for v in per_item.values()]
    if len(annotators) < 2 or not values:
        return None
    if categories is not None:
        code = {c: float(i) for i, c in enumerate(categories)}
    elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        code = {v: float(v) for v in set(values)}
    else:
        code = {c: float(i) for i, c in enumerate(sorted(set(values), key=str))}
    data = np.full((len(annotators), len(items)), np.nan)
    for j, item in enumerate(items):
        for a, value in ratings[item].items():
            data[annotators.index(a), j] = code[value]
    pairable = int((np.sum(~np.isnan(data), axis=0) >= 2).sum())
    if pairable == 0 or len(set(values)) < 2:
        return None  # no item rated twice, or one value only: α is undefined
    try:
        return _finite(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    except (ValueError, ZeroDivisionError):
        return None


def field_agreement(ratings: Ratings, level: str = "nominal", categories: Sequence[Any] | None = None
                    ) -> dict[str, Any]:
    """Every statistic that applies to one field's ratings, with the counts behind them."""
    annotators = sorted({a for per_item in ratings.values() for a in per_item})
    multi = {item: r for item, r in ratings.items() if len(r) >= 2}
    out: dict[str, Any] = {
        "items": len(ratings), "items_multiply_rated": len(multi), "annotators": len(annotators),
        "ratings": sum(len(r) for r in ratings.values()),
        "cohen_kappa": None, "fleiss_kappa": None, "fleiss_items": 0,
        "krippendorff_alpha": None, "level": level,
    }
    if len(annotators) == 2:
        a, b = annotators
        pairs = [(r[a], r[b]) for r in multi.values() if a in r and b in r]
        out["cohen_kappa"] = cohen_kappa(pairs, categories if level == "nominal" else None)
    if multi:
        # Fleiss' κ assumes the same number of ratings per item: use the most common count.
        n = Counter(len(r) for r in multi.values()).most_common(1)[0][0]
        same = [list(r.values()) for r in multi.values() if len(r) == n]
        out["fleiss_items"] = len(same)
        out["fleiss_kappa"] = fleiss_kappa(same, categories if level == "nominal" else None)
    out["krippendorff_alpha"] = krippendorff_alpha(ratings, level, categories if level != "nominal" else None)
    return out


# --- set-valued fields (value labels) ---------------------------------------------------------------------------

SET_DISTANCES = ("masi", "jaccard")
_DISTANCE_NAMES = {"masi": "MASI", "jaccard": "Jaccard"}


def _set_distance(name: str) -> Any:
    """NLTK's MASI (Passonneau 2006) or Jaccard distance, defined for two empty sets as well (distance 0)."""
    from nltk.metrics.distance import jaccard_distance, masi_distance

    base = masi_distance if name == "masi" else jaccard_distance

    def distance(a: frozenset[str], b: frozenset[str]) -> float:
        if not a and not b:
            return 0.0
        if not a or not b:
            return 1.0
        return float(base(set(a), set(b)))
    return distance


def set_alpha(ratings: Ratings, distance: str = "masi") -> float | None:
    """Krippendorff's α for set-valued ratings (NLTK's `AnnotationTask` with a set distance): partial overlap
    counts as partial agreement, where an exact-set comparison would count it as total disagreement."""
    from nltk.metrics.agreement import AnnotationTask

    if distance not in SET_DISTANCES:
        raise ValueError(f"unknown set distance {distance!r} (one of {', '.join(SET_DISTANCES)})")
    pairable = {item: r for item, r in ratings.items() if len(r) >= 2}
    annotators = {a for r in pairable.values() for a in r}
    values = {frozenset(v) for r in pairable.values() for v in r.values()}
    if len(annotators) < 2 or len(values) < 2:
        return None  # nothing rated twice, or one set only: α is undefined
    data = [(a, item, frozenset(v)) for item, r in sorted(pairable.items()) for a, v in sorted(r.items())]
    try:
        return _finite(AnnotationTask(data=data, distance=_set_distance(distance)).alpha())
    except ZeroDivisionError:
        return None


def set_field_agreement(ratings: Ratings) -> dict[str, dict[str, Any]]:
    """Agreement on a set-valued field: α with MASI and with Jaccard distance over the whole sets, and per value
    (chosen or not, by each annotator who rated the item) Cohen's / Fleiss' κ and nominal α."""
    annotators = sorted({a for per_item in ratings.values() for a in per_item})
    counts = {
        "items": len(ratings), "items_multiply_rated": sum(1 for r in ratings.values() if len(r) >= 2),
        "annotators": len(annotators), "ratings": sum(len(r) for r in ratings.values()),
        "cohen_kappa": None, "fleiss_kappa": None, "fleiss_items": 0,
    }
    out: dict[str, dict[str, Any]] = {
        f"value_labels [set, {_DISTANCE_NAMES[name]}]": {**counts, "krippendorff_alpha": set_alpha(ratings, name),
                                        "level": f"set, {_DISTANCE_NAMES[name]} distance"}
        for name in SET_DISTANCES
    }
    chosen = sorted({v for per_item in ratings.values() for labels in per_item.values() for v in labels})
    for value in chosen:
        binary = {item: {a: value in labels for a, labels in per_item.items()} for item, per_item in ratings.items()}
        stats = field_agreement(binary, "nominal", (False, True))
        out[f"value_labels [per value] {value}"] = {**stats, "level": "per value: chosen or not"}
    return out
