"""Offline self-distillation, the parts around vtkit.distill: verified trajectories and the band figure.

    from vtkit import distill, selfdistill
    df, rep = selfdistill.collect_verified(teacher, tok, records, n=4, source="math")  # rejection sampling
    df["lp"] = distill.learning_potential(student, tok, df["prompt"], df["completion"])
    mask = distill.band_mask(df, low_q=0.3, high_q=0.95)
    selfdistill.plot_band(mask, "runs/x/lp_band")                  # scores per domain, kept band marked
    train.sft(student, tok, selfdistill.to_records(mask[mask.keep]), "runs/x/sft")

`collect_verified` is the 3B report's collection step: sample `n` completions per prompt from an RL
checkpoint and keep only those the domain verifier accepts (`vtkit.rlrun.grade_texts`: the final
answer for math, value-with-unit or option letter for STEM, the sandboxed tests for code, graded
in parallel). Identical texts for one prompt are kept once (several distinct correct traces per
prompt are the multi-path data the report keeps). Departure: the report does not say how many
samples per prompt it draws; `n` is a parameter.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

REASONS = ("kept", "below_band", "outlier", "short")  # distill.band_mask's reasons, in plotting order


def collect_verified(model, tokenizer, records: Sequence[dict], n: int = 4, temperature: float = 1.0,
                     top_p: float = 1.0, max_new_tokens: int = 96, seed: int = 0, source: str = "",
                     batch_size: int = 64) -> tuple[pd.DataFrame, dict]:
    """(verified traces, report). Columns: id, domain, prompt, completion, n_tokens, source.

    Truncated samples (no stop token within max_new_tokens) are never kept. The report counts
    n_prompts, n_samples, n_correct, n_distinct (rows returned) and n_prompts_with_trace.
    """
    from vtkit.generate import generate
    from vtkit.rlrun import grade_texts
    records = [dict(r) for r in records]
    if n < 1:
        raise ValueError(f"n must be >= 1 sample per prompt, got {n}")
    cols = ["id", "domain", "prompt", "completion", "n_tokens", "source"]
    if not records:
        return pd.DataFrame(columns=cols), {"n_prompts": 0, "n_samples": 0, "n_correct": 0, "n_distinct": 0,
                                            "n_prompts_with_trace": 0}
    outs = generate(model, tokenizer, [r["prompt"] for r in records], n=n, temperature=temperature, top_p=top_p,
                    max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size)
    ok = grade_texts([records[o["prompt_index"]] for o in outs], [o["text"] for o in outs])
    rows, seen = [], set()
    n_correct = 0
    for o, good in zip(outs, ok):
        if not good or o["truncated"]:
            continue
        n_correct += 1
        r = records[o["prompt_index"]]
        if (r["id"], o["text"]) in seen:
            continue
        seen.add((r["id"], o["text"]))
        rows.append({"id": r["id"], "domain": r["domain"], "prompt": r["prompt"], "completion": o["text"],
                     "n_tokens": o["n_tokens"], "source": source})
    df = pd.DataFrame(rows, columns=cols)
    return df, {"n_prompts": len(records), "n_samples": len(outs), "n_correct": n_correct, "n_distinct": len(df),
                "n_prompts_with_trace": int(df["id"].nunique()) if len(df) else 0}


def to_records(df: pd.DataFrame) -> list[dict]:
    """Kept traces -> records for vtkit.train.sft (one solution each, so every trace is one conversation)."""
    need = {"id", "domain", "prompt", "completion"}
    if not need <= set(df.columns):
        raise ValueError(f"need columns {sorted(need)}, got {list(df.columns)}")
    return [{"id": r.id, "domain": r.domain, "prompt": r.prompt, "solutions": [r.completion]}
            for r in df.itertuples(index=False)]


def plot_band(mask: pd.DataFrame, path=None, score_col: str = "lp", length_col: str = "n_tokens",
              domain_col: str = "domain"):
    """Per domain: each trace's score against its length, coloured by why it was kept or dropped,
    with every length bucket's kept band [score_lo, score_hi] drawn over the bucket's length range.

    `mask` is distill.band_mask's output. Saved as PDF+PNG when `path` is given; returns the figure."""
    from vtkit import plots
    for c in (score_col, length_col, domain_col, "reason", "length_bucket", "score_lo", "score_hi"):
        if c not in mask.columns:
            raise ValueError(f"column {c!r} missing: pass vtkit.distill.band_mask's output")
    plots.use_style()
    doms = sorted(mask[domain_col].unique())
    fig, axes = plots.figure("double", ncols=max(1, len(doms)), height=2.4)
    axes = np.atleast_1d(axes)
    colors = {"kept": "C2", "below_band": "C0", "outlier": "C3", "short": "0.6"}
    for ax, dom in zip(axes, doms):
        g = mask[mask[domain_col] == dom]
        for reason in REASONS:
            h = g[g["reason"] == reason]
            if len(h):
                ax.scatter(h[length_col], h[score_col], s=7, alpha=0.7, color=colors[reason], linewidths=0,
                           label=f"{reason} ({len(h)})")
        for _, b in g[g["length_bucket"] >= 0].groupby("length_bucket"):
            x0, x1 = b[length_col].min(), b[length_col].max()
            lo, hi = b["score_lo"].iloc[0], b["score_hi"].iloc[0]
            ax.fill_between([x0, x1], [lo, lo], [hi, hi], color="C2", alpha=0.12, linewidth=0)
            ax.hlines([lo, hi], x0, x1, colors="C2", linewidth=0.8)
        ax.set_title(dom)
        ax.set_xlabel("trace length (tokens)")
        ax.legend(loc="best", fontsize=6)
    axes[0].set_ylabel("learning potential (nats/token)")
    if path is not None:
        plots.savefig(fig, path)
    return fig
