"""Knowledge capacity in bits, reasoning accuracy, and the capacity probe's metrics (notebooks/10).

    from vtkit import capacity, models, tasks
    people = tasks.people(1000, seed=0)
    kb = capacity.measure_knowledge(model, tok, people)           # every (person, attribute) of bioS
    kb["total_bits"], kb["fraction"], capacity.bits_per_param(kb, models.param_count(model))
    lp = capacity.value_logprobs(model, tok, contexts, values, candidates=value_sets)  # any facts, nats

Bits (Allen-Zhu & Li, Physics of LMs 3.3, arXiv 2404.05405). A fact is (person, attribute) with its
value drawn uniformly from a value set V. A model that knows nothing needs log2|V| bits to name the
value; one that puts probability p on it needs -log2 p. The bits it stores for that fact are
    bits = max(0, log2|V| - CE_bits),   CE_bits = -log2 p(value | context),
summed over facts, so partial knowledge counts partially. p(value) is the probability of the whole
value string: the product over its tokens, each given the context and the value tokens before it.
The clamp at 0 is vtkit's, and it leans upward: a fact the model gets worse than uniform counts 0,
not negative. The sum without it (log2|V| - CE_bits per fact, which can be < 0) is reported beside
the clamped one: knowledge_bits' total_bits_unclamped, the probe's bits_stored_unclamped.

Normalisation (`normalize=`). The raw product puts p on one string among all strings the model
could write; mass on strings outside V only lowers it, so raw -log2 p is an upper bound on the
cross-entropy and raw bits a lower bound on what is stored. The paper's measure is the cross-entropy
on the value *within its set*: p_V(v) = p(v) / sum_{v' in V} p(v'), a softmax over the candidates.
  "set"   log p(v) - logsumexp_{v' in V} log p(v'); needs `candidates` (V for each fact) and costs one
          scored row per candidate (the context runs once, its KV cache is shared). A uniform model
          then stores exactly 0 bits.
  "none"  raw log p(v); for huge value sets or when V is unknown.
  "auto"  (default) "set" where |V| <= 400, "none" above. Every bioS query is <= 336: the birth date
          (12 x 28 x 200 = 67,200 values) is asked as day+month (336) and then year (200), whose
          set-normalised chain is a distribution over all 67,200 dates (see knowledge_queries).
For the set softmax to be a distribution no candidate may be a token prefix of another (" 1" and
" 12"); knowledge_queries therefore ends each value with the text that follows it (" Baford.").

Cost: "set" scores about sum |V| = 1,400 short rows per bioS person; measured on one shared CPU
core, tiny-1m ~900 rows/s (20 people: 32 s), tiny-10m ~170 rows/s; "none" is ~50x cheaper (20 people:
0.6 s). For large N, score a random subset of people with "set" and scale the total by N / subset
(bits are a sum over people), or use "none" (a lower bound) and say so. An untrained model is not
exactly uniform, so the clamp at 0 credits it a little (tiny-1m at init: ~2 bits per person, 4%):
subtract the untrained baseline when bits are small. Without the clamp an untrained model stores
about 0 (in expectation minus its divergence from uniform, so <= 0; 30 coded people at tiny-25k's
init: +0.8 bits unclamped, 10.3 clamped), so the unclamped sum is reported as measured, not net of
the baseline (that would credit the trained model with the untrained one's miscalibration); the
untrained model's unclamped sum is reported beside it.

Departures from the paper: the paper trains GPT-2 models with its own tokenizer and reads the
cross-entropy of the value tokens inside the training biographies; vtkit scores the value after a
one-sentence context (the person's name and a template's words up to the value) with the tiny Qwen2
ladder and its 1k BPE tokenizer. Context and value are tokenized separately and concatenated (the
tests check this equals tokenizing the sentence), so put the leading space in the value: " Paris".

The probe (notebooks/10_capacity_probe.ipynb, run by vtkit.stages.capacity): a tiny model trained
from scratch (vtkit.train.train_lm) on one corpus of vtkit.corpora (knowledge, reasoning or a
mixture). Knowledge is measured in bits (`knowledge_eval`): on coded biographies every person,
set-normalised, minus the same measure on the untrained model of the same size and seed, with
`bits_se` the standard error of the total over people; on prose a set-normalised subset scaled up by
N / subset, and the raw measure (a lower bound) on all people beside it. Reasoning (`reasoning_eval`,
through vtkit.evaluation): greedy_acc on held-out problems of the trained depths (in distribution)
and deeper ones (out of distribution), and mean@k / pass@k from k samples at temperature 1, top_p
0.95. `knowledge_per_param`, `chance_rates` and `probe_metrics` turn these into the run's metrics.json.
Parameters: `params` counts every parameter, the embedding table included (tied to the output layer
in the tiny ladder: tiny-25k has 24,208 parameters, 16,384 of them the 1024 x 16 embedding);
`params_nonembedding` (`embedding_params`) leaves it out, and `bits_per_param_nonembedding` divides
by it. Allen-Zhu & Li count all parameters; the two differ by 3.1x at tiny-25k, 1.9x at tiny-100k,
1.15x at tiny-1m.

The corpora (`probe_corpus`, `coded_corpus`, ...) and the trainer (`train_lm`, `lm_loss`) used to live
here; they are importable from vtkit.capacity still.
"""
from __future__ import annotations

import copy
import inspect
import math

import numpy as np
import torch

from vtkit import compute, evaluation, tasks
from vtkit.corpora import (CAPACITY_BPP, CODED_FIELDS, CODED_LENGTH, MODES, NAME_TOKENS, bio_tokens,  # noqa: F401
                           capacity_people, code_alphabet, coded_biographies, coded_corpus, knowledge_corpus,
                           match_token_budget, probe_corpus, reasoning_corpus, token_lengths)
from vtkit.tasks import knowledge as bios

MAX_SET_SIZE = 400  # "auto": |V| up to this is scored against every candidate (bioS attributes <= 300)
_LN2 = math.log(2.0)
Z95 = 1.96          # the normal 95% interval of the bits total, bits +- Z95 x bits_se


def __getattr__(name: str):   # the trainer moved to vtkit.train; imported on first use (trl is slow to load)
    if name in ("train_lm", "lm_loss"):
        from vtkit import train
        return getattr(train, name)
    raise AttributeError(f"module 'vtkit.capacity' has no attribute {name!r}")


# ---------------------------------------------------------------- bits from log-probabilities


def knowledge_bits(value_logprobs_nats, value_set_sizes, attributes=None) -> dict:
    """Bits stored, from each fact's log p(value) in nats and the size |V| of its value set.

    value_set_sizes: one size for all facts, or one per fact. attributes: optional label per fact;
    adds a per-attribute breakdown. Returns bits (per fact, np.ndarray: drop it before writing
    metrics.json), total_bits, mean_bits (per fact), max_bits (sum of log2|V|: every fact known for
    certain), fraction (total / max), n_facts, and by_attribute when labels are given.
    Each fact's bits are clamped at 0; bits_unclamped (per fact, np.ndarray) and total_bits_unclamped
    keep a worse-than-uniform fact negative (log2|V| - CE_bits; -inf where p = 0).
    """
    lp = np.asarray(value_logprobs_nats, dtype=float).ravel()
    sizes = np.broadcast_to(np.asarray(value_set_sizes, dtype=float), lp.shape).astype(float)
    if lp.size == 0:
        raise ValueError("knowledge_bits: no facts given")
    if np.any(np.isnan(lp)) or np.any(lp > 1e-6):
        raise ValueError("knowledge_bits: log-probabilities must be <= 0 and not NaN (natural log of p); "
                         "got a positive value: pass log p, not -log p or p")
    if np.any(sizes < 1) or np.any(sizes != np.round(sizes)):
        raise ValueError("knowledge_bits: value-set sizes must be whole numbers >= 1")
    max_per_fact = np.log2(sizes)
    ce_bits = -np.minimum(lp, 0.0) / _LN2
    unclamped = max_per_fact - ce_bits
    bits = np.maximum(0.0, unclamped)
    out = {"bits": bits, "total_bits": float(bits.sum()), "mean_bits": float(bits.mean()),
           "max_bits": float(max_per_fact.sum()), "n_facts": int(lp.size),
           "bits_unclamped": unclamped, "total_bits_unclamped": float(unclamped.sum())}
    out["fraction"] = out["total_bits"] / out["max_bits"] if out["max_bits"] > 0 else 0.0
    if attributes is not None:
        attributes = np.asarray(attributes, dtype=object).ravel()
        if attributes.shape != lp.shape:
            raise ValueError(f"knowledge_bits: {attributes.size} attribute labels for {lp.size} facts")
        out["by_attribute"] = {}
        for name in dict.fromkeys(attributes.tolist()):
            m = attributes == name
            got, top = float(bits[m].sum()), float(max_per_fact[m].sum())
            out["by_attribute"][name] = {"total_bits": got, "max_bits": top, "fraction": got / top if top else 0.0,
                                         "n_facts": int(m.sum())}
    return out


def bits_per_param(bits, n_params: int) -> float:
    """Total bits (a number, or the dict knowledge_bits returned) divided by the parameter count."""
    total = bits["total_bits"] if isinstance(bits, dict) else float(bits)
    if not n_params or n_params <= 0:
        raise ValueError(f"bits_per_param: n_params must be > 0, got {n_params!r} (use models.param_count(model))")
    return total / n_params


def embedding_params(model) -> int:
    """Parameters of the embedding table: the input embedding's, plus the output layer's when it is a
    separate tensor (untied); a tied output layer is the same table, counted once (as param_count does).
    params - embedding_params(model) is the non-embedding count (`params_nonembedding`)."""
    emb = model.get_input_embeddings()
    if emb is None:
        raise ValueError("embedding_params: the model has no input embedding (get_input_embeddings() is None)")
    seen = {id(p): p.numel() for p in emb.parameters()}
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None:
        seen.update({id(p): p.numel() for p in out.parameters() if p.dim() == 2})  # the table, not a bias
    return int(sum(seen.values()))


# ---------------------------------------------------------------- log p(value | context) from a model


def _ids(tokenizer, text: str, what: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"value_logprobs: {what} {text!r} has no tokens; every context and value must be non-empty")
    return list(ids)


@torch.no_grad()
def _score_pairs(model, pairs: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int) -> np.ndarray:
    """Sum of log p(value token | everything before it), for each (context ids, value ids) pair.

    Right padding with an attention mask: under causal attention the real tokens never see the
    padding, and their positions are 0..len-1 as when scored alone. Pairs are scored in order of
    length so a batch wastes little padding; only the value positions go through the softmax.
    """
    device = next(model.parameters()).device
    out = np.zeros(len(pairs), dtype=np.float64)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        length = max(len(pairs[i][0]) + len(pairs[i][1]) for i in chunk)
        ids = torch.full((len(chunk), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), length), dtype=torch.long)
        rows, pos, targets, owner = [], [], [], []
        for r, i in enumerate(chunk):
            ctx, val = pairs[i]
            seq = ctx + val
            ids[r, :len(seq)] = torch.tensor(seq)
            mask[r, :len(seq)] = 1
            for t in range(len(ctx), len(seq)):  # the logits at t-1 predict token t
                rows.append(r), pos.append(t - 1), targets.append(seq[t]), owner.append(i)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        picked = logits[torch.tensor(rows, device=device), torch.tensor(pos, device=device)].float()
        tok_lp = torch.log_softmax(picked, dim=-1).gather(1, torch.tensor(targets, device=device)[:, None])[:, 0]
        np.add.at(out, np.asarray(owner), tok_lp.double().cpu().numpy())
    compute.add_scored(model, [len(c) + len(v) for c, v in pairs])   # forward-only work (vtkit.compute)
    return out


def _cache_kwarg(model) -> str:
    """transformers 5.x names the KV-cache argument `cache`; 4.x `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def _score_sets(model, ctx_list: list[list[int]], cand: list[list[int]], pad_id: int, batch_size: int) -> np.ndarray:
    """log p(c | context) for every context (row) and every candidate c of one shared value set (column).

    Each context runs once; its key/value cache is repeated for the candidates, which then run as
    short right-padded rows (positions continue from the context, as when scored in one sequence).
    Contexts are grouped by token length so they stack without padding. Returns (contexts, candidates).
    """
    device = next(model.parameters()).device
    cache_kw = _cache_kwarg(model)
    out = np.zeros((len(ctx_list), len(cand)), dtype=np.float64)
    L = max(len(c) for c in cand)
    cand_ids = torch.full((len(cand), L), pad_id, dtype=torch.long, device=device)
    cand_mask = torch.zeros((len(cand), L), dtype=torch.long, device=device)
    for j, c in enumerate(cand):
        cand_ids[j, :len(c)] = torch.tensor(c, device=device)
        cand_mask[j, :len(c)] = 1
    by_len: dict[int, list[int]] = {}
    for i, c in enumerate(ctx_list):
        by_len.setdefault(len(c), []).append(i)
    n_ctx = max(1, batch_size // len(cand))  # contexts per forward, each with all its candidates
    chunk = len(cand) if n_ctx > 1 else max(1, batch_size)  # else: one context, candidates in chunks
    for length, members in by_len.items():
        for start in range(0, len(members), n_ctx):
            rows = members[start:start + n_ctx]
            G = len(rows)
            res = model(input_ids=torch.tensor([ctx_list[i] for i in rows], device=device), use_cache=True)
            past = getattr(res, "cache", None)
            past = res.past_key_values if past is None else past  # transformers 4.x name
            total = torch.log_softmax(res.logits[:, -1].float(), dim=-1)[:, cand_ids[:, 0]].double()  # first tokens
            for c0 in range(0, len(cand) if L > 1 else 0, chunk):  # tokens 2.. run inside the candidate rows
                c1 = min(len(cand), c0 + chunk)
                cache = copy.deepcopy(past)
                cache.batch_repeat_interleave(c1 - c0)
                ids, m = cand_ids[c0:c1].repeat(G, 1), cand_mask[c0:c1].repeat(G, 1)
                mask = torch.cat([torch.ones((len(ids), length), dtype=torch.long, device=device), m[:, :-1]], dim=1)
                logits = model(input_ids=ids[:, :-1], attention_mask=mask, **{cache_kw: cache}).logits
                lp = torch.log_softmax(logits.float(), dim=-1).gather(2, ids[:, 1:, None])[..., 0]
                total[:, c0:c1] += (lp * m[:, 1:]).sum(1).double().view(G, c1 - c0)
            out[rows] = total.cpu().numpy()
    return out


def value_logprobs(model, tokenizer, contexts, values, *, candidates=None, normalize: str = "auto",
                   batch_size: int = 512, max_set_size: int = MAX_SET_SIZE) -> np.ndarray:
    """log p(value_i | context_i) in nats, one per fact, summed over the value's tokens.

    contexts, values: equal-length lists of strings, e.g. "Alice Bob Smith was born in" and " Paris".
    candidates: the value set V of each fact (a list of strings containing the true value), or one
    list shared by all facts; needed for normalize "set" and "auto" (see the module docstring).
    batch_size: sequences per forward pass (value rows are short, so a few hundred is cheap).
    The model is put in eval mode for the call and restored after it.
    """
    contexts, values = list(contexts), list(values)
    if len(contexts) != len(values):
        raise ValueError(f"value_logprobs: {len(contexts)} contexts but {len(values)} values")
    if normalize not in ("auto", "set", "none"):
        raise ValueError(f"value_logprobs: normalize must be 'auto', 'set' or 'none', got {normalize!r}")
    if batch_size < 1:
        raise ValueError("value_logprobs: batch_size must be >= 1")
    if candidates is not None and len(candidates) > 0 and isinstance(candidates[0], str):
        candidates = [candidates] * len(values)  # one shared value set
    if normalize != "none":
        if candidates is None:
            raise ValueError("value_logprobs: normalize='set'/'auto' needs candidates= (the value set of each "
                             "fact); pass them, or normalize='none' for the raw log p of the value string")
        if len(candidates) != len(values):
            raise ValueError(f"value_logprobs: {len(candidates)} candidate sets for {len(values)} facts")

    tok_cache: dict[str, list[int]] = {}

    def ids(text, what):
        if text not in tok_cache:
            tok_cache[text] = _ids(tokenizer, text, what)
        return tok_cache[text]

    # Facts scored against their value set, grouped by that set; the rest scored alone.
    groups: dict[tuple[str, ...], list[int]] = {}
    alone = []
    for i, v in enumerate(values):
        cand = None if normalize == "none" else tuple(dict.fromkeys(candidates[i]))
        if cand is None or (normalize == "auto" and len(cand) > max_set_size):
            alone.append(i)
            continue
        if v not in cand:
            raise ValueError(f"value_logprobs: the true value {v!r} of fact {i} is not among its candidates; "
                             "candidates must be the full value set V (same strings, same leading spaces)")
        groups.setdefault(cand, []).append(i)

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = np.zeros(len(values), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        if alone:
            pairs = [(ids(contexts[i], "context"), ids(values[i], "value")) for i in alone]
            out[alone] = _score_pairs(model, pairs, pad, batch_size)
        for cand, members in groups.items():
            cand_ids = [ids(c, "value") for c in cand]
            scores = _score_sets(model, [ids(contexts[i], "context") for i in members], cand_ids, pad, batch_size)
            col = {c: j for j, c in enumerate(cand)}
            own = scores[np.arange(len(members)), [col[values[i]] for i in members]]
            top = scores.max(axis=1)
            out[members] = own - (top + np.log(np.exp(scores - top[:, None]).sum(axis=1)))
    finally:
        model.train(was_training)
    return np.minimum(out, 0.0)  # set-normalised values can round to +1e-16


# ---------------------------------------------------------------- bioS facts as (context, value, V)


def knowledge_queries(people, value_sets=None, attributes=None, template: int = 0) -> list[dict]:
    """One query per (person, attribute): {person, attribute, context, value, candidates}.

    The context is the person's sentence of template `template` up to the value ("Ann Bo Ko was
    born in"); value and candidates carry the leading space and the rest of the sentence (" Baford.")
    so that no candidate's tokens are a prefix of another's (" 1" vs " 12"): the period ends the value.
    value_sets: the overrides people() was called with (candidates must be the sets values came from).
    Birth date with its full 12 x 28 x 200 set becomes two queries whose sets multiply to it: day and
    month together (" 12 March", 336 values, the month token ends the day) then the year (" 1987.",
    200 values) after them; a shrunken date set stays one query over its values.
    """

    sets = bios.value_sets(value_sets)
    attributes = [a for a in bios.ATTRIBUTES] if attributes is None else list(attributes)
    unknown = [a for a in attributes if a not in sets]
    if unknown:
        raise ValueError(f"knowledge_queries: unknown attributes {unknown}; use any of {list(sets)}")
    full_dates = len(sets.get("birth_date", [])) == bios.ATTRIBUTES["birth_date"]
    member = {a: set(v) for a, v in sets.items()}
    cands: dict = {}  # attribute -> shared candidate list (value_logprobs groups facts by it)
    out = []
    for p in people:
        for a in attributes:
            if p.get(a) not in member[a]:
                raise ValueError(f"knowledge_queries: {p['name']}'s {a} {p.get(a)!r} is not in its value set; "
                                 "pass the same value_sets= that people() was called with")
            tpl = bios.TEMPLATES[a][template]
            head, tail = tpl.split("{v}")
            head = head.format(name=p["name"])
            lead = " " if head.endswith(" ") else ""
            context = head[:-1] if lead else head
            if a == "birth_date" and full_dates:
                day, month, year = p[a].split(" ")
                if "dm" not in cands:
                    cands["dm"] = [f"{lead}{d} {m}" for d in range(1, 29) for m in bios.MONTHS]
                    cands["y"] = [f" {y}{tail}" for y in range(1900, 2100)]
                out.append({"person": p["name"], "attribute": a, "context": context,
                            "value": f"{lead}{day} {month}", "candidates": cands["dm"]})
                out.append({"person": p["name"], "attribute": a, "context": f"{context}{lead}{day} {month}",
                            "value": f" {year}{tail}", "candidates": cands["y"]})
                continue
            if (a, tail, lead) not in cands:
                cands[(a, tail, lead)] = [f"{lead}{v}{tail}" for v in sets[a]]
            out.append({"person": p["name"], "attribute": a, "context": context,
                        "value": f"{lead}{p[a]}{tail}", "candidates": cands[(a, tail, lead)]})
    return out


def measure_knowledge(model, tokenizer, people, value_sets=None, attributes=None, template: int = 0,
                      normalize: str = "auto", batch_size: int = 512) -> dict:
    """knowledge_bits over every (person, attribute) of `people` (see knowledge_queries), plus
    n_people and bits_per_person. Divide total_bits by the parameter count for bits per parameter."""
    queries = knowledge_queries(people, value_sets, attributes, template)
    lp = value_logprobs(model, tokenizer, [q["context"] for q in queries], [q["value"] for q in queries],
                        candidates=[q["candidates"] for q in queries], normalize=normalize, batch_size=batch_size)
    out = knowledge_bits(lp, [len(q["candidates"]) for q in queries], [q["attribute"] for q in queries])
    out["n_people"] = len(people)
    out["bits_per_person"] = out["total_bits"] / max(1, len(people))
    return out



# ---------------------------------------------------------------- coded biographies (vtkit.corpora) in bits


@torch.no_grad()
def measure_coded(model, tokenizer, people, batch_size: int = 2048) -> dict:
    """knowledge_bits of coded biographies: each value's log p normalised over its value set (the
    first |V| alphabet tokens) given the name and the values before it, so the bits of a person add
    up by the chain rule to what the model stores about the person as a whole. One forward per
    batch of people scores all their facts. Adds person_bits and person_bits_unclamped (np.ndarray),
    n_people, bits_per_person, and the raw measure (log p over the whole vocabulary) as total_bits_raw."""
    people = list(people)
    if not people:
        raise ValueError("measure_coded: no people")
    alpha = torch.tensor(code_alphabet(tokenizer))
    seqs = torch.tensor(coded_biographies(people, tokenizer))
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    lp_set, lp_raw = [], []
    for s in range(0, len(seqs), batch_size):
        x = seqs[s:s + batch_size].to(device)
        logits = model(input_ids=x).logits.float()
        cols = []
        raws = []
        for j, (_, _, size) in enumerate(CODED_FIELDS):
            pos = NAME_TOKENS + j  # the token at pos is predicted at pos - 1
            row = logits[:, pos - 1]
            cand = alpha[:size].to(device)
            own = (x[:, pos:pos + 1] == cand[None]).float().argmax(1)
            cols.append(torch.log_softmax(row[:, cand], -1).gather(1, own[:, None])[:, 0])
            raws.append(torch.log_softmax(row, -1).gather(1, x[:, pos:pos + 1])[:, 0])
        lp_set.append(torch.stack(cols, 1).double().cpu())
        lp_raw.append(torch.stack(raws, 1).double().cpu())
    model.train(was)
    lp = torch.cat(lp_set).numpy()
    sizes = np.array([s for _, _, s in CODED_FIELDS] * len(people))
    attrs = [a for a, _, _ in CODED_FIELDS] * len(people)
    out = knowledge_bits(np.minimum(lp.ravel(), 0.0), sizes, attrs)
    out["person_bits"] = out["bits"].reshape(len(people), len(CODED_FIELDS)).sum(1)
    out["person_bits_unclamped"] = out["bits_unclamped"].reshape(len(people), len(CODED_FIELDS)).sum(1)
    out["total_bits_raw"] = knowledge_bits(np.minimum(torch.cat(lp_raw).numpy().ravel(), 0.0), sizes)["total_bits"]
    out["n_people"] = len(people)
    out["bits_per_person"] = out["total_bits"] / len(people)
    return out



# ---------------------------------------------------------------- the probe's settings and metrics


def learning_rate(lr: float | None, lr_by_model: dict | None, model: str) -> float:
    """The run's learning rate: `lr` when given, else the preset's per-size table. The best rate falls
    with size (at 100 exposures tiny-25k stores ~1.0 bit/param at 1e-2 and ~0.56 at 3e-3; tiny-100k
    ~0.58 at 1e-2 and ~1.64 at 3e-3; docs/LOG.md, "Capacity probe")."""
    if lr is not None:
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        return float(lr)
    table = lr_by_model or {}
    if model not in table:
        raise ValueError(f"no learning rate for {model!r}: pass lr, or add {model!r} to the preset's lr_by_model "
                         f"(it has {', '.join(table) or 'no sizes'})")
    return float(table[model])



# ---------------------------------------------------------------- measuring


def knowledge_eval(model, tokenizer, people, *, subset: int = 16, untrained=None, baseline_people: int = 4,
                   seed: int = 0, batch_size: int = 512, knowledge_format: str = "prose") -> dict:
    """Bits the model stores about `people` (see the module docstring).

    subset: people scored set-normalised (None or >= len(people): all); untrained: the same
    architecture before training, for the baseline (None: no baseline, bits_untrained = 0);
    baseline_people: people of the subset the untrained model is scored on (its bits per person
    hardly vary). Returns flat numbers: bits (net of the baseline, >= 0), bits_measured,
    bits_untrained, max_bits, knowledge_fraction, bits_raw and fraction_raw (normalize="none" over
    all people, a lower bound), n_people, n_people_scored, and without the clamp at 0 per fact
    bits_stored_unclamped (the trained model's set-normalised sum, not net of the baseline: see the
    module docstring) and bits_untrained_unclamped (the untrained model's, 0 without one).
    knowledge_format "coded": every person is scored (coded biographies cost one forward per batch of
    people), set-normalised and raw; adds bits_se, the standard error of the total over people
    (sqrt(n) x the spread of the per-person bits: the item part of an interval), bits_se_unclamped
    (the same for the unclamped per-person bits), and person_bits.
    """

    people = list(people)
    if not people:
        raise ValueError("knowledge_eval: no people to measure (a reasoning-only run has none unless "
                         "probe_corpus gave eval_people)")
    if knowledge_format == "coded":
        return _knowledge_eval_coded(model, tokenizer, people, untrained)
    n = len(people)
    m = n if subset is None or subset >= n else max(1, int(subset))
    pick = sorted(np.random.default_rng(seed).choice(n, size=m, replace=False).tolist()) if m < n else list(range(n))
    scored = [people[i] for i in pick]
    kset = measure_knowledge(model, tokenizer, scored, batch_size=batch_size)
    scale = n / m
    base = base_unclamped = 0.0
    if untrained is not None:
        b = measure_knowledge(untrained, tokenizer, scored[:max(1, baseline_people)], batch_size=batch_size)
        base = b["bits_per_person"] * n
        base_unclamped = b["total_bits_unclamped"] / b["n_people"] * n
    raw = measure_knowledge(model, tokenizer, people, normalize="none", batch_size=batch_size)
    measured = kset["total_bits"] * scale
    max_bits = kset["max_bits"] / m * n
    bits = max(0.0, measured - base)
    return {"bits": bits, "bits_measured": measured, "bits_untrained": base, "max_bits": max_bits,
            "knowledge_fraction": bits / max_bits, "bits_raw": raw["total_bits"], "fraction_raw": raw["fraction"],
            "n_people": n, "n_people_scored": m,
            **{f"fraction_{a}": v["fraction"] for a, v in kset.get("by_attribute", {}).items()},
            "bits_stored_unclamped": kset["total_bits_unclamped"] * scale, "bits_untrained_unclamped": base_unclamped}


def _knowledge_eval_coded(model, tokenizer, people, untrained) -> dict:
    kb = measure_coded(model, tokenizer, people)
    kb0 = measure_coded(untrained, tokenizer, people) if untrained is not None else None
    base_pp = kb0["bits_per_person"] if kb0 is not None else 0.0
    n = len(people)
    unclamped = kb["person_bits_unclamped"]
    person = kb["person_bits"] - base_pp
    base = base_pp * n
    bits = max(0.0, kb["total_bits"] - base)
    return {"bits": bits, "bits_measured": kb["total_bits"], "bits_untrained": base, "max_bits": kb["max_bits"],
            "knowledge_fraction": bits / kb["max_bits"], "bits_raw": kb["total_bits_raw"],
            "fraction_raw": kb["total_bits_raw"] / kb["max_bits"], "n_people": n, "n_people_scored": n,
            "bits_se": float(np.std(person, ddof=1) * math.sqrt(n)) if n > 1 else 0.0, "person_bits": person,
            **{f"fraction_{a}": v["fraction"] for a, v in kb["by_attribute"].items()},
            "bits_stored_unclamped": kb["total_bits_unclamped"],
            "bits_untrained_unclamped": kb0["total_bits_unclamped"] if kb0 is not None else 0.0,
            "bits_se_unclamped": float(np.std(unclamped, ddof=1) * math.sqrt(n)) if n > 1 else 0.0}


def reasoning_eval(model, tokenizer, *, depths=(1, 2), n: int = 64, k: int = 4, seed: int = 0,
                   temperature: float = 1.0, top_p: float = 0.95, max_new_tokens: int | None = None,
                   batch_size: int = 64, samples: bool = False, ops=None, math_kw: dict | None = None) -> dict:
    """Greedy accuracy and pass@k on n held-out math problems (split "test") with difficulty in `depths`.

    depths: an int or an inclusive (lo, hi); ops, math_kw: the generator's options as in probe_corpus
    (the same as in training: mod, shuffle). max_new_tokens None: the longest reference solution of
    the set plus 16 tokens (room to finish, no more). k = 0 skips sampling. Returns greedy_acc (with
    _lo/_hi), mean@k and pass@k from k samples (with _lo/_hi; vtkit.evaluation), n, mean_tokens,
    and with samples=True the graded completions under "samples".
    """
    lo, hi = (depths, depths) if isinstance(depths, int) else tuple(depths)
    kw = {**(math_kw or {}), **({"subdomain": ops} if ops is not None else {})}
    recs = [dict(r) for r in tasks.make("math", n, seed=seed, difficulty=(lo, hi), split="test", **kw)]
    if max_new_tokens is None:
        sols = [s for r in recs for s in r["solutions"]]
        max_new_tokens = int(max(len(x) for x in tokenizer(sols, add_special_tokens=False)["input_ids"])) + 16
    greedy = evaluation.evaluate((model, tokenizer), recs, evaluation.get(
        evaluation.GREEDY, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed))
    lo_, hi_ = greedy.interval
    out = {"greedy_acc": greedy.acc, "greedy_acc_lo": lo_, "greedy_acc_hi": hi_, "n": len(recs),
           "max_new_tokens": max_new_tokens, "mean_tokens": greedy["mean_tokens"]}
    diff = {r["id"]: r["difficulty"] for r in recs}
    kept = [{"id": s["id"], "difficulty": diff[s["id"]], "mode": "greedy", "text": s["text"],
             "correct": bool(s["correct"])} for s in greedy.samples]
    if k:
        proto = evaluation.Protocol("capacity-sampled", "auto", n=k, temperature=temperature, top_p=top_p,
                                    max_new_tokens=max_new_tokens, ks=(1, k), batch_size=batch_size, seed=seed)
        sampled = evaluation.evaluate((model, tokenizer), recs, proto)
        out.update(sampled.flat(keys=[f"mean@{k}", f"pass@{k}"]))
        kept += [{"id": s["id"], "difficulty": diff[s["id"]], "mode": f"sample{s['sample_index']}",
                  "text": s["text"], "correct": bool(s["correct"])} for s in sampled.samples]
    if samples:
        out["samples"] = kept
    return out


def knowledge_per_param(kn: dict, n_params: int) -> dict:
    """`knowledge_eval`'s flat numbers (without person_bits) per parameter: adds bits_per_param,
    bits_per_param_raw, and bits_per_param_lo/_hi, the normal 95% interval bits +- Z95 x bits_se
    (the spread over people; the lower end clamped at 0) divided by n_params. Without bits_se (the
    prose format scores a subset) both ends are NaN. With bits_stored_unclamped (knowledge_eval gives
    it) also bits_per_param_unclamped and its bits_per_param_unclamped_lo/_hi from bits_se_unclamped
    (no clamp at either end; NaN without bits_se_unclamped)."""
    if not n_params or n_params <= 0:
        raise ValueError(f"knowledge_per_param: n_params must be > 0, got {n_params!r} (models.param_count(model))")
    if "person_bits" in kn:
        raise ValueError("knowledge_per_param: pop person_bits (an array) from knowledge_eval's result first")
    out = dict(kn)
    out["bits_per_param"] = kn["bits"] / n_params
    out["bits_per_param_raw"] = kn["bits_raw"] / n_params
    se = kn.get("bits_se", math.nan)
    lo = max(0.0, kn["bits"] - Z95 * se) if math.isfinite(se) else math.nan
    out["bits_per_param_lo"], out["bits_per_param_hi"] = lo / n_params, (kn["bits"] + Z95 * se) / n_params
    if "bits_stored_unclamped" in kn:
        u, se_u = kn["bits_stored_unclamped"], kn.get("bits_se_unclamped", math.nan)
        out["bits_per_param_unclamped"] = u / n_params
        out["bits_per_param_unclamped_lo"] = (u - Z95 * se_u) / n_params
        out["bits_per_param_unclamped_hi"] = (u + Z95 * se_u) / n_params
    return out


def chance_rates(mod: int, k: int = 0) -> dict:
    """What guessing scores on the math problems, whose answer is a residue mod `mod`: acc_chance =
    1/mod and, for k > 0 samples, pass@k_chance = 1 - (1 - 1/mod)**k (k independent guesses)."""
    if not isinstance(mod, int) or mod < 2 or k < 0:
        raise ValueError(f"chance_rates: need an int mod >= 2 and k >= 0, got mod={mod!r}, k={k!r}")
    return {"acc_chance": 1 / mod, **({f"pass@{k}_chance": 1 - (1 - 1 / mod) ** k} if k else {})}


def probe_metrics(*, params: int, params_embed: int, corpus: dict, log: dict, val_loss: float, knowledge: dict,
                  reasoning_id: dict, reasoning_ood: dict, mod: int, pass_k: int, train_s: float, eval_s: float,
                  wall_s: float) -> dict:
    """One capacity-probe run's metrics.json, from its parts: the model's parameter count (and its
    embedding's), the corpus (`probe_corpus`), the training log (`train.train_lm`), the held-out
    reasoning loss, knowledge (`knowledge_per_param`), reasoning in and out of distribution
    (`reasoning_eval`: greedy_acc -> acc_id / acc_ood with _lo/_hi, pass@k -> pass@k_id / _ood), the
    chance rates of arithmetic mod `mod`, and timings. in_capacity_regime: capacity_ratio >= 2.
    params_embed: `embedding_params(model)`. params_nonembed (the older key) and params_nonembedding
    are params - params_embed; bits_per_param_nonembedding (with _lo/_hi, and
    bits_per_param_unclamped_nonembedding when the unclamped bits are given) divide by it."""
    ratio = corpus["capacity_ratio"]
    nonembed = params - params_embed
    if nonembed <= 0:
        raise ValueError(f"probe_metrics: params ({params}) must exceed params_embed ({params_embed}); pass "
                         "capacity.embedding_params(model) as params_embed")
    per = {"params_nonembedding": nonembed, "bits_per_param_nonembedding": knowledge["bits"] / nonembed}
    for key in ("bits_per_param_lo", "bits_per_param_hi", "bits_per_param_unclamped"):
        if key in knowledge:   # the same total over fewer parameters
            name = key.replace("bits_per_param", "bits_per_param_nonembedding") if key.endswith(("_lo", "_hi")) \
                else f"{key}_nonembedding"
            per[name] = knowledge[key] * params / nonembed
    return {
        "params": params, "params_nonembed": params - params_embed,
        "n_people": corpus["n_people"], "exposures_actual": corpus["exposures_actual"],
        "bits_offered": corpus["bits_offered"], "capacity_ratio": ratio, "in_capacity_regime": bool((ratio or 0) >= 2),
        "tokens_trained": log["tokens"], "tokens_knowledge": corpus["tokens_knowledge"],
        "tokens_reasoning": corpus["tokens_reasoning"], "n_problems": corpus["n_problems"],
        "train_steps": log["steps"], "epochs_run": log["epochs_run"], "stopped_early": log["stopped_early"],
        "train_loss": log["final_loss"], "reasoning_val_loss": val_loss, "tokens_per_s": log["tokens_per_s"],
        **{k: v for k, v in knowledge.items() if k != "n_people"},
        "acc_id": reasoning_id["greedy_acc"], "acc_ood": reasoning_ood["greedy_acc"],
        "acc_id_lo": reasoning_id["greedy_acc_lo"], "acc_id_hi": reasoning_id["greedy_acc_hi"],
        "acc_ood_lo": reasoning_ood["greedy_acc_lo"], "acc_ood_hi": reasoning_ood["greedy_acc_hi"],
        **{f"{m}_id": v for m, v in reasoning_id.items() if m.startswith("pass@")},
        **{f"{m}_ood": v for m, v in reasoning_ood.items() if m.startswith("pass@")},
        "mod": mod, **chance_rates(mod, pass_k),
        "train_s": train_s, "eval_s": eval_s, "wall_s": wall_s,
        **per,
    }
