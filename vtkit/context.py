"""Model context windows: a stage's sequence lengths checked against each model's `max_position_embeddings`,
and the context extension (RoPE settings) applied where a preset runs a model beyond it.

    from vtkit import context
    context.window("Qwen/Qwen2.5-Math-1.5B")            # Window(max_positions=4096, rope_theta=10000, ...)
    context.plan("Qwen/Qwen2.5-Math-1.5B", 16384, "sft max_length")
    #   -> {"max_position_embeddings": 131072, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}}
    context.plan("tiny-1m", 256, "max_length")          # None: it fits as configured
    context.plan("tiny-1m", 4096, "max_length")         # ContextError: 4096 > 2048, no known extension
    model, tok = models.load(spec, context=16384)        # loads with plan()'s settings; models.save keeps them

When: every stage's `Config.from_preset` (`vtkit.stages.base`) calls `check` on the (model, tokens)
pairs its `context_needs` lists, so a preset that runs a model beyond its window is refused, with the
fix, before anything loads; `models.load(spec, context=n)` applies the extension the same function
chose, and the saved checkpoint's config.json carries it, so later stages, vLLM engines (the kit's and
trl's, which read the checkpoint folder) and `vtkit.plan` see the extended window.

Where a model's window comes from: a tiny size's config; a local folder's config.json; a hub id's
config in the local HF cache, else vtkit/data/model_configs.json (the kit's table, with sources), else
the hub when it answers. A model whose window no source gives (VibeThinker's own configs could not be
read; a folder an earlier stage has not written yet) is not checked.

The extensions (`EXTENSIONS`), matched on the config's window and RoPE base, not on names, so a
checkpoint trained from the model matches too:
- Qwen2.5-Math (4096 positions, rope_theta 10000): max_position_embeddings 131072 and rope_theta 500000,
  the long-context recipe NeMo-Skills applies to Qwen2.5-Math-1.5B (model_configs.json, its source C).
  The VibeThinker reports do not say how they extended it (their released configs could not be read).
- Qwen2.5 (32768 positions, rope_theta 1e6, e.g. Qwen2.5-Coder-3B): YaRN with factor 4 over 32768
  (131072 positions), as the Qwen2.5 model cards document (model_configs.json, Qwen2.5-7B-Instruct's note).
Beyond an extension's window, or for a model without one, `check` raises a ContextError that names the
model, its window, the setting and the fix.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

PROMPT_TOKENS = 512    # room for a prompt in front of a generation cap (the kit's prompts are shorter)


class ContextError(ValueError):
    """A setting that runs a model beyond its context window; the message says what to change."""


@dataclass(frozen=True)
class Window:
    """A model's context as its config states it."""
    max_positions: int
    rope_theta: float | None
    rope_type: str
    model_type: str
    source: str


EXTENSIONS = (
    {"name": "Qwen2.5-Math long-context recipe",
     "match": {"model_type": "qwen2", "max_positions": 4096, "rope_theta": 10000.0, "rope_type": "default"},
     "set": {"max_position_embeddings": 131072, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}},
     "source": "NeMo-Skills' OpenMathReasoning training of Qwen2.5-Math-1.5B patches max_position_embeddings "
               "4096 -> 131072 and rope_theta 10000 -> 500000 (vtkit/data/model_configs.json, source C)"},
    {"name": "Qwen2.5 YaRN x4",
     "match": {"model_type": "qwen2", "max_positions": 32768, "rope_theta": 1000000.0, "rope_type": "default"},
     "set": {"max_position_embeddings": 131072,
             "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768,
                                 "rope_theta": 1000000.0}},
     "source": "the Qwen2.5 model cards: rope_scaling YaRN, factor 4 over 32768 positions for 131072 "
               "(vtkit/data/model_configs.json, Qwen/Qwen2.5-7B-Instruct's note)"},
)


def _window(cfg: dict, source: str) -> Window | None:
    mp = cfg.get("max_position_embeddings")
    if mp is None:
        return None
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = rope.get("rope_theta", cfg.get("rope_theta"))
    rtype = rope.get("rope_type") or rope.get("type") or "default"
    return Window(int(mp), None if theta is None else float(theta), str(rtype), str(cfg.get("model_type") or ""),
                  source)


def window(spec, base: str | os.PathLike | None = None) -> Window | None:
    """The context window of a model spec (see the module docstring), None where no source gives it."""
    from vtkit import models

    spec = os.fspath(spec)
    if spec in models.TINY_SIZES:
        return _window(models.tiny_config(spec).to_dict(), "vtkit.models.tiny_config")
    if spec == models.SMOLLM2:
        spec = "HuggingFaceTB/SmolLM2-135M-Instruct"
    path = Path(os.path.expanduser(spec))
    for p in [path] + ([Path(base) / path] if base is not None and not path.is_absolute() else []):
        if (p / "config.json").exists():
            return _window(json.loads((p / "config.json").read_text()), f"{p}/config.json")
    if not models._HUB_ID.match(spec) or spec.startswith((".", "/", "~")):
        return None   # a folder not written yet (an earlier stage's output)
    from vtkit import plan

    models_table = plan.load_table()["models"]
    entry = (models_table.get(spec) or {}).get("config") or {}
    if entry.get("max_position_embeddings") is not None:
        return _window(entry, f"vtkit/data/model_configs.json ({spec})")
    cfg = plan._hub_config(spec, use_hub=spec not in models_table)
    return _window(cfg, "hub config.json") if cfg else None


def _matches(w: Window, match: dict) -> bool:
    return (w.model_type == match["model_type"] and w.max_positions == match["max_positions"]
            and w.rope_type == match["rope_type"] and w.rope_theta is not None
            and abs(w.rope_theta - match["rope_theta"]) < 1e-6 * match["rope_theta"])


def extension_for(w: Window) -> dict | None:
    """The EXTENSIONS entry whose model this window is, if any."""
    return next((e for e in EXTENSIONS if _matches(w, e["match"])), None)


def plan(spec, tokens: int, what: str = "the stage's sequence length", base=None) -> dict | None:
    """The config changes that let `spec` take `tokens` positions: None when it fits as configured (or its
    window is unknown), the extension's settings when one covers `tokens`, else a ContextError."""
    w = window(spec, base)
    if w is None or tokens <= w.max_positions:
        return None
    ext = extension_for(w)
    if ext is not None and tokens <= ext["set"]["max_position_embeddings"]:
        return json.loads(json.dumps(ext["set"]))
    why = (f"its extension ({ext['name']}) reaches {ext['set']['max_position_embeddings']}" if ext else
           "the kit knows no context extension for it (vtkit.context.EXTENSIONS)")
    raise ContextError(f"{what} = {tokens} tokens exceeds the context window of {spec} (max_position_embeddings "
                       f"{w.max_positions}, {w.source}), and {why}: lower {what} to at most "
                       f"{ext['set']['max_position_embeddings'] if ext else w.max_positions}, use a model with a longer "
                       f"window, or add its extension (RoPE settings with their source) to vtkit.context.EXTENSIONS")


def check(needs, base=None) -> dict:
    """`plan` for every (spec, tokens, what) of a stage's `context_needs`; {spec: settings} of those extended.
    Specs that are None or not strings (an unset model) are skipped."""
    out = {}
    for spec, tokens, what in needs:
        if isinstance(spec, (str, os.PathLike)) and tokens:
            p = plan(spec, int(tokens), what, base)
            if p is not None:
                out[os.fspath(spec)] = p
    return out


def apply(config, settings: dict | None):
    """Set `plan`'s settings on a transformers config (in place; returns it)."""
    for k, v in (settings or {}).items():
        setattr(config, k, v)
    return config
