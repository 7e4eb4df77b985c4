"""Rubric reward model for open-ended prompts: synthetic preference pairs, trl RewardTrainer, a trl reward.

    from vtkit import reward_model as rm
    pairs = rm.preference_pairs(400, seed=0)                      # prompt / chosen / rejected / kind
    model, tok = rm.build("tiny-100k", seed=0)                    # Qwen2ForSequenceClassification, 1 label
    model, log = rm.train(model, tok, pairs, "runs/x/rm", epochs=2, lr=2e-3)
    rm.pair_accuracy(model, tok, rm.preference_pairs(100, seed=1))   # held-out: chosen scored higher
    reward = rm.make_reward(model, tok)                           # trl signature, name "rubric_reward"
    reward([[{"role": "assistant", "content": "..."}]], prompts=[[{"role": "user", "content": "..."}]],
           subdomain=["open"])                                     # -> [score in (0, 1)]

The 3B report grades open-ended Instruct-RL prompts with rubric reward models (helpfulness,
coherence, instruction adherence, redundancy) and names none. Here the rubric is built into
synthetic pairs at the tiny preset: the chosen response answers on the prompt's topic in a short
think block plus distinct, well-formed sentences; each rejected response fails one rubric item:
`redundant` (one sentence repeated), `off_topic` (a good answer about another topic: helpfulness),
`incoherent` (the same words shuffled: coherence), `no_answer` (nothing after </think>: adherence).
`open_prompts` gives the open-ended prompts in the record schema of `vtkit.instructions.make_prompts`
(`subdomain` "open", no constraints), so the two mix into one RL dataset.

Model: `build(spec)` gives a sequence-classification model with one output: a tiny size builds a
fresh Qwen2 from vtkit's tiny config and tokenizer; "smollm2-135m" puts a fresh head on the
offline SmolLM2; a local folder or hub id loads a reward model as it is (any HF reward model
trained elsewhere; then skip `train`). Training is trl's RewardTrainer (Bradley-Terry loss
-log sigmoid(r_chosen - r_rejected)) on conversational pairs with an explicit prompt.

Where it scores (`place`, the instruct preset's rm_device / rm_dtype): "auto" puts it on the GPU in
bf16 when there is one (flash attention where installed, else SDPA: `vtkit.models.attn_implementation`),
else on the CPU in fp32; `score` reads the whole prompt + response by default (`max_length` None), in
batches of similar length (little padding), so a long response is judged on all of it.

The reward (`make_reward`) scores prompt + completion through the chat template as RewardTrainer
tokenised the pairs, squashes the score with a sigmoid into (0, 1) (so it sits on the scale of the
0/1 rule rewards; GRPO normalises within groups anyway), and returns None on rows it does not
apply to (subdomain other than "open"), which trl leaves out of the sum.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Sequence

import datasets
import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PrinterCallback,
    Qwen2ForSequenceClassification,
)
from trl import RewardConfig, RewardTrainer

from vtkit import models
from vtkit import tokenizer as vtok
from vtkit.train import tracking_dir

KINDS = ("redundant", "off_topic", "incoherent", "no_answer")
TOPICS = ["sea", "river", "garden", "forest", "city", "market", "library", "train", "bicycle", "winter",
          "summer", "music", "coffee", "bread", "museum", "mountain", "school", "kitchen", "rain", "moon",
          "island", "bridge", "farm", "concert", "festival", "harbor", "desert", "lake", "village", "park"]
PROMPTS = ["Write a short note about the {t}.", "Describe the {t}.", "Tell me about the {t}.",
           "Explain why people like the {t}.", "Share a few thoughts on the {t}."]
GOOD = ["The {t} is worth a closer look.", "Many people enjoy the {t}.", "The {t} can teach us something new.",
        "Every {t} has its own small details.", "People often share stories about the {t}.",
        "It is easy to see why the {t} matters.", "A visit to the {t} can brighten a day.",
        "Learning about the {t} takes little time."]
THINK = "<think>\nThe user asks about the {t}. I will answer with {k} clear sentences.\n</think>\n"


def _answer(rng: random.Random, topic: str, k: int) -> str:
    return " ".join(s.format(t=topic) for s in rng.sample(GOOD, k))


def chosen_response(rng: random.Random, topic: str) -> str:
    """A helpful, coherent, non-redundant reply on `topic`: a think block, then 2-3 distinct sentences."""
    k = rng.randint(2, 3)
    return THINK.format(t=topic, k=k) + _answer(rng, topic, k)


def rejected_response(rng: random.Random, topic: str, kind: str, chosen: str) -> str:
    """A reply that breaks one rubric item (`KINDS`) for a prompt on `topic`."""
    head, answer = chosen.split("</think>\n", 1)
    head += "</think>\n"
    if kind == "redundant":
        s = rng.choice(GOOD).format(t=topic)
        return head + " ".join([s] * rng.randint(3, 5))
    if kind == "off_topic":
        other = rng.choice([t for t in TOPICS if t != topic])
        return head + _answer(rng, other, answer.count(".") or 2)
    if kind == "incoherent":
        words = answer.replace(".", "").lower().split()
        for _ in range(10):  # a shuffle that leaves the words in order is no negative
            rng.shuffle(words)
            if " ".join(words) != answer.replace(".", "").lower():
                break
        return head + " ".join(words) + "."
    if kind == "no_answer":
        return head.rstrip("\n")
    raise ValueError(f"unknown rejected kind {kind!r}; valid: {', '.join(KINDS)}")


def open_prompts(n: int, seed: int = 0, topics: Sequence[str] | None = None):
    """n open-ended prompts in make_prompts' schema (subdomain "open", empty instruction_id_list),
    each with one chosen reference response in `solutions`."""
    topics = list(topics or TOPICS)
    if n < 0 or not topics:
        raise ValueError(f"need n >= 0 and at least one topic (got n={n}, {len(topics)} topics)")
    rng = random.Random(f"vtkit-open-{seed}")
    rows = []
    for i in range(n):
        t = rng.choice(topics)
        rows.append({"id": f"open-s{seed}-{i:05d}", "domain": "instruct", "subdomain": "open",
                     "prompt": rng.choice(PROMPTS).format(t=t), "instruction_id_list": [], "kwargs": "[]",
                     "answer": "", "tests": "", "difficulty": 0, "solutions": [chosen_response(rng, t)],
                     "meta": json.dumps({"topic": t})})
    return datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict(
        {k: [] for k in ("id", "domain", "subdomain", "prompt", "instruction_id_list", "kwargs", "answer", "tests",
                         "difficulty", "solutions", "meta")})


def preference_pairs(n: int, seed: int = 0, kinds: Sequence[str] = KINDS, topics: Sequence[str] | None = None):
    """n conversational preference pairs {prompt, chosen, rejected, kind, topic}; kinds cycle in order."""
    kinds = list(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds}")
    topics = list(topics or TOPICS)
    rng = random.Random(f"vtkit-pairs-{seed}")
    rows = []
    for i in range(n):
        t = rng.choice(topics)
        kind = kinds[i % len(kinds)]
        c = chosen_response(rng, t)
        rows.append({"prompt": [{"role": "user", "content": rng.choice(PROMPTS).format(t=t)}],
                     "chosen": [{"role": "assistant", "content": c}],
                     "rejected": [{"role": "assistant", "content": rejected_response(rng, t, kind, c)}],
                     "kind": kind, "topic": t})
    return datasets.Dataset.from_list(rows)


# ----------------------------------------------------------------------------- the model

def place(model, device: str | None = "auto", dtype: str | None = "auto"):
    """Move the reward model to where it scores (in place; returns it): device "auto" (or None) = CUDA when
    available, else CPU; dtype "auto" (or None) = bf16 on CUDA, fp32 on the CPU; else a torch device / dtype name."""
    dev, dt = models._resolve(None if device in (None, "auto") else device, None if dtype in (None, "auto") else dtype)
    return model.to(device=dev, dtype=dt)


def build(spec: str = "tiny-100k", seed: int = 0, device: str | None = "auto", dtype: str | None = "auto"):
    """(sequence-classification model with num_labels=1, tokenizer with a pad token), placed by `place`
    (device, dtype); see the module docstring."""

    if spec in models.TINY_SIZES:
        tok = vtok.build_tokenizer()
        cfg = models.tiny_config(spec)
        cfg.num_labels = 1
        cfg.eos_token_id, cfg.pad_token_id = tok.eos_token_id, tok.pad_token_id
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Qwen2ForSequenceClassification(cfg)
    else:
        path = str(models.smollm2_dir()) if spec == models.SMOLLM2 else spec
        if not (Path(path).expanduser().is_dir() or models._HUB_ID.match(path)):
            raise ValueError(f"unknown reward-model spec {spec!r}: a tiny size ({', '.join(models.TINY_SIZES)}), "
                             f"{models.SMOLLM2!r}, a local folder or a hub id 'owner/name'")
        tok = AutoTokenizer.from_pretrained(path)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # a fresh head, when the checkpoint has none, starts from this seed
            model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, dtype=torch.float32,
                attn_implementation=models.attn_implementation("cuda" if place_cuda(device) else "cpu"))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    if getattr(model.config, "num_labels", None) != 1:
        raise ValueError(f"{spec!r} has {model.config.num_labels} outputs; a reward model needs exactly one")
    place(model, device, dtype)
    model.eval()
    return model, tok


def place_cuda(device) -> bool:
    """Whether `place(model, device)` puts the model on a GPU."""
    return str(device) not in ("cpu",) and (str(device).startswith("cuda") or torch.cuda.is_available())


def train(model, tokenizer, pairs, out_dir, *, epochs: float = 2, lr: float = 2e-3, batch_size: int = 16,
          max_length: int = 256, seed: int = 0, max_steps: int = -1, logging_steps: int = 10,
          report_to: str = "none", precision: str | None = None):
    """Fit `model` in place on preference `pairs` with trl's RewardTrainer; returns (model, log_history).
    `report_to`: a transformers tracker ("tensorboard": events under out_dir/tensorboard).
    `precision`: `models.training_precision` (fp32 master weights, bf16 autocast on CUDA; fp32 on CPU).
    `batch_size` is the global batch: each of N data-parallel processes takes batch_size / N pairs."""
    from vtkit import train as vtrain
    cuda = torch.cuda.is_available()
    prec = models.prepare_training(model, precision)
    tracking_dir(out_dir, report_to)
    args = RewardConfig(output_dir=str(out_dir), num_train_epochs=epochs, max_steps=max_steps, learning_rate=lr,
                        per_device_train_batch_size=vtrain.per_device_batch(batch_size), max_length=max_length,
                        lr_scheduler_type="cosine",
                        warmup_steps=0.05, logging_steps=logging_steps, save_strategy="no", report_to=report_to,
                        disable_tqdm=True, seed=seed, data_seed=seed, **prec.trainer_args(),
                        dataloader_num_workers=0, gradient_checkpointing=cuda)  # trl's default (on) only pays on a GPU
    cols = [c for c in ("prompt", "chosen", "rejected") if c in pairs.column_names]
    if cols[-2:] != ["chosen", "rejected"]:
        raise ValueError(f"pairs need 'chosen' and 'rejected' columns (and optionally 'prompt'); got {pairs.column_names}")
    model.train()
    trainer = RewardTrainer(model=model, args=args, train_dataset=pairs.select_columns(cols),
                            processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every log dict; the history is returned
    trainer.train()
    model.eval()
    return model, trainer.state.log_history


def _ids(tokenizer, messages: list[dict]) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)
    return list(out["input_ids"])


def _messages(prompt, completion) -> list[dict]:
    p = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    c = [{"role": "assistant", "content": completion}] if isinstance(completion, str) else list(completion)
    return p + c


@torch.no_grad()
def score(model, tokenizer, prompts: Sequence, completions: Sequence, batch_size: int = 32,
          max_length: int | None = None) -> np.ndarray:
    """Raw reward-model scores of each (prompt, completion); strings or chat-message lists.

    Tokenised as RewardTrainer tokenises pairs (the chat template over prompt + completion), right-padded;
    `max_length` None reads the whole sequence, else its last `max_length` tokens. Rows are batched by
    length (sorted), so a batch is padded to about its own rows' length; scores come back in input order."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions; pass one of each per row")
    if batch_size < 1 or (max_length is not None and max_length < 1):
        raise ValueError(f"batch_size and max_length must be >= 1 (max_length None: all), got {batch_size}, {max_length}")
    seqs = [_ids(tokenizer, _messages(p, c)) for p, c in zip(prompts, completions)]
    seqs = [s[-max_length:] if max_length else s for s in seqs]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    out = np.zeros(len(seqs))
    try:
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            ids, att = models.pad_right([seqs[i] for i in idx], pad)
            logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
            out[idx] = logits[:, 0].float().cpu().numpy()
    finally:
        model.train(was)
    return out


def pair_accuracy(model, tokenizer, pairs, by_kind: bool = False, batch_size: int = 32, max_length: int | None = None):
    """Share of pairs whose chosen response scores above the rejected one (and per `kind` if asked)."""
    rows = list(pairs)
    if not rows:
        raise ValueError("no pairs to score")
    prompts = [r.get("prompt", []) for r in rows]
    sc = score(model, tokenizer, prompts, [r["chosen"] for r in rows], batch_size, max_length)
    sr = score(model, tokenizer, prompts, [r["rejected"] for r in rows], batch_size, max_length)
    win = sc > sr
    if not by_kind:
        return float(win.mean())
    kinds = [r.get("kind", "all") for r in rows]
    return {"all": float(win.mean()), **{k: float(win[[x == k for x in kinds]].mean()) for k in dict.fromkeys(kinds)}}


def make_reward(model, tokenizer, name: str = "rubric_reward", applies_to: str | None = "open",
                batch_size: int = 32, squash: bool = True, max_length: int | None = None):
    """A trl reward fn(completions, prompts, **columns) -> list[float | None] scoring with the reward model.

    Rows whose `subdomain` column differs from `applies_to` get None (None: score every row);
    without a `subdomain` column every row is scored. squash=True maps scores through a sigmoid.
    `batch_size`, `max_length`: `score`'s.
    """
    def reward(completions, prompts=None, **kwargs):
        n = len(completions)
        if prompts is None:
            prompts = kwargs.get("prompt")
        if prompts is None or len(prompts) != n:
            raise ValueError("the reward model needs the prompts: trl passes `prompts=`; pass one per completion")
        sub = kwargs.get("subdomain")
        rows = [i for i in range(n) if applies_to is None or sub is None or sub[i] == applies_to]
        out: list[float | None] = [None] * n
        if rows:
            s = score(model, tokenizer, [prompts[i] for i in rows], [completions[i] for i in rows], batch_size,
                      max_length)
            if squash:
                s = 1.0 / (1.0 + np.exp(-s))
            for i, v in zip(rows, s):
                out[i] = float(v)
        return out

    reward.__name__ = name
    return reward
