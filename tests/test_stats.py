"""The claims table's statistics (ganzoo/stats.py): paired tests against hand counts and scipy, the bootstrap
interval, and the verdict rule on constructed seed lists."""
import random

import pytest
from scipy import stats as scipy_stats

from ganzoo.stats import bootstrap_ci, compare, sign_test, wilcoxon


def test_wilcoxon_exact_on_hand_counted_cases():
    # n = 5 all positive: only "all +" and "all -" are as extreme: 2 / 32
    assert wilcoxon([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
    # ranks 1..5, W+ = 13: sign assignments with W+ >= 13 ({1..5}, {2..5}, {1,3,4,5}) or <= 2 ({}, {1}, {2})
    assert wilcoxon([1, -2, 3, 4, 5]) == pytest.approx(6 / 32)
    # 10 seeds all better: 2 / 1024 (the stackelberg_toy row the audit quotes, p = 0.002)
    assert wilcoxon([1.0] * 10) == pytest.approx(2 / 1024)
    assert wilcoxon([0, 0, 0]) == 1.0  # no non-zero difference: nothing to test
    assert wilcoxon([0, 3, 0, 3, 3, 3, 3]) == wilcoxon([3, 3, 3, 3, 3])  # zeros dropped (Wilcoxon's rule)


@pytest.mark.parametrize("seed", range(5))
def test_wilcoxon_matches_scipy_exact(seed):
    rng = random.Random(seed)
    diffs = [rng.gauss(0.3, 1) for _ in range(rng.randint(5, 15))]  # continuous: no ties, no zeros
    want = scipy_stats.wilcoxon(diffs, alternative="two-sided", method="exact").pvalue
    assert wilcoxon(diffs) == pytest.approx(want, rel=1e-9)


def test_wilcoxon_with_ties_uses_mean_ranks():
    # |d| = 1, 1, 2: ranks 1.5, 1.5, 3; W+ = 1.5 + 3 = 4.5 of 6; sums of the 8 assignments:
    # 0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6 -> |S - 3| >= 1.5 for 6 of them
    assert wilcoxon([1, -1, 2]) == pytest.approx(6 / 8)


def test_sign_test_on_hand_values():
    assert sign_test([1, 1, 1, -1]) == pytest.approx(0.625)  # 3 / 1: the audit's fargan_ring row
    assert sign_test([1] * 3 + [-1] * 2) == pytest.approx(1.0)
    assert sign_test([1] * 10) == pytest.approx(2 / 1024)
    assert sign_test([1, 0, 0, 0]) == pytest.approx(1.0)  # ties dropped: one win of one


def test_bootstrap_interval_is_seeded_and_holds_the_mean():
    diffs = [0.5, 1.0, -0.2, 0.8, 0.3, 0.9, 0.1]
    lo, hi = bootstrap_ci(diffs)
    assert lo < sum(diffs) / len(diffs) < hi
    assert (lo, hi) == bootstrap_ci(diffs)  # the same numbers, the same interval
    assert bootstrap_ci([2.0] * 5) == (2.0, 2.0)
    assert bootstrap_ci([-1, -2, -3, -1, -2])[1] < 0  # all worse: the interval excludes 0


def test_verdict_rule_on_constructed_seed_lists():
    # six seeds all better: p = 2/64 < 0.05
    assert compare([8] * 6, [5, 6, 4, 5, 6, 3], higher=True).verdict == "reproduced"
    # five seeds all better is p = 2/32 = 0.0625: just above 0.05, so we cannot tell
    assert compare([8] * 5, [5, 6, 4, 5, 6], higher=True).verdict == "inconclusive"
    # the baseline significantly better
    assert compare([1, 2, 1, 2, 1, 2], [5, 6, 4, 5, 6, 3], higher=True).verdict == "not reproduced"
    # lower is better: a lower MMD in every seed
    c = compare([0.1] * 6, [0.2, 0.3, 0.25, 0.4, 0.5, 0.35], higher=False)
    assert c.verdict == "reproduced" and c.mean_diff > 0 and c.better == 6
    # 3 better, 1 worse, 6 ties (the audit's fargan_ring): inconclusive, not "partly"
    c = compare([8, 8, 8, 7, 8, 8, 8, 8, 8, 8], [6, 6, 7, 8, 8, 8, 8, 8, 8, 8], higher=True)
    assert (c.better, c.worse, c.verdict) == (3, 1, "inconclusive")
    # both arms collapsed (median modes <= 1): whatever the counts say
    mine, base = [1, 0, 1, 1, 0, 1, 1, 1, 0, 8], [0, 0, 0, 1, 0, 0, 0, 1, 1, 0]
    assert compare(mine, base, higher=True, collapsed=(mine, base, 1)).verdict == "both arms failed"
    # negative control: the same counts, one arm not collapsed
    good = [6, 7, 8, 7, 6, 8, 7, 7, 8, 8]
    assert compare(good, base, higher=True, collapsed=(good, base, 1)).verdict == "reproduced"
