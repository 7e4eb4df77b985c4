"""vtkit.stats against scipy's own: percentile bootstrap, paired bootstrap, Student-t interval,
Wilson interval, binomial tail; bad input refused; the kit's other names are these functions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as ss

from vtkit import stats


def test_bootstrap_ci_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(0)
    for values in (rng.random(40), (rng.random(60) < 0.3).astype(float), rng.exponential(size=25)):
        for alpha in (0.05, 0.2):
            lo, hi = stats.bootstrap_ci(values, n_boot=20_000, alpha=alpha, seed=1)
            ref = ss.bootstrap((values,), np.mean, n_resamples=20_000, confidence_level=1 - alpha,
                               method="percentile", random_state=np.random.default_rng(2)).confidence_interval
            # Monte-Carlo error of a 20 000-resample quantile: ~2% of the mean's standard error each
            tol = 0.1 * values.std(ddof=1) / math.sqrt(values.size)
            assert lo == pytest.approx(ref.low, abs=tol) and hi == pytest.approx(ref.high, abs=tol)
    # seeded: identical calls agree, another seed moves the ends; one value is its own interval
    v = rng.random(30)
    assert stats.bootstrap_ci(v, seed=3) == stats.bootstrap_ci(v, seed=3) != stats.bootstrap_ci(v, seed=4)
    assert stats.bootstrap_ci([0.7]) == (0.7, 0.7)
    # another statistic, with or without an axis argument
    assert stats.bootstrap_ci(v, stat=np.median, n_boot=300) == \
        stats.bootstrap_ci(v, stat=lambda x: float(np.median(x)), n_boot=300)


def test_paired_bootstrap_is_the_bootstrap_of_the_differences():
    rng = np.random.default_rng(5)
    before, after = rng.random(80), rng.random(80) + 0.1
    g = stats.paired_bootstrap(before, after, n_boot=500, seed=7)
    assert (g["gain_lo"], g["gain_hi"]) == stats.bootstrap_ci(after - before, n_boot=500, seed=7)
    assert g["gain"] == pytest.approx(float(np.mean(after - before)))
    # pairs resampled together: the items' own spread (sd 0.29) cancels, the interval is that of the shift
    shift = before + 0.05 + rng.normal(0, 0.01, 80)
    p = stats.paired_bootstrap(before, shift)
    assert p["gain_lo"] > 0.04 and p["gain_hi"] < 0.06


def test_t_interval_matches_scipy():
    rng = np.random.default_rng(3)
    for n in (2, 3, 5, 30, 100):
        xs = rng.normal(1.0, 2.0, n)
        for alpha in (0.05, 0.1):
            mean, lo, hi, m = stats.t_interval(list(xs), alpha=alpha)
            ref = ss.t.interval(1 - alpha, n - 1, loc=xs.mean(), scale=ss.sem(xs))
            assert m == n and mean == pytest.approx(xs.mean())
            assert (lo, hi) == pytest.approx(ref, rel=1e-12, abs=1e-12)
    # missing runs do not count; one run has a mean but no interval; none has nothing
    mean, lo, hi, n = stats.t_interval([1.0, None, 3.0, float("nan"), np.float32("nan")])
    assert (mean, n) == (2.0, 2) and (lo, hi) == pytest.approx(ss.t.interval(0.95, 1, loc=2.0, scale=1.0))
    mean, lo, hi, n = stats.t_interval([5.0])
    assert (mean, n) == (5.0, 1) and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(x) for x in stats.t_interval([])[:3]) and stats.t_interval([])[3] == 0


def test_wilson_matches_scipy_and_is_exact_at_the_ends():
    for n in (1, 2, 5, 10, 37, 100, 1000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for alpha in (0.05, 0.01):
                lo, hi = stats.wilson(k, n, alpha=alpha)
                ref = ss.binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="wilson")
                assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-12)
                assert 0.0 <= lo <= k / n <= hi <= 1.0
        assert stats.wilson(0, n)[0] == 0.0 and stats.wilson(n, n)[1] == 1.0     # exactly, not 1 - 2e-16
    assert all(math.isnan(x) for x in stats.wilson(0, 0))
    # z given directly is the same interval as the alpha that yields it
    z = ss.norm.ppf(0.975)
    assert stats.wilson(17, 40, z=z) == pytest.approx(stats.wilson(17, 40), abs=1e-15)
    assert stats.wilson(17, 40, z=1.96) != stats.wilson(17, 40)


def test_binomial_tail_matches_scipy():
    for n in (1, 5, 20, 64, 300):
        for p in (0.0, 0.1, 0.25, 0.5, 0.9, 1.0):
            for k in sorted({0, 1, n // 4, n // 2, n - 1, n, n + 1}):
                assert stats.binomial_tail(k, n, p) == pytest.approx(ss.binom.sf(k - 1, n, p), rel=1e-9, abs=1e-300)
    assert stats.binomial_tail(-3, 10, 0.3) == pytest.approx(1.0)
    # past the size where C(n, i) overflows a float the tail still comes out
    assert stats.binomial_tail(1100, 2000, 0.5) == pytest.approx(ss.binom.sf(1099, 2000, 0.5), rel=1e-9)


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        stats.bootstrap_ci([])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        stats.bootstrap_ci([[0.1, 0.2]])
    with pytest.raises(ValueError, match="alpha"):
        stats.bootstrap_ci([0.1, 0.2], alpha=1.0)
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_ci([0.1, 0.2], n_boot=0)
    with pytest.raises(ValueError, match="equal, non-empty"):
        stats.paired_bootstrap([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="alpha"):
        stats.t_interval([1.0, 2.0], alpha=0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        stats.wilson(5, 4)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        stats.wilson(-1, 4)
    with pytest.raises(ValueError, match="positive normal quantile"):
        stats.wilson(1, 4, z=0.0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        stats.binomial_tail(1, 4, 1.5)
    with pytest.raises(ValueError, match="whole number"):
        stats.binomial_tail(1, -4, 0.5)


def test_the_kits_other_names_are_these_functions():
    from vtkit import figures, metrics

    assert metrics.bootstrap_ci is stats.bootstrap_ci
    assert figures.binomial_tail(7, 20, 0.25) == stats.binomial_tail(7, 20, 0.25)
    with pytest.raises(ValueError, match="p must be"):
        figures.binomial_tail(1, 4, -0.1)
