"""Curve fits for the scaling figures: a logistic in log N, and a power law (a line in log-log).

    from vtkit.fits import fit_logistic_logN, fit_powerlaw, logistic
    fit = fit_logistic_logN(N=[2.5e4, 1e5, 1e6, 1e7], y=[0.02, 0.1, 0.6, 0.8])
    fit["N50"]            # the size at which y reaches half its ceiling c
    logistic(N, fit["c"], fit["k"], fit["N50"])   # the fitted curve, for plotting

The logistic is y = c / (1 + exp(-k (ln N - ln N50))): c is the ceiling, k the steepness per unit of
ln N (k = 1: y goes from 27% to 73% of c over a factor e^2 ~ 7.4 in N), N50 the midpoint. Figure (b)
of the capacity probe fits one curve to reasoning accuracy and one to knowledge fraction, and
compares the two N50: the compression-coverage hypothesis predicts reasoning saturates at a smaller N.

The fit is a small Levenberg-Marquardt least squares in numpy (scipy is not a dependency of the kit),
started from a grid of midpoints and steepnesses, keeping the lowest residual. Bad input (mismatched
lengths, N <= 0, non-finite values, too few distinct sizes) raises ValueError; a curve that cannot
have a midpoint (flat y) comes back with ok=False and a reason, so a figure can skip it and go on.
Not from a paper: the reports fit nothing; this is the figure notebook's choice of summary.
"""
from __future__ import annotations

import math

import numpy as np


def logistic(N, c: float, k: float, N50: float) -> np.ndarray:
    """c / (1 + exp(-k (ln N - ln N50))), elementwise, overflow-free (tanh form of the sigmoid)."""
    x = np.log(np.asarray(N, dtype=float))
    return c * 0.5 * (1.0 + np.tanh(0.5 * k * (x - math.log(N50))))


def _check(N, y, name: str) -> tuple[np.ndarray, np.ndarray]:
    N, y = np.asarray(N, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if N.shape != y.shape:
        raise ValueError(f"{name}: N and y must have the same length (got {N.size} and {y.size})")
    if not (np.all(np.isfinite(N)) and np.all(np.isfinite(y))):
        raise ValueError(f"{name}: N and y must be finite numbers; drop the NaN/inf rows (failed runs) first")
    if np.any(N <= 0):
        raise ValueError(f"{name}: every N must be > 0 (parameter counts); got {N[N <= 0].tolist()}")
    return N, y


def _model(theta: np.ndarray, x: np.ndarray, c_fixed: float | None):
    """Values and Jacobian of c*s(k (x - x50)) in the free parameters ([c,] k, x50)."""
    if c_fixed is None:
        c, k, x50 = theta
    else:
        (k, x50), c = theta, c_fixed
    s = 0.5 * (1.0 + np.tanh(0.5 * k * (x - x50)))
    ds = s * (1.0 - s)
    cols = [c * ds * (x - x50), -c * ds * k]
    if c_fixed is None:
        cols.insert(0, s)
    return c * s, np.stack(cols, axis=1)


def _levenberg_marquardt(theta, x, y, c_fixed, iters: int = 300, tol: float = 1e-12):
    lam = 1e-3
    f, J = _model(theta, x, c_fixed)
    sse = float(np.sum((y - f) ** 2))
    for _ in range(iters):
        A, g = J.T @ J, J.T @ (y - f)
        try:
            step = np.linalg.solve(A + lam * (np.diag(np.diag(A)) + 1e-12 * np.eye(len(theta))), g)
        except np.linalg.LinAlgError:
            break
        new = theta + step
        f_new, J_new = _model(new, x, c_fixed)
        sse_new = float(np.sum((y - f_new) ** 2))
        if np.isfinite(sse_new) and sse_new < sse:
            done = sse - sse_new <= tol * max(sse, 1e-300) or np.max(np.abs(step)) < 1e-10
            theta, f, J, sse, lam = new, f_new, J_new, sse_new, max(lam / 3, 1e-12)
            if done:
                break
        else:
            lam *= 4
            if lam > 1e12:
                break
    return theta, sse


FAR = 3 * math.log(10)  # a fitted N50 further than 3 decades outside the measured sizes is not reported


def _not_ok(out: dict, reason: str, c: float = math.nan, k: float = math.nan, rss: float = math.nan,
            extrapolated: bool = False) -> dict:
    """A failed fit_logistic_logN result: no midpoint, with the reason and what the fit did find."""
    return {**out, "ok": False, "reason": reason, "c": c, "k": k, "N50": math.nan, "log10_N50": math.nan,
            "rss": rss, "r2": math.nan, "extrapolated": extrapolated}


def fit_logistic_logN(N, y, ceiling: float | None = None, start: dict | None = None) -> dict:
    """Least-squares fit of y = c / (1 + exp(-k (ln N - ln N50))) to points (N, y).

    ceiling: fix c (e.g. 1.0 for an accuracy that can reach 100%) and fit only k and N50; None fits c.
    Needs at least one more distinct N than free parameters (4 sizes, or 3 with a fixed ceiling).
    start: a previous fit's result (c, k, N50) to start from instead of the grid of starting points
    (one descent: what a bootstrap of many refits needs).
    Returns {ok, reason, c, k, N50, log10_N50, rss, r2, n, ceiling_fixed, extrapolated}; extrapolated
    is True when N50 lies outside the measured sizes (the midpoint is a guess, not a measurement).
    """
    N, y = _check(N, y, "fit_logistic_logN")
    n_free = 3 if ceiling is None else 2
    distinct = np.unique(N).size
    if distinct < n_free + 1:
        fix = "" if ceiling is not None else ", or pass ceiling= to fix c and fit only k and N50"
        raise ValueError(
            f"fit_logistic_logN: {n_free} free parameters need at least {n_free + 1} distinct sizes N, "
            f"got {distinct}; add model sizes{fix}"
        )
    x = np.log(N)
    out = {"n": int(N.size), "ceiling_fixed": ceiling is not None}
    if np.ptp(y) == 0:
        return _not_ok(out, "y is constant: a flat curve has no midpoint",
                       c=float(y[0]) if ceiling is None else float(ceiling), k=0.0, rss=0.0)
    rising = np.corrcoef(x, y)[0, 1] >= 0 if np.ptp(x) > 0 else True
    c0 = float(np.max(np.abs(y))) if ceiling is None else float(ceiling)
    span = max(np.ptp(x), 1e-6)
    best = None
    if start is not None and start.get("ok") and np.isfinite(start.get("N50", math.nan)):
        c_s = float(start["c"]) if ceiling is None else None
        starts = [np.array([c_s, start["k"], math.log(start["N50"])] if ceiling is None
                           else [start["k"], math.log(start["N50"])])]
    else:
        starts = [np.array([c0, (k if rising else -k) * 4.0 / span, x50] if ceiling is None  # k * 4/span: from
                           else [(k if rising else -k) * 4.0 / span, x50])           # gentle to a step across the range
                  for x50 in np.linspace(x.min(), x.max(), 7) for k in (0.5, 1.0, 2.0, 4.0, 8.0)]
    for theta0 in starts:
        theta, sse = _levenberg_marquardt(theta0, x, y, ceiling)
        if np.all(np.isfinite(theta)) and (best is None or sse < best[1]):
            best = (theta, sse)
    if best is None:
        return _not_ok(out, "the fit diverged from every starting point")
    theta, sse = best
    c, k, x50 = (theta if ceiling is None else (float(ceiling), *theta))
    if abs(x50 - x.mean()) > np.ptp(x) / 2 + FAR:  # e.g. a flat noisy curve: the best midpoint runs off to 1e300
        return _not_ok(out, f"the fitted midpoint (N50 ~ 1e{x50 / math.log(10):.0f}) lies more than "
                       f"{FAR / math.log(10):.0f} decades beyond the measured sizes: these points do not pin it",
                       c=float(c), k=float(k), rss=float(sse), extrapolated=True)
    tss = float(np.sum((y - y.mean()) ** 2))
    return {**out, "ok": True, "reason": "", "c": float(c), "k": float(k), "N50": float(math.exp(x50)),
            "log10_N50": float(x50 / math.log(10)), "rss": float(sse), "r2": 1.0 - sse / tss,
            "extrapolated": bool(x50 < x.min() or x50 > x.max())}


def fit_powerlaw(N, y) -> dict:
    """Ordinary least squares of ln y = ln A + b ln N, i.e. y = A * N**b (a straight line in log-log).

    Every y must be > 0 (a log-log line cannot pass through 0: drop or floor those points first).
    Returns {A, b, r2, b_stderr, n}; b_stderr is nan with only two distinct sizes.
    """
    N, y = _check(N, y, "fit_powerlaw")
    if np.any(y <= 0):
        raise ValueError(f"fit_powerlaw: every y must be > 0 for a log-log fit; got {y[y <= 0].tolist()} "
                         "(drop those points or floor them at a stated value)")
    if np.unique(N).size < 2:
        raise ValueError("fit_powerlaw: needs at least 2 distinct sizes N to fit a slope")
    lx, ly = np.log(N), np.log(y)
    b, a = np.polyfit(lx, ly, 1)
    resid = ly - (a + b * lx)
    tss = float(np.sum((ly - ly.mean()) ** 2))
    dof = N.size - 2
    sxx = float(np.sum((lx - lx.mean()) ** 2))
    stderr = math.sqrt(float(np.sum(resid**2)) / dof / sxx) if dof > 0 else math.nan
    return {"A": float(math.exp(a)), "b": float(b), "r2": 1.0 - float(np.sum(resid**2)) / tss if tss > 0 else math.nan,
            "b_stderr": stderr, "n": int(N.size)}


def size_at(fit: dict, q: float) -> float:
    """The size N at which a fitted logistic reaches the fraction q of its ceiling (0 < q < 1):
    N50 x (q / (1 - q))**(1/k), so N90 = N50 x 9**(1/k). nan for a failed fit or k = 0."""
    if not 0 < q < 1:
        raise ValueError(f"size_at: q must be in (0, 1), got {q}")
    if not fit.get("ok") or not fit.get("k") or not math.isfinite(fit["k"]):
        return math.nan
    return float(fit["N50"] * (q / (1 - q)) ** (1.0 / fit["k"]))
