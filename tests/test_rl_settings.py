"""The RL setting's pieces outside the trainer: the numeric math trace (tasks.make(..., trace="numeric"))."""
import pytest

from vtkit import tasks, verify


def test_numeric_trace_keeps_problems_and_drops_names():
    kw = dict(seed=0, difficulty=(1, 3), mod=7, subdomain="add", shuffle=False)
    named = list(tasks.make("math", 20, **kw))
    numeric = list(tasks.make("math", 20, trace="numeric", **kw))
    assert [(r["id"], r["prompt"], r["answer"]) for r in named] == [(r["id"], r["prompt"], r["answer"]) for r in numeric]
    assert list(tasks.make("math", 20, **kw)) == named  # the default is deterministic and named
    for r in numeric:
        assert r["solutions"] and len(set(r["solutions"])) == len(r["solutions"])
        for s in r["solutions"]:
            think = s.split("</think>")[0]
            assert "'s" not in think and not any(w in think for w in ("Ann", "Bob", "apples"))
            assert verify.extract_answer(s) == r["answer"]
    assert any("'s" in s for r in named for s in r["solutions"])
    with pytest.raises(ValueError, match="trace style"):
        tasks.make("math", 2, trace="terse")
