"""Knowledge capacity in bits, and the training corpora of the capacity probe (notebooks/10).

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
subtract the untrained baseline when bits are small.

Departures from the paper: the paper trains GPT-2 models with its own tokenizer and reads the
cross-entropy of the value tokens inside the training biographies; vtkit scores the value after a
one-sentence context (the person's name and a template's words up to the value) with the tiny Qwen2
ladder and its 1k BPE tokenizer. Context and value are tokenized separately and concatenated (the
tests check this equals tokenizing the sentence), so put the leading space in the value: " Paris".

Corpora (Allen-Zhu & Li's bioS "multi + permute"): `knowledge_corpus` writes each person's
biography `exposures` times, each time with freshly drawn paraphrase templates and sentence order,
so one pass shows every fact exactly `exposures` times. `reasoning_corpus` renders math-generator
problems (difficulty = number of operations <= a max depth) with a worked solution in the chat
template. `match_token_budget` cuts or cycles a corpus to a token budget.

The probe (notebook 10, `probe_corpus`, `train_lm`, `knowledge_eval`, `reasoning_eval`): models of
the tiny ladder are trained from scratch on one token budget B, in one of three modes:
  knowledge  bioS biographies of N people, each written `exposures` times, so every fact is seen
             exactly that often; N = B / (exposures x the mean tokens of a biography).
  reasoning  math dependency-graph problems with worked solutions, difficulty 1..max_depth, filling B.
  mixture    half the budget each: N/2 people at the *same* exposures, problems for the rest, so
             exposures stay the controlled variable of every run (`exposures_actual`, biographies per
             person in the stream, is reported all the same).
Training (`train_lm`) is one pass over the shuffled documents (the exposures are the epochs), causal
LM loss on every token, one document per row from position 0 (as the probes query them), rows of
similar length batched together; AdamW, linear warmup then cosine decay to lr x min_lr_ratio. Not
trl's SFTTrainer: pretraining-style text needs no chat masking, and a plain loop is faster on CPU.
Knowledge is measured in bits (`knowledge_eval`): set-normalised on a subset of the trained people,
scaled up by N / subset, minus the same measure on the untrained model of the same size and seed;
raw (a lower bound) on all people beside it. Reasoning (`reasoning_eval`, through vtkit.evaluation):
greedy_acc on held-out problems of the trained depths (in distribution) and deeper ones (out of
distribution), and mean@k / pass@k from k samples at temperature 1, top_p 0.95.
"""
from __future__ import annotations

import copy
import inspect
import math
import time

import numpy as np
import torch

from vtkit import evaluation, tasks
from vtkit.tasks import biographies, make
from vtkit.tasks import knowledge as bios
from vtkit.tasks.common import stable_int

MODES = ("knowledge", "reasoning", "mixture")

MAX_SET_SIZE = 400  # "auto": |V| up to this is scored against every candidate (bioS attributes <= 300)
_LN2 = math.log(2.0)


# ---------------------------------------------------------------- bits from log-probabilities


def knowledge_bits(value_logprobs_nats, value_set_sizes, attributes=None) -> dict:
    """Bits stored, from each fact's log p(value) in nats and the size |V| of its value set.

    value_set_sizes: one size for all facts, or one per fact. attributes: optional label per fact;
    adds a per-attribute breakdown. Returns bits (per fact, np.ndarray: drop it before writing
    metrics.json), total_bits, mean_bits (per fact), max_bits (sum of log2|V|: every fact known for
    certain), fraction (total / max), n_facts, and by_attribute when labels are given.
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
    bits = np.maximum(0.0, max_per_fact - ce_bits)
    out = {"bits": bits, "total_bits": float(bits.sum()), "mean_bits": float(bits.mean()),
           "max_bits": float(max_per_fact.sum()), "n_facts": int(lp.size)}
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


# ---------------------------------------------------------------- coded biographies: the capacity regime

# A coded biography is the person's name and attribute values, one token each (two for the name and
# for the birth date), in a fixed order: the same bioS facts, ~47.6 bits per person, in 9 tokens
# instead of a ~155-token prose biography (~57 with the field values alone: the 1k BPE spends 5-12
# tokens on a syllable-made value). The information is what the probe measures; the prose only
# costs training tokens. Value i of an attribute's set V is token ALPHABET[i]; the position says
# which attribute it is. The birth date (12 x 28 x 200) is two tokens, day+month (336) then year (200).
CODED_FIELDS = (("birth_date", "dm", 336), ("birth_date", "year", 200), ("birth_city", None, 200),
                ("university", None, 300), ("major", None, 100), ("employer", None, 263), ("gender", None, 2))
NAME_TOKENS = 2
CODED_LENGTH = NAME_TOKENS + len(CODED_FIELDS)  # 9 tokens per biography
CAPACITY_BPP = 2.0  # Allen-Zhu & Li's ceiling: ~2 bits per parameter at 1000 exposures


def code_alphabet(tokenizer) -> list[int]:
    """The ordinary tokens (no special token, nothing that decodes to whitespace), in id order."""
    special = set(tokenizer.all_special_ids) | {tokenizer.convert_tokens_to_ids(t) for t in ("<think>", "</think>")}
    alpha = [i for i in range(len(tokenizer)) if i not in special and tokenizer.decode([i]).strip()]
    need = max(s for _, _, s in CODED_FIELDS)
    if len(alpha) < need:
        raise ValueError(f"code_alphabet: the tokenizer has {len(alpha)} ordinary tokens, {need} needed")
    return alpha


def _value_index() -> dict:
    sets = bios.value_sets()
    return {a: {v: i for i, v in enumerate(vals)} for a, vals in sets.items()}


def coded_biographies(people, tokenizer) -> list[list[int]]:
    """One coded biography (CODED_LENGTH token ids) per person of tasks.people() (full value sets).

    The name is two alphabet tokens from a hash of the full name (re-hashed on a collision, in
    people order, so the codes of people[:k] do not depend on who follows)."""
    alpha = code_alphabet(tokenizer)
    K = len(alpha)
    people = list(people)
    if len(people) > K * K // 2:
        raise ValueError(f"coded_biographies: {len(people):,} people need more than {NAME_TOKENS} name tokens "
                         f"({K}^{NAME_TOKENS} = {K * K:,} codes; keep people <= half of them)")
    index = _value_index()
    used, out = set(), []
    for p in people:
        attempt = 0
        while True:
            code = stable_int("coded-name", p["name"], attempt) % (K * K)
            if code not in used:
                break
            attempt += 1
        used.add(code)
        seq = [alpha[code // K], alpha[code % K]]
        for attr, part, _size in CODED_FIELDS:
            if attr == "birth_date":
                day, month, year = p[attr].split(" ")
                i = (bios.MONTHS.index(month) * 28 + int(day) - 1) if part == "dm" else int(year) - 1900
            else:
                if p[attr] not in index[attr]:
                    raise ValueError(f"coded_biographies: {p['name']}'s {attr} {p[attr]!r} is not in the full value "
                                     "set; coded biographies need people() without value_sets overrides")
                i = index[attr][p[attr]]
            seq.append(alpha[i])
        out.append(seq)
    return out


def coded_corpus(people, exposures: int, tokenizer, seed: int = 0) -> tuple[list[list[int]], int]:
    """Each person's coded biography `exposures` times, all shuffled together: one pass shows every
    fact exactly `exposures` times. Returns (token-id lists, total tokens)."""
    if not isinstance(exposures, int) or exposures < 1:
        raise ValueError(f"coded_corpus: exposures must be an int >= 1, got {exposures!r}")
    seqs = coded_biographies(people, tokenizer)
    docs = [s for s in seqs for _ in range(exposures)]
    order = np.random.default_rng(seed).permutation(len(docs))
    return [docs[i] for i in order], len(docs) * CODED_LENGTH


@torch.no_grad()
def measure_coded(model, tokenizer, people, batch_size: int = 2048) -> dict:
    """knowledge_bits of coded biographies: each value's log p normalised over its value set (the
    first |V| alphabet tokens) given the name and the values before it, so the bits of a person add
    up by the chain rule to what the model stores about the person as a whole. One forward per
    batch of people scores all their facts. Adds person_bits (np.ndarray), n_people,
    bits_per_person, and the raw measure (log p over the whole vocabulary) as total_bits_raw."""
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
    out["total_bits_raw"] = knowledge_bits(np.minimum(torch.cat(lp_raw).numpy().ravel(), 0.0), sizes)["total_bits"]
    out["n_people"] = len(people)
    out["bits_per_person"] = out["total_bits"] / len(people)
    return out


def capacity_people(n_params: int, factor: float = 2.0, bits_per_param: float = CAPACITY_BPP) -> int:
    """People whose facts hold `factor` times the model's ceiling of `bits_per_param` x n_params bits
    (bioS: KNOWLEDGE_BITS_PER_PERSON ~47.6 bits each): with factor >= 1 the model, not the data, limits
    what is stored."""
    if n_params < 1 or factor <= 0 or bits_per_param <= 0:
        raise ValueError(f"capacity_people: need n_params >= 1, factor > 0, bits_per_param > 0 "
                         f"(got {n_params}, {factor}, {bits_per_param})")
    return int(math.ceil(factor * bits_per_param * n_params / bios.KNOWLEDGE_BITS_PER_PERSON))


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


# ---------------------------------------------------------------- corpora at a matched token budget


def token_lengths(texts, tokenizer) -> np.ndarray:
    """Tokens per text (no special tokens): the unit of every budget here."""
    texts = list(texts)
    if not texts:
        return np.zeros(0, dtype=np.int64)
    return np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]], dtype=np.int64)


def knowledge_corpus(people, exposures: int, tokenizer, seed: int = 0, templates: int = 6,
                     permute: bool = True) -> tuple[list[str], int]:
    """bioS "multi + permute": `exposures` biographies per person, each with freshly drawn templates
    (from the first `templates` paraphrases) and, with permute, shuffled sentence order; all of them
    shuffled together. One pass over the list shows every fact exactly `exposures` times.
    Returns (texts, total tokens)."""

    if not isinstance(exposures, int) or exposures < 1:
        raise ValueError(f"knowledge_corpus: exposures must be an int >= 1, got {exposures!r}")
    texts = biographies(people, seed=seed, templates=templates, permute=permute, per_person=exposures)
    np.random.default_rng(seed).shuffle(texts)
    return texts, int(token_lengths(texts, tokenizer).sum())


def reasoning_corpus(n: int, max_depth: int, tokenizer, seed: int = 0, min_depth: int = 1,
                     split: str = "train", **math_kw) -> tuple[list[str], int]:
    """n math problems (vtkit.tasks "math", number of operations in [min_depth, max_depth]), each
    rendered with the chat template as user prompt + one of its reference solutions (chosen by
    seed among the distinct solution paths), for plain next-token training on the whole text.
    Returns (texts, total tokens). Held-out problems: the same call with split="test"."""

    if not 1 <= min_depth <= max_depth:
        raise ValueError(f"reasoning_corpus: need 1 <= min_depth <= max_depth, got {min_depth}, {max_depth}")
    records = make("math", n, seed=seed, difficulty=(min_depth, max_depth), split=split, **math_kw)
    rng = np.random.default_rng(seed)
    texts = [tokenizer.apply_chat_template(
        [{"role": "user", "content": r["prompt"]},
         {"role": "assistant", "content": r["solutions"][int(rng.integers(len(r["solutions"])))]}],
        tokenize=False) for r in records]
    return texts, int(token_lengths(texts, tokenizer).sum())


def match_token_budget(texts, budget: int, tokenizer, seed: int = 0) -> tuple[list[str], int]:
    """Texts whose tokens add up to `budget` (to within one text): the list in its order, cut where
    the budget runs out, or, when the list is too short, repeated in freshly shuffled passes.
    A knowledge corpus cut to a fraction f of its tokens shows each fact about f * exposures times."""
    texts = list(texts)
    if not texts:
        raise ValueError("match_token_budget: no texts given")
    if budget < 1:
        raise ValueError(f"match_token_budget: budget must be >= 1 token, got {budget}")
    lengths = token_lengths(texts, tokenizer)
    rng = np.random.default_rng(seed)
    out, used, order = [], 0, np.arange(len(texts))
    while True:
        for i in order:
            if used + lengths[i] > budget:
                return out, int(used)
            out.append(texts[i])
            used += int(lengths[i])
        order = rng.permutation(len(texts))  # next pass: a fresh order


# ---------------------------------------------------------------- corpora at one token budget


def bio_tokens(tokenizer, seed: int = 0, sample: int = 64) -> float:
    """Mean tokens of one bioS biography (the unit that converts a budget into people)."""

    texts, total = knowledge_corpus(tasks.people(sample, seed=seed), 1, tokenizer, seed=seed)
    return total / len(texts)


def probe_corpus(mode: str, token_budget: int | None, exposures: int, tokenizer, *, max_depth: int = 2,
                 seed: int = 0, n_people: int | None = None, ops=None, knowledge_format: str = "prose",
                 n_params: int | None = None, capacity_factor: float | None = None, n_problems: int | None = None,
                 n_val: int = 0, mix_epochs: int = 1, math_kw: dict | None = None) -> dict:
    """The training texts of one capacity-probe run (see the module docstring for the three modes).

    Two designs. Budget (capacity_factor None): every mode fills `token_budget` tokens; n_people None
    sizes the knowledge set from the budget, an int fixes it. Capacity (capacity_factor given, with
    n_params): the knowledge set holds capacity_factor x the model's 2 bits/param ceiling
    (capacity_people; n_people overrides it), each person `exposures` times; reasoning is n_problems
    distinct problems plus n_val held-out ones for early stopping (`val`), shown once in reasoning
    mode (train_lm's epochs repeat them) and `mix_epochs` times in a mixture; token_budget is unused.
    knowledge_format: "prose" (bioS biographies, ~155 tokens) or "coded" (coded_biographies, 9 tokens;
    texts are then token-id lists). ops: the math operation mixes (None: all; "add": + only);
    math_kw: further math-generator options (mod, shuffle), e.g. {"mod": 7, "shuffle": False}.
    Returns texts (shuffled), val (held-out reasoning texts, [] without), people (trained on),
    eval_people (the trained people, or in reasoning mode the people a knowledge run would have
    seen, as a control), n_people, exposures_actual, tokens, tokens_knowledge, tokens_reasoning,
    n_problems, bits_offered (the knowledge set's bits, also for the control), capacity_ratio
    (bits_offered over 2 bits/param x n_params; None without n_params).
    """

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(exposures, int) or exposures < 1:
        raise ValueError(f"exposures must be an int >= 1, got {exposures!r}")
    if knowledge_format not in ("prose", "coded"):
        raise ValueError(f"knowledge_format must be 'prose' or 'coded', got {knowledge_format!r}")
    math_kw = {**(math_kw or {}), **({"subdomain": ops} if ops is not None else {})}
    capacity_design = capacity_factor is not None
    if capacity_design:
        if not n_params or n_params < 1:
            raise ValueError("probe_corpus: the capacity design (capacity_factor) needs n_params, the model's "
                             "parameter count (models.param_count)")
        if mode != "knowledge" and (not n_problems or n_problems < 1):
            raise ValueError(f"probe_corpus: {mode} runs of the capacity design need n_problems >= 1")
        n = n_people if n_people is not None else capacity_people(n_params, capacity_factor)
    else:
        if not isinstance(token_budget, int) or token_budget < 1000:
            raise ValueError(f"token_budget must be an int >= 1000 tokens, got {token_budget!r}")
        per_bio = CODED_LENGTH if knowledge_format == "coded" else bio_tokens(tokenizer, seed)
        share = {"knowledge": 1.0, "mixture": 0.5, "reasoning": 1.0}[mode]
        n = n_people if n_people is not None else int(share * token_budget // (exposures * per_bio))
    if n < 1:
        raise ValueError(f"a budget of {token_budget} tokens holds no person at {exposures} exposures; "
                         "raise token_budget or lower exposures")
    people = tasks.people(n, seed=seed)
    k_texts, k_tokens = [], 0
    if mode != "reasoning":
        maker = coded_corpus if knowledge_format == "coded" else knowledge_corpus
        k_texts, k_tokens = maker(people, exposures, tokenizer, seed=seed)
    r_texts, r_tokens, val, n_prob = [], 0, [], 0
    if capacity_design and mode != "knowledge":
        pool, _ = reasoning_corpus(n_problems + n_val, max_depth, tokenizer, seed=seed, **math_kw)
        train, val = pool[:n_problems], pool[n_problems:]
        reps = mix_epochs if mode == "mixture" else 1
        r_texts = [t for _ in range(reps) for t in train]
        r_tokens, n_prob = int(token_lengths(r_texts, tokenizer).sum()), n_problems
    elif not capacity_design and mode != "knowledge" and token_budget - k_tokens > 0:
        need = token_budget - k_tokens
        probe, _ = reasoning_corpus(64, max_depth, tokenizer, seed=seed, **math_kw)
        per_problem = token_lengths(probe, tokenizer).mean()
        n_prob = int(math.ceil(need / per_problem * 1.05)) + 8  # a little spare: match_token_budget cuts
        pool, _ = reasoning_corpus(n_prob, max_depth, tokenizer, seed=seed, **math_kw)
        r_texts, r_tokens = match_token_budget(pool, need, tokenizer, seed=seed)
        n_prob = len(r_texts)
    texts = k_texts + r_texts
    np.random.default_rng(seed).shuffle(texts)
    bits = n * bios.KNOWLEDGE_BITS_PER_PERSON
    return {"texts": texts, "val": val, "people": people if mode != "reasoning" else [], "eval_people": people,
            "n_people": n if mode != "reasoning" else 0,
            "exposures_actual": len(k_texts) / n if mode != "reasoning" else 0.0,
            "tokens": k_tokens + r_tokens, "tokens_knowledge": k_tokens, "tokens_reasoning": r_tokens,
            "n_problems": n_prob, "bits_offered": bits if mode != "reasoning" else 0.0,
            "capacity_ratio": (bits / (CAPACITY_BPP * n_params) if n_params else None) if mode != "reasoning" else 0.0}


# ---------------------------------------------------------------- training


def _as_ids(docs, tokenizer, max_length: int) -> list[list[int]]:
    """Token ids of each document (strings are tokenized, id lists kept), cut to max_length."""
    docs = list(docs)
    strs = [i for i, d in enumerate(docs) if isinstance(d, str)]
    out = [None] * len(docs)
    if strs:
        for i, ids in zip(strs, tokenizer([docs[i] for i in strs], add_special_tokens=False)["input_ids"]):
            out[i] = list(ids)
    for i, d in enumerate(docs):
        if out[i] is None:
            out[i] = [int(t) for t in d]
    return [x[:max_length] for x in out]


def _batches(ids: list[list[int]], batch_size: int, rng, epochs: int = 1,
             batch_tokens: int | None = None) -> list[list[int]]:
    """Rows of similar length together: shuffled, sorted by length within chunks of 32 batches, then
    the batches shuffled; each epoch a fresh order. batch_tokens: rows per batch chosen so that rows x
    the longest row stays within it (at most batch_size rows): 9-token biographies and ~110-token
    problems then take about the same tokens, and compute, per step."""
    batches = []
    for _ in range(epochs):
        order = rng.permutation(len(ids))
        chunk = batch_size * 32
        for s in range(0, len(order), chunk):
            part = sorted(order[s:s + chunk].tolist(), key=lambda i: len(ids[i]))
            if batch_tokens is None:
                batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
                continue
            cur = []
            for i in part:  # ascending length: the new row is the longest
                if cur and (len(cur) + 1 > batch_size or (len(cur) + 1) * len(ids[i]) > batch_tokens):
                    batches.append(cur)
                    cur = []
                cur.append(i)
            if cur:
                batches.append(cur)
    return [batches[i] for i in rng.permutation(len(batches))]


def _tensor(ids: list[list[int]], rows: list[int]) -> torch.Tensor:
    """Right-padded (rows, longest) with -100 after each document's end."""
    lengths = [len(ids[i]) for i in rows]
    L = max(lengths)
    if min(lengths) == L:
        return torch.tensor([ids[i] for i in rows], dtype=torch.long)
    return torch.tensor([ids[i] + [-100] * (L - len(ids[i])) for i in rows], dtype=torch.long)


def _lm_loss(model, x: torch.Tensor, pad: int, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy of right-padded rows (-100 marks padding), without an attention mask.

    Under causal attention a real token never sees the padding to its right, so the mask changes
    nothing for the tokens that are scored, and leaving it out keeps the fast causal path. The
    logits are computed for positions 0..L-2 only (the last position predicts nothing)."""
    inp = x.masked_fill(x < 0, pad)
    target = x[:, 1:]
    body = getattr(model, "model", None)
    if body is not None and hasattr(model, "lm_head"):
        hidden = body(input_ids=inp).last_hidden_state[:, :-1]
        logits = model.lm_head(hidden)
    else:
        logits = model(input_ids=inp).logits[:, :-1]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                             ignore_index=-100, reduction=reduction)


@torch.no_grad()
def lm_loss(model, tokenizer, docs, *, batch_size: int = 256, max_length: int = 512) -> float:
    """Mean next-token loss (nats per predicted token) of `docs` (strings or token-id lists): the
    validation loss of train_lm's early stopping. The model's train/eval mode is restored."""
    ids = _as_ids(docs, tokenizer, max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for s in range(0, len(order), batch_size):
        x = _tensor(ids, order[s:s + batch_size]).to(device)
        total += float(_lm_loss(model, x, pad, reduction="sum"))
        count += int((x[:, 1:] >= 0).sum())
    model.train(was)
    return total / max(1, count)


def train_lm(model, tokenizer, texts, *, lr: float = 2e-3, batch_size: int = 16, max_length: int = 512,
             warmup: float = 0.05, min_lr_ratio: float = 0.1, weight_decay: float = 0.0, seed: int = 0,
             log_every: int = 50, epochs: int = 1, val=None, eval_every: int | None = None,
             patience: int = 3, min_delta: float = 0.0, batch_tokens: int | None = None) -> dict:
    """Next-token training on `texts` (strings or token-id lists; loss on every token), in place.

    One pass per epoch over the shuffled documents, rows of similar length batched together
    (batch_size rows, or with batch_tokens as many rows as fit that many tokens, at most batch_size), no
    attention mask (right padding is invisible to causal attention; see _lm_loss); AdamW, linear
    warmup then cosine decay to lr x min_lr_ratio over all `epochs`.
    Early stopping: with `val` (held-out documents) the validation loss is measured every
    `eval_every` steps (None: once per epoch) and after the last step; training stops after
    `patience` measurements without an improvement of more than `min_delta`, and the weights of the
    best measurement are restored. `epochs` is then the most it may train.
    weight_decay 0: a memorisation probe should not be regularised away from the facts.
    Returns {steps (taken), steps_planned, epochs_run, tokens, final_loss (mean of the last 10% of
    steps), losses [(step, loss)], val_losses [(step, loss)], best_step, best_val_loss,
    stopped_early, wall_s, tokens_per_s}. On CUDA the forward runs under bf16 autocast.
    """

    texts = list(texts)
    if not texts:
        raise ValueError("train_lm: no texts to train on")
    if lr <= 0 or batch_size < 1 or max_length < 2 or epochs < 1:
        raise ValueError(f"train_lm: need lr > 0, batch_size >= 1, max_length >= 2, epochs >= 1 "
                         f"(got {lr}, {batch_size}, {max_length}, {epochs})")
    if val is not None and (len(val) == 0 or patience < 1):
        raise ValueError("train_lm: early stopping needs a non-empty `val` and patience >= 1")
    device = next(model.parameters()).device
    ids = _as_ids(texts, tokenizer, max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = np.random.default_rng(seed)
    batches = _batches(ids, batch_size, rng, epochs, batch_tokens)
    total = len(batches)
    per_epoch = max(1, total // epochs)
    every = eval_every or per_epoch
    n_warm = max(1, int(warmup * total))

    def factor(step):  # linear warmup, then cosine from 1 to min_lr_ratio
        if step < n_warm:
            return (step + 1) / n_warm
        t = (step - n_warm) / max(1, total - n_warm)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    losses, val_losses, tokens, t0 = [], [], 0, time.time()  # losses: one float per step
    best, best_step, best_state, bad, stopped = math.inf, -1, None, 0, False
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    for step, rows in enumerate(batches):
        x = _tensor(ids, rows).to(device)
        with autocast:
            loss = _lm_loss(model, x, pad)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tokens += int((x >= 0).sum())
        losses.append(float(loss.detach()))
        if val is not None and ((step + 1) % every == 0 or step == total - 1):
            with autocast:
                v = lm_loss(model, tokenizer, val, batch_size=max(batch_size, 64), max_length=max_length)
            val_losses.append((step + 1, v))
            if v < best - min_delta:
                best, best_step, bad = v, step + 1, 0
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    stopped = step < total - 1
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    wall = time.time() - t0
    done = len(losses)
    return {"steps": done, "steps_planned": total, "epochs_run": done / per_epoch, "tokens": tokens,
            "final_loss": float(np.mean(losses[-max(1, done // 10):])),
            "losses": [(s, v) for s, v in enumerate(losses) if s % log_every == 0 or s == done - 1],
            "val_losses": val_losses, "best_step": best_step if val is not None else done,
            "best_val_loss": best if val is not None else math.nan, "stopped_early": stopped,
            "wall_s": wall, "tokens_per_s": tokens / max(wall, 1e-9)}


# ---------------------------------------------------------------- measuring


def knowledge_eval(model, tokenizer, people, *, subset: int = 16, untrained=None, baseline_people: int = 4,
                   seed: int = 0, batch_size: int = 512, knowledge_format: str = "prose") -> dict:
    """Bits the model stores about `people` (see the module docstring).

    subset: people scored set-normalised (None or >= len(people): all); untrained: the same
    architecture before training, for the baseline (None: no baseline, bits_untrained = 0);
    baseline_people: people of the subset the untrained model is scored on (its bits per person
    hardly vary). Returns flat numbers: bits (net of the baseline, >= 0), bits_measured,
    bits_untrained, max_bits, knowledge_fraction, bits_raw and fraction_raw (normalize="none" over
    all people, a lower bound), n_people, n_people_scored.
    knowledge_format "coded": every person is scored (coded biographies cost one forward per batch of
    people), set-normalised and raw; adds bits_se, the standard error of the total over people
    (sqrt(n) x the spread of the per-person bits: the item part of an interval), and person_bits.
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
    base = 0.0
    if untrained is not None:
        b = measure_knowledge(untrained, tokenizer, scored[:max(1, baseline_people)], batch_size=batch_size)
        base = b["bits_per_person"] * n
    raw = measure_knowledge(model, tokenizer, people, normalize="none", batch_size=batch_size)
    measured = kset["total_bits"] * scale
    max_bits = kset["max_bits"] / m * n
    bits = max(0.0, measured - base)
    return {"bits": bits, "bits_measured": measured, "bits_untrained": base, "max_bits": max_bits,
            "knowledge_fraction": bits / max_bits, "bits_raw": raw["total_bits"], "fraction_raw": raw["fraction"],
            "n_people": n, "n_people_scored": m,
            **{f"fraction_{a}": v["fraction"] for a, v in kset.get("by_attribute", {}).items()}}


def _knowledge_eval_coded(model, tokenizer, people, untrained) -> dict:
    kb = measure_coded(model, tokenizer, people)
    base_pp = measure_coded(untrained, tokenizer, people)["bits_per_person"] if untrained is not None else 0.0
    n = len(people)
    person = kb["person_bits"] - base_pp
    base = base_pp * n
    bits = max(0.0, kb["total_bits"] - base)
    return {"bits": bits, "bits_measured": kb["total_bits"], "bits_untrained": base, "max_bits": kb["max_bits"],
            "knowledge_fraction": bits / kb["max_bits"], "bits_raw": kb["total_bits_raw"],
            "fraction_raw": kb["total_bits_raw"] / kb["max_bits"], "n_people": n, "n_people_scored": n,
            "bits_se": float(np.std(person, ddof=1) * math.sqrt(n)) if n > 1 else 0.0, "person_bits": person,
            **{f"fraction_{a}": v["fraction"] for a, v in kb["by_attribute"].items()}}


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
