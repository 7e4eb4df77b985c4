"""Stage distill (notebook 04): offline self-distillation from the RL phase checkpoints (3B report).

    from vtkit.stages import distill
    cfg = distill.Config.from_preset("tiny", seed=0, rl_dir="runs/rl", student="runs/sft/model")
    res = distill.run(cfg, "runs/04_self_distill")   # res.metrics, res.before / res.after, res.figure

    python -m vtkit.stages.distill --preset tiny --out-dir runs/04_self_distill --set rl_dir=runs/rl

The protocol (docs/method.md, "Offline self-distillation"):
1. teachers: every phase checkpoint of the RL stage (`rl_dir/phases/<phase>/model`); standalone
   (rl_dir None) the RL preset's start model stands in for each of its phases. The student:
   `student`, or standalone the RL preset's start. Prompts (`n_prompts` per domain, `data_seed`,
   other problems than the RL prompts) and held-out problems (the RL stage's `n_heldout` and
   `data_seed`, test split) use the RL stage's task settings (its config.json, else its preset);
2. rejection sampling: `n_samples` draws per prompt at `temperature` from each phase's checkpoint
   on its own domain, only verifier-accepted, distinct traces kept (`vtkit.distill.collect_verified`);
3. learning potential of each trace under the student, the band (`min_tokens`,
   `n_length_buckets`, `low_q`, `high_q`; `vtkit.distill.band_mask`), `traces.jsonl` (every trace
   with its score, bucket and reason) and the figure `lp_band.pdf/png`; for math, the share of
   faithful traces (`vtkit.faithful`: right arithmetic on the problem's numbers, boxed answer = the
   trace's result) among all verified traces and among the kept ones
   (`select/math/faithful_verified`, `select/math/faithful_kept`, with `_lo`/`_hi`);
4. held-out accuracy of the student under the RL stage's protocol (`eval_samples` at
   `eval_temperature`), SFT on the kept band (`epochs`, `lr`, `batch_size`, `max_length`), held-out
   accuracy again, the paired gain per domain; for math also the held-out samples' faithful share
   before and after (`math/before/faithful`, `math/after/faithful`, with `_lo`/`_hi`; the same
   samples, no extra sampling); the student as `model/`, `metrics.json`.
The report gives no thresholds, sample counts or epochs; every value is in vtkit/presets/distill.yaml.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vtkit.stages import base
from vtkit.stages import rl as rl_stage


FAITHFUL_DOMAINS = {"math"}   # domains whose traces vtkit.faithful can check (arithmetic steps)


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "distill"

    generation: dict                # the kit's own sampling backend (vtkit.generate.configure, set by base.start)
    report_to: str                  # experiment tracker (transformers' report_to): none or tensorboard
    rl_dir: str | None              # the RL stage's out_dir (phases/<phase>/model teach); None = its start model
    student: str | None             # the student checkpoint (the SFT stage's model); None = the RL preset's start
    data_seed: int                  # seed of the distillation prompts (other problems than the RL prompts)
    n_prompts: int | dict           # prompts per teacher domain (or {domain: n})
    n_samples: int                  # rejection-sampling draws per prompt
    temperature: float              # sampling temperature of the draws
    max_new_tokens: int             # tokens per draw
    min_tokens: int                 # traces shorter than this are dropped
    n_length_buckets: int           # equal-count length buckets per domain; the band is ranked within each
    low_q: float                    # kept band: score quantiles [low_q, high_q] within each bucket
    high_q: float                   # above high_q: extreme outliers, dropped
    epochs: float                   # SFT epochs on the kept band
    heldout_split: str                # "test" for the reported numbers, "validation" for choosing settings (screens)
    lr: float                       # SFT peak learning rate
    batch_size: int                 # SFT batch size
    micro_batch: int | None         # SFT rows a GPU holds per forward/backward (vtkit.batching); None = batch_size / processes
    score_batch_size: int           # traces per forward of the learning-potential scoring
    max_length: int                 # SFT maximum sequence length in tokens

    def context_needs(self) -> list[tuple]:
        return [(self.student, self.max_length, "max_length")]


@dataclass
class Result(base.StageResult):
    model: Any = None                                  # the distilled student
    tokenizer: Any = None
    teachers: dict = field(default_factory=dict)       # phase -> checkpoint folder (None: the start model)
    traces: Any = None                                 # band_mask's frame: every trace with lp, bucket, reason
    report: Any = None                                 # select_band's report per domain x length bucket
    before: dict = field(default_factory=dict)         # domain -> EvalResult of the student before SFT
    after: dict = field(default_factory=dict)          # domain -> EvalResult after SFT on the kept band
    gains: dict = field(default_factory=dict)          # domain -> paired gain (gain, gain_lo, gain_hi)
    figure: Any = None                                 # lp_band: scores against length, the band per bucket


def band_settings(cfg: Config) -> dict:
    """The keywords of `vtkit.distill.band_mask` / `select_band` that come from the config."""
    return dict(min_tokens=cfg.min_tokens, n_length_buckets=cfg.n_length_buckets, low_q=cfg.low_q, high_q=cfg.high_q)


def teachers(cfg: Config, rl_cfg: rl_stage.Config) -> dict:
    """{phase: checkpoint folder}: the RL stage's phase checkpoints, or {phase: None} standalone."""
    from vtkit import distill
    if cfg.rl_dir:
        found = distill.find_teachers(cfg.rl_dir)
        print(f"teachers: {found}")
        return found
    print("standalone (no rl_dir): the RL preset's start model stands in for every phase checkpoint")
    return {ph: None for ph in rl_cfg.phases}


def gain_metrics(domain: str, before, after, seed: int) -> tuple[dict, dict]:
    """(metrics, paired gain) of one domain: its headline before and after, and the paired gain
    (`<domain>/heldout_gain[_lo|_hi]`, bootstrap over the held-out items)."""
    from vtkit import evaluation
    g = evaluation.paired_gain(before, after, seed=seed)
    return {**before.flat(f"{domain}/before/", keys=[before.headline]),
            **after.flat(f"{domain}/after/", keys=[after.headline]),
            **{f"{domain}/heldout_{k}": v for k, v in g.items()}}, g


def faithful_metrics(domain: str, records: list, before, after) -> dict:
    """`<domain>/before/faithful` and `<domain>/after/faithful` (+ `_lo`/`_hi`): the share of the
    held-out samples' traces that are faithful (vtkit.faithful), before and after SFT, read from the
    samples the accuracy was graded on. Math only (FAITHFUL_DOMAINS)."""
    from vtkit import faithful
    out = {}
    for when, res in (("before", before), ("after", after)):
        f = faithful.from_eval(records, res)
        out.update({f"{domain}/{when}/{k}": f[k] for k in ("faithful", "faithful_lo", "faithful_hi")})
    return out


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def run(cfg: Config, out_dir) -> Result:
    import matplotlib.pyplot as plt
    import pandas as pd

    from vtkit import batching, distill, evaluation, hubdata, models, rl_phase, train

    T0 = time.time()
    out = base.start(cfg, out_dir)
    seed = cfg.seed
    # the RL stage's task settings (its config.json), so prompts and held-out problems match its domains
    rl_cfg = base.upstream_config(rl_stage.Config, cfg.rl_dir, cfg.preset)
    teach = teachers(cfg, rl_cfg)
    if cfg.student:
        student, tok = models.load(cfg.student, context=cfg.context_for(cfg.student))
        print(f"student: {cfg.student}")
    else:
        student, tok, _ = train.preset_start(rl_cfg, seed=seed)
        print("standalone (no student): the RL preset's start model is the student")
    domains = list(dict.fromkeys(rl_phase.phase_spec(p).domain for p in teach))
    spec = {d: rl_cfg.tasks[d] for d in domains}
    prompts = hubdata.make_groups(rl_cfg.hub_data, spec, cfg.n_prompts, seed=cfg.data_seed)   # the RL stage's data source
    heldout = hubdata.make_groups(rl_cfg.hub_data, spec, rl_cfg.n_heldout, seed=rl_cfg.data_seed, split=cfg.heldout_split)
    print(f"[{time.time() - T0:.0f} s]")

    # rejection sampling from each phase checkpoint on its own domain
    t = time.time()
    frames, metrics = [], {}
    for ph, path in teach.items():
        d = rl_phase.phase_spec(ph).domain
        teacher, ttok = models.load(path) if path else train.preset_start(rl_cfg, seed=seed)[:2]
        df, rep = distill.collect_verified(teacher, ttok, prompts[d], n=cfg.n_samples, temperature=cfg.temperature,
                                           max_new_tokens=cfg.max_new_tokens, seed=seed, source=ph)
        frames.append(df)
        metrics.update(distill.collect_metrics(ph, rep))
        print(f"{ph:10s} ({d}): {rep['n_correct']} of {rep['n_samples']} samples verified, {rep['n_distinct']} "
              f"distinct traces on {rep['n_prompts_with_trace']} of {rep['n_prompts']} prompts")
    traces = pd.concat(frames, ignore_index=True)
    print(f"{len(traces)} traces  [{time.time() - t:.0f} s]")

    # learning potential under the student, and the band
    t = time.time()
    if not len(traces):
        raise RuntimeError("no verified traces: the teachers solved nothing; train the earlier stages longer")
    traces["lp"] = distill.learning_potential(student, tok, traces["prompt"], traces["completion"],
                                              batch_size=cfg.score_batch_size)
    mask = distill.band_mask(traces, **band_settings(cfg))
    kept, report = distill.select_band(traces, **band_settings(cfg))
    mask.to_json(out / "traces.jsonl", orient="records", lines=True)
    print(report.to_string(index=False))
    metrics.update(distill.band_metrics(mask, domains))
    for d in [d for d in domains if d in FAITHFUL_DOMAINS]:
        f = distill.faithful_metrics(mask, prompts[d], domain=d)
        metrics.update(f)
        print(f"{d}: faithful traces {_fmt(f[f'select/{d}/faithful_verified'])} of the verified, "
              f"{_fmt(f[f'select/{d}/faithful_kept'])} of the kept")
    fig = distill.plot_band(mask, out / "lp_band")
    plt.close(fig)   # the notebook shows res.figure
    print(f"kept {len(kept)} of {len(traces)} traces  [{time.time() - t:.0f} s]")

    # fine-tune the student on the kept band; held-out accuracy before and after (the RL stage's protocol)
    t = time.time()
    EVAL = evaluation.sampled(rl_cfg.eval_samples, rl_cfg.eval_temperature, rl_cfg.max_completion_length, seed=seed)
    before = {d: evaluation.evaluate((student, tok), heldout[d], EVAL) for d in domains}
    if len(kept):
        student, _ = train.sft(student, tok, distill.to_records(kept), out / "sft", epochs=cfg.epochs, lr=cfg.lr,
                               **batching.sft_args(cfg.batch_size, 1, cfg.micro_batch), max_length=cfg.max_length,
                               seed=seed,
                               report_to=cfg.report_to)
    after = {d: evaluation.evaluate((student, tok), heldout[d], EVAL) for d in domains}
    models.save(student, tok, out / "model")
    gains = {}
    for d in domains:
        b, a = before[d], after[d]
        m, gains[d] = gain_metrics(d, b, a, seed)
        metrics.update(m)
        g = gains[d]
        print(f"{d:5s} held-out {b.describe()} -> {a.describe()}; paired gain {g['gain']:+.3f} "
              f"[{g['gain_lo']:+.3f}, {g['gain_hi']:+.3f}]")
        if d in FAITHFUL_DOMAINS:
            f = faithful_metrics(d, heldout[d], b, a)
            metrics.update(f)
            print(f"{d:5s} held-out faithful traces {f[f'{d}/before/faithful']:.3f} -> {f[f'{d}/after/faithful']:.3f}")
        arith = evaluation.arith_metrics(f"{d}/", heldout[d], a, start=b, seed=seed)
        metrics.update(arith)
        if arith:
            print(f"{d:5s} " + evaluation.arith_line(f"{d}/", arith))
    metrics["wall_s"] = time.time() - T0
    base.finish(out, metrics)
    print(f"[{time.time() - t:.0f} s]  total {time.time() - T0:.0f} s")
    return Result(out_dir=out, metrics=metrics, model=student, tokenizer=tok, teachers=teach, traces=mask,
                  report=report, before=before, after=after, gains=gains, figure=fig)


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))
