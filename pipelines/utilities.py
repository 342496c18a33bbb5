"""Thurstonian utilities from pairwise outcome preferences (Utility Engineering, Mazeika et al. 2025).

Each outcome's utility is U ~ N(mu, sigma²); the model prefers A to B with P(A≻B) = Φ((muA−muB)/√(σA²+σB²)).
Parameters are fitted by maximum likelihood (soft-label cross-entropy, each edge weighted by its parsed samples)
with L-BFGS and an analytic gradient; sigma is fitted on the log scale so it stays positive. The likelihood only
sees differences over a common scale, so a weak Gaussian prior keeps the optimum finite when preferences are
deterministic (p = 0 or 1), and the result is normalised like the paper: mu to mean 0 and SD 1, variances scaled
by the same factor.

A comparison asked in both orders (original A/B and flipped B/A) is folded into one edge per unordered pair, so
a held-out edge never leaks through its flipped twin.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.records import OutcomeComparison


@dataclass(frozen=True)
class Edge:
    """P(a≻b) observed over `weight` parsed samples (both orders folded in)."""

    a: str
    b: str
    p_a: float
    weight: float


@dataclass
class Utility:
    outcome_id: str
    mean: float
    variance: float
    description: str = ""


@dataclass
class Metrics:
    edges: int
    accuracy: float | None
    log_loss: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {"edges": self.edges, "accuracy": self.accuracy, "log_loss": self.log_loss}


@dataclass
class ThurstonianFit:
    utilities: list[Utility]
    train: Metrics
    holdout: Metrics
    holdout_pairs: list[tuple[str, str]] = field(default_factory=list)
    config: dict[str, float | int] = field(default_factory=dict)
    converged: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "utilities": [u.__dict__ for u in self.utilities],
            "metrics": self.train.as_dict(),
            "holdout_metrics": self.holdout.as_dict(),
            "holdout_pairs": [list(p) for p in self.holdout_pairs],
            "config": self.config,
            "converged": self.converged,
        }


def edges_from_comparisons(comparisons: Iterable[OutcomeComparison]) -> tuple[list[Edge], dict[str, str]]:
    """Fold comparison records (either order, any number per pair) into one edge per unordered pair.

    Returns the edges and each outcome's description. Comparisons with no parsed sample carry no evidence and
    are left out (their records still count them as unparsed)."""
    totals: dict[tuple[str, str], list[float]] = {}
    descriptions: dict[str, str] = {}
    for c in comparisons:
        a, b = c.option_a.outcome_id, c.option_b.outcome_id
        descriptions.setdefault(a, c.option_a.description)
        descriptions.setdefault(b, c.option_b.description)
        parsed = c.samples - c.unparsed
        if c.probability_a is None or parsed <= 0 or a == b:
            continue
        key, p_first = ((a, b), c.probability_a) if a < b else ((b, a), 1.0 - c.probability_a)
        acc = totals.setdefault(key, [0.0, 0.0])
        acc[0] += p_first * parsed
        acc[1] += parsed
    edges = [Edge(a, b, wins / weight, weight) for (a, b), (wins, weight) in sorted(totals.items())]
    return edges, descriptions


def split_holdout(edges: list[Edge], fraction: float, seed: int) -> tuple[list[Edge], list[Edge]]:
    """Seeded split into (train, held-out); at least one held-out edge when fraction > 0 and there are ≥ 2."""
    if not 0.0 <= fraction < 1.0:
        raise ValueCorpusError(f"holdout fraction must be in [0, 1), got {fraction}")
    order = list(range(len(edges)))
    random.Random(seed).shuffle(order)
    n_hold = round(len(edges) * fraction)
    if fraction > 0 and n_hold == 0 and len(edges) >= 2:
        n_hold = 1
    held = set(order[:n_hold])
    return [e for i, e in enumerate(edges) if i not in held], [e for i, e in enumerate(edges) if i in held]


def _log_ndtr(z: np.ndarray) -> np.ndarray:
    from scipy.special import log_ndtr

    return log_ndtr(z)


class _Problem:
    """Negative log-likelihood and gradient over parameters [mu (n), log sigma (n)]."""

    def __init__(self, edges: list[Edge], index: dict[str, int], prior: float) -> None:
        self.n = len(index)
        self.ia = np.array([index[e.a] for e in edges], dtype=np.int64)
        self.ib = np.array([index[e.b] for e in edges], dtype=np.int64)
        self.y = np.array([e.p_a for e in edges], dtype=np.float64)
        self.w = np.array([e.weight for e in edges], dtype=np.float64)
        self.w = self.w / max(self.w.sum(), 1e-12)
        self.prior = prior

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        n = self.n
        mu, rho = theta[:n], theta[n:]
        var = np.exp(2.0 * rho)
        s2 = var[self.ia] + var[self.ib]
        s = np.sqrt(s2)
        z = (mu[self.ia] - mu[self.ib]) / s
        log_p, log_q = _log_ndtr(z), _log_ndtr(-z)
        loss = -np.sum(self.w * (self.y * log_p + (1.0 - self.y) * log_q))
        # d(-log-lik)/dz, with φ/Φ ratios taken in log space for stability in the tails
        log_phi = -0.5 * z * z - 0.5 * math.log(2.0 * math.pi)
        dz = -self.w * (self.y * np.exp(log_phi - log_p) - (1.0 - self.y) * np.exp(log_phi - log_q))
        g_mu = np.zeros(n)
        np.add.at(g_mu, self.ia, dz / s)
        np.add.at(g_mu, self.ib, -dz / s)
        g_rho = np.zeros(n)
        np.add.at(g_rho, self.ia, dz * (-z * var[self.ia] / s2))
        np.add.at(g_rho, self.ib, dz * (-z * var[self.ib] / s2))
        loss += self.prior * (np.sum(mu * mu) + np.sum(rho * rho))
        g_mu += 2.0 * self.prior * mu
        g_rho += 2.0 * self.prior * rho
        return float(loss), np.concatenate([g_mu, g_rho])


def predict(utilities: dict[str, Utility], a: str, b: str) -> float:
    """P(a≻b) under fitted utilities."""
    ua, ub = utilities[a], utilities[b]
    from scipy.special import ndtr

    return float(ndtr((ua.mean - ub.mean) / math.sqrt(ua.variance + ub.variance)))


def evaluate(utilities: dict[str, Utility], edges: list[Edge]) -> Metrics:
    """Accuracy (predicted side vs the observed majority; ties p = 0.5 left out) and weighted soft log-loss."""
    if not edges:
        return Metrics(0, None, None)
    hits, decided, loss, total_w = 0, 0, 0.0, 0.0
    for e in edges:
        p = min(max(predict(utilities, e.a, e.b), 1e-12), 1.0 - 1e-12)
        if e.p_a != 0.5:
            decided += 1
            hits += int((p > 0.5) == (e.p_a > 0.5))
        loss += -e.weight * (e.p_a * math.log(p) + (1.0 - e.p_a) * math.log(1.0 - p))
        total_w += e.weight
    return Metrics(len(edges), hits / decided if decided else None, loss / total_w if total_w else None)


def fit_thurstonian(
    edges: list[Edge],
    descriptions: dict[str, str] | None = None,
    holdout: float = 0.05,
    seed: int = 42,
    prior: float = 1e-4,
    max_iter: int = 2000,
) -> ThurstonianFit:
    """Fit utilities by maximum likelihood on the training edges; report train and held-out metrics."""
    from scipy.optimize import minimize

    if not edges:
        raise ValueCorpusError("no parsed outcome comparisons to fit utilities on")
    train, held = split_holdout(edges, holdout, seed)
    ids = sorted({e.a for e in edges} | {e.b for e in edges})
    index = {o: i for i, o in enumerate(ids)}
    problem = _Problem(train, index, prior)
    theta0 = np.zeros(2 * len(ids))
    res = minimize(problem, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    mu, sigma2 = res.x[: len(ids)], np.exp(2.0 * res.x[len(ids):])
    scale = float(mu.std()) or 1.0
    mu = (mu - mu.mean()) / scale
    sigma2 = sigma2 / (scale * scale)
    descriptions = descriptions or {}
    fitted = {o: Utility(o, float(mu[i]), float(sigma2[i]), descriptions.get(o, "")) for o, i in index.items()}
    ordered = sorted(fitted.values(), key=lambda u: (-u.mean, u.outcome_id))
    return ThurstonianFit(
        utilities=ordered,
        train=evaluate(fitted, train),
        holdout=evaluate(fitted, held),
        holdout_pairs=[(e.a, e.b) for e in held],
        config={"holdout": holdout, "seed": seed, "prior": prior, "max_iter": max_iter,
                "outcomes": len(ids), "edges": len(edges)},
        converged=bool(res.success),
    )
