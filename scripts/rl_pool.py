"""RL's held-out gain pooled over seeds: each run's start and final model re-evaluated on the same problems.

    vtkit sweep experiments/rl_code_stem.yaml --out runs --jobs 2
    python scripts/rl_pool.py runs/rl_code_stem --samples 16 --sampling-seed 1234 --n-boot 4000

For every finished RL run (stage `rl`; notebooks/03_mgpo_rl.ipynb or `vtkit run rl`) the script
reads the run's config.json (phases, tasks, n_heldout, data_seed, max_completion_length,
init_model), rebuilds its held-out problems (`tasks.make_groups(..., split="test")`, as the stage
does), and evaluates the start model (the run's `init_model`) and the final model (`<run>/model`)
on them with the same protocol: `--samples` samples at `--temperature`, sampling seed
`--sampling-seed` for every run (so start and final are drawn alike; the numbers differ from the
stage's own, which samples with the run's seed). Per domain, the per-problem accuracies of all runs
are pooled into (seed, problem) pairs and the gain final - start gets a paired bootstrap over the
pairs (`vtkit.stats.paired_bootstrap`). Writes OUT.json (per run and pooled) when --out is given.
A relative init_model is looked up from the current folder, then from notebooks/ (a notebook's cwd).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vtkit import compare, stats

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def resolve_model(path: str, stage_dir: Path) -> str:
    """An init_model as written in a run's config: absolute, or relative to cwd or to notebooks/."""
    p = Path(path)
    for cand in (p, NOTEBOOKS / p, stage_dir / p):
        if (cand / "config.json").exists():
            return str(cand.resolve())
    raise compare.CompareError(f"the start model {path!r} of run {stage_dir} is not a model folder (looked in the "
                               "current folder and notebooks/); pass --start PATH, or rerun the pipeline's earlier stages")


def runs(run_dirs, stage: str = "rl") -> list[dict]:
    """One dict per finished RL row: run_id, seed, stage folder, config."""
    df = compare.load_table(run_dirs)
    df = df[df["status"] == "ok"]
    if "stage" in df.columns and stage in set(df["stage"]):
        df = df[df["stage"] == stage]
    out = []
    for _, row in df.iterrows():
        d = compare.stage_dir(row)
        if (d / "config.json").exists() and (d / "model").is_dir():
            out.append({"run_id": row["run_id"], "seed": row.get("seed"), "dir": d,
                        "config": json.loads((d / "config.json").read_text())})
    if not out:
        raise compare.CompareError(f"no finished {stage!r} run with config.json and model/ under "
                                   f"{[str(d) for d in run_dirs]}")
    return out


def heldout(cfg: dict, domains=None) -> dict:
    """The run's held-out problems per domain, as the RL stage builds them."""
    from vtkit import rl_phase, tasks

    doms = list(dict.fromkeys(rl_phase.phase_spec(p).domain for p in cfg["phases"]))
    doms = [d for d in doms if domains is None or d in domains]
    return tasks.make_groups({d: cfg["tasks"][d] for d in doms}, cfg["n_heldout"], seed=cfg["data_seed"], split="test")


def evaluate_run(run: dict, *, samples: int, temperature: float, sampling_seed: int, domains=None,
                 start: str | None = None) -> dict:
    """{domain: {"before": per-problem scores, "after": ...}} for one run's start and final model."""
    from vtkit import evaluation, models

    cfg = run["config"]
    sets = heldout(cfg, domains)
    proto = evaluation.sampled(samples, temperature, cfg["max_completion_length"], seed=sampling_seed)
    start_path = start or cfg.get("init_model")
    if not start_path:
        raise compare.CompareError(f"run {run['run_id']} has no init_model (it started from the preset's quick SFT "
                                   "start): pass --start PATH")
    out = {d: {} for d in sets}
    for when, path in (("before", resolve_model(start_path, run["dir"])), ("after", str(run["dir"] / "model"))):
        model = models.load(path)
        for d, recs in sets.items():
            out[d][when] = [float(x) for x in evaluation.evaluate(model, recs, proto).per_item["score"]]
        del model
    return out


def pool(per_run: dict, n_boot: int = 4000, seed: int = 0) -> dict:
    """{domain: {gain, gain_lo, gain_hi, before, after, n_pairs}} over every (run, problem) pair."""
    out = {}
    for d in sorted({d for r in per_run.values() for d in r}):
        before = [x for r in per_run.values() if d in r for x in r[d]["before"]]
        after = [x for r in per_run.values() if d in r for x in r[d]["after"]]
        out[d] = {**stats.paired_bootstrap(before, after, n_boot=n_boot, seed=seed), "before": sum(before) / len(before),
                  "after": sum(after) / len(after), "n_pairs": len(before)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("run_dir", nargs="+", help="output folder(s) of sweeps with an RL stage (results.parquet)")
    p.add_argument("--stage", default="rl")
    p.add_argument("--domain", action="append", help="only these domains (repeatable; default: every phase's)")
    p.add_argument("--samples", type=int, default=16, help="samples per problem (default 16)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--sampling-seed", type=int, default=1234, help="one sampling seed for every model (default 1234)")
    p.add_argument("--start", default=None, help="the start model for every run (default: each run's init_model)")
    p.add_argument("--n-boot", type=int, default=4000, help="bootstrap draws over (seed, problem) pairs")
    p.add_argument("--boot-seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write OUT.json")
    args = p.parse_args(argv)
    try:
        found = runs(args.run_dir, args.stage)
        per_run = {}
        for r in found:
            per_run[r["run_id"]] = evaluate_run(r, samples=args.samples, temperature=args.temperature,
                                                sampling_seed=args.sampling_seed, domains=args.domain, start=args.start)
            for d, v in per_run[r["run_id"]].items():
                g = stats.paired_bootstrap(v["before"], v["after"], n_boot=args.n_boot, seed=args.boot_seed)
                print(f"{r['run_id']} {d}: {sum(v['before']) / len(v['before']):.3f} -> "
                      f"{sum(v['after']) / len(v['after']):.3f}, {g['gain']:+.3f} [{g['gain_lo']:+.3f}, {g['gain_hi']:+.3f}]")
    except compare.CompareError as e:
        print(f"rl_pool: error: {e}", file=sys.stderr)
        return 2
    pooled = pool(per_run, args.n_boot, args.boot_seed)
    for d, g in pooled.items():
        print(f"pooled {d}: {g['before']:.3f} -> {g['after']:.3f}, gain {g['gain']:+.3f} [{g['gain_lo']:+.3f}, "
              f"{g['gain_hi']:+.3f}] (paired bootstrap over {g['n_pairs']} (seed, problem) pairs, {args.n_boot} draws)")
    if args.out:
        Path(f"{args.out}.json").parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}.json").write_text(json.dumps(compare.jsonable(
            {"per_run": per_run, "pooled": pooled, "samples": args.samples, "temperature": args.temperature,
             "sampling_seed": args.sampling_seed, "n_boot": args.n_boot}), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
