"""CLR's verifier alone: teach a model to judge claims, then measure it on held-out labelled claims.

    python scripts/clr_verifier.py --model runs/demo/seed=0/distill/model --seed 0 --out runs/clrv/s0-lr4e-3 \\
        --set teach_lr=4e-3

The teaching and held-out steps of the CLR stage (notebooks/06_clr.ipynb), without sampling
trajectories or running CLR: the clr preset's settings (`--preset`, any key changed with
`--set KEY=YAML`), teaching records of the train split (seed + 1: `teach_records` solving
conversations, `teach_verify_records` x `teach_verify_per_record` labelled claims from seed + 3),
`vtkit.train.sft` at `teach_lr` for `teach_epochs`, then `clr.verifier_accuracy` greedy on the
labelled claims of `held_out_records` validation problems (seed + 2): accuracy, recall on valid and
invalid claims, each with a Wilson 95% interval. The task's difficulty and keywords come from the
checkpoint's stage config when it names the task (as in the stage), else from the preset. The same
seed and settings give the stage's own verifier numbers. Writes OUT/verifier.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _sets(items) -> dict:
    import yaml

    from vtkit.experiment import _Loader
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"clr_verifier: --set takes KEY=YAML (a clr preset key), got {item!r}")
        out[key.strip()] = yaml.load(text, Loader=_Loader)
    return out


def trained_on(model_path: str | None, task: str):
    """(difficulty, task keywords) that the checkpoint's stage config (config.json beside the model
    folder) names for `task`, as the CLR stage reads them; (None, None) when it names none."""
    path = Path(model_path or "").parent / "config.json"
    if not model_path or not path.is_file():
        return None, None
    stage = json.loads(path.read_text())
    spec = (stage.get("tasks") or {}).get(task) if isinstance(stage.get("tasks"), dict) else None
    if isinstance(spec, dict):
        kw = dict(spec)
        return kw.pop("difficulty", None), kw
    if stage.get("domain") == task:
        return stage.get("difficulty"), stage.get("task_kw")
    return None, None


def run(model: str, *, preset: str = "tiny", seed: int = 0, sets: dict | None = None, out_dir) -> dict:
    """Teach and measure; returns the verifier metrics (and writes OUT/verifier.json)."""
    from vtkit import clr, evaluation, models, presets, runinfo, train

    cfg = presets.resolve(preset, "clr")
    bad = sorted(set(sets or {}) - set(cfg))
    if bad:
        raise SystemExit(f"clr_verifier: unknown clr preset keys {bad}; valid: {sorted(cfg)}")
    cfg.update(sets or {})
    d, kw = trained_on(model, cfg["task"])
    cfg["difficulty"] = d if d is not None else cfg["difficulty"]
    cfg["task_kw"] = (kw if kw is not None else cfg["task_kw"]) or {}
    if isinstance(cfg["difficulty"], list):
        cfg["difficulty"] = tuple(cfg["difficulty"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runinfo.seed_everything(seed)

    def records(n, split, rec_seed):
        return evaluation.task_set(cfg["task"], n=n, seed=rec_seed, difficulty=cfg["difficulty"], split=split,
                                   options=cfg["task_kw"])[0]

    lm, tok = models.load(model, seed=seed)
    t0 = time.time()
    verify_recs = records(cfg["teach_verify_records"], "train", seed + 3) if cfg["teach_verify_records"] else None
    convs = clr.training_conversations(records(cfg["teach_records"], "train", seed + 1), seed=seed, M=cfg["M"],
                                       solve_per_record=1, extract_per_record=cfg["teach_extract_per_record"],
                                       verify_per_record=cfg["teach_verify_per_record"], verify_records=verify_recs,
                                       recompute=cfg["teach_recompute"], verify_prompt=cfg["verify_prompt"])
    kinds = {k: convs["kind"].count(k) for k in ("extract", "verify", "solve")}
    lm, _ = train.sft(lm, tok, convs, out / "teach", epochs=cfg["teach_epochs"], lr=cfg["teach_lr"],
                      batch_size=cfg["teach_batch_size"], max_length=cfg["teach_max_length"], seed=seed,
                      report_to="none", length_buckets=cfg["teach_length_buckets"])
    teach_s = time.time() - t0
    held = clr.verification_examples(records(cfg["held_out_records"], "validation", seed + 2), seed=seed + 2)
    m = clr.verifier_accuracy(lm, tok, held, max_new_tokens=cfg["verify_tokens"], seed=seed,
                              verify_prompt=cfg["verify_prompt"])
    m.update({"teach_s": teach_s, **{f"taught_{k}": v for k, v in kinds.items()}})
    (out / "verifier.json").write_text(json.dumps({"model": model, "seed": seed, "settings": cfg, "metrics": m},
                                                  indent=1, default=str) + "\n")
    return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the checkpoint to teach (the CLR stage's model)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="KEY=YAML", help="a clr preset key (teach_lr=4e-3, ...)")
    p.add_argument("--out", required=True, help="output folder (teach/ and verifier.json)")
    args = p.parse_args(argv)
    m = run(args.model, preset=args.preset, seed=args.seed, sets=_sets(args.set), out_dir=args.out)
    print(f"verifier on {m['verifier_n']} held-out claims: accuracy {m['verifier_acc']:.3f} [{m['verifier_acc_lo']:.3f}, "
          f"{m['verifier_acc_hi']:.3f}], recall valid {m['verifier_recall_valid']:.3f}, invalid "
          f"{m['verifier_recall_invalid']:.3f}, unreadable {m['verifier_unreadable']:.3f}; taught "
          f"{m['taught_verify']} claims, {m['taught_solve']} solutions, {m['taught_extract']} extractions in "
          f"{m['teach_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
