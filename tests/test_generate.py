"""vtkit.generate: batched sampling agrees with plain model.generate, is seeded, pads left, stops and truncates."""
import sys

import pytest
import torch

from vtkit import generate as G, models, tokenizer as vtok

PROMPTS = [f"What is {i} + {3 * i}?" + " Show your steps." * (i % 4) for i in range(10)]


def corpus() -> list[str]:
    out = [f"Compute {a} + {b}. <think>{a} + {b} = {a + b}</think>\\boxed{{{a + b}}}" for a in range(50) for b in range(8)]
    return out + [p for p in PROMPTS] * 3


@pytest.fixture(scope="module")
def mt():
    """A tiny model with weights scaled up 8x: a fresh init is nearly uniform and greedy-decodes one
    token forever, which would make every comparison below pass trivially. Scaled, its outputs depend
    on the prompt and differ token to token."""
    tok = vtok.build_tokenizer(corpus())
    model, tok = models.load("tiny-100k", seed=0, tokenizer=tok)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(8)
    return model, tok


def texts(recs):
    return [r["text"] for r in recs]


def plain_greedy(model, tok, prompt_ids, max_new_tokens, eos):
    """One prompt, no padding, transformers' own greedy loop."""
    x = torch.tensor([prompt_ids])
    out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
                         eos_token_id=eos, pad_token_id=tok.pad_token_id)
    return out[0, len(prompt_ids):].tolist()


def test_greedy_equals_plain_generate_and_batching_changes_nothing(mt):
    model, tok = mt
    recs = G.generate(model, tok, PROMPTS, temperature=0, max_new_tokens=24, batch_size=4)
    assert len(set(texts(recs))) > len(PROMPTS) // 2  # outputs really depend on the prompt
    for r, ids in zip(recs, G.encode_prompts(tok, PROMPTS)):
        ref = plain_greedy(model, tok, ids, 24, [2])
        end = ref.index(2) + 1 if 2 in ref else len(ref)
        assert r["n_tokens"] == end and r["n_prompt_tokens"] == len(ids)
        assert r["text"] == tok.decode(ref[:end], skip_special_tokens=True)
    one_by_one = G.generate(model, tok, PROMPTS, temperature=0, max_new_tokens=24, batch_size=1)
    assert one_by_one == recs  # left padding and length sorting leave every result unchanged
    assert [r["prompt_index"] for r in recs] == list(range(len(PROMPTS)))
    assert [r["prompt"] for r in recs] == PROMPTS


def test_sampling_is_seeded(mt):
    model, tok = mt
    kw = dict(n=2, temperature=1.0, max_new_tokens=16, batch_size=8)
    a = G.generate(model, tok, PROMPTS, seed=7, **kw)
    b = G.generate(model, tok, PROMPTS, seed=7, **kw)
    c = G.generate(model, tok, PROMPTS, seed=8, **kw)
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)
    torch.manual_seed(5)
    G.generate(model, tok, PROMPTS[:2], seed=7, **kw)
    after = torch.rand(2)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(2), after)  # the caller's RNG is untouched


def test_n_samples_shape_and_order(mt):
    model, tok = mt
    recs = G.generate(model, tok, PROMPTS[:4], n=3, temperature=1.0, max_new_tokens=12, seed=1)
    assert [(r["prompt_index"], r["sample_index"]) for r in recs] == [(p, s) for p in range(4) for s in range(3)]
    assert set(recs[0]) == {"prompt_index", "sample_index", "prompt", "text", "n_prompt_tokens", "n_tokens", "truncated"}
    for p in range(4):
        group = texts(recs[3 * p:3 * p + 3])
        assert len(set(group)) > 1  # samples of one prompt differ


def test_top_k_and_top_p_semantics(mt):
    model, tok = mt
    kw = dict(max_new_tokens=12, seed=3, temperature=1.0)
    greedy = texts(G.generate(model, tok, PROMPTS[:4], temperature=0, max_new_tokens=12))
    assert texts(G.generate(model, tok, PROMPTS[:4], top_k=1, **kw)) == greedy
    assert texts(G.generate(model, tok, PROMPTS[:4], top_p=1e-6, **kw)) == greedy
    off0 = texts(G.generate(model, tok, PROMPTS[:4], top_k=0, **kw))
    assert texts(G.generate(model, tok, PROMPTS[:4], top_k=-1, **kw)) == off0 != greedy
    # off really means off: a model whose generation_config says top_k=1 still samples freely
    model.generation_config.top_k = 1
    try:
        assert texts(G.generate(model, tok, PROMPTS[:4], top_k=0, **kw)) == off0
    finally:
        model.generation_config.top_k = None


def test_truncation_flag_and_token_counts(mt):
    model, tok = mt
    recs = G.generate(model, tok, PROMPTS[:3], temperature=0, max_new_tokens=5)
    for r, ids in zip(recs, G.encode_prompts(tok, PROMPTS[:3])):
        ref = plain_greedy(model, tok, ids, 5, [2])
        assert 2 not in ref  # this model never says <|im_end|> in 5 greedy steps
        assert r["truncated"] and r["n_tokens"] == 5


def test_stops_at_eos(mt):
    model, tok = mt
    ids = G.encode_prompts(tok, PROMPTS[:1])[0]
    free = plain_greedy(model, tok, ids, 20, [2])
    k = next(j for j in range(3, 20) if free[j] not in free[:j] and free[j] not in tok.all_special_ids)
    stop = free[k]  # make the token greedy decoding emits at step k an extra eos
    model.generation_config.eos_token_id = [2, stop]
    try:
        r = G.generate(model, tok, PROMPTS[:1], temperature=0, max_new_tokens=20)[0]
    finally:
        model.generation_config.eos_token_id = 2
    assert (r["n_tokens"], r["truncated"]) == (k + 1, False)
    assert r["text"] == tok.decode(free[:k])


def test_text_keeps_think_tags_and_drops_chat_markers(mt):
    _, tok = mt
    body = tok.encode("<think>1 + 2 = 3</think>\\boxed{3}", add_special_tokens=False)
    decode = G._decoder(tok)
    assert decode([body + [2, 0, 0], [1] + body]) == ["<think>1 + 2 = 3</think>\\boxed{3}"] * 2


def test_chat_false_uses_raw_text_and_messages_are_accepted(mt):
    model, tok = mt
    raw = G.generate(model, tok, ["12 + 3 ="], chat=False, temperature=0, max_new_tokens=4)[0]
    assert raw["n_prompt_tokens"] == len(tok.encode("12 + 3 =")) == 6
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPTS[0]}]
    rec = G.generate(model, tok, [conv], temperature=0, max_new_tokens=4)[0]
    text = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    assert rec["n_prompt_tokens"] == len(tok.encode(text))


def test_model_mode_is_restored(mt):
    model, tok = mt
    model.train()
    G.generate(model, tok, PROMPTS[:1], temperature=0, max_new_tokens=2)
    assert model.training
    model.eval()


def test_bad_input_raises_clear_errors(mt, monkeypatch):
    model, tok = mt
    with pytest.raises(TypeError, match="list of prompts"):
        G.generate(model, tok, "one prompt")
    with pytest.raises(ValueError, match="n, batch_size"):
        G.generate(model, tok, PROMPTS, n=0)
    with pytest.raises(ValueError, match="top_p"):
        G.generate(model, tok, PROMPTS, top_p=0)
    with pytest.raises(ValueError, match="backend"):
        G.generate(model, tok, PROMPTS, backend="tgi")
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if vLLM were not installed
    with pytest.raises(ImportError, match="pip install"):
        G.generate(model, tok, PROMPTS, backend="vllm")


def test_a_call_without_backend_uses_the_sessions_and_an_explicit_one_wins(mt, monkeypatch):
    model, tok = mt
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if vLLM were not installed
    old = G.configure({"backend": "vllm"})
    try:
        with pytest.raises(ImportError, match="pip install vllm"):
            G.generate(model, tok, PROMPTS[:2], max_new_tokens=4)
        recs = G.generate(model, tok, PROMPTS[:2], max_new_tokens=4, backend="hf")   # HF, no vLLM needed
        assert [r["prompt_index"] for r in recs] == [0, 1] and all(r["n_tokens"] >= 1 for r in recs)
    finally:
        G.configure(old)
    assert G.settings().backend == "hf"
