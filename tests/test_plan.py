"""vtkit.plan: parameter counts, the memory arithmetic, FLOPs against a real run, the command's output and exit status.

The FLOPs check trains a tiny model for real (vtkit.train.sft through trl): the tokens trl counts
(`num_tokens`) must equal the plan's, and the plan's FLOPs per token must equal what torch's
FlopCounterMode counts on a real forward and backward of the same model.
"""
import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vtkit import cli, models, plan

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"
P15 = 1_543_714_304     # Qwen2.5-Math-1.5B, counted from its config (the table's params_computed_from_config)


# ------------------------------------------------------------------------------------------ shapes

def test_param_counts_match_the_table_transformers_and_the_tiny_ladder():
    from transformers import AutoConfig, AutoModelForCausalLM, Qwen2ForSequenceClassification

    table = plan.load_table()
    checked = 0
    for name, entry in table["models"].items():
        counted = (entry.get("params_computed_from_config") or {}).get("total")
        if counted:
            assert plan.shape_from_table(name, table).params == counted, name
            checked += 1
    assert checked == 8
    # transformers' own module tree, built on the meta device (no weights), for a Qwen2 and a Llama
    for name in ("Qwen/Qwen2.5-Math-1.5B", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        cfg = dict(table["models"][name]["config"])
        hf_cfg = AutoConfig.for_model(cfg.pop("model_type"), **{k: v for k, v in cfg.items() if v is not None})
        with torch.device("meta"):
            n = sum(p.numel() for p in AutoModelForCausalLM.from_config(hf_cfg).parameters())
        assert plan.shape_from_table(name, table).params == n, name
    for size, n in models.TINY_SIZES.items():
        assert plan.model_shape(size).params == n
    # a reward model: the score head replaces the lm_head
    cfg = models.tiny_config("tiny-50k")
    cfg.num_labels = 1
    rm = Qwen2ForSequenceClassification(cfg)
    assert plan.model_shape("tiny-50k").as_classifier().params == sum(p.numel() for p in rm.parameters())


def test_a_model_without_its_own_config_takes_its_base_models_shapes_and_says_so():
    s = plan.shape_from_table("WeiboAI/VibeThinker-1.5B")
    assert s.params == P15 and "base model Qwen/Qwen2.5-Math-1.5B" in s.source
    assert plan.shape_from_table("Qwen/Qwen2.5-Math-1.5B").max_positions == 4096


def test_an_unknown_model_with_no_config_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(plan, "_HUB_UP", [False])      # the hub does not answer (as here): the table decides
    with pytest.raises(plan.PlanError, match=r"no shapes for model 'nobody/no-such-model'.*model_configs\.json"):
        plan.model_shape("nobody/no-such-model")
    assert plan.model_shape("Qwen/Qwen2.5-Coder-3B").source.startswith("vtkit/data/model_configs.json")
    with pytest.raises(plan.PlanError, match=r"'\.\./runs/none/model' holds no config\.json \(yet\)"):
        plan.model_shape("../runs/none/model")


# ------------------------------------------------------------------------------------------ memory

def test_model_states_of_a_known_model():
    P = P15
    z0 = plan.model_states(P, gpus=8, zero=0)
    assert z0 == {"weights": 2 * P, "grads": 2 * P, "optimizer": 12 * P}          # 16 bytes per parameter
    assert sum(z0.values()) / plan.GiB == pytest.approx(23.0, abs=0.01)
    z2 = plan.model_states(P, gpus=8, zero=2)
    assert sum(z2.values()) == pytest.approx(2 * P + 18 * P / 8)                    # DeepSpeed's ZeRO-2 estimate
    s = plan.shape_from_table("Qwen/Qwen2.5-Math-1.5B")
    z3 = plan.model_states(P, gpus=8, zero=3, largest_layer=s.largest_layer)
    assert s.largest_layer == 151936 * 1536                                         # the embedding
    assert sum(z3.values()) == pytest.approx(18 * P / 8 + 4 * s.largest_layer)       # DeepSpeed's ZeRO-3 estimate
    assert plan.model_states(P, 1, 1)["optimizer"] == 12 * P and plan.model_states(P, 4, 1)["grads"] == 2 * P + P
    with pytest.raises(plan.PlanError, match="zero"):
        plan.Parallel(zero=4)


def test_memory_parts_of_training_and_generation_items():
    s = plan.shape_from_table("Qwen/Qwen2.5-Math-1.5B")
    w = plan.Work("sft", "train", s, sequences=10, new=100, new_cap=100, rows=8, row_len=16384)
    on = plan.work_memory(w, gpus=8, zero=0, logit_bytes=6)
    assert on["logits"] == 8 * 16384 * 151936 * 6                  # ~111 GiB: issue 25's SFT micro-batch
    assert on["kv_cache"] == 0 and on["optimizer"] == 12 * P15
    w.checkpointing = False
    off = plan.work_memory(w, gpus=8, zero=0, logit_bytes=6)
    assert off["activations"] > 10 * on["activations"]             # checkpointing keeps one layer's activations
    g = plan.Work("eval", "generate", s, sequences=1920, new=100, new_cap=40960, prompt=128, rows=64, row_len=128 + 40960)
    kv = plan.work_memory(g, gpus=8, zero=0, logit_bytes=6)
    assert kv["kv_cache"] == 64 * (128 + 40960) * 2 * 2 * 28 * 256   # bf16 K and V of 28 layers x 2 KV heads x 128
    assert kv["grads"] == kv["optimizer"] == 0 and kv["weights"] == 2 * P15
    # chunked log-probabilities (trl's fused head): one 4096 x 32768 tile, the selected hidden states and their
    # fp32 gradient, the head's fp32 gradient: ~1.3 GiB instead of ~111 GiB for the 8 x 16K rows
    w.chunked, w.checkpointing = True, True
    ch = plan.work_memory(w, gpus=8, zero=0, logit_bytes=6)
    assert ch["logits"] == 4096 * 32768 * 2 + 8 * 16384 * (6 * 1536 + 40) + 4 * 151936 * 1536
    assert ch["activations"] == on["activations"]
    # a vLLM engine: its reserved share replaces HF's batch cache, or its weights + one sequence when more
    g.engine = 0.3 * 80 * plan.GiB
    assert plan.work_memory(g, gpus=8, zero=0, logit_bytes=6)["kv_cache"] == pytest.approx(0.3 * 80 * plan.GiB)
    g.engine = 0.01 * plan.GiB
    assert plan.work_memory(g, gpus=8, zero=0, logit_bytes=6)["kv_cache"] == 2 * P15 + (128 + 40960) * 2 * 2 * 28 * 256


# ------------------------------------------------------------------------------------------ FLOPs

def test_flops_per_token_match_torchs_flop_counter_on_a_real_step():
    model, _ = models.load("tiny-1m", seed=0)
    model.config._attn_implementation = "eager"          # dense QK^T and AV: the non-causal count
    model.train()
    ids = torch.randint(3, 1000, (2, 96))
    with FlopCounterMode(display=False) as fc:
        model(input_ids=ids, labels=ids).loss.backward()
    shape = plan.model_shape("tiny-1m")
    want = plan.train_flops(shape, tokens=ids.numel(), seq_len=ids.shape[1], causal=False)
    assert fc.get_total_flops() == pytest.approx(want, rel=0.01)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(input_ids=ids)
    assert fc.get_total_flops() == pytest.approx(plan.forward_flops(shape, ids.numel(), ids.shape[1], causal=False),
                                                 rel=0.01)


def test_the_plans_tokens_and_flops_match_a_real_tiny_sft_run(tmp_path):
    from vtkit import tasks, train

    settings = plan.stage_settings("quickstart", "tiny", {"model": "tiny-25k"},
                                   {"n_train": 40, "epochs": 2.0, "batch_size": 8}, seed=0)
    settings.update(preset="tiny", seed=0)
    ctx = plan.Context(plan.Hardware(gpus=1), plan.Parallel(), plan.Assumptions(length_sample=None), use_hub=False)
    e = plan.plan_stage("quickstart", settings, ctx)
    sft = next(i for i in e["items"] if i["label"] == "SFT")
    # the stage's own data and training call (vtkit.stages.quickstart), for real
    net, tok = models.load("tiny-25k", seed=0)
    recs = tasks.make(settings["domain"], settings["n_train"], split="train", seed=0, difficulty=settings["difficulty"],
                      **settings["task_kw"])
    _, log = train.sft(net, tok, recs, tmp_path / "sft", epochs=2.0, lr=1e-3, batch_size=8,
                       max_length=settings["max_length"], seed=0)
    counted = max(h["num_tokens"] for h in log if "num_tokens" in h)   # trl's count of the tokens trained
    assert sft["tokens"] == pytest.approx(counted, rel=1e-9)
    rows = 2 * sum(len(r["solutions"]) for r in recs)
    assert sft["sequences"] == rows
    shape = plan.model_shape("tiny-25k")
    assert sft["flops"] == pytest.approx(plan.train_flops(shape, counted, counted / rows), rel=1e-9)
    assert e["tokens_trained"] == sft["tokens"] and e["params"] == models.TINY_SIZES["tiny-25k"]


# ------------------------------------------------------------------------------------------ the command

def _experiment(tmp_path, model="tiny-400k") -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(f"name: plan-test\nparameters: {{preset: tiny}}\nresources: {{gpus: 2}}\npipeline:\n"
                 f"  - {{name: quick, notebook: {NB / '00_quickstart.ipynb'}, parameters: {{model: {model}}}}}\n"
                 f"  - {{name: eval, notebook: {NB / 'evaluate.ipynb'}, parameters: {{model: '{{stages.quick.out_dir}}/model'}}}}\n")
    return p


def test_cli_json_keys_exit_status_and_the_stages_named(tmp_path, capsys):
    path = _experiment(tmp_path)
    assert cli.main(["plan", str(path), "--json", "--offline"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["stage"] for e in out] == ["quick", "eval", "total"]
    for e in out:
        assert {"stage", "params", "peak_gb_per_gpu", "fits", "gpu_hours", "parts"} <= set(e)
        assert set(e["parts"]) == set(plan.PARTS)
    assert out[1]["model"] == "tiny-400k"                # the quickstart's model, through its out_dir
    assert out[0]["gpus"] == 2 and out[-1]["fits"] is True
    assert out[-1]["gpu_hours"] == pytest.approx(out[0]["gpu_hours"] + out[1]["gpu_hours"])
    assert cli.main(["plan", str(path), "--offline", "--gpu-mem", "0.001"]) == 1
    captured = capsys.readouterr()
    assert "quick, eval" in captured.err and "does not fit" in captured.out
    assert cli.main(["plan", str(_experiment(tmp_path, "nobody/no-such-model")), "--offline"]) == 2
    assert "no shapes for model 'nobody/no-such-model'" in capsys.readouterr().err


def test_the_paper_pipeline_fits_8_x_80_gb_through_micro_batches_chunked_logits_and_vllm_shares(capsys):
    path = ROOT / "experiments" / "paper_pipeline.yaml"
    entries = plan.plan_experiment(path, plan.Hardware(gpus=8, gpu_mem_gb=80), use_hub=False)
    by = {e["stage"]: e for e in entries}
    assert list(by)[-1] == "total" and len(entries) == 11
    assert by["sft"]["params"] == P15 and by["family"]["params"] == 7_615_616_512
    assert by["total"]["fits"] and by["total"]["not_fitting"] == [] and by["total"]["peak_gb_per_gpu"] <= 80
    items = {i["label"]: i for e in entries[:-1] for i in e["items"]}
    # SFT: batch 8 x accumulation 16 = 128 rows a step; micro_batch 1: one 16K-token row a GPU, logits in chunks
    # (trl's fused LM head) instead of 8 x 16,384 x 151,936 x 6 bytes (~111 GiB)
    sft = items["stage-1 SFT"]
    assert sft["rows_per_gpu"] == 1 and sft["row_len"] == 16384
    shape = plan.shape_from_table("Qwen/Qwen2.5-Math-1.5B")
    assert sft["parts"]["logits"] == pytest.approx(plan.chunked_head_bytes(shape, 16384, True) / plan.GiB)
    assert sft["parts"]["logits"] < 2
    # RL: 64 x 8 completions of 64K tokens, one a GPU per micro-step; trl's colocated vLLM holds 0.3 of each GPU
    upd = next(i for i in by["rl"]["items"] if "policy update" in i["label"])
    assert upd["rows_per_gpu"] == 1 and upd["parts"]["kv_cache"] == pytest.approx(0.3 * 80)
    assert any("1 per GPU per micro-step x 64 accumulation steps" in n for n in by["rl"]["notes"])
    # the reward model scores on the GPU over the whole response, beside the policy's training states
    rm = next(i for i in by["instruct"]["items"] if i["label"] == "reward model on open-prompt rollouts")
    assert rm["row_len"] == 128 + 8192 and rm["parts"]["weights"] > 23
    assert any("context extended" in n and "131072" in n for n in by["rl"]["notes"] + by["sft"]["notes"])
    assert by["total"]["gpu_hours_cap"] > by["total"]["gpu_hours"] > 0
    # 8 GiB GPUs: the training stages and the 7B family probe do not fit, and the command says which
    assert cli.main(["plan", str(path), "--offline", "--gpus", "8", "--gpu-mem", "8"]) == 1
    err = capsys.readouterr().err
    for st in ("sft", "rl", "distill", "instruct", "family"):
        assert st in err
    assert cli.main(["plan", str(path), "--offline", "--gpus", "8", "--gpu-mem", "80", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[-1]["fits"] is True


def test_rl_fits_through_its_micro_batch_not_without_it():
    """RL at paper on 8 GPUs: without a micro-batch each process takes its share of the batch of 64 x 8
    completions of 64K tokens in one micro-step (trl's per_device_train_batch_size = 512 / 8 = 64); that does
    not fit in 80 GiB. One at a time (micro_batch 1, 64 accumulation steps: the same optimizer step,
    tests/test_batching.py) it does."""
    ctx = plan.Context(plan.Hardware(gpus=8, gpu_mem_gb=80), plan.Parallel(), plan.Assumptions(), use_hub=False)
    peak = {}
    for micro in (None, 1):
        s = plan.stage_settings("rl", "paper", {"init_model": "Qwen/Qwen2.5-Math-1.5B"}, {"micro_batch": micro})
        e = plan.plan_stage("rl", s, ctx)
        upd = next(i for i in e["items"] if "policy update" in i["label"])
        peak[micro] = (upd["rows_per_gpu"], upd["peak_gb_per_gpu"], e["fits"])
    assert peak[None][0] == 64 and peak[None][1] > 80 and not peak[None][2]
    assert peak[1][0] == 1 and peak[1][1] < 80 and peak[1][2]


def test_the_pipeline_ablation_plans_each_distinct_sub_stage_run_once():
    def sub_runs(arms):
        ctx = plan.Context(plan.Hardware(gpus=1), plan.Parallel(), plan.Assumptions(), use_hub=False,
                           table=plan.load_table())
        s = {**plan.stage_settings("ablation", "tiny", {"arms": arms}, None), "preset": "tiny", "seed": 0}
        e = plan.plan_stage("ablation", s, ctx)
        return {i["label"].split(":")[0] for i in e["items"]}, e
    full, e_full = sub_runs(["full"])
    assert full == {"sft_one_stage", "sft", "merge", "rl_mgpo", "distill"}
    every, e_all = sub_runs(list(plan.stage_settings("ablation", "tiny", {}, None)["arms"]))
    assert len(every) == 16 and {"sft_only", "rl_plain", "merge_no_stage2", "distill_no_merge", "rl_no_distill"} <= every
    assert e_all["flops"] > e_full["flops"] and e_all["fits"]
    assert any("priced at run time" in n for n in e_all["notes"])
