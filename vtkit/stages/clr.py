"""The CLR stage (notebooks/06_clr.ipynb): Claim-Level Reliability vs majority vote vs mean@1 against K.

    from vtkit.stages import clr
    cfg = clr.Config.from_preset("tiny", seed=0, model="runs/distill/model")
    res = clr.run(cfg, "runs/clr")      # res.metrics["clr@8"], res.per_k, res.verifier, res.diagnostics

    python -m vtkit.stages.clr --preset tiny --out-dir runs/clr --set model=runs/distill/model

`run` samples max(K) trajectories per test problem from the model under test, teaches it to verify
claims when `teach` is set (tiny: the model never saw the request; `vtkit.clr.training_conversations`),
checks the verifier on held-out labelled claims (`verifier_acc` etc., Wilson intervals; apart on claims
whose arithmetic was never taught, `verifier_acc_novel`, beside a lookup table, `verifier_lookup_acc`), then scores
CLR, majority vote and mean@1 on the same R subsamples of K (`vtkit.clr.run_clr`). Writes
metrics.json, samples.jsonl, verifier_held_out.jsonl, clr_items.jsonl, fig_clr (PDF + PNG), and the
teaching run under teach/. The protocol and its departures from the report are in `vtkit.clr` and
the notebook.

`difficulty` and `task_kw` (the test problems' tasks.make keywords) come, in this order, from a
value given to `Config.from_preset` (named or in `overrides`), the stage config saved beside the
checkpoint (`trained_on`: a model trained on mod-7 additions is tested on them), or the preset.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from vtkit import clr, evalsets, evaluation, generate, models, plots, presets, runinfo, train
from vtkit.stages import base


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "clr"

    generation: dict                # the kit's own sampling backend (vtkit.generate.configure, set by base.start)
    report_to: str                    # experiment tracker for the teaching run ("none", "tensorboard")
    model: str                        # the model under test: a spec or a checkpoint folder
    task: str                         # "math" (vtkit), "gym:<reasoning-gym name>", or an evalsets benchmark
    difficulty: int | list | None     # of the test (and teaching) problems; see the module docstring
    task_kw: dict | None              # tasks.make keywords of the problems (mod, subdomain, ...)
    n_problems: int | None            # test problems (None: every item of a benchmark)
    K: list                           # subsample sizes; max(K) trajectories are drawn per problem
    M: int                            # claims per trajectory
    R: int                            # repetitions of the K-subsampling
    temperature: float                # sampling temperature of the trajectories
    top_p: float                      # nucleus sampling of the trajectories
    max_new_tokens: int               # trajectory length cap
    extract: str                      # "model" (the model lists its claims) or "lines" (computation lines)
    extract_tokens: int               # max new tokens of an extraction reply
    verify_tokens: int                # max new tokens of a verdict reply
    teach: bool                       # fine-tune verification (and extraction) before CLR
    verify_prompt: str                # "problem" (claim with its problem) or "claim" (the claim alone)
    teach_records: int                # train problems -> solving conversations (+ extractions)
    teach_extract_per_record: int     # extraction examples per teaching record
    teach_verify_records: int         # other train problems to draw labelled claims from (0: teach_records)
    teach_verify_per_record: int      # labelled claims per verification record
    teach_recompute: str              # the <think> before a verdict: "arithmetic" or "reference"
    teach_epochs: float               # teaching epochs
    teach_lr: float                   # teaching learning rate
    teach_batch_size: int             # teaching batch size
    teach_max_length: int             # teaching rows' token cap
    teach_length_buckets: int | None  # batch rows of similar length (None: vtkit.train packs)
    held_out_records: int             # held-out problems -> labelled claims for the verifier's accuracy
    heldout_split: str                # "test" for the reported numbers, "validation" for choosing settings (screens)
    data_path: str | None             # a benchmark's local copy (evalsets)

    @classmethod
    def from_preset(cls, preset: str = "tiny", seed: int = 0, overrides: dict | None = None, **named) -> "Config":
        """base.StageConfig.from_preset, then difficulty and task_kw from the checkpoint's stage
        config where they were not given (named or in overrides) and it names the task."""
        cfg = super().from_preset(preset, seed=seed, overrides=overrides, **named)
        given = {k for k in ("difficulty", "task_kw") if named.get(k) is not None or k in (overrides or {})}
        found_d, found_kw = trained_on(cfg.model, cfg.task)
        if (found_d, found_kw) != (None, None):
            print(f"the checkpoint's stage trained on {cfg.task} difficulty {found_d}, {found_kw}")
        difficulty = cfg.difficulty if "difficulty" in given or found_d is None else found_d
        task_kw = cfg.task_kw if "task_kw" in given or found_kw is None else found_kw
        return cfg.replace(difficulty=difficulty, task_kw=task_kw or {})

    def context_needs(self) -> list[tuple]:
        from vtkit import context
        gen = context.PROMPT_TOKENS + self.max_new_tokens
        return [(self.model, gen + (self.extract_tokens if self.extract == "model" else 0),
                 "prompt + max_new_tokens (+ extract_tokens: the trajectory is the extraction's prompt)")]


@dataclass
class Result(base.StageResult):
    K: list = field(default_factory=list)             # the subsample sizes, sorted
    per_k: list = field(default_factory=list)         # per K: clr, majority, mean1 with _lo/_hi
    verifier: dict = field(default_factory=dict)      # held-out verifier accuracy and recalls ({} if none)
    diagnostics: dict = field(default_factory=dict)   # clr.diagnostics on the model's own trajectories
    items: list = field(default_factory=list)         # per problem: answers, claims, verdicts, scores


def trained_on(model_path, task_name: str) -> tuple:
    """(difficulty, tasks.make keywords) that the checkpoint's stage config (config.json beside the
    model folder) names for the task: the RL stage's `tasks: {math: {...}}`, or a stage's `domain` +
    `difficulty` + `task_kw` (quickstart, SFT); (None, None) when there is none (a model spec)."""
    if not model_path or not Path(model_path).is_dir() or not (Path(model_path).parent / "config.json").is_file():
        return None, None
    stage = json.loads((Path(model_path).parent / "config.json").read_text())
    spec = (stage.get("tasks") or {}).get(task_name) if isinstance(stage.get("tasks"), dict) else None
    if isinstance(spec, dict):
        kw = dict(spec)
        return kw.pop("difficulty", None), kw
    if stage.get("domain") == task_name:
        return stage.get("difficulty"), stage.get("task_kw")
    return None, None


def task_records(cfg: Config, n: int | None, split: str, seed: int) -> list[dict]:
    """Records of the task: vtkit domain, reasoning-gym dataset, or benchmark (test items only)."""
    name, bench = cfg.task, cfg.task in evalsets.NAMES
    if bench and split != "test":
        raise ValueError(f"benchmark {name!r} has no training traces to teach CLR from; set teach=False")
    difficulty = tuple(cfg.difficulty) if isinstance(cfg.difficulty, list) else cfg.difficulty
    records, _ = evaluation.task_set(name, n=n, seed=seed, difficulty=difficulty, split=split,
                                     options=None if bench else cfg.task_kw,
                                     data_path=cfg.data_path if bench else None, max_items=n if bench else None)
    return records


def teach_verifier(lm, tok, cfg: Config, out: Path):
    """The model fine-tuned on CLR's extraction and verification requests (clr.training_conversations
    from train problems: solving conversations of teach_records, labelled claims of
    teach_verify_records); returns the taught model and the labelled claims it was taught
    ({claim, label} rows, for check_verifier's seen/novel split)."""
    seed = cfg.seed
    teach_recs = task_records(cfg, cfg.teach_records, "train", seed + 1)
    verify_recs = (task_records(cfg, cfg.teach_verify_records, "train", seed + 3)   # short claims: many
                   if cfg.teach_verify_records else None)                         # None: teach_recs
    convs = clr.training_conversations(teach_recs, seed=seed, M=cfg.M, solve_per_record=1,
                                       extract_per_record=cfg.teach_extract_per_record,
                                       verify_per_record=cfg.teach_verify_per_record,
                                       verify_records=verify_recs, recompute=cfg.teach_recompute,
                                       verify_prompt=cfg.verify_prompt)
    print("teaching on", {k: convs["kind"].count(k) for k in ("extract", "verify", "solve")})
    lm, log = train.sft(lm, tok, convs, out / "teach", epochs=cfg.teach_epochs, lr=cfg.teach_lr,
                        batch_size=cfg.teach_batch_size, max_length=cfg.teach_max_length, seed=seed,
                        report_to=cfg.report_to, length_buckets=cfg.teach_length_buckets)
    curve = train.loss_curve(log)
    print(f"teach loss {curve[0][1]:.3f} -> {curve[-1][1]:.3f}" if curve else "teach: no loss logged")
    taught = [{"claim": c, "label": y} for k, c, y in zip(convs["kind"], convs["claim"], convs["label"]) if k == "verify"]
    return lm, taught


VERIFIER_LINE = ("verifier on {verifier_n} held-out claims: accuracy {verifier_acc:.3f} [{verifier_acc_lo:.3f}, "
                 "{verifier_acc_hi:.3f}], recall valid {verifier_recall_valid:.3f} [{verifier_recall_valid_lo:.3f}, "
                 "{verifier_recall_valid_hi:.3f}], invalid {verifier_recall_invalid:.3f} "
                 "[{verifier_recall_invalid_lo:.3f}, {verifier_recall_invalid_hi:.3f}], unreadable "
                 "{verifier_unreadable:.3f}")


NOVEL_LINE = ("  new arithmetic: {verifier_n_novel} claims, accuracy {verifier_acc_novel:.3f} [{verifier_acc_novel_lo:.3f}, "
              "{verifier_acc_novel_hi:.3f}]; taught arithmetic: {verifier_n_seen} claims, accuracy {verifier_acc_seen:.3f} "
              "[{verifier_acc_seen_lo:.3f}, {verifier_acc_seen_hi:.3f}]; lookup table {verifier_lookup_acc:.3f}")


def check_verifier(lm, tok, cfg: Config, out: Path, taught: list | None = None) -> dict:
    """The verifier's accuracy on held-out labelled claims (clr.verifier_accuracy, Wilson intervals),
    also apart on claims whose arithmetic string was among the `taught` claims and on new arithmetic,
    with the lookup-table baseline (clr.seen_novel_accuracy; taught None or []: nothing taught, every
    claim is new); each claim, its arithmetic, whether it was seen, reply and verdict in
    verifier_held_out.jsonl. {} when held_out_records is 0."""
    if not cfg.held_out_records:
        return {}
    held = clr.verification_examples(task_records(cfg, cfg.held_out_records, cfg.heldout_split, cfg.seed + 2),
                                     seed=cfg.seed + 2)
    taught = list(taught or [])
    verifier = clr.verifier_accuracy(lm, tok, held, max_new_tokens=cfg.verify_tokens, seed=cfg.seed,
                                     verify_prompt=cfg.verify_prompt, return_replies=True, teaching=taught)
    table = clr.arithmetic_lookup(taught)
    runinfo.write_jsonl(out / "verifier_held_out.jsonl", (
        {**e, "reply": reply, "verdict": clr.parse_verdict(reply), "arithmetic": clr.arithmetic_key(e["claim"]),
         "seen": clr.arithmetic_key(e["claim"]) in table} for e, reply in zip(held, verifier.pop("replies"))))
    print(VERIFIER_LINE.format(**verifier))
    print(NOVEL_LINE.format(**verifier))
    return verifier


def summary(clr_metrics: dict, verifier: dict, diag: dict, timings: dict, *, K_max: int, n_trajectories: int,
            teach: bool) -> dict:
    """metrics.json without wall_s, in its order: run_clr's metrics, the verifier's, the diagnostics,
    the timings, then the headline `accuracy` (clr@K_max) and `clr_minus_majority` at K_max."""
    return {**clr_metrics, **verifier, **diag, **timings,
            "accuracy": clr_metrics[f"clr@{K_max}"],
            "clr_minus_majority": clr_metrics[f"clr@{K_max}"] - clr_metrics[f"majority@{K_max}"],
            "K_max": K_max, "n_trajectories": n_trajectories, "teach": bool(teach)}


def figure(res: Result):
    """Left: CLR, majority vote and mean@1 against K with bootstrap bands. Right: the verifier's recall
    on held-out claims and the share of claims it judged valid on right and wrong trajectories."""
    plots.use_style()
    fig, (ax, bx) = plots.figure("double", ncols=2)
    for i, (name, label) in enumerate([("clr", "CLR"), ("majority", "majority vote (cons@K)"), ("mean1", "mean@1")]):
        plots.curve_ci(ax, res.K, *([r[f"{name}{s}"] for r in res.per_k] for s in ("", "_lo", "_hi")), band=True,
                       marker="o", ms=3, color=f"C{i}", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(res.K, [str(k) for k in res.K])
    ax.set_xlabel("K (trajectories per problem)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False)
    bars = {"held-out\nvalid": res.verifier.get("verifier_recall_valid"),
            "held-out\ninvalid": res.verifier.get("verifier_recall_invalid"),
            "claims of\nright traj.": res.diagnostics["valid_rate_correct_traj"],
            "claims of\nwrong traj.": res.diagnostics["valid_rate_wrong_traj"]}
    heights = [0 if v is None or v != v else v for v in bars.values()]
    bx.bar(range(len(bars)), heights, color=["C2", "C3", "C2", "C3"], alpha=0.8)
    for i, h in enumerate(heights):
        bx.text(i, h + 0.02, f"{h:.2f}", ha="center", fontsize=7)
    bx.set_xticks(range(len(bars)), list(bars))
    bx.set_ylim(0, 1)
    bx.set_ylabel("verifier: recall (held-out) /\nshare judged valid (samples)")
    return fig


def run(cfg: Config, out_dir) -> Result:
    """Sample, teach and check the verifier, score CLR vs majority vs mean@1; see the module docstring."""
    t0 = time.time()
    out = base.start(cfg, out_dir)
    seed, Ks = cfg.seed, sorted(set(cfg.K))
    print(json.dumps(cfg.to_dict(), indent=1, default=str))
    problems = task_records(cfg, cfg.n_problems, "test", seed)
    if cfg.model == presets.resolve(cfg.preset, Config.SECTION)["model"]:
        print(f"no checkpoint given: using the preset's model {cfg.model!r} (untrained at tiny)")
    lm, tok = models.load(cfg.model, seed=seed, context=cfg.context_for(cfg.model))
    print(f"{len(problems)} problems, model {cfg.model}  ({time.time() - t0:.1f} s)")

    # 1. max(K) trajectories per problem from the model under test
    t = time.time()
    gens = generate.sharded_generate(lm, tok, [p["prompt"] for p in problems], n=max(Ks), temperature=cfg.temperature,
                             top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, seed=seed)
    trajectories = [[] for _ in problems]
    for g in gens:
        trajectories[g["prompt_index"]].append(g["text"])
    runinfo.write_jsonl(out / "samples.jsonl", ({"id": problems[g["prompt_index"]]["id"], **g} for g in gens))
    print(f"{len(gens)} trajectories, truncated {sum(g['truncated'] for g in gens) / len(gens):.2f}  "
          f"({time.time() - t:.1f} s)")

    # 2. the verifier: taught (tiny), then checked on held-out claims
    t = time.time()
    taught = []
    if cfg.teach:
        lm, taught = teach_verifier(lm, tok, cfg, out)
    timings = {"teach_s": time.time() - t}
    verifier = check_verifier(lm, tok, cfg, out, taught)
    timings["verifier_s"] = time.time() - t - timings["teach_s"]
    print(f"({time.time() - t:.1f} s)")

    # 3. CLR, majority vote and mean@1 on the same subsamples
    t = time.time()
    res = clr.run_clr(lm, tok, problems, trajectories, K=Ks, M=cfg.M, R=cfg.R, seed=seed,
                      extract_tokens=cfg.extract_tokens, verify_tokens=cfg.verify_tokens,
                      verify_prompt=cfg.verify_prompt, extract=cfg.extract)
    timings["clr_s"] = time.time() - t
    items = res["items"]
    runinfo.write_jsonl(out / "clr_items.jsonl", ({"id": p["id"], **{k: v for k, v in it.items() if k != "ok_cluster"}}
                                                  for p, it in zip(problems, items)))
    # how the verifier treated the model's own trajectories, and how faithfully claims were extracted
    diag = clr.diagnostics(items, trajectories, cfg.M, mod=(cfg.task_kw or {}).get("mod"))
    metrics = {**summary(res["metrics"], verifier, diag, timings, K_max=max(Ks), n_trajectories=len(gens),
                         teach=cfg.teach), "wall_s": time.time() - t0}
    base.finish(out, metrics)
    for row in res["per_k"]:
        print("K={K:<3} clr {clr:.3f} [{clr_lo:.3f}, {clr_hi:.3f}]  majority {majority:.3f} "
              "[{majority_lo:.3f}, {majority_hi:.3f}]  mean@1 {mean1:.3f} [{mean1_lo:.3f}, "
              "{mean1_hi:.3f}]".format(**row))
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in diag.items()})
    if verifier:
        print(f"verifier accuracy {verifier['verifier_acc']:.3f} [{verifier['verifier_acc_lo']:.3f}, "
              f"{verifier['verifier_acc_hi']:.3f}]; CLR - majority at K = {max(Ks)}: {metrics['clr_minus_majority']:+.3f}")
    print(f"CLR {timings['clr_s']:.1f} s; total {time.time() - t0:.1f} s")
    result = Result(out_dir=out, metrics=metrics, K=Ks, per_k=res["per_k"], verifier=verifier, diagnostics=diag,
                    items=items)
    plots.savefig(figure(result), out / "fig_clr", close=True)
    return result


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))
