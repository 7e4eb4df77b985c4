"""The GPU check (`make gpu-check`): run the kit on a CUDA machine and set what it measures beside the plan.

    python benchmarks/gpu_check.py --out runs/gpu_check                 # everything this machine can run
    python benchmarks/gpu_check.py --only tiny-chain,paper-sft --timeout 900
    python benchmarks/gpu_check.py --dry-run                            # the parts and the plan's numbers; runs nothing

Parts (each in its own process, killed after --timeout seconds; a failing part is recorded, the rest go on):
- `tiny-chain`: the demo's stages (experiments/demo.yaml, one seed, figures left out) through
  `vtkit.stages.<name>.run` at the tiny preset on the GPU, with vLLM on where it is installed (the stage
  config's `generation: {backend: vllm}`, and `use_vllm` for rl); per stage: peak memory, wall time.
- `sft-2gpu`, `rl-2gpu`: one tiny SFT / MGPO stage in 2 processes through
  `accelerate launch --num_processes 2 -m vtkit.stages.<name>`, where 2 GPUs exist; a launch that fails is
  recorded as 'not available' with its last error line (data-parallel support is issue 25, item 1).
- `paper-<stage>`: for each stage of the paper pipeline (--experiment), the plan's (vtkit.plan) worst item
  of that stage, replayed for --steps steps at its real sizes with the model's hub weights: a training
  item as AdamW steps (fp32 master weights, bf16 autocast, gradient checkpointing as the plan assumes) on
  rows_per_gpu x row_len tokens; a generation item as a prefill of rows_per_gpu x row_len tokens in chunks
  (the KV cache at the cap, last logits only); a scoring item as one full forward. A model whose weights
  cannot be fetched is skipped with the reason; an OOM is recorded as such.
Measured per part: peak memory (torch.cuda.max_memory_allocated) beside the plan's peak per GPU, tokens/s,
and MFU = the plan's FLOPs for the tokens processed / time / (--gpu-tflops). Printed as a table and
written to OUT/gpu_check.json (parts' own results under OUT/parts/).

Departures: the paper parts replay the plan's worst item with random token ids (the kit's data and
trainers are not in the loop, so the numbers check the plan's arithmetic and the hardware, not a stage's
code path); generation is measured as a chunked prefill to the cap, not a decode loop (its tokens/s and
MFU are prefill's, far above decoding's). Without CUDA the script prints that
it needs a GPU, runs nothing and exits 0 (`--dry-run` still works).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GiB = 2 ** 30
TINY_EXPERIMENT = ROOT / "experiments" / "demo.yaml"
PAPER_EXPERIMENT = ROOT / "experiments" / "paper_pipeline.yaml"
PREFILL_CHUNK = 2048   # tokens per row per forward when a generation item's KV cache is filled to its cap
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


# ------------------------------------------------------------------------------------------ planning
def paper_plan(experiment: Path, gpus: int, gpu_mem: float) -> list[dict]:
    """The plan's entries (per stage, then the total) of the paper experiment, `gpus` GPUs per run."""
    from vtkit import plan

    return plan.plan_experiment(experiment, plan.Hardware(gpus=gpus, gpu_mem_gb=gpu_mem),
                                use_hub=os.environ.get("HF_HUB_OFFLINE") != "1")


def worst_item(entry: dict) -> dict | None:
    """The item of a stage's plan with the largest peak memory per GPU (None: a stage with no GPU work)."""
    items = [i for i in entry.get("items", []) if i["peak_gb_per_gpu"] > 0]
    return max(items, key=lambda i: i["peak_gb_per_gpu"]) if items else None


def parts(experiment: Path, gpus: int, gpu_mem: float) -> list[dict]:
    """Every part of the check, in order: name, what it runs, and the plan's numbers where there are some."""
    out = [{"part": "tiny-chain", "what": f"{TINY_EXPERIMENT.name} stages at tiny, vLLM where installed"},
           {"part": "sft-2gpu", "what": "tiny SFT in 2 processes (accelerate launch)"},
           {"part": "rl-2gpu", "what": "tiny MGPO in 2 processes (accelerate launch)"}]
    for e in paper_plan(experiment, gpus, gpu_mem)[:-1]:
        item = worst_item(e)
        if item is None:
            continue
        out.append({"part": f"paper-{e['stage']}", "what": f"{item['label']} ({item['kind']})", "model": item["model"],
                    "kind": item["kind"], "label": item["label"], "rows": int(item["rows_per_gpu"] or 1),
                    "row_len": int(item["row_len"]), "plan_gb": item["peak_gb_per_gpu"], "fits": item["fits"],
                    "plan_parts": item["parts"], "stage_gpu_hours": e["gpu_hours"]})
    return out


def select(all_parts: list[dict], only: str | None) -> list[dict]:
    if not only:
        return all_parts
    want = [w.strip() for w in only.split(",") if w.strip()]
    names = [p["part"] for p in all_parts]
    bad = [w for w in want if w not in names]
    if bad:
        raise SystemExit(f"gpu_check: unknown part(s) {bad} in --only; the parts are: {', '.join(names)}")
    return [p for p in all_parts if p["part"] in want]


def format_table(rows: list[dict]) -> str:
    """One line per part (or per stage of the tiny chain): plan GiB, measured GiB, tokens/s, MFU, status."""
    head = (f"{'part':22s} {'what':44s} {'plan GiB':>9s} {'meas GiB':>9s} {'tok/s':>10s} {'MFU':>6s} "
            f"{'wall s':>7s}  status")
    lines = [head, "-" * len(head)]

    def num(v, width: int, digits: int) -> str:
        return f"{v:{width}.{digits}f}" if isinstance(v, (int, float)) else f"{'-':>{width}s}"

    for r in rows:
        lines.append(f"{r['part'][:22]:22s} {str(r.get('what', ''))[:44]:44s} {num(r.get('plan_gb'), 9, 1)} "
                     f"{num(r.get('peak_gb'), 9, 2)} {num(r.get('tokens_per_s'), 10, 0)} "
                     f"{num(r.get('mfu'), 6, 3)} {num(r.get('wall_s'), 7, 1)}  {r.get('status', 'planned')}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ parts (child side)
def _peak_gb() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / GiB


def _tiny_chain(out: Path, args) -> list[dict]:
    """The demo's stages through their run() on the GPU; vLLM on where installed."""
    import importlib.util

    import torch

    from vtkit import experiment as xp
    from vtkit import plan, stages

    vllm = importlib.util.find_spec("vllm") is not None
    if vllm:   # trl's colocated vLLM in one process without a launcher needs a one-process group's environment
        for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "localhost",
                     "MASTER_PORT": "29517"}.items():
            os.environ.setdefault(k, v)
    exp = xp.load(TINY_EXPERIMENT)
    run = xp.plan(exp, out / "tiny")[0]
    try:                                              # the plan of the same stages on one GPU, for the table
        entries = plan.plan_experiment(TINY_EXPERIMENT, plan.Hardware(gpus=1, gpu_mem_gb=args.gpu_mem or 80))
        planned = {e["stage"]: e["peak_gb_per_gpu"] for e in entries[:-1] if e.get("run", run.run_id) == run.run_id}
    except Exception as e:  # noqa: BLE001 - the table shows '-' then
        print(f"gpu_check: no plan of the tiny chain ({type(e).__name__}: {e})", flush=True)
        planned = {}
    rows = []
    for st in run.stages:
        section = plan.NOTEBOOK_STAGE.get(Path(st.notebook).stem)
        name = f"tiny-{st.name}"
        if section in (None, "figures"):
            rows.append({"part": name, "what": "no GPU work", "status": "skipped (reads other experiments' runs)"})
            continue
        mod = stages.get(section)
        fields = mod.Config.fields()
        p = {k: v for k, v in st.params.items() if k != "out_dir"}
        preset, seed, overrides = p.pop("preset", "tiny"), int(p.pop("seed", 0)), dict(p.pop("overrides", None) or {})
        rename = plan.PARAM_FIELD.get(section, {})
        named = {rename.get(k, k): v for k, v in p.items() if rename.get(k, k) in fields}
        if vllm and "generation" in fields:
            overrides["generation"] = {"backend": "vllm", "tensor_parallel_size": 1, "data_parallel_size": 1,
                                       "gpu_memory_utilization": 0.3}
        if vllm and "use_vllm" in fields:
            overrides["use_vllm"] = True
        torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        try:
            cfg = mod.Config.from_preset(preset, seed=seed, overrides=overrides or None, **named)
            mod.run(cfg, st.out_dir)
            status = "ok" + (" (vLLM)" if vllm and ("generation" in fields or "use_vllm" in fields) else "")
        except Exception as e:  # noqa: BLE001 - recorded in the table; the chain stops (later stages read this one)
            status = f"FAILED {type(e).__name__}: {str(e)[:200]}"
        rows.append({"part": name, "what": f"{section}.run at {preset}", "plan_gb": planned.get(st.name),
                     "peak_gb": _peak_gb(),
                     "wall_s": time.time() - t0, "status": status})
        if not status.startswith("ok"):
            break
    return rows


def _two_gpu(out: Path, args, section: str) -> list[dict]:
    import torch

    name = f"{section}-2gpu"
    if torch.cuda.device_count() < 2:
        return [{"part": name, "what": "accelerate launch, 2 processes",
                 "status": f"not available ({torch.cuda.device_count()} GPU)"}]
    launcher = shutil.which("accelerate") or str(Path(sys.executable).parent / "accelerate")
    cmd = [launcher, "launch", "--num_processes", "2", "-m", f"vtkit.stages.{section}", "--preset", "tiny",
           "--out-dir", str(out / name)]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        last = next((ln for ln in reversed((proc.stderr or proc.stdout).splitlines()) if ln.strip()), "")
        return [{"part": name, "what": " ".join(cmd[1:5]), "wall_s": time.time() - t0,
                 "status": f"not available (exit {proc.returncode}: {last[:160]})"}]
    return [{"part": name, "what": " ".join(cmd[1:5]), "wall_s": time.time() - t0, "status": "ok"}]


def _paper_item(part: dict, args) -> list[dict]:
    """The plan's worst item of a paper stage for --steps steps at its real sizes (module docstring)."""
    import torch
    from transformers import AutoModelForCausalLM

    from vtkit import plan

    row = {k: part[k] for k in ("part", "what", "plan_gb")}
    train = part["kind"] == "train"
    try:
        model = AutoModelForCausalLM.from_pretrained(part["model"], dtype=torch.float32 if train else torch.bfloat16,
                                                     attn_implementation="sdpa").cuda()
    except Exception as e:  # noqa: BLE001 - no weights: skipped with the reason
        return [{**row, "status": f"skipped: weights of {part['model']} not loadable ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:140]})"}]
    shape = plan.model_shape(part["model"], use_hub=False)
    rows_, length = part["rows"], part["row_len"]
    ids = torch.randint(0, model.config.vocab_size, (rows_, length), device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    try:
        if train:
            if part["label"] != "train_lm":           # the plan: trl's trainers checkpoint on CUDA, train_lm does not
                model.gradient_checkpointing_enable()
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
            for _ in range(args.steps):
                t0 = time.time()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model(input_ids=ids, labels=ids).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                times.append(time.time() - t0)
            flops = plan.train_flops(shape, rows_ * length, length)
        else:
            from transformers import DynamicCache

            model.eval()
            for _ in range(args.steps):
                t0 = time.time()
                with torch.no_grad():
                    if part["kind"] == "forward":         # scoring: every position's logits, as the loss reads them
                        model(input_ids=ids)
                    else:                                 # generation: the KV cache grows to the cap, chunk by chunk
                        cache = DynamicCache()
                        for start in range(0, length, PREFILL_CHUNK):   # transformers 5: `cache=`, filled in place
                            model(input_ids=ids[:, start:start + PREFILL_CHUNK], cache=cache, use_cache=True,
                                  logits_to_keep=1)
                        del cache
                torch.cuda.synchronize()
                times.append(time.time() - t0)
            flops = plan.forward_flops(shape, rows_ * length, length)
    except torch.cuda.OutOfMemoryError:
        return [{**row, "peak_gb": _peak_gb(), "status": "OOM" + (" (the plan says it does not fit)"
                                                                   if not part["fits"] else " (the plan says it fits)")}]
    step = min(times[1:] or times)                    # the first step includes allocator and kernel warm-up
    return [{**row, "peak_gb": _peak_gb(), "tokens_per_s": rows_ * length / step, "wall_s": sum(times),
             "mfu": flops / step / (args.gpu_tflops * 1e12), "status": f"ok ({args.steps} steps)"}]


def child(args) -> int:
    """Run one part in this process and write its rows to OUT/parts/<part>.json."""
    out = Path(args.out)
    spec = json.loads(Path(args._part).read_text())
    name = spec["part"]
    if name == "tiny-chain":
        rows = _tiny_chain(out, args)
    elif name.endswith("-2gpu"):
        rows = _two_gpu(out, args, name.split("-")[0])
    else:
        rows = _paper_item(spec, args)
    (out / "parts" / f"{name}.json").write_text(json.dumps(rows, indent=1))
    return 0


# ------------------------------------------------------------------------------------------ the driver
def default_tflops() -> float:
    import torch

    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), 989.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "runs" / "gpu_check"), help="folder for gpu_check.json and the parts' output")
    ap.add_argument("--only", default=None, help="comma-separated parts to run (see --dry-run for their names)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per part before it is killed (default 900)")
    ap.add_argument("--steps", type=int, default=3, help="steps of each paper part (default 3)")
    ap.add_argument("--experiment", default=str(PAPER_EXPERIMENT), help="the paper pipeline experiment to plan and replay")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs per run the plan assumes for the paper parts (default 8)")
    ap.add_argument("--gpu-mem", type=float, default=None, help="GiB per GPU for the plan (default: this GPU's, else 80)")
    ap.add_argument("--gpu-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s for MFU (default: by GPU name)")
    ap.add_argument("--dry-run", action="store_true", help="list the parts with the plan's numbers; run nothing")
    ap.add_argument("--_part", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()                    # the parts run from the repository root
    if args._part:
        args.gpu_tflops = args.gpu_tflops or default_tflops()
        return child(args)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu-check needs a CUDA GPU (torch.cuda.is_available() is False here); it has not run. "
              "`--dry-run` lists what it would run.")
        return 0
    if args.gpu_mem is None:
        from vtkit import sweep

        args.gpu_mem = sweep.gpu_memory_gb()
    todo = select(parts(Path(args.experiment), args.gpus, args.gpu_mem), args.only)
    if args.dry_run:
        print(f"gpu-check would run {len(todo)} part(s); plan: {args.gpus} GPU(s) x {args.gpu_mem:g} GiB per run")
        print(format_table(todo))
        return 0
    args.gpu_tflops = args.gpu_tflops or default_tflops()
    (out / "parts").mkdir(parents=True, exist_ok=True)
    rows = []
    for part in todo:
        spec = out / "parts" / f"{part['part']}.spec.json"
        spec.write_text(json.dumps(part))
        result = out / "parts" / f"{part['part']}.json"
        result.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--out", str(out), "--steps", str(args.steps), "--gpu-tflops",
               str(args.gpu_tflops), "--gpu-mem", str(args.gpu_mem), "--_part", str(spec)]
        t0 = time.time()
        with open(out / "parts" / f"{part['part']}.log", "w") as log:
            try:
                rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout, cwd=ROOT).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        if result.exists():
            got = json.loads(result.read_text())
        else:
            why = f"timed out after {args.timeout:g} s" if rc == "timeout" else f"FAILED (exit {rc}; see parts/{part['part']}.log)"
            got = [{**part, "wall_s": time.time() - t0, "status": why}]
        for r in got:
            r.setdefault("plan_gb", part.get("plan_gb"))
        rows += got
        print(format_table(got).splitlines()[-1], flush=True)
    info = {"device": torch.cuda.get_device_name(0), "gpus_visible": torch.cuda.device_count(),
            "gpu_tflops": args.gpu_tflops, "plan_gpus": args.gpus, "plan_gpu_mem_gb": args.gpu_mem,
            "torch": torch.__version__, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows}
    (out / "gpu_check.json").write_text(json.dumps(info, indent=1, default=str))
    print()
    print(format_table(rows))
    print(f"written: {out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
