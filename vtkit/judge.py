"""An optional LLM judge for math answer equivalence, used beside math-verify as the 3B report does.

    from vtkit.judge import LLMJudge, agreement, combine
    j = LLMJudge("Qwen/Qwen2.5-7B-Instruct")             # any model spec, or (model, tokenizer)
    j.judge("What is 1/2 + 1/4?", "3/4", "0.75")         # -> True / False
    verdicts = j.judge_many([(question, gold, pred), ...])
    combine(mv, verdicts, "or")                          # the verdict evaluate() records
    agreement(mv, verdicts)                              # both-true, both-false, kappa, ...

The judge runs greedily (temperature 0) through `vtkit.generate` on `PROMPT_TEMPLATE` and its
reply is parsed by `parse_yes_no`: the text after `</think>` when the model thinks; a `\\boxed{}`
verdict wins; else a reply that starts with YES/NO; else the last YES/NO word. A reply with no
verdict counts as "not equivalent" (reported separately as `unparsed` by `judge_many_detail`).
A missing prediction (None or empty) is "not equivalent" without asking the model.

How the two verdicts combine (`combine`, a parameter everywhere): the 3B report grades math "by
math-verify plus an LLM judge" without saying how they are joined. The default here is "or"
(correct when either says equivalent): math-verify's failures are mostly false negatives on
unusual answer spellings, which is what a judge exists to catch. "and", "judge" (judge alone) and
"math_verify" (math-verify alone) are the alternatives; `agreement` shows how much the choice moves.
"""
from __future__ import annotations

import math
import re

from vtkit import generate as _gen
from vtkit import models

PROMPT_TEMPLATE = (
    "You are grading the final answer to a math problem. Decide whether the student's answer is "
    "mathematically equivalent to the reference answer (the same value, set or expression, in any "
    "form: 1/2, 0.5 and \\frac{{1}}{{2}} are equivalent; a different value is not).\n\n"
    "Problem: {question}\n\nReference answer: {gold}\n\nStudent answer: {pred}\n\n"
    "Reply with YES if they are equivalent and NO if they are not, and nothing else.")
COMBINE = ("or", "and", "judge", "math_verify")

_BOXED = re.compile(r"\\boxed\{\s*([A-Za-z]+)\s*\}")
_WORD = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_yes_no(text: str | None) -> bool | None:
    """YES -> True, NO -> False, no verdict -> None (see the module docstring for the order)."""
    if not text:
        return None
    tail = text.rsplit("</think>", 1)[-1]
    boxed = [b.lower() for b in _BOXED.findall(tail) if b.lower() in ("yes", "no")]
    if boxed:
        return boxed[-1] == "yes"
    m = re.match(r"\W*(yes|no)\b", tail, re.IGNORECASE)
    if m:
        return m[1].lower() == "yes"
    words = _WORD.findall(tail)
    return words[-1].lower() == "yes" if words else None


class LLMJudge:
    """A math-equivalence judge on any model: a spec string (`vtkit.models.load`) or (model, tok)."""

    def __init__(self, model, tokenizer=None, *, prompt_template: str = PROMPT_TEMPLATE,
                 max_new_tokens: int = 16, batch_size: int = 16, chat: bool = True, seed: int = 0):
        if isinstance(model, tuple):
            model, tokenizer = model
        if isinstance(model, str):
            model, tokenizer = models.load(model, seed=seed)
        if tokenizer is None:
            raise ValueError("LLMJudge needs a tokenizer with the model: pass a spec string, "
                             "(model, tokenizer), or tokenizer=...")
        for key in ("{question}", "{gold}", "{pred}"):
            if key not in prompt_template:
                raise ValueError(f"prompt_template must contain {key} (it is filled with "
                                 "str.format(question=..., gold=..., pred=...))")
        self.model, self.tokenizer = model, tokenizer
        self.prompt_template = prompt_template
        self.max_new_tokens = max_new_tokens   # 16: a YES/NO reply; raise it for thinking judges
        self.batch_size, self.chat, self.seed = batch_size, chat, seed

    def prompt(self, question: str, gold: str, pred: str) -> str:
        return self.prompt_template.format(question=question, gold=gold, pred=pred)

    def judge_many_detail(self, items) -> list[dict]:
        """[(question, gold, pred)] -> [{"verdict": bool, "parsed": bool|None, "text": str}]."""
        items = [tuple(it) for it in items]
        if any(len(it) != 3 for it in items):
            raise ValueError("judge_many takes (question, gold, pred) triples")
        ask = [i for i, (_, _, p) in enumerate(items) if p is not None and str(p).strip()]
        out = [{"verdict": False, "parsed": None, "text": ""} for _ in items]
        if ask:
            recs = _gen.generate(self.model, self.tokenizer,
                                 [self.prompt(*map(str, items[i])) for i in ask], n=1,
                                 temperature=0.0, max_new_tokens=self.max_new_tokens,
                                 batch_size=self.batch_size, seed=self.seed, chat=self.chat)
            for i, rec in zip(ask, recs):
                parsed = parse_yes_no(rec["text"])
                out[i] = {"verdict": bool(parsed), "parsed": parsed, "text": rec["text"]}
        return out

    def judge_many(self, items) -> list[bool]:
        return [d["verdict"] for d in self.judge_many_detail(items)]

    def judge(self, question: str, gold: str, pred: str | None) -> bool:
        return self.judge_many([(question, gold, pred)])[0]


def combine(mv, judge, how: str = "or") -> list[bool]:
    """Per-item verdict from math-verify (`mv`) and the judge: "or" | "and" | "judge" | "math_verify"."""
    if how not in COMBINE:
        raise ValueError(f"combine must be one of {COMBINE}, got {how!r}")
    mv, judge = [bool(x) for x in mv], [bool(x) for x in judge]
    if len(mv) != len(judge):
        raise ValueError(f"mv has {len(mv)} verdicts but judge has {len(judge)}")
    f = {"or": lambda a, b: a or b, "and": lambda a, b: a and b,
         "judge": lambda a, b: b, "math_verify": lambda a, b: a}[how]
    return [f(a, b) for a, b in zip(mv, judge)]


def agreement(mv, judge) -> dict:
    """Agreement of two binary graders: counts, agreement rate and Cohen's kappa.

    kappa = (p_o - p_e) / (1 - p_e), with p_e from each grader's own rate of True; it is NaN when
    both graders are constant (p_e = 1), where chance agreement explains everything.
    """
    mv, judge = [bool(x) for x in mv], [bool(x) for x in judge]
    if len(mv) != len(judge):
        raise ValueError(f"mv has {len(mv)} verdicts but judge has {len(judge)}")
    n = len(mv)
    tt = sum(a and b for a, b in zip(mv, judge))
    ff = sum(not a and not b for a, b in zip(mv, judge))
    tf = sum(a and not b for a, b in zip(mv, judge))   # math-verify yes, judge no
    ft = n - tt - ff - tf                              # judge yes, math-verify no
    if n == 0:
        return {"n": 0, "both_true": 0, "both_false": 0, "mv_only": 0, "judge_only": 0,
                "agreement": math.nan, "kappa": math.nan}
    po = (tt + ff) / n
    p_mv, p_j = (tt + tf) / n, (tt + ft) / n
    pe = p_mv * p_j + (1 - p_mv) * (1 - p_j)
    kappa = (po - pe) / (1 - pe) if pe < 1 else math.nan
    return {"n": n, "both_true": tt, "both_false": ff, "mv_only": tf, "judge_only": ft,
            "agreement": po, "kappa": kappa}
