"""benchmarks/gpu_check.py on CPU: its parts and their plan numbers (--dry-run), --only, the table, and that
without CUDA it runs nothing and exits 0 (what `make gpu-check` does on this machine)."""
import importlib.util
from pathlib import Path

import pytest
import torch

from vtkit import plan

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def test_dry_run_lists_the_parts_with_the_plans_numbers(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = ROOT / "notebooks"
    exp = tmp_path / "paper.yaml"
    exp.write_text(f"name: gc\nparameters: {{preset: tiny}}\nresources: {{gpus: 1}}\npipeline:\n"
                   f"  - {{name: big, notebook: {nb / '00_quickstart.ipynb'}, parameters: {{model: Qwen/Qwen2.5-Math-1.5B}}}}\n"
                   f"  - {{name: small, notebook: {nb / 'evaluate.ipynb'}, parameters: {{model: tiny-25k}}}}\n")
    assert gpu_check.main(["--dry-run", "--experiment", str(exp), "--gpus", "1", "--gpu-mem", "8",
                           "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "would run 5 part(s); plan: 1 GPU(s) x 8 GiB" in out
    rows = {ln.split()[0]: ln for ln in out.splitlines()[3:]}
    assert list(rows) == ["tiny-chain", "sft-2gpu", "rl-2gpu", "paper-big", "paper-small"]
    # the plan's own worst item of each stage, at its real size (1.5B with AdamW: > 20 GiB per GPU)
    entries = plan.plan_experiment(exp, plan.Hardware(gpus=1, gpu_mem_gb=8), use_hub=False)
    parts = {p["part"]: p for p in gpu_check.parts(exp, 1, 8)}
    for e in entries[:-1]:
        item = gpu_check.worst_item(e)
        p = parts[f"paper-{e['stage']}"]
        assert p["plan_gb"] == item["peak_gb_per_gpu"] == max(i["peak_gb_per_gpu"] for i in e["items"])
        assert (p["model"], p["kind"], p["row_len"]) == (item["model"], item["kind"], item["row_len"])
        assert f"{p['plan_gb']:9.1f}" in rows[p["part"]]
    assert parts["paper-big"]["plan_gb"] > 20 and parts["paper-big"]["kind"] == "train" and not parts["paper-big"]["fits"]
    assert parts["paper-big"]["model"] == "Qwen/Qwen2.5-Math-1.5B" and parts["paper-small"]["model"] == "tiny-25k"
    # --only runs a subset; a name that is no part is refused with the list
    assert [p["part"] for p in gpu_check.select(list(parts.values()), "paper-small,tiny-chain")] == \
        ["tiny-chain", "paper-small"]
    with pytest.raises(SystemExit, match=r"unknown part\(s\) \['paper-nope'\].*tiny-chain, sft-2gpu"):
        gpu_check.select(list(parts.values()), "paper-nope")


def test_table_of_measured_rows_and_no_gpu_means_nothing_ran(tmp_path, monkeypatch, capsys):
    table = gpu_check.format_table([
        {"part": "paper-sft", "what": "SFT (train)", "plan_gb": 25.14, "peak_gb": 24.456, "tokens_per_s": 12345.6,
         "mfu": 0.4123, "wall_s": 3.21, "status": "ok (3 steps)"},
        {"part": "sft-2gpu", "what": "accelerate launch", "status": "not available (1 GPU)"}])
    lines = table.splitlines()
    assert lines[2].split() == ["paper-sft", "SFT", "(train)", "25.1", "24.46", "12346", "0.412", "3.2", "ok", "(3", "steps)"]
    assert lines[3].split() == ["sft-2gpu", "accelerate", "launch", "-", "-", "-", "-", "-", "not", "available", "(1",
                                "GPU)"]
    assert len({ln.index("  ok") if "  ok" in ln else ln.index("  not") for ln in lines[2:]}) == 1   # columns line up
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path / "o")]) == 0
    assert "needs a CUDA GPU" in capsys.readouterr().out and not (tmp_path / "o").exists()
