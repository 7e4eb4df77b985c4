"""vtkit.logprobs: chunked log-probabilities equal the full-logits ones, on a real tiny model."""
import pytest
import torch

from vtkit import logprobs, models


@pytest.fixture(scope="module")
def tiny():
    model, tok = models.load("tiny-100k", seed=3)
    return model, tok


def _reference(model, ids, att):
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
    return logits.log_softmax(-1).gather(2, ids[:, 1:, None])[..., 0]


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_chunked_equals_unchunked(tiny, chunk):
    model, _ = tiny
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 1000, (3, 41), generator=g)
    att = torch.ones_like(ids)
    att[1, 30:] = 0           # a right-padded row
    ref = _reference(model, ids, att)
    with torch.no_grad():
        got = logprobs.token_logprobs(model, ids, att, chunk_tokens=chunk)
    assert got.shape == ref.shape == (3, 40)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-5)
    assert (got < 0).all()


def test_positions_select_and_zero_the_rest(tiny):
    model, _ = tiny
    ids = torch.randint(3, 1000, (2, 20), generator=torch.Generator().manual_seed(1))
    want = torch.zeros(2, 19, dtype=torch.bool)
    want[0, 5:9] = True
    want[1, 12:] = True
    with torch.no_grad():
        got = logprobs.token_logprobs(model, ids, None, want, chunk_tokens=3)
    ref = _reference(model, ids, None)
    assert torch.allclose(got[want], ref[want], atol=1e-5, rtol=1e-5)
    assert (got[~want] == 0).all()
    with pytest.raises(ValueError, match="positions must have shape"):
        logprobs.token_logprobs(model, ids, None, want[:, :5])
    with pytest.raises(ValueError, match="chunk_tokens must be >= 1"):
        logprobs.gather_logprobs(torch.zeros(2, 4), torch.nn.Linear(4, 5), torch.zeros(2, dtype=torch.long), 0)


def test_gradients_flow_through_the_chunks(tiny):
    model, _ = tiny
    ids = torch.randint(3, 1000, (2, 16), generator=torch.Generator().manual_seed(2))
    model.zero_grad()
    logprobs.token_logprobs(model, ids, chunk_tokens=5).sum().backward()
    g_chunked = model.lm_head.weight.grad.clone()
    model.zero_grad()
    _lp = model(input_ids=ids).logits[:, :-1].float().log_softmax(-1).gather(2, ids[:, 1:, None])
    _lp.sum().backward()
    assert torch.allclose(g_chunked, model.lm_head.weight.grad, atol=1e-5, rtol=1e-4)
    model.zero_grad()
