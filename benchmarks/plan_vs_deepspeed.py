"""The resource plan's model-state memory (vtkit.plan.model_states) against DeepSpeed's own estimators.

    python benchmarks/plan_vs_deepspeed.py          # any python with deepspeed installed (torch is its dependency)

For each hub model of vtkit/data/model_configs.json whose shapes are known (its own config or its base
model's), and 1, 8 and 64 GPUs, the per-GPU bytes of weights + gradients + optimizer state that vtkit.plan
counts under ZeRO-2 and ZeRO-3 beside what DeepSpeed prints from
`deepspeed.runtime.zero.stage_1_and_2.estimate_zero2_model_states_mem_needs_all_cold` and
`deepspeed.runtime.zero.stage3.estimate_zero3_model_states_mem_needs_all_cold` (no offload; the
largest layer for ZeRO-3 is the plan's, the embedding). The plan's parameter counts come from its own
formula (vtkit.plan.Shape.params; tests/test_plan.py checks it against the table's and transformers').
Exit status 1 when any row differs by more than 5%.

vtkit.plan is imported from this repository (sys.path), and needs only the standard library for this.
DeepSpeed need not be in the kit's environment: a throwaway venv with torch and deepspeed
(`DS_BUILD_OPS=0 pip install deepspeed`) runs this file.
"""
from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtkit import plan  # noqa: E402

GPUS = (1, 8, 64)
TOLERANCE = 0.05


def _printed_gpu_gb(fn, *args, **kw) -> float:
    """The per-GPU GB DeepSpeed's *_all_cold function prints for the option without any offload."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn(*args, **kw)
    for line in buf.getvalue().splitlines():
        if "offload_optimizer=none" in line and "offload_param=cpu" not in line:
            return float(re.findall(r"([\d.]+)GB", line)[1])
    raise RuntimeError(f"no no-offload line in DeepSpeed's output:\n{buf.getvalue()}")


def rows() -> list[dict]:
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs as z3_bytes
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs_all_cold as z3
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs as z2_bytes
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs_all_cold as z2

    out = []
    table = plan.load_table()
    for name in table["models"]:
        try:
            s = plan.shape_from_table(name, table)
        except KeyError:
            continue
        for n in GPUS:
            for zero in (2, 3):
                ours = sum(plan.model_states(s.params, n, zero, s.largest_layer).values()) / plan.GiB
                ds = (_printed_gpu_gb(z2, s.params, num_gpus_per_node=n) if zero == 2 else
                      _printed_gpu_gb(z3, s.params, s.largest_layer, num_gpus_per_node=n))
                exact = (z2_bytes(s.params, num_gpus_per_node=n, cpu_offload=False)[1] if zero == 2 else
                         z3_bytes(s.params, s.largest_layer, num_gpus_per_node=n, cpu_offload=False)[1]) / plan.GiB
                out.append({"model": name, "params": s.params, "gpus": n, "zero": zero, "plan_gb": ours,
                            "deepspeed_gb": ds, "rel_diff": (ours - ds) / ds, "exact_gb": exact,
                            "exact_diff": (ours - exact) / exact})
    return out


def main() -> int:
    import deepspeed

    table = rows()
    print(f"deepspeed {deepspeed.__version__}; per-GPU model states (weights + grads + optimizer), GiB, no offload")
    print("('printed': what the *_all_cold function prints, 2 decimals; 'exact': the bytes of the function it calls)")
    print(f"{'model':38s} {'params':>14s} {'gpus':>4s} {'zero':>4s} {'plan':>8s} {'printed':>8s} {'diff':>7s} "
          f"{'exact':>8s} {'diff':>7s}")
    for r in table:
        print(f"{r['model']:38s} {r['params']:>14,d} {r['gpus']:>4d} {r['zero']:>4d} {r['plan_gb']:8.2f} "
              f"{r['deepspeed_gb']:8.2f} {100 * r['rel_diff']:6.2f}% {r['exact_gb']:8.3f} {100 * r['exact_diff']:6.3f}%")
    worst = max(max(abs(r["rel_diff"]), abs(r["exact_diff"])) for r in table)
    print(f"{len(table)} rows; largest difference {100 * worst:.2f}% (tolerance {100 * TOLERANCE:.0f}%)")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
