"""vtkit.compute: real sampling, training and a stage count their tokens, and the FLOPs are the plan's."""
import json

import pytest

from vtkit import compute, evaluation, generate, models, plan, tasks, train
from vtkit.stages import quickstart


@pytest.fixture(scope="module")
def mt():
    return models.load("tiny-25k", seed=0)


def _shape(model):
    return plan.shape_from_config(model.config.to_dict(), "tiny-25k", "test")


def test_generate_counts_the_records_tokens_and_the_plans_flops(mt):
    model, tok = mt
    compute.reset()
    recs = generate.generate(model, tok, ["What is 2 + 3?", "Name a prime number larger than ten."], n=3,
                             temperature=1.0, max_new_tokens=12, batch_size=4, seed=0)
    m = compute.metrics()
    s = _shape(model)
    assert m["tokens_generated"] == sum(r["n_tokens"] for r in recs) > 0
    assert m["tokens_prompt"] == sum(r["n_prompt_tokens"] for r in recs) > 0
    want = sum(plan.forward_flops(s, r["n_prompt_tokens"] + r["n_tokens"], r["n_prompt_tokens"] + r["n_tokens"])
               for r in recs)
    assert m["gen_flops"] == pytest.approx(want, rel=1e-12)
    assert m["tokens_generated_eval"] == 0 and m["gen_flops_eval"] == 0 and m["tokens_trained"] == 0

    with compute.evaluation():   # evaluation's sampling counts twice: in the total and apart
        generate.generate(model, tok, ["What is 1 + 1?"], n=1, temperature=0.0, max_new_tokens=8)
    m2 = compute.metrics()
    assert m2["tokens_generated_eval"] == m2["tokens_generated"] - m["tokens_generated"] > 0
    assert m2["gen_flops_eval"] == pytest.approx(m2["gen_flops"] - m["gen_flops"])
    compute.reset()
    assert all(v == 0 for v in compute.metrics().values())


def test_evaluate_marks_its_generation_as_evaluation(mt):
    model, tok = mt
    compute.reset()
    res = evaluation.evaluate((model, tok), tasks.make("math", 3, seed=0, split="test", difficulty=1, mod=7),
                              evaluation.sampled(2, 1.0, 16))
    m = compute.metrics()
    assert m["tokens_generated"] == m["tokens_generated_eval"] == sum(s["n_tokens"] for s in res.samples) > 0


def test_sft_counts_each_row_once_per_epoch_without_padding(tmp_path):
    model, tok = models.load("tiny-25k", seed=0)
    recs = tasks.make("math", 12, seed=0, split="train", subdomain="add", difficulty=1, mod=7, shuffle=False)
    rows = train.to_conversations(recs)
    lengths = [len(tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"])
               for r in rows]
    assert len(set(lengths)) > 1   # rows of different lengths: padding would show
    compute.reset()
    train.sft(model, tok, recs, tmp_path / "sft", epochs=2, lr=1e-3, batch_size=5, packing=False, logging_steps=1)
    m = compute.metrics()
    assert m["tokens_trained"] == 2 * sum(lengths)
    s = _shape(model)
    assert m["train_flops"] == pytest.approx(2 * sum(plan.train_flops(s, L, L) for L in lengths), rel=1e-12)
    assert m["tokens_generated"] == 0 and m["gen_flops"] == 0


def test_train_lm_counts_documents_and_lm_loss_counts_scoring():
    model, tok = models.load("tiny-25k", seed=0)
    docs = [f"{a} plus {b} is {a + b}." * (1 + a % 3) for a in range(10) for b in range(3)]
    ids = train._as_ids(docs, tok, 64)
    compute.reset()
    log = train.train_lm(model, tok, docs, batch_size=8, max_length=64, epochs=2)
    m = compute.metrics()
    assert m["tokens_trained"] == log["tokens"] == 2 * sum(len(x) for x in ids)
    s = _shape(model)
    assert m["train_flops"] == pytest.approx(2 * sum(plan.train_flops(s, len(x), len(x)) for x in ids), rel=1e-12)
    train.lm_loss(model, tok, docs[:5], max_length=64)
    m = compute.metrics()
    assert m["tokens_scored"] == sum(len(x) for x in ids[:5])
    assert m["gen_flops"] == pytest.approx(sum(plan.forward_flops(s, len(x), len(x)) for x in ids[:5]), rel=1e-12)


def test_flops_are_the_plans_formula():
    model, _ = models.load("tiny-25k", seed=0)
    s = _shape(model)
    assert compute.shape(model).flop_params == s.flop_params == plan.model_shape("tiny-25k", use_hub=False).flop_params
    compute.reset()
    compute.add_trained(model, [40] * 10)
    compute.add_generated(model, [30] * 4, prompt_tokens=20)
    compute.add_scored(model, 50)
    m = compute.metrics()
    # the plan's own work items over the same sequences
    w_train = plan.Work("sft", "train", s, sequences=10, new=40, new_cap=40, doc_len=40, doc_len_cap=40)
    w_gen = plan.Work("gen", "generate", s, sequences=4, new=30, new_cap=30, prompt=20)
    w_fwd = plan.Work("score", "forward", s, sequences=1, new=50, new_cap=50)
    assert m["train_flops"] == pytest.approx(plan.work_flops(w_train, False), rel=1e-12)
    assert m["gen_flops"] == pytest.approx(plan.work_flops(w_gen, False) + plan.work_flops(w_fwd, False), rel=1e-12)
    assert m["tokens_trained"] == plan.work_tokens(w_train, False) == 400
    assert m["tokens_generated"] == plan.work_tokens(w_gen, False) == 120 and m["tokens_scored"] == 50
    # 6 N per trained token, 2 N per forward token, plus attention
    assert m["train_flops"] > 6 * s.flop_params * 400 and m["gen_flops"] > 2 * s.flop_params * (4 * 50 + 50)
    with pytest.raises(ValueError, match="prompt lengths"):
        compute.add_generated(model, [1, 2], prompt_tokens=[3])
    with pytest.raises(TypeError, match="cannot size"):
        compute.add_trained(object(), 5)
    import torch   # a module without an HF config (a test's stand-in model): 6 / 2 x its parameters per token
    lin = torch.nn.Linear(4, 3)
    compute.reset()
    compute.add_trained(lin, [5, 5])
    compute.add_scored(lin, 7)
    assert compute.metrics()["train_flops"] == 6 * 15 * 10 and compute.metrics()["gen_flops"] == 2 * 15 * 7


def test_a_stage_writes_every_compute_key_and_agrees_with_the_plan(tmp_path):
    from test_stages_quickstart import TINY

    cfg = quickstart.Config.from_preset("tiny", seed=0, overrides=TINY)
    compute.reset()
    compute.add_trained(models.load("tiny-25k", seed=0)[0], 1000)   # work before the stage starts is not its own
    res = quickstart.run(cfg, tmp_path / "q")
    m = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert m == res.metrics
    for k in compute.KEYS + ("wall_s",):
        assert k in m, k
    assert m["tokens_trained"] > 0 and m["train_flops"] > 0 and m["tokens_generated"] > 0 and m["gen_flops"] > 0
    assert m["tokens_generated_eval"] == m["tokens_generated"]   # quickstart samples only to evaluate
    # the plan of the same settings, its lengths measured on every training record: the same tokens trained
    ctx = plan.Context(plan.Hardware(gpus=1), plan.Parallel(), plan.Assumptions(length_sample=None), use_hub=False)
    p = plan.plan_stage("quickstart", {**cfg.to_dict(), "preset": "tiny"}, ctx)
    sft = next(i for i in p["items"] if i["kind"] == "train")
    assert m["tokens_trained"] == pytest.approx(sft["tokens"], rel=1e-9)
    # FLOPs: the same 6 N T; the plan's attention uses the mean row length, the count each row's own
    assert m["train_flops"] == pytest.approx(sft["flops"], rel=0.01)


def test_rl_phase_counts_rollouts_as_generated_and_the_loss_rows_as_trained(tmp_path):
    from test_rl_phase import coin

    from vtkit import rl_phase

    model, tok = models.load("tiny-25k", seed=0)
    compute.reset()
    res = rl_phase.run_phase(model, tok, tasks.make("math", 8, seed=0, difficulty=1), tmp_path, phase="math",
                             rewards=[coin], max_steps=2, prompts_per_step=2, num_generations=4,
                             max_completion_length=8, lr=1e-2, seed=0, save=False, skip_zero_advantage=False)
    m = compute.metrics()
    lengths = [r["completion_length"] for r in res.steps if "completion_length" in r]
    assert len(lengths) == 2
    assert m["tokens_generated"] == pytest.approx(8 * sum(lengths)) and m["tokens_generated"] > 0
    assert m["tokens_generated_eval"] == 0                               # no held-out set: no evaluation
    assert m["tokens_trained"] == m["tokens_generated"] + m["tokens_prompt"]   # every rollout row in the loss once
    # the same sequences trained (6 N + 3 x attention) as sampled (2 N + attention), nothing scored on-policy
    assert m["tokens_scored"] == 0 and m["train_flops"] == pytest.approx(3 * m["gen_flops"], rel=1e-12)


def test_learning_potential_counts_its_forward_pass_as_scored(mt):
    from vtkit import distill

    model, tok = mt
    prompts, traces = ["What is 2 + 3?", "What is 4 + 1?"], ["<think>2 + 3 = 5</think>\\boxed{5}", "\\boxed{5}"]
    compute.reset()
    distill.learning_potential(model, tok, prompts, traces)
    lengths = [len(distill._chat_prefix_ids(tok, q, True)) + len(tok(y, add_special_tokens=False)["input_ids"])
               for q, y in zip(prompts, traces)]
    m = compute.metrics()
    assert m["tokens_scored"] == sum(lengths) and m["tokens_generated"] == 0 and m["tokens_trained"] == 0
    assert m["gen_flops"] == pytest.approx(sum(plan.forward_flops(_shape(model), L, L) for L in lengths), rel=1e-12)


def test_rl_phase_counts_only_the_rows_left_in_the_loss(tmp_path):
    from vtkit import rl_phase

    def one(completions, **_):   # every group solved: zero advantages, MGPO keeps a single row in the loss
        return [1.0 for _ in completions]

    model, tok = models.load("tiny-25k", seed=0)
    recs = tasks.make("math", 8, seed=0, difficulty=1)
    compute.reset()
    res = rl_phase.run_phase(model, tok, recs, tmp_path, phase="math", rewards=[one], max_steps=1,
                             prompts_per_step=2, num_generations=4, max_completion_length=8, lr=1e-2, seed=0,
                             save=False)
    m, step = compute.metrics(), res.steps[-1]
    assert step["rows_in_loss"] == 1 and step["clipped_ratio"] == 1.0   # one row, every completion 8 tokens
    assert m["tokens_generated"] == 8 * 8
    prompt_lengths = {len(tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=True,
                                                  add_generation_prompt=True, return_dict=True)["input_ids"])
                      for r in recs}
    assert m["tokens_trained"] - 8 in prompt_lengths                 # one row's prompt + completion, not 8 rows'
    assert 4 * m["tokens_trained"] < m["tokens_generated"] + m["tokens_prompt"]
