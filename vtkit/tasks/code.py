"""Code: write-a-function tasks with hidden unit tests, graded only by running the tests.

A family of templates (list filters and maps, string transforms, counting, small recurrences);
each has integer/character parameters drawn by the seed, so one template yields many problems.
Per record: `prompt` (spec + one worked example + the code-block instruction), `answer` (the
reference program), `tests` (Python assertion source, 6-10 asserts incl. edge cases; expected
outputs computed by running the reference), `solutions` (one per distinct implementation of the
template: loop / comprehension / builtin / recursion, each `<think>plan</think>` + a fenced python
block). Every implementation is checked against the tests when the record is made, and each
template carries a plausible wrong program that its tests must reject (tests/test_tasks.py).

Difficulty = template level: 1 (one pass, one condition), 2 (string handling, bases, modular
running totals, rotations), 3 (recurrences, run-length logic, pair counting).
Subdomain = what the function works on: `lists`, `strings`, `numbers`.
The problem space is finite (a few hundred distinct problems per level; `space_size(level)`);
asking for more than a split holds raises a clear error. `max_param` bounds the absolute value of
every integer parameter, drawn or derived (e.g. 9: single digits, which a tiny model learns to copy
from the spec into the program; templates with no parameters inside the bound drop out).
"""
import functools
import itertools
import random
import string
from dataclasses import dataclass, field
from typing import Callable

from .common import difficulty_range, draw, record, rng_for

LEVELS = (1, 3)
CODE_INSTRUCTION = "Write the function in a ```python code block."


@dataclass
class Template:
    name: str            # also the function name
    level: int
    subdomain: str
    args: str            # parameter list of the signature
    desc: Callable       # params -> what the function returns (a clause after "that")
    params: dict         # name -> list of values; the problem space is their product
    impls: list          # (plan, source with $params)
    wrong: str           # a plausible bug the tests must catch
    cases: Callable      # (rng, params) -> list of argument tuples
    derive: Callable = field(default=lambda p: p)  # extra params computed from the drawn ones


def _ints(rng, lo=-20, hi=40, n=None):
    return [rng.randint(lo, hi) for _ in range(rng.randint(1, 8) if n is None else n)]


def _word(rng, letters=string.ascii_letters, lo=1, hi=7):
    return "".join(rng.choice(letters) for _ in range(rng.randint(lo, hi)))


T = [
    Template(
        "sum_divisible", 1, "lists", "xs",
        lambda p: f"returns the sum of the integers in the list xs that are divisible by {p['m']}",
        {"m": list(range(2, 21))},
        [("Loop over xs and add up the elements divisible by $m.",
          "def sum_divisible(xs):\n    total = 0\n    for x in xs:\n        if x % $m == 0:\n            total += x\n    return total"),
         ("Sum a generator expression filtered by x % $m == 0.",
          "def sum_divisible(xs):\n    return sum(x for x in xs if x % $m == 0)"),
         ("Use filter with a lambda, then the builtin sum.",
          "def sum_divisible(xs):\n    return sum(filter(lambda x: x % $m == 0, xs))")],
        "def sum_divisible(xs):\n    return sum(x for x in xs if x % $m)",
        lambda r, p: [([],), ([p["m"], 1, 2 * p["m"]],)] + [(_ints(r),) for _ in range(5)]),
    Template(
        "count_above", 1, "lists", "xs",
        lambda p: f"returns how many integers in the list xs are strictly greater than {p['k']}",
        {"k": list(range(-20, 61))},
        [("Count with a loop and a counter.",
          "def count_above(xs):\n    count = 0\n    for x in xs:\n        if x > $k:\n            count += 1\n    return count"),
         ("Sum 1 for every element above $k.",
          "def count_above(xs):\n    return sum(1 for x in xs if x > $k)"),
         ("Build the filtered list and take its length.",
          "def count_above(xs):\n    return len([x for x in xs if x > $k])")],
        "def count_above(xs):\n    return sum(1 for x in xs if x >= $k)",
        lambda r, p: [([],), ([p["k"], p["k"] + 1],)] + [(_ints(r, p["k"] - 15, p["k"] + 15),) for _ in range(5)]),
    Template(
        "count_char", 1, "strings", "s",
        lambda p: f"returns the number of times the lowercase letter '{p['c']}' occurs in the string s "
                  f"(the uppercase '{p['c'].upper()}' does not count)",
        {"c": list(string.ascii_lowercase)},
        [("Walk through the characters and count the matches.",
          "def count_char(s):\n    count = 0\n    for ch in s:\n        if ch == '$c':\n            count += 1\n    return count"),
         ("str.count does exactly this.",
          "def count_char(s):\n    return s.count('$c')"),
         ("Sum 1 over the matching characters.",
          "def count_char(s):\n    return sum(1 for ch in s if ch == '$c')")],
        "def count_char(s):\n    return s.lower().count('$c')",
        lambda r, p: [("",), (p["c"] + p["c"].upper() + p["c"],)] + [
            (_word(r, "ab" + p["c"] + p["c"].upper() + "xyz ", 0, 12),) for _ in range(5)]),
    Template(
        "affine_list", 1, "lists", "xs",
        lambda p: f"returns a new list in which every element x of the list xs is replaced by {p['a']} * x + {p['b']}",
        {"a": list(range(2, 13)), "b": list(range(1, 13))},
        [("Append a * x + b for each x in a loop.",
          "def affine_list(xs):\n    out = []\n    for x in xs:\n        out.append($a * x + $b)\n    return out"),
         ("A list comprehension.",
          "def affine_list(xs):\n    return [$a * x + $b for x in xs]"),
         ("map with a lambda, converted to a list.",
          "def affine_list(xs):\n    return list(map(lambda x: $a * x + $b, xs))")],
        "def affine_list(xs):\n    return [$a * (x + $b) for x in xs]",
        lambda r, p: [([],)] + [(_ints(r),) for _ in range(5)]),
    Template(
        "clamp_list", 1, "lists", "xs",
        lambda p: f"returns a new list in which every element of the list xs below {p['lo']} becomes "
                  f"{p['lo']} and every element above {p['hi']} becomes {p['hi']}",
        {"lo": list(range(-10, 11)), "width": list(range(2, 21))},
        [("Loop and compare with both bounds.",
          "def clamp_list(xs):\n    out = []\n    for x in xs:\n        if x < $lo:\n            x = $lo\n        elif x > $hi:\n            x = $hi\n        out.append(x)\n    return out"),
         ("min of max, in a comprehension.",
          "def clamp_list(xs):\n    return [min(max(x, $lo), $hi) for x in xs]"),
         ("map a clamping lambda over xs.",
          "def clamp_list(xs):\n    return list(map(lambda x: $lo if x < $lo else $hi if x > $hi else x, xs))")],
        "def clamp_list(xs):\n    return [min(x, $hi) for x in xs]",
        lambda r, p: [([],), ([p["lo"] - 1, p["hi"] + 1],)] + [(_ints(r, p["lo"] - 10, p["hi"] + 10),) for _ in range(5)],
        lambda p: {**p, "hi": p["lo"] + p["width"]}),
    Template(
        "every_kth", 1, "lists", "xs",
        lambda p: f"returns the elements of the list xs at positions {p['start']}, {p['start'] + p['k']}, "
                  f"{p['start'] + 2 * p['k']}, ... (0-based) in order",
        {"start": list(range(0, 5)), "k": list(range(2, 7))},
        [("Slicing with a start and a step.",
          "def every_kth(xs):\n    return xs[$start::$k]"),
         ("Walk the indices with range and collect.",
          "def every_kth(xs):\n    out = []\n    for i in range($start, len(xs), $k):\n        out.append(xs[i])\n    return out"),
         ("Keep the positions i >= $start with (i - $start) % $k == 0.",
          "def every_kth(xs):\n    return [x for i, x in enumerate(xs) if i >= $start and (i - $start) % $k == 0]")],
        "def every_kth(xs):\n    return xs[$start::$k + 1]",
        lambda r, p: [([],), (list(range(p["start"] + 2 * p["k"] + 1)),)] + [(_ints(r, 0, 9, r.randint(0, 15)),) for _ in range(4)]),
    Template(
        "digit_sum_base", 2, "numbers", "n",
        lambda p: f"returns the sum of the digits of the non-negative integer n written in base {p['b']}",
        {"b": list(range(2, 17))},
        [("Take n % $b and divide by $b until n is 0.",
          "def digit_sum_base(n):\n    total = 0\n    while n > 0:\n        total += n % $b\n        n //= $b\n    return total"),
         ("Recursion: last digit plus the digit sum of the rest.",
          "def digit_sum_base(n):\n    if n == 0:\n        return 0\n    return n % $b + digit_sum_base(n // $b)"),
         ("Collect the digits with divmod, then sum them.",
          "def digit_sum_base(n):\n    digits = []\n    while n:\n        n, d = divmod(n, $b)\n        digits.append(d)\n    return sum(digits)")],
        "def digit_sum_base(n):\n    total = 0\n    while n >= $b:\n        total += n % $b\n        n //= $b\n    return total",
        lambda r, p: [(0,), (p["b"] - 1,), (p["b"],)] + [(r.randint(1, 5000),) for _ in range(4)]),
    Template(
        "prefix_sums_mod", 2, "lists", "xs",
        lambda p: f"returns the list of running totals of the list xs taken modulo {p['m']} (entry i is "
                  f"(xs[0] + ... + xs[i]) % {p['m']})",
        {"m": list(range(2, 201))},
        [("Keep a running total and append it modulo $m.",
          "def prefix_sums_mod(xs):\n    out, total = [], 0\n    for x in xs:\n        total += x\n        out.append(total % $m)\n    return out"),
         ("itertools.accumulate, then reduce each total.",
          "from itertools import accumulate\n\ndef prefix_sums_mod(xs):\n    return [t % $m for t in accumulate(xs)]"),
         ("Sum each prefix directly (quadratic, fine for short lists).",
          "def prefix_sums_mod(xs):\n    return [sum(xs[:i + 1]) % $m for i in range(len(xs))]")],
        "def prefix_sums_mod(xs):\n    out, total = [], 0\n    for x in xs:\n        total += x % $m\n        out.append(total)\n    return out",
        lambda r, p: [([],), ([p["m"] - 1, p["m"] - 1, 1],)] + [(_ints(r, 0, 3 * p["m"], r.randint(2, 9)),) for _ in range(5)]),
    Template(
        "retitle", 2, "strings", "s",
        lambda p: f"splits the string s on '{p['sep']}' and returns the parts joined by '{p['out']}', each part "
                  f"with its first character upper-case and the rest lower-case",
        {"sep": [" ", "-", "_", ",", ";", "/"], "out": [" ", "-", "_", ",", ";", "/"]},
        [("Split, fix each part in a loop, join.",
          "def retitle(s):\n    parts = []\n    for w in s.split('$sep'):\n        parts.append(w[:1].upper() + w[1:].lower())\n    return '$out'.join(parts)"),
         ("A generator inside join.",
          "def retitle(s):\n    return '$out'.join(w[:1].upper() + w[1:].lower() for w in s.split('$sep'))"),
         ("str.capitalize on every part via map.",
          "def retitle(s):\n    return '$out'.join(map(str.capitalize, s.split('$sep')))")],
        "def retitle(s):\n    return s.replace('$sep', '$out').capitalize()",
        lambda r, p: [("",), ("aBC" + p["sep"] + "dEF",)] + [
            (p["sep"].join(_word(r, string.ascii_letters) for _ in range(r.randint(1, 4))),) for _ in range(5)]),
    Template(
        "rotate_left", 2, "lists", "xs",
        lambda p: f"returns the list xs rotated left by {p['k']} positions (the first element moves to the end, "
                  f"{p['k']} times); an empty list stays empty",
        {"k": list(range(1, 13))},
        [("Slice at k % len(xs).",
          "def rotate_left(xs):\n    if not xs:\n        return []\n    k = $k % len(xs)\n    return xs[k:] + xs[:k]"),
         ("Move the first element to the end $k times.",
          "def rotate_left(xs):\n    out = list(xs)\n    for _ in range($k if out else 0):\n        out.append(out.pop(0))\n    return out"),
         ("Index arithmetic modulo the length.",
          "def rotate_left(xs):\n    n = len(xs)\n    return [xs[(i + $k) % n] for i in range(n)]")],
        "def rotate_left(xs):\n    return xs[$k:] + xs[:$k]",
        lambda r, p: [([],), ([1, 2],), ([7, 8, 9],)] + [(_ints(r, 0, 9, r.randint(1, 14)),) for _ in range(4)]),
    Template(
        "caesar", 2, "strings", "s",
        lambda p: f"returns s with every lowercase letter shifted {p['k']} places forward in the alphabet "
                  f"(wrapping from 'z' to 'a'); all other characters stay the same",
        {"k": list(range(1, 26))},
        [("Shift each lowercase letter with ord/chr modulo 26.",
          "def caesar(s):\n    out = ''\n    for ch in s:\n        if 'a' <= ch <= 'z':\n            ch = chr((ord(ch) - ord('a') + $k) % 26 + ord('a'))\n        out += ch\n    return out"),
         ("The same inside a join.",
          "def caesar(s):\n    return ''.join(chr((ord(c) - 97 + $k) % 26 + 97) if c.islower() and c.isascii() else c for c in s)"),
         ("Build a translation table once with str.maketrans.",
          "import string\n\ndef caesar(s):\n    low = string.ascii_lowercase\n    return s.translate(str.maketrans(low, low[$k:] + low[:$k]))")],
        "def caesar(s):\n    return ''.join(chr(ord(c) + $k) if c.islower() else c for c in s)",
        lambda r, p: [("",), ("xyz",), ("Hello, world!",)] + [(_word(r, string.ascii_letters + " .!", 1, 12),) for _ in range(4)]),
    Template(
        "count_long_words", 2, "strings", "s",
        lambda p: f"returns how many whitespace-separated words of the string s have more than {p['k']} characters",
        {"k": list(range(1, 9))},
        [("Split on whitespace and count in a loop.",
          "def count_long_words(s):\n    count = 0\n    for w in s.split():\n        if len(w) > $k:\n            count += 1\n    return count"),
         ("Sum over a generator.",
          "def count_long_words(s):\n    return sum(len(w) > $k for w in s.split())"),
         ("Filter, then count.",
          "def count_long_words(s):\n    return len(list(filter(lambda w: len(w) > $k, s.split())))")],
        "def count_long_words(s):\n    return sum(len(w) >= $k for w in s.split())",
        lambda r, p: [("",), ("a" * p["k"] + " " + "b" * (p["k"] + 1),)] + [
            (" ".join(_word(r, "abcdef", 1, 10) for _ in range(r.randint(1, 6))),) for _ in range(5)]),
    Template(
        "recurrence", 3, "numbers", "n",
        lambda p: f"returns a(n) for the sequence a(0) = {p['a0']}, a(1) = {p['a1']}, "
                  f"a(n) = a(n-1) + {p['c']} * a(n-2) for n >= 2",
        {"a0": list(range(0, 10)), "a1": list(range(1, 10)), "c": list(range(1, 6))},
        [("Iterate, keeping the last two terms.",
          "def recurrence(n):\n    a, b = $a0, $a1\n    for _ in range(n):\n        a, b = b, b + $c * a\n    return a"),
         ("Recursion with memoisation.",
          "from functools import lru_cache\n\n@lru_cache(maxsize=None)\ndef recurrence(n):\n    if n < 2:\n        return $a0 if n == 0 else $a1\n    return recurrence(n - 1) + $c * recurrence(n - 2)"),
         ("Build the whole list up to n.",
          "def recurrence(n):\n    seq = [$a0, $a1]\n    while len(seq) <= n:\n        seq.append(seq[-1] + $c * seq[-2])\n    return seq[n]")],
        "def recurrence(n):\n    a, b = $a0, $a1\n    for _ in range(n + 1):\n        a, b = b, b + $c * a\n    return a",
        lambda r, p: [(0,), (1,), (2,)] + [(r.randint(3, 25),) for _ in range(4)]),
    Template(
        "steps_to_zero", 3, "numbers", "n",
        lambda p: f"returns the number of steps to bring the non-negative integer n to 0, where a step divides "
                  f"n by {p['d']} if n is divisible by {p['d']} and otherwise subtracts 1",
        {"d": list(range(2, 13))},
        [("Simulate the steps in a loop.",
          "def steps_to_zero(n):\n    steps = 0\n    while n > 0:\n        n = n // $d if n % $d == 0 else n - 1\n        steps += 1\n    return steps"),
         ("Recursion on the next value.",
          "def steps_to_zero(n):\n    if n == 0:\n        return 0\n    return 1 + steps_to_zero(n // $d if n % $d == 0 else n - 1)"),
         ("Jump: n % $d subtractions then one division, until n < $d.",
          "def steps_to_zero(n):\n    steps = 0\n    while n >= $d:\n        steps += n % $d + 1\n        n //= $d\n    return steps + n")],
        "def steps_to_zero(n):\n    steps = 0\n    while n > 1:\n        n = n // $d if n % $d == 0 else n - 1\n        steps += 1\n    return steps",
        lambda r, p: [(0,), (1,), (p["d"],)] + [(r.randint(2, 900),) for _ in range(4)]),
    Template(
        "compress_runs", 3, "strings", "s",
        lambda p: f"returns s with every run of {p['k']} or more equal characters replaced by the character "
                  f"followed by the run length (e.g. '{'a' * (p['k'] + 1)}' becomes 'a{p['k'] + 1}'); shorter runs "
                  f"stay as they are",
        {"k": list(range(2, 8))},
        [("Scan with an index, measuring each run.",
          "def compress_runs(s):\n    out, i = '', 0\n    while i < len(s):\n        j = i\n        while j < len(s) and s[j] == s[i]:\n            j += 1\n        run = j - i\n        out += s[i] + str(run) if run >= $k else s[i:j]\n        i = j\n    return out"),
         ("itertools.groupby yields the runs.",
          "from itertools import groupby\n\ndef compress_runs(s):\n    out = []\n    for ch, grp in groupby(s):\n        run = len(list(grp))\n        out.append(ch + str(run) if run >= $k else ch * run)\n    return ''.join(out)"),
         ("A regular expression matches each run.",
          "import re\n\ndef compress_runs(s):\n    return re.sub(r'(.)\\1*', lambda m: m.group(1) + str(len(m.group(0))) if len(m.group(0)) >= $k else m.group(0), s)")],
        "from itertools import groupby\n\ndef compress_runs(s):\n    return ''.join(c + str(len(g)) if len(g) > $k else ''.join(g) for c, g in ((c, list(g)) for c, g in groupby(s)))",
        lambda r, p: [("",), ("a" * p["k"] + "b",), ("x" * (p["k"] - 1) + "yy",)] + [
            ("".join(r.choice("abc") * r.randint(1, p["k"] + 2) for _ in range(r.randint(1, 5))),) for _ in range(4)]),
    Template(
        "power_sum", 3, "numbers", "n",
        lambda p: f"returns the sum of i**{p['p']} over all integers i from {p['lo']} to n inclusive "
                  f"(0 when n < {p['lo']})",
        {"p": list(range(1, 6)), "lo": list(range(0, 6))},
        [("Accumulate in a loop.",
          "def power_sum(n):\n    total = 0\n    for i in range($lo, n + 1):\n        total += i ** $p\n    return total"),
         ("sum over a generator.",
          "def power_sum(n):\n    return sum(i ** $p for i in range($lo, n + 1))"),
         ("Recursion from n down to $lo.",
          "def power_sum(n):\n    if n < $lo:\n        return 0\n    return n ** $p + power_sum(n - 1)")],
        "def power_sum(n):\n    return sum(i ** $p for i in range($lo, n))",
        lambda r, p: [(p["lo"] - 1,), (p["lo"],), (p["lo"] + 1,)] + [(r.randint(p["lo"], 40),) for _ in range(4)]),
    Template(
        "count_pairs", 3, "lists", "xs",
        lambda p: f"returns the number of index pairs i < j with xs[i] + xs[j] == {p['t']}",
        {"t": list(range(-10, 31))},
        [("Two nested loops over i < j.",
          "def count_pairs(xs):\n    count = 0\n    for i in range(len(xs)):\n        for j in range(i + 1, len(xs)):\n            if xs[i] + xs[j] == $t:\n                count += 1\n    return count"),
         ("itertools.combinations gives each pair once.",
          "from itertools import combinations\n\ndef count_pairs(xs):\n    return sum(1 for a, b in combinations(xs, 2) if a + b == $t)"),
         ("One pass with a Counter of the values seen so far.",
          "from collections import Counter\n\ndef count_pairs(xs):\n    seen, count = Counter(), 0\n    for x in xs:\n        count += seen[$t - x]\n        seen[x] += 1\n    return count")],
        "def count_pairs(xs):\n    return sum(1 for i in range(len(xs)) for j in range(len(xs)) if i != j and xs[i] + xs[j] == $t)",
        lambda r, p: [([],), ([p["t"] - 1, 1, p["t"] - 2, 2],)] + [(_ints(r, p["t"] // 2 - 6, p["t"] // 2 + 6, r.randint(2, 10)),) for _ in range(5)]),
]
TEMPLATES = {t.name: t for t in T}


def fill(src: str, params: dict) -> str:
    return string.Template(src).substitute(params)


def run_reference(src: str, fn: str):
    ns = {}
    exec(compile(src, f"<{fn}>", "exec"), ns)  # our own reference programs, never user code
    return ns[fn]


def space_size(level: int) -> int:
    """Number of distinct problems (template x parameters) at a level, before the split."""
    return sum(len(list(itertools.product(*t.params.values()))) for t in T if t.level == level)


def _feasible(t: Template, max_param: int | None) -> bool:
    params = _bounded(t.name, max_param)
    return params is not None and any(_within(t.derive(dict(zip(params, vals))), max_param)
                                      for vals in itertools.product(*params.values()))


def _call(fn: str, args: tuple) -> str:
    return f"{fn}({', '.join(repr(a) for a in args)})"


def _within(p: dict, max_param: int | None) -> bool:
    return max_param is None or all(abs(v) <= max_param for v in p.values() if isinstance(v, int))


@functools.lru_cache(maxsize=None)
def _bounded(name: str, max_param: int | None) -> dict | None:
    """The template's parameter values inside the bound (None if a parameter has none left)."""
    params = TEMPLATES[name].params
    if max_param is None:
        return params
    vals = {k: [x for x in v if _within({k: x}, max_param)] for k, v in params.items()}
    return None if not all(vals.values()) else vals


def problem(rng: random.Random, t: Template, max_param: int | None = None):
    """(canonical key, build): the key names template and parameters; build() makes the record
    fields (cases, tests, solutions) and is only called for problems that land in the split.
    With `max_param`, parameters are redrawn until the derived ones are inside the bound too."""
    params = _bounded(t.name, max_param)
    if params is None:
        raise ValueError(f"code template {t.name!r} has no parameters with |value| <= {max_param}")
    for _ in range(1000):
        drawn = {k: rng.choice(v) for k, v in params.items()}
        if _within(t.derive(drawn), max_param):
            break
    else:
        raise ValueError(f"code template {t.name!r}: no drawn parameters derive values with |value| <= {max_param}")
    key = f"code|{t.name}|" + ",".join(f"{k}={drawn[k]!r}" for k in sorted(drawn))

    def build():
        p = t.derive(drawn)
        impls = [(fill(plan, p), fill(src, p)) for plan, src in t.impls]
        ref = run_reference(impls[0][1], t.name)
        cases = list({repr(c): c for c in t.cases(rng, p)}.values())  # dedupe, keep order
        outs = [ref(*c) for c in cases]
        for plan, src in impls[1:]:
            f = run_reference(src, t.name)
            assert [f(*c) for c in cases] == outs, f"{t.name} implementation disagrees: {plan}"
        tests = "\n".join(f"assert {_call(t.name, c)} == {o!r}" for c, o in zip(cases, outs)) + "\n"
        short = [i for i, c in enumerate(cases) if len(repr(c)) < 60] or [0]
        ex = ([i for i in short if outs[i] not in ("", [], 0, 1) and cases[i][0] not in ("", [], 0)] or short)[-1]
        prompt = (f"Write a Python function `{t.name}({t.args})` that {t.desc(p)}. For example, "
                  f"`{_call(t.name, cases[ex])}` returns `{outs[ex]!r}`. {CODE_INSTRUCTION}")
        solutions = [f"<think>\n{plan}\n</think>\n```python\n{src}\n```" for plan, src in impls]
        meta = {"template": t.name, "entry_point": t.name, "params": drawn, "n_tests": len(cases),
                "wrong": fill(t.wrong, p)}
        return dict(subdomain=t.subdomain, prompt=prompt, answer=impls[0][1], tests=tests,
                    solutions=solutions, meta=meta)
    return key, build


def generate(n, seed=0, difficulty=None, split="train", templates=None, max_param: int | None = None) -> list[dict]:
    """n records; `templates` optionally restricts to some template names (see TEMPLATES);
    `max_param` bounds every integer parameter (module docstring)."""
    lo, hi = difficulty_range(difficulty, LEVELS, LEVELS, "code")
    names = list(TEMPLATES) if templates is None else [templates] if isinstance(templates, str) else list(templates)
    bad = [x for x in names if x not in TEMPLATES]
    if bad:
        raise ValueError(f"unknown code templates {bad}: use any of {list(TEMPLATES)}")
    if max_param is not None and (not isinstance(max_param, int) or max_param < 1):
        raise ValueError(f"max_param must be an int >= 1 (or None for the templates' own ranges), got {max_param!r}")
    pool = [TEMPLATES[x] for x in names if lo <= TEMPLATES[x].level <= hi]
    pool = [t for t in pool if _feasible(t, max_param)]
    if not pool:
        raise ValueError(f"no code template among {names} has a level in {lo}..{hi}"
                         + (f" and parameters with |value| <= {max_param}; raise max_param" if max_param else ""))
    rng = rng_for("code", seed, split, lo, hi, *names, *([f"max{max_param}"] if max_param else []))

    levels = sorted({t.level for t in pool})

    def sample():  # level uniform first, then a template of that level
        level = rng.choice(levels)
        t = rng.choice([t for t in pool if t.level == level])
        key, build = problem(rng, t, max_param)
        return key, lambda: (t.level, key, build())

    items = draw(n, split, sample, "code")
    return [record("code", split, seed, i, d, key, **fields) for i, (d, key, fields) in enumerate(items)]
