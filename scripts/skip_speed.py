"""RL step time with and without the zero-advantage rows in the loss (`skip_zero_advantage`).

    python scripts/skip_speed.py --model runs/demo/seed=0/merge/model --steps 12 --out runs/skip_speed

Two runs of `vtkit.rl_phase.run_phase` from the same model, one with `skip_zero_advantage` off and
one with it on, one after the other: the rl preset's math phase settings (`--preset`; positive
samples only, lr, warmup, prompts_per_step x G), `--prompts` fresh training prompts of the preset's
math task (data seed 0, no solvability filter), `--steps` MGPO steps, no held-out evaluation.
Reports each run's wall time (trainer set-up included), the rows in the loss per step, the first
logged losses and the sum of the trained parameters (the same update: rounding-level differences
only), and writes OUT/skip_speed.json. Where this departs from the logged measurement: that one ran
the two side by side on 2 cores; this runs them in turn (set --threads to the cores you give it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def run(model: str, *, preset: str = "tiny", steps: int = 12, prompts: int = 96, seed: int = 0, out_dir,
        prompts_per_step: int | None = None, num_generations: int | None = None,
        max_completion_length: int | None = None) -> dict:
    import datasets
    import torch

    from vtkit import models, presets, rl_phase, runinfo, tasks

    cfg = presets.resolve(preset, "rl")
    recs = tasks.make_groups({"math": cfg["tasks"]["math"]}, {"math": prompts}, seed=cfg["data_seed"])["math"]
    out = {"model": model, "steps": steps, "prompts": len(recs)}
    for arm, skip in (("off", False), ("on", True)):
        runinfo.seed_everything(seed)
        lm, tok = models.load(model, seed=seed)
        t0 = time.time()
        res = rl_phase.run_phase(
            lm, tok, datasets.Dataset.from_list(recs), Path(out_dir) / arm, phase="math", heldout=None,
            eval_every=10**9, mgpo_lambda=cfg["mgpo_lambda"], max_steps=steps, lr=cfg["lr"], warmup=cfg["warmup"],
            lr_schedule=cfg["lr_schedule"], prompts_per_step=prompts_per_step or cfg["prompts_per_step"],
            num_generations=num_generations or cfg["num_generations"],
            max_completion_length=max_completion_length or cfg["max_completion_length"],
            temperature=cfg["temperature"], loss_type=cfg["loss_type"], beta=cfg["beta"],
            negative_advantage_scale=cfg["negative_advantage_scale"], skip_zero_advantage=skip, seed=seed, save=False)
        wall = time.time() - t0
        with torch.no_grad():
            psum = float(sum(p.double().sum() for p in res.model.parameters()))
        out[arm] = {"wall_s": wall, "param_sum": psum,
                    "losses": [s["loss"] for s in res.steps if s.get("loss") is not None],
                    "rows_in_loss": [s.get("rows_in_loss") for s in res.steps if s.get("loss") is not None]}
    out["speedup"] = out["off"]["wall_s"] / out["on"]["wall_s"]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "skip_speed.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the start model (a merged checkpoint of the demo)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--prompts", type=int, default=96)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a sweep run)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    r = run(args.model, preset=args.preset, steps=args.steps, prompts=args.prompts, seed=args.seed, out_dir=args.out)
    for arm in ("off", "on"):
        a = r[arm]
        print(f"skip_zero_advantage {arm:3s}: {a['wall_s']:.1f} s for {args.steps} steps; rows in loss "
              f"{a['rows_in_loss']}; first losses {[round(x, 5) for x in a['losses'][:6]]}; parameter sum {a['param_sum']:.7f}")
    print(f"off / on: {r['speedup']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
