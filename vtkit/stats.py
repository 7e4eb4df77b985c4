"""Intervals and tests, in one place: every `_lo`/`_hi` in a metrics.json comes from here.

    from vtkit import stats
    stats.bootstrap_ci(per_item_scores)                 # percentile bootstrap of the mean over items
    stats.paired_bootstrap(before, after)               # {"gain", "gain_lo", "gain_hi"}: items resampled in pairs
    stats.t_interval(per_seed_values)                   # Student-t interval of a mean over runs
    stats.wilson(k, n)                                  # Wilson score interval of a proportion
    stats.binomial_tail(k, n, p)                        # P(X >= k), X ~ Binomial(n, p)

Which to use: a mean over items of one run (accuracy, a gain on the same items) gets a bootstrap over
items; a proportion with few items gets Wilson (it stays inside [0, 1] and is exact at 0 and n); a
mean over independent runs (seeds) gets a t interval, which needs several runs to say anything
(with 2 runs its 95% half-width is 12.7 standard errors). tests/test_stats.py checks each against
scipy's own.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

ALPHA = 0.05     # 95% intervals throughout
N_BOOT = 1000    # bootstrap resamples (the reported intervals' default)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def bootstrap_ci(values: Sequence[float], stat: Callable = np.mean, n_boot: int = N_BOOT,
                 alpha: float = ALPHA, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap (lo, hi) of `stat` over items: resample the values with replacement."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty 1-D list of per-item values, got shape {v.shape}")
    _check_alpha(alpha)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot)
    chunk = max(1, 10_000_000 // v.size)  # keep each index block under ~80 MB
    for s in range(0, n_boot, chunk):
        idx = rng.integers(0, v.size, size=(min(chunk, n_boot - s), v.size))
        sample = v[idx]
        try:
            out = np.asarray(stat(sample, axis=1), dtype=float)
            if out.shape != (len(idx),):
                raise TypeError
        except TypeError:  # a stat without an axis argument: one call per resample
            out = np.array([stat(row) for row in sample], dtype=float)
        boot[s:s + len(idx)] = out
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def paired_bootstrap(before: Sequence[float], after: Sequence[float], n_boot: int = N_BOOT,
                     alpha: float = ALPHA, seed: int = 0) -> dict:
    """after - before on the same items (or seeds): {gain, gain_lo, gain_hi}, pairs resampled together."""
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape or b.ndim != 1 or b.size == 0:
        raise ValueError(f"need two equal, non-empty 1-D lists of paired values, got {b.shape} and {a.shape}")
    d = a - b
    lo, hi = bootstrap_ci(d, n_boot=n_boot, alpha=alpha, seed=seed)
    return {"gain": float(d.mean()), "gain_lo": lo, "gain_hi": hi}


def t_interval(values: Sequence[float], alpha: float = ALPHA) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n): Student-t interval of the mean of independent values; NaN bounds when n < 2."""
    _check_alpha(alpha)
    xs = np.asarray([float(v) for v in values if v is not None], dtype=float)
    xs = xs[~np.isnan(xs)]   # missing runs (None, NaN) do not count
    n = int(xs.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(xs.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    from scipy.stats import t   # the t quantile; scipy is a dependency of the kit

    half = float(t.ppf(1 - alpha / 2, n - 1)) * float(xs.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def wilson(k: int, n: int, alpha: float = ALPHA, *, z: float | None = None) -> tuple[float, float]:
    """Wilson score interval of the proportion k/n; (nan, nan) for n = 0; exactly 0 / 1 at k = 0 / n.

    z: the normal quantile itself, in place of the one alpha gives (clr.wilson_interval passes the
    rounded 1.96 it has always used)."""
    _check_alpha(alpha)
    if not 0 <= k <= n:
        raise ValueError(f"wilson needs 0 <= k <= n, got k={k}, n={n}")
    if z is not None and not z > 0:
        raise ValueError(f"z must be a positive normal quantile (1.96 for 95%), got {z}")
    if n == 0:
        return float("nan"), float("nan")
    if z is None:
        from statistics import NormalDist

        z = NormalDist().inv_cdf(1 - alpha / 2)
    p = k / n
    mid, half = (p + z * z / (2 * n)), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    d = 1 + z * z / n   # at k = 0 and k = n the bounds are exactly 0 and 1 (rounding gives 1 - 2e-16)
    return (0.0 if k == 0 else max(0.0, (mid - half) / d)), (1.0 if k == n else min(1.0, (mid + half) / d))


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how likely k or more successes are by chance.

    The exact sum; past n ~ 1000, where C(n, i) no longer fits a float, scipy's binom.sf."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"n must be a whole number >= 0, got {n}")
    n, k = int(n), max(0, int(k))
    try:
        return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))
    except OverflowError:
        from scipy.stats import binom

        return float(binom.sf(k - 1, n, p))
