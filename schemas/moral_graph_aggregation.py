"""The moral graph's aggregation math: votes → per-edge counts → wiserLikelihood and entropy → value ranks.

Pure functions over plain values, here in `schemas` because both the importer (which recomputes an exported
graph's summaries and refuses an export whose published values disagree) and the pipeline's aggregation step
use them, and `schemas` is the one package both may import. The semantics follow the Meaning Alignment
Institute's `summarizeGraph` (values-tools, MIT):

- each vote A→B adds an impression to edge (A, B) and one to the reverse edge (B, A); on (A, B) it counts as
  markedWiser (upgrade), markedNotWiser (no_upgrade) or markedUnsure (not_sure); an upgrade also counts as
  markedLessWise on (B, A); hypotheses (no relationship) are not votes;
- wiserLikelihood = (wiser − lessWise) / (wiser + notWiser + unsure + lessWise), 0 when nothing was judged;
- entropy = Shannon entropy (log2) over the five counts, impressions included, as the published code does;
- the published graph keeps an edge when markedWiser ≥ 2, wiserLikelihood ≥ 0.33 and entropy ≤ 1.69;
- PageRank over the kept edges, each source's out-weight split by wiserLikelihood, damping 0.85, 100 rounds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

COUNT_KEYS = ("marked_wiser", "marked_not_wiser", "marked_less_wise", "marked_unsure", "impressions")
RELATIONSHIP_COUNT = {"upgrade": "marked_wiser", "no_upgrade": "marked_not_wiser", "not_sure": "marked_unsure"}


def wiser_likelihood(counts: Mapping[str, int]) -> float:
    judged = (counts["marked_wiser"] + counts["marked_not_wiser"] + counts["marked_unsure"]
              + counts["marked_less_wise"])
    return 0.0 if judged == 0 else (counts["marked_wiser"] - counts["marked_less_wise"]) / judged


def entropy(counts: Mapping[str, int]) -> float:
    values = [counts[k] for k in COUNT_KEYS]
    total = sum(values)
    return -sum(v / total * math.log2(v / total) for v in values if v > 0) if total else 0.0


def summary(counts: Mapping[str, int]) -> tuple[float, float]:
    """(wiserLikelihood, entropy) of one edge's counts."""
    return wiser_likelihood(counts), entropy(counts)


@dataclass
class EdgeTally:
    """Counts of one directed card pair, and the contexts its votes were cast in (first seen first)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    contexts: list[str] = field(default_factory=list)

    def context(self, value: str | None) -> None:
        if value is not None and value not in self.contexts:
            self.contexts.append(value)


def tally(votes: Iterable[tuple[str, str, str | None, str | None]]) -> dict[tuple[str, str], EdgeTally]:
    """Votes (from card, to card, relationship, context) → per (from, to) tallies, both directions.

    Votes without a relationship (hypotheses) are skipped; a vote from a card to itself is an error (a
    deduplicated pair voted on: the caller maps cards to canonical ones and must drop those first)."""
    edges: dict[tuple[str, str], EdgeTally] = {}
    for a, b, relationship, context in votes:
        if relationship is None:
            continue
        if relationship not in RELATIONSHIP_COUNT:
            raise ValueError(f"unknown relationship '{relationship}' (known: {', '.join(RELATIONSHIP_COUNT)})")
        if a == b:
            raise ValueError(f"a vote from card {a} to itself")
        forward = edges.setdefault((a, b), EdgeTally())
        forward.counts["impressions"] += 1
        forward.counts[RELATIONSHIP_COUNT[relationship]] += 1
        forward.context(context)
        backward = edges.setdefault((b, a), EdgeTally())
        backward.counts["impressions"] += 1
        backward.context(context)
        if relationship == "upgrade":
            backward.counts["marked_less_wise"] += 1
    return edges


@dataclass(frozen=True)
class EdgeRule:
    """Which aggregated edges a published moral graph keeps (the published graph's thresholds)."""

    min_wiser: int = 2
    min_likelihood: float = 0.33
    max_entropy: float = 1.69

    def keeps(self, counts: Mapping[str, int]) -> bool:
        wl, h = summary(counts)
        return (counts["marked_wiser"] > 0 and counts["marked_wiser"] >= self.min_wiser
                and wl >= self.min_likelihood and h <= self.max_entropy)


def pagerank(edges: Iterable[tuple[str, str, float]], damping: float = 0.85,
             iterations: int = 100) -> dict[str, float]:
    """PageRank of the nodes of (source, wiser, weight) edges: rank flows from a value to the values judged
    wiser than it, split by weight. As published: no teleport of a dangling node's rank. An edge whose weight
    is not positive (more people judged the other way) carries no rank."""
    edges = [(a, b, float(w)) for a, b, w in edges if w > 0]
    nodes = sorted({n for a, b, _ in edges for n in (a, b)})
    if not nodes:
        return {}
    out_weight: dict[str, float] = {}
    for a, _, w in edges:
        out_weight[a] = out_weight.get(a, 0.0) + w
    rank = dict.fromkeys(nodes, 1.0 / len(nodes))
    for _ in range(iterations):
        new = dict.fromkeys(nodes, (1.0 - damping) / len(nodes))
        for a, b, w in edges:
            total = out_weight[a]
            if total > 0:
                new[b] += damping * rank[a] * w / total
        rank = new
    return rank
