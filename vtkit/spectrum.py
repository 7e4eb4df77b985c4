"""Spectrum phase: multi-path SFT data and its filters, the stage-2 filters, checkpoint scoring,
specialist selection and parameter-space merging (docs/method.md, "Spectrum").

    from vtkit import spectrum
    groups = tasks.make_groups({"math": {"n": 900, "subdomains": ["add", "mul"]}, "code": {"n": 90}})
    data, counts = spectrum.quality_filter(spectrum.flatten(groups), eval_sets=[test_records])
    hard, counts2, probed, rates = spectrum.stage2_filter(data, model, tok, min_tokens=60)  # 8 rollouts, >= 0.75
    rows = spectrum.score_checkpoints(paths, probes, k=8)          # per checkpoint x group: mean@8, pass@8, distinct@8
    best = spectrum.select_specialists(rows, rule="distinct")      # group -> checkpoint
    merged = spectrum.merge_checkpoints(sorted(set(best.values())))  # uniform weights
    m = spectrum.comparison_metrics({"merged": ..., "last": ...}, k=8)  # <model>/<group>/<rate>, means, differences

Data (stage 1). `vtkit.tasks.make_groups` draws records per domain (and per math subdomain) from vtkit.tasks;
every reference solution of a record is kept as its own trace (multi-path distillation: math
records have one trace per valid order of the steps, code records several programs). At the
small/paper presets `teacher_traces` replaces them with a teacher's samples kept by rejection
sampling: up to `max_paths` distinct traces per query that the domain's verifier accepts.
`quality_filter` then applies, in order, and counts: duplicate traces (after whitespace
normalisation), n-gram repetition inside a trace, n-gram overlap of the prompt with evaluation
sets (vtkit.tasks.decontaminate; n per domain from vtkit.tasks.OVERLAP_N, since vtkit's templated
prompts share long word runs legitimately, the report's 10-gram elsewhere), and trace correctness
(vtkit.evaluation.grade: answer check, or the sandbox for code).

Stage 2. `filter_min_length` drops traces shorter than `min_tokens` (tokens of the assistant
completion, no chat template); `error_rates` samples `n` rollouts per query from a reference model
and grades them; `filter_hard` keeps queries whose error rate is >= `threshold` (defaults 8 and
0.75, the report's). `stage2_filter` chains them, length first, so rollouts are spent only on
queries that survive it.

Diversity-exploring distillation. Each checkpoint is scored per group (a domain, or
`domain/subdomain`) on a probing set with K samples per problem, through vtkit.evaluation
(metric names as everywhere in the kit):
- `mean@K` (Pass@1 from K samples) and `pass@K` (the unbiased estimator, vtkit.metrics.pass_at_k).
- `distinct@K`, distinct valid solutions of a problem: the number of different texts among its correct samples,
  where two completions are the same text when they are equal after whitespace normalisation
  (`normalize_ws`: leading/trailing whitespace stripped, every run of whitespace, newlines included,
  replaced by one space); nothing else is normalised, so two traces that differ in one word, in step
  order or in the final answer's spelling count as two. A group's `distinct@K` is the mean over its
  problems (at most K); intervals are percentile bootstraps over problems.
`select_specialists` picks, per group, the checkpoint with the most distinct valid solutions (rule
"distinct", the report's choice) or the best `pass@K` (rule "pass@k"); ties go to the other metric,
then to the later checkpoint (`blind_groups` names the groups no checkpoint solved, where only
that tie rule chose). `merge_checkpoints` averages parameters, M = sum_i w_i M_i.
`comparison_metrics` turns the merged / last / best-single / specialist scores on the test groups
into the merge stage's metrics (vtkit/stages/merge.py runs the whole protocol).

Departures from the paper: the report does not give the checkpoint interval, K, or the probing
sets; they are parameters here (presets in vtkit/presets/merge.yaml). Stage-2 "long" is 5K
tokens in the report; vtkit's tiny traces are 40-120 tokens, so the tiny preset's minimum is
scaled down. At tiny, the reference model of stage 2 is the stage-1 model itself (the 1.5B used
VibeThinker-1.5B). Pseudo-labels by teacher majority vote are not implemented: queries without a
reliable answer (or tests) are dropped.
"""
from __future__ import annotations

import copy
import math
import os
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from vtkit import evaluation, generate, models, runinfo, tasks

RULES = ("distinct", "pass@k")
WEIGHT_TOL = 1e-6        # |sum(w) - 1| allowed: float round-off of user-given weights, not a fudge
REPETITION_N = 4         # word n-grams for the repetition filter: catches loops, not shared phrasing
MAX_REPETITION = 0.5     # a trace whose 4-grams are more than half repeats is a degenerate loop


# ------------------------------------------------------------------------------------------ data

def flatten(groups: dict[str, list[dict]]) -> list[dict]:
    """All records of all groups, in group order."""
    return [r for recs in groups.values() for r in recs]


def normalize_ws(text: str) -> str:
    """Whitespace normalisation for "distinct": strip, and every whitespace run -> one space."""
    return " ".join(text.split())


def repetition_rate(text: str, n: int = REPETITION_N) -> float:
    """Fraction of the word n-grams of `text` that repeat an earlier one (0 = none, ->1 = a loop)."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def _with_solutions(record: dict, solutions: list[str]) -> dict:
    return {**record, "solutions": list(solutions)}


def _dedupe(solutions) -> list[str]:
    seen, out = set(), []
    for s in solutions:
        key = normalize_ws(s)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _grade(records, texts, workers: int = 2) -> list[bool]:
    return [g["correct"] for g in evaluation.grade(records, texts, workers=workers)]


def quality_filter(records, *, eval_sets=(), overlap_n="domain", repetition_n: int = REPETITION_N,
                   max_repetition: float = MAX_REPETITION, check_correct: bool = True,
                   workers: int = 2) -> tuple[list[dict], dict]:
    """Stage-1 quality control; returns (kept records with their surviving traces, counts).

    eval_sets: records (or prompt strings) of the evaluation sets to decontaminate against.
    overlap_n: n-gram length for the overlap check; "domain" = vtkit.tasks.OVERLAP_N per domain
    (None there = whole normalised prompts), else an int for all (the report's 10) or None.
    Counts: queries_in, traces_in, traces_duplicate, traces_repetitive, queries_overlap,
    traces_incorrect, queries_without_trace, queries_out, traces_out."""
    records = [dict(r) for r in records]
    c = Counter(queries_in=len(records), traces_in=sum(len(r["solutions"]) for r in records))
    kept = []
    for r in records:  # duplicates, then repetition
        sols = _dedupe(r["solutions"])
        c["traces_duplicate"] += len(r["solutions"]) - len(sols)
        good = [s for s in sols if repetition_rate(s, repetition_n) <= max_repetition]
        c["traces_repetitive"] += len(sols) - len(good)
        kept.append(_with_solutions(r, good))
    eval_texts = [e if isinstance(e, str) else e["prompt"] for es in eval_sets for e in es]
    if eval_texts:  # overlap with evaluation prompts, per domain's n
        by_domain: dict = {}
        for r in kept:
            by_domain.setdefault(r["domain"], []).append(r)
        clean_ids = set()
        for domain, recs in by_domain.items():
            n = tasks.OVERLAP_N.get(domain, 10) if overlap_n == "domain" else overlap_n
            clean_ids |= {r["id"] for r in tasks.decontaminate(recs, eval_texts, n=n)}
        c["queries_overlap"] = sum(r["id"] not in clean_ids for r in kept)
        kept = [r for r in kept if r["id"] in clean_ids]
    if check_correct:
        pairs = [(i, s) for i, r in enumerate(kept) for s in r["solutions"]]
        ok = _grade([kept[i] for i, _ in pairs], [s for _, s in pairs], workers=workers)
        sols = [[] for _ in kept]
        for (i, s), v in zip(pairs, ok):
            if v:
                sols[i].append(s)
        c["traces_incorrect"] = len(pairs) - sum(ok)
        kept = [_with_solutions(r, s) for r, s in zip(kept, sols)]
    c["queries_without_trace"] = sum(not r["solutions"] for r in kept)
    kept = [r for r in kept if r["solutions"]]
    c["queries_out"], c["traces_out"] = len(kept), sum(len(r["solutions"]) for r in kept)
    for k in ("traces_duplicate", "traces_repetitive", "queries_overlap", "traces_incorrect"):
        c.setdefault(k, 0)
    return kept, dict(c)


def teacher_traces(model, tokenizer, records, *, n: int = 8, max_paths: int = 4, temperature: float = 1.0,
                   top_p: float = 0.95, top_k: int = 0, max_new_tokens: int = 1024, seed: int = 0,
                   batch_size: int = 32, workers: int = 2, backend: str | None = None) -> tuple[list[dict], dict]:
    """Multi-path distillation by rejection sampling: n teacher samples per query through
    vtkit.generate, graded by the domain's verifier; up to `max_paths` distinct correct ones (after
    whitespace normalisation) replace the record's `solutions`. Queries with none are dropped.
    Counts: queries_in, samples, samples_correct, samples_truncated, queries_without_trace,
    queries_out, traces_out."""
    records = [dict(r) for r in records]
    if n < 1 or max_paths < 1:
        raise ValueError(f"need n >= 1 and max_paths >= 1, got n={n}, max_paths={max_paths}")
    gens = generate.sharded_generate(model, tokenizer, [r["prompt"] for r in records], n=n, temperature=temperature,
                             top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens, seed=seed,
                             batch_size=batch_size, backend=backend)
    ok = _grade([records[g["prompt_index"]] for g in gens], [g["text"] for g in gens], workers=workers)
    paths = [[] for _ in records]
    for g, v in zip(gens, ok):
        if v and not g["truncated"]:
            paths[g["prompt_index"]].append(g["text"])
    out = [_with_solutions(r, _dedupe(p)[:max_paths]) for r, p in zip(records, paths)]
    kept = [r for r in out if r["solutions"]]
    counts = {"queries_in": len(records), "samples": len(gens), "samples_correct": int(sum(ok)),
              "samples_truncated": sum(g["truncated"] for g in gens),
              "queries_without_trace": len(records) - len(kept), "queries_out": len(kept),
              "traces_out": sum(len(r["solutions"]) for r in kept)}
    return kept, counts


# -------------------------------------------------------------------------------------- stage 2

def trace_tokens(tokenizer, text: str) -> int:
    """Tokens of an assistant completion (no chat template, no special tokens added)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def filter_min_length(records, tokenizer, min_tokens: int) -> tuple[list[dict], dict]:
    """Keep traces of at least `min_tokens` tokens; drop queries left without one.
    Counts: queries_in, traces_in, traces_short, queries_out, traces_out."""
    if not isinstance(min_tokens, int) or min_tokens < 0:
        raise ValueError(f"min_tokens must be a non-negative int, got {min_tokens!r}")
    records = [dict(r) for r in records]
    kept, short = [], 0
    for r in records:
        sols = [s for s in r["solutions"] if trace_tokens(tokenizer, s) >= min_tokens]
        short += len(r["solutions"]) - len(sols)
        if sols:
            kept.append(_with_solutions(r, sols))
    return kept, {"queries_in": len(records), "traces_in": sum(len(r["solutions"]) for r in records),
                  "traces_short": short, "queries_out": len(kept),
                  "traces_out": sum(len(r["solutions"]) for r in kept)}


def error_rates(model, tokenizer, records, *, n: int = 8, temperature: float = 1.0, top_p: float = 0.95,
                top_k: int = 0, max_new_tokens: int = 256, seed: int = 0, batch_size: int = 64,
                workers: int = 2, backend: str | None = None) -> list[float]:
    """Per query, the fraction of `n` sampled rollouts of the reference model that are graded wrong."""
    records = list(records)
    if not records:
        return []
    if n < 1:
        raise ValueError(f"n (rollouts per query) must be >= 1, got {n}")
    gens = generate.sharded_generate(model, tokenizer, [r["prompt"] for r in records], n=n, temperature=temperature,
                             top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens, seed=seed,
                             batch_size=batch_size, backend=backend)
    ok = _grade([records[g["prompt_index"]] for g in gens], [g["text"] for g in gens], workers=workers)
    wrong = np.zeros(len(records))
    for g, v in zip(gens, ok):
        wrong[g["prompt_index"]] += not v
    return [float(w / n) for w in wrong]


def filter_hard(records, rates, threshold: float = 0.75) -> tuple[list[dict], dict]:
    """Keep queries whose reference error rate is >= `threshold` (the report keeps rate >= 0.75).
    Counts: queries_in, queries_easy, queries_out, traces_out."""
    records = list(records)
    if len(rates) != len(records):
        raise ValueError(f"one error rate per record: got {len(rates)} rates for {len(records)} records")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold is an error rate in [0, 1], got {threshold}")
    bad = [x for x in rates if not 0 <= x <= 1]
    if bad:
        raise ValueError(f"error rates lie in [0, 1]; got {bad[:3]}")
    kept = [dict(r) for r, x in zip(records, rates) if x >= threshold]
    return kept, {"queries_in": len(records), "queries_easy": len(records) - len(kept),
                  "queries_out": len(kept), "traces_out": sum(len(r["solutions"]) for r in kept)}


def stage2_filter(records, model, tokenizer, *, min_tokens: int, n_rollouts: int = 8, threshold: float = 0.75,
                  max_queries: int | None = None, seed: int = 0,
                  **rollout_kw) -> tuple[list[dict], dict, list[dict], list[float]]:
    """Length filter, then reference-model rollouts on its survivors, then the error-rate filter.

    max_queries: roll out on at most this many length survivors (a seeded random sample; None = all),
    to bound the rollout budget. Returns (records, counts, probed records, their error rates).
    Counts (flat): queries_in, traces_in, traces_short, queries_after_length, queries_probed,
    queries_easy, queries_out, traces_out."""
    long_, c1 = filter_min_length(records, tokenizer, min_tokens)
    probed = long_
    if max_queries is not None and len(long_) > max_queries:
        probed = random.Random(seed).sample(long_, max_queries)
    rates = error_rates(model, tokenizer, probed, n=n_rollouts, seed=seed, **rollout_kw)
    hard, c2 = filter_hard(probed, rates, threshold)
    counts = {"queries_in": c1["queries_in"], "traces_in": c1["traces_in"], "traces_short": c1["traces_short"],
              "queries_after_length": c1["queries_out"], "queries_probed": len(probed),
              "queries_easy": c2["queries_easy"], "queries_out": c2["queries_out"], "traces_out": c2["traces_out"]}
    return hard, counts, probed, rates


# ------------------------------------------------------------------------------------- scoring

def score(model, tokenizer, groups: dict[str, list[dict]], *, k: int = 8, temperature: float = 1.0,
          top_p: float = 0.95, top_k: int = 0, max_new_tokens: int = 128, seed: int = 0, batch_size: int = 64,
          workers: int = 2, n_boot: int = 1000) -> dict[str, evaluation.EvalResult]:
    """Group -> EvalResult: K samples per problem of every group in one evaluation, graded, with
    `mean@K`, `pass@K` and `distinct@K` (greedy with temperature 0 and k = 1: `greedy_acc`)."""
    recs = [(g, r) for g, rs in groups.items() for r in rs]
    if not recs:
        raise ValueError("no probing problems: every group is empty")
    proto = evaluation.Protocol("spectrum-probe", "auto", n=k, temperature=temperature, top_p=top_p, top_k=top_k,
                                max_new_tokens=max_new_tokens, ks=(1, k), seed=seed, batch_size=batch_size,
                                n_boot=n_boot)
    res = evaluation.evaluate((model, tokenizer), [r for _, r in recs], proto, workers=workers, distinct=k > 1)
    return {g: res.select([i for i, (gg, _) in enumerate(recs) if gg == g]) for g in groups if groups[g]}


def score_checkpoints(paths, groups, *, n_boot: int = 1000, **kw) -> list[dict]:
    """Score every checkpoint folder on the probing groups; one row per (checkpoint, group) with
    `checkpoint` (the path as given), `index` (its position), `k` and the EvalResult's flat metrics."""
    rows = []
    for i, p in enumerate(paths):
        model, tok = models.load(str(p))
        for g, res in score(model, tok, groups, n_boot=n_boot, **kw).items():
            rows.append({"checkpoint": str(p), "index": i, "group": g, "k": kw.get("k", 8), **res.flat()})
        del model
    return rows


def _rule_keys(rule: str, row: dict) -> tuple[str, str]:
    k = row["k"]
    return (f"distinct@{k}", f"pass@{k}") if rule == "distinct" else (f"pass@{k}", f"distinct@{k}")


def select_specialists(rows, rule: str = "distinct") -> dict[str, str]:
    """Group -> the checkpoint with the best score under `rule` ("distinct": most distinct valid
    solutions, the report's rule; "pass@k": best Pass@K). Ties: the other metric, then the later
    checkpoint (higher `index`). `rows` as `score_checkpoints` returns them (a list of dicts or a
    DataFrame)."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; use one of {RULES}")
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    if not rows:
        raise ValueError("no scores to select from: score at least one checkpoint first")
    need = {"checkpoint", "index", "group", "k"}
    missing = need - set(rows[0]) or set(_rule_keys(rule, rows[0])) - set(rows[0])
    if missing:
        raise KeyError(f"score rows lack {sorted(missing)}; pass what score_checkpoints returns (K > 1 samples)")
    first, second = _rule_keys(rule, rows[0])
    best: dict = {}
    for r in rows:
        key = (r[first], r[second], r["index"])
        if r["group"] not in best or key > best[r["group"]][0]:
            best[r["group"]] = (key, r["checkpoint"])
    return {g: ck for g, (_, ck) in best.items()}


def best_single(rows, rule: str = "distinct") -> str:
    """The one checkpoint with the best mean score over all groups under `rule` (ties: the other
    metric, then the later checkpoint): the "best single checkpoint" baseline of the merge."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; use one of {RULES}")
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    if not rows:
        raise ValueError("no scores to select from: score at least one checkpoint first")
    first, second = _rule_keys(rule, rows[0])
    per: dict = {}
    for r in rows:
        per.setdefault((r["index"], r["checkpoint"]), []).append((r[first], r[second]))
    key = {ck: (float(np.mean([a for a, _ in v])), float(np.mean([b for _, b in v])), i)
           for (i, ck), v in per.items()}
    return max(key, key=key.get)


def specialist_weights(specialists: dict, weights=None) -> tuple[list[str], list[float]]:
    """Unique checkpoints of a group -> specialist map and their merge weights.

    `weights`: one per group, in the map's order (None = uniform over groups, the 1.5B report's
    1/N over N subdomains); a checkpoint that is the specialist of several groups gets the sum of
    their weights, so every group keeps its share. Returns (checkpoints, weights)."""
    groups = list(specialists)
    w = check_weights(weights, len(groups))
    out: dict = {}
    for g, x in zip(groups, w):
        out[specialists[g]] = out.get(specialists[g], 0.0) + x
    return list(out), list(out.values())


def blind_groups(rows) -> list[str]:
    """Groups on which no checkpoint solved a single probe problem (`pass@K` 0 everywhere): their
    specialist is chosen by the tie rule alone (the latest checkpoint). `rows` as `score_checkpoints`
    returns them (a list of dicts or a DataFrame)."""
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    solved: dict = {}
    for r in rows:
        solved[r["group"]] = solved.get(r["group"], False) or r[f"pass@{r['k']}"] > 0
    return [g for g, s in solved.items() if not s]


# ---------------------------------------------------------------------------------- comparison

COMPARED = ("merged", "last", "best_single", "specialist")   # the merge stage's models, in its tables
BASELINES = ("last", "best_single")                            # merged_minus_<baseline>/mean/<metric>


def comparison_names(k: int) -> list[str]:
    """The compared rates at K samples: mean@K (Pass@1 from K samples), pass@K, distinct@K."""
    return [f"mean@{k}", f"pass@{k}", f"distinct@{k}"]


def comparison_metrics(results: dict, k: int) -> dict:
    """Flat metrics comparing models on held-out groups.

    results: model name ("merged", "last", "best_single", "specialist") -> group -> EvalResult (the
    `specialist` entry scores each group with its own specialist). Returns, per model and group,
    `<model>/<group>/<rate>` with `_lo`/`_hi`; per model, `<model>/mean/<rate>` (the unweighted mean
    over its groups); and `merged_minus_last/mean/<rate>`, `merged_minus_best_single/mean/<rate>`."""
    names = comparison_names(k)
    out = {}
    for model_name, res in results.items():
        if not res:
            raise ValueError(f"{model_name!r} was scored on no group: the test groups must include the probe "
                             f"groups (specialists exist for probe groups only)")
        for g, r in res.items():
            out.update(r.flat(f"{model_name}/{g}/", keys=names))
        for name in names:
            out[f"{model_name}/mean/{name}"] = sum(r[name] for r in res.values()) / len(res)
    for base in BASELINES:
        if "merged" in results and base in results:
            for name in names:
                out[f"merged_minus_{base}/mean/{name}"] = out[f"merged/mean/{name}"] - out[f"{base}/mean/{name}"]
    return out


def comparison_table(results: dict, k: int) -> list[dict]:
    """One row per (model, group) with the compared rates (for a pandas pivot)."""
    names = comparison_names(k)
    return [{"model": mn, "group": g, **{n: res[g][n] for n in names}} for mn, res in results.items() for g in res]


# --------------------------------------------------------------------------------------- merging

def check_weights(weights, n: int) -> list[float]:
    """Uniform 1/n for None; else the weights as floats, or a ValueError saying what is wrong."""
    if n < 1:
        raise ValueError("nothing to merge: pass at least one checkpoint")
    if weights is None:
        return [1.0 / n] * n
    w = [float(x) for x in weights]
    if len(w) != n:
        raise ValueError(f"got {len(w)} weights for {n} checkpoints; give one weight per checkpoint")
    if any(not math.isfinite(x) for x in w):
        raise ValueError(f"weights must be finite numbers, got {w}")
    if any(x < 0 for x in w):
        raise ValueError(f"merge weights must be non-negative (M = sum_i w_i M_i, w_i >= 0), got {w}")
    if abs(sum(w) - 1.0) > WEIGHT_TOL:
        raise ValueError(f"merge weights must sum to 1 (got {sum(w):.6g} from {w}); "
                         f"divide them by their sum or pass weights=None for uniform")
    return w


def _name(x, i) -> str:
    return f"checkpoint {i} ({x})" if isinstance(x, (str, os.PathLike)) else f"checkpoint {i}"


def merge_checkpoints(paths_or_models, weights=None):
    """Parameter-space merge M = sum_i w_i M_i of checkpoints (HF folders or loaded models).

    weights: None = uniform; else non-negative and summing to 1 within 1e-6 (they are divided by
    their sum before use, so a merge of identical checkpoints gives back exactly that model).
    Every checkpoint must have the first's architecture (model class) and parameter names and
    shapes; the error names the first mismatch. Sums run in float64 (float32 for 16-bit models)
    and are cast back to the first checkpoint's dtypes. Folders are loaded one at a time; the
    returned model is the first checkpoint's module with the merged values (a loaded model passed
    first is copied, never modified)."""


    items = list(paths_or_models)
    w = check_weights(weights, len(items))
    total = sum(w)
    w = [x / total for x in w]

    def get(x):
        return x if isinstance(x, torch.nn.Module) else models.load(str(x))[0]

    base = get(items[0])
    base = copy.deepcopy(base) if base is items[0] else base
    ref = base.state_dict()
    acc = {k: v.to(torch.float64 if v.dtype == torch.float32 else torch.float32) * w[0]
           for k, v in ref.items() if v.is_floating_point()}
    for i, x in enumerate(items[1:], start=1):
        m = get(x)
        if type(m).__name__ != type(base).__name__:
            raise ValueError(f"{_name(x, i)} is a {type(m).__name__}, {_name(items[0], 0)} a "
                             f"{type(base).__name__}: merge only checkpoints of one architecture")
        sd = m.state_dict()
        for k, v in ref.items():
            if k not in sd:
                raise ValueError(f"{_name(x, i)} has no parameter {k!r} that {_name(items[0], 0)} has")
            if tuple(sd[k].shape) != tuple(v.shape):
                raise ValueError(f"parameter {k!r} has shape {tuple(sd[k].shape)} in {_name(x, i)} but "
                                 f"{tuple(v.shape)} in {_name(items[0], 0)}")
        extra = [k for k in sd if k not in ref]
        if extra:
            raise ValueError(f"{_name(x, i)} has parameter {extra[0]!r} that {_name(items[0], 0)} lacks")
        for k in acc:
            acc[k] += sd[k].to(acc[k].dtype) * w[i]
        for k, v in ref.items():
            if not v.is_floating_point() and not torch.equal(sd[k], v):
                raise ValueError(f"integer buffer {k!r} differs between {_name(x, i)} and {_name(items[0], 0)}")
        del m, sd
    with torch.no_grad():
        base.load_state_dict({**ref, **{k: a.to(ref[k].dtype) for k, a in acc.items()}})
    base.eval()
    return base


def save_merged(model, tokenizer, path, sources=(), weights=None) -> Path:
    """Write the merged HF checkpoint (vtkit.models.save) plus merge.json (sources, weights)."""
    path = models.save(model, tokenizer, path)
    sources = [str(s) for s in sources]
    w = check_weights(weights, len(sources)) if sources else weights
    runinfo.write_json(path / "merge.json", {"sources": sources, "weights": w})
    return path


def checkpoint_label(path) -> str:
    """`stage1/checkpoint-40` -> "stage1@40": a short name for tables and figures."""
    p = Path(path)
    m = re.fullmatch(r"checkpoint-(\d+)", p.name)
    return f"{p.parent.name}@{m.group(1)}" if m else p.name
