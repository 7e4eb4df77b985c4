"""Sampling metrics: unbiased pass@k, mean@k, cons@k (majority vote), bootstrap intervals.

    from vtkit import metrics
    metrics.pass_at_k(n=16, c=3, k=4)                    # 0.607...
    metrics.summarize([[True, False, False, True], [False] * 4], ks=(1, 2, 4))
    # {'n_items': 2, 'n_samples': 8, 'mean@1': 0.5, 'mean@1_lo': ..., 'pass@1': 0.25, ...}

- pass@k: the Codex estimator 1 - C(n-c, k) / C(n, k), the chance that at least one of k samples
  drawn without replacement from the n is correct, computed as 1 - prod_{i=n-c+1..n} (1 - k/i)
  so no huge binomials appear.
- mean@k: the accuracy of the first k samples of an item (the paper's "mean Pass@1 over k
  samples"); averaged over items. Its expectation is c/n whatever k.
- cons@k: majority vote over k extracted answers (None never wins; ties go to the answer seen
  first; answers are clustered by `equiv` when it is given), right when the winner matches gold.
- Intervals: percentile bootstrap over ITEMS (samples of one item are not independent draws of
  the benchmark), seeded, so identical inputs give identical intervals: `vtkit.stats.bootstrap_ci`
  (importable from here too, as `metrics.bootstrap_ci`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from vtkit.stats import ALPHA, N_BOOT, bootstrap_ci  # noqa: F401  (re-exported: metrics.bootstrap_ci)


def _int(name, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {v!r}")
    return int(v)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct; k must not exceed n."""
    n, c, k = _int("n", n), _int("c", c), _int("k", k)
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"need n >= 1 and 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and n={n}: pass@k needs at least k samples per item "
                         "(draw more samples or report a smaller k)")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_at_k(correct: Sequence[bool]) -> float:
    """Fraction of the given samples that are correct (pass the first k to get mean@k)."""
    if len(correct) == 0:
        raise ValueError("mean_at_k needs at least one sample")
    return float(np.mean([bool(x) for x in correct]))


def majority(answers: Sequence[str | None], equiv: Callable[[str, str], bool] | None = None) -> str | None:
    """The most frequent answer (first-seen wins ties; None is never counted); None when all are None.

    With `equiv`, an answer joins the first earlier cluster whose first member r has equiv(r, answer)."""
    reps: list[str] = []
    counts: list[int] = []
    for a in answers:
        if a is None:
            continue
        for j, r in enumerate(reps):
            if (equiv(r, a) if equiv is not None else r == a):
                counts[j] += 1
                break
        else:
            reps.append(a)
            counts.append(1)
    if not reps:
        return None
    return reps[int(np.argmax(counts))]  # argmax returns the first maximum: first-seen wins ties


def cons_at_k(answers: Sequence[str | None], gold: str, equiv: Callable[[str, str], bool] | None = None) -> bool:
    """Whether the majority answer equals gold (`equiv(gold, winner)`, gold first; else string equality)."""
    win = majority(answers, equiv)
    if win is None:
        return False
    return bool(equiv(gold, win)) if equiv is not None else str(win).strip() == str(gold).strip()


def summarize(per_item: Sequence[Sequence[bool]], ks: Sequence[int] = (1,), *, answers=None, golds=None,
              equiv=None, n_boot: int = N_BOOT, alpha: float = ALPHA, seed: int = 0) -> dict:
    """Flat metrics over items: `mean@k`, `pass@k` (and `cons@k` when `answers` and `golds` are
    given: per item a list of extracted answers and the gold), each with `_lo`/`_hi` bootstrap ends.

    per_item: for each item, the correctness of its samples (at least max(ks) of them)."""
    if len(per_item) == 0:
        raise ValueError("summarize needs at least one item")
    ks = sorted({_int("k", k) for k in ks})
    for i, s in enumerate(per_item):
        if len(s) < ks[-1]:
            raise ValueError(f"item {i} has {len(s)} samples but k={ks[-1]} was asked; draw at least max(ks) samples")
    if (answers is None) != (golds is None):
        raise ValueError("cons@k needs both `answers` (per item, a list of extracted answers) and `golds`")
    if answers is not None and not len(answers) == len(golds) == len(per_item):
        raise ValueError(f"answers ({len(answers)}), golds ({len(golds)}) and per_item ({len(per_item)}) must align")
    out: dict = {"n_items": len(per_item), "n_samples": int(sum(len(s) for s in per_item))}

    def put(key, vals):
        out[key] = float(np.mean(vals))
        out[f"{key}_lo"], out[f"{key}_hi"] = bootstrap_ci(vals, n_boot=n_boot, alpha=alpha, seed=seed)

    for k in ks:
        put(f"mean@{k}", [mean_at_k(s[:k]) for s in per_item])
        put(f"pass@{k}", [pass_at_k(len(s), int(sum(map(bool, s))), k) for s in per_item])
        if answers is not None:
            put(f"cons@{k}", [float(cons_at_k(a[:k], g, equiv)) for a, g in zip(answers, golds)])
    return out
