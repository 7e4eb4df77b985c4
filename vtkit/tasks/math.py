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
"""
import random

from .common import BOXED_INSTRUCTION, boxed_solution, difficulty_range, draw, record, rng_for

NAMES = ("Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal")  # few names: small vocabulary
ITEMS = ("apples", "pens", "cups", "eggs", "coins", "books")
OPS = {"add": ("+",), "mul": ("*",), "mixed": ("+", "-", "*")}
WORDS = {"+": "plus", "-": "minus", "*": "times"}
TRACES = ("named", "numeric")
DEFAULT_DIFFICULTY = (1, 4)  # easy enough for tiny models; ask for more (any depth) explicitly
DEFAULT_MOD = 23  # Physics of LMs 2.1


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
            trace: str = "named"):
    """One problem: (canonical key, build() -> record fields). The key ignores statement order
    (a presentation), so a shuffled copy of a test problem can never appear in train."""
    nodes = _graph(rng, d, OPS[subdomain], mod)
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
                "nodes": [{k: v for k, v in n.items() if k in ("name", "op", "args", "value")} for n in nodes]}
        return dict(subdomain=subdomain, prompt=prompt, answer=str(target["value"]), solutions=solutions, meta=meta)
    return key, build


def generate(n, seed=0, difficulty=None, split="train", mod=DEFAULT_MOD, subdomain=None,
             shuffle=True, max_solutions=4, trace="named") -> list[dict]:
    """n records; `subdomain` is None (all mixes), one of OPS, or a list of them; `trace` one of TRACES."""
    if trace not in TRACES:
        raise ValueError(f"unknown math trace style {trace!r}: use one of {TRACES}")
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
        key, build = problem(rng, d, rng.choice(subs), mod, shuffle, max_solutions, trace)
        return key, lambda: (d, key, build())

    items = draw(n, split, sample, "math")
    return [record("math", split, seed, i, d, key, tests="", **fields) for i, (d, key, fields) in enumerate(items)]
