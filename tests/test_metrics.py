"""vtkit.metrics: pass@k against brute force, majority vote, bootstrap intervals, summaries."""
import itertools
import math

import numpy as np
import pytest

from vtkit import metrics as vm


def brute_pass_at_k(n, c, k):
    """Fraction of all k-subsets of n samples (c correct) that hold at least one correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_enumeration_of_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert vm.pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_known_values():
    assert vm.pass_at_k(10, 10, 3) == 1.0
    assert vm.pass_at_k(10, 0, 3) == 0.0
    assert vm.pass_at_k(16, 3, 1) == pytest.approx(3 / 16)
    assert vm.pass_at_k(16, 3, 4) == pytest.approx(1 - math.comb(13, 4) / math.comb(16, 4))
    # large n stays finite and accurate where the binomials themselves are astronomically large
    assert vm.pass_at_k(2000, 7, 1000) == pytest.approx(1 - math.comb(1993, 1000) / math.comb(2000, 1000))
    assert vm.pass_at_k(np.int64(4), np.int64(1), np.int64(2)) == pytest.approx(0.5)


@pytest.mark.parametrize("n,c,k", [(4, 1, 5), (4, 1, 0), (4, 5, 1), (0, 0, 1), (4, -1, 1), (4.0, 1, 1), (4, True, 1)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(ValueError):
        vm.pass_at_k(n, c, k)


def test_mean_at_k():
    assert vm.mean_at_k([True, False, True, True]) == 0.75
    assert vm.mean_at_k([0, 0]) == 0.0
    with pytest.raises(ValueError, match="at least one"):
        vm.mean_at_k([])


def test_cons_at_k_majority_ties_and_none():
    assert vm.cons_at_k(["3", "4", "3"], "3")
    assert not vm.cons_at_k(["4", "3", "4"], "3")
    assert vm.cons_at_k(["3", "4"], "3") and not vm.cons_at_k(["4", "3"], "3")  # tie: first seen wins
    assert vm.cons_at_k([None, None, "3"], "3")                                   # None never wins
    assert not vm.cons_at_k([None, None], "3")
    assert not vm.cons_at_k([], "3")


def test_cons_at_k_clusters_by_equivalence():
    from vtkit.verify import is_equivalent
    answers = ["1/2", "0.5", "\\frac{1}{2}", "3", "3"]
    assert not vm.cons_at_k(answers, "0.5")                       # strings: "3" has 2 votes, others 1 each
    assert vm.cons_at_k(answers, "0.5", equiv=is_equivalent)      # clustered: 3 votes for one half
    assert vm.majority(answers, equiv=is_equivalent) == "1/2"     # the cluster is named by its first member


def test_bootstrap_ci_contains_mean_shrinks_with_n_and_is_seeded():
    rng = np.random.default_rng(1)
    small = rng.random(20) < 0.4
    big = rng.random(2000) < 0.4
    lo_s, hi_s = vm.bootstrap_ci(small)
    lo_b, hi_b = vm.bootstrap_ci(big)
    assert lo_s <= small.mean() <= hi_s and lo_b <= big.mean() <= hi_b
    assert hi_b - lo_b < (hi_s - lo_s) / 4
    scores = rng.random(50)  # continuous values, so a different seed shows in the interval's ends
    assert vm.bootstrap_ci(scores, seed=3) == vm.bootstrap_ci(scores, seed=3)
    assert vm.bootstrap_ci(scores, seed=3) != vm.bootstrap_ci(scores, seed=4)
    assert vm.bootstrap_ci([0.7]) == (0.7, 0.7)
    # a statistic without an axis argument goes one resample at a time and gives the same answer
    assert vm.bootstrap_ci(small, stat=lambda x: float(np.mean(x)), n_boot=200) == \
        pytest.approx(vm.bootstrap_ci(small, n_boot=200))
    # a wider interval at a smaller alpha
    lo90, hi90 = vm.bootstrap_ci(small, alpha=0.1)
    assert lo_s <= lo90 and hi90 <= hi_s
    with pytest.raises(ValueError, match="non-empty"):
        vm.bootstrap_ci([])


def test_summarize_flat_keys_values_and_intervals():
    per_item = [[True, False, False, True], [False] * 4, [True] * 4]
    s = vm.summarize(per_item, ks=(1, 2, 4), n_boot=300)
    assert s["n_items"] == 3 and s["n_samples"] == 12
    assert s["pass@1"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert s["pass@4"] == pytest.approx(2 / 3)
    assert s["pass@2"] == pytest.approx((vm.pass_at_k(4, 2, 2) + 0 + 1) / 3)
    assert s["mean@1"] == pytest.approx(2 / 3) and s["mean@4"] == pytest.approx(0.5)
    for k in (1, 2, 4):
        for m in ("mean", "pass"):
            key = f"{m}@{k}"
            assert s[f"{key}_lo"] <= s[key] <= s[f"{key}_hi"]
    assert all(isinstance(v, (int, float)) for v in s.values())
    assert vm.summarize(per_item, ks=(1, 2, 4), n_boot=300) == s


def test_summarize_cons_and_errors():
    per_item = [[True, False, True], [False, False, True]]
    answers = [["3", "5", "3"], ["1", "2", "7"]]
    s = vm.summarize(per_item, ks=(1, 3), answers=answers, golds=["3", "7"], n_boot=100)
    assert s["cons@1"] == 0.5 and s["cons@3"] == 0.5
    with pytest.raises(ValueError, match="k=4"):
        vm.summarize(per_item, ks=(4,))
    with pytest.raises(ValueError, match="golds"):
        vm.summarize(per_item, answers=answers)
