"""The built-in tokenizer of the tiny models: a deterministic byte-level BPE with a ChatML template.

    from vtkit.tokenizer import build_tokenizer
    tok = build_tokenizer()            # trained on vtkit.tasks.tokenizer_corpus(), cached in-process
    tok.apply_chat_template([{"role": "user", "content": "1+1?"}], add_generation_prompt=True)

What it is:
- Byte-level BPE (any string encodes; no unknown token) trained with the `tokenizers` library on the
  prompts and solutions of vtkit's task generators, `vocab_size` 1024 by default.
- The normalizer and pre-tokenizer are exactly Qwen2's (NFC, then Qwen2's split regex, whose `\\p{N}`
  makes every digit its own token, then ByteLevel). This is deliberate: transformers reloads a
  tokenizer saved next to a `model_type: qwen2` config as `Qwen2Tokenizer`, which rebuilds that very
  pipeline from vocab and merges, so the ids come back identical whichever class loads them.
- decode(encode(x)) == x for any NFC text (all of vtkit's ASCII tasks): whitespace, newlines and code
  indentation survive exactly.
- Special tokens: `<|endoftext|>` (pad; there is no bos and no unk), `<|im_start|>`, `<|im_end|>`
  (eos). `<think>` and `</think>` are single tokens too but *not* special, as in Qwen3: decoding with
  `skip_special_tokens=True` (what trl does with completions) keeps them, so rewards can find
  the answer after `</think>`.
- ChatML chat template with `{% generation %}` markers around each assistant turn's content and its
  `<|im_end|>`, so trl's `SFTTrainer(assistant_only_loss=True)` trains on exactly those tokens.
  No default system prompt (the papers' protocol: single user turn, no system prompt).

Departures from the paper: VibeThinker uses Qwen2.5's 151k-token vocabulary; the tiny ladder uses
a 1k vocabulary trained on its own tasks so the embedding does not dominate a 25k-parameter model.
"""
from __future__ import annotations

import functools
import json

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast as _FastBase  # TokenizersBackend in transformers 5

PAD, IM_START, IM_END, THINK, END_THINK = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]  # ids 0, 1, 2
THINK_TOKENS = [THINK, END_THINK]  # ids 3, 4; single tokens, not special
VOCAB_SIZE = 1024  # tiny models: ~0.8k merges are plenty for vtkit's templated tasks
MODEL_MAX_LENGTH = 2048  # matches the tiny models' max_position_embeddings

# Qwen2's pre-tokenizer regex (transformers' Qwen2Tokenizer.PRETOKENIZE_REGEX): `\p{N}` = one digit per token.
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# ChatML; the generation block covers the assistant content and its <|im_end|> (what the model must
# learn to write, including when to stop), not the "<|im_start|>assistant\n" header.
def chat_template(default_system: str | None = None) -> str:
    """vtkit's ChatML Jinja template; `default_system` is inserted when the chat has no system turn."""
    head = ""
    if default_system is not None:
        head = (
            "{%- if not messages or messages[0]['role'] != 'system' %}"
            "{{- '<|im_start|>system\n' + " + json.dumps(default_system) + " + '<|im_end|>\n' }}"
            "{%- endif %}"
        )
    return head + (
        "{%- for message in messages %}"
        "{%- if message['role'] == 'assistant' %}"
        "{{- '<|im_start|>assistant\n' }}"
        "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
        "{{- '\n' }}"
        "{%- else %}"
        "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
    )


CHAT_TEMPLATE = chat_template()  # no default system prompt: the papers' protocol is a single user turn


class PreTrainedTokenizerFast(_FastBase):
    """transformers' fast tokenizer, under the class name that every transformers version can reload.

    save_pretrained writes `tokenizer_class` = the class name. transformers 5 would write
    "TokenizersBackend", which transformers 4.x (vLLM's pin) cannot resolve; "PreTrainedTokenizerFast"
    resolves in both. Nothing else changes.
    """


def _pipeline(tok: Tokenizer) -> Tokenizer:
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


@functools.lru_cache(maxsize=8)
def _train_json(corpus: tuple[str, ...] | None, vocab_size: int) -> str:
    """Train the BPE and return its JSON (immutable, so the cache can be shared safely)."""
    if corpus is None:
        try:
            from vtkit.tasks import tokenizer_corpus  # lazy: tasks imports datasets and the generators
        except ImportError as e:
            raise ImportError(f"build_tokenizer() trains on vtkit.tasks.tokenizer_corpus(), which is unavailable ({e}); "
                              "pass corpus=[...] explicitly") from e
        corpus = tuple(tokenizer_corpus())
    if not corpus or not all(isinstance(t, str) for t in corpus):
        raise ValueError("build_tokenizer: corpus must be a non-empty list of strings (or None for vtkit's tasks)")
    n_min = 256 + len(SPECIAL_TOKENS) + len(THINK_TOKENS)
    if vocab_size < n_min:
        raise ValueError(f"build_tokenizer: vocab_size={vocab_size} is below {n_min} (256 bytes + 5 tokens); raise it")
    tok = _pipeline(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,  # a merge seen once is noise
        show_progress=False,
        special_tokens=SPECIAL_TOKENS + THINK_TOKENS,  # fixed ids 0..4
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is ever unknown
    )
    # Every chat example carries one user and one assistant header: count them as often as the texts.
    headers = [f"{IM_START}user\n", f"{IM_START}assistant\n"] * len(corpus)
    tok.train_from_iterator(list(corpus) + headers, trainer=trainer)
    # <think>/</think> stay single tokens but are demoted to ordinary (non-special) added tokens.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    return tok.to_str()


def wrap(tokenizer_json: str) -> PreTrainedTokenizerFast:
    """A fresh transformers tokenizer around a serialized `tokenizers` BPE, with vtkit's specials and template."""
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tokenizer_json),
        eos_token=IM_END,
        pad_token=PAD,
        bos_token=None,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_MAX_LENGTH,
        padding_side="right",  # training default; vtkit.generate left-pads on its own
        clean_up_tokenization_spaces=False,  # exact round trip
    )
    return tok


def build_tokenizer(corpus: list[str] | None = None, vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train (or fetch from the in-process cache) the byte-level BPE; every call returns a new object.

    corpus=None trains on `vtkit.tasks.tokenizer_corpus()`, prompts and solutions of every domain.
    """
    key = None if corpus is None else tuple(corpus)
    return wrap(_train_json(key, int(vocab_size)))
