"""Extract final answers from completions and decide whether they are right.

    from vtkit import verify
    verify.extract_answer("<think>2+2</think> so \\boxed{4}")      # '4'
    verify.is_equivalent("1/2", "\\frac{1}{2}")                     # True (math-verify, gold first)

Where the answer is (docs/contracts.md): the last `\\boxed{...}` (or `\\fbox{...}`) after the last
`</think>`; the whole text when there is no `</think>`; nothing when a `<think>` is never closed
(a truncated completion) or when the only boxed answer sits inside the think part. Code: the last
fenced python block (```python, ```py, ```python3 or a bare ```), under the same think rule.

How answers are compared (the dispatch per record domain lives in `vtkit.evaluation.grade`):
- math, `gym:*` and any other loader: `is_equivalent`, i.e. math-verify's `parse` + `verify` with
  the gold first (verify is not symmetric). Bare answers are wrapped in `\\boxed{}` so that plain
  numbers parse. Plain integers, a/b and \\frac{a}{b} are first compared exactly with Fraction
  (the verdict math-verify gives, 10-100x sooner); decimals that differ still go to math-verify,
  whose 6-digit rounding accepts 0.333333 for 1/3. A gold that is text (a word of three letters or more outside LaTeX commands and
  function names) is compared as normalised text instead, because math-verify reads "Paris" as
  the product of five symbols and would accept "Sirap".
- knowledge: exact match after normalisation (case, spaces, `\\text{}`, trailing period).
- stem: the option letter when the record's meta has `choices`; else value with unit
  (`is_equivalent_units`: numbers within a relative 1e-6, unit strings equal after normalisation).
- code: `vtkit.sandbox.run_tests(extract_code(...), record["tests"]).passed` (in vtkit.evaluation).

Threads: math-verify's timeouts use `signal.alarm`, which works only on the main thread. Off the
main thread `is_equivalent` passes `parsing_timeout=None` / `timeout_seconds=None`. Since no
timeout protects it there, inputs that make sympy explode (exponent towers, exponents or
factorials of four digits and more, strings over 1000 characters) are compared as strings only,
on every thread, so the main thread and workers always agree (and a reward never stalls 5 s on
`9^{9^{9}}`). A departure from the paper's graders, which give math-verify its own timeouts.
"""
from __future__ import annotations

import json
import logging
import math
import re
import threading
from fractions import Fraction

log = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 1000  # longer "answers" are not final answers; sympy on them is slow
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)```", re.S)
_CODE_LANGS = {"", "python", "py", "python3"}


class _MVTimeoutNote(logging.Filter):
    """math-verify warns once that its timeout is off; vtkit turns it off on purpose off the main thread."""

    def filter(self, record):
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_MVTimeoutNote())


# ---- extraction -----------------------------------------------------------------------------

def completion_text(completion) -> str:
    """Text of a completion: a string, or trl's conversational form (the last assistant message)."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        msgs = [m for m in completion if isinstance(m, dict)]
        asst = [m for m in msgs if m.get("role", "assistant") == "assistant"]
        return _content((asst or msgs or [{}])[-1].get("content"))
    raise TypeError(f"a completion is a string or a list of chat messages, got {type(completion).__name__}")


def _content(c) -> str:
    if c is None:
        return ""
    if isinstance(c, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in c)
    return str(c)


def answer_region(text: str | None) -> str | None:
    """The part of `text` that may hold the final answer: after the last `</think>`, or all of it
    when there is no think part; None when a `<think>` is never closed (truncated)."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"expected the completion text (str), got {type(text).__name__}")
    if _THINK_CLOSE in text:
        return text.rsplit(_THINK_CLOSE, 1)[1]
    if _THINK_OPEN in text:
        return None
    return text


def boxed_all(text: str) -> list[str]:
    """Contents of every complete `\\boxed{...}`/`\\fbox{...}` in `text`, in order (nested braces kept)."""
    out = []
    for m in BOXED_RE.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
                i += 2  # an escaped brace \{ or \} does not open or close
                continue
            depth += ch == "{"
            depth -= ch == "}"
            i += 1
        if depth == 0:
            out.append(text[m.end():i - 1])
    return out


def extract_answer(text: str | None) -> str | None:
    """The last boxed answer after `</think>` (see the module docstring); None when there is none."""
    region = answer_region(text)
    if region is None:
        return None
    boxes = [b.strip() for b in boxed_all(region)]
    return boxes[-1] if boxes and boxes[-1] else None


def extract_code(text: str | None) -> str | None:
    """The last closed fenced python (or bare) code block after `</think>`; None when there is none."""
    region = answer_region(text)
    if region is None:
        return None
    blocks = [body for lang, body in _FENCE.findall(region) if lang.lower() in _CODE_LANGS]
    return blocks[-1] if blocks and blocks[-1].strip() else None


_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textrm|mbox|operatorname)\s*\{([^{}]*)\}")


def _unwrap(s: str) -> str:
    prev = None
    while prev != s:
        prev, s = s, _WRAPPERS.sub(r"\1", s)
    return s


_CHOICE = re.compile(r"^\(?([A-Ja-j])\)?(?:[.):,]\s*.*|\s+.*)?$", re.S)


def extract_choice(text: str | None) -> str | None:
    """The option letter (A-J, uppercased) of the boxed answer: `\\boxed{B}`, `\\boxed{(B)}`,
    `\\boxed{\\text{B}}`, `\\boxed{B) 13 m/s}`; None when the boxed answer is not a letter."""
    ans = extract_answer(text)
    if ans is None:
        return None
    s = _unwrap(ans).replace("$", "").strip()
    m = _CHOICE.match(s)
    return m.group(1).upper() if m else None


# ---- comparison ------------------------------------------------------------------------------

def normalize_text(s: str) -> str:
    """Lowercase, `\\text{}` and `$` removed, LaTeX spaces and runs of whitespace collapsed,
    surrounding quotes and a trailing period dropped."""
    s = _unwrap(str(s)).replace("$", "")
    s = re.sub(r"\\[,;:! ]|~", " ", s)
    s = " ".join(s.lower().split())
    return s.strip("'\"").rstrip(".").strip()


_FUNCS = re.compile(r"\\[A-Za-z]+|\b(?:sin|cos|tan|cot|sec|csc|log|ln|exp|sqrt|pi|inf|infty|mod|gcd|lcm)\b")


def _is_text(s: str) -> bool:
    """A word of 3+ letters left after removing LaTeX commands and function names: prose, not math."""
    return bool(re.search(r"[A-Za-z]{3,}", _FUNCS.sub(" ", _unwrap(s))))


_RISKY = [re.compile(p) for p in (
    r"\^\s*\{[^{}]*[\^!]",            # a tower: exponent holding another power or a factorial
    r"\^\s*\{?\s*\(?\s*\d{4,}",       # an exponent of four digits or more
    r"\*\*\s*\(?[^)]*(?:\*\*|\^)",    # python-style tower
    r"\*\*\s*\(?\s*\d{4,}",
    r"\d{4,}\s*!", r"\)\s*!", r"\}\s*!",  # factorial of a large number or of an expression
)]


def _risky(s: str) -> bool:
    return len(s) > MAX_ANSWER_CHARS or any(p.search(s) for p in _RISKY)


_INT = re.compile(r"^[-+]?\d+$")
_DEC = re.compile(r"^[-+]?(?:\d+\.\d*|\.\d+)$")
_RAT = re.compile(r"^([-+]?)(?:\\[dt]?frac\{\s*(\d+)\s*\}\{\s*(\d+)\s*\}|(\d+)\s*/\s*(\d+))$")


def _rational(s: str) -> tuple[Fraction, bool] | None:
    """An integer, decimal, a/b or \\frac{a}{b} as an exact Fraction, and whether it was a decimal."""
    if _INT.match(s):
        return Fraction(int(s)), False
    if _DEC.match(s):
        return Fraction(s), True
    m = _RAT.match(s)
    if m:
        a, b = (m.group(2), m.group(3)) if m.group(2) is not None else (m.group(4), m.group(5))
        if int(b) != 0:
            return Fraction(int(a), int(b)) * (-1 if m.group(1) == "-" else 1), False
    return None


def _for_parse(s: str) -> str:
    return s if ("\\boxed" in s or "$" in s) else f"\\boxed{{{s}}}"


def is_equivalent(gold, pred) -> bool:
    """Whether `pred` is mathematically the same answer as `gold` (math-verify, gold first).

    Never raises: None, empty or unparsable input gives False. Identical strings are equal without
    parsing. Safe in threads (see the module docstring)."""
    try:
        if gold is None or pred is None:
            return False
        g, p = str(gold).strip(), str(pred).strip()
        if not g or not p:
            return False
        if g == p or normalize_text(g) == normalize_text(p):
            return True
        if _is_text(g):
            return False  # prose gold: text comparison only (done above)
        rg, rp = _rational(g), _rational(p)
        if rg is not None and rp is not None:  # plain numbers: exact arithmetic, as sympy would
            if rg[0] == rp[0]:
                return True
            if not (rg[1] or rp[1]):
                return False  # two exact rationals that differ; decimals go on to math-verify's rounding
        from math_verify import parse, verify

        if _risky(g) or _risky(p):
            return False  # on every thread, so that threads and the main thread always agree
        main = threading.current_thread() is threading.main_thread()
        t = 5 if main else None  # seconds; signal-based, so main thread only
        gp = parse(_for_parse(g), parsing_timeout=t)
        pp = parse(_for_parse(p), parsing_timeout=t)
        if not gp or not pp:
            return False
        return bool(verify(gp, pp, timeout_seconds=t))
    except Exception as e:  # noqa: BLE001 -- a grader must not crash a training run on garbage
        log.debug("is_equivalent(%r, %r) failed: %s", gold, pred, e)
        return False
    except BaseException as e:  # math_verify.errors.TimeoutException derives from BaseException
        if type(e).__name__ == "TimeoutException":
            return False
        raise


_NUM = re.compile(r"""^\s*(?P<num>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?)
                      (?:\s*(?:\\times|\\cdot|×|\*|x)\s*10\s*\^\s*\{?\s*(?P<exp>[-+]?\d+)\s*\}?)?
                      \s*(?P<unit>.*?)\s*$""", re.X | re.S)
_FRAC = re.compile(r"^\s*([-+]?)\s*\\[dt]?frac\s*\{\s*([-+]?\d+(?:\.\d+)?)\s*\}\s*\{\s*(\d+(?:\.\d+)?)\s*\}\s*(.*?)\s*$", re.S)
_UNIT_SUBS = [(r"\\,|\\;|\\!|\\ |~|\s+", ""), (r"\\cdot|·|\\times|×", "*"), (r"\*\*", "^"),
              (r"\^\{([^{}]*)\}", r"^\1"), (r"\\Omega|Ω|ohms|Ohms|Ohm", "ohm"), (r"\\mu|µ|μ", "u"),
              (r"\^\\circ|\\circ|\\degree", "°"), (r"²", "^2"), (r"³", "^3"), (r"[{}]", ""), (r"\.$", "")]


def parse_quantity(s: str) -> tuple[float, str] | None:
    """`"12.5 m/s"`, `"1.2\\times10^{3}\\,\\mathrm{J}"`, `"\\frac{1}{2} kg"` -> (value, normalised unit)."""
    s = _unwrap(str(s)).replace("$", "").strip()
    m = _FRAC.match(s)
    if m:
        value, unit = (-1 if m.group(1) == "-" else 1) * float(m.group(2)) / float(m.group(3)), m.group(4)
    else:
        m = _NUM.match(s)
        if not m or not re.search(r"\d", m.group("num") or ""):
            return None
        value = float(m.group("num").replace(",", "")) * (10.0 ** int(m.group("exp")) if m.group("exp") else 1.0)
        unit = m.group("unit")
    for pat, rep in _UNIT_SUBS:
        unit = re.sub(pat, rep, unit)
    return value, unit


def is_equivalent_units(gold, pred, rel_tol: float = 1e-6) -> bool:
    """A value with its unit: numbers within `rel_tol` (relative) and the same normalised unit.

    Falls back to `is_equivalent` on the whole strings when either side has no leading number
    (e.g. a symbolic value). Never raises."""
    try:
        if gold is None or pred is None:
            return False
        g, p = parse_quantity(gold), parse_quantity(pred)
        if g is None or p is None:
            return is_equivalent(gold, pred)
        return g[1] == p[1] and math.isclose(g[0], p[0], rel_tol=rel_tol, abs_tol=1e-12)
    except Exception as e:  # noqa: BLE001
        log.debug("is_equivalent_units(%r, %r) failed: %s", gold, pred, e)
        return False


# ---- grading ----------------------------------------------------------------------------------

def record_meta(record) -> dict:
    """The record's `meta` as a dict (it is stored as a JSON string)."""
    meta = record.get("meta") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError as e:
            raise ValueError(f"record {record.get('id', '?')}: meta is not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"record {record.get('id', '?')}: meta must be a JSON object, got {type(meta).__name__}")
    return meta
