"""vtkit.context: every stage's lengths checked against its models' windows when the config is resolved."""
import pytest

from vtkit import context
from vtkit.stages import base, clr, distill, instruct, quickstart, rl, sft


def test_known_windows_and_their_extensions():
    w = context.window("Qwen/Qwen2.5-Math-1.5B")
    assert (w.max_positions, w.rope_theta, w.model_type) == (4096, 10000.0, "qwen2")
    assert context.plan("Qwen/Qwen2.5-Math-1.5B", 4096) is None
    assert context.plan("Qwen/Qwen2.5-Math-1.5B", 16384)["rope_parameters"]["rope_theta"] == 500000.0
    yarn = context.plan("Qwen/Qwen2.5-Coder-3B", 65536 + 512)["rope_parameters"]
    assert yarn["rope_type"] == "yarn" and yarn["factor"] == 4.0 and yarn["original_max_position_embeddings"] == 32768
    assert context.window("tiny-1m").max_positions == 2048 and context.window("smollm2-135m").max_positions == 8192
    assert context.window("WeiboAI/VibeThinker-1.5B") is None            # its config could not be read: unchecked
    assert context.window("runs/not-written-yet/model") is None


def test_every_preset_of_every_stage_resolves():
    for cls in (quickstart.Config, sft.Config, rl.Config, distill.Config, instruct.Config, clr.Config):
        for preset in ("tiny", "small", "paper"):
            cfg = cls.from_preset(preset)
            for spec, tokens, what in cfg.context_needs():
                assert tokens is None or tokens > 0, (cls, preset, what)
    cfg = rl.Config.from_preset("paper", init_model="Qwen/Qwen2.5-Math-1.5B")
    assert cfg.context_for("Qwen/Qwen2.5-Math-1.5B") == context.PROMPT_TOKENS + 65536


def test_a_preset_beyond_the_window_is_refused_with_the_fix():
    with pytest.raises(base.ConfigError, match="stage 'sft': max_length / prompt \\+ max_new_tokens = 4096 tokens "
                                               "exceeds the context window of tiny-400k .*lower"):
        sft.Config.from_preset("tiny", overrides={"max_length": 4096})
    with pytest.raises(base.ConfigError, match="reaches 131072"):
        rl.Config.from_preset("paper", init_model="Qwen/Qwen2.5-Math-1.5B", overrides={"max_completion_length": 200_000})
    with pytest.raises(base.ConfigError, match="Skywork|tiny-50k"):
        instruct.Config.from_preset("tiny", overrides={"rm_max_length": 9000})
