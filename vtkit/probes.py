"""The compression-coverage probes: what notebooks 10 (capacity), 11 (family) and 20 (figures) share.

    from vtkit import probes
    corpus = probes.probe_corpus("mixture", 600_000, exposures=100, tokenizer=tok, max_depth=2)
    log = probes.train_lm(model, tok, corpus["texts"], lr=2e-3)          # plain next-token training
    kn = probes.knowledge_eval(model, tok, corpus["eval_people"], untrained=fresh_model)
    rs = probes.reasoning_eval(model, tok, depths=(1, 2), n=64, k=4)
    df = probes.load_results("runs/capacity-demo/results.parquet")      # vtkit.sweep's table
    probes.fig_bits(df, out / "fig_a_bits"); probes.fig_saturation(df, out / "fig_b_saturation")
    probes.fig_families(probes.load_literature(), out / "fig_c_families")

The experiment (issue 7): is verifiable reasoning "parameter-dense" and knowledge "parameter-
expansive"? Models of the tiny ladder are trained from scratch on one token budget B, in one of
three modes:
  knowledge  bioS biographies (capacity.knowledge_corpus) of N people, each biography written
             `exposures` times, so every fact is seen exactly that often; N = B / (exposures x the
             mean tokens of a biography), i.e. the budget decides how many people fit.
  reasoning  math dependency-graph problems with worked solutions (capacity.reasoning_corpus),
             difficulty 1..max_depth, filling B.
  mixture    half the budget each: N/2 people at the *same* exposures, problems for the rest.
Departure from the capacity module's recipe (which halves the exposures in the mixture): here the
mixture keeps exposures fixed and halves the people, so exposures stay the controlled variable of
every run; `exposures_actual` (biographies per person in the stream) is reported all the same.

Training is one pass over the shuffled documents (the exposures are the epochs), causal LM loss
on every token, one document per row from position 0 (as the probes query them), rows of similar
length batched together; AdamW, linear warmup then cosine decay to lr x min_lr_ratio. Not
trl's SFTTrainer: pretraining-style text needs no chat masking, and a plain loop is faster on CPU.

Knowledge is measured in bits (capacity.measure_knowledge): set-normalised on a subset of the
trained people, scaled up by N / subset (bits are a sum over people), minus the same measure on the
untrained model of the same size and seed (the clamp at 0 credits a random model a few bits per
person); raw (un-normalised, a lower bound) on all people beside it. Reasoning: greedy accuracy on
held-out problems of the trained depths (in distribution) and of deeper ones (out of distribution),
and pass@k from k samples at temperature 1, top_p 0.95 (the reports' evaluation sampling).

Figures: (a) knowledge bits against parameters, log-log, with Allen-Zhu & Li's 2 bits/param (1000
exposures) and 1 bit/param (100 exposures) lines; (b) reasoning accuracy and knowledge fraction
against parameters on one axis, a logistic in log N fitted to each (vtkit.fits) with the size N50
at half its ceiling marked; (c) published scores of model families, reasoning and knowledge
benchmarks against size (vtkit/data/published_scores.csv).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

ALLEN_ZHU_LI = {1000: 2.0, 100: 1.0}  # bits per parameter at that many exposures (arXiv 2404.05405)
MODES = ("knowledge", "reasoning", "mixture")
DEMO_COMMAND = ".venv/bin/vtkit sweep experiments/capacity_demo.yaml --jobs 2"
GRID_COMMAND = ".venv/bin/vtkit sweep experiments/capacity_scaling.yaml --jobs 2"


# ---------------------------------------------------------------- corpora at one token budget


def bio_tokens(tokenizer, seed: int = 0, sample: int = 64) -> float:
    """Mean tokens of one bioS biography (the unit that converts a budget into people)."""
    from vtkit import capacity, tasks

    texts, total = capacity.knowledge_corpus(tasks.people(sample, seed=seed), 1, tokenizer, seed=seed)
    return total / len(texts)


def probe_corpus(mode: str, token_budget: int, exposures: int, tokenizer, *, max_depth: int = 2,
                 seed: int = 0, n_people: int | None = None, ops=None) -> dict:
    """The training texts of one capacity-probe run (see the module docstring for the three modes).

    n_people: None sizes the knowledge set from the budget; an int fixes it (then the knowledge
    part takes n_people x exposures biographies whatever the budget, and reasoning fills the rest).
    ops: the math generator's operation mixes (None: all of add, mul, mixed; "add": + only).
    Returns texts (shuffled), people (trained on), eval_people (the ones to measure: the trained
    people, or in reasoning mode the people a knowledge run would have seen, as a control),
    n_people, exposures_actual, tokens, tokens_knowledge, tokens_reasoning, n_problems.
    """
    from vtkit import capacity, tasks

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(exposures, int) or exposures < 1:
        raise ValueError(f"exposures must be an int >= 1, got {exposures!r}")
    if not isinstance(token_budget, int) or token_budget < 1000:
        raise ValueError(f"token_budget must be an int >= 1000 tokens, got {token_budget!r}")
    per_bio = bio_tokens(tokenizer, seed)
    share = {"knowledge": 1.0, "mixture": 0.5, "reasoning": 1.0}[mode]
    n = n_people if n_people is not None else int(share * token_budget // (exposures * per_bio))
    if n < 1:
        raise ValueError(f"a budget of {token_budget} tokens holds no person at {exposures} exposures "
                         f"({exposures * per_bio:.0f} tokens each, {share:.0%} of the budget for knowledge); "
                         "raise token_budget or lower exposures")
    people = tasks.people(n, seed=seed)
    k_texts, k_tokens = ([], 0) if mode == "reasoning" else capacity.knowledge_corpus(people, exposures, tokenizer, seed=seed)
    r_texts, r_tokens, n_problems = [], 0, 0
    need = token_budget - k_tokens if mode != "knowledge" else 0
    if need > 0:
        probe, _ = capacity.reasoning_corpus(64, max_depth, tokenizer, seed=seed, subdomain=ops)
        per_problem = capacity.token_lengths(probe, tokenizer).mean()
        n_problems = int(math.ceil(need / per_problem * 1.05)) + 8  # a little spare: match_token_budget cuts
        pool, _ = capacity.reasoning_corpus(n_problems, max_depth, tokenizer, seed=seed, subdomain=ops)
        r_texts, r_tokens = capacity.match_token_budget(pool, need, tokenizer, seed=seed)
        n_problems = len(r_texts)
    texts = k_texts + r_texts
    np.random.default_rng(seed).shuffle(texts)
    return {"texts": texts, "people": people if mode != "reasoning" else [], "eval_people": people,
            "n_people": n if mode != "reasoning" else 0,
            "exposures_actual": len(k_texts) / n if mode != "reasoning" else 0.0,
            "tokens": k_tokens + r_tokens, "tokens_knowledge": k_tokens, "tokens_reasoning": r_tokens,
            "n_problems": n_problems}


# ---------------------------------------------------------------- training


def train_lm(model, tokenizer, texts, *, lr: float = 2e-3, batch_size: int = 16, max_length: int = 512,
             warmup: float = 0.05, min_lr_ratio: float = 0.1, weight_decay: float = 0.0, seed: int = 0,
             log_every: int = 50, epochs: int = 1) -> dict:
    """Next-token training on `texts` (loss on every token), in place; see the module docstring.

    weight_decay 0: a memorisation probe should not be regularised away from the facts.
    Returns {steps, tokens, final_loss (mean of the last 10% of steps), losses [(step, loss)],
    wall_s, tokens_per_s}. On CUDA the forward runs under bf16 autocast (keep fp32 weights).
    """
    import torch

    texts = list(texts)
    if not texts:
        raise ValueError("train_lm: no texts to train on")
    if lr <= 0 or batch_size < 1 or max_length < 2 or epochs < 1:
        raise ValueError(f"train_lm: need lr > 0, batch_size >= 1, max_length >= 2, epochs >= 1 "
                         f"(got {lr}, {batch_size}, {max_length}, {epochs})")
    device = next(model.parameters()).device
    ids = [x[:max_length] for x in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(epochs):
        order = rng.permutation(len(ids))
        chunk = batch_size * 32  # sort within chunks of 32 batches: little padding, still shuffled
        for s in range(0, len(order), chunk):
            part = sorted(order[s:s + chunk].tolist(), key=lambda i: len(ids[i]))
            batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    batches = [batches[i] for i in rng.permutation(len(batches))]
    total = len(batches)
    n_warm = max(1, int(warmup * total))

    def factor(step):  # linear warmup, then cosine from 1 to min_lr_ratio
        if step < n_warm:
            return (step + 1) / n_warm
        t = (step - n_warm) / max(1, total - n_warm)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    losses, tokens, t0 = [], 0, time.time()  # losses: one float per step
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    for step, rows in enumerate(batches):
        L = max(len(ids[i]) for i in rows)
        x = torch.full((len(rows), L), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), L), dtype=torch.long)
        for r, i in enumerate(rows):
            x[r, :len(ids[i])] = torch.tensor(ids[i])
            mask[r, :len(ids[i])] = 1
        labels = x.masked_fill(mask == 0, -100)
        with autocast:
            out = model(input_ids=x.to(device), attention_mask=mask.to(device), labels=labels.to(device))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
        losses.append(float(out.loss.detach()))
    model.eval()
    wall = time.time() - t0
    return {"steps": total, "tokens": tokens, "final_loss": float(np.mean(losses[-max(1, total // 10):])),
            "losses": [(s, l) for s, l in enumerate(losses) if s % log_every == 0 or s == total - 1],
            "wall_s": wall, "tokens_per_s": tokens / max(wall, 1e-9)}


# ---------------------------------------------------------------- measuring


def knowledge_eval(model, tokenizer, people, *, subset: int = 16, untrained=None, baseline_people: int = 4,
                   seed: int = 0, batch_size: int = 512) -> dict:
    """Bits the model stores about `people` (see the module docstring).

    subset: people scored set-normalised (None or >= len(people): all); untrained: the same
    architecture before training, for the baseline (None: no baseline, bits_untrained = 0);
    baseline_people: people of the subset the untrained model is scored on (its bits per person
    hardly vary). Returns flat numbers: bits (net of the baseline, >= 0), bits_measured,
    bits_untrained, max_bits, knowledge_fraction, bits_raw and fraction_raw (normalize="none" over
    all people, a lower bound), n_people, n_people_scored.
    """
    from vtkit import capacity

    people = list(people)
    if not people:
        raise ValueError("knowledge_eval: no people to measure (a reasoning-only run has none unless "
                         "probe_corpus gave eval_people)")
    n = len(people)
    m = n if subset is None or subset >= n else max(1, int(subset))
    pick = sorted(np.random.default_rng(seed).choice(n, size=m, replace=False).tolist()) if m < n else list(range(n))
    scored = [people[i] for i in pick]
    kset = capacity.measure_knowledge(model, tokenizer, scored, batch_size=batch_size)
    scale = n / m
    base = 0.0
    if untrained is not None:
        b = capacity.measure_knowledge(untrained, tokenizer, scored[:max(1, baseline_people)], batch_size=batch_size)
        base = b["bits_per_person"] * n
    raw = capacity.measure_knowledge(model, tokenizer, people, normalize="none", batch_size=batch_size)
    measured = kset["total_bits"] * scale
    max_bits = kset["max_bits"] / m * n
    bits = max(0.0, measured - base)
    return {"bits": bits, "bits_measured": measured, "bits_untrained": base, "max_bits": max_bits,
            "knowledge_fraction": bits / max_bits, "bits_raw": raw["total_bits"], "fraction_raw": raw["fraction"],
            "n_people": n, "n_people_scored": m,
            **{f"fraction_{a}": v["fraction"] for a, v in kset.get("by_attribute", {}).items()}}


def reasoning_eval(model, tokenizer, *, depths=(1, 2), n: int = 64, k: int = 4, seed: int = 0,
                   temperature: float = 1.0, top_p: float = 0.95, max_new_tokens: int | None = None,
                   batch_size: int = 64, samples: bool = False, ops=None) -> dict:
    """Greedy accuracy and pass@k on n held-out math problems (split "test") with difficulty in `depths`.

    depths: an int or an inclusive (lo, hi); ops: operation mixes as in probe_corpus. max_new_tokens None: the longest reference solution of
    the set plus 16 tokens (room to finish, no more). k = 0 skips sampling. Returns acc, pass@1,
    pass@k (mean over problems of the unbiased estimator from k samples), n, mean_tokens, and with
    samples=True the graded completions under "samples".
    """
    from vtkit import generate, metrics, tasks, verify

    lo, hi = (depths, depths) if isinstance(depths, int) else tuple(depths)
    recs = [dict(r) for r in tasks.make("math", n, seed=seed, difficulty=(lo, hi), split="test", subdomain=ops)]
    if max_new_tokens is None:
        sols = [s for r in recs for s in r["solutions"]]
        max_new_tokens = int(max(len(x) for x in tokenizer(sols, add_special_tokens=False)["input_ids"])) + 16
    prompts = [r["prompt"] for r in recs]
    greedy = generate.generate(model, tokenizer, prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, seed=seed)
    ok = [verify.grade(recs[g["prompt_index"]], g["text"]) for g in greedy]
    out = {"acc": float(np.mean(ok)), "n": len(recs), "max_new_tokens": max_new_tokens,
           "mean_tokens": float(np.mean([g["n_tokens"] for g in greedy]))}
    kept = [{"id": recs[g["prompt_index"]]["id"], "difficulty": recs[g["prompt_index"]]["difficulty"],
             "mode": "greedy", "text": g["text"], "correct": bool(c)} for g, c in zip(greedy, ok)]
    if k:
        sampled = generate.generate(model, tokenizer, prompts, n=k, temperature=temperature, top_p=top_p,
                                    max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
        sok = [verify.grade(recs[g["prompt_index"]], g["text"]) for g in sampled]
        per = np.array(sok, dtype=bool).reshape(len(recs), k)
        out["pass@1"] = float(per.mean())
        out[f"pass@{k}"] = float(np.mean([metrics.pass_at_k(k, int(c), k) for c in per.sum(1)]))
        kept += [{"id": recs[g["prompt_index"]]["id"], "difficulty": recs[g["prompt_index"]]["difficulty"],
                  "mode": f"sample{g['sample_index']}", "text": g["text"], "correct": bool(c)}
                 for g, c in zip(sampled, sok)]
    if samples:
        out["samples"] = kept
    return out


# ---------------------------------------------------------------- the family probe


def alias_in(text: str | None, aliases) -> bool:
    """Lenient knowledge match: some alias appears, as whole words, in the answer region of `text`
    (after </think>), both sides normalised as in vtkit.facts.alias_match. Credits chatty answers
    ("The capital of France is Paris.") that exact match misses; a reply listing several options
    can be credited wrongly, so report it beside exact match, never instead of it."""
    from vtkit.facts import normalize_answer

    if isinstance(aliases, str):
        aliases = json.loads(aliases) if aliases.startswith("[") else [aliases]
    region = normalize_answer((text or "").rsplit("</think>", 1)[-1])
    if not region:
        return False
    padded = f" {region} "
    return any(a and f" {a} " in padded for a in (normalize_answer(x) for x in aliases))


def family_benchmarks(reasoning, knowledge, *, n_items: int, seed: int = 0, paths: dict | None = None,
                      math_depth: int = 1) -> dict:
    """name -> (category, list of records). reasoning: names "math" (vtkit's generator at
    `math_depth`) or "gym:<reasoning-gym dataset>"; knowledge: "countries" (vtkit.facts) or a
    vtkit.evalsets knowledge benchmark (triviaqa, nq_open, popqa, simpleqa), read from paths[name]
    when given (these need a local copy offline)."""
    from vtkit import evalsets, facts, tasks

    out = {}
    for name in reasoning:
        if name == "math":
            recs = tasks.make("math", n_items, seed=seed, difficulty=math_depth, split="test")
        elif name.startswith("gym:"):
            recs = tasks.from_reasoning_gym(name[4:], n_items, seed=seed, split="test")
        else:
            raise ValueError(f"unknown reasoning benchmark {name!r}: use 'math' or 'gym:<name>' "
                             "(e.g. gym:basic_arithmetic, gym:gsm_symbolic)")
        out[name] = ("reasoning", [dict(r) for r in recs])
    for name in knowledge:
        if name == "countries":
            recs = facts.make(n_items, seed=seed)
        elif name in evalsets.KNOWLEDGE_NAMES:
            ds = evalsets.load(name, path=(paths or {}).get(name))
            recs = ds.shuffle(seed=seed).select(range(min(n_items, len(ds))))
        else:
            raise ValueError(f"unknown knowledge benchmark {name!r}: use 'countries' or one of "
                             f"{evalsets.KNOWLEDGE_NAMES} (with paths={{name: local copy}})")
        out[name] = ("knowledge", [dict(r) for r in recs])
    return out


def model_tag(spec: str) -> str:
    """A short name for a model spec: the spec itself, or the last two parts of a path."""
    p = Path(str(spec))
    return str(spec) if len(p.parts) <= 2 else "/".join(p.parts[-2:])


def evaluate_family(specs, benchmarks: dict, *, n: int = 1, temperature: float = 0.0, top_p: float = 1.0,
                    max_new_tokens: int = 64, seed: int = 0, batch_size: int = 32):
    """Every model spec on every benchmark with the same prompts and sampling (vtkit.protocols).

    Reasoning is graded by math-verify on the boxed answer; knowledge by exact alias match (and the
    lenient alias_in beside it). Returns (table: pandas DataFrame, one row per model and benchmark,
    with model, spec, params, benchmark, category, score (mean@1, percent), pass@n, lenient (percent),
    n_items, truncation_rate, load_s (the model), wall_s (the benchmark); samples: list of dicts).
    """
    import pandas as pd

    from vtkit import models, protocols

    rows, samples = [], []
    for spec in specs:
        t0 = time.time()
        model, tok = models.load(spec, seed=seed)
        params, load_s = models.param_count(model), time.time() - t0
        for bench, (category, recs) in benchmarks.items():
            t1 = time.time()
            proto = protocols.get("knowledge" if category == "knowledge" else "vibethinker-math", n=n,
                                  temperature=temperature, top_p=top_p, top_k=-1, max_new_tokens=max_new_tokens,
                                  prompt_suffix="", ks=(n,), seed=seed, batch_size=batch_size, n_boot=200)
            met, samp = protocols.evaluate((model, tok), recs, proto)
            by_id = {r["id"]: r for r in recs}
            lenient = [alias_in(s["text"], json.loads(by_id[s["id"]]["meta"] or "{}").get("aliases") or
                                [by_id[s["id"]]["answer"]]) for s in samp] if category == "knowledge" else \
                [bool(s["correct"]) for s in samp]
            rows.append({"model": model_tag(spec), "spec": str(spec), "params": params, "benchmark": bench,
                         "category": category, "score": 100 * met["mean@1"], f"pass@{n}": 100 * met[f"pass@{n}"],
                         "lenient": 100 * float(np.mean(lenient)), "n_items": len(recs),
                         "truncation_rate": met["truncation_rate"], "load_s": load_s, "wall_s": time.time() - t1})
            samples += [{"model": model_tag(spec), "benchmark": bench, **s, "lenient": bool(le)}
                        for s, le in zip(samp, lenient)]
        del model
    return pd.DataFrame(rows), samples


# ---------------------------------------------------------------- results tables


CONFIG_COLUMNS = ("model", "mode", "exposures", "seed", "token_budget", "n_eval")


def load_results(path, *, stage: str | None = None) -> "pd.DataFrame":
    """The finished capacity-probe runs of a sweep's results.parquet (or .csv), one row per run.

    Rows that are not status "ok", or lack the probe's metrics (other stages of a pipeline), are
    dropped. Columns the sweep did not vary (model, mode, exposures, seed, token_budget) are filled
    from each run's config.json (the resolved preset), so a YAML need not name them.
    A missing file raises FileNotFoundError naming the command that writes it.
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(
            f"no capacity results at {p.resolve()}: run the capacity sweep first, from the repository root:\n"
            f"    {DEMO_COMMAND}       # the demo slice, a few minutes -> runs/capacity-demo/results.parquet\n"
            f"    {GRID_COMMAND}   # the CPU grid, ~30 min -> runs/capacity-scaling/results.parquet\n"
            "then pass its results.parquet as `capacity_results`")
    df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    if "status" in df:
        df = df[df["status"] == "ok"]
    if stage is not None and "stage" in df:
        df = df[df["stage"] == stage]
    if "params" not in df or "bits" not in df:
        raise ValueError(f"{p} holds no capacity-probe metrics (columns params, bits); is it the results "
                         "table of a sweep over notebooks/10_capacity_probe.ipynb?")
    df = df[df["params"].notna()].copy()
    if df.empty:
        raise ValueError(f"{p} has no finished capacity-probe run (status ok); rerun the sweep "
                         f"({DEMO_COMMAND}) and look at the failed runs' log.txt")
    for col in CONFIG_COLUMNS:
        if col not in df or df[col].isna().any():
            df[col] = [_config_value(r, col) for r in df.to_dict("records")]
    for col in df.columns:
        if col not in ("model", "mode", "run_id", "stage", "status", "error", "out_dir"):
            converted = pd.to_numeric(df[col], errors="coerce")
            if converted.notna().sum() == df[col].notna().sum():
                df[col] = converted
    return df.reset_index(drop=True)


def _config_value(row: dict, col: str):
    have = row.get(col)
    if have is not None and not (isinstance(have, float) and math.isnan(have)):
        return have
    cfg = Path(str(row.get("out_dir", ""))) / "config.json"
    return json.loads(cfg.read_text()).get(col) if cfg.is_file() else None


def load_literature(path=None) -> "pd.DataFrame":
    """The published-scores table (vtkit/data/published_scores.csv, or `path` in its columns)."""
    import importlib.resources

    import pandas as pd

    src = Path(path) if path else importlib.resources.files("vtkit") / "data" / "published_scores.csv"
    df = pd.read_csv(src)
    need = {"model", "family", "params_b", "benchmark", "category", "score"}
    if not need <= set(df.columns):
        raise ValueError(f"{src} lacks columns {sorted(need - set(df.columns))}; see vtkit/data/README.md")
    return df


# ---------------------------------------------------------------- figure data


def bits_data(df) -> "pd.DataFrame":
    """Figure (a)'s points: runs that trained knowledge, grouped by (exposures, mode, params):
    bits mean/min/max over seeds, bits_per_param, max_bits (the knowledge set), n_seeds."""
    sub = df[df["mode"].isin(["knowledge", "mixture"])]
    if sub.empty:
        raise ValueError("no knowledge or mixture runs in the results: figure (a) needs mode "
                         "'knowledge' or 'mixture' runs of notebooks/10_capacity_probe")
    g = sub.groupby(["exposures", "mode", "params"], as_index=False)
    out = g.agg(bits=("bits", "mean"), bits_min=("bits", "min"), bits_max=("bits", "max"),
                bits_per_param=("bits_per_param", "mean"), max_bits=("max_bits", "mean"),
                fraction=("knowledge_fraction", "mean"), n_seeds=("bits", "size"))
    if "model" in sub:
        out["model"] = [sub[(sub["params"] == p)]["model"].iloc[0] for p in out["params"]]
    return out.sort_values(["exposures", "mode", "params"]).reset_index(drop=True)


def _fit(N, y, what: str) -> dict:
    """Logistic in log N: ceiling free with >= 4 sizes, fixed at 1 with 3, none below; a fitted
    ceiling outside (0, 1] is reported as no fit (reason says why)."""
    from vtkit.fits import fit_logistic_logN

    sizes = np.unique(N).size
    if sizes < 3:
        return {"ok": False, "reason": f"{what}: {sizes} model size(s); a logistic needs >= 3 (4 to fit its ceiling)",
                "N50": math.nan, "c": math.nan}
    fit = fit_logistic_logN(N, y, ceiling=None if sizes >= 4 else 1.0)
    if fit["ok"] and not 0 < fit["c"] <= 1.05:  # accuracies and fractions live in [0, 1]
        fit = {**fit, "ok": False, "reason": f"{what}: fitted ceiling {fit['c']:.3g} is outside (0, 1]: "
                                             "the sizes measured do not show a saturating curve"}
    return fit


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how likely k or more right answers are by guessing."""
    k = max(0, int(k))
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def above_chance(acc, n, chance: float, alpha: float = 0.01) -> np.ndarray:
    """Per point: is accuracy `acc` on `n` items above `chance` at one-sided level alpha (binomial)?"""
    acc, n = np.broadcast_arrays(np.asarray(acc, float), np.asarray(n, float))
    return np.array([binomial_tail(round(a * m), int(m), chance) < alpha for a, m in zip(acc.ravel(), n.ravel())])


def saturation_data(df, source: str = "auto", exposures: int | None = None, alpha: float = 0.01) -> dict:
    """Figure (b)'s curves and fits.

    source: "mixture" (both abilities from the same mixture runs), "separate" (knowledge from
    knowledge runs, reasoning from reasoning runs), or "auto" (mixture when there are mixture runs).
    exposures: which exposure count's knowledge runs (None: the largest present).
    Returns {source, exposures, reasoning: {N, acc, acc_ood, fit}, knowledge: {N, fraction, fit},
    N50_reasoning, N50_knowledge, log10_N50_ratio (knowledge over reasoning; > 0: knowledge needs
    more parameters to reach half its ceiling)}.
    With columns acc_chance (a guess's accuracy) and n_eval, the reasoning fit is reported only when
    some size beats chance at one-sided binomial level `alpha` (seeds pooled); otherwise its reason
    says so: a logistic through guesses would give a midpoint of noise.
    """
    modes = set(df["mode"])
    if source == "auto":
        source = "mixture" if "mixture" in modes else "separate"
    if source not in ("mixture", "separate"):
        raise ValueError(f"source must be 'auto', 'mixture' or 'separate', got {source!r}")
    k_mode, r_mode = ("mixture", "mixture") if source == "mixture" else ("knowledge", "reasoning")
    kn, rs = df[df["mode"] == k_mode], df[df["mode"] == r_mode]
    if kn.empty or rs.empty:
        raise ValueError(f"figure (b) from {source!r} runs needs mode {k_mode!r} and {r_mode!r} rows; "
                         f"the results hold modes {sorted(modes)}")
    if exposures is None:
        exposures = int(kn["exposures"].max())
    kn = kn[kn["exposures"] == exposures]
    if source == "mixture":
        rs = rs[rs["exposures"] == exposures]
    if kn.empty:
        raise ValueError(f"no {k_mode} runs at exposures={exposures}; present: {sorted(set(df['exposures']))}")
    out = {"source": source, "exposures": exposures}
    kg = kn.groupby("params", as_index=False).agg(fraction=("knowledge_fraction", "mean"))
    rg = rs.groupby("params", as_index=False).agg(acc=("acc_id", "mean"), acc_ood=("acc_ood", "mean"))
    out["knowledge"] = {"N": kg["params"].to_numpy(float), "fraction": kg["fraction"].to_numpy(float),
                        "fit": _fit(kn["params"].to_numpy(float), kn["knowledge_fraction"].to_numpy(float), "knowledge")}
    out["reasoning"] = {"N": rg["params"].to_numpy(float), "acc": rg["acc"].to_numpy(float),
                        "acc_ood": rg["acc_ood"].to_numpy(float),
                        "fit": _fit(rs["params"].to_numpy(float), rs["acc_id"].to_numpy(float), "reasoning")}
    if {"acc_chance", "n_eval"} <= set(rs.columns) and rs[["acc_chance", "n_eval"]].notna().all().all():
        chance = float(rs["acc_chance"].mean())
        pooled = rs.assign(right=rs["acc_id"] * rs["n_eval"]).groupby("params")[["right", "n_eval"]].sum()
        beats = above_chance(pooled["right"] / pooled["n_eval"], pooled["n_eval"], chance, alpha)
        out["reasoning"].update(chance=chance, above_chance=beats)
        if not beats.any() and out["reasoning"]["fit"]["ok"]:
            best = float((pooled["right"] / pooled["n_eval"]).max())
            out["reasoning"]["fit"] = {**out["reasoning"]["fit"], "ok": False,
                                       "reason": f"reasoning: no size beats chance ({chance:.3f}) at binomial "
                                                 f"p < {alpha} (best accuracy {best:.3f}); no midpoint to fit"}
    nr, nk = out["reasoning"]["fit"]["N50"], out["knowledge"]["fit"]["N50"]
    ok = out["reasoning"]["fit"]["ok"] and out["knowledge"]["fit"]["ok"]
    out["N50_reasoning"] = nr if out["reasoning"]["fit"]["ok"] else math.nan
    out["N50_knowledge"] = nk if out["knowledge"]["fit"]["ok"] else math.nan
    out["log10_N50_ratio"] = math.log10(nk / nr) if ok else math.nan
    return out


def family_slopes(lit, min_sizes: int = 2, verified_only: bool = False) -> "pd.DataFrame":
    """Per (family, benchmark, setting) with >= min_sizes sizes: the slope of score against
    log10(params) (points per tenfold size) and the smallest model's score as a share of the largest's."""
    import pandas as pd

    d = lit.dropna(subset=["params_b", "score"]).copy()
    if verified_only and "verified" in d:
        d = d[d["verified"] == "yes"]
    d["setting"] = d["setting"].fillna("") if "setting" in d else ""
    rows = []
    for (fam, bench, setting), g in d.groupby(["family", "benchmark", "setting"]):
        g = g.groupby("params_b", as_index=False).agg(score=("score", "mean"), category=("category", "first"))
        if len(g) < min_sizes:
            continue
        g = g.sort_values("params_b")
        slope = float(np.polyfit(np.log10(g["params_b"]), g["score"], 1)[0])
        rows.append({"family": fam, "benchmark": bench, "setting": setting, "category": g["category"].iloc[0],
                     "n_sizes": len(g), "slope_per_decade": slope,
                     "small_over_large": float(g["score"].iloc[0] / g["score"].iloc[-1])})
    return pd.DataFrame(rows, columns=["family", "benchmark", "setting", "category", "n_sizes", "slope_per_decade",
                                       "small_over_large"])


# ---------------------------------------------------------------- figures


def _log_x(ax) -> None:
    """Log x axis labelled at powers of ten only (minor labels collide at single-column width)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())


def fig_bits(df, path, floor: float | None = None):
    """Figure (a): knowledge bits against parameters, log-log, with the Allen-Zhu & Li lines.

    Each (exposures, mode) is one series (filled: knowledge-only, open: mixture); a dotted line at
    each knowledge set's size (max_bits) shows where a run runs out of facts to store. Points at or
    below 0 bits are drawn at `floor` (default: half the smallest positive value) as down-triangles.
    Returns (saved paths, data).
    """
    import matplotlib.pyplot as plt

    from vtkit import plots

    data = bits_data(df)
    fig, ax = plots.figure("single")
    pos = data["bits"][data["bits"] > 0]
    floor = floor or (float(pos.min()) / 2 if len(pos) else 1.0)
    exps = sorted(set(data["exposures"]))
    colors = dict(zip(exps, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    N_all = np.geomspace(data["params"].min() / 1.5, data["params"].max() * 1.5, 50)
    for e_ref, bpp in sorted(ALLEN_ZHU_LI.items()):
        ax.plot(N_all, bpp * N_all, color="0.45", ls="-" if bpp == 2 else "--", lw=0.9, zorder=1,
                label=f"{bpp:g} bit{'s' if bpp != 1 else ''}/param ({e_ref} exp., Allen-Zhu & Li)")
    for (e, mode), g in data.groupby(["exposures", "mode"]):
        c = colors[e]
        y = np.where(g["bits"] > 0, g["bits"], floor)
        low = g["bits"] <= 0
        face = c if mode == "knowledge" else "white"
        ax.plot(g["params"], y, color=c, lw=0.8, alpha=0.6)
        ax.scatter(g["params"][~low], y[~low], edgecolors=c, facecolors=face, marker="o" if mode == "knowledge" else "s",
                   zorder=3, label=f"{e:g} exp., {mode}")
        if low.any():
            ax.scatter(g["params"][low], y[low], color=c, marker="v", zorder=3)
        if (g["bits_max"] > g["bits_min"]).any():
            ax.vlines(g["params"], np.maximum(g["bits_min"], floor), np.maximum(g["bits_max"], floor), color=c, lw=0.8)
        ax.axhline(float(g["max_bits"].mean()), color=c, ls=":", lw=0.8)
    _log_x(ax)
    ax.set_yscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("knowledge stored (bits)")
    ax.legend(fontsize=6, loc="upper left")
    return plots.savefig(fig, path, close=True), data


def fig_saturation(df, path, source: str = "auto", exposures: int | None = None):
    """Figure (b): reasoning accuracy (in and out of distribution) and knowledge fraction against
    parameters on one axis, each with its logistic fit and N50 marked; reasoning points not above
    chance (see saturation_data) are hollow. Returns (saved paths, data)."""
    from vtkit import plots
    from vtkit.fits import logistic

    data = saturation_data(df, source, exposures)
    fig, ax = plots.figure("single")
    lo = min(data["reasoning"]["N"].min(), data["knowledge"]["N"].min()) / 1.5
    hi = max(data["reasoning"]["N"].max(), data["knowledge"]["N"].max()) * 1.5
    grid = np.geomspace(lo, hi, 100)
    series = [("reasoning", "acc", "C0", "o", "reasoning accuracy (in distribution)"),
              ("knowledge", "fraction", "C1", "s", f"knowledge fraction ({data['exposures']} exp.)")]
    for key, col, color, marker, label in series:
        d = data[key]
        solid = d.get("above_chance", np.ones(len(d["N"]), dtype=bool))  # hollow: not above chance
        ax.scatter(d["N"], d[col], edgecolors=color, facecolors=np.where(solid, color, "white"), marker=marker,
                   zorder=3, label=label)
        fit = d["fit"]
        if fit["ok"]:
            ax.plot(grid, logistic(grid, fit["c"], fit["k"], fit["N50"]), color=color, lw=1)
            if lo <= fit["N50"] <= hi:
                ax.axvline(fit["N50"], color=color, ls="--", lw=0.8)
                ax.annotate(f"$N_{{50}}$={fit['N50']:.2g}", (fit["N50"], 0.02 if key == "reasoning" else 0.1),
                            color=color, fontsize=6, rotation=90, ha="right", va="bottom")
    ax.scatter(data["reasoning"]["N"], data["reasoning"]["acc_ood"], color="C0", marker="x", zorder=3,
               label="reasoning accuracy (deeper, OOD)")
    if "acc_chance" in df and df["acc_chance"].notna().any():
        ax.axhline(float(df["acc_chance"].mean()), color="C0", ls=":", lw=0.8, label="reasoning: chance")
    _log_x(ax)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("parameters")
    ax.set_ylabel("accuracy / fraction of facts")
    ax.set_title(f"{data['source']} runs", fontsize=7)
    ax.legend(fontsize=6, loc="upper left")
    return plots.savefig(fig, path, close=True), data


def fig_families(lit, path, measured=None, verified_only: bool = False):
    """Figure (c): score against total parameters, reasoning (left) and knowledge (right) panels,
    one colour per family, one marker per benchmark; a line joins the sizes of one family, benchmark
    and setting (base and instruct scores are not joined); unverified rows hollow. `measured`: an
    extra table in the same columns (e.g. the family probe's scores.csv). Returns (paths, slopes)."""
    import pandas as pd

    from vtkit import plots

    d = lit.dropna(subset=["params_b", "score"]).copy()
    if measured is not None:
        d = pd.concat([d, measured], ignore_index=True)
    if verified_only and "verified" in d:
        d = d[d["verified"] != "no"]
    if d.empty:
        raise ValueError("no rows with params_b and score to plot")
    d["setting"] = d["setting"].fillna("") if "setting" in d else ""
    d["verified"] = d["verified"].fillna("yes") if "verified" in d else "yes"
    fams = sorted(set(d["family"]))
    colors = {f: f"C{i % 10}" for i, f in enumerate(fams)}
    fig, axes = plots.figure("double", ncols=2, sharey=True)
    for ax, cat in zip(axes, ("reasoning", "knowledge")):
        sub = d[d["category"] == cat]
        markers = dict(zip(sorted(set(sub["benchmark"])), "os^Dv<>pP*hX8H"))
        for (fam, bench, _), g in sub.groupby(["family", "benchmark", "setting"]):
            g = g.sort_values("params_b")
            hollow = g["verified"] == "no"
            ax.plot(g["params_b"], g["score"], color=colors[fam], lw=0.8, alpha=0.7)
            ax.scatter(g["params_b"][~hollow], g["score"][~hollow], color=colors[fam], marker=markers[bench], s=14)
            ax.scatter(g["params_b"][hollow], g["score"][hollow], edgecolors=colors[fam], facecolors="white",
                       marker=markers[bench], s=14)
        _log_x(ax)
        ax.set_xlabel("total parameters (billions)")
        ax.set_title(f"{cat} benchmarks", fontsize=8)
        handles = [ax.scatter([], [], color="0.3", marker=m, s=14, label=b) for b, m in markers.items()]
        ax.legend(handles=handles, fontsize=5, loc="lower right", ncol=2 if len(handles) > 5 else 1)
    axes[0].set_ylabel("published score (%)")
    fam_handles = [axes[1].scatter([], [], color=colors[f], marker="o", s=14, label=f) for f in fams]
    fig.legend(handles=fam_handles, fontsize=6, loc="outside right center")
    return plots.savefig(fig, path, close=True), family_slopes(d)


def fig_family_probe(table, path):
    """The family probe's figure: score (mean@1, %) against parameters, one line per benchmark,
    reasoning solid, knowledge dashed. Returns the saved paths."""
    from vtkit import plots

    fig, ax = plots.figure("single")
    for i, (bench, g) in enumerate(table.groupby("benchmark")):
        g = g.sort_values("params")
        ls = "-" if g["category"].iloc[0] == "reasoning" else "--"
        ax.plot(g["params"], g["score"], ls=ls, marker="o", color=f"C{i % 10}", label=f"{bench} ({g['category'].iloc[0]})")
    _log_x(ax)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("parameters")
    ax.set_ylabel("score (mean@1, %)")
    ax.legend(fontsize=6)
    return plots.savefig(fig, path, close=True)
