"""iGSM-style math: a random dependency graph of named quantities, arithmetic mod a prime.

In the spirit of Physics of LMs 2.1 (Ye, Xu, Li, Allen-Zhu): every quantity is either given ("Ann has
5 apples.") or defined from two others ("Cat has as many eggs as Ann's apples plus Bob's pens."),
all arithmetic is mod `mod` (23 as in the paper), and the difficulty is the number of operations
needed for the asked quantity, so any depth, including out-of-distribution ones, can be asked for.

Departures from iGSM, on purpose, so that ~1M-parameter models trained for a minute on CPU can learn
the easy end: binary operations only (no "sum of several"), no distractor quantities (every
quantity is needed), one level of naming (a person and an item, from small fixed lists) instead of
the paper's entity hierarchy, and short prompts (~35 words at difficulty 1). Statements are
shuffled as in iGSM (kw `shuffle`).

Solutions: one trace per distinct topological order of the operations (up to `max_solutions`),
each step written out with its numbers ("= 5 * 7 = 35 mod 23 = 12."), then the boxed answer.
Subdomains are operation mixes: `add` (+), `mul` (*), `mixed` (+, -, *).

Trace styles (kw `trace`): "named" (the default, above) writes each step with the quantities' names;
"numeric" writes the same steps without them ("5 * 7 = 35 mod 23 = 12."), so the trace is the
arithmetic alone and every token of it decides the answer: the RL setting at tiny, where a sampled
name that the reward never reads only adds noise to the policy gradient (docs/LOG.md). Prompts,
answers, ids and the random stream are the same in both styles; only `solutions` differ.

New arithmetic (kw `holdout_arith`, a percentage, 0 = off). A held-out test item that differs from
training items only in its names tests new names, not new arithmetic: at difficulty 1 mod 7 there are
49 operand pairs and every one is trained many times. With `holdout_arith=p`, each operand pair
(op, a, b), the unordered pair for + and *, gets a bucket sha256 % 100: buckets [0, p) are test
arithmetic, [p, 2p) validation arithmetic. A `train` problem never has a step on a held pair; a
`validation` problem never has one on a test pair and a `test` problem never one on a validation pair.
Each record's meta says `new_arith`: whether any of its steps uses arithmetic held out of training
(test pairs in test, validation pairs in validation), so accuracy on seen and on new arithmetic can be
reported apart (`arith_split`). Every generator of one experiment must pass the same p (the tiny
presets pass 20); the pairs are the same for every seed. Deep chains reject most candidates (a
problem of d steps avoids held pairs with probability about (1 - 2p/100)^d), so it is meant for short
chains.
"""
import random

from .common import BOXED_INSTRUCTION, boxed_solution, difficulty_range, draw, record, rng_for, stable_int

NAMES = ("Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal")  # few names: small vocabulary
ITEMS = ("apples", "pens", "cups", "eggs", "coins", "books")
OPS = {"add": ("+",), "mul": ("*",), "mixed": ("+", "-", "*")}
WORDS = {"+": "plus", "-": "minus", "*": "times"}
TRACES = ("named", "numeric")
DEFAULT_DIFFICULTY = (1, 4)  # easy enough for tiny models; ask for more (any depth) explicitly
DEFAULT_MOD = 23  # Physics of LMs 2.1
ARITH_SPLITS = {"test": (0, 1), "validation": (1, 2)}  # held pairs' buckets, in units of holdout_arith


def pair_bucket(op: str, a: int, b: int, mod: int) -> int:
    """0..99, the same on every machine: the bucket of an operand pair (unordered for + and *)."""
    if op in "+*":
        a, b = min(a, b), max(a, b)
    return stable_int("arith", mod, op, a, b) % 100


def held_split(op: str, a: int, b: int, mod: int, holdout: int) -> str | None:
    """"test" / "validation" when the operand pair is held out of training at `holdout` %, else None."""
    bucket = pair_bucket(op, a, b, mod)
    for name, (lo, hi) in ARITH_SPLITS.items():
        if lo * holdout <= bucket < hi * holdout:
            return name
    return None


def _step_pairs(nodes) -> list[tuple]:
    return [(n["op"], nodes[n["args"][0]]["value"], nodes[n["args"][1]]["value"]) for n in nodes if "op" in n]


def arith_split(records) -> tuple[list[int], list[int]]:
    """Indices of records (task dicts) whose arithmetic was seen in training and of those whose
    arithmetic is new (meta `new_arith`, set by generate(holdout_arith=p > 0); records without it are seen)."""
    import json
    new = [bool(json.loads(r["meta"]).get("new_arith")) if r.get("domain") == "math" else False for r in records]
    return [i for i, x in enumerate(new) if not x], [i for i, x in enumerate(new) if x]


def apply(op: str, a: int, b: int) -> int:
    """The operation before reduction mod p (the trace shows it, then the reduction)."""
    return a + b if op == "+" else a - b if op == "-" else a * b


def _pool(n_needed: int) -> list[tuple[str, str]]:
    """(person, item) pairs; beyond 48 nodes (difficulty > ~20) numbered people are added."""
    names, k = list(NAMES), 2
    while len(names) * len(ITEMS) < n_needed:
        names += [f"{p}{k}" for p in NAMES]
        k += 1
    return [(p, it) for p in names for it in ITEMS]


def _graph(rng: random.Random, d: int, ops: tuple, mod: int) -> list[dict]:
    """d operation nodes, each consumed by a later one except the last (the asked quantity).

    At each step k "pending" (not yet used) op nodes are consumed, k chosen so that the rest can
    still consume all pending ones; the other operand slots get a new given number or (40%) reuse
    an existing quantity, which makes a DAG rather than a tree."""
    pool = _pool(3 * d + 2)
    order = rng.sample(range(len(pool)), len(pool))
    nodes, pending = [], []

    def new_node(**kw):
        p, it = pool[order[len(nodes)]]
        nodes.append({"person": p, "item": it, "name": f"{p}'s {it}", **kw})
        return len(nodes) - 1

    for i in range(d):
        rest = d - 1 - i
        k = rng.randint(max(0, len(pending) - rest), min(2, len(pending)))
        args = rng.sample(pending, k)
        for a in args:
            pending.remove(a)
        while len(args) < 2:
            reuse = [j for j in range(len(nodes)) if j not in args and j not in pending]
            if reuse and rng.random() < 0.4:
                args.append(rng.choice(reuse))
            else:
                args.append(new_node(value=rng.randrange(mod)))
        rng.shuffle(args)
        op = rng.choice(ops)
        raw = apply(op, nodes[args[0]]["value"], nodes[args[1]]["value"])
        pending.append(new_node(op=op, args=args, raw=raw, value=raw % mod))
    assert pending == [len(nodes) - 1]
    return nodes


def _statement(nodes, j) -> str:
    n = nodes[j]
    if "op" not in n:
        return f"{n['person']} has {n['value']} {n['item']}."
    a, b = (nodes[x]["name"] for x in n["args"])
    return f"{n['person']} has as many {n['item']} as {a} {WORDS[n['op']]} {b}."


def _step(nodes, j, mod, trace="named") -> str:
    n = nodes[j]
    a, b = (nodes[x] for x in n["args"])
    line = f"{a['value']} {n['op']} {b['value']} = {n['raw']}" if trace == "numeric" else \
        f"{n['name']} = {a['name']} {n['op']} {b['name']} = {a['value']} {n['op']} {b['value']} = {n['raw']}"
    return line + (f" mod {mod} = {n['value']}." if n["raw"] != n["value"] else ".")


def _orders(rng, nodes, max_solutions) -> list[list[int]]:
    """Distinct topological orders of the op nodes: the generation order first, then random ones."""
    ops = [j for j, n in enumerate(nodes) if "op" in n]
    found, branching = [ops], False
    for _ in range(12 * max_solutions):
        if len(found) >= max_solutions:
            break
        done, order = set(), []
        while len(order) < len(ops):
            ready = [j for j in ops if j not in done and all(
                "op" not in nodes[a] or a in done for a in nodes[j]["args"])]
            branching |= len(ready) > 1
            j = rng.choice(ready)
            done.add(j)
            order.append(j)
        if not branching:  # a chain: the generation order is the only one
            break
        if order not in found:
            found.append(order)
    return found


def problem(rng: random.Random, d: int, subdomain: str, mod: int, shuffle: bool, max_solutions: int,
            trace: str = "named", split: str = "train", holdout_arith: int = 0):
    """One problem: (canonical key, build() -> record fields). The key ignores statement order
    (a presentation), so a shuffled copy of a test problem can never appear in train. Returns ("skip",
    None) when the problem's arithmetic is held out of `split` (module docstring)."""
    nodes = _graph(rng, d, OPS[subdomain], mod)
    held = {held_split(*p, mod, holdout_arith) for p in _step_pairs(nodes)} if holdout_arith else set()
    new_arith = split in held
    if held - {None, split}:  # a pair held out of this split (train: any held pair)
        return "skip", None
    target = nodes[-1]
    statements = [_statement(nodes, j) for j in range(len(nodes))]
    key = f"math|mod={mod}|" + " ".join(sorted(statements))
    if shuffle:
        rng.shuffle(statements)
    question = f"How many {target['item']} does {target['person']} have?"
    prompt = " ".join(statements) + f" {question} Work mod {mod}. {BOXED_INSTRUCTION}"

    def build():  # the costly part, only for problems kept in the split
        solutions = [boxed_solution("\n".join(_step(nodes, j, mod, trace) for j in order), target["value"])
                     for order in _orders(rng, nodes, max_solutions)]
        if trace == "numeric":  # two orders can read the same without names
            solutions = list(dict.fromkeys(solutions))
        meta = {"mod": mod, "target": target["name"], "n_ops": d, "ops": subdomain,
                **({"new_arith": new_arith} if holdout_arith else {}),
                "nodes": [{k: v for k, v in n.items() if k in ("name", "op", "args", "value")} for n in nodes]}
        return dict(subdomain=subdomain, prompt=prompt, answer=str(target["value"]), solutions=solutions, meta=meta)
    return key, build


def generate(n, seed=0, difficulty=None, split="train", mod=DEFAULT_MOD, subdomain=None,
             shuffle=True, max_solutions=4, trace="named", holdout_arith=0) -> list[dict]:
    """n records; `subdomain` is None (all mixes), one of OPS, or a list of them; `trace` one of TRACES;
    `holdout_arith` the percentage of operand pairs held out of training per split (module docstring)."""
    if trace not in TRACES:
        raise ValueError(f"unknown math trace style {trace!r}: use one of {TRACES}")
    if not isinstance(holdout_arith, int) or isinstance(holdout_arith, bool) or not 0 <= holdout_arith <= 45:
        raise ValueError(f"holdout_arith is a percentage of operand pairs held out of training (an int 0..45, "
                         f"e.g. 20; 0 = off), got {holdout_arith!r}")
    lo, hi = difficulty_range(difficulty, DEFAULT_DIFFICULTY, None, "math")
    if not isinstance(mod, int) or isinstance(mod, bool) or mod < 2:
        raise ValueError(f"mod must be an int >= 2 (a prime such as 23 is intended), got {mod!r}")
    subs = list(OPS) if subdomain is None else [subdomain] if isinstance(subdomain, str) else list(subdomain)
    bad = [s for s in subs if s not in OPS]
    if bad or not subs:
        raise ValueError(f"unknown math subdomain {bad or subs}: use any of {list(OPS)}")
    if not isinstance(max_solutions, int) or max_solutions < 1:
        raise ValueError(f"max_solutions must be an int >= 1, got {max_solutions!r}")
    rng = rng_for("math", seed, split, lo, hi)

    def sample():
        d = rng.randint(lo, hi)
        key, build = problem(rng, d, rng.choice(subs), mod, shuffle, max_solutions, trace, split, holdout_arith)
        return key, (build and (lambda: (d, key, build())))

    items = draw(n, split, sample, "math")
    return [record("math", split, seed, i, d, key, tests="", **fields) for i, (d, key, fields) in enumerate(items)]
