"""The pipeline's stages as library functions, in pipeline order.

Each module holds one stage: `Config` (a dataclass, the schema of `vtkit/presets/<section>.yaml`),
`run(cfg, out_dir) -> Result`, and a command line (`python -m vtkit.stages.<name>`, or
`vtkit run <name>`). The notebooks call these functions; so do scripts, sweeps and launchers.

    quickstart  00  a tiny model, one task, SFT, accuracy and pass@k
    sft         01  two-stage curriculum SFT with diversity probing
    merge       02  Spectrum: checkpoint scoring, specialists, parameter merging
    rl          03  Signal: MGPO phases with the solvability filter
    distill     04  offline self-distillation by learning potential
    instruct    05  instruction RL with rule validators and a rubric reward model
    clr         06  Claim-Level Reliability vs majority vote
    ablation    12  the pipeline's parts at equal compute: arms of the stages above
    evaluate        any model on tasks or benchmarks under the reports' protocols
    capacity    10  knowledge bits and reasoning accuracy of one model size
    family      11  a model family on reasoning and knowledge sets
    figures     20  the paper figures
"""
from __future__ import annotations

import importlib

STAGES = ("quickstart", "sft", "merge", "rl", "distill", "instruct", "clr", "ablation", "evaluate", "capacity",
          "family", "figures")


def get(name: str):
    """The stage module called `name` (vtkit.stages.<name>)."""
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    return importlib.import_module(f"vtkit.stages.{name}")


def __getattr__(name: str):   # `stages.rl` without importing every stage (and torch) up front
    if name in STAGES:
        return get(name)
    raise AttributeError(name)
