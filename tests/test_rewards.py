"""vtkit.rewards: trl-signature reward functions on edge cases and known reward hacks."""
import json

import pytest

from vtkit.rewards import REWARDS, accuracy_reward, code_tests_fraction_reward, code_tests_reward, format_reward, stem_reward

GOOD = "<think>\n4 + 13 = 17\n</think>\nThe answer is \\boxed{17}."
ADD_TESTS = "assert add(2, 3) == 5\nassert add(0, 0) == 0\n"
GOOD_CODE = "<think>\nadd them\n</think>\n```python\ndef add(a, b):\n    return a + b\n```"


def test_registry_names_and_trl_signature():
    assert {"accuracy", "format", "code_tests", "stem"} <= set(REWARDS)
    for name, fn in REWARDS.items():
        assert callable(fn) and fn.__name__.endswith("_reward"), name  # trl logs rewards/<__name__>


def test_accuracy_math_edge_cases_and_hacks():
    comps = [GOOD,
             "<think>x</think> \\boxed{16} no wait \\boxed{17}",        # several boxed: the last counts
             "<think>x</think> \\boxed{17} no wait \\boxed{16}",
             "<think>it is \\boxed{17}</think> I won't say",            # answer only inside think
             "<think>it is \\boxed{17}",                                # truncated, no </think>
             "",                                                        # empty
             "<think>a</think><think>b</think> \\boxed{17}",            # repeated tags: accuracy still reads the answer
             "\\boxed{17}"]                                             # no think part: whole text
    got = accuracy_reward(comps, answer=["17"] * len(comps), domain=["math"] * len(comps))
    assert got == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    # the domain column may be absent (math) and completions may be conversational
    conv = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "</think>\\boxed{3}"}]]
    assert accuracy_reward(conv, answer=["17", "17"]) == [1.0, 0.0]
    # trl also passes prompts, completion ids and its trainer state: ignored
    assert accuracy_reward([GOOD], prompts=["q"], completion_ids=[[1, 2]], trainer_state=None, answer=["17"]) == [1.0]


def test_accuracy_mixed_domains_in_one_batch():
    mc_meta = json.dumps({"choices": ["1 J", "2 J", "3 J", "4 J"]})
    rows = [
        ("math", "0.5", "", "", "<think>x</think> \\boxed{\\frac{1}{2}}", 1.0),
        ("knowledge", "Caiford", "", "", "<think>x</think> \\boxed{caiford}", 1.0),
        ("stem", "C", "", mc_meta, "<think>x</think> \\boxed{(C)}", 1.0),
        ("stem", "12 m/s", "", json.dumps({"unit": "m/s"}), "<think>x</think> \\boxed{12\\,\\mathrm{m/s}}", 1.0),
        ("stem", "12 m/s", "", json.dumps({"unit": "m/s"}), "<think>x</think> \\boxed{12}", 0.0),
        ("code", "ref", ADD_TESTS, "", GOOD_CODE, 1.0),
        ("code", "ref", ADD_TESTS, "", GOOD_CODE.replace("a + b", "a - b"), 0.0),
        ("gym:basic_arithmetic", "42", "", "{}", "<think>x</think> \\boxed{42.0}", 1.0),
    ]
    domain, answer, tests, meta, comps, want = map(list, zip(*rows))
    assert accuracy_reward(comps, answer=answer, domain=domain, tests=tests, meta=meta) == want


def test_format_reward():
    math = [GOOD,
            "  <think>x</think>\\boxed{1}",                            # leading whitespace is fine
            "<think>x</think> \\boxed{1} or \\boxed{2}",               # several boxed: 0
            "<think>x</think> \\boxed{1} \\boxed{2",                   # a second, unclosed box: 0
            "<think>x \\boxed{1}</think> done",                        # answer only inside think: 0
            "<think>a</think><think>b</think>\\boxed{1}",              # repeated tags: 0
            "<think>a</think></think>\\boxed{1}",                      # stray closing tag: 0
            "<think>a \\boxed{1}",                                     # truncated: 0
            "preamble <think>a</think>\\boxed{1}",                     # think not at the start: 0
            "<think>  </think>\\boxed{1}",                             # empty thinking: 0
            "\\boxed{1}", ""]
    assert format_reward(math) == [1.0, 1.0] + [0.0] * 10
    code = [GOOD_CODE,
            GOOD_CODE + "\n```python\nprint(1)\n```",                  # two blocks: 0
            "<think>x</think> \\boxed{1}",                             # boxed, no code: 0
            "<think>x</think>\n```python\ndef f():\n    pass\n"]       # unclosed fence: 0
    assert format_reward(code, domain=["code"] * 4) == [1.0, 0.0, 0.0, 0.0]
    assert format_reward([GOOD_CODE], domain=["math"]) == [0.0]        # code where a boxed answer is due


def test_code_tests_binary_and_fraction_and_early_exit_hack():
    half = "<think>x</think>\n```python\ndef add(a, b):\n    return 5\n```"
    exit0 = "<think>x</think>\n```python\nimport sys\nsys.exit(0)\ndef add(a, b):\n    return a + b\n```"
    os_exit = "<think>x</think>\n```python\nimport os\nos._exit(0)\n```"
    printer = "<think>x</think>\n```python\nprint('All tests passed!')\ndef add(a, b):\n    return -1\n```"
    think_only = "<think>```python\ndef add(a, b):\n    return a + b\n```</think> see above"
    comps = [GOOD_CODE, half, exit0, os_exit, printer, think_only, ""]
    tests = [ADD_TESTS] * len(comps)
    assert code_tests_reward(comps, tests=tests) == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert code_tests_fraction_reward(comps, tests=tests) == [1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_code_tests_skip_non_code_rows_and_take_stdio_cases():
    cases = json.dumps([{"input": "2 3\n", "output": "5"}])
    prog = "<think>x</think>\n```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    got = code_tests_reward([GOOD, prog], tests=["", cases], domain=["math", "code"])
    assert got == [None, 1.0]  # None: not applicable, trl's GRPOTrainer skips it (nan)


def test_stem_reward_only_scores_stem_rows():
    meta = [json.dumps({"choices": ["a", "b"]}), "", ""]
    got = stem_reward(["<think>x</think>\\boxed{A}", "<think>x</think>\\boxed{3 N}", GOOD],
                      answer=["A", "3 N", "17"], domain=["stem", "stem", "math"], meta=meta)
    assert got == [1.0, 1.0, None]


def test_missing_or_misaligned_columns_raise():
    with pytest.raises(ValueError, match="'answer'"):
        accuracy_reward([GOOD])
    with pytest.raises(ValueError, match="'tests'"):
        code_tests_reward([GOOD_CODE])
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        accuracy_reward([GOOD], answer=["1", "2"])


def test_accuracy_grades_instruction_rows_through_evaluation():
    from vtkit.instructions import make_prompts
    ds = make_prompts(2, seed=0)
    comps = [ds[0]["solutions"][0], "<think>x</think>\nnothing asked for"]
    got = accuracy_reward(comps, answer=ds["answer"], domain=ds["domain"],
                          instruction_id_list=ds["instruction_id_list"], kwargs=ds["kwargs"])
    assert got == [1.0, 0.0]


def test_faithful_accuracy_rewards_only_answers_the_trace_carries():
    from vtkit import tasks
    from vtkit.rewards import REWARDS
    rec = dict(tasks.make("math", 1, seed=3, difficulty=2, mod=7, subdomain="add", shuffle=False)[0])
    good = rec["solutions"][0]                                       # the reference: right steps, box = last step
    lines = good.split("\n")          # lines[1]: the first step, "... = a + b = r." (or "... mod 7 = r.")
    head, value = lines[1][:-1].rsplit(" ", 1)
    unfaithful = "\n".join([lines[0], f"{head} {(int(value) + 1) % 7}.", *lines[2:]])   # a wrong step, same box
    wrong = good.replace(f"\\boxed{{{rec['answer']}}}", f"\\boxed{{{(int(rec['answer']) + 1) % 7}}}")
    prompts = [[{"role": "user", "content": rec["prompt"]}]] * 3
    cols = {k: [rec[k]] * 3 for k in ("answer", "domain", "meta")}
    assert REWARDS["accuracy"]([good, unfaithful, wrong], **cols) == [1.0, 1.0, 0.0]
    assert REWARDS["faithful_accuracy"]([good, unfaithful, wrong], prompts=prompts, **cols) == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="needs the prompts"):
        REWARDS["faithful_accuracy"]([good], **{k: v[:1] for k, v in cols.items()})
