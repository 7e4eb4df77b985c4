"""STEM: physics and chemistry formula problems with small integers, as numeric-with-units or
multiple-choice questions.

Each template is a short word problem, a target quantity with its unit, and one or more solution
routes (chains of formula steps such as `v = d / t`); values are drawn so that every intermediate
of every route is a positive integer. Where physics offers two routes (impulse vs F = m a, P = F v
vs W / t, E = Q V vs P t, work vs kinetic energy) each becomes its own solution trace.

Subdomains: `numeric` (gold "12 m/s"; meta holds `value` and `unit`; the boxed answer is the value
with its unit) and `mc` (four options A-D in meta `choices`, order shuffled by the seed, gold is the
letter; distractors come from typical slips: a wrong operation on the givens, a factor of 2, an
off-by-one step). Difficulty = number of formula steps of the first route (1-3).
`max_value` bounds every given number, every intermediate and the answer (e.g. 12: the small
multiplication and division facts a tiny model can learn; templates that cannot meet the bound
drop out of the pool).
The same problem (template + values) has one canonical key, so its numeric and mc forms always
land in the same split.
"""
import functools
import random
import re
from dataclasses import dataclass
from fractions import Fraction

from .common import BOXED_INSTRUCTION, boxed_solution, difficulty_range, draw, record, rng_for

LEVELS = (1, 3)
MC_INSTRUCTION = "Answer with the letter of the correct option in \\boxed{...}."
SUBDOMAINS = ("numeric", "mc")
SUBSTANCES = {"water": 18, "methane": 16, "ammonia": 17, "helium": 4, "carbon": 12, "neon": 20,
              "sodium": 23, "magnesium": 24, "nitrogen gas": 28, "oxygen gas": 32, "calcium": 40,
              "carbon dioxide": 44}
G = 10  # m/s^2, stated in the prompt: keeps every number an integer


@dataclass
class Template:
    name: str
    topic: str
    text: str        # format string over the given variables
    target: str      # what is asked, e.g. "speed"
    unit: str
    given: dict      # variable -> range(...) or list of values
    routes: list     # each a list of (var, expr, unit); the last var is the answer

    @property
    def level(self) -> int:
        return len(self.routes[0])


def _r(lo, hi):
    return list(range(lo, hi + 1))


T = [
    # one formula
    Template("speed", "physics", "A car travels {d} m in {t} s at constant speed. What is its speed?",
             "speed", "m/s", {"d": _r(4, 240), "t": _r(2, 12)}, [[("v", "d / t", "m/s")]]),
    Template("force", "physics", "A net force accelerates a {m} kg cart at {a} m/s^2. How large is the force?",
             "force", "N", {"m": _r(2, 25), "a": _r(2, 12)}, [[("F", "m * a", "N")]]),
    Template("work", "physics", "A force of {F} N pushes a box {d} m in the direction of the force. How much work is done?",
             "work", "J", {"F": _r(2, 40), "d": _r(2, 20)}, [[("W", "F * d", "J")]]),
    Template("power", "physics", "A motor does {W} J of work in {t} s. What is its average power?",
             "power", "W", {"W": _r(10, 600), "t": _r(2, 12)}, [[("P", "W / t", "W")]]),
    Template("voltage", "physics", "A current of {I} A flows through a {R} ohm resistor. What is the voltage across it?",
             "voltage", "V", {"I": _r(1, 12), "R": _r(2, 30)}, [[("V", "I * R", "V")]]),
    Template("charge", "physics", "A current of {I} A flows for {t} s. How much charge passes?",
             "charge", "C", {"I": _r(1, 15), "t": _r(2, 60)}, [[("Q", "I * t", "C")]]),
    Template("moles", "chemistry", "How many moles are in {mass} g of {substance} (molar mass {M} g/mol)?",
             "amount", "mol", {"substance": list(SUBSTANCES), "k": _r(1, 12)}, [[("n", "mass / M", "mol")]]),
    Template("density", "physics", "A block has a mass of {m} g and a volume of {V} cm^3. What is its density?",
             "density", "g/cm^3", {"m": _r(4, 300), "V": _r(2, 40)}, [[("rho", "m / V", "g/cm^3")]]),
    Template("pressure", "physics", "A force of {F} N acts evenly on an area of {A} m^2. What pressure does it exert?",
             "pressure", "Pa", {"F": _r(4, 600), "A": _r(2, 12)}, [[("p", "F / A", "Pa")]]),
    Template("momentum", "physics", "A {m} kg ball moves at {v} m/s. What is its momentum?",
             "momentum", "kg*m/s", {"m": _r(1, 20), "v": _r(2, 30)}, [[("p", "m * v", "kg*m/s")]]),
    Template("concentration", "chemistry", "{n} mol of salt is dissolved to make {V} L of solution. What is the concentration?",
             "concentration", "mol/L", {"n": _r(2, 60), "V": _r(2, 10)}, [[("c", "n / V", "mol/L")]]),
    Template("kinetic", "physics", "A {m} kg cart moves at {v} m/s. What is its kinetic energy?",
             "kinetic energy", "J", {"m": _r(1, 20), "v": _r(1, 15)}, [[("KE", "m * v**2 / 2", "J")]]),
    # two formulas
    Template("momentum_from_trip", "physics", "A {m} kg cart travels {d} m in {t} s at constant speed. What is its momentum?",
             "momentum", "kg*m/s", {"m": _r(2, 15), "d": _r(4, 120), "t": _r(2, 10)},
             [[("v", "d / t", "m/s"), ("p", "m * v", "kg*m/s")]]),
    Template("force_from_speedup", "physics",
             "A {m} kg cart speeds up steadily from rest to {v} m/s in {t} s. What net force acts on it?",
             "force", "N", {"m": _r(2, 20), "v": _r(4, 60), "t": _r(2, 10)},
             [[("a", "v / t", "m/s^2"), ("F", "m * a", "N")],
              [("p", "m * v", "kg*m/s"), ("F", "p / t", "N")]]),
    Template("power_from_push", "physics", "A force of {F} N pushes a box {d} m in {t} s. What is the average power?",
             "power", "W", {"F": _r(2, 30), "d": _r(4, 60), "t": _r(2, 10)},
             [[("W", "F * d", "J"), ("P", "W / t", "W")],
              [("v", "d / t", "m/s"), ("P", "F * v", "W")]]),
    Template("resistor_power", "physics", "A current of {I} A flows through a {R} ohm resistor. What power does it use?",
             "power", "W", {"I": _r(1, 10), "R": _r(2, 20)},
             [[("V", "I * R", "V"), ("P", "V * I", "W")],
              [("P", "I**2 * R", "W")]]),
    Template("concentration_from_mass", "chemistry",
             "{mass} g of {substance} (molar mass {M} g/mol) is dissolved to make {V} L of solution. What is the concentration?",
             "concentration", "mol/L", {"substance": list(SUBSTANCES), "k": _r(1, 12), "V": _r(1, 6)},
             [[("n", "mass / M", "mol"), ("c", "n / V", "mol/L")]]),
    Template("pressure_from_mass", "physics",
             "A {m} kg crate rests on an area of {A} m^2. What pressure does it exert on the floor? Use g = {g} m/s^2.",
             "pressure", "Pa", {"m": _r(2, 80), "A": _r(2, 10), "g": [G]},
             [[("F", "m * g", "N"), ("p", "F / A", "Pa")]]),
    # three formulas
    Template("resistor_energy", "physics",
             "A current of {I} A flows through a {R} ohm resistor for {t} s. How much energy does it turn into heat?",
             "energy", "J", {"I": _r(1, 8), "R": _r(2, 15), "t": _r(2, 30)},
             [[("V", "I * R", "V"), ("P", "V * I", "W"), ("E", "P * t", "J")],
              [("Q", "I * t", "C"), ("V", "I * R", "V"), ("E", "Q * V", "J")]]),
    Template("lifting_power", "physics",
             "A {m} kg box is lifted {h} m straight up at constant speed in {t} s. What power is needed? Use g = {g} m/s^2.",
             "power", "W", {"m": _r(1, 30), "h": _r(2, 40), "t": _r(2, 10), "g": [G]},
             [[("F", "m * g", "N"), ("W", "F * h", "J"), ("P", "W / t", "W")],
              [("F", "m * g", "N"), ("v", "h / t", "m/s"), ("P", "F * v", "W")]]),
    Template("work_from_acceleration", "physics",
             "A {m} kg cart starts from rest and speeds up at {a} m/s^2 for {t} s. How much work does the net force do?",
             "work", "J", {"m": _r(1, 20), "a": _r(1, 6), "t": _r(1, 8)},
             [[("F", "m * a", "N"), ("d", "a * t**2 / 2", "m"), ("W", "F * d", "J")],
              [("v", "a * t", "m/s"), ("W", "m * v**2 / 2", "J")]]),
]
TEMPLATES = {t.name: t for t in T}
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")


@functools.lru_cache(maxsize=None)
def _given_values(name: str, max_value: int | None) -> dict:
    """The template's value lists, each cut to max_value (left whole where nothing fits: _solve rejects)."""
    given = TEMPLATES[name].given
    if max_value is None:
        return given
    return {k: [x for x in vals if not isinstance(x, int) or x <= max_value] or vals for k, vals in given.items()}


def _givens(rng: random.Random, t: Template, max_value: int | None = None) -> dict:
    v = {k: rng.choice(vals) for k, vals in _given_values(t.name, max_value).items()}
    if "substance" in v:  # moles: mass is a multiple of the molar mass
        v["M"] = SUBSTANCES[v["substance"]]
        v["mass"] = v["M"] * v.pop("k") * v.get("V", 1)
    return v


def _solve(t: Template, givens: dict, max_value: int | None = None):
    """Evaluate every route exactly; None if some intermediate is not a positive integer (or, with
    `max_value`, if a given or an intermediate exceeds it)."""
    if max_value is not None and any(isinstance(x, int) and x > max_value for x in givens.values()):
        return None
    traces, value = [], None
    for route in t.routes:
        env = {k: Fraction(x) for k, x in givens.items() if isinstance(x, int)}
        lines = []
        for var, expr, unit in route:
            x = eval(expr, {"__builtins__": {}}, dict(env))  # noqa: S307 -- our own formula strings
            if x.denominator != 1 or x <= 0 or (max_value is not None and x > max_value):
                return None
            numbers = _IDENT.sub(lambda m: str(env[m.group()]) if m.group() in env else m.group(), expr)
            lines.append(f"{var} = {expr} = {numbers} = {x} {unit}".replace("**", "^"))
            env[var] = x
        if value is not None and x != value:
            raise AssertionError(f"{t.name}: routes disagree ({x} != {value})")
        value = x
        traces.append(lines)
    return int(value), traces


def _distractors(rng, givens, value) -> list[int]:
    nums = [x for k, x in givens.items() if isinstance(x, int)]
    cands = {value * 2, value + 1, value - 1, value + nums[0]}
    if value % 2 == 0:
        cands.add(value // 2)
    for a in nums:
        for b in nums:
            cands.update({a + b, a * b})
            if b and a % b == 0:
                cands.add(a // b)
    cands = sorted(c for c in cands if c > 0 and c != value)
    near = [c for c in cands if value / 10 <= c <= value * 10]  # plausible magnitudes first
    return rng.sample(near if len(near) >= 3 else cands, 3)


def problem(rng: random.Random, t: Template, subdomain: str, max_value: int | None = None, tries: int = 2000):
    """(key, build) of one problem of template `t`; None when `tries` draws meet no bound."""
    for _ in range(tries):
        givens = _givens(rng, t, max_value)
        solved = _solve(t, givens, max_value)
        if solved is not None:
            break
    else:
        return None
    value, traces = solved
    key = f"stem|{t.name}|" + ",".join(f"{k}={givens[k]}" for k in sorted(givens))

    def build():
        gold = f"{value} {t.unit}"
        meta = {"template": t.name, "topic": t.topic, "value": value, "unit": t.unit, "givens": givens,
                "target": t.target}
        question = t.text.format(**givens)
        if subdomain == "numeric":
            prompt = f"{question} Give the value with its unit. {BOXED_INSTRUCTION}"
            sols = [boxed_solution("\n".join(lines), gold) for lines in traces]
            return dict(subdomain=subdomain, prompt=prompt, answer=gold, solutions=sols, meta=meta)
        options = [value] + _distractors(rng, givens, value)
        rng.shuffle(options)
        letter = "ABCD"[options.index(value)]
        choices = [f"{o} {t.unit}" for o in options]
        prompt = question + "\n" + "\n".join(f"{L}) {c}" for L, c in zip("ABCD", choices)) + "\n" + MC_INSTRUCTION
        sols = [boxed_solution("\n".join(lines) + f"\n{gold} is option {letter}.", letter) for lines in traces]
        meta.update(choices=choices, gold_index=options.index(value))
        return dict(subdomain=subdomain, prompt=prompt, answer=letter, solutions=sols, meta=meta)
    return key, build


def generate(n, seed=0, difficulty=None, split="train", subdomain=None, templates=None,
             max_value: int | None = None) -> list[dict]:
    """n records; `subdomain` None (both), "numeric" or "mc"; `templates` restricts by name;
    `max_value` bounds every number of the problem and its solution (module docstring)."""
    lo, hi = difficulty_range(difficulty, LEVELS, LEVELS, "stem")
    subs = list(SUBDOMAINS) if subdomain is None else [subdomain] if isinstance(subdomain, str) else list(subdomain)
    if not subs or any(s not in SUBDOMAINS for s in subs):
        raise ValueError(f"unknown stem subdomain {subdomain!r}: use any of {list(SUBDOMAINS)}")
    names = list(TEMPLATES) if templates is None else [templates] if isinstance(templates, str) else list(templates)
    bad = [x for x in names if x not in TEMPLATES]
    if bad:
        raise ValueError(f"unknown stem templates {bad}: use any of {list(TEMPLATES)}")
    if max_value is not None and (not isinstance(max_value, int) or max_value < 2):
        raise ValueError(f"max_value must be an int >= 2 (or None for the templates' own ranges), got {max_value!r}")
    pool = [TEMPLATES[x] for x in names if lo <= TEMPLATES[x].level <= hi]
    if max_value is not None:  # templates with no problem inside the bound drop out
        pool = [t for t in pool if problem(random.Random(0), t, "numeric", max_value) is not None]
    if not pool:
        raise ValueError(f"no stem template among {names} has a level in {lo}..{hi}"
                         + (f" and a problem with every number <= {max_value}; raise max_value" if max_value else ""))
    rng = rng_for("stem", seed, split, lo, hi, *names, *subs, *([f"max{max_value}"] if max_value else []))

    levels = sorted({t.level for t in pool})

    def sample():  # level uniform first, then a template of that level
        drawn = None
        while drawn is None:  # None: 2000 draws of a template missed max_value (every pool template can meet it)
            level = rng.choice(levels)
            t = rng.choice([t for t in pool if t.level == level])
            drawn = problem(rng, t, rng.choice(subs), max_value)
        key, build = drawn
        return key, lambda: (t.level, key, build())

    items = draw(n, split, sample, "stem")
    return [record("stem", split, seed, i, d, key, **fields) for i, (d, key, fields) in enumerate(items)]
