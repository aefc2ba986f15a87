"""Paired comparisons over seeds: a method against its baseline run with the same seeds.

Pure Python (no torch, no scipy): the claims table (scripts/reproduce.py) and its tests use it.

- `wilcoxon`: the Wilcoxon signed-rank test, two-sided, exact. Zero differences are dropped (Wilcoxon's
  rule), tied absolute differences get their mean rank, and the p-value counts every one of the 2^n sign
  assignments of the remaining ranks (n <= 20; beyond that the normal approximation).
- `sign_test`: two-sided binomial test on the signs of the non-zero differences.
- `bootstrap_ci`: percentile interval of the mean difference over resampled seeds (seeded: the same
  numbers give the same interval).
- `verdict`: the rule the claims table states above it.
"""
from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

ALPHA = 0.05


def _ranks(values: Sequence[float]) -> List[float]:
    """1-based ranks, ties given their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def wilcoxon(diffs: Sequence[float]) -> float:
    """Two-sided p-value of the signed-rank statistic of the paired differences (1.0 when all are 0)."""
    d = [x for x in diffs if x != 0]
    n = len(d)
    if n == 0:
        return 1.0
    ranks = _ranks([abs(x) for x in d])
    w_plus = sum(r for r, x in zip(ranks, d) if x > 0)
    total = sum(ranks)
    observed = abs(w_plus - total / 2)
    if n <= 20:
        # the exact null: every assignment of signs to the ranks is equally likely; ranks are
        # multiples of 0.5, so count sums over doubled ranks
        doubled = [int(round(2 * r)) for r in ranks]
        counts = {0: 1}
        for r in doubled:
            nxt = dict(counts)
            for s, c in counts.items():
                nxt[s + r] = nxt.get(s + r, 0) + c
            counts = nxt
        extreme = sum(c for s, c in counts.items() if abs(s / 2 - total / 2) >= observed - 1e-9)
        return min(1.0, extreme / 2 ** n)
    var = n * (n + 1) * (2 * n + 1) / 24
    z = (observed - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(max(z, 0) / math.sqrt(2)))


def sign_test(diffs: Sequence[float]) -> float:
    """Two-sided binomial p-value of the number of positive differences among the non-zero ones."""
    d = [x for x in diffs if x != 0]
    n = len(d)
    if n == 0:
        return 1.0
    k = min(sum(x > 0 for x in d), sum(x < 0 for x in d))
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def bootstrap_ci(diffs: Sequence[float], resamples: int = 10_000, level: float = 0.95,
                 seed: int = 0) -> Tuple[float, float]:
    """Percentile interval of the mean of `diffs` over resampled seeds."""
    if not diffs:
        return (math.nan, math.nan)
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(statistics.fmean(rng.choices(diffs, k=n)) for _ in range(resamples))
    lo = means[int(math.floor((1 - level) / 2 * resamples))]
    hi = means[min(resamples - 1, int(math.ceil((1 + level) / 2 * resamples)) - 1)]
    return (lo, hi)


@dataclass
class Comparison:
    n: int                      # seeds with both arms
    better: int                 # seeds where the method beat its baseline
    worse: int
    mean_diff: float            # method - baseline, in the metric's own direction (> 0: method better)
    ci: Tuple[float, float]     # bootstrap interval of mean_diff
    p: float                    # Wilcoxon signed-rank, two-sided
    p_sign: float               # sign test, two-sided
    verdict: str


def compare(mine: Sequence[float], base: Sequence[float], higher: bool,
            collapsed: Optional[Tuple[Sequence[float], Sequence[float], float]] = None) -> Comparison:
    """The verdict rule:
      both arms failed  `collapsed` = (method's values, baseline's values, limit) of the collapse metric
                        (modes covered) and both arms' medians are at or below the limit, whatever else;
      reproduced        the method better on the mean and p < 0.05;
      not reproduced    the baseline better on the mean and p < 0.05;
      inconclusive      p >= 0.05.
    Differences are taken in the metric's direction, so > 0 always means the method did better."""
    sign = 1 if higher else -1
    diffs = [sign * (m - b) for m, b in zip(mine, base)]
    n = len(diffs)
    mean_diff = statistics.fmean(diffs) if diffs else math.nan
    p = wilcoxon(diffs)
    if collapsed is not None and collapsed[0] and collapsed[1] and \
            statistics.median(collapsed[0]) <= collapsed[2] and statistics.median(collapsed[1]) <= collapsed[2]:
        word = "both arms failed"
    elif n == 0:
        word = "not run"
    elif p < ALPHA and mean_diff > 0:
        word = "reproduced"
    elif p < ALPHA and mean_diff < 0:
        word = "not reproduced"
    else:
        word = "inconclusive"
    return Comparison(n, sum(x > 0 for x in diffs), sum(x < 0 for x in diffs), mean_diff,
                      bootstrap_ci(diffs), p, sign_test(diffs), word)
