"""vtkit.capacity, vtkit.corpora and vtkit.train.train_lm: bits from constructed distributions, exact
batched/cached scoring, bioS queries, the corpora (budget-matched and capacity-sized), the probe's
training loop (TensorBoard included), the measures and the probe's metrics on known values."""
import math

import numpy as np
import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from vtkit import capacity, corpora, models, presets, train
from vtkit.tasks import knowledge as bios

# ---------------------------------------------------------------- knowledge_bits on given log-probs


def test_bits_uniform_certain_partial_and_clamped():
    V = np.array([2, 8, 200, 8, 8])
    lp = np.array([math.log(1 / 2), 0.0, math.log(1 / 200), math.log(0.5), math.log(0.01)])
    kb = capacity.knowledge_bits(lp, V, attributes=["g", "a", "c", "a", "a"])
    # uniform -> 0; certain -> log2|V|; p=1/2 of 8 -> 2 bits; worse than uniform (p=0.01 < 1/8) -> 0
    np.testing.assert_allclose(kb["bits"], [0.0, 3.0, 0.0, 2.0, 0.0], atol=1e-12)
    assert kb["total_bits"] == pytest.approx(5.0) and kb["mean_bits"] == pytest.approx(1.0)
    assert kb["max_bits"] == pytest.approx(1 + 3 * 3 + math.log2(200))
    assert kb["fraction"] == pytest.approx(5.0 / kb["max_bits"])
    assert kb["by_attribute"]["a"] == {"total_bits": 5.0, "max_bits": 9.0, "fraction": 5 / 9, "n_facts": 3}
    assert capacity.bits_per_param(kb, 10) == pytest.approx(0.5)
    assert capacity.bits_per_param(12.0, 4) == 3.0
    # without the clamp the worse-than-uniform fact counts negative: log2(8 x 0.01) = -3.64 bits
    np.testing.assert_allclose(kb["bits_unclamped"], [0.0, 3.0, 0.0, 2.0, math.log2(0.08)], atol=1e-12)
    assert kb["total_bits_unclamped"] == pytest.approx(5.0 + math.log2(0.08)) and kb["total_bits_unclamped"] < 1.4


def test_bits_reject_bad_input():
    with pytest.raises(ValueError, match="must be <= 0"):
        capacity.knowledge_bits([0.7], [4])  # a probability, not a log-probability
    with pytest.raises(ValueError, match="whole numbers >= 1"):
        capacity.knowledge_bits([-1.0], [0])
    with pytest.raises(ValueError, match="2 attribute labels for 1 facts"):
        capacity.knowledge_bits([-1.0], [4], attributes=["a", "b"])
    with pytest.raises(ValueError, match="n_params must be > 0"):
        capacity.bits_per_param(3.0, 0)
    assert capacity.knowledge_bits([-math.inf], [4])["total_bits"] == 0.0  # p = 0: no bits, no crash


# ---------------------------------------------------------------- value_logprobs on a constructed model


class WordTokenizer:
    """Whitespace words, one token each: enough of the HF call interface for value_logprobs."""
    pad_token_id = 0

    def __init__(self, words):
        self.vocab = {w: i for i, w in enumerate(["<pad>", *words])}

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [self.vocab[w] for w in text.split()]}


class Bigram(torch.nn.Module):
    """A real (tiny) Qwen2 for the batching and KV-cache mechanics, whose logits are replaced by a
    next-token table indexed by the current token: a language model with a distribution we choose."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        V = table.shape[0]
        self.inner = Qwen2ForCausalLM(Qwen2Config(vocab_size=V, hidden_size=8, num_hidden_layers=1,
                                                  num_attention_heads=2, num_key_value_heads=1,
                                                  intermediate_size=16, pad_token_id=0))
        self.register_buffer("table", table)

    def forward(self, input_ids, attention_mask=None, cache=None, use_cache=None):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=use_cache)
        out.logits = self.table[input_ids]
        return out


DIGITS = [str(d) for d in range(1, 10)]
TOK = WordTokenizer(["Ann", "Bob", "City", "Town", ".", *DIGITS])


def _table(rows: dict) -> torch.Tensor:
    """rows: token -> {next token: probability}; unspecified next tokens get probability ~0."""
    t = torch.full((len(TOK.vocab), len(TOK.vocab)), -1e9)
    for tok, dist in rows.items():
        for nxt, p in dist.items():
            t[TOK.vocab[tok], TOK.vocab[nxt]] = math.log(p) if p > 0 else -1e9
    return t


def _digits(right: str, q: float) -> dict:
    return {d: q if d == right else (1 - q) / 8 for d in DIGITS}


@pytest.mark.parametrize("q,expected_bits", [
    (1 / 9, 0.0),                      # uniform over the 9 values: nothing stored
    (1.0, math.log2(9)),               # certain of the right value: log2|V|
    (0.5, math.log2(9 * 0.5)),         # partial knowledge counts partially
    (0.01, 0.0),                       # worse than uniform: clamped at 0
])
def test_value_logprobs_bits_from_constructed_distributions(q, expected_bits):
    # "Ann" -> "City" with p = 1/2 (the other half leaks to "."), "City" -> the right digit "4" with p = q
    model = Bigram(_table({"Ann": {"City": 0.5, ".": 0.5}, "City": _digits("4", q)}))
    cands = [f"City {d}" for d in DIGITS]
    lp_set = capacity.value_logprobs(model, TOK, ["Ann"], ["City 4"], candidates=cands, normalize="set")
    lp_raw = capacity.value_logprobs(model, TOK, ["Ann"], ["City 4"], normalize="none")
    assert lp_set[0] == pytest.approx(math.log(q), abs=1e-6)  # the shared " City" cancels within V
    assert lp_raw[0] == pytest.approx(math.log(0.5 * q), abs=1e-6)  # raw keeps the mass lost to "."
    assert capacity.knowledge_bits(lp_set, 9)["total_bits"] == pytest.approx(expected_bits, abs=1e-6)
    # unclamped: log2(9 q), negative for q = 0.01 (-3.47 bits) where the clamped count is 0
    unclamped = capacity.knowledge_bits(lp_set, 9)["total_bits_unclamped"]
    assert unclamped == pytest.approx(math.log2(9 * q), abs=1e-6) and (unclamped < -1) == (q == 0.01)
    raw_bits = capacity.knowledge_bits(lp_raw, 9)["total_bits"]
    assert raw_bits == pytest.approx(max(0.0, math.log2(9 * q) - 1), abs=1e-6) and raw_bits <= expected_bits + 1e-9


def test_value_logprobs_keeps_facts_apart_and_auto_switches_on_set_size():
    model = Bigram(_table({"Ann": {"City": 1.0}, "Bob": {"Town": 0.5, ".": 0.5},
                           "City": _digits("4", 1.0), "Town": _digits("7", 1 / 9)}))
    ctx, vals = ["Ann", "Bob"], ["City 4", "Town 7"]
    cands = [[f"City {d}" for d in DIGITS], [f"Town {d}" for d in DIGITS]]
    lp = capacity.value_logprobs(model, TOK, ctx, vals, candidates=cands)  # auto: 9 <= 400 -> set
    np.testing.assert_allclose(capacity.knowledge_bits(lp, 9)["bits"], [math.log2(9), 0.0], atol=1e-6)
    lp = capacity.value_logprobs(model, TOK, ctx, vals, candidates=cands, max_set_size=5)  # auto -> raw
    np.testing.assert_allclose(lp, [0.0, math.log(0.5 / 9)], atol=1e-6)


def test_value_logprobs_errors_name_the_fix():
    model = Bigram(_table({}))
    with pytest.raises(ValueError, match="needs candidates=.*normalize='none'"):
        capacity.value_logprobs(model, TOK, ["Ann"], ["City 4"])
    with pytest.raises(ValueError, match="not among its candidates"):
        capacity.value_logprobs(model, TOK, ["Ann"], ["City 4"], candidates=["City 1", "City 2"])
    with pytest.raises(ValueError, match="has no tokens"):
        capacity.value_logprobs(model, TOK, [""], ["City 4"], normalize="none")
    with pytest.raises(ValueError, match="2 contexts but 1 values"):
        capacity.value_logprobs(model, TOK, ["Ann", "Bob"], ["City 4"], normalize="none")


# ---------------------------------------------------------------- the real tiny ladder


@pytest.fixture(scope="module")
def tiny():
    model, tok = models.load("tiny-200k", seed=0)
    return model, tok


def test_batched_and_cached_scoring_equal_one_by_one(tiny):
    model, tok = tiny
    ps = bios.people(4, seed=1, value_sets={"birth_city": 12, "major": 7})
    qs = [q for q in capacity.knowledge_queries(ps, value_sets={"birth_city": 12, "major": 7},
                                                attributes=["birth_city", "major", "gender"])]
    ctx, vals = [q["context"] for q in qs], [q["value"] for q in qs]
    batched = capacity.value_logprobs(model, tok, ctx, vals, normalize="none", batch_size=5)
    alone = np.array([capacity.value_logprobs(model, tok, [c], [v], normalize="none", batch_size=1)[0]
                      for c, v in zip(ctx, vals)])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    # the KV-cached set scoring equals a softmax over whole sequences scored without any cache
    cands = [q["candidates"] for q in qs]
    fast = capacity.value_logprobs(model, tok, ctx, vals, candidates=cands, normalize="set", batch_size=16)
    for i, (c, v, V) in enumerate(zip(ctx, vals, cands)):
        full = capacity.value_logprobs(model, tok, [c] * len(V), V, normalize="none", batch_size=64)
        assert fast[i] == pytest.approx(full[V.index(v)] - np.logaddexp.reduce(full), abs=1e-5)
    assert model.training is False


def test_queries_tokenize_like_the_training_text_and_are_prefix_free(tiny):
    _, tok = tiny
    ps = bios.people(3, seed=0)
    qs = capacity.knowledge_queries(ps)
    assert len(qs) == 3 * (len(bios.ATTRIBUTES) + 1)  # the birth date is two queries
    dates = [q for q in qs if q["attribute"] == "birth_date"]
    assert len(dates[0]["candidates"]) * len(dates[1]["candidates"]) == bios.ATTRIBUTES["birth_date"]
    bio = bios.biographies(ps[:1], templates=1)[0]
    for q in qs:
        ids = tok(q["context"] + q["value"], add_special_tokens=False)["input_ids"]
        assert ids == tok(q["context"], add_special_tokens=False)["input_ids"] + \
            tok(q["value"], add_special_tokens=False)["input_ids"], q
        if q["person"] == ps[0]["name"] and q["attribute"] != "birth_date":
            assert (q["context"] + q["value"]) in bio  # the probe is a sentence of the training text
    for V in {id(q["candidates"]): q["candidates"] for q in qs}.values():
        seqs = {tuple(tok(v, add_special_tokens=False)["input_ids"]) for v in V}
        assert len(seqs) == len(V)
        assert not any(s[:k] in seqs for s in seqs for k in range(1, len(s))), "a candidate is a prefix of another"
    with pytest.raises(ValueError, match="same value_sets="):
        capacity.knowledge_queries(ps, value_sets={"birth_city": 3})


def test_training_on_biographies_stores_bits(tiny):
    """End to end: 50 steps on 4 people's biographies take the model from ~0 bits to most of them.

    Learning only which values occur (the marginal) would give at most log2(8/4) of 3 bits per fact
    (fraction 1/3); above 0.6 the model must tie values to people."""
    sizes = {"birth_city": 8, "university": 8, "major": 8, "employer": 8, "birth_date": 16}
    ps = bios.people(4, seed=3, value_sets=sizes)
    attrs = ["birth_city", "university", "major", "employer"]
    model, tok = models.load("tiny-200k", seed=0)
    before = capacity.measure_knowledge(model, tok, ps, value_sets=sizes, attributes=attrs)
    texts, n_tokens = corpora.knowledge_corpus(ps, 100, tok, seed=0, templates=1)
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(0, len(texts), 8):
        batch = tok(texts[step:step + 8], return_tensors="pt", padding=True, add_special_tokens=False)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward(), opt.step(), opt.zero_grad()
    model.eval()
    after = capacity.measure_knowledge(model, tok, ps, value_sets=sizes, attributes=attrs)
    assert after["max_bits"] == pytest.approx(4 * 4 * 3.0) and after["n_people"] == 4
    assert before["fraction"] < 0.2 and after["fraction"] > 0.6, (before["fraction"], after["fraction"])


# ---------------------------------------------------------------- corpora and budgets


def test_knowledge_corpus_shows_each_fact_exactly_exposures_times(tiny):
    _, tok = tiny
    ps = bios.people(5, seed=2)
    texts, n_tokens = corpora.knowledge_corpus(ps, 7, tok, seed=4)
    assert len(texts) == 35 and n_tokens == int(corpora.token_lengths(texts, tok).sum())
    owners = [[p["name"] in t for p in ps].index(True) for t in texts]
    for i, p in enumerate(ps):
        mine = [t for t, o in zip(texts, owners) if o == i]
        assert len(mine) == 7
        for a in bios.ATTRIBUTES:
            assert sum(t.count(f" {p[a]}") for t in mine) == 7, (p["name"], a)
    assert sum(a != b for a, b in zip(owners, owners[1:])) > len(ps) - 1, "biographies are shuffled together"
    assert texts == corpora.knowledge_corpus(ps, 7, tok, seed=4)[0]
    assert texts != corpora.knowledge_corpus(ps, 7, tok, seed=5)[0]
    with pytest.raises(ValueError, match="exposures must be an int >= 1"):
        corpora.knowledge_corpus(ps, 0, tok)


def test_reasoning_corpus_depths_and_chat_form(tiny):
    _, tok = tiny
    texts, n = corpora.reasoning_corpus(12, 3, tok, seed=0, min_depth=2)
    assert len(texts) == 12 and n == int(corpora.token_lengths(texts, tok).sum())
    for t in texts:
        assert t.startswith("<|im_start|>user\n") and "<|im_start|>assistant\n<think>" in t and "\\boxed{" in t
        steps = len(t.split("<think>\n")[1].split("</think>")[0].strip().splitlines())  # one line per operation
        assert 2 <= steps <= 3, t
    with pytest.raises(ValueError, match="min_depth <= max_depth"):
        corpora.reasoning_corpus(3, 1, tok, min_depth=2)


def test_token_budgets_cut_and_cycle(tiny):
    _, tok = tiny
    know, k_tokens = corpora.knowledge_corpus(bios.people(6, seed=0), 2, tok)
    reas, r_tokens = corpora.reasoning_corpus(10, 2, tok)
    longest = int(max(corpora.token_lengths(know + reas, tok)))
    cut, n = corpora.match_token_budget(know, k_tokens // 2, tok)
    assert k_tokens // 2 - longest < n <= k_tokens // 2 and cut == know[:len(cut)]
    cyc, n = corpora.match_token_budget(reas, 3 * r_tokens, tok, seed=1)
    assert 3 * r_tokens - longest < n <= 3 * r_tokens and len(cyc) > 2 * len(reas)
    assert sorted(cyc[len(reas):2 * len(reas)]) == sorted(reas)  # the second pass is a reshuffled full pass
    assert n == int(corpora.token_lengths(cyc, tok).sum())


# ---------------------------------------------------------------- the capacity probe: corpora at one budget


@pytest.fixture(scope="module")
def tiny25():
    return models.load("tiny-25k", seed=0)


def test_probe_corpora_match_the_budget_and_keep_exposures_exact(tiny25):
    _, tok = tiny25
    B, E = 30_000, 10
    runs = {m: corpora.probe_corpus(m, B, E, tok, max_depth=1, seed=0) for m in corpora.MODES}
    k, r, x = runs["knowledge"], runs["reasoning"], runs["mixture"]
    per_person = E * corpora.bio_tokens(tok)
    assert k["n_people"] == int(B // per_person) and k["exposures_actual"] == E
    assert B - per_person < k["tokens"] <= B and k["tokens_reasoning"] == 0
    assert r["tokens_knowledge"] == 0 and B - 300 < r["tokens"] <= B and r["n_people"] == 0
    # the mixture: half the people at the same exposures, problems fill the budget
    assert x["n_people"] == int(B / 2 // per_person) and x["exposures_actual"] == E
    assert B - 300 < x["tokens"] <= B and x["tokens_knowledge"] <= B / 2 < x["tokens_knowledge"] + per_person
    # every biography names its person: each trained person appears exactly E times
    names = [p["name"] for p in x["people"]]
    bios_ = [t for t in x["texts"] if not t.startswith("<|im_start|>")]
    assert len(bios_) == E * len(names) and all(sum(n in t for t in bios_) == E for n in names)
    # reasoning mode measures the knowledge run's people as a control; nothing of theirs was trained
    assert [p["name"] for p in r["eval_people"]] == [p["name"] for p in k["people"]]
    assert not any(p["name"] in t for p in r["eval_people"] for t in r["texts"])
    again = corpora.probe_corpus("mixture", B, E, tok, max_depth=1, seed=0)
    assert again["texts"] == x["texts"]  # deterministic


def test_probe_corpus_rejects_bad_requests(tiny25):
    _, tok = tiny25
    with pytest.raises(ValueError, match="mode must be"):
        corpora.probe_corpus("memorise", 30_000, 10, tok)
    with pytest.raises(ValueError, match="holds no person"):
        corpora.probe_corpus("knowledge", 5_000, 1000, tok)
    with pytest.raises(ValueError, match="exposures"):
        corpora.probe_corpus("knowledge", 30_000, 0, tok)
    with pytest.raises(ValueError, match="token_budget"):
        corpora.probe_corpus("knowledge", 500, 1, tok)


# ---------------------------------------------------------------- the capacity probe: training and measuring


def test_train_lm_learns_and_is_deterministic():
    texts = ["Ann Bo was born in Baford. Ann Bo works for Zig Labs."] * 96
    out = []
    for _ in range(2):
        model, tok = models.load("tiny-25k", seed=0, dtype="float32")
        log = train.train_lm(model, tok, texts, lr=2e-2, batch_size=4, seed=0, log_every=1)
        out.append(log)
    first, last = out[0]["losses"][0][1], out[0]["final_loss"]
    assert out[0]["steps"] == 24 and out[0]["tokens"] == sum(len(tok(t)["input_ids"]) for t in texts)
    assert last < 0.5 * first  # it learned the sentence
    assert out[0]["final_loss"] == out[1]["final_loss"]  # same seed, same run
    assert not model.training
    with pytest.raises(ValueError, match="no texts"):
        train.train_lm(model, tok, [])


def test_knowledge_eval_scales_the_subset_and_subtracts_the_baseline(tiny25):
    from vtkit import tasks

    model, tok = tiny25
    people = tasks.people(2, seed=3)  # ~1,400 scored rows per person: keep it small
    full = capacity.measure_knowledge(model, tok, people)
    # the same model as its own baseline, scored on every person: nothing is stored
    same = capacity.knowledge_eval(model, tok, people, subset=None, untrained=model, baseline_people=2)
    assert same["bits"] == 0 and same["bits_measured"] == pytest.approx(full["total_bits"])
    assert same["max_bits"] == pytest.approx(full["max_bits"]) and same["knowledge_fraction"] == 0
    # unclamped: the measured sum, not net of the baseline; an untrained model is below uniform on some facts
    assert same["bits_stored_unclamped"] == pytest.approx(full["total_bits_unclamped"])
    assert same["bits_untrained_unclamped"] == pytest.approx(full["total_bits_unclamped"])
    assert (full["bits_unclamped"] < 0).any() and full["total_bits_unclamped"] < full["total_bits"]
    # a subset of 1 of 2 people, scaled by 2
    sub = capacity.knowledge_eval(model, tok, people, subset=1, seed=0)
    pick = int(np.random.default_rng(0).choice(2, size=1, replace=False)[0])
    part = capacity.measure_knowledge(model, tok, [people[pick]])
    assert sub["bits_measured"] == pytest.approx(2 * part["total_bits"]) and sub["n_people_scored"] == 1
    assert sub["bits_untrained"] == 0 and sub["bits"] == pytest.approx(sub["bits_measured"])
    assert sub["bits_stored_unclamped"] == pytest.approx(2 * part["total_bits_unclamped"])
    assert sub["bits_untrained_unclamped"] == 0 and "bits_se_unclamped" not in sub
    assert 0 <= sub["bits_raw"] <= sub["max_bits"] and set(sub) >= {"fraction_birth_city", "fraction_raw"}
    with pytest.raises(ValueError, match="no people to measure"):
        capacity.knowledge_eval(model, tok, [])


def test_reasoning_eval_measures_through_evaluation(tiny25):
    """The fresh model's rates are fractions with intervals around them; no old keys remain."""
    model, tok = tiny25
    fresh = capacity.reasoning_eval(model, tok, depths=1, n=4, k=2, max_new_tokens=8)
    rates = ("greedy_acc", "mean@2", "pass@2")
    assert set(fresh) >= {*rates, *(f"{r}_{e}" for r in rates for e in ("lo", "hi")), "n", "max_new_tokens",
                          "mean_tokens"}
    assert not {"acc", "pass@1", "samples"} & set(fresh)
    for r in rates:
        assert 0 <= fresh[f"{r}_lo"] <= fresh[r] <= fresh[f"{r}_hi"] <= 1, r
    assert fresh["mean@2"] <= fresh["pass@2"] and fresh["n"] == 4 and fresh["max_new_tokens"] == 8
    assert 0 < fresh["mean_tokens"] <= 8


def test_reasoning_eval_grades_real_completions(tiny25, monkeypatch):
    """A model whose first sample is the reference solution: greedy 1, mean@4 1/4, pass@4 1."""
    from vtkit import generate, tasks

    model, tok = tiny25
    recs = {r["prompt"]: r for r in tasks.make("math", 4, seed=0, difficulty=(1, 2), split="test")}
    calls = []

    def oracle(model, tok, prompts, n=1, temperature=1.0, **kw):
        calls.append((n, temperature))
        return [{"prompt_index": i, "sample_index": s, "prompt": p, "n_tokens": 5, "truncated": False,
                 "text": recs[p]["solutions"][0] if s == 0 else "<think>\nno idea\n</think>\n\\boxed{-1}"}
                for i, p in enumerate(prompts) for s in range(n)]

    monkeypatch.setattr(generate, "generate", oracle)
    got = capacity.reasoning_eval(model, tok, depths=(1, 2), n=4, k=4, samples=True)
    assert calls == [(1, 0.0), (4, 1.0)]  # one greedy pass, then k samples at the given temperature
    assert got["greedy_acc"] == 1.0 and got["greedy_acc_lo"] == got["greedy_acc_hi"] == 1.0
    assert got["mean@4"] == 0.25 and got["pass@4"] == 1.0 and got["n"] == 4 and got["mean_tokens"] == 5
    assert len(got["samples"]) == 4 * 5 and got["max_new_tokens"] > 16
    modes = [s["mode"] for s in got["samples"]]
    assert modes.count("greedy") == 4 and modes.count("sample0") == 4 and modes.count("sample3") == 4
    assert all(s["correct"] == (s["mode"] in ("greedy", "sample0")) for s in got["samples"])
    assert {s["difficulty"] for s in got["samples"]} <= {1, 2}
    # k = 0: greedy only, no sampling
    calls.clear()
    only = capacity.reasoning_eval(model, tok, depths=(1, 2), n=4, k=0)
    assert calls == [(1, 0.0)] and only["greedy_acc"] == 1.0 and not any("@" in key for key in only)


# ---------------------------------------------------------------- the capacity regime: coded facts, sizing, early stopping


def test_capacity_people_offer_twice_the_ceiling(tiny25):
    _, tok = tiny25
    for n_params in (24208, 214080, 9_675_584):
        n = corpora.capacity_people(n_params)  # factor 2 x 2 bits/param
        bits = n * bios.KNOWLEDGE_BITS_PER_PERSON
        assert 4 * n_params <= bits < 4 * n_params + bios.KNOWLEDGE_BITS_PER_PERSON
    assert corpora.capacity_people(24208, factor=1.0) == math.ceil(2 * 24208 / bios.KNOWLEDGE_BITS_PER_PERSON)
    with pytest.raises(ValueError, match="n_params >= 1"):
        corpora.capacity_people(0)


def test_coded_biographies_hold_every_fact_in_nine_tokens(tiny25):
    _, tok = tiny25
    ps = bios.people(300, seed=0)
    seqs = corpora.coded_biographies(ps, tok)
    assert all(len(s) == corpora.CODED_LENGTH == 9 for s in seqs)
    assert len({tuple(s[:2]) for s in seqs}) == 300  # names: unique keys
    assert corpora.coded_biographies(ps[:10], tok) == seqs[:10]  # prefix-stable
    alpha = corpora.code_alphabet(tok)
    sets = bios.value_sets()
    for p, s in zip(ps[:20], seqs):  # decode every field back to the person's value
        day, month, year = p["birth_date"].split(" ")
        dm = alpha.index(s[2])
        assert (bios.MONTHS[dm // 28], dm % 28 + 1, 1900 + alpha.index(s[3])) == (month, int(day), int(year))
        for j, a in enumerate(("birth_city", "university", "major", "employer", "gender")):
            assert sets[a][alpha.index(s[4 + j])] == p[a]
    assert sum(math.log2(size) for _, _, size in corpora.CODED_FIELDS) == pytest.approx(bios.KNOWLEDGE_BITS_PER_PERSON)


def test_capacity_corpus_offers_the_sized_set_with_exact_exposures(tiny25):
    model, tok = tiny25
    N = models.param_count(model)
    k = corpora.probe_corpus("knowledge", None, 7, tok, seed=0, knowledge_format="coded", n_params=N,
                              capacity_factor=0.05)
    assert k["n_people"] == corpora.capacity_people(N, 0.05) and k["exposures_actual"] == 7
    assert k["bits_offered"] == pytest.approx(k["n_people"] * bios.KNOWLEDGE_BITS_PER_PERSON)
    assert k["capacity_ratio"] == pytest.approx(k["bits_offered"] / (2 * N)) and k["capacity_ratio"] >= 0.05
    assert k["tokens"] == 9 * 7 * k["n_people"] and k["val"] == []
    seqs = corpora.coded_biographies(k["people"], tok)
    from collections import Counter
    counts = Counter(tuple(t) for t in k["texts"])
    assert set(counts) == {tuple(s) for s in seqs} and set(counts.values()) == {7}  # each person exactly 7 times
    m = corpora.probe_corpus("mixture", None, 7, tok, seed=0, knowledge_format="coded", n_params=N,
                              capacity_factor=0.05, n_problems=20, n_val=5, mix_epochs=3, math_kw={"mod": 7, "shuffle": False},
                              ops="add")
    probs = [t for t in m["texts"] if isinstance(t, str)]
    assert m["n_people"] == k["n_people"] and m["n_problems"] == 20 and len(probs) == 60 and len(set(probs)) == 20
    assert len(m["val"]) == 5 and not set(m["val"]) & set(probs)  # held out from training
    assert all("Work mod 7." in t and " times " not in t for t in probs)
    r = corpora.probe_corpus("reasoning", None, 7, tok, seed=0, knowledge_format="coded", n_params=N,
                              capacity_factor=0.05, n_problems=20, n_val=5)
    assert len(r["texts"]) == 20 and r["n_people"] == 0 and len(r["eval_people"]) == k["n_people"]
    with pytest.raises(ValueError, match="needs n_params"):
        corpora.probe_corpus("knowledge", None, 7, tok, capacity_factor=2.0)
    with pytest.raises(ValueError, match="n_problems"):
        corpora.probe_corpus("reasoning", None, 7, tok, n_params=N, capacity_factor=2.0)


def test_coded_bits_are_set_normalised_log_probs(tiny25):
    """measure_coded equals a softmax over each field's candidate tokens given the prefix, one by one."""
    model, tok = tiny25
    ps = bios.people(3, seed=5)
    got = capacity.measure_coded(model, tok, ps)
    alpha = corpora.code_alphabet(tok)
    seqs = corpora.coded_biographies(ps, tok)
    bits = []
    with torch.no_grad():
        for s in seqs:
            for j, (_, _, size) in enumerate(corpora.CODED_FIELDS):
                pos = corpora.NAME_TOKENS + j
                logits = model(input_ids=torch.tensor([s[:pos]])).logits[0, -1]
                lp = torch.log_softmax(logits[alpha[:size]].double(), -1)[alpha.index(s[pos])]
                bits.append(math.log2(size) + float(lp) / math.log(2))
    np.testing.assert_allclose(got["bits"], np.maximum(0.0, bits), atol=1e-6)
    np.testing.assert_allclose(got["bits_unclamped"], bits, atol=1e-6)   # the untrained model: some facts < 0
    assert min(bits) < 0 and got["total_bits_unclamped"] == pytest.approx(sum(bits), abs=1e-5)
    assert got["total_bits_unclamped"] < got["total_bits"]
    assert got["person_bits_unclamped"].sum() == pytest.approx(sum(bits), abs=1e-5)
    assert got["max_bits"] == pytest.approx(3 * bios.KNOWLEDGE_BITS_PER_PERSON)
    assert got["person_bits"].shape == (3,) and got["person_bits"].sum() == pytest.approx(got["total_bits"])
    same = capacity.knowledge_eval(model, tok, ps, untrained=model, knowledge_format="coded")
    assert same["bits"] == 0 and same["n_people_scored"] == 3 and same["bits_se"] >= 0
    assert same["bits_stored_unclamped"] == same["bits_untrained_unclamped"] == pytest.approx(sum(bits), abs=1e-5)
    per_person = got["person_bits_unclamped"]
    assert same["bits_se_unclamped"] == pytest.approx(np.std(per_person, ddof=1) * math.sqrt(3))


def test_coded_training_stores_bits(tiny25):
    """A few hundred steps on 40 people at 100 exposures: well above the untrained model."""
    _, tok = tiny25
    model, _ = models.load("tiny-25k", seed=0, dtype="float32")
    ps = bios.people(40, seed=1)
    docs, _ = corpora.coded_corpus(ps, 100, tok, seed=0)
    train.train_lm(model, tok, docs, lr=1e-2, batch_size=64, seed=0)
    fresh, _ = models.load("tiny-25k", seed=0, dtype="float32")
    kn = capacity.knowledge_eval(model, tok, ps, untrained=fresh, knowledge_format="coded")
    assert kn["knowledge_fraction"] > 0.5, kn["knowledge_fraction"]


def test_loss_without_attention_mask_equals_the_masked_loss(tiny25):
    model, tok = tiny25
    docs = [[5, 9, 11, 40, 7], [8, 12], [30, 31, 32]]
    x = train._tensor(docs, [0, 1, 2])
    assert (x[1, 2:] == -100).all()
    mask = (x >= 0).long()
    ids = x.masked_fill(x < 0, 0)
    with torch.no_grad():
        mine = train._lm_loss(model, x, pad=0)
        ref = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
    assert float(mine) == pytest.approx(float(ref), rel=1e-5)


def test_early_stopping_restores_the_best_weights():
    """Validation text unlike the training text: its loss gets worse as training memorises, so
    training stops before its planned epochs with the weights of the best measurement."""
    model, tok = models.load("tiny-25k", seed=0, dtype="float32")
    texts = ["Ann Bo was born in Baford. Ann Bo works for Zig Labs."] * 64
    val = ["Zu Ka studied at Grancai College and majored in Trel Science."] * 4
    log = train.train_lm(model, tok, texts, lr=3e-2, batch_size=8, epochs=30, val=val, patience=2, seed=0)
    assert log["stopped_early"] and log["steps"] < log["steps_planned"]
    best = min(v for _, v in log["val_losses"])
    assert log["best_val_loss"] == best and log["val_losses"][-1][1] > best
    assert train.lm_loss(model, tok, val) == pytest.approx(best, rel=1e-5)  # the best weights are back
    assert [s for s, _ in log["val_losses"]][:2] == [8, 16]  # once per epoch of 8 steps
    with pytest.raises(ValueError, match="non-empty `val`"):
        train.train_lm(model, tok, texts, val=[])


def test_batch_tokens_give_short_and_long_rows_the_same_tokens_per_step():
    ids = [[5] * 9] * 300 + [[5] * 110] * 40
    batches = train._batches(ids, 128, np.random.default_rng(0), epochs=2, batch_tokens=1152)
    flat = sorted(i for b in batches for i in b)
    assert flat == sorted(list(range(340)) * 2)  # every row once per epoch
    assert all(len(b) * max(len(ids[i]) for i in b) <= 1152 for b in batches)
    assert max(len(b) for b in batches) == 128 and min(len(b) for b in batches if len(ids[b[0]]) == 110) >= 1
    assert sum(len(ids[b[0]]) == 110 for b in batches) >= 2 * 40 // 10  # ~10 problems a step, not 128


def test_learning_rate_comes_from_the_size_table_unless_given():
    table = {"tiny-25k": 1e-2, "tiny-100k": 3e-3}
    assert capacity.learning_rate(None, table, "tiny-100k") == 3e-3
    assert capacity.learning_rate(5e-4, table, "tiny-100k") == 5e-4     # an explicit rate wins
    with pytest.raises(ValueError, match="lr_by_model"):
        capacity.learning_rate(None, table, "tiny-400k")                # names the fix
    with pytest.raises(ValueError, match="positive"):
        capacity.learning_rate(-1.0, table, "tiny-25k")
    tiny = presets.resolve("tiny", "capacity")                          # every tiny size the grids use has a rate
    for size in ("tiny-25k", "tiny-50k", "tiny-100k", "tiny-200k", "tiny-400k"):
        assert capacity.learning_rate(tiny["lr"], tiny["lr_by_model"], size) > 0


# ---------------------------------------------------------------- the split: old names, the trainer's tracking


def test_the_corpora_and_the_trainer_are_still_importable_from_capacity():
    assert capacity.probe_corpus is corpora.probe_corpus and capacity.coded_corpus is corpora.coded_corpus
    assert capacity.CODED_LENGTH == corpora.CODED_LENGTH == 9 and capacity.MODES == corpora.MODES
    assert capacity.train_lm is train.train_lm and capacity.lm_loss is train.lm_loss
    with pytest.raises(AttributeError, match="no attribute 'trian_lm'"):
        capacity.trian_lm


def test_train_lm_writes_tensorboard_events_and_refuses_other_trackers(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model, tok = models.load("tiny-25k", seed=0, dtype="float32")
    texts = ["Ann Bo was born in Baford."] * 16
    val = ["Zu Ka works for Zig Labs."] * 2
    log = train.train_lm(model, tok, texts, lr=1e-2, batch_size=4, epochs=2, val=val, seed=0, out_dir=tmp_path,
                         report_to="tensorboard")
    acc = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == list(range(1, log["steps"] + 1)) == list(range(1, 9))
    assert [e.value for e in loss][0] == pytest.approx(log["losses"][0][1], rel=1e-6)
    evals = acc.Scalars("eval/loss")
    assert [e.step for e in evals] == [s for s, _ in log["val_losses"]] == [4, 8]   # once per epoch of 4 steps
    assert [e.value for e in evals] == pytest.approx([v for _, v in log["val_losses"]], rel=1e-6)
    lrs = [e.value for e in acc.Scalars("train/learning_rate")]
    assert lrs[0] == pytest.approx(1e-2) and lrs[-1] < lrs[1]  # one warmup step at lr, then the cosine decay
    with pytest.raises(ValueError, match="TensorBoard only"):
        train.train_lm(model, tok, texts, out_dir=tmp_path, report_to="wandb")
    with pytest.raises(ValueError, match="needs out_dir"):
        train.train_lm(model, tok, texts, report_to="tensorboard")
    train.train_lm(model, tok, texts[:4], batch_size=4, out_dir=tmp_path / "quiet")   # "none": nothing written
    assert not (tmp_path / "quiet").exists()


# ---------------------------------------------------------------- the probe's metrics on known values


def test_knowledge_per_param_divides_and_gives_the_normal_interval():
    kn = {"bits": 1000.0, "bits_raw": 800.0, "bits_se": 100.0, "n_people": 30}
    got = capacity.knowledge_per_param(kn, 500)
    assert got["bits_per_param"] == 2.0 and got["bits_per_param_raw"] == 1.6
    assert got["bits_per_param_lo"] == pytest.approx((1000 - 196) / 500)   # bits - 1.96 se
    assert got["bits_per_param_hi"] == pytest.approx((1000 + 196) / 500)
    assert got["n_people"] == 30 and "bits_per_param" not in kn            # the input is left alone
    small = capacity.knowledge_per_param({"bits": 100.0, "bits_raw": 0.0, "bits_se": 100.0}, 10)
    assert small["bits_per_param_lo"] == 0.0 and small["bits_per_param_hi"] == pytest.approx(29.6)  # clamped at 0
    prose = capacity.knowledge_per_param({"bits": 100.0, "bits_raw": 50.0}, 10)   # no bits_se: no interval
    assert math.isnan(prose["bits_per_param_lo"]) and math.isnan(prose["bits_per_param_hi"])
    assert "bits_per_param_unclamped" not in got                                  # only when measured
    u = capacity.knowledge_per_param({**kn, "bits_stored_unclamped": 50.0, "bits_se_unclamped": 100.0}, 500)
    assert u["bits_per_param_unclamped"] == 0.1 and u["bits_per_param"] == 2.0
    assert u["bits_per_param_unclamped_lo"] == pytest.approx((50 - 196) / 500)   # < 0: not clamped at 0
    assert u["bits_per_param_unclamped_hi"] == pytest.approx((50 + 196) / 500)
    p = capacity.knowledge_per_param({"bits": 100.0, "bits_raw": 50.0, "bits_stored_unclamped": -20.0}, 10)
    assert p["bits_per_param_unclamped"] == -2.0 and math.isnan(p["bits_per_param_unclamped_lo"])
    with pytest.raises(ValueError, match="n_params"):
        capacity.knowledge_per_param(kn, 0)
    with pytest.raises(ValueError, match="person_bits"):
        capacity.knowledge_per_param({**kn, "person_bits": np.zeros(3)}, 10)


def _qwen(tied: bool) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                        num_key_value_heads=1, intermediate_size=16, tie_word_embeddings=tied))


def test_embedding_params_count_the_table_once_when_tied():
    # vocab 50 x hidden 8 = 400 per table; tied: the output layer is the same tensor, untied: a second table
    tied, untied = _qwen(True), _qwen(False)
    assert capacity.embedding_params(tied) == 400 and capacity.embedding_params(untied) == 800
    assert models.param_count(untied) - models.param_count(tied) == 400
    body = models.param_count(tied) - 400     # attention, MLP and norms: the same in both
    assert models.param_count(untied) - capacity.embedding_params(untied) == body
    # the tiny ladder: tiny-25k has 24,208 parameters, 7,824 outside its 1024 x 16 embedding
    model, _ = models.load("tiny-25k", seed=0, dtype="float32")
    assert capacity.embedding_params(model) == 1024 * 16 == model.get_input_embeddings().weight.numel()
    assert models.param_count(model) - capacity.embedding_params(model) == 7824


def test_chance_rates_of_guessing_a_residue():
    assert capacity.chance_rates(7) == {"acc_chance": 1 / 7}
    got = capacity.chance_rates(4, k=2)
    assert got["acc_chance"] == 0.25 and got["pass@2_chance"] == pytest.approx(1 - 0.75 ** 2)   # 0.4375
    with pytest.raises(ValueError, match="mod >= 2"):
        capacity.chance_rates(1)


def test_probe_metrics_names_and_values():
    corpus = {"n_people": 10, "exposures_actual": 100.0, "bits_offered": 476.0, "capacity_ratio": 2.5,
              "tokens_knowledge": 9000, "tokens_reasoning": 500, "n_problems": 5, "texts": ["..."]}
    log = {"tokens": 9500, "steps": 20, "epochs_run": 1.0, "stopped_early": False, "final_loss": 1.5,
           "tokens_per_s": 1e4}
    kn = capacity.knowledge_per_param({"bits": 300.0, "bits_raw": 200.0, "bits_se": 10.0, "n_people": 10,
                                       "knowledge_fraction": 0.63}, 100)
    rid = {"greedy_acc": 0.5, "greedy_acc_lo": 0.3, "greedy_acc_hi": 0.7, "pass@4": 0.9, "pass@4_lo": 0.8,
           "pass@4_hi": 1.0, "mean@4": 0.5, "n": 8}
    rood = {"greedy_acc": 0.1, "greedy_acc_lo": 0.0, "greedy_acc_hi": 0.3, "pass@4": 0.2, "pass@4_lo": 0.1,
            "pass@4_hi": 0.4, "mean@4": 0.1, "n": 8}
    m = capacity.probe_metrics(params=100, params_embed=60, corpus=corpus, log=log, val_loss=0.7, knowledge=kn,
                               reasoning_id=rid, reasoning_ood=rood, mod=4, pass_k=4, train_s=1.0, eval_s=2.0,
                               wall_s=3.0)
    assert m["params_nonembed"] == 40 and m["in_capacity_regime"] and m["n_people"] == 10
    # the same 300 bits over the 40 parameters outside the embedding table
    assert m["params_nonembedding"] == 40 and m["bits_per_param_nonembedding"] == 7.5
    assert m["bits_per_param_nonembedding_lo"] == pytest.approx((300 - 19.6) / 40)
    assert m["bits_per_param_nonembedding_hi"] == pytest.approx((300 + 19.6) / 40)
    assert "bits_per_param_unclamped_nonembedding" not in m                     # kn has no unclamped bits
    assert m["bits_per_param"] == 3.0 and m["bits_per_param_lo"] == pytest.approx(2.804) and m["knowledge_fraction"] == 0.63
    assert (m["acc_id"], m["acc_id_lo"], m["acc_id_hi"], m["acc_ood"], m["acc_ood_hi"]) == (0.5, 0.3, 0.7, 0.1, 0.3)
    assert (m["pass@4_id"], m["pass@4_hi_id"], m["pass@4_ood"]) == (0.9, 1.0, 0.2) and "mean@4_id" not in m
    assert m["acc_chance"] == 0.25 and m["pass@4_chance"] == pytest.approx(1 - 0.75 ** 4) and m["mod"] == 4
    assert (m["tokens_trained"], m["train_steps"], m["reasoning_val_loss"], m["wall_s"]) == (9500, 20, 0.7, 3.0)
    out = capacity.probe_metrics(params=100, params_embed=60, corpus={**corpus, "capacity_ratio": 1.9}, log=log,
                                 val_loss=0.7, knowledge=kn, reasoning_id=rid, reasoning_ood=rood, mod=4, pass_k=0,
                                 train_s=1.0, eval_s=2.0, wall_s=3.0)
    assert not out["in_capacity_regime"] and "pass@0_chance" not in out
    ku = capacity.knowledge_per_param({**kn, "bits_stored_unclamped": 250.0, "bits_se_unclamped": 12.0}, 100)
    u = capacity.probe_metrics(params=100, params_embed=60, corpus=corpus, log=log, val_loss=0.7, knowledge=ku,
                               reasoning_id=rid, reasoning_ood=rood, mod=4, pass_k=4, train_s=1.0, eval_s=2.0,
                               wall_s=3.0)
    assert u["bits_stored_unclamped"] == 250.0 and u["bits_per_param_unclamped"] == 2.5
    assert u["bits_per_param_unclamped_nonembedding"] == pytest.approx(250 / 40)
    assert {k: u[k] for k in m} == m                                              # the other keys are unchanged
    with pytest.raises(ValueError, match="must exceed params_embed"):
        capacity.probe_metrics(params=100, params_embed=100, corpus=corpus, log=log, val_loss=0.7, knowledge=kn,
                               reasoning_id=rid, reasoning_ood=rood, mod=4, pass_k=4, train_s=1.0, eval_s=2.0,
                               wall_s=3.0)
    from vtkit import runinfo
    assert runinfo.check_metrics(m) == m   # flat scalars, as metrics.json holds
