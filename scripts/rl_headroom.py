"""RL headroom probe: a model's sampled accuracy (mean@k at T = 1) on candidate task sets, with tokens/s.

    python scripts/rl_headroom.py --model smollm2-135m --n 32 --max-new-tokens 256 \\
        --task 'math={difficulty: 1, mod: 7}' --task 'add5={domain: math, difficulty: 1, mod: 5, subdomain: add}' \\
        --task 'gym:basic_arithmetic={}' --out runs/rl_headroom/E

Before an RL run: a task has headroom for RL when the start's mean@1 at the training temperature
sits well inside (0, 1) (about 0.2-0.6), so that most groups of G samples hold both right and
wrong answers. Each `--task NAME=YAML` is one candidate: `tasks.make_groups` keywords (the domain is
the text before "/" in NAME, or `domain:`; any other key goes to `tasks.make`), or a NAME
`gym:<dataset>` whose YAML is that reasoning-gym dataset's config (`tasks.from_reasoning_gym`).
Items come from the `validation` split by default (choose settings there, not on the test items
an RL stage holds out). Each is scored as an RL stage's held-out evaluation scores it
(`vtkit.evaluation.sampled`: `--samples` samples at `--temperature`, graded by the record's
domain, `--max-new-tokens`). Prints one line per task: mean@k with its interval, the share of
items with 0 < score < 1 (of k samples), mean completion tokens, truncation rate, seconds and the
generated tokens per second (the sampling speed that sets an RL step's rollout time); writes
OUT/headroom.json. Departs from nothing: this is a measurement, not a stage.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _tasks(items) -> dict:
    import yaml

    from vtkit.experiment import _Loader
    out = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        spec = yaml.load(text, Loader=_Loader) if sep else None
        if not sep or not name.strip() or not isinstance(spec, dict):
            raise SystemExit(f"rl_headroom: --task takes NAME=YAML, e.g. 'math={{difficulty: 1, mod: 7}}' or "
                             f"'gym:basic_arithmetic={{}}', got {item!r}")
        out[name.strip()] = spec
    if not out:
        raise SystemExit("rl_headroom: give at least one --task NAME=YAML")
    return out


def records(name: str, spec: dict, n: int, seed: int, split: str) -> list[dict]:
    """The candidate's n records of `split`."""
    from vtkit import tasks
    if name.startswith("gym:"):
        return [dict(r) for r in tasks.from_reasoning_gym(name[4:], n, seed=seed, split=split, **spec)]
    return tasks.make_groups({name: {**spec, "n": n}}, seed=seed, split=split)[name]


def run(*, model: str, tasks: dict, n: int = 32, samples: int = 1, temperature: float = 1.0,
        max_new_tokens: int = 256, split: str = "validation", seed: int = 0, batch_size: int = 64,
        start_data: dict | None = None, start_epochs: float = 1.0, start_lr: float = 1e-4, out_dir=None) -> dict:
    """Score every candidate; returns {name: metrics} (and writes OUT/headroom.json when out_dir).
    start_data: score the RL stage's quick SFT start of `model` instead (`vtkit.train.sft_start`
    with the stage's arguments, so a stage run with the same start_data, start_epochs and start_lr
    loads this very checkpoint from the cache)."""
    import numpy as np
    import torch

    from vtkit import evaluation, models, train
    t = time.time()
    if start_data:
        lm, tok, path = train.sft_start(model, start_data, epochs=start_epochs, lr=start_lr, seed=0)
        print(f"quick SFT start of {model} on {start_data}, {start_epochs} epochs at lr {start_lr:g} "
              f"(cached at {path}): {time.time() - t:.0f} s")
    else:
        lm, tok = models.load(model, seed=seed)
    print(f"{model} loaded in {time.time() - t:.0f} s; torch threads {torch.get_num_threads()}")
    proto = evaluation.sampled(samples, temperature, max_new_tokens, seed=seed, batch_size=batch_size)
    res = {}
    for name, spec in tasks.items():
        recs = records(name, spec, n, seed, split)
        t = time.time()
        r = evaluation.evaluate((lm, tok), recs, proto)
        s = time.time() - t
        tokens = sum(x["n_tokens"] for x in r.samples)
        lo, hi = r.interval
        score = np.asarray(r.per_item["score"])
        m = {"spec": spec, "split": split, "headline": r.headline, "acc": r.acc, "lo": lo, "hi": hi,
             "n_items": len(recs), "samples": samples, "mixed_items": float(np.mean((score > 0) & (score < 1))),
             "mean_tokens": r["mean_tokens"], "truncation_rate": r["truncation_rate"], "seconds": s,
             "tokens_per_s": tokens / s, "example": r.samples[0]["text"][:400]}
        res[name] = m
        print(f"{name:28s} {r.headline} {r.acc:.3f} [{lo:.3f}, {hi:.3f}] (n = {len(recs)} x {samples})  "
              f"mixed {m['mixed_items']:.2f}  {m['mean_tokens']:.0f} tokens, truncated {m['truncation_rate']:.2f}  "
              f"{s:.0f} s, {m['tokens_per_s']:.0f} tokens/s", flush=True)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "headroom.json").write_text(json.dumps({"model": model, "start_data": start_data,
                                                       "start_epochs": start_epochs, "start_lr": start_lr,
                                                       "max_new_tokens": max_new_tokens,
                                                       "temperature": temperature, "tasks": res},
                                                      indent=1, default=str) + "\n")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m", help="model spec (vtkit.models.load)")
    p.add_argument("--task", action="append", help="NAME=YAML: a candidate task set (repeatable)")
    p.add_argument("--n", type=int, default=32, help="items per candidate")
    p.add_argument("--samples", type=int, default=1, help="samples per item (mean@k)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--split", default="validation", help="validation (default), train or test")
    p.add_argument("--batch-size", type=int, default=64, help="rows per generate call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start-data", default=None, help="YAML {domain: {n, tasks.make keywords}}: score the RL "
                   "stage's quick SFT start of --model on it (vtkit.train.sft_start, cached) instead of --model")
    p.add_argument("--start-epochs", type=float, default=1.0)
    p.add_argument("--start-lr", type=float, default=1e-4)
    p.add_argument("--out", default=None, help="folder for headroom.json")
    args = p.parse_args(argv)
    start = None
    if args.start_data:
        import yaml

        from vtkit.experiment import _Loader
        start = yaml.load(args.start_data, Loader=_Loader)
        if not isinstance(start, dict) or not all(isinstance(v, dict) and "n" in v for v in start.values()):
            raise SystemExit(f"rl_headroom: --start-data takes {{domain: {{n: COUNT, tasks.make keywords}}}}, "
                             f"got {args.start_data!r}")
    run(model=args.model, tasks=_tasks(args.task), n=args.n, samples=args.samples, temperature=args.temperature,
        max_new_tokens=args.max_new_tokens, split=args.split, seed=args.seed, batch_size=args.batch_size,
        start_data=start, start_epochs=args.start_epochs, start_lr=args.start_lr, out_dir=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
