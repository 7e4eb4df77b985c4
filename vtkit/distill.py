"""Offline self-distillation (3B report): verified trajectories from the RL checkpoints, scored by
learning potential under the student, a middle-to-high band kept, the student fine-tuned on it.

    from vtkit import distill, train
    df, rep = distill.collect_verified(teacher, tok, records, n=4, source="math")  # rejection sampling
    df["lp"] = distill.learning_potential(student, tok, df["prompt"], df["completion"], batch_size=16)
    mask = distill.band_mask(df, low_q=0.3, high_q=0.95)             # or select_band -> (kept, report)
    distill.plot_band(mask, "runs/x/lp_band")                       # scores per domain, kept band marked
    train.sft(student, tok, distill.to_records(mask[mask.keep]), "runs/x/sft")
    distill.find_teachers("runs/rl")                                # {phase: rl_dir/phases/<phase>/model}
    distill.band_metrics(mask, ["math"])                            # select/math/n_kept, ... (metrics.json)
    distill.faithful_metrics(mask, records)                         # select/math/faithful_verified, _kept

The stage that runs all of it (notebook 04) is vtkit.stages.distill.

Collection: `collect_verified` samples `n` completions per prompt from an RL checkpoint and keeps
only those the domain verifier accepts (vtkit.evaluation.grade: the final answer for math,
value-with-unit or option letter for STEM, the sandboxed tests for code). Identical texts for one
prompt are kept once (several distinct correct traces per prompt are the multi-path data the
report keeps). The report does not say how many samples per prompt it draws; `n` is a parameter.

Learning potential (3B report): S_LP(q, y) = -(1/|y|) sum_t log pi_student(y_t | q, y_<t), the
length-normalised NLL of the trace under the student. Higher means "not yet mastered". The prompt
is chat-templated as one user turn with the generation prompt (how the student sees it at RL and
SFT time), the completion's tokens are appended as tokenised on their own (as trl does for
completions), and only those tokens are scored. Batches are right-padded, sorted by length so a
batch holds similar lengths; each row's score matches an unbatched forward pass (tested).

Selection (report: rank within domain-specific length buckets, exclude very short traces and
extreme high-score outliers, keep the middle-to-high band): traces shorter than `min_tokens` go;
within each domain, traces are cut into `n_length_buckets` equal-count length buckets (quantiles of
that domain's lengths); within each (domain, bucket), scores below the `low_q` quantile or above
the `high_q` quantile go. The report gives no numbers for any of these thresholds: all are
parameters; the defaults are ours.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vtkit import compute, evaluation, logprobs, models, plots
from vtkit.generate import generate

MIN_TOKENS = 8  # not given in the report; at the tiny preset drops degenerate one-line traces


def _chat_prefix_ids(tokenizer, prompt: str, chat: bool) -> list[int]:
    if not chat:
        return tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; pass chat=False to score raw prompt text, "
                         "or a chat tokenizer (vtkit.models.load gives one)")
    out = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        tokenize=True, return_dict=True)
    return list(out["input_ids"])


@torch.no_grad()
def learning_potential(model, tokenizer, prompts: Sequence[str], completions: Sequence[str], batch_size: int = 16,
                       chat: bool = True, append_eos: bool = False,
                       chunk_tokens: int = logprobs.CHUNK_TOKENS) -> np.ndarray:
    """S_LP per (prompt, completion): mean NLL in nats of the completion tokens under `model`.

    Traces are scored `batch_size` at a time (sorted by length), their log-probabilities through
    `vtkit.logprobs.token_logprobs`: the head's logits exist for `chunk_tokens` positions at a time only.

    append_eos=True also scores the end-of-turn token (the SFT target includes it); off by default
    because the report defines the score over the trace y itself.
    """
    prompts, completions = list(prompts), list(completions)
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions; pass one completion per prompt "
                         "(repeat a prompt for each of its traces)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rows = []
    for i, (q, y) in enumerate(zip(prompts, completions)):
        p_ids = _chat_prefix_ids(tokenizer, q, chat)
        y_ids = tokenizer(y, add_special_tokens=False)["input_ids"]
        if append_eos:
            y_ids = y_ids + [tokenizer.eos_token_id]
        if not y_ids:
            raise ValueError(f"completion {i} is empty: S_LP needs at least one completion token")
        if not p_ids:
            raise ValueError(f"prompt {i} encodes to no tokens: there is nothing to condition the first token on")
        rows.append((p_ids, y_ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores = np.zeros(len(rows), dtype=np.float64)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
    try:
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            ids, att = models.pad_right([rows[i][0] + rows[i][1] for i in idx], pad)
            # the prediction at position t is of token t+1: completion tokens P..P+C-1 come from P-1..P+C-2
            span = torch.zeros(ids.shape[0], ids.shape[1] - 1, dtype=torch.bool)
            for r, i in enumerate(idx):
                P, C = len(rows[i][0]), len(rows[i][1])
                span[r, P - 1:P + C - 1] = True
            lp = logprobs.token_logprobs(model, ids.to(device), att.to(device), span.to(device),
                                         chunk_tokens=chunk_tokens)   # chunked: no full logits (vtkit.logprobs)
            nll = -(lp.double() * span.to(lp.device)).sum(1) / span.sum(1).to(lp.device)
            scores[idx] = nll.cpu().numpy()
    finally:
        model.train(was_training)
    compute.add_scored(model, [len(p) + len(y) for p, y in rows])   # forward-only work (vtkit.compute)
    return scores


def band_mask(df: pd.DataFrame, score_col: str = "lp", domain_col: str = "domain", length_col: str = "n_tokens",
              n_length_buckets: int = 3, min_tokens: int = MIN_TOKENS, low_q: float = 0.3,
              high_q: float = 0.95) -> pd.DataFrame:
    """A copy of `df` with columns length_bucket, score_lo, score_hi, keep (bool) and reason.

    reason is one of "kept", "short", "below_band", "outlier" (above the high_q quantile).
    Buckets are equal-count quantiles of length within each domain (ties broken by row order).
    """
    for c in (score_col, domain_col, length_col):
        if c not in df.columns:
            raise ValueError(f"column {c!r} not in the frame (columns: {list(df.columns)}); pass score_col=, "
                             "domain_col=, length_col= to name yours")
    if not 0.0 <= low_q < high_q <= 1.0:
        raise ValueError(f"need 0 <= low_q < high_q <= 1, got low_q={low_q}, high_q={high_q}")
    if n_length_buckets < 1:
        raise ValueError(f"n_length_buckets must be >= 1, got {n_length_buckets}")
    if df[score_col].isna().any():
        raise ValueError(f"{int(df[score_col].isna().sum())} rows have no {score_col!r} score; score them or drop them")
    out = df.copy()
    out["length_bucket"] = -1
    out["score_lo"] = np.nan
    out["score_hi"] = np.nan
    out["reason"] = "short"
    long_enough = out[length_col] >= min_tokens
    for dom, g in out[long_enough].groupby(domain_col, sort=True):
        k = min(n_length_buckets, len(g))
        ranks = g[length_col].rank(method="first")  # equal-count buckets even with tied lengths
        buckets = pd.qcut(ranks, k, labels=False) if k > 1 else pd.Series(0, index=g.index)
        out.loc[g.index, "length_bucket"] = buckets.astype(int)
        for b, gb in g.groupby(buckets):
            lo, hi = gb[score_col].quantile([low_q, high_q]).tolist()
            s = gb[score_col]
            out.loc[gb.index, "score_lo"] = lo
            out.loc[gb.index, "score_hi"] = hi
            out.loc[gb.index, "reason"] = np.where(s > hi, "outlier", np.where(s < lo, "below_band", "kept"))
    out["keep"] = out["reason"] == "kept"
    return out


def select_band(df: pd.DataFrame, score_col: str = "lp", domain_col: str = "domain", length_col: str = "n_tokens",
                n_length_buckets: int = 3, min_tokens: int = MIN_TOKENS, low_q: float = 0.3,
                high_q: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept rows with their length_bucket, report per domain x bucket).

    The report has one row per (domain, length_bucket) with n, n_kept, n_below_band, n_outlier,
    score_lo, score_hi, min_len, max_len; bucket -1 counts each domain's traces below min_tokens.
    """
    m = band_mask(df, score_col, domain_col, length_col, n_length_buckets, min_tokens, low_q, high_q)
    rep = (m.groupby([domain_col, "length_bucket"], sort=True)
           .agg(n=("reason", "size"),
                n_kept=("reason", lambda r: int((r == "kept").sum())),
                n_below_band=("reason", lambda r: int((r == "below_band").sum())),
                n_outlier=("reason", lambda r: int((r == "outlier").sum())),
                n_short=("reason", lambda r: int((r == "short").sum())),
                score_lo=("score_lo", "first"), score_hi=("score_hi", "first"),
                min_len=(length_col, "min"), max_len=(length_col, "max"))
           .reset_index())
    kept = m[m["keep"]].drop(columns=["keep", "reason", "score_lo", "score_hi"])
    return kept, rep


# ----------------------------------------------------------------------------- collection and figure

REASONS = ("kept", "below_band", "outlier", "short")  # band_mask's reasons, in plotting order


def collect_verified(model, tokenizer, records: Sequence[dict], n: int = 4, temperature: float = 1.0,
                     top_p: float = 1.0, max_new_tokens: int = 96, seed: int = 0, source: str = "",
                     batch_size: int = 64) -> tuple[pd.DataFrame, dict]:
    """(verified traces, report). Columns: id, domain, prompt, completion, n_tokens, source.

    Truncated samples (no stop token within max_new_tokens) are never kept. The report counts
    n_prompts, n_samples, n_correct, n_distinct (rows returned) and n_prompts_with_trace.
    """
    records = [dict(r) for r in records]
    if n < 1:
        raise ValueError(f"n must be >= 1 sample per prompt, got {n}")
    cols = ["id", "domain", "prompt", "completion", "n_tokens", "source"]
    if not records:
        return pd.DataFrame(columns=cols), {"n_prompts": 0, "n_samples": 0, "n_correct": 0, "n_distinct": 0,
                                            "n_prompts_with_trace": 0}
    outs = generate(model, tokenizer, [r["prompt"] for r in records], n=n, temperature=temperature, top_p=top_p,
                    max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size)
    ok = [g["correct"] for g in evaluation.grade([records[o["prompt_index"]] for o in outs], [o["text"] for o in outs])]
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


# ----------------------------------------------------------------------------- the stage's wiring (notebook 04)

def find_teachers(rl_dir) -> dict:
    """{phase: checkpoint folder} of the RL stage's phases (`rl_dir/phases/<phase>/model`), by name.

    A FileNotFoundError names the folder when there is none (the RL stage has not run, or every
    phase was skipped)."""
    found = {p.parent.parent.name: str(p.parent) for p in sorted(Path(rl_dir, "phases").glob("*/model/config.json"))}
    if not found:
        raise FileNotFoundError(f"no phase checkpoints under {rl_dir}/phases/*/model; run the rl stage "
                                "(03_mgpo_rl) first, or pass rl_dir=None for the standalone start")
    return found


def collect_metrics(phase: str, rep: dict) -> dict:
    """collect_verified's report for one teacher phase as metrics (`collect/<phase>/n_samples`, ...)."""
    return {f"collect/{phase}/n_samples": rep["n_samples"], f"collect/{phase}/n_correct": rep["n_correct"],
            f"collect/{phase}/n_traces": rep["n_distinct"]}


def band_metrics(mask: pd.DataFrame, domains: Sequence[str]) -> dict:
    """Per domain, what the band did (`select/<domain>/n_kept`, n_short, n_below_band, n_outlier,
    n_traces, and the mean score of all and of the kept traces: None when there are none), plus
    `select/n_kept` over all domains. `mask` is band_mask's output."""
    out = {}
    for d in domains:
        g = mask[mask["domain"] == d]
        out.update({f"select/{d}/n_traces": len(g), f"select/{d}/n_kept": int(g.keep.sum()),
                    f"select/{d}/n_short": int((g.reason == "short").sum()),
                    f"select/{d}/n_below_band": int((g.reason == "below_band").sum()),
                    f"select/{d}/n_outlier": int((g.reason == "outlier").sum()),
                    f"select/{d}/lp_mean_all": float(g.lp.mean()) if len(g) else None,
                    f"select/{d}/lp_mean_kept": float(g[g.keep].lp.mean()) if g.keep.any() else None})
    out["select/n_kept"] = int(mask["keep"].sum())
    return out


def faithful_metrics(mask: pd.DataFrame, records: Sequence[dict], domain: str = "math") -> dict:
    """Trace faithfulness (`vtkit.faithful`) of one math domain's verified traces and of those the
    band keeps: `select/<domain>/faithful_verified` and `select/<domain>/faithful_kept`, each with its
    Wilson interval (`_lo`/`_hi`), None when there are no such traces. The verifier reads only the
    boxed answer, so a verified trace can still carry wrong arithmetic (issue 26).

    `mask` is band_mask's output; `records` are the problems the traces were drawn for (each trace
    is checked against the record with its id)."""
    from vtkit import faithful
    by_id = {r["id"]: r for r in records}
    g = mask[mask["domain"] == domain]
    missing = sorted(set(g["id"]) - set(by_id))
    if missing:
        raise ValueError(f"{len(missing)} {domain} traces (e.g. id {missing[0]!r}) have no record among the "
                         f"{len(by_id)} given; pass the prompts the traces were collected for")
    out = {}
    for name, rows in (("verified", g), ("kept", g[g["keep"]])):
        f = faithful.faithful_rate([by_id[i] for i in rows["id"]], list(rows["completion"])) if len(rows) else {}
        out.update({f"select/{domain}/faithful_{name}{k}": f.get(f"faithful{k}") for k in ("", "_lo", "_hi")})
    return out
