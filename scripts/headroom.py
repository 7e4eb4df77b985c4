"""Headroom probe: does a fresh tiny model learn a task group after stage-1 SFT on a mixture?

    python scripts/headroom.py --out runs/headroom/E \\
        --group 'code={n: 150, difficulty: 1, max_param: 9}' \\
        --group 'stem={n: 150, difficulty: 1, subdomain: numeric, max_value: 12}' \\
        --eval 'code={n: 24, difficulty: 1, max_param: 9}' --eval 'stem={n: 16, difficulty: 1, subdomain: numeric, max_value: 12}'

Stage 1 of the SFT stage alone: the sft preset's mixture (`--preset`, default tiny: 1,100 add + 100
mul + 200 two-step adds mod 7, plus its code and STEM groups) with groups replaced or added by
`--group NAME=YAML` (`--drop NAME` removes one), the tasks' reference solutions as traces, the
stage's quality filter (decontaminated against the held-out groups), then `vtkit.train.sft` of a
fresh `--model` for `--epochs` at the preset's lr and batch size. Held-out: the test split of the
preset's eval groups (without `hard`) with `--eval NAME=YAML` replacing or adding groups; each is
scored greedy (`greedy_acc`) and with `--samples` samples at T = 1 (`mean@K`), seed `--seed`.
Prints one line per group; writes OUT/headroom.json and the trained model to OUT/model (an RL start).
Where this departs from the SFT stage: no stage 2, and the sampled score beside the greedy one.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _groups(items, what: str) -> dict:
    import yaml

    from vtkit.experiment import _Loader
    out = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        spec = yaml.load(text, Loader=_Loader) if sep else None
        if not sep or not name.strip() or not isinstance(spec, dict) or "n" not in spec:
            raise SystemExit(f"headroom: {what} takes NAME={{n: COUNT, tasks.make keywords}}, e.g. "
                             f"'code={{n: 150, difficulty: 1, max_param: 9}}', got {item!r}")
        out[name.strip()] = spec
    return out


def run(*, preset: str = "tiny", model: str | None = None, groups: dict | None = None, drop=(), evals: dict | None = None,
        epochs: float | None = None, samples: int = 4, seed: int = 0, out_dir, max_new_tokens: int | None = None) -> dict:
    """Train stage 1 on the mixture and score every held-out group; returns (and writes) the metrics."""
    from vtkit import models, presets, runinfo, spectrum, tasks, train

    cfg = presets.resolve(preset, "sft")
    mixture = {k: v for k, v in {**cfg["mixture"], **(groups or {})}.items() if k not in drop}
    eval_groups = {k: v for k, v in {**cfg["eval"], **(evals or {})}.items() if k != "hard" and k not in drop}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runinfo.seed_everything(seed)
    t0 = time.time()
    lm, tok = models.load(model or cfg["model"], seed=seed)
    pool = spectrum.flatten(tasks.make_groups(mixture, seed=seed, split="train"))
    heldout = tasks.make_groups(eval_groups, seed=seed, split="test")
    data, counts = spectrum.quality_filter(pool, eval_sets=list(heldout.values()), overlap_n=cfg["overlap_n"])
    lm, _ = train.sft(lm, tok, data, out / "stage1", epochs=epochs if epochs is not None else cfg["epochs1"],
                      lr=cfg["lr"], warmup=cfg["warmup"], batch_size=cfg["batch_size"], grad_accum=cfg["grad_accum"],
                      max_length=cfg["max_length"], seed=seed, logging_steps=50, report_to="none")
    train_s = time.time() - t0
    models.save(lm, tok, out / "model")   # an RL start (`vtkit run rl --set init_model=OUT/model`)
    mnt = max_new_tokens or cfg["max_new_tokens"]
    greedy = spectrum.score(lm, tok, heldout, k=1, temperature=0.0, max_new_tokens=mnt, seed=seed, batch_size=128)
    sampled = spectrum.score(lm, tok, heldout, k=samples, temperature=1.0, top_p=1.0, max_new_tokens=mnt, seed=seed,
                             batch_size=128) if samples > 0 else {}
    metrics = {"train_s": train_s, "n_queries": len(data), **{f"filter/{k}": v for k, v in counts.items()}}
    for g in heldout:
        metrics.update(greedy[g].flat(f"{g}/", keys=["greedy_acc"]))
        if g in sampled:
            metrics.update(sampled[g].flat(f"{g}/", keys=[f"mean@{samples}"]))
        metrics[f"{g}/n_items"] = len(heldout[g])
    (out / "headroom.json").write_text(json.dumps({"mixture": mixture, "eval": eval_groups, "metrics": metrics},
                                                  indent=1, default=str) + "\n")
    return metrics


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", help="the sft preset whose mixture, eval groups and recipe start")
    p.add_argument("--model", default=None, help="model spec (default: the preset's, tiny-400k at tiny)")
    p.add_argument("--group", action="append", help="NAME=YAML: add or replace a mixture group (repeatable)")
    p.add_argument("--drop", action="append", default=[], help="NAME: remove a mixture or eval group")
    p.add_argument("--eval", action="append", help="NAME=YAML: add or replace a held-out group")
    p.add_argument("--epochs", type=float, default=None, help="stage-1 epochs (default: the preset's epochs1)")
    p.add_argument("--samples", type=int, default=4, help="samples at T = 1 for mean@K (0: greedy only)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder (stage1/ and headroom.json)")
    args = p.parse_args(argv)
    m = run(preset=args.preset, model=args.model, groups=_groups(args.group, "--group"), drop=args.drop,
            evals=_groups(args.eval, "--eval"), epochs=args.epochs, samples=args.samples, seed=args.seed,
            out_dir=args.out, max_new_tokens=args.max_new_tokens)
    groups = sorted({k.split("/n_items")[0] for k in m if k.endswith("/n_items")})
    for g in groups:
        sampled = f"  mean@{args.samples} {m[f'{g}/mean@{args.samples}']:.3f}" if args.samples else ""
        print(f"{g:10s} greedy {m[f'{g}/greedy_acc']:.3f}{sampled}  ({m[f'{g}/n_items']} problems)")
    print(f"stage 1: {m['n_queries']} queries, {m['train_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
