"""Bradley–Terry scores from pairwise judgements (ties count as half a win each), with Wald intervals.

The model: P(i beats j) = p_i / (p_i + p_j). Strengths are fitted by maximum likelihood with Hunter's
MM iterations (Hunter 2004, "MM algorithms for generalized Bradley–Terry models"); a tie adds half a win
to both sides. Scores are reported on the Elo scale, 400·log10(p_i) + 1000 with the strengths' geometric
mean at 1 (so the scores average 1000): 400 points are odds of 10 to 1.

Interval: the **Fisher-information standard error**. The observed information of the log-strengths
θ = ln p is I = Σ_pairs n_ij·q_ij·(1 − q_ij)·(e_i − e_j)(e_i − e_j)ᵀ with q_ij = P(i beats j); under the
sum-zero constraint the covariance is I's Moore–Penrose pseudo-inverse. The 95 % interval is
score ± 1.96·SE (a Wald interval), on the same Elo scale.

A model that won (or lost) every game has no finite maximum-likelihood strength. `prior_ties` adds
that many virtual ties to every pair that was compared (default 1: half a win each way), which keeps
every score finite and pulls little once a pair has a few real judgements; pass 0 for the plain MLE.
Models never compared with one another (two disconnected groups) are only comparable within a group.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

ELO = 400.0 / math.log(10.0)  # Elo points per unit of log-strength
Z95 = 1.959963984540054
INTERVAL_METHOD = "Fisher-information standard error (Wald 95 % interval)"


@dataclass(frozen=True)
class Score:
    model: Hashable
    score: float  # Elo scale
    low: float  # 95 % interval
    high: float
    se: float  # standard error, Elo points
    ratings: int  # real judgements the model took part in
    wins: float  # ties count half


def outcome_value(outcome: str) -> float:
    """What one judgement gives its first model: "a" a win, "b" a loss, "tie" half."""
    return {"a": 1.0, "b": 0.0, "tie": 0.5}[outcome]


def bradley_terry(
    games: Iterable[tuple[Hashable, Hashable, float]],
    *,
    prior_ties: float = 1.0,
    iterations: int = 10_000,
    tolerance: float = 1e-10,
) -> list[Score]:
    """Scores of every model in `games`, best first. A game is (model a, model b, a's result: 1, 0 or 0.5)."""
    wins: dict[tuple[Hashable, Hashable], float] = defaultdict(float)  # (i, j) → i's wins over j
    counts: dict[Hashable, int] = defaultdict(int)
    total_wins: dict[Hashable, float] = defaultdict(float)
    for a, b, result in games:
        if a == b:
            raise ValueError(f"a model cannot be compared with itself ({a!r})")
        if not 0.0 <= result <= 1.0:
            raise ValueError(f"a result is 1 (first wins), 0 (second wins) or 0.5 (tie), not {result!r}")
        wins[(a, b)] += result
        wins[(b, a)] += 1.0 - result
        counts[a] += 1
        counts[b] += 1
        total_wins[a] += result
        total_wins[b] += 1.0 - result
    models = sorted(counts, key=str)
    if not models:
        return []
    index = {model: i for i, model in enumerate(models)}
    k = len(models)
    w = np.zeros((k, k))
    for (a, b), value in wins.items():
        w[index[a], index[b]] += value
    n = w + w.T  # games between each pair
    w = w + (n > 0) * (prior_ties / 2.0)
    n = w + w.T
    theta = _fit(w, n, iterations, tolerance)
    se = _standard_errors(theta, n)
    scores = [
        Score(
            model=model,
            score=1000.0 + ELO * theta[i],
            low=1000.0 + ELO * (theta[i] - Z95 * se[i]),
            high=1000.0 + ELO * (theta[i] + Z95 * se[i]),
            se=ELO * se[i],
            ratings=counts[model],
            wins=total_wins[model],
        )
        for model, i in index.items()
    ]
    return sorted(scores, key=lambda s: (-s.score, str(s.model)))


def _fit(w: np.ndarray, n: np.ndarray, iterations: int, tolerance: float) -> np.ndarray:
    """Log-strengths (mean 0) by MM: p_i ← W_i / Σ_j n_ij / (p_i + p_j)."""
    k = len(w)
    p = np.ones(k)
    total = w.sum(axis=1)
    for _ in range(iterations):
        denominator = (n / (p[:, None] + p[None, :])).sum(axis=1)
        new = np.where(denominator > 0, total / np.where(denominator > 0, denominator, 1.0), p)
        # A model with no wins at all heads to strength 0 (score −∞ without a prior): keep it tiny, not zero.
        new = np.maximum(new, 1e-300)
        new = new / math.exp(np.log(new).mean())
        if np.max(np.abs(np.log(new) - np.log(p))) < tolerance:
            p = new
            break
        p = new
    theta = np.log(p)
    return theta - theta.mean()


def _standard_errors(theta: np.ndarray, n: np.ndarray) -> np.ndarray:
    p = np.exp(theta)
    q = p[:, None] / (p[:, None] + p[None, :])
    weight = n * q * (1.0 - q)  # symmetric: n_ij q_ij q_ji
    information = np.diag(weight.sum(axis=1)) - weight
    covariance = np.linalg.pinv(information)
    return np.sqrt(np.clip(np.diag(covariance), 0.0, None))
