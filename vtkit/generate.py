"""Batched sampling: prompts in, one record per (prompt, sample) out, on HF transformers or vLLM.

    from vtkit import models, generate
    model, tok = models.load("tiny-1m")
    recs = generate.generate(model, tok, ["What is 2+3?"], n=4, temperature=1.0, top_p=0.95, max_new_tokens=64)
    recs[0] == {"prompt_index": 0, "sample_index": 0, "prompt": "What is 2+3?", "text": "<think>...",
                "n_prompt_tokens": 14, "n_tokens": 37, "truncated": False}

How (backend="hf"): each prompt is wrapped in the chat template as a user turn (chat=True) and
repeated n times; the (prompt, sample) rows are sorted by prompt length so a batch holds prompts of
similar length (little padding), left-padded, and run through `model.generate` with the KV cache;
records come back in (prompt_index, sample_index) order. Sampling is seeded once per call, so the
same inputs and seed give the same texts on CPU. temperature == 0 is greedy; top_k <= 0 and
top_p == 1 are off. The sampling arguments are the whole story: the model's own generation_config
sampling defaults (a hub model's top_k=20, repetition_penalty=1.05, ...) are overridden.

Records: `n_tokens` counts generated tokens including the stop token; `truncated` is True when the
sample hit max_new_tokens without a stop token; `text` drops ChatML markers and padding but keeps
`<think>`/`</think>` visible, so graders can find the answer after `</think>`. Every call adds its
generated and prompt tokens to `vtkit.compute`.

backend="vllm" runs the same interface through vLLM (needs `pip install vllm`, a CUDA GPU, and a
model given as an HF folder path, a `vllm.LLM`, or an HF model that is saved to a temp folder first).
backend="auto" picks vLLM when it is importable and CUDA is present, else HF.

The backend of a call that names none (`backend=None`, every caller in the kit) is the session's
setting, `configure(...)`: each stage's `base.start` applies its preset's `generation` key, e.g.
`{backend: vllm, tensor_parallel_size: 1, data_parallel_size: 8, gpu_memory_utilization: 0.9}` at
`paper`, `{backend: hf}` at tiny and small (`settings()` shows it). vLLM engine settings:
`tensor_parallel_size` GPUs per engine; `data_parallel_size` engine replicas, one per group of
`tensor_parallel_size` processes of a multi-process run (`accelerate launch`: then each engine
starts with vLLM's `external_launcher` on its process's GPU, as trl's colocate mode does, and each
process samples the prompts it is given); `gpu_memory_utilization` and `max_model_len` (None = the
model config's) as vLLM takes them. vLLM is imported only when sampling starts: a missing vLLM is
an error there, not when a config is resolved.

Departures from the paper: the reports sample with vLLM and no length cap (up to 40k-64k tokens);
HF generation is the CPU default here, and max_new_tokens is a parameter.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import GenerationConfig

from vtkit import compute, models

KEEP_TOKENS = ("<think>", "</think>")  # reasoning tags stay in the text even where a tokenizer marks them special
_VLLM_ENGINES: dict[tuple, object] = {}  # (path, engine settings) -> vllm.LLM: calls on one folder reuse it
BACKENDS = ("hf", "vllm", "auto")
INSTALL_HINT = ("vLLM is not installed: `pip install vllm` (the kit's `gpu` extra: `pip install -e '.[gpu]'`) "
                "on a CUDA machine")


@dataclass(frozen=True)
class Settings:
    """The session's sampling backend (`configure`), used by every call that names no backend."""
    backend: str = "hf"                    # hf, vllm, or auto (vLLM when importable and CUDA is present)
    tensor_parallel_size: int = 1          # vLLM: GPUs per engine
    data_parallel_size: int = 1            # vLLM: engine replicas (processes / tensor_parallel_size)
    gpu_memory_utilization: float = 0.9    # vLLM: share of each GPU's memory an engine takes
    max_model_len: int | None = None       # vLLM: engine context in tokens; None = the model config's


_SETTINGS = Settings()


def configure(generation: dict | Settings | None = None) -> Settings:
    """Set the session's backend from a preset's `generation` dict (None: the default, HF).

    Checked here (unknown keys, types, ranges); vLLM itself is not imported until sampling starts.
    Returns the previous settings, so a caller can restore them."""
    global _SETTINGS
    if generation is None:
        new = Settings()
    elif isinstance(generation, Settings):
        new = generation
    elif isinstance(generation, dict):
        valid = [f.name for f in dataclasses.fields(Settings)]
        bad = sorted(set(generation) - set(valid))
        if bad:
            raise ValueError(f"unknown generation setting(s) {bad}; valid: {', '.join(valid)}")
        new = Settings(**generation)
    else:
        raise TypeError(f"generation must be a dict such as {{'backend': 'vllm', 'tensor_parallel_size': 1}}, "
                        f"got {generation!r}")
    if new.backend not in BACKENDS:
        raise ValueError(f"generation backend must be one of {BACKENDS}, got {new.backend!r}")
    for name in ("tensor_parallel_size", "data_parallel_size"):
        v = getattr(new, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"generation {name} must be an int >= 1, got {v!r}")
    if not (isinstance(new.gpu_memory_utilization, (int, float)) and 0 < new.gpu_memory_utilization <= 1):
        raise ValueError(f"generation gpu_memory_utilization must be in (0, 1], got {new.gpu_memory_utilization!r}")
    if new.max_model_len is not None and (not isinstance(new.max_model_len, int) or new.max_model_len < 1):
        raise ValueError(f"generation max_model_len must be a positive int or None, got {new.max_model_len!r}")
    old, _SETTINGS = _SETTINGS, new
    return old


def settings() -> Settings:
    """The session's sampling backend (what a call with backend=None uses)."""
    return _SETTINGS


def require_vllm(what: str = "backend='vllm'"):
    """The vllm module, or an ImportError that says how to install it (called when sampling starts)."""
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"{what} needs vLLM, but {INSTALL_HINT}; or sample with HF "
                          "(generation: {backend: hf}, use_vllm: false)") from e
    return vllm


def _messages(prompt) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and all(isinstance(m, dict) and "role" in m for m in prompt):
        return prompt  # already a conversation
    raise TypeError(f"a prompt must be a string (a user turn) or a list of chat messages, got {type(prompt).__name__}")


def encode_prompts(tokenizer, prompts, chat: bool = True) -> list[list[int]]:
    """Token ids of each prompt: chat-templated user turn + assistant header (chat=True), or the raw text."""
    if chat:
        if not tokenizer.chat_template:
            raise ValueError("chat=True but the tokenizer has no chat_template; pass chat=False for raw text prompts")
        texts = [tokenizer.apply_chat_template(_messages(p), add_generation_prompt=True, tokenize=False) for p in prompts]
        return tokenizer(texts, add_special_tokens=False)["input_ids"]  # the template already holds any bos
    if not all(isinstance(p, str) for p in prompts):
        raise TypeError("chat=False needs string prompts")
    return tokenizer(list(prompts))["input_ids"]


def stop_ids(model, tokenizer) -> list[int]:
    """Every id that ends a sample: the tokenizer's eos, <|im_end|>, and the generation_config eos id(s)."""
    ids = []
    gc_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for i in [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None]:
        ids.append(i)
    ids += gc_eos if isinstance(gc_eos, (list, tuple)) else [gc_eos]
    ids = list(dict.fromkeys(i for i in ids if i is not None))
    if not ids:
        raise ValueError("no stop token: the tokenizer has no eos_token and the model's generation_config no eos_token_id")
    return ids


def _decoder(tokenizer):
    """ids -> text without special tokens (pad, ChatML markers, eos), keeping <think> and </think>."""
    specials = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special} | set(tokenizer.all_special_ids)
    specials -= {tokenizer.convert_tokens_to_ids(t) for t in KEEP_TOKENS if t in tokenizer.get_vocab()}

    def decode(seqs: list[list[int]]) -> list[str]:
        kept = [[i for i in s if i not in specials] for s in seqs]
        return tokenizer.batch_decode(kept, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    return decode


def _check(prompts, n, temperature, top_p, max_new_tokens, batch_size):
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of prompts; wrap a single prompt as [prompt]")
    if n < 1 or batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"n, batch_size and max_new_tokens must be >= 1 (got {n}, {batch_size}, {max_new_tokens})")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1 (got {temperature}, {top_p})")


def generate(model, tokenizer, prompts, *, n: int = 1, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
             max_new_tokens: int = 256, batch_size: int = 64, seed: int = 0, chat: bool = True,
             backend: str | None = None) -> list[dict]:
    """Sample n completions per prompt; records ordered by (prompt_index, sample_index). See the module docstring.

    backend: "hf", "vllm" or "auto"; None = the session's (`configure`, from the stage's preset)."""
    prompts = list(prompts) if not isinstance(prompts, str) else prompts
    _check(prompts, n, temperature, top_p, max_new_tokens, batch_size)
    backend = _SETTINGS.backend if backend is None else backend
    if backend == "auto":
        backend = "vllm" if importlib.util.find_spec("vllm") is not None and torch.cuda.is_available() else "hf"
    if backend not in ("hf", "vllm"):
        raise ValueError(f"backend must be 'hf', 'vllm' or 'auto', got {backend!r}")
    encoded = encode_prompts(tokenizer, prompts, chat)
    stops = stop_ids(model, tokenizer)
    run = _run_vllm if backend == "vllm" else _run_hf
    outs = run(model, tokenizer, encoded, stops, n=n, temperature=temperature, top_p=top_p, top_k=top_k,
               max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    # outs[(p, s)] = (generated ids, hit max_new_tokens without a stop token)
    decode = _decoder(tokenizer)
    keys = [(p, s) for p in range(len(prompts)) for s in range(n)]
    bodies, counts, truncs = [], [], []
    for k in keys:
        ids, truncated = outs[k]
        end = next((j for j, t in enumerate(ids) if t in stops), None)
        bodies.append(ids if end is None else ids[:end])
        counts.append(len(ids) if end is None else end + 1)
        truncs.append(truncated)
    texts = decode(bodies)
    compute.add_generated(model, counts, prompt_tokens=[len(encoded[p]) for p, _ in keys])
    return [
        {"prompt_index": p, "sample_index": s, "prompt": prompts[p], "text": text,
         "n_prompt_tokens": len(encoded[p]), "n_tokens": c, "truncated": tr}
        for (p, s), text, c, tr in zip(keys, texts, counts, truncs)
    ]


def _run_hf(model, tokenizer, encoded, stops, *, n, temperature, top_p, top_k, max_new_tokens, batch_size, seed):
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    sample = temperature > 0
    gc = GenerationConfig(
        max_new_tokens=max_new_tokens, min_new_tokens=0, do_sample=sample, num_beams=1, use_cache=True,
        temperature=temperature if sample else 1.0, top_p=top_p if sample else 1.0,
        top_k=(top_k if top_k > 0 else 0) if sample else None,  # 0 = off (None would fall back to 50: unused when greedy)
        repetition_penalty=1.0, no_repeat_ngram_size=0,
        eos_token_id=stops, pad_token_id=pad, bos_token_id=None,
    )
    rows = [(p, s) for p in range(len(encoded)) for s in range(n)]
    rows.sort(key=lambda r: -len(encoded[r[0]]))  # longest first: similar lengths share a batch; OOM shows early
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs = {}
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
            torch.manual_seed(seed)
            for b in range(0, len(rows), batch_size):
                batch = rows[b:b + batch_size]
                seqs = [encoded[p] for p, _ in batch]
                width = max(len(s) for s in seqs)
                ids = torch.full((len(seqs), width), pad, dtype=torch.long)
                mask = torch.zeros((len(seqs), width), dtype=torch.long)
                for i, s in enumerate(seqs):  # left padding: every prompt ends where generation starts
                    ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
                    mask[i, width - len(s):] = 1
                out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=gc)
                gen = out[:, width:].tolist()
                for key, g in zip(batch, gen):
                    end = next((j for j, t in enumerate(g) if t in stops), None)
                    g = g if end is None else g[:end + 1]  # drop the padding after the stop token
                    outs[key] = (g, end is None and len(g) >= max_new_tokens)
    finally:
        model.train(was_training)
    return outs


def engine_kwargs(cfg: Settings | None = None) -> dict:
    """The keywords of `vllm.LLM` (besides the model) under the session's settings.

    One process: an engine of `tensor_parallel_size` GPUs, data_parallel_size must be 1 (vLLM's LLM
    runs no data-parallel replicas in one process). Several processes (WORLD_SIZE, as accelerate
    and torchrun set it): WORLD_SIZE must be tensor_parallel_size x data_parallel_size, and each
    engine starts with vLLM's `external_launcher` on its process's GPU, as trl's colocate mode does."""
    cfg = cfg or _SETTINGS
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want = cfg.tensor_parallel_size * cfg.data_parallel_size
    kw = {"tensor_parallel_size": cfg.tensor_parallel_size, "gpu_memory_utilization": cfg.gpu_memory_utilization,
          "seed": 0}
    if cfg.max_model_len is not None:
        kw["max_model_len"] = cfg.max_model_len
    if world == 1 and cfg.data_parallel_size == 1:
        return kw
    if world != want:
        raise ValueError(
            f"generation asks for {cfg.data_parallel_size} vLLM replica(s) of {cfg.tensor_parallel_size} GPU(s) "
            f"= {want} processes, but this run has {world} (WORLD_SIZE): launch the stage in {want} processes "
            f"(`accelerate launch --num_processes {want} -m vtkit.stages.<name> ...`), or set generation's "
            f"data_parallel_size to {max(1, world // cfg.tensor_parallel_size)}")
    rank = int(os.environ.get("RANK", "0"))
    return {**kw, "distributed_executor_backend": "external_launcher",
            "seed": rank // cfg.tensor_parallel_size}   # one seed per tensor-parallel group, as trl does


def _vllm_engine(model, tokenizer):
    vllm = require_vllm()
    if isinstance(model, vllm.LLM):
        return model
    kw = engine_kwargs()
    if isinstance(model, str):
        if model == "smollm2-135m":
            model = str(models.smollm2_dir())
        key = (model, tuple(sorted(kw.items())))
        if key not in _VLLM_ENGINES:
            _VLLM_ENGINES[key] = vllm.LLM(model=model, **kw)
        return _VLLM_ENGINES[key]
    path = models.save(model, tokenizer, tempfile.mkdtemp(prefix="vtkit-vllm-"))
    return vllm.LLM(model=str(path), **kw)


def _run_vllm(model, tokenizer, encoded, stops, *, n, temperature, top_p, top_k, max_new_tokens, batch_size, seed):
    llm = _vllm_engine(model, tokenizer)  # raises the install hint first when vLLM is missing
    vllm = require_vllm()

    params = vllm.SamplingParams(
        n=n, temperature=temperature, top_p=top_p, top_k=top_k if top_k > 0 else -1, max_tokens=max_new_tokens,
        seed=seed, stop_token_ids=stops, skip_special_tokens=False, repetition_penalty=1.0,
    )
    results = llm.generate([{"prompt_token_ids": ids} for ids in encoded], params, use_tqdm=False)
    outs = {}
    for p, res in enumerate(results):
        for s, o in enumerate(res.outputs):
            outs[(p, s)] = (list(o.token_ids), o.finish_reason == "length")
    return outs


def sharded_generate(model, tokenizer, prompts: Sequence[str], **kw) -> list[dict]:
    """`generate` over the processes of a data-parallel run: rank r samples prompts
    r::world, and accelerate's `gather_object` hands every rank all generations in one process's
    order (`prompt_index`, `sample_index`). One process calls `generate` unchanged. Greedy decoding
    gives one process's texts; sampled completions differ (each rank draws its own prompts' samples
    from the same seed), as they do under any change of batch composition. Every stage that samples
    data (filters, rejection sampling, CLR trajectories, evaluation) calls this, so the ranks of a
    run always hold the same samples and choose the same data."""
    from vtkit import runinfo
    world = runinfo.world_size()
    if world == 1:
        return generate(model, tokenizer, prompts, **kw)
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object
    state = PartialState(cpu=not torch.cuda.is_available())   # gloo on CPU; a trainer's state when it made one
    if state.num_processes != world:
        raise RuntimeError(f"WORLD_SIZE is {world} but accelerate sees {state.num_processes} process(es): "
                           f"start the run with `accelerate launch` or torchrun, which set up both")
    rank = state.process_index
    mine = list(prompts)[rank::world]
    outs = generate(model, tokenizer, mine, **kw) if mine else []
    for g in outs:
        g["prompt_index"] = rank + world * g["prompt_index"]
    return sorted(gather_object(outs), key=lambda g: (g["prompt_index"], g["sample_index"]))
