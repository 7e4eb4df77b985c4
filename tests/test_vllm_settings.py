"""vLLM where it pays (issue 25, item 2), checked on CPU by what would reach trl and vLLM.

RL rollouts: the MGPOConfig that `rl_phase.run_phase` builds from each RL preset carries exactly the
preset's vLLM settings (trl's own GRPOConfig fields). The kit's own sampling: a stage's start sets
`vtkit.generate`'s backend from its preset's `generation` key, and at `paper` the keywords reaching
`vllm.LLM` and `vllm.SamplingParams` (a fake vllm module that records them) are the preset's. A
missing vLLM is an error naming `pip install vllm` when sampling starts, never when a config is read.
"""
import dataclasses
import sys
import types

import pytest
from trl import GRPOConfig

from vtkit import generate, models, presets, rl_phase, stages, tasks
from vtkit.stages import base
from vtkit.stages import rl as stage

VLLM_KEYS = ("use_vllm", "vllm_mode", "vllm_gpu_memory_utilization", "vllm_tensor_parallel_size",
             "vllm_max_model_length", "vllm_server_base_url")
GEN_SECTIONS = [s for s in stages.STAGES if "generation" in stages.get(s).Config.fields()]


class FakeVLLM(types.ModuleType):
    """A stand-in `vllm` module: records the keywords of LLM(...) and SamplingParams(...) and answers
    each prompt with n samples of `reply` token ids."""

    def __init__(self, reply: list[int]):
        super().__init__("vllm")
        self.llm_kwargs, self.params_kwargs, self.prompts = [], [], []
        fake = self

        class LLM:
            def __init__(self, **kw):
                fake.llm_kwargs.append(kw)

            def generate(self, prompts, params, use_tqdm=True):
                fake.prompts.append(prompts)
                out = types.SimpleNamespace(token_ids=list(reply), finish_reason="stop")
                return [types.SimpleNamespace(outputs=[out] * params.kw["n"]) for _ in prompts]

        class SamplingParams:
            def __init__(self, **kw):
                self.kw = kw
                fake.params_kwargs.append(kw)

        self.LLM, self.SamplingParams = LLM, SamplingParams


class Built(Exception):
    """Raised by the fake trainer: the config was built, training never starts."""


@pytest.fixture(autouse=True)
def default_backend():
    old = generate.configure(None)
    yield
    generate.configure(old)


@pytest.fixture(scope="module")
def mt():
    return models.load("tiny-1m", seed=0)


def built_args(monkeypatch, model, tok, cfg, tmp_path):
    """The MGPOConfig run_phase builds for `cfg` (its preset's phase settings), without training."""
    seen = {}

    def fake_trainer(*, args, **kw):
        seen["args"] = args
        raise Built

    monkeypatch.setattr(rl_phase, "MGPOTrainer", fake_trainer)
    records = list(tasks.make("math", cfg.prompts_per_step, seed=0, difficulty=1))
    with pytest.raises(Built):
        rl_phase.run_phase(model, tok, records, tmp_path / "phase", phase="math", **stage.phase_kwargs(cfg))
    return seen["args"]


def test_rl_vllm_keys_are_trl_grpo_config_fields_and_phase_settings():
    trl_fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert set(VLLM_KEYS) <= trl_fields
    assert set(VLLM_KEYS) <= set(stage.PHASE_SETTINGS)
    assert "generation" in stage.STAGE_SETTINGS


@pytest.mark.parametrize("preset", presets.PRESETS)
def test_mgpo_config_carries_the_presets_vllm_settings(preset, mt, monkeypatch, tmp_path):
    cfg = stage.Config.from_preset(preset)
    assert cfg.use_vllm is (preset == "paper") and cfg.vllm_mode == "colocate"
    monkeypatch.setitem(sys.modules, "vllm", FakeVLLM([]))   # installed, as on a GPU machine
    args = built_args(monkeypatch, *mt, cfg, tmp_path)
    assert {k: getattr(args, k) for k in VLLM_KEYS} == {k: getattr(cfg, k) for k in VLLM_KEYS}
    # and a change of the preset's values is what trl gets
    other = cfg.replace(use_vllm=True, vllm_mode="server", vllm_gpu_memory_utilization=0.55,
                        vllm_tensor_parallel_size=2, vllm_max_model_length=4096,
                        vllm_server_base_url="http://node-1:8000")
    args = built_args(monkeypatch, *mt, other, tmp_path)
    assert {k: getattr(args, k) for k in VLLM_KEYS} == {
        "use_vllm": True, "vllm_mode": "server", "vllm_gpu_memory_utilization": 0.55,
        "vllm_tensor_parallel_size": 2, "vllm_max_model_length": 4096, "vllm_server_base_url": "http://node-1:8000"}


def test_use_vllm_without_vllm_is_a_clear_error_before_the_trainer(mt, monkeypatch, tmp_path):
    cfg = stage.Config.from_preset("paper")           # resolving the paper config needs no vLLM
    monkeypatch.setitem(sys.modules, "vllm", None)    # as if vLLM were not installed
    monkeypatch.setattr(rl_phase, "MGPOTrainer", lambda **kw: pytest.fail("the trainer was built"))
    records = list(tasks.make("math", cfg.prompts_per_step, seed=0, difficulty=1))
    with pytest.raises(ImportError, match=r"use_vllm.*pip install vllm"):
        rl_phase.run_phase(*mt, records, tmp_path / "phase", phase="math", **stage.phase_kwargs(cfg))


@pytest.mark.parametrize("section", GEN_SECTIONS)
@pytest.mark.parametrize("preset", presets.PRESETS)
def test_stage_start_sets_the_presets_generation_backend(section, preset, tmp_path):
    cfg = stages.get(section).Config.from_preset(preset)
    assert cfg.generation["backend"] == ("vllm" if preset == "paper" else "hf")
    base.start(cfg, tmp_path)
    assert dataclasses.asdict(generate.settings()) == {**dataclasses.asdict(generate.Settings()), **cfg.generation}


def test_a_stage_without_generation_key_samples_with_hf(tmp_path):
    generate.configure({"backend": "vllm"})
    no_key = [s for s in stages.STAGES if s not in GEN_SECTIONS]
    assert no_key, "every stage has a generation key: test another way"
    base.start(stages.get(no_key[0]).Config.from_preset("paper"), tmp_path)
    assert generate.settings() == generate.Settings()


@pytest.mark.parametrize("section", ["rl", "evaluate"])
def test_paper_sampling_reaches_vllm_with_the_presets_parallel_sizes(section, mt, monkeypatch, tmp_path):
    model, tok = mt
    cfg = stages.get(section).Config.from_preset("paper")
    cfg = cfg.replace(generation={**cfg.generation, "data_parallel_size": 8})   # as the stage in 8 processes
    base.start(cfg, tmp_path)
    reply = tok("the answer", add_special_tokens=False)["input_ids"]
    fake = FakeVLLM(reply + [tok.eos_token_id])
    monkeypatch.setitem(sys.modules, "vllm", fake)
    g = cfg.generation
    world = g["tensor_parallel_size"] * g["data_parallel_size"]
    monkeypatch.setenv("WORLD_SIZE", str(world))       # as accelerate launch sets it in each process
    monkeypatch.setenv("RANK", "3")
    recs = generate.generate(model, tok, ["What is 2+3?", "And 4+4?"], n=3, temperature=1.0, top_p=0.95,
                             max_new_tokens=40, seed=7)
    assert len(fake.llm_kwargs) == 1
    llm = dict(fake.llm_kwargs[0])
    assert llm.pop("model")            # the HF model, saved to a folder vLLM loads
    assert llm == {"tensor_parallel_size": g["tensor_parallel_size"],
                   "gpu_memory_utilization": g["gpu_memory_utilization"],
                   "distributed_executor_backend": "external_launcher", "seed": 3 // g["tensor_parallel_size"]}
    assert fake.params_kwargs[0] | {"stop_token_ids": None} == {
        "n": 3, "temperature": 1.0, "top_p": 0.95, "top_k": -1, "max_tokens": 40, "seed": 7, "stop_token_ids": None,
        "skip_special_tokens": False, "repetition_penalty": 1.0}
    assert tok.eos_token_id in fake.params_kwargs[0]["stop_token_ids"]
    assert len(fake.prompts[0]) == 2 and all("prompt_token_ids" in p for p in fake.prompts[0])
    assert [(r["prompt_index"], r["sample_index"]) for r in recs] == [(p, s) for p in range(2) for s in range(3)]
    assert {r["text"] for r in recs} == {tok.decode(reply)} and all(r["n_tokens"] == len(reply) + 1 for r in recs)


def test_one_process_engine_and_max_model_len(mt, monkeypatch):
    fake = FakeVLLM([mt[1].eos_token_id])
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    generate.configure({"backend": "vllm", "tensor_parallel_size": 2, "max_model_len": 8192,
                        "gpu_memory_utilization": 0.8})
    generate.generate(*mt, ["hi"], max_new_tokens=4)
    kw = {k: v for k, v in fake.llm_kwargs[0].items() if k != "model"}
    assert kw == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.8, "max_model_len": 8192, "seed": 0}


def test_data_parallel_needs_the_processes_it_names(mt, monkeypatch, tmp_path):
    cfg = stage.Config.from_preset("paper")
    base.start(cfg.replace(generation={**cfg.generation, "data_parallel_size": 8}), tmp_path)
    monkeypatch.setitem(sys.modules, "vllm", FakeVLLM([mt[1].eos_token_id]))
    monkeypatch.delenv("WORLD_SIZE", raising=False)              # one process (a plain notebook kernel)
    with pytest.raises(ValueError, match=r"8 processes.*accelerate launch --num_processes 8"):
        generate.generate(*mt, ["hi"], max_new_tokens=4)


def test_missing_vllm_is_an_error_when_sampling_starts_not_at_config_time(mt, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)     # as if vLLM were not installed
    for section in GEN_SECTIONS:                        # resolving and starting a paper stage needs no vLLM
        base.start(stages.get(section).Config.from_preset("paper"), tmp_path / section)
    assert generate.settings().backend == "vllm"
    with pytest.raises(ImportError, match=r"pip install vllm.*\[gpu\]"):
        generate.generate(*mt, ["What is 2+3?"], max_new_tokens=4)
    generate.configure(None)                            # HF needs nothing more
    assert len(generate.generate(*mt, ["What is 2+3?"], max_new_tokens=4)) == 1


def test_generation_settings_are_checked():
    with pytest.raises(ValueError, match="unknown generation setting.*tensor_parallel"):
        generate.configure({"backend": "vllm", "tp": 2})
    with pytest.raises(ValueError, match="backend must be one of"):
        generate.configure({"backend": "tgi"})
    with pytest.raises(ValueError, match="data_parallel_size must be an int >= 1"):
        generate.configure({"backend": "vllm", "data_parallel_size": 0})
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        generate.configure({"backend": "vllm", "gpu_memory_utilization": 1.5})
    assert generate.settings() == generate.Settings()    # a refused setting changes nothing
