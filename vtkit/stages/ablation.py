"""The pipeline ablation (notebooks/12_pipeline_ablation.ipynb): what each part of Spectrum-to-Signal buys
at equal training compute, for one seed.

    from vtkit.stages import ablation
    res = ablation.run(ablation.Config.from_preset("tiny", seed=0), "runs/ablation")
    res.metrics["plain_minus_full/math/mean@4"]      # the plain recipe minus the full chain, this seed
    python -m vtkit.stages.ablation --preset tiny --out-dir runs/ablation --set "arms=[full,plain]"

Arms (`ARMS`), each a chain of the kit's own stages (sft, merge, rl, distill) run with the preset's
settings and the `sft` / `merge` / `rl` / `distill` overrides of this config:
  full        two-stage SFT -> spectrum merge -> MGPO (`rl_steps`) -> self-distillation into the merged model
  plain       one-stage SFT on the same data -> GRPO (lambda 0) on the same prompts, for more steps
  sft_only    one-stage SFT for more epochs
  no_stage2   one-stage SFT for more epochs -> merge of its checkpoints -> MGPO -> self-distillation
  no_merge    two-stage SFT -> the last checkpoint -> MGPO -> self-distillation into it
  grpo        two-stage SFT -> merge -> GRPO (lambda 0) -> self-distillation
  no_distill  two-stage SFT -> merge -> MGPO for more steps
Arms that share a prefix share its run (one SFT, one merge for full, no_merge, grpo and no_distill).

Equal compute. An arm's compute is the FLOPs its stages spent making its model (`vtkit.compute`):
train_flops + gen_flops - gen_flops_eval of each stage, so training, rollouts, filters and learning-
potential scoring count, held-out evaluation does not (the merge stage's checkpoint probe is evaluation
there, so merging costs 0). The full arm runs first; each other arm then gets the one knob the arm
leaves free, set from the full arm's measured costs in the same seed, so that its total matches:
  sft_only, no_stage2: stage-1 epochs = epochs1 x (budget / one-stage SFT's FLOPs), where the budget is
      the full arm's total (sft_only) or its SFT's (no_stage2: stage 2's compute moves into stage 1);
  plain, no_distill: RL steps = rl_steps + (the compute the arm leaves out) / (full RL's FLOPs per step).
What a chain spends after its knob depends on the model it trains (RL trains only rows with a non-zero
advantage, self-distillation only verified traces), so an arm whose total misses the full chain's by more
than `match_tol` runs its RL once more (`<rl>_topup`, then its self-distillation) with the steps moved by
the shortfall over that RL run's own FLOPs per step (`<arm>/topped_up`). `<arm>/flops_ratio` (the arm's
over the full chain's) says how close each came; a miss that remains is printed.

The measure: every arm's final model on the RL stage's held-out problems (`n_heldout`, `heldout_split`,
fixed by `data_seed` across seeds) under its protocol (mean@`eval_samples` at `eval_temperature`,
top_p 0.95), read from the stages' own evaluations (the RL start and final, self-distillation's before
and after; sft_only's model is evaluated here the same way). Paired differences per seed, bootstrap over
problems: `<arm>_minus_full/...` and `<arm>_minus_plain/...`; over seeds `vtkit compare`.
Writes metrics.json, arms.json (each arm's stages, FLOPs and accuracy after each stage: the curve of
accuracy against cumulative compute) and fig_ablation (PDF + PNG). Sub-stages write their own folders.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from vtkit import runinfo
from vtkit.stages import base

ARMS = ("full", "plain", "sft_only", "no_stage2", "no_merge", "grpo", "no_distill")
STAGE_KEYS = ("sft", "merge", "rl", "distill")
DOMAIN = "math"


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "ablation"

    arms: list                      # arms to run (ARMS); the full arm always runs (the others are matched to it)
    rl_steps: int                   # the full arm's RL steps (max_steps of its one phase)
    sft: dict                       # overrides of the sft preset for every arm's SFT
    merge: dict                     # overrides of the merge preset
    rl: dict                        # overrides of the rl preset (phases, held-out size, evaluation)
    distill: dict                   # overrides of the distill preset
    match_tol: float                # an arm's FLOPs within this fraction of the full arm's, else a warning line


@dataclass
class Result(base.StageResult):
    arms: dict = field(default_factory=dict)     # arm -> {"stages": [...], "flops": [...], "acc": [...], ...}
    finals: dict = field(default_factory=dict)   # arm -> EvalResult of its final model
    figure: Any = None


def recipe_flops(metrics: dict) -> float:
    """The FLOPs a stage spent making its model: training, sampling and scoring, not held-out evaluation."""
    return float(metrics.get("train_flops", 0.0) + metrics.get("gen_flops", 0.0) - metrics.get("gen_flops_eval", 0.0))


def check(cfg: Config) -> None:
    unknown = [a for a in cfg.arms if a not in ARMS]
    if unknown:
        raise base.ConfigError(f"ablation: unknown arm(s) {unknown}; choose from {list(ARMS)}")
    if cfg.rl_steps < 1:
        raise base.ConfigError(f"ablation: rl_steps = {cfg.rl_steps}; the full arm needs at least 1 RL step")
    for k in STAGE_KEYS:
        stage_cls = _stage(k).Config
        stage_cls._unknown(getattr(cfg, k) or {}, f"{k} override(s) of the ablation")


def _stage(name: str):
    from vtkit import stages
    return stages.get(name)


class _Runner:
    """Runs each distinct sub-stage once (by name) and keeps its result."""

    def __init__(self, cfg: Config, out: Path):
        self.cfg, self.out, self.done, self.settings = cfg, out, {}, {}

    def __call__(self, name: str, stage: str, **settings):
        if name not in self.done:
            self.settings[name] = (stage, settings)
            mod = _stage(stage)
            over = {**(getattr(self.cfg, stage) or {}), **settings}
            sub = mod.Config.from_preset(self.cfg.preset, seed=self.cfg.seed, overrides=over)
            t = time.time()
            print(f"\n=== {name} ({stage}) ===")
            self.done[name] = mod.run(sub, self.out / name)
            print(f"=== {name}: {time.time() - t:.0f} s, {recipe_flops(self.done[name].metrics):.3g} FLOPs")
        return self.done[name]

    def flops(self, name: str) -> float:
        return recipe_flops(self.done[name].metrics)


def _rl(run: _Runner, name: str, init: str, mgpo_lambda: float, steps: int):
    return run(name, "rl", init_model=str(run.out / init / "model"), mgpo_lambda=mgpo_lambda, max_steps=int(steps))


def _distill(run: _Runner, name: str, rl_name: str, student: str):
    return run(name, "distill", rl_dir=str(run.out / rl_name), student=str(run.out / student / "model"))


def _heldout_eval(cfg: Config, run: _Runner, model_dir: Path):
    """The RL stage's held-out protocol on a model no RL stage evaluated (sft_only)."""
    from vtkit import compute, evaluation, models
    from vtkit.stages import rl as rl_stage
    rcfg = rl_stage.Config.from_preset(cfg.preset, seed=cfg.seed, overrides=cfg.rl)
    _, heldout = rl_stage.phase_data(rcfg)
    proto = evaluation.sampled(rcfg.eval_samples, rcfg.eval_temperature, rcfg.max_completion_length, seed=cfg.seed)
    with compute.evaluation():
        return evaluation.evaluate(models.load(str(model_dir)), heldout[DOMAIN], proto)


def _steps_for(extra: float, per_step: float, base_steps: int) -> int:
    return max(1, base_steps + int(round(extra / per_step)))


def _epochs_for(budget: float, flops: float, epochs: float) -> float:
    return round(epochs * budget / flops, 2)


def run(cfg: Config, out_dir) -> Result:
    check(cfg)
    T0 = time.time()
    out = base.start(cfg, out_dir)
    run = _Runner(cfg, out)
    scfg = _stage("sft").Config.from_preset(cfg.preset, seed=cfg.seed, overrides=cfg.sft)
    T, wanted = cfg.rl_steps, set(cfg.arms) | {"full"}

    # one-stage SFT first: its cost per stage-1 epoch prices the SFT knobs; the plain arm's SFT
    run("sft_one_stage", "sft", epochs2=0)
    run("sft", "sft")
    run("merge", "merge", sft_dir=str(out / "sft"))
    _rl(run, "rl_mgpo", "merge", 1.0, T)
    _distill(run, "distill", "rl_mgpo", "merge")
    per_step = run.flops("rl_mgpo") / T
    f_one = run.flops("sft_one_stage")
    chains = {"full": ["sft", "merge", "rl_mgpo", "distill"]}
    budget = sum(run.flops(s) for s in chains["full"])

    if "plain" in wanted:   # the compute of stage 2 and self-distillation goes into more GRPO steps
        steps = _steps_for(budget - f_one - run.flops("rl_mgpo"), per_step, T)
        _rl(run, "rl_plain", "sft_one_stage", 0.0, steps)
        chains["plain"] = ["sft_one_stage", "rl_plain"]
    if "sft_only" in wanted:
        run("sft_only", "sft", epochs2=0, epochs1=_epochs_for(budget, f_one, scfg.epochs1))
        chains["sft_only"] = ["sft_only"]
    if "no_stage2" in wanted:   # stage 2's compute moves into stage 1
        run("sft_no_stage2", "sft", epochs2=0, epochs1=_epochs_for(run.flops("sft"), f_one, scfg.epochs1))
        run("merge_no_stage2", "merge", sft_dir=str(out / "sft_no_stage2"), stages=["stage1"])
        _rl(run, "rl_no_stage2", "merge_no_stage2", 1.0, T)
        _distill(run, "distill_no_stage2", "rl_no_stage2", "merge_no_stage2")
        chains["no_stage2"] = ["sft_no_stage2", "merge_no_stage2", "rl_no_stage2", "distill_no_stage2"]
    if "no_merge" in wanted:
        _rl(run, "rl_no_merge", "sft", 1.0, T)
        _distill(run, "distill_no_merge", "rl_no_merge", "sft")
        chains["no_merge"] = ["sft", "rl_no_merge", "distill_no_merge"]
    if "grpo" in wanted:
        _rl(run, "rl_grpo", "merge", 0.0, T)
        _distill(run, "distill_grpo", "rl_grpo", "merge")
        chains["grpo"] = ["sft", "merge", "rl_grpo", "distill_grpo"]
    if "no_distill" in wanted:
        _rl(run, "rl_no_distill", "merge", 1.0, _steps_for(run.flops("distill"), per_step, T))
        chains["no_distill"] = ["sft", "merge", "rl_no_distill"]

    topped = {arm: _top_up(arm, chains, run, budget, cfg.match_tol) for arm in list(chains) if arm != "full"}
    from vtkit import compute
    compute.reset()   # the sub-stages counted their own work (their metrics.json); from here, this stage's
    extra = {}
    if "sft_only" in chains:
        extra["sft_only"] = _heldout_eval(cfg, run, out / "sft_only" / "model")
    own = compute.metrics()
    arms, finals = {}, {}
    for arm in [a for a in ARMS if a in chains]:
        arms[arm], finals[arm] = _curve(arm, chains[arm], run, extra.get(arm))
    metrics = _metrics(arms, finals, budget, cfg)
    metrics.update({f"{arm}/topped_up": int(t) for arm, t in topped.items()})
    for arm, a in arms.items():
        ratio = a["flops_total"] / budget
        miss = "" if abs(ratio - 1) <= cfg.match_tol else f"  <- outside +-{cfg.match_tol:.0%}"
        print(f"{arm:10s} {finals[arm].describe()}  FLOPs {a['flops_total']:.3g} ({ratio:.3f} x full){miss}")
    metrics["wall_s"] = time.time() - T0
    runinfo.write_json(out / "arms.json", arms)
    fig = figure(arms, out / "fig_ablation", title=f"pipeline ablation, seed {cfg.seed}")
    # the work of every sub-stage run (each once) and of this stage's own evaluation
    metrics.update({k: own[k] + sum(r.metrics.get(k, 0) for r in run.done.values()) for k in compute.KEYS})
    runinfo.write_metrics(out, metrics)
    return Result(out_dir=out, metrics=metrics, arms=arms, finals=finals, figure=fig)


def _top_up(arm: str, chains: dict, run: _Runner, budget: float, tol: float) -> bool:
    """One correction of an arm whose total missed the full chain's by more than `tol`: what a chain spends
    after its priced knob depends on the model it trains (RL trains only rows with a non-zero advantage,
    self-distillation only verified traces), so the arm's RL runs again (`<rl>_topup`) with its steps moved
    by the shortfall over that run's own FLOPs per step, and its self-distillation after it. Returns whether
    it ran; `chains[arm]` then names the new runs."""
    chain = chains[arm]
    total = sum(run.flops(s) for s in chain)
    rl = next((s for s in chain if s.startswith("rl_")), None)
    if abs(total / budget - 1) <= tol or rl is None:
        return False
    stage, settings = run.settings[rl]
    steps = settings["max_steps"]
    new = _steps_for(budget - total, run.flops(rl) / steps, steps)
    print(f"{arm}: {total / budget:.3f} x the full chain's FLOPs, outside +-{tol:.0%}: {rl} again with {new} steps "
          f"(was {steps})")
    run(f"{rl}_topup", stage, **{**settings, "max_steps": new})
    chain = [f"{rl}_topup" if s == rl else s for s in chain]
    for i, s in enumerate(chain):
        if s.startswith("distill"):
            d_stage, d_settings = run.settings[s]
            chain[i] = f"{s}_topup"
            run(chain[i], d_stage, **{**d_settings, "rl_dir": str(run.out / f"{rl}_topup")})
    chains[arm] = chain
    return True


def _curve(arm: str, chain: list[str], run: _Runner, extra=None) -> tuple[dict, Any]:
    """The arm's stages, cumulative FLOPs after each and the held-out accuracy of the model it left, where
    a stage measured it (RL: start and final; self-distillation: before and after)."""
    flops, acc, cum = [], [], 0.0
    final = extra
    for name in chain:
        res = run.done[name]
        cum += run.flops(name)
        r = None
        if name.startswith("rl_"):
            if not acc or acc[-1] is None:   # the RL start measures the model the previous stages left
                acc[-1:] = [res.start[DOMAIN].acc] if acc else []
            r = res.final[DOMAIN]
        elif name.startswith("distill"):
            r = res.after[DOMAIN]
        flops.append(cum)
        acc.append(r.acc if r is not None else None)
        final = r if r is not None else final
    if final is None:
        raise RuntimeError(f"arm {arm}: no stage of {chain} measured its final model")
    acc[-1] = final.acc
    return {"stages": chain, "flops": flops, "acc": acc, "flops_total": cum,
            "acc_lo": final.interval[0], "acc_hi": final.interval[1]}, final


def _metrics(arms: dict, finals: dict, budget: float, cfg: Config) -> dict:
    from vtkit import evaluation
    m = {"flops_full": budget}
    for arm, a in arms.items():
        r = finals[arm]
        m.update({f"{arm}/{DOMAIN}/{k}": v for k, v in r.flat("", keys=[r.headline]).items()})
        m[f"{arm}/flops"] = a["flops_total"]
        m[f"{arm}/flops_ratio"] = a["flops_total"] / budget
    for ref in ("full", "plain"):
        if ref not in finals:
            continue
        for arm, r in finals.items():
            if arm == ref:
                continue
            g = evaluation.paired_gain(finals[ref], r, seed=cfg.seed)
            head = finals[ref].headline
            m.update({f"{arm}_minus_{ref}/{DOMAIN}/{head}{k[4:]}": v for k, v in g.items()})
    return m


def figure(arms: dict, path=None, title: str = ""):
    """Held-out accuracy against cumulative compute, one line per arm (points: the stages that measured)."""
    from vtkit import plots
    plots.use_style()
    fig, ax = plots.figure("single")
    for arm, a in arms.items():
        pts = [(f, y) for f, y in zip(a["flops"], a["acc"]) if y is not None]
        ax.plot(*zip(*pts), marker="o", ms=3, label=arm, lw=2 if arm == "full" else 1)
    ax.set(xlabel="cumulative training FLOPs (evaluation excluded)", ylabel=f"held-out {DOMAIN} mean@k",
           xscale="log", title=title)
    ax.legend(fontsize="x-small")
    if path is not None:
        plots.savefig(fig, path, close=True)
    return fig


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))
