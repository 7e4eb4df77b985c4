"""The capacity probe's training corpora: bioS facts (prose or coded biographies) and math problems.

    from vtkit import corpora, tasks
    texts, n_tokens = corpora.knowledge_corpus(tasks.people(100, seed=0), exposures=100, tokenizer=tok)
    docs, n_tokens = corpora.coded_corpus(tasks.people(100, seed=0), 100, tok)   # 9-token biographies
    run = corpora.probe_corpus("mixture", None, 100, tok, n_params=24208, capacity_factor=2.0, n_problems=2000)

Knowledge (Allen-Zhu & Li's bioS "multi + permute", Physics of LMs 3.3, arXiv 2404.05405):
`knowledge_corpus` writes each person's biography `exposures` times, each time with freshly drawn
paraphrase templates and sentence order, so one pass shows every fact exactly `exposures` times.
`coded_corpus` writes the same facts as coded biographies, one token per value (below), 9 tokens a
person instead of ~155: the information is what the probe measures; the prose only costs tokens.
Reasoning: `reasoning_corpus` renders math-generator problems (difficulty = number of operations
<= a max depth) with a worked solution in the chat template. `match_token_budget` cuts or cycles a
corpus to a token budget.

`probe_corpus` assembles one run of the probe (notebooks/10_capacity_probe.ipynb, vtkit.stages.capacity)
in one of three modes:
  knowledge  bioS biographies of N people, each written `exposures` times, so every fact is seen
             exactly that often.
  reasoning  math dependency-graph problems with worked solutions, difficulty 1..max_depth.
  mixture    both in one shuffled stream, at the *same* exposures, so exposures stay the controlled
             variable of every run (`exposures_actual`, biographies per person in the stream, is
             reported all the same).
Two designs size them. Capacity (capacity_factor given): N people hold capacity_factor x the model's
2 bits/param ceiling (`capacity_people`), reasoning is n_problems distinct problems (plus n_val
held out for early stopping). Budget (capacity_factor None): every mode fills one token budget B;
N = B / (exposures x the mean tokens of a biography), a mixture spends half on each.

Departures from the paper: the paper's biographies are prose in GPT-2's tokenizer; vtkit's coded
format keeps the facts (and their bits) and drops the prose, so that the tiny ladder's CPU runs reach
the capacity regime. The measures (bits, accuracy) are in vtkit.capacity; the trainer is
vtkit.train.train_lm.
"""
from __future__ import annotations

import math

import numpy as np

from vtkit import tasks
from vtkit.tasks import biographies, make
from vtkit.tasks import knowledge as bios
from vtkit.tasks.common import stable_int

MODES = ("knowledge", "reasoning", "mixture")


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

def capacity_people(n_params: int, factor: float = 2.0, bits_per_param: float = CAPACITY_BPP) -> int:
    """People whose facts hold `factor` times the model's ceiling of `bits_per_param` x n_params bits
    (bioS: KNOWLEDGE_BITS_PER_PERSON ~47.6 bits each): with factor >= 1 the model, not the data, limits
    what is stored."""
    if n_params < 1 or factor <= 0 or bits_per_param <= 0:
        raise ValueError(f"capacity_people: need n_params >= 1, factor > 0, bits_per_param > 0 "
                         f"(got {n_params}, {factor}, {bits_per_param})")
    return int(math.ceil(factor * bits_per_param * n_params / bios.KNOWLEDGE_BITS_PER_PERSON))

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
