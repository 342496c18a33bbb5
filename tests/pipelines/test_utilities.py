"""The Thurstonian fitter on synthetic preferences drawn from known utilities."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy.special import ndtr
from scipy.stats import spearmanr

from valuecorpus.pipelines.utilities import (
    Edge,
    Utility,
    edges_from_comparisons,
    evaluate,
    fit_thurstonian,
    split_holdout,
)
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.records import OutcomeComparison
from valuecorpus.schemas.records.preferences import OutcomeRef

Truth = dict[str, tuple[float, float]]


def synthetic(n: int = 30, k: int = 10, seed: int = 7) -> tuple[Truth, list[OutcomeComparison]]:
    """Outcomes with known (mu, sigma); every pair asked in both orders, k Bernoulli samples per order."""
    rng = np.random.default_rng(seed)
    truth = {f"o{i:02d}": (float(rng.normal()), float(rng.uniform(0.3, 1.0))) for i in range(n)}
    ids = sorted(truth)
    records = []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            (ma, sa), (mb, sb) = truth[a], truth[b]
            p = float(ndtr((ma - mb) / math.sqrt(sa * sa + sb * sb)))
            for order, (x, y, px) in (("original", (a, b, p)), ("flipped", (b, a, 1 - p))):
                wins = int(rng.binomial(k, px))
                records.append(OutcomeComparison(
                    id=f"{x}-{y}", option_a=OutcomeRef(outcome_id=x, description=x),
                    option_b=OutcomeRef(outcome_id=y, description=y), order=order,
                    probability_a=wins / k, samples=k, unparsed=0,
                ))
    return truth, records


def test_recovers_ordering_and_reaches_bayes_rate() -> None:
    truth, records = synthetic()
    edges, descriptions = edges_from_comparisons(records)
    assert len(edges) == 30 * 29 // 2  # both orders folded into one edge per pair
    fit = fit_thurstonian(edges, descriptions, holdout=0.1, seed=3)
    assert fit.converged
    fitted = {u.outcome_id: u for u in fit.utilities}
    rho = spearmanr([truth[o][0] for o in sorted(truth)], [fitted[o].mean for o in sorted(truth)]).statistic
    assert rho > 0.95
    means = np.array([u.mean for u in fit.utilities])
    assert abs(means.mean()) < 1e-9 and abs(means.std() - 1.0) < 1e-9
    assert all(u.variance > 0 for u in fit.utilities)
    # The Bayes rate: the true probabilities judged on the same held-out edges
    held = [e for e in edges if (e.a, e.b) in set(fit.holdout_pairs)]
    scale = np.std([m for m, _ in truth.values()])
    centre = np.mean([m for m, _ in truth.values()])
    oracle = {o: Utility(o, (m - centre) / scale, (s / scale) ** 2) for o, (m, s) in truth.items()}
    bayes = evaluate(oracle, held)
    assert fit.holdout.edges == len(held) >= 40
    assert fit.holdout.accuracy >= bayes.accuracy - 0.05
    assert fit.holdout.log_loss <= bayes.log_loss + 0.05


def test_split_is_seeded_and_disjoint() -> None:
    edges = [Edge(f"a{i}", f"b{i}", 0.7, 10) for i in range(100)]
    train, held = split_holdout(edges, 0.05, seed=42)
    assert len(held) == 5 and len(train) == 95 and not set(held) & set(train)
    assert split_holdout(edges, 0.05, seed=42) == (train, held)
    assert split_holdout(edges, 0.05, seed=43)[1] != held
    assert len(split_holdout(edges[:3], 0.05, seed=1)[1]) == 1


def test_flipped_order_folds_into_the_same_edge() -> None:
    ref = {o: OutcomeRef(outcome_id=o, description=o.upper()) for o in "xy"}
    recs = [
        OutcomeComparison(id="1", option_a=ref["x"], option_b=ref["y"], probability_a=0.8, samples=10),
        OutcomeComparison(id="2", option_a=ref["y"], option_b=ref["x"], order="flipped", probability_a=0.4,
                          samples=10, unparsed=5),
        OutcomeComparison(id="3", option_a=ref["y"], option_b=ref["x"], order="flipped", probability_a=None,
                          samples=10, unparsed=10),
    ]
    edges, desc = edges_from_comparisons(recs)
    assert edges == [Edge("x", "y", pytest.approx((0.8 * 10 + 0.6 * 5) / 15), 15)]
    assert desc == {"x": "X", "y": "Y"}


def test_deterministic_preferences_stay_finite() -> None:
    edges = [Edge("a", "b", 1.0, 10), Edge("b", "c", 1.0, 10), Edge("a", "c", 1.0, 10)]
    fit = fit_thurstonian(edges, holdout=0.0)
    assert [u.outcome_id for u in fit.utilities] == ["a", "b", "c"]
    assert all(math.isfinite(u.mean) and math.isfinite(u.variance) for u in fit.utilities)
    assert fit.train.accuracy == 1.0


def test_no_evidence_is_a_clear_error() -> None:
    with pytest.raises(ValueCorpusError, match="no parsed outcome comparisons"):
        fit_thurstonian([])
    with pytest.raises(ValueCorpusError, match="holdout fraction"):
        split_holdout([Edge("a", "b", 1, 1)], 1.5, 0)


def test_fit_is_reproducible() -> None:
    _, records = synthetic(n=12, seed=random.Random(5).randint(0, 99))
    edges, _ = edges_from_comparisons(records)
    one, two = fit_thurstonian(edges, seed=9), fit_thurstonian(edges, seed=9)
    assert one.as_dict() == two.as_dict()
