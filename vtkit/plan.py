"""A resource plan of an experiment before anything runs: memory per GPU, tokens, FLOPs and GPU-hours per stage.

    vtkit plan experiments/paper_pipeline.yaml --gpus 8 --gpu-mem 80            # a table; exit 1 if a stage cannot fit
    vtkit plan experiments/paper_pipeline.yaml --json                             # the same as JSON
    vtkit plan EXPERIMENT --zero 3 --checkpointing on --gen-mfu 0.1 --gpu-tflops 989 --mfu 0.4 --offline
    from vtkit import plan
    stages = plan.plan_experiment("experiments/paper_pipeline.yaml", plan.Hardware(gpus=8, gpu_mem_gb=80))

For each stage of an experiment (its notebook names the stage: 03_mgpo_rl -> rl) the stage's settings are
resolved as the run would resolve them (`vtkit.stages.<name>.Config.from_preset`, the experiment's
parameters and overrides applied), and its work is listed as items: training (SFT, RL updates), generation
(sampling, rollouts, evaluations) and forward-only scoring. Each item gives:

- **memory per GPU**, split into `weights`, `grads`, `optimizer`, `activations`, `logits`, `kv_cache`, for the
  largest batch the item holds at once with every sequence at its cap; the stage's peak is its worst item,
  and it fits when that peak is at most `--gpu-mem` (GiB, 2**30 bytes, as nvidia-smi and DeepSpeed print).
  `kv_cache` is HF generation's KV cache, or a vLLM engine's reserved share (its weights, activations and
  paged KV cache: gpu_memory_utilization x GPU memory, at least its weights and one full sequence's KV);
  `weights` includes other models resident meanwhile (a reward model beside the policy);
- **tokens** trained, generated or scored, at the caps (every output as long as allowed, every filter
  keeping everything) and at plausible lengths (`Assumptions`);
- **FLOPs**: 6 N T for training, 2 N T for forward-only work and generation (prefill included), plus attention
  (`attention_flops`); N counts the parameters that multiply (all but an untied input embedding);
- **GPU-hours** = FLOPs / (peak TFLOP/s x MFU) / 3600. MFU counts model FLOPs, so the recomputation of
  gradient checkpointing is inside the MFU, not added to the FLOPs.

The precision and parallelism assumed (one place, `model_states`): bf16 weights and gradients, fp32
master weights and AdamW moments (16 bytes per parameter under plain data parallelism, as in the ZeRO
paper), data parallel over `gpus` GPUs with ZeRO stage `zero` (0 = DDP) and gradient checkpointing as the
kit's trainers set it on CUDA (`Parallel`; a stage config field `zero_stage` / `gradient_checkpointing`,
where a preset or an experiment's overrides set one, is read). ZeRO-2/3 follow DeepSpeed's own
estimators (`benchmarks/plan_vs_deepspeed.py` checks them).

Per-GPU batches are the ones the training code runs, from the same functions: SFT rows per micro-step
from `vtkit.batching.sft_args` and `vtkit.train.per_device_batch` (the preset's `micro_batch`; packed rows of
`max_length` tokens); RL's update from `vtkit.batching.rl_args` (what `vtkit.rl_phase.run_phase` passes to
trl: `micro_batch` completions a GPU per micro-step, the global batch kept by accumulation; without a
micro-batch every process takes its share, global / processes, in one micro-step); rollouts are a generation batch per process
(trl's HF generate), or trl's colocated vLLM engine (`use_vllm`, `vllm_mode: colocate`), which holds
`vllm_gpu_memory_utilization` of every GPU through the whole phase. The kit's own sampling follows the
stage's `generation` setting: a vLLM engine's share beside the HF model, or HF batches (64, 128, ...) per GPU.
Logits: trl's SFT and GRPO losses and the kit's scoring (`vtkit.logprobs`) compute log-probabilities in
chunks (`chunked_head_bytes`), never the full logits; `train_lm` (the capacity probe) still holds them
(`logit_bytes`). The reward model scores where its preset puts it (`rm_device`, `rm_dtype`), `rm_batch_size`
responses of up to `rm_max_length` (None: the whole prompt + response) tokens a forward. Context: where a
length exceeds a model's max_position_embeddings, a note names the extension `vtkit.context` applies
(the stages load the model with it) or says none is known.

Model shapes: a tiny size from vtkit.models' own config builder; a local folder from its config.json; a
hub id from the hub's config.json when the hub answers within seconds (the local HF cache first), else
from vtkit/data/model_configs.json (the presets' hub models with the source of each value; a model whose
own config could not be read, such as VibeThinker's, takes its base model's shapes, with a note).

Departures and limits: this is arithmetic, not a measurement. Plausible lengths and filter yields are
assumptions (`Assumptions`, stated in the output); lengths of the kit's generated task data are measured
with the tiny models' tokenizer (exact for tiny models, approximate for hub tokenizers); CUDA context,
allocator fragmentation and communication buffers are not counted; attention is assumed to need no
rows x length x length mask (flash attention, or SDPA without padding: packed SFT rows, scoring one trace
at a time at paper); a vLLM engine is counted at its reserved share (it schedules fewer sequences at
once rather than exceed it), so its throughput, not its memory, is what a longer cap costs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

GiB = 2 ** 30
TABLE = Path(__file__).resolve().parent / "data" / "model_configs.json"
PARTS = ("weights", "grads", "optimizer", "activations", "logits", "kv_cache")

# notebook (file stem) -> stage section (vtkit/stages/<section>.py, vtkit/presets/<section>.yaml)
NOTEBOOK_STAGE = {"00_quickstart": "quickstart", "01_sft_curriculum": "sft", "02_spectrum_merge": "merge",
                  "03_mgpo_rl": "rl", "04_self_distill": "distill", "05_instruct_rl": "instruct", "06_clr": "clr",
                  "evaluate": "evaluate", "10_capacity_probe": "capacity", "11_family_probe": "family",
                  "12_pipeline_ablation": "ablation", "20_figures": "figures"}
# notebook parameters whose stage config field has another name
PARAM_FIELD = {"sft": {"init_model": "model"}}
# items per benchmark split the kit loads (vtkit.evalsets.HUB), as the datasets publish them
BENCHMARK_ITEMS = {"aime24": 30, "aime25": 30, "aime26": 30, "hmmt25": 30, "brumo25": 30, "math500": 500,
                   "gsm8k": 1319, "gpqa_diamond": 198, "imo_answerbench": 400, "ifeval": 541, "ifbench": 300,
                   "humaneval": 164, "mbpp": 257, "triviaqa": 17944, "nq_open": 3610, "popqa": 14267,
                   "simpleqa": 4326}


class PlanError(ValueError):
    """An experiment or model the plan cannot size; the message says what to change."""


# ============================================================================ settings of the plan

@dataclass(frozen=True)
class Hardware:
    """The machine: GPUs per run, memory per GPU (GiB), peak dense bf16 TFLOP/s per GPU (H100 SXM: 989),
    and the model-FLOP utilisation reached in training (`mfu`) and in generation (`gen_mfu`; None = mfu)."""
    gpus: int = 8
    gpu_mem_gb: float = 80.0
    gpu_tflops: float = 989.0
    mfu: float = 0.4
    gen_mfu: float | None = None

    def __post_init__(self):
        if self.gpus < 1 or self.gpu_mem_gb <= 0 or self.gpu_tflops <= 0:
            raise PlanError(f"need gpus >= 1, gpu_mem > 0, gpu_tflops > 0 (got {self.gpus}, {self.gpu_mem_gb}, "
                            f"{self.gpu_tflops})")
        for name, v in (("mfu", self.mfu), ("gen_mfu", self.gen_mfu)):
            if v is not None and not 0 < v <= 1:
                raise PlanError(f"{name} must be in (0, 1], a fraction of peak, got {v}")


@dataclass(frozen=True)
class Parallel:
    """How a training stage is spread: ZeRO stage (0 = DDP, 1/2/3 = DeepSpeed's stages) and gradient
    checkpointing (None: the stage's own: on in the kit's trl trainers on CUDA, off in `train_lm`)."""
    zero: int = 0
    checkpointing: bool | None = None

    def __post_init__(self):
        if self.zero not in (0, 1, 2, 3):
            raise PlanError(f"zero must be 0 (DDP), 1, 2 or 3, got {self.zero!r}")


@dataclass(frozen=True)
class Assumptions:
    """Everything the plan assumes that the settings do not say (stated in every output)."""
    mean_frac: float = 0.3        # plausible mean generated length, as a share of its cap (reasoning traces
    #                               stop well before a 16K-64K cap; not measured here)
    keep_frac: float = 0.5        # plausible share kept by a filter whose cap keeps everything (verified
    #                               distinct teacher traces, stage-2 selection by error rate)
    prompt_tokens: int = 128      # prompt length of benchmark and RL prompts (tokens)
    logit_bytes: int = 6          # bytes per training logit: bf16 logits + the fp32 copy the loss reads
    length_sample: int | None = 64  # records per group whose token lengths are measured (None: all)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ============================================================================ model shapes

@dataclass(frozen=True)
class Shape:
    """What the arithmetic needs of a decoder-only model (Qwen2/Qwen3/Llama layout)."""
    name: str
    source: str                   # where the values come from
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool                    # lm_head shares the input embedding
    max_positions: int | None = None
    rope_theta: float | None = None
    qkv_bias: bool = False        # Qwen2: biases on q, k, v
    qk_norm: bool = False         # Qwen3: RMSNorm on q and k per head
    classifier: bool = False      # sequence classification (a reward model): one score per sequence, no lm_head

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def embedding(self) -> int:
        return self.vocab * self.hidden

    @property
    def layer_params(self) -> int:
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        bias = (q + 2 * kv) if self.qkv_bias else 0
        return h * q + 2 * h * kv + q * h + bias + 3 * h * i + 2 * h + (2 * self.head_dim if self.qk_norm else 0)

    @property
    def params(self) -> int:
        """Exact parameter count (embedding, layers, final norm, lm_head when untied, a 1-output score head)."""
        head = self.hidden if self.classifier else (0 if self.tied else self.embedding)
        return self.embedding + self.layers * self.layer_params + self.hidden + head

    @property
    def flop_params(self) -> int:
        """Parameters that multiply per token: all but the input embedding's lookup (a tied embedding is
        also the lm_head, so it multiplies once)."""
        return self.params - (self.embedding if (self.classifier or not self.tied) else 0)

    @property
    def largest_layer(self) -> int:
        """The largest single module's parameters (ZeRO-3 gathers one at a time): the embedding here."""
        return max(self.embedding, self.hidden * self.intermediate, self.hidden * self.q_dim)

    def as_classifier(self) -> "Shape":
        return dataclasses.replace(self, classifier=True, name=self.name)


def shape_from_config(cfg: dict, name: str, source: str) -> Shape:
    """A Shape from a config.json dict (transformers' field names)."""
    need = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
    missing = [k for k in need if cfg.get(k) is None]
    if missing:
        raise PlanError(f"the config of {name!r} ({source}) lacks {missing}; the plan needs {list(need)}")
    mtype = cfg.get("model_type") or ""
    heads = int(cfg["num_attention_heads"])
    return Shape(
        name=name, source=source, hidden=int(cfg["hidden_size"]), layers=int(cfg["num_hidden_layers"]), heads=heads,
        kv_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=int(cfg.get("head_dim") or cfg["hidden_size"] // heads),
        intermediate=int(cfg["intermediate_size"]), vocab=int(cfg["vocab_size"]),
        tied=bool(cfg.get("tie_word_embeddings", False)), max_positions=cfg.get("max_position_embeddings"),
        rope_theta=(cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta")),
        qkv_bias=mtype == "qwen2" or bool(cfg.get("attention_bias", False)), qk_norm=mtype.startswith("qwen3"))


def load_table(path: str | os.PathLike | None = None) -> dict:
    """The model table (vtkit/data/model_configs.json): {"models": {hub id: {"config": ..., ...}}}."""
    return json.loads(Path(path or TABLE).read_text())


def shape_from_table(name: str, table: dict | None = None) -> Shape:
    """Shapes of a hub model from the repository's table; a model whose own config is null takes its
    `base_model`'s (Skywork's reward model: the base-model values the table lists for it)."""
    models = (table or load_table())["models"]
    aliases = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    key = aliases.get(name, name)
    if key not in models:
        raise KeyError(key)
    entry = models[key]
    cfg = entry.get("config") or {}
    if cfg.get("hidden_size") is not None:
        return shape_from_config(cfg, name, f"vtkit/data/model_configs.json ({key})")
    base = entry.get("base_model")
    if base in models and (models[base].get("config") or {}).get("hidden_size") is not None:
        return shape_from_config(models[base]["config"], name, f"vtkit/data/model_configs.json: base model {base} "
                                 f"(the own config of {key} could not be read)")
    ref = entry.get("base_model_reference_values_unverified_for_this_model")
    if ref:
        cfg = {**ref, "model_type": "qwen3" if "qwen3" in str(base).lower() else cfg.get("model_type")}
        return shape_from_config(cfg, name, f"vtkit/data/model_configs.json: unverified base-model values of {base} "
                                 f"(the own config of {key} could not be read)")
    raise KeyError(key)


_HUB_UP: list[bool] = []


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub answers within `timeout` seconds (asked once per process; HF_HUB_OFFLINE says no)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    if not _HUB_UP:
        try:
            import httpx
            from huggingface_hub import constants

            httpx.head(constants.ENDPOINT, timeout=timeout)
            _HUB_UP.append(True)
        except Exception:
            _HUB_UP.append(False)
    return _HUB_UP[0]


def _hub_config(name: str, use_hub: bool) -> dict | None:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name, local_files_only=True).to_dict()
    except Exception:
        pass
    if not use_hub or not hub_reachable():
        return None
    try:
        return AutoConfig.from_pretrained(name).to_dict()
    except Exception:
        return None


def model_shape(spec: str, use_hub: bool = True, table: dict | None = None, base: str | os.PathLike | None = None) -> Shape:
    """Shapes of a model spec: a tiny size, smollm2-135m, a local folder (relative paths also from `base`,
    the notebook's folder, where papermill runs), or a hub id (see the module docstring)."""
    from vtkit import models

    if spec in models.TINY_SIZES:
        return shape_from_config(models.tiny_config(spec).to_dict(), spec, "vtkit.models.tiny_config")
    path = Path(os.path.expanduser(str(spec)))
    for p in [path] + ([Path(base) / path] if base is not None and not path.is_absolute() else []):
        if (p / "config.json").exists():
            return shape_from_config(json.loads((p / "config.json").read_text()), str(spec), f"{p}/config.json")
    if str(spec).startswith((".", "/", "~")):
        raise PlanError(f"model path {spec!r} holds no config.json (yet): if another experiment writes it, run or "
                        f"plan that one first, or name the model it starts from (a hub id or tiny size) instead")
    if spec != models.SMOLLM2 and models._HUB_ID.match(str(spec)):
        cfg = _hub_config(str(spec), use_hub)
        if cfg is not None:
            return shape_from_config(cfg, str(spec), "hub config.json")
    try:
        return shape_from_table(str(spec), table)
    except KeyError:
        pass
    raise PlanError(f"no shapes for model {spec!r}: it is not a tiny size ({', '.join(models.TINY_SIZES)}), not a "
                    f"folder with a config.json, the hub did not answer (or has no such model), and "
                    f"vtkit/data/model_configs.json has no entry for it. Add its config fields there (hidden_size, "
                    f"num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size, vocab_size, "
                    f"tie_word_embeddings) with their source, or pass a local folder that holds its config.json")


# ============================================================================ memory and FLOPs

def model_states(params: int, gpus: int = 1, zero: int = 0, largest_layer: int = 0) -> dict:
    """Bytes per GPU of weights, gradients and optimizer state in bf16 mixed precision with AdamW.

    ZeRO-0 (DDP): bf16 weights 2, bf16 grads 2, fp32 master + two AdamW moments 12 bytes per parameter.
    ZeRO-1: the optimizer state (12) and the fp32 gradient copy it steps on (4) split over the GPUs; the
    bf16 gradients stay whole (2). ZeRO-2: the bf16 gradients split too (DeepSpeed's estimator:
    2 + 18 / N bytes per parameter).
    ZeRO-3: weights, gradients and optimizer state all split; one gathered layer's bf16 weights and
    gradients (2 + 2 bytes x `largest_layer`) on top (DeepSpeed's estimator: 4 x largest layer + 18 / N)."""
    P, N, L = float(params), int(gpus), float(largest_layer)
    if zero == 0:
        return {"weights": 2 * P, "grads": 2 * P, "optimizer": 12 * P}
    if zero == 1:
        return {"weights": 2 * P, "grads": 2 * P + 4 * P / N, "optimizer": 12 * P / N}
    if zero == 2:
        return {"weights": 2 * P, "grads": 6 * P / N, "optimizer": 12 * P / N}
    if zero == 3:
        return {"weights": 2 * P / N + 2 * L, "grads": 2 * L + 4 * P / N, "optimizer": 12 * P / N}
    raise PlanError(f"zero must be 0, 1, 2 or 3, got {zero!r}")


def layer_activation_bytes(s: Shape) -> int:
    """Bytes per token one decoder layer saves for its backward in bf16 autocast: the two RMSNorms'
    fp32 inputs and bf16 outputs, q/k/v (before and after RoPE), the attention output, and the MLP's
    gate, up, act(gate) and product (an estimate from the layer's graph, flash/SDPA attention)."""
    return 12 * s.hidden + 6 * s.q_dim + 6 * s.kv_dim + 8 * s.intermediate


TOKEN_CHUNK, VOCAB_CHUNK = 4096, 32768   # trl's fused LM head tiles (trl.kernels.chunked_logprob)


def chunked_head_bytes(s: Shape, tokens: float, train: bool) -> float:
    """Bytes of log-probabilities computed in chunks for `tokens` positions. Training (trl's fused LM head):
    one bf16 tile of 4096 positions x 32768 vocabulary entries (narrower for a smaller vocabulary:
    `models.fit_fused_head`), the selected hidden states (bf16) and their
    fp32 gradient, the head's fp32 weight gradient and ~40 bytes of per-position statistics. Scoring
    (vtkit.logprobs, no gradient): the bf16 hidden states and `logprobs.CHUNK_TOKENS` positions of fp32 logits
    and log-softmax plus their bf16 source (10 bytes a vocabulary entry)."""
    from vtkit import logprobs

    if train:
        return float(TOKEN_CHUNK * min(VOCAB_CHUNK, s.vocab) * 2 + tokens * (6 * s.hidden + 40) + 4 * s.vocab * s.hidden)
    return float(tokens * (2 * s.hidden + 4) + min(tokens, logprobs.CHUNK_TOKENS) * s.vocab * 10)


def kv_bytes_per_token(s: Shape) -> int:
    """bf16 key and value vectors of every layer for one token."""
    return 2 * 2 * s.layers * s.kv_dim


def attention_flops(s: Shape, tokens: float, seq_len: float, causal: bool = True) -> float:
    """Forward FLOPs of the attention scores and their weighted sum (QK^T and AV) over `tokens` tokens in
    sequences of `seq_len`: 4 x layers x q_dim x L per token, half of it under a causal mask (the
    kernels skip masked blocks); the projections are in the 2 N per token already."""
    return (2 if causal else 4) * s.layers * s.q_dim * float(tokens) * float(seq_len)


def train_flops(s: Shape, tokens: float, seq_len: float, causal: bool = True) -> float:
    """6 N T + 3 x forward attention (backward = 2 x forward)."""
    return 6.0 * s.flop_params * tokens + 3 * attention_flops(s, tokens, seq_len, causal)


def forward_flops(s: Shape, tokens: float, seq_len: float, causal: bool = True) -> float:
    """2 N T + forward attention: scoring, and generation (prompt and generated tokens)."""
    return 2.0 * s.flop_params * tokens + attention_flops(s, tokens, seq_len, causal)


# ============================================================================ work items

@dataclass
class Work:
    """One piece of a stage's work. `kind`: train | generate | forward (scoring without gradients).
    Sequences and tokens are totals over the stage; `rows` x `row_len` is what one GPU holds at once
    (micro-batch or generation batch) at the caps."""
    label: str
    kind: str
    shape: Shape
    sequences: float            # sequences processed in all
    new: float                  # tokens per sequence trained / generated / scored, plausible
    new_cap: float              # the same at the caps
    prompt: float = 0.0         # prompt tokens per sequence (generation: prefilled; train/forward: part of `new`)
    rows: int = 1               # sequences one GPU holds at once
    row_len: float = 0.0        # tokens per held sequence at the caps (prompt + output)
    doc_len: float | None = None  # attention span when rows pack several documents (train, packed)
    doc_len_cap: float | None = None
    sequences_cap: float | None = None  # sequences at the caps, where a filter's yield differs
    checkpointing: bool = True
    states: bool = False        # generation inside a trainer: the optimizer state stays on the GPU
    logits: bool = True         # logits over the vocabulary (False: a reward model's one score)
    chunked: bool = False       # log-probabilities in chunks, never the full logits (trl's fused LM head in
    #                             training, vtkit.logprobs in scoring): `chunked_head_bytes`
    engine: float = 0.0         # bytes of a vLLM engine's share on the GPU meanwhile (gpu_memory_utilization x memory)
    resident: float = 0.0       # bytes of other models held on the GPU meanwhile (a reward model beside the policy)

    @property
    def n_cap(self) -> float:
        return self.sequences if self.sequences_cap is None else self.sequences_cap


def work_tokens(w: Work, cap: bool) -> float:
    """Tokens trained (train), generated (generate) or scored (forward)."""
    return (w.n_cap * w.new_cap) if cap else (w.sequences * w.new)


def work_flops(w: Work, cap: bool) -> float:
    n, new = (w.n_cap, w.new_cap) if cap else (w.sequences, w.new)
    if w.kind == "train":
        span = (w.doc_len_cap if cap else w.doc_len) or new
        return train_flops(w.shape, n * new, span)
    if w.kind == "forward":
        return forward_flops(w.shape, n * new, new)
    length = w.prompt + new
    return forward_flops(w.shape, n * length, length)


def work_memory(w: Work, gpus: int, zero: int, logit_bytes: int) -> dict:
    """Bytes per GPU by part for the item's largest moment (every held sequence at its cap)."""
    s, parts = w.shape, dict.fromkeys(PARTS, 0.0)
    tokens = w.rows * w.row_len
    if w.kind == "train" or w.states:
        parts.update(model_states(s.params, gpus, zero, s.largest_layer))
    else:
        parts["weights"] = 2.0 * s.params / gpus + 2 * s.largest_layer if zero == 3 else 2.0 * s.params
    if w.kind == "train":
        per_layer = layer_activation_bytes(s)
        parts["activations"] = (s.layers * tokens * 2 * s.hidden + tokens * per_layer) if w.checkpointing \
            else s.layers * tokens * per_layer
        if w.logits:
            parts["logits"] = chunked_head_bytes(s, tokens, True) if w.chunked else float(tokens * s.vocab * logit_bytes)
    elif w.kind == "forward":
        parts["activations"] = float(tokens * layer_activation_bytes(s))
        if w.logits:   # chunked (vtkit.logprobs), or bf16 logits of the batch and one row's fp32 log-softmax
            parts["logits"] = chunked_head_bytes(s, tokens, False) if w.chunked \
                else float(tokens * s.vocab * 2 + w.row_len * s.vocab * 8)
    elif not w.engine:
        parts["activations"] = float(w.rows * w.prompt * layer_activation_bytes(s))   # the prefill, layer by layer
        parts["logits"] = float(w.rows * s.vocab * 8)      # fp32 logits and probabilities of the next token
        parts["kv_cache"] = float(tokens * kv_bytes_per_token(s))
    # a vLLM engine (its weights, activations and paged KV cache: the share it reserves; at least its bf16
    # weights and one sequence's KV cache, which vLLM needs to start) and other resident models
    if w.engine:
        need = 2.0 * s.params + w.row_len * kv_bytes_per_token(s) if w.kind == "generate" else 0.0
        parts["kv_cache"] += max(float(w.engine), need)
    parts["weights"] += float(w.resident)
    return parts


# ============================================================================ stage settings

def stage_settings(section: str, preset: str, named: dict, overrides: dict | None, seed: int = 0) -> dict:
    """The stage's resolved settings as a dict: `vtkit.stages.<section>.Config.from_preset` (the run's own
    validation), or `vtkit.presets.resolve` where the stage module does not import."""
    from vtkit import presets, stages
    from vtkit.stages import base

    try:
        cls = stages.get(section).Config
    except (ImportError, AttributeError, SyntaxError):
        cls = None
    if cls is not None:
        fields = cls.fields()
        named = {k: v for k, v in named.items() if k in fields}
        return cls.from_preset(preset, seed=seed, overrides=overrides, **named).to_dict()
    cfg = presets.resolve(preset, section)
    bad = sorted(k for k in (overrides or {}) if k not in cfg)
    if bad:
        raise base.ConfigError(f"unknown override(s) {bad} for stage {section!r}; valid: {', '.join(sorted(cfg))}")
    cfg.update({k: v for k, v in named.items() if k in cfg and v is not None})
    cfg.update(overrides or {})
    return cfg


# ============================================================================ the stages' work

@dataclass
class Context:
    """What the stages of one run share: the machine, the assumptions, shapes, upstream outputs."""
    hw: Hardware
    par: Parallel
    assume: Assumptions
    use_hub: bool = True
    table: dict | None = None
    base: str | None = None                        # the current stage's notebook folder (relative model paths)
    zero: int = 0                                  # the current stage's ZeRO stage
    engine: float = 0.0                            # bytes of the current stage's vLLM engine (its `generation`
    #                                                setting, vtkit.generate); 0 = HF generation
    dirs: dict = field(default_factory=dict)       # out_dir -> stage name (this run)
    out: dict = field(default_factory=dict)        # stage name -> what it produced ({"model": spec, ...})
    _shapes: dict = field(default_factory=dict)
    _lengths: dict = field(default_factory=dict)

    def shape(self, spec: str) -> Shape:
        key = (spec, self.base)
        if key not in self._shapes:
            self._shapes[key] = model_shape(spec, self.use_hub, self.table, self.base)
        return self._shapes[key]

    def upstream(self, value) -> str | None:
        """The earlier stage whose out_dir `value` (a path) lies in, if any."""
        if not isinstance(value, str):
            return None
        for d, name in self.dirs.items():
            if value == d or value.startswith(d.rstrip("/") + "/"):
                return name
        return None

    def model(self, value, default: str) -> str:
        """A model setting: an upstream stage's output stands for the model that stage produced."""
        if value is None:
            return default
        up = self.upstream(value)
        if up is not None:
            if "model" not in self.out.get(up, {}):
                raise PlanError(f"{value!r} names the output of stage {up!r}, which produces no model")
            return self.out[up]["model"]
        return value


def _ceil_div(a: float, b: float) -> int:
    return int(math.ceil(a / b))


def _gen(ctx: Context, label: str, shape: Shape, sequences: float, cap: int, batch: int, prompt: float | None = None,
         states: bool = False, mean: float | None = None) -> Work:
    """A generation item: `sequences` completions of at most `cap` new tokens, `batch` at once per GPU."""
    prompt = ctx.assume.prompt_tokens if prompt is None else prompt
    rows = max(1, min(int(batch), _ceil_div(max(sequences, 1), ctx.hw.gpus)))
    mean = ctx.assume.mean_frac * cap if mean is None else mean
    return Work(label, "generate", shape, sequences, mean, cap, prompt=prompt, rows=rows, row_len=prompt + cap,
                states=states, engine=ctx.engine)


def _engine_bytes(ctx: Context, generation: dict | None) -> float:
    """The GPU share of a vLLM engine under a stage's `generation` setting (vtkit.generate.Settings): 0 for HF."""
    g = generation or {}
    if g.get("backend") not in ("vllm", "auto"):   # auto: vLLM where it is installed on a GPU
        return 0.0
    return float(g.get("gpu_memory_utilization", 0.9)) * ctx.hw.gpu_mem_gb * GiB


def _sft_rows(ctx: Context, batch_size: int, grad_accum: int = 1, micro_batch: int | None = None) -> int:
    """Rows one GPU holds per micro-step of vtkit.train.sft over `gpus` processes, as the stages call it
    (`vtkit.batching.sft_args`, then `vtkit.train.per_device_batch`); a batch the GPUs cannot split evenly
    (an error at run time) is counted as its ceiling share."""
    from vtkit import batching, train

    try:
        a = batching.sft_args(batch_size, grad_accum, micro_batch, world=ctx.hw.gpus)
        return train.per_device_batch(a["batch_size"] * a["grad_accum"], a["grad_accum"], ctx.hw.gpus)
    except ValueError:
        return max(1, _ceil_div(batch_size, ctx.hw.gpus))


def _n_tokens(tok, messages: list, add_generation_prompt: bool = False) -> int:
    """Tokens of a conversation in the chat template, as trl's SFTTrainer tokenises it."""
    return len(tok.apply_chat_template(messages, tokenize=True, return_dict=True,
                                       add_generation_prompt=add_generation_prompt)["input_ids"])


def _measure(ctx: Context, groups: dict, split: str = "train", seed: int = 0, max_length: int | None = None) -> dict:
    """Training rows (one per reference solution) and their mean token length (chat template, truncated at
    `max_length`), measured on up to `length_sample` records per group of `vtkit.tasks.make_groups` settings
    and scaled to each group's n. Tokenizer: the tiny models' (exact for them; approximate for hub models)."""
    key = json.dumps([groups, split, seed, max_length], sort_keys=True, default=str)
    if key in ctx._lengths:
        return ctx._lengths[key]
    from vtkit import tasks
    from vtkit.tokenizer import build_tokenizer

    tok, sample = build_tokenizer(), ctx.assume.length_sample
    rows = toks = prompts = n_rec = 0.0
    lengths = []
    for name, spec in groups.items():
        spec = dict(spec)
        n = int(spec["n"])
        if n < 1:
            continue
        k = n if sample is None else min(n, sample)
        recs = [r for g in tasks.make_groups({name: {**spec, "n": k}}, seed=seed, split=split).values() for r in g]
        scale = n / max(len(recs), 1)
        for r in recs:
            n_rec += scale
            p = _n_tokens(tok, [{"role": "user", "content": r["prompt"]}], add_generation_prompt=True)
            prompts += scale * p
            for sol in r.get("solutions") or []:
                t = _n_tokens(tok, [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": sol}])
                t = t if max_length is None else min(t, max_length)
                rows += scale
                toks += scale * t
                lengths.append((t, scale))
    out = {"records": n_rec, "rows": rows, "tokens": toks, "row_len": toks / rows if rows else 0.0,
           "prompt": prompts / n_rec if n_rec else 0.0, "lengths": lengths}
    ctx._lengths[key] = out
    return out


def _share_at_least(min_tokens: float, mean: float) -> float:
    """Plausible share of traces of at least `min_tokens` tokens, lengths exponential with the given mean."""
    return math.exp(-float(min_tokens) / mean) if mean > 0 else 0.0


def _sft_train(ctx: Context, label: str, shape: Shape, rows: float, row_len: float, epochs: float, batch: int,
               max_length: int, rows_cap: float | None = None, row_len_cap: float | None = None,
               checkpointing: bool = True) -> Work:
    """An SFT item through vtkit.train.sft: packed rows of `max_length` tokens, `batch` rows per GPU (`_sft_rows`),
    the loss through trl's fused LM head (chunked)."""
    row_len_cap = row_len if row_len_cap is None else row_len_cap
    return Work(label, "train", shape, rows * epochs, row_len, row_len_cap,
                sequences_cap=None if rows_cap is None else rows_cap * epochs, rows=int(batch), row_len=max_length,
                doc_len=row_len, doc_len_cap=row_len_cap, checkpointing=checkpointing, chunked=True)


def _packed_steps(tokens: float, batch: int, grad_accum: int, max_length: int, epochs: float) -> int:
    """Optimizer steps of a packed SFT run: ceil(epochs x packed rows / (batch x grad_accum))."""
    return max(1, _ceil_div(epochs * _ceil_div(tokens, max_length), batch * grad_accum))


def _stage_quickstart(s: dict, ctx: Context) -> dict:
    shape = ctx.shape(s["model"])
    m = _measure(ctx, {s["domain"]: {"n": s["n_train"], "difficulty": s["difficulty"], **s["task_kw"]}},
                 seed=s["seed"], max_length=s["max_length"])
    gen = dict(prompt=m["prompt"])
    works = [_gen(ctx, "greedy, before", shape, s["n_test"], s["max_new_tokens"], 64, **gen),
             _sft_train(ctx, "SFT", shape, m["rows"], m["row_len"], s["epochs"], _sft_rows(ctx, s["batch_size"]),
                        s["max_length"]),
             _gen(ctx, "greedy, after", shape, s["n_test"], s["max_new_tokens"], 64, **gen),
             _gen(ctx, f"pass@k, {s['n_samples']} samples", shape, s["n_test"] * s["n_samples"], s["max_new_tokens"],
                  64, **gen)]
    return {"model": s["model"], "works": works, "produces": {"model": s["model"]}}


def _stage_sft(s: dict, ctx: Context, notes: list) -> dict:
    a = ctx.assume
    shape = ctx.shape(s["model"])
    queries = sum(int(g["n"]) for g in s["mixture"].values())
    n_eval = sum(int(g["n"]) for g in s["eval"].values())
    works = []
    if s["teacher"]:
        out_mean = a.mean_frac * s["max_new_tokens"]
        cap_len = min(s["max_length"], a.prompt_tokens + s["max_new_tokens"])
        mean_len = min(s["max_length"], a.prompt_tokens + out_mean)
        works.append(_gen(ctx, f"teacher {s['teacher']}, {s['teacher_samples']} samples", ctx.shape(s["teacher"]),
                          queries * s["teacher_samples"], s["max_new_tokens"], 32))
        rows_cap, rows = queries * s["max_paths"], queries * s["max_paths"] * a.keep_frac
        # stage 2 keeps traces of >= min_tokens: exponential lengths, so the survivors average min_tokens + mean
        share2, share2_cap = _share_at_least(s["min_tokens"], out_mean), float(s["max_new_tokens"] >= s["min_tokens"])
        len2, len2_cap = min(cap_len, a.prompt_tokens + s["min_tokens"] + out_mean), cap_len
    else:
        m = _measure(ctx, s["mixture"], seed=s["seed"], max_length=s["max_length"])
        rows = rows_cap = m["rows"]
        mean_len = cap_len = m["row_len"]
        long = [(t, w) for t, w in m["lengths"] if t >= s["min_tokens"]]
        share2 = share2_cap = sum(w for _, w in long) / max(sum(w for _, w in m["lengths"]), 1e-9)
        len2 = len2_cap = (sum(t * w for t, w in long) / sum(w for _, w in long)) if long else 0.0
    works.append(_gen(ctx, "held-out greedy x 3 (before, stage 1, stage 2)", shape, 3 * n_eval, s["max_new_tokens"],
                      128))
    micro = _sft_rows(ctx, s["batch_size"], s["grad_accum"], s.get("micro_batch"))
    stage1 = _sft_train(ctx, "stage-1 SFT", shape, rows, mean_len, s["epochs1"], micro, s["max_length"],
                        rows_cap, cap_len)
    works.append(stage1)
    probed = queries * share2 if s["teacher"] else rows * share2
    probed_cap = queries * share2_cap if s["teacher"] else rows * share2_cap
    if s["max_rollout_queries"] is not None:
        probed, probed_cap = min(probed, s["max_rollout_queries"]), min(probed_cap, s["max_rollout_queries"])
    ref = ctx.shape(s["reference"]) if s["reference"] else shape
    works.append(_gen(ctx, f"stage-2 reference rollouts x {s['n_rollouts']}", ref, probed * s["n_rollouts"],
                      s["max_new_tokens"], 128))
    works[-1].sequences_cap = probed_cap * s["n_rollouts"]
    rows2 = rows * share2 * (a.keep_frac if s["teacher"] else 1.0)
    rows2_cap = rows_cap * share2_cap
    stage2 = _sft_train(ctx, "stage-2 SFT", shape, rows2, len2, s["epochs2"], micro, s["max_length"],
                        rows2_cap, len2_cap)
    works.append(stage2)
    steps = {f"{name}{cap}": _packed_steps(work_tokens(w, bool(cap)), s["batch_size"], s["grad_accum"], s["max_length"],
                                           1.0)
             for name, w in (("stage1", stage1), ("stage2", stage2)) for cap in ("", "_cap")}
    ckpts = {k: v // s["save_steps"] for k, v in steps.items()}
    _context_note(notes, shape, max(s["max_length"], a.prompt_tokens + s["max_new_tokens"]), "max_length / generation")
    return {"model": s["model"], "works": works,
            "produces": {"model": s["model"], "checkpoints": ckpts, "steps": steps}}


def _context_note(notes: list, shape: Shape, tokens: float, what: str) -> None:
    """A note where `tokens` exceed the model's max_position_embeddings: the extension vtkit.context applies
    (the stage's models.load(..., context=...) sets it), or that none is known (the run would be refused)."""
    from vtkit import context

    if not shape.max_positions or tokens <= shape.max_positions:
        return
    ext = context.extension_for(context.Window(int(shape.max_positions), shape.rope_theta, "default",
                                               "qwen2" if shape.qkv_bias else "", shape.source))
    if ext and tokens <= ext["set"]["max_position_embeddings"]:
        notes.append(f"{shape.name}: {what} up to {int(tokens)} tokens > max_position_embeddings {shape.max_positions}: "
                     f"context extended ({ext['name']}: {ext['set']['max_position_embeddings']} positions)")
    else:
        notes.append(f"{shape.name}: {what} up to {int(tokens)} tokens > max_position_embeddings {shape.max_positions} "
                     f"and no known extension (vtkit.context) covers it")


def _stage_merge(s: dict, ctx: Context, notes: list) -> dict:
    up, works = ctx.upstream(s["sft_dir"]), []
    if up is not None:
        model, ck = ctx.out[up]["model"], ctx.out[up].get("checkpoints", {})
        n_ck, n_ck_cap = (sum(ck.get(st + cap, 0) for st in s["stages"]) for cap in ("", "_cap"))
    else:   # a quick stage-1 SFT of the sft preset's mixture (standalone), or an sft_dir made elsewhere
        sft = stage_settings("sft", s["preset"], {}, None, s["seed"])
        model = sft["model"]
        m = _measure(ctx, sft["mixture"], seed=s["seed"], max_length=sft["max_length"])
        steps = _packed_steps(m["tokens"], sft["batch_size"], sft["grad_accum"], sft["max_length"], s["fallback_epochs"])
        n_ck = n_ck_cap = steps // s["fallback_save_steps"]
        if s["sft_dir"] is None:
            works.append(_sft_train(ctx, "standalone stage-1 SFT", ctx.shape(model), m["rows"], m["row_len"],
                                    s["fallback_epochs"], _sft_rows(ctx, sft["batch_size"]), sft["max_length"]))
        else:
            notes.append(f"sft_dir {s['sft_dir']!r} is not a stage of this experiment: its checkpoints are counted as "
                         "the standalone SFT would make them")
    shape = ctx.shape(model)
    n_ck, n_ck_cap = max(n_ck, 1), max(n_ck_cap, 1)
    n_probe = sum(int(g["n"]) for g in s["probe"].values())
    n_test = sum(int(g["n"]) for g in s["test"].values())
    compared = 3 + len(s["probe"])          # merged, last, best single, one specialist per probe group (at most)
    probe = _gen(ctx, f"probe {n_ck} (caps: {n_ck_cap}) checkpoints x K = {s['k']}", shape, n_ck * n_probe * s["k"],
                 s["max_new_tokens"], 128)
    probe.sequences_cap = n_ck_cap * n_probe * s["k"]
    works += [probe, _gen(ctx, f"test {compared} models x K = {s['k']}", shape, compared * n_test * s["k"],
                          s["max_new_tokens"], 128)]
    return {"model": model, "works": works, "produces": {"model": model}}


def _as_count(v, domain: str) -> int:
    return int(v[domain]) if isinstance(v, dict) else int(v)


def _rl_domains(phases) -> dict:
    from vtkit import rl_phase

    return {ph: rl_phase.phase_spec(ph).domain for ph in phases}


def _rl_start(s: dict, ctx: Context) -> tuple[str, list]:
    """(model spec, works) of the RL preset's start: the init_model, else a quick SFT of `model`."""
    works = []
    if s["init_model"] is None and s.get("start_data"):
        m = _measure(ctx, s["start_data"], seed=0, max_length=256)
        works.append(_sft_train(ctx, "quick SFT start (cached)", ctx.shape(s["model"]), m["rows"], m["row_len"],
                                s["start_epochs"], _sft_rows(ctx, 16), 256))
    return ctx.model(s["init_model"], s["model"]), works


def _rl_batch(ctx: Context, s: dict) -> dict:
    """MGPOConfig's batch fields of the preset on `gpus` processes (vtkit.batching.rl_args, as run_phase sets
    them); a batch the GPUs cannot split evenly (an error at run time) is counted as its ceiling share."""
    from vtkit import batching

    P, G = s["prompts_per_step"], s["num_generations"]
    try:
        return batching.rl_args(P, G, s.get("micro_batch"), s.get("steps_per_generation", 1), world=ctx.hw.gpus)
    except ValueError:
        return {"per_device_train_batch_size": _ceil_div(P * G, ctx.hw.gpus), "gradient_accumulation_steps": 1,
                "steps_per_generation": 1}


def _rl_phase_works(ctx: Context, shape: Shape, label: str, s: dict, n_heldout: float, eval_samples: int,
                    resident: float = 0.0) -> list:
    """One trl RL phase: rollouts (the trainer's states stay on the GPU), the update in micro-batches
    (`_rl_batch`; the loss through trl's fused LM head), held-out evaluations. With trl's vLLM in colocate
    mode (use_vllm, vllm_mode colocate) its engine holds vllm_gpu_memory_utilization of every GPU
    throughout; `resident`: bytes of other models on the GPU (a reward model)."""
    a, G, P = ctx.assume, s["num_generations"], s["prompts_per_step"]
    cap = s["max_completion_length"]
    completions = s["max_steps"] * P * G
    b = _rl_batch(ctx, s)
    gen_rows = b["per_device_train_batch_size"] * b["steps_per_generation"]   # a generation batch per process
    ck = ctx.par.checkpointing if ctx.par.checkpointing is not None else True
    evals = s["max_steps"] // s["eval_every"] if s["eval_every"] else 0
    trl_engine = (float(s.get("vllm_gpu_memory_utilization") or 0.3) * ctx.hw.gpu_mem_gb * GiB
                  if s.get("use_vllm") and s.get("vllm_mode", "colocate") == "colocate" else 0.0)
    rollouts = _gen(ctx, f"{label}: rollouts" + (" (trl's vLLM)" if trl_engine else ""), shape, completions, cap,
                    gen_rows, states=True)
    rollouts.engine, rollouts.resident = trl_engine, resident
    update = Work(f"{label}: policy update, {b['per_device_train_batch_size']} per GPU x "
                  f"{b['gradient_accumulation_steps']} micro-steps", "train", shape, completions,
                  a.prompt_tokens + a.mean_frac * cap, a.prompt_tokens + cap, rows=b["per_device_train_batch_size"],
                  row_len=a.prompt_tokens + cap, checkpointing=ck, chunked=True, engine=trl_engine, resident=resident)
    held = _gen(ctx, f"{label}: held-out x {evals}", shape, evals * n_heldout * eval_samples, cap, 64, states=True)
    held.engine += trl_engine
    held.resident = resident
    return [rollouts, update, held]


def _stage_rl(s: dict, ctx: Context, notes: list) -> dict:
    model, works = _rl_start(s, ctx)
    shape = ctx.shape(model)
    doms = _rl_domains(s["phases"])
    cap = s["max_completion_length"]
    heldout = {d: _as_count(s["n_heldout"], d) for d in dict.fromkeys(doms.values())}
    works.append(_gen(ctx, "held-out, start", shape, sum(heldout.values()) * s["eval_samples"], cap, 64))
    for ph, d in doms.items():
        works.append(_gen(ctx, f"{ph}: solvability filter x {s['filter_rollouts']}", shape,
                          _as_count(s["n_prompts"], d) * s["filter_rollouts"], cap, 64))
        works += _rl_phase_works(ctx, shape, ph, s, heldout[d], s["eval_samples"])
    if s["beta"] > 0:
        notes.append("beta > 0: trl's reference model (bf16 weights) is not counted")
    _context_note(notes, shape, cap + ctx.assume.prompt_tokens, "completions")
    b = _rl_batch(ctx, s)
    notes.append(f"RL batch of {s['prompts_per_step']} x {s['num_generations']} completions over {ctx.hw.gpus} GPU(s): "
                 f"{b['per_device_train_batch_size']} per GPU per micro-step x {b['gradient_accumulation_steps']} "
                 f"accumulation steps (micro_batch {s.get('micro_batch')})")
    return {"model": model, "works": works, "produces": {"model": model, "rl": s}}


def _stage_distill(s: dict, ctx: Context, notes: list) -> dict:
    a = ctx.assume
    up = ctx.upstream(s["rl_dir"])
    rl = ctx.out[up]["rl"] if up is not None else stage_settings("rl", s["preset"], {}, None, s["seed"])
    teacher = ctx.out[up]["model"] if up is not None else _rl_start(rl, ctx)[0]
    student = ctx.model(s["student"], _rl_start(rl, ctx)[0])
    tshape, shape = ctx.shape(teacher), ctx.shape(student)
    doms = _rl_domains(rl["phases"])
    cap = s["max_new_tokens"]
    works, traces, traces_cap = [], 0.0, 0.0
    for ph, d in doms.items():
        n = _as_count(s["n_prompts"], d) * s["n_samples"]
        works.append(_gen(ctx, f"{ph} teacher x {s['n_samples']}", tshape, n, cap, 64))
        traces, traces_cap = traces + n * a.keep_frac, traces_cap + n
    mean_len = a.prompt_tokens + a.mean_frac * cap
    works.append(Work("learning potential (student forward)", "forward", shape, traces, mean_len, a.prompt_tokens + cap,
                      sequences_cap=traces_cap, rows=int(s.get("score_batch_size") or 32), row_len=a.prompt_tokens + cap,
                      chunked=True))
    band = max(0.0, s["high_q"] - s["low_q"])
    kept = traces * _share_at_least(s["min_tokens"], a.mean_frac * cap) * band
    kept_cap = traces_cap * band
    heldout = sum(_as_count(rl["n_heldout"], d) for d in dict.fromkeys(doms.values()))
    ev_cap = rl["max_completion_length"]
    works.append(_gen(ctx, "held-out before/after", shape, 2 * heldout * rl["eval_samples"], ev_cap, 64))
    works.append(_sft_train(ctx, "SFT on the kept band", shape, kept, min(mean_len, s["max_length"]), s["epochs"],
                            _sft_rows(ctx, s["batch_size"], 1, s.get("micro_batch")), s["max_length"], kept_cap,
                            min(a.prompt_tokens + cap, s["max_length"])))
    return {"model": student, "works": works, "produces": {"model": student}}


def _stage_instruct(s: dict, ctx: Context, notes: list) -> dict:
    a = ctx.assume
    rl = stage_settings("rl", s["preset"], {}, None, s["seed"])
    model, works = (ctx.model(s["init_model"], None), []) if s["init_model"] else _rl_start(rl, ctx)
    shape = ctx.shape(model)
    rm = ctx.shape(s["reward_model"]).as_classifier()
    cap = s["max_completion_length"]
    n_open_frac = s["n_open"] / max(s["n_train"] + s["n_open"], 1)
    rm_len = s.get("rm_max_length") or a.prompt_tokens + cap   # reward_model.score: the whole prompt + response
    rm_rows = int(s.get("rm_batch_size") or 32)
    rm_gpu = s.get("rm_device", "auto") != "cpu"
    rm_bytes = (2.0 if s.get("rm_dtype", "auto") in ("auto", "bf16", "bfloat16") else 4.0) * rm.params
    if s["rm_pairs"] > 0:
        works.append(Work("reward model training", "train", rm, 2 * s["rm_pairs"] * s["rm_epochs"], 128, 256,
                          rows=_sft_rows(ctx, 8), row_len=256, logits=False))
    if rm_gpu:
        works.append(Work("reward model pair accuracy", "forward", rm, 2 * 2 * 200, 128, 256, rows=rm_rows,
                          row_len=256, logits=False))
    probes = 2 + (s["sft_epochs"] > 0)
    held = probes * (s["n_heldout"] * s["eval_samples"] + s["n_heldout_open"] * s["eval_samples"])
    works.append(_gen(ctx, f"held-out probe x {probes}", shape, held, cap, 64))
    if s["sft_epochs"] > 0:
        works.append(_sft_train(ctx, "brief SFT", shape, s["n_train"] + s["n_open"], 128, s["sft_epochs"],
                                _sft_rows(ctx, s["sft_batch_size"]), 256))
    works += _rl_phase_works(ctx, shape, "instruct", s, s["n_heldout"], s["eval_samples"],
                             resident=rm_bytes if rm_gpu else 0.0)
    completions = s["max_steps"] * s["prompts_per_step"] * s["num_generations"]
    if rm_gpu:   # scored inside the trainer's step: the policy's training states stay on the GPU
        score = Work("reward model on open-prompt rollouts", "forward", rm, completions * n_open_frac,
                     min(rm_len, a.prompt_tokens + a.mean_frac * cap), min(rm_len, a.prompt_tokens + cap), rows=rm_rows,
                     row_len=min(rm_len, a.prompt_tokens + cap), logits=False)
        score.resident = sum(model_states(shape.params, ctx.hw.gpus, ctx.zero, shape.largest_layer).values())
        works.append(score)
    notes.append(f"reward model on {'the GPU' if rm_gpu else 'the CPU (not counted)'}, {s.get('rm_dtype', 'auto')}, "
                 f"reading {rm_len} tokens, {rm_rows} responses a forward")
    return {"model": model, "works": works, "produces": {"model": model}}


def _task_items(name: str, n: int | None, max_items: int | None = None) -> tuple[int, bool]:
    """(items, known) of a task set: generated sets have `n`; benchmarks their published size."""
    from vtkit import tasks as vtasks

    if name in vtasks.DOMAINS or str(name).startswith("gym:"):
        return int(n or 0), True
    k = BENCHMARK_ITEMS.get(name)
    known = k is not None
    k = k if known else (max_items or n or 500)
    return (min(k, max_items) if max_items else k), known


def _stage_clr(s: dict, ctx: Context, notes: list) -> dict:
    a = ctx.assume
    model = ctx.model(s["model"], s["model"])
    shape = ctx.shape(model)
    n, known = _task_items(s["task"], s["n_problems"])
    if s["n_problems"] is not None:
        n = s["n_problems"]
    elif not known:
        notes.append(f"{s['task']}: item count unknown, assumed {n}")
    K = max(s["K"])
    traj = n * K
    works = [_gen(ctx, f"{K} trajectories per problem", shape, traj, s["max_new_tokens"], 64)]
    if s["teach"]:
        rows = s["teach_records"] * (1 + s["teach_extract_per_record"]) + \
            s["teach_verify_records"] * s["teach_verify_per_record"]
        works.append(_sft_train(ctx, "verifier teaching", shape, rows, a.mean_frac * s["teach_max_length"],
                                s["teach_epochs"], _sft_rows(ctx, s["teach_batch_size"]), s["teach_max_length"],
                                row_len_cap=s["teach_max_length"]))
    if s["held_out_records"]:
        works.append(_gen(ctx, "verifier check", shape, 2 * s["held_out_records"], s["verify_tokens"], 64))
    ctx_len = a.prompt_tokens + s["max_new_tokens"]
    if s["extract"] == "model":
        works.append(_gen(ctx, "claim extraction", shape, traj, s["extract_tokens"], 64, prompt=ctx_len))
    works.append(_gen(ctx, f"claim verification x {s['M']}", shape, traj * s["M"], s["verify_tokens"], 64))
    return {"model": model, "works": works, "produces": {"model": model}}


def _stage_evaluate(s: dict, ctx: Context, notes: list) -> dict:
    from vtkit import evaluation
    from vtkit.stages import evaluate as ev

    model = ctx.model(s["model"], s["model"])
    shape = ctx.shape(model)
    cfg = ev.Config.from_dict(s)
    works = []
    for name in s["tasks"]:
        default = "vibethinker-math" if str(name).startswith("gym:") else evaluation.DEFAULT_PROTOCOL.get(name, "greedy")
        p = ev.protocol_for(cfg, default)
        n, known = _task_items(name, s["n"], s["max_items"])
        if not known:
            notes.append(f"{name}: item count unknown, assumed {n}")
        works.append(_gen(ctx, f"{name}: {p.name}, n = {p.n}", shape, n * p.n, p.max_new_tokens, p.batch_size))
    if s.get("judge"):
        notes.append(f"the judge {s['judge']} is not counted")
    return {"model": model, "works": works, "produces": {"model": model}}


def _stage_family(s: dict, ctx: Context, notes: list) -> dict:
    works = []
    sets = list(s["reasoning"]) + list(s["knowledge"])
    for spec in s["models"]:
        shape = ctx.shape(spec)
        for name in sets:
            k, known = _task_items(name, s["n_items"])
            k = min(k, s["n_items"])
            works.append(_gen(ctx, f"{spec}: {name}", shape, k * s["n_samples"], s["max_new_tokens"], 64))
    largest = max(s["models"], key=lambda m: ctx.shape(m).params)
    return {"model": largest, "works": works, "produces": {}}


def _stage_capacity(s: dict, ctx: Context, notes: list) -> dict:
    from vtkit import corpora

    shape = ctx.shape(s["model"])
    bio = 9 if s["knowledge_format"] == "coded" else 155
    people = s["n_people"] or (corpora.capacity_people(shape.params, s["capacity_factor"])
                               if s["capacity_factor"] else 0)
    m = _measure(ctx, {"math": {"n": s["n_problems"], "difficulty": s["max_depth"], **s["math_kw"]}}, seed=s["seed"],
                 max_length=s["max_length"])
    know = people * s["exposures"] * bio if s["mode"] in ("knowledge", "mixture") else 0
    reason = 0 if s["mode"] == "knowledge" else m["tokens"] * (s["mix_epochs"] if s["mode"] == "mixture"
                                                                else s["max_epochs"])
    tokens = s["token_budget"] if s["capacity_factor"] is None and s["token_budget"] else know + reason
    ck = ctx.par.checkpointing if ctx.par.checkpointing is not None else False   # train_lm does not checkpoint
    rows = max(1, min(s["batch_size"], _ceil_div(s["batch_tokens"], max(m["row_len"], 1))))
    works = [Work("train_lm", "train", shape, tokens / max(m["row_len"], 1), m["row_len"], m["row_len"], rows=rows,
                  row_len=s["max_length"], checkpointing=ck),
             _gen(ctx, "reasoning eval (in/out of distribution)", shape, 2 * s["n_eval"] * (1 + s["pass_k"]), 64, 64,
                  prompt=m["prompt"])]
    notes.append("knowledge evaluation (one forward per person) not counted; corpus tokens estimated "
                 f"({bio} tokens per biography x exposures)")
    return {"model": s["model"], "works": works, "produces": {"model": s["model"]}}


def _stage_figures(s: dict, ctx: Context, notes: list) -> dict:
    return {"model": None, "works": [], "produces": {}}


# the pipeline ablation's free knobs before they are measured (vtkit.stages.ablation prices them from the full
# chain's FLOPs): at tiny, SFT only trained 1.8x the one-stage epochs and the longer RL runs 1.5x the steps
ABLATION_GUESS = {"sft_only_epochs": 2.0, "rl_steps": 1.5}


def _stage_ablation(s: dict, ctx: Context, notes: list) -> dict:
    """The distinct sub-stage runs of vtkit.stages.ablation, each planned as its stage with the ablation's
    overrides; the knobs the run prices from measured FLOPs are taken at ABLATION_GUESS."""
    def sub(name, section, **named):
        over = {**(s.get(section) or {}), **named}
        for key in ("sft_dir", "init_model", "rl_dir", "student"):   # upstream runs of this ablation
            if isinstance(over.get(key), str) and over[key].startswith("ablation://"):
                ctx.dirs.setdefault(f"ablation://{over[key].split('/')[2]}", over[key].split("/")[2])
        st = {**stage_settings(section, s["preset"], {}, over, s["seed"]), "preset": s["preset"], "seed": s["seed"]}
        out = STAGE_WORK[section](st, ctx, notes)
        ctx.out[name], ctx.dirs[f"ablation://{name}"] = out["produces"], name
        for w in out["works"]:
            if w is not None:
                w.label = f"{name}: {w.label}"
                works.append(w)
        return out

    works, arms, T, g = [], set(s["arms"]) | {"full"}, int(s["rl_steps"]), ABLATION_GUESS
    e1 = float(stage_settings("sft", s["preset"], {}, s.get("sft"), s["seed"])["epochs1"])
    sub("sft_one_stage", "sft", epochs2=0)
    full = sub("sft", "sft")
    sub("merge", "merge", sft_dir="ablation://sft")
    chain = lambda rl, init, lam, steps, distill=None: (
        sub(rl, "rl", init_model=f"ablation://{init}/model", mgpo_lambda=lam, max_steps=int(steps)),
        distill and sub(distill, "distill", rl_dir=f"ablation://{rl}", student=f"ablation://{init}/model"))
    chain("rl_mgpo", "merge", 1.0, T, "distill")
    if "plain" in arms:
        chain("rl_plain", "sft_one_stage", 0.0, T * g["rl_steps"])
    if "sft_only" in arms:
        sub("sft_only", "sft", epochs2=0, epochs1=e1 * g["sft_only_epochs"])
    if "no_stage2" in arms:
        sub("sft_no_stage2", "sft", epochs2=0, epochs1=e1)
        sub("merge_no_stage2", "merge", sft_dir="ablation://sft_no_stage2", stages=["stage1"])
        chain("rl_no_stage2", "merge_no_stage2", 1.0, T, "distill_no_stage2")
    if "no_merge" in arms:
        chain("rl_no_merge", "sft", 1.0, T, "distill_no_merge")
    if "grpo" in arms:
        chain("rl_grpo", "merge", 0.0, T, "distill_grpo")
    if "no_distill" in arms:
        chain("rl_no_distill", "merge", 1.0, T * g["rl_steps"])
    notes[:] = list(dict.fromkeys(notes))   # one line per note, not one per sub-stage run
    notes.append(f"pipeline ablation: {len(ctx.out)} sub-stage runs; the knobs priced at run time are taken at "
                 f"{g['sft_only_epochs']}x stage-1 epochs (sft_only) and {g['rl_steps']}x RL steps (plain, no_distill)")
    return {"model": full["model"], "works": works, "produces": {"model": full["model"]}}


STAGE_WORK = {"quickstart": lambda s, ctx, notes: _stage_quickstart(s, ctx), "sft": _stage_sft, "merge": _stage_merge,
              "rl": _stage_rl, "distill": _stage_distill, "instruct": _stage_instruct, "clr": _stage_clr,
              "evaluate": _stage_evaluate, "family": _stage_family, "capacity": _stage_capacity,
              "figures": _stage_figures, "ablation": _stage_ablation}


# ============================================================================ one stage's plan

def plan_stage(section: str, settings: dict, ctx: Context, name: str | None = None) -> dict:
    """The plan of one stage from its resolved settings (a dict; see the module docstring for the keys)."""
    notes: list[str] = []
    zero = ctx.par.zero or int(settings.get("zero_stage") or 0)   # a later preset key, when the command names none
    if settings.get("gradient_checkpointing") is not None and ctx.par.checkpointing is None:
        ctx = dataclasses.replace(ctx, par=dataclasses.replace(ctx.par, checkpointing=settings["gradient_checkpointing"]))
    ctx.zero, ctx.engine = zero, _engine_bytes(ctx, settings.get("generation"))
    out = STAGE_WORK[section](settings, ctx, notes)
    works: list[Work] = [w for w in out["works"] if w is not None]
    if ctx.par.checkpointing is not None:
        for w in works:
            if w.kind == "train":
                w.checkpointing = ctx.par.checkpointing
    hw, gen_mfu = ctx.hw, ctx.hw.gen_mfu or ctx.hw.mfu
    items, peak, peak_parts, peak_label = [], 0.0, dict.fromkeys(PARTS, 0.0), None
    totals = dict.fromkeys(("tokens_trained", "tokens_generated", "tokens_scored"), 0.0)
    totals.update({k + "_cap": 0.0 for k in list(totals)})
    flops = flops_cap = hours = hours_cap = 0.0
    key = {"train": "tokens_trained", "generate": "tokens_generated", "forward": "tokens_scored"}
    for w in works:
        parts = work_memory(w, hw.gpus, zero, ctx.assume.logit_bytes)
        gb = sum(parts.values()) / GiB
        f, fc = work_flops(w, False), work_flops(w, True)
        mfu = hw.mfu if w.kind == "train" else gen_mfu
        h, hc = (x / (hw.gpu_tflops * 1e12 * mfu) / 3600 for x in (f, fc))
        totals[key[w.kind]] += work_tokens(w, False)
        totals[key[w.kind] + "_cap"] += work_tokens(w, True)
        flops, flops_cap, hours, hours_cap = flops + f, flops_cap + fc, hours + h, hours_cap + hc
        items.append({"label": w.label, "kind": w.kind, "model": w.shape.name, "params": w.shape.params,
                      "sequences": w.sequences, "sequences_cap": w.n_cap, "rows_per_gpu": w.rows,
                      "row_len": w.row_len, "tokens": work_tokens(w, False), "tokens_cap": work_tokens(w, True),
                      "flops": f, "flops_cap": fc, "gpu_hours": h, "gpu_hours_cap": hc, "peak_gb_per_gpu": gb,
                      "parts": {k: v / GiB for k, v in parts.items()}, "fits": gb <= hw.gpu_mem_gb})
        if gb > peak:
            peak, peak_parts, peak_label = gb, {k: v / GiB for k, v in parts.items()}, w.label
    model = out["model"]
    shape = ctx.shape(model) if model else None
    return {"stage": name or section, "section": section, "preset": settings.get("preset"), "model": model,
            "params": shape.params if shape else 0, "shape_source": shape.source if shape else None,
            "gpus": hw.gpus, "zero": zero,
            "peak_gb_per_gpu": peak, "peak_item": peak_label, "parts": peak_parts, "fits": peak <= hw.gpu_mem_gb,
            **totals, "flops": flops, "flops_cap": flops_cap, "gpu_hours": hours, "gpu_hours_cap": hours_cap,
            "items": items, "notes": notes, "_produces": out["produces"]}


# ============================================================================ an experiment's plan

def plan_experiment(path, hw: Hardware | None = None, par: Parallel | None = None, assume: Assumptions | None = None,
                    use_hub: bool = True) -> list[dict]:
    """Per stage of every run of the experiment file at `path`, the plan (`plan_stage`), then the total
    (an entry with `stage` "total"). Each entry of a run carries `run` (its run id) when there are several."""
    from vtkit import experiment

    exp = experiment.load(path)
    if hw is None:
        gpus = int(exp.resources.get("gpus") or 0)
        hw = Hardware(gpus=gpus if gpus >= 1 else 8)
    par, assume = par or Parallel(), assume or Assumptions()
    runs = experiment.plan(exp, "runs")
    table = load_table()
    entries = []
    for run in runs:
        ctx = Context(hw, par, assume, use_hub=use_hub, table=table)
        for st in run.stages:
            section = NOTEBOOK_STAGE.get(Path(st.notebook).stem)
            ctx.dirs[str(st.out_dir)] = st.name
            ctx.base = str(Path(st.notebook).parent)
            if section is None:
                raise PlanError(f"stage {st.name!r}: the plan knows no stage for notebook {Path(st.notebook).name}; "
                                f"known notebooks: {', '.join(NOTEBOOK_STAGE)}")
            p = {k: v for k, v in st.params.items() if k not in ("out_dir",)}
            preset, seed, overrides = p.pop("preset", "tiny"), int(p.pop("seed", 0)), p.pop("overrides", None)
            rename = PARAM_FIELD.get(section, {})
            named = {rename.get(k, k): v for k, v in p.items()}
            s = stage_settings(section, preset, named, overrides, seed)
            s.update(preset=preset, seed=seed)
            e = plan_stage(section, s, ctx, st.name)
            ctx.out[st.name] = e.pop("_produces")
            if len(runs) > 1:
                e["run"] = run.run_id
            entries.append(e)
    entries.append(total(entries, hw, par, assume, len(runs)))
    return entries


def total(entries: list[dict], hw: Hardware, par: Parallel, assume: Assumptions, runs: int = 1) -> dict:
    """The sum over stages (and runs); the worst stage's memory."""
    stages = [e for e in entries if e["stage"] != "total"]
    worst = max(stages, key=lambda e: e["peak_gb_per_gpu"], default=None)
    keys = ("tokens_trained", "tokens_generated", "tokens_scored", "flops", "gpu_hours")
    out = {"stage": "total", "runs": runs, "params": max((e["params"] for e in stages), default=0),
           "peak_gb_per_gpu": worst["peak_gb_per_gpu"] if worst else 0.0,
           "parts": worst["parts"] if worst else dict.fromkeys(PARTS, 0.0),
           "fits": all(e["fits"] for e in stages),
           "not_fitting": [e["stage"] + (f" ({e['run']})" if "run" in e else "") for e in stages if not e["fits"]]}
    for k in keys:
        out[k] = sum(e[k] for e in stages)
        out[k + "_cap"] = sum(e[k + "_cap"] for e in stages)
    out["wall_hours"], out["wall_hours_cap"] = out["gpu_hours"] / hw.gpus, out["gpu_hours_cap"] / hw.gpus
    out["hardware"] = dataclasses.asdict(hw)
    out["parallel"] = dataclasses.asdict(par)
    out["assumptions"] = assume.to_dict()
    return out


# ============================================================================ output

def _si(x: float) -> str:
    for unit, v in (("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= v:
            return f"{x / v:.3g}{unit}"
    return f"{x:.3g}"


def format_table(entries: list[dict]) -> str:
    """The plan as text: one line per stage, the memory parts of each stage's peak, the total and the assumptions."""
    tot = entries[-1]
    hw, lines = tot["hardware"], []
    lines.append(f"plan: {hw['gpus']} GPU(s) x {hw['gpu_mem_gb']:g} GiB, {hw['gpu_tflops']:g} TFLOP/s bf16 at MFU "
                 f"{hw['mfu']:g}" + (f" (generation {hw['gen_mfu']:g})" if hw.get("gen_mfu") else "")
                 + f"; ZeRO-{tot['parallel']['zero']}; values 'plausible / at caps'")
    head = (f"{'stage':10s} {'model':34s} {'params':>7s} {'peak GiB':>9s} {'fits':>4s} {'trained tok':>15s} "
            f"{'generated tok':>15s} {'FLOPs':>15s} {'GPU-hours':>17s}")
    lines += [head, "-" * len(head)]
    for e in entries[:-1]:
        name = e["stage"] + (f"[{e['run'][:8]}]" if "run" in e else "")
        lines.append(f"{name:10s} {str(e['model'] or '-')[-34:]:34s} {_si(e['params']).replace('G', 'B'):>7s} "
                     f"{e['peak_gb_per_gpu']:9.1f} {'yes' if e['fits'] else 'NO':>4s} "
                     f"{_si(e['tokens_trained']) + ' / ' + _si(e['tokens_trained_cap']):>15s} "
                     f"{_si(e['tokens_generated']) + ' / ' + _si(e['tokens_generated_cap']):>15s} "
                     f"{_si(e['flops']) + ' / ' + _si(e['flops_cap']):>15s} "
                     f"{e['gpu_hours']:>7.1f} / {e['gpu_hours_cap']:<7.1f}")
    lines.append("-" * len(head))
    lines.append(f"{'total':10s} {'':34s} {'':>7s} {tot['peak_gb_per_gpu']:9.1f} {'yes' if tot['fits'] else 'NO':>4s} "
                 f"{_si(tot['tokens_trained']) + ' / ' + _si(tot['tokens_trained_cap']):>15s} "
                 f"{_si(tot['tokens_generated']) + ' / ' + _si(tot['tokens_generated_cap']):>15s} "
                 f"{_si(tot['flops']) + ' / ' + _si(tot['flops_cap']):>15s} "
                 f"{tot['gpu_hours']:>7.1f} / {tot['gpu_hours_cap']:<7.1f}")
    lines.append(f"wall-clock on {hw['gpus']} GPU(s): {tot['wall_hours']:.1f} h plausible, {tot['wall_hours_cap']:.1f} h "
                 f"at caps" + (f"; {tot['runs']} runs" if tot["runs"] > 1 else ""))
    lines.append("")
    lines.append("peak memory per GPU (GiB) of each stage's worst item:")
    head2 = f"{'stage':10s} " + " ".join(f"{p:>11s}" for p in PARTS) + "  worst item"
    lines += [head2, "-" * len(head2)]
    for e in entries[:-1]:
        lines.append(f"{e['stage'][:10]:10s} " + " ".join(f"{e['parts'][p]:11.1f}" for p in PARTS)
                     + f"  {e['peak_item'] or '-'}")
    notes = [f"{e['stage']}: {n}" for e in entries[:-1] for n in e["notes"]]
    sources = sorted({f"{e['model']}: {e['shape_source']}" for e in entries[:-1] if e["model"]})
    lines += ["", "model shapes: " + "; ".join(sources)]
    if notes:
        lines += ["notes:"] + [f"  {n}" for n in notes]
    a = tot["assumptions"]
    lines.append(f"assumed: plausible outputs at {a['mean_frac']:g} x their cap; filters keep {a['keep_frac']:g} of "
                 f"what they could; {a['prompt_tokens']} prompt tokens; bf16 weights/grads + fp32 master and AdamW; "
                 f"{a['logit_bytes']} bytes per training logit; GiB = 2**30 bytes")
    if not tot["fits"]:
        lines.append(f"does not fit in {hw['gpu_mem_gb']:g} GiB: {', '.join(tot['not_fitting'])}")
    return "\n".join(lines)


def to_json(entries: list[dict], items: bool = True) -> list[dict]:
    return [e if items else {k: v for k, v in e.items() if k != "items"} for e in entries]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment YAML file (experiments/*.yaml)")
    p.add_argument("--gpus", type=int, default=None,
                   help="GPUs per run (default: the file's resources.gpus, else 8)")
    p.add_argument("--gpu-mem", type=float, default=80.0, help="memory per GPU in GiB (default 80)")
    p.add_argument("--gpu-tflops", type=float, default=989.0, help="peak dense bf16 TFLOP/s per GPU (default 989, H100)")
    p.add_argument("--mfu", type=float, default=0.4, help="model-FLOP utilisation (default 0.4)")
    p.add_argument("--gen-mfu", type=float, default=None, help="MFU of generation (default: --mfu)")
    p.add_argument("--zero", type=int, default=0, choices=(0, 1, 2, 3), help="ZeRO stage (default 0: DDP)")
    p.add_argument("--checkpointing", choices=("auto", "on", "off"), default="auto",
                   help="gradient checkpointing (auto: as the stage's trainer sets it on CUDA)")
    p.add_argument("--offline", action="store_true", help="do not ask the hub for configs (the repository's table)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON: per stage, then the total")


def main_args(args: argparse.Namespace) -> int:
    """`vtkit plan`: print the plan; exit 1 naming the stages that do not fit, 0 otherwise."""
    from vtkit import experiment

    gpus = args.gpus
    if gpus is None:
        g = int(experiment.load(args.experiment).resources.get("gpus") or 0)
        gpus = g if g >= 1 else 8
    hw = Hardware(gpus=gpus, gpu_mem_gb=args.gpu_mem, gpu_tflops=args.gpu_tflops, mfu=args.mfu, gen_mfu=args.gen_mfu)
    ck = {"auto": None, "on": True, "off": False}[args.checkpointing]
    entries = plan_experiment(args.experiment, hw, Parallel(zero=args.zero, checkpointing=ck),
                              use_hub=not args.offline)
    print(json.dumps(to_json(entries), indent=1) if args.json else format_table(entries))
    tot = entries[-1]
    if not tot["fits"]:
        print(f"vtkit plan: {len(tot['not_fitting'])} stage(s) do not fit in {hw.gpu_mem_gb:g} GiB per GPU: "
              f"{', '.join(tot['not_fitting'])}", file=sys.stderr)
        return 1
    return 0
