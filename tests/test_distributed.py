"""Data parallel on CPU: 2 real processes (torchrun, gloo) against 1, through vtkit's SFT and evaluation.

tests/dist_driver.py runs a tiny SFT (tiny-25k, 32 records, 4 steps, global batch 8) and a greedy
evaluation (11 items), once as a plain process and once under
`python -m torch.distributed.run --standalone --nproc_per_node 2` with ACCELERATE_USE_CPU=1; every
rank writes what it trained on, its losses and its weights. Two processes x 4 rows must train as one
process x 8 rows on the same data order (same per-step losses and final weights to float tolerance,
disjoint shards whose union is the one process's batch), and the sharded evaluation must give every
rank the unsharded metrics and samples. Both launches take ~20-35 s each on one core.

MGPO (`dist_driver.py mgpo`, ~7 s alone, ~25 s as two processes): vtkit.rl.MGPOTrainer on 3 prompts x
G = 4 fixed completions (generation stubbed: sampling differs by rank), one process of 12 rows
against two of 6, so one GRPO group sits half on each rank. Same rows, advantages, MGPO weights,
losses, first gradient and final weights as one process, and the policy learns the rewarded
completions alike.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vtkit import models, train

DRIVER = Path(__file__).with_name("dist_driver.py")


def _launch(out: Path, procs: int, what: list[str] | None = None) -> Path:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="1", CUDA_VISIBLE_DEVICES="")
    head = [sys.executable] if procs == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
    what = what or ["all", str(out), "--global-batch", "8", "--steps", "4"]
    done = subprocess.run([*head, str(DRIVER), *what],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    return {n: _launch(root / f"p{n}", n) for n in (1, 2)}


@pytest.fixture(scope="module")
def mgpo_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist_mgpo")
    return {n: _launch(root / f"p{n}", n, ["mgpo", str(root / f"p{n}"), "--steps", "8"]) for n in (1, 2)}


def _ranks(out: Path, n: int) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]


def test_two_processes_of_batch_b_train_as_one_process_of_batch_2b(runs):
    (one,), two = _ranks(runs[1] / "sft", 1), _ranks(runs[2] / "sft", 2)
    assert one["world"] == 1 and [r["world"] for r in two] == [2, 2]
    assert [s for s, _ in one["losses"]] == [1, 2, 3, 4]
    for r in two:
        assert [s for s, _ in r["losses"]] == [1, 2, 3, 4]
        assert torch.allclose(torch.tensor([v for _, v in r["losses"]]),
                              torch.tensor([v for _, v in one["losses"]]), atol=1e-5, rtol=0)
    assert one["losses"][-1][1] < one["losses"][0][1]           # it trained
    w1 = torch.load(runs[1] / "sft" / "weights0.pt")
    w2 = [torch.load(runs[2] / "sft" / f"weights{r}.pt") for r in range(2)]
    assert w1.keys() == w2[0].keys() == w2[1].keys()
    for k in w1:
        assert torch.equal(w2[0][k], w2[1][k]), k                # DDP keeps the replicas identical
        assert torch.allclose(w2[0][k], w1[k], atol=1e-5, rtol=0), (k, (w2[0][k] - w1[k]).abs().max())


def test_each_process_takes_a_disjoint_half_of_every_global_batch(runs):
    (one,), two = _ranks(runs[1] / "sft", 1), _ranks(runs[2] / "sft", 2)

    def by_step(rows):
        out: dict[int, list[int]] = {}
        for step, row in rows:
            out.setdefault(step, []).append(row)
        return out

    whole, halves = by_step(one["rows"]), [by_step(r["rows"]) for r in two]
    assert sorted(whole) == [0, 1, 2, 3] and all(len(v) == 8 for v in whole.values())
    for step, rows in whole.items():
        a, b = halves[0][step], halves[1][step]
        assert len(a) == len(b) == train.per_device_batch(8, 1, world=2) == 4
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(rows)                     # together: the one process's batch
    assert len({r for _, r in one["rows"]}) == 32                # 4 steps x 8 rows: every record once


def test_only_rank_zero_writes_the_runs_files(runs):
    for what in ("sft", "eval"):
        assert json.loads((runs[2] / what / "metrics.json").read_text()) == {"writer_rank": 0}
    assert (runs[2] / "sft" / "trainer_log.json").exists()
    saved = models.load(str(runs[2] / "sft" / "model"))[0].state_dict()   # models.save: rank 0, then a barrier
    mine = torch.load(runs[2] / "sft" / "weights0.pt")
    assert all(torch.equal(saved[k], mine[k]) for k in mine)
    assert [r["loaded_saved_copy"] for r in _ranks(runs[2] / "sft", 2)] == [True, True]


def test_sharded_evaluation_gives_every_rank_the_unsharded_result(runs):
    (one,), two = _ranks(runs[1] / "eval", 1), _ranks(runs[2] / "eval", 2)
    ids = one["ids"]
    assert one["sampled"] == ids                                 # one process samples every item
    assert [r["sampled"] for r in two] == [ids[0::2], ids[1::2]]  # rank r samples items r::2
    assert len({s["text"] for s in one["samples"]}) > 5          # texts differ by item: order is checked
    assert [s["id"] for s in one["samples"]] == ids
    for r in two:
        assert r["metrics"] == one["metrics"]
        assert r["samples"] == one["samples"]
    assert one["metrics"]["n_items"] == 11


def test_mgpo_two_processes_train_as_one_on_the_same_completions(mgpo_runs):
    from dist_driver import MGPO_G
    (one,), two = _ranks(mgpo_runs[1], 1), _ranks(mgpo_runs[2], 2)
    assert (one["world"], one["per_device"]) == (1, 12) and [(r["world"], r["per_device"]) for r in two] == [(2, 6)] * 2
    # each rank scored a disjoint slice of every generation batch: rank r its global rows [6r, 6r + 6)
    assert len(one["rows"]) == 4                                     # 8 steps, each generation used twice
    for g, rows in enumerate(one["rows"]):
        assert two[0]["rows"][g] == rows[:6] and two[1]["rows"][g] == rows[6:]
        assert sorted(map(tuple, rows)) == [(i, j) for i in range(3) for j in range(MGPO_G)]   # each completion once
    for key, tol in (("losses", 1e-6), ("grad_norms", 1e-5)):
        ref = torch.tensor(one[key])
        for r in two:
            assert torch.allclose(torch.tensor(r[key]), ref, atol=tol, rtol=0), (key, r[key], one[key])
    assert [s for s, _ in one["losses"]] == list(range(1, 9))
    assert min(v for _, v in one["losses"]) < -0.005                 # the second pass over a generation moves
    g1 = torch.load(mgpo_runs[1] / "grads0.pt")                      # the first update's gradient
    g2 = [torch.load(mgpo_runs[2] / f"grads{r}.pt") for r in range(2)]
    assert g1.keys() == g2[0].keys() and sum(v.abs().sum() for v in g1.values()) > 0
    for k in g1:
        assert torch.equal(g2[0][k], g2[1][k]), k                    # all-reduced: the same on both ranks
        assert torch.allclose(g2[0][k], g1[k], atol=1e-6, rtol=1e-4), (k, (g2[0][k] - g1[k]).abs().max())
    w1 = torch.load(mgpo_runs[1] / "weights0.pt")
    w2 = [torch.load(mgpo_runs[2] / f"weights{r}.pt") for r in range(2)]
    for k in w1:
        assert torch.equal(w2[0][k], w2[1][k]), k
        assert torch.allclose(w2[0][k], w1[k], atol=1e-5, rtol=0), (k, (w2[0][k] - w1[k]).abs().max())
    # it learns alike: the policy's expected accuracy over each group's completions rises, step for step
    er1 = one["expected_reward"]
    assert len(er1) == 9 and er1[-1] > er1[0] + 0.05 and all(b > a for a, b in zip(er1, er1[1:]))
    for r in two:
        assert torch.allclose(torch.tensor(r["expected_reward"]), torch.tensor(er1), atol=1e-5, rtol=0)
    assert json.loads((mgpo_runs[2] / "metrics.json").read_text()) == {"writer_rank": 0}


def test_mgpo_group_split_over_two_processes_gets_its_global_weight(mgpo_runs):
    from dist_driver import MGPO_CORRECT, MGPO_G

    from vtkit.rl import mgpo_weight
    (one,), two = _ranks(mgpo_runs[1], 1), _ranks(mgpo_runs[2], 2)
    lam = 2.0                                                        # the driver's --mgpo-lambda default
    for g, rows in enumerate(one["rows"]):
        groups = [rows[k][0] for k in range(0, 12, MGPO_G)]          # the prompt of each group of 4 rows
        p = [sum(MGPO_CORRECT[i]) / MGPO_G for i in groups]
        assert one["p"][g] == p and one["rewards"][g] == [float(MGPO_CORRECT[i][j]) for i, j in rows]
        assert torch.allclose(torch.tensor(one["w"][g]), torch.tensor([mgpo_weight(x, lam) for x in p]), atol=1e-6)
        assert min(one["w"][g]) < 0.8 and max(one["w"][g]) == 1.0   # weights differ by group
        split = rows[4][0]                                           # rows 4-7: 4, 5 on rank 0, 6, 7 on rank 1
        assert [i for i, _ in rows[4:8]] == [split] * 4
        half_p = [sum(MGPO_CORRECT[split][:2]) / 2, sum(MGPO_CORRECT[split][2:]) / 2]
        assert all(abs(mgpo_weight(h, lam) - one["w"][g][1]) > 0.1 for h in half_p)   # a local p would be wrong
        for r, mine in enumerate(two):
            assert mine["rewards"][g] == one["rewards"][g]           # trl gathers every rank's rewards
            assert mine["p"][g] == one["p"][g] and mine["w"][g] == one["w"][g]
            assert mine["w_local"][g] == one["w_local"][g][6 * r:6 * r + 6]
            assert torch.allclose(torch.tensor(mine["adv"][g]), torch.tensor(one["adv"][g][6 * r:6 * r + 6]),
                                  atol=1e-6, rtol=0)
        assert two[0]["w_local"][g][4:] == two[1]["w_local"][g][:2] == [one["w"][g][1]] * 2


def test_per_device_batch_keeps_the_global_batch():
    assert train.per_device_batch(128, 1, world=1) == 128
    assert train.per_device_batch(128, 4, world=1) == 32
    assert train.per_device_batch(128, 4, world=8) == 4          # 4 rows x 8 GPUs x 4 accumulation steps
    assert train.per_device_batch(16, 2, world=2) == 4
    with pytest.raises(ValueError, match="multiple of processes x grad_accum = 6"):
        train.per_device_batch(8, 2, world=3)
    with pytest.raises(ValueError, match=">= 1"):
        train.per_device_batch(8, 0, world=1)


@pytest.mark.parametrize("name,kind,extra", [
    ("ddp", "MULTI_GPU", {}), ("zero2", "DEEPSPEED", {"zero_stage": 2}), ("zero3", "DEEPSPEED", {"zero_stage": 3}),
    ("fsdp2", "FSDP", {"fsdp_version": 2})])
def test_shipped_accelerate_configs_read_as_accelerate_reads_them(name, kind, extra):
    from accelerate.commands.config.config_args import ClusterConfig
    path = Path(__file__).parents[1] / "configs" / "accelerate" / f"{name}.yaml"
    cfg = ClusterConfig.from_yaml_file(str(path))
    assert cfg.distributed_type.name == kind
    assert (cfg.num_processes, cfg.num_machines, cfg.mixed_precision, cfg.use_cpu) == (8, 1, "bf16", False)
    sub = cfg.deepspeed_config if kind == "DEEPSPEED" else cfg.fsdp_config
    assert all(sub[k] == v for k, v in extra.items())


def test_ranks_other_than_zero_write_no_run_files(tmp_path, monkeypatch):
    from vtkit import runinfo
    for rank, where in ((1, tmp_path / "r1"), (0, tmp_path / "r0")):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert runinfo.is_main() == (rank == 0) and runinfo.world_size() == 2
        runinfo.save(where, {"seed": 0})
        runinfo.write_metrics(where, {"acc": 0.5})
        runinfo.write_jsonl(where / "rows.jsonl", [{"a": 1}])
    assert not (tmp_path / "r1").exists()
    assert sorted(p.name for p in (tmp_path / "r0").iterdir()) == \
        ["config.json", "metrics.json", "rows.jsonl", "runinfo.json"]
