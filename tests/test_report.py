"""`vtkit report`: figures, summary numbers and report.html from a real sweep's results."""
import base64
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from vtkit import cli, experiment as xp, report

FIX = Path(__file__).parent / "fixtures"


def test_report_from_a_sweep(tmp_path, capsys):
    spec = tmp_path / "exp.yaml"
    spec.write_text(f"""
name: rep
description: y against x over two seeds
notebook: {FIX / 'metrics.ipynb'}
zip:
  x:    [1.0,   2.0,   1.0,   2.0,   3.0]
  seed: [0,     0,     1,     1,     1]
  fail: [false, false, false, false, true]
jobs: 2
report: {{metrics: [y]}}
""")
    out = tmp_path / "runs"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 1  # one run fails on purpose
    assert cli.main(["report", str(out / "rep")]) == 0
    assert "report.html" in capsys.readouterr().out

    df = pd.read_parquet(out / "rep/results.parquet")
    summary = pd.read_csv(out / "rep/summary.csv")
    y = summary[(summary.metric == "y") & (summary.parameter == "x")].set_index("value")
    ok = df[df.status == "ok"]
    for x in (1.0, 2.0):  # two seeds each, and y has no interval of its own: the mean, no t interval over 2 seeds
        assert (y.loc[x, "mean"], y.loc[x, "n"]) == pytest.approx((ok[ok.x == x].y.mean(), 2))
        assert pd.isna(y.loc[x, "ci_low"]) and pd.isna(y.loc[x, "ci_high"]) and y.loc[x, "mean"] == pytest.approx(x ** 2, abs=0.01)
    assert 3.0 not in y.index  # the failed run is left out of the numbers
    assert "seed" not in set(summary.parameter.dropna())  # seeds are replicates, not factors

    figs = out / "rep/figures"
    assert (figs / "metrics__y__vs__x.pdf").read_bytes()[:4] == b"%PDF"
    assert (figs / "metrics__y__vs__x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in figs.iterdir()) == ["metrics__y__vs__x.pdf", "metrics__y__vs__x.png"]  # only y: named
    assert set(summary.metric) >= {"y", "x_seen"}  # the numbers of every metric stay in summary.csv

    page = (out / "rep/report.html").read_text()
    assert "y against x over two seeds" in page and "name: rep" in page  # the experiment
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 1 and base64.b64decode(images[0])[:4] == b"\x89PNG"
    runs = xp.plan(xp.load(spec), out)
    assert all(r.run_id in page for r in runs)
    assert page.index("<h2>Failures</h2>") < page.index("<h2>Headline metrics</h2>") < page.index("<h2>Runs</h2>")
    assert page.count("<tr class='failed'>") == 2 and "fixture failure for x=3.0" in page  # failures table + runs
    assert "<h2>Stages</h2>" not in page  # a grid: figures against x, no per-stage section
    for x in (1.0, 2.0):  # the headline table: y per value of x, each seed's value (none has an interval)
        runs_x = ok[ok.x == x].sort_values("seed")
        cell = "<br>".join(f"seed={s}: {v:.4g}" for s, v in zip(runs_x.seed, runs_x.y))
        assert f"<td class=num>{cell}</td><td class=num>2</td>" in page
    links = re.findall(r"<a href='([^']+executed\.html)'>notebook</a>", page)
    assert len(set(links)) == 5 and len(links) == 6  # every run (the failed one also under Failures)
    for link in links:
        rendered = (out / "rep" / link).read_text()
        assert "working on x=" in rendered  # the notebook's output, as HTML


def test_headline_metrics_default_and_named():
    df = pd.DataFrame({"run_id": ["a", "b", "a", "b"], "stage": ["sft", "sft", "rl", "rl"],
                       "status": ["ok", "ok", "ok", "failed"],
                       "params": [10, 10, None, None], "accuracy": [0.5, 0.6, None, None],
                       "accuracy_lo": [0.4, 0.5, None, None], "train_steps": [5, 5, None, None],
                       "name": ["m", "m", None, None], "wall_s": [1.0, 2.0, 3.0, None],
                       "heldout_gain": [None, None, 0.1, None], "select/n_kept": [None, None, 7, None],
                       "math/skipped": [None, None, False, None]})
    roles = {"stages": ["sft", "rl"], "metrics": ["params", "accuracy", "accuracy_lo", "train_steps", "name",
                                                   "math/skipped", "heldout_gain", "select/n_kept"], "varied": ["seed"]}
    assert report.headline_metrics(df, roles) == {"sft": ["accuracy"], "rl": ["heldout_gain"]}
    assert report.headline_metrics(df, roles, {"metrics": ["heldout_gain"]}) == {"sft": ["accuracy"], "rl": ["heldout_gain"]}
    # named per stage: those lead, the stages it does not name lead with nothing, absent stages are dropped
    assert report.headline_metrics(df, roles, {"headline": {"sft": ["params", "nope"], "merge": ["gain"]}}) == \
        {"sft": ["params", "nope"]}
    table = report.headline_table(df, roles, {"sft": ["accuracy", "nope"], "rl": ["heldout_gain"]})
    acc = table[table.metric == "accuracy"]  # one row per seed (no _hi: no interval), no pooled row without one
    assert list(acc.run) == ["a", "b"] and list(acc.value) == [0.5, 0.6] and set(acc.n) == {1}
    assert acc.ci_low.isna().all() and acc.group.tolist() == ["", ""]
    assert table[table.metric == "nope"].iloc[0]["n"] == 0 and table[table.metric == "heldout_gain"].iloc[0]["n"] == 1


def test_report_for_a_pipeline(tmp_path):
    """Failures first, a headline table per stage over seeds, then each stage's own figures."""
    spec = tmp_path / "pipe.yaml"
    spec.write_text(f"""
name: pipe
description: two stages over three seeds
pipeline:
  - {{name: train, notebook: {FIX / 'stage_figure.ipynb'}}}
  - {{name: eval, notebook: {FIX / 'stage_figure.ipynb'}, parameters: {{level: 0.8, fail_seed: 2}}}}
grid: {{seed: [0, 1, 2]}}
jobs: 2
report: {{headline: {{eval: [acc, recall]}}}}
""")
    out = tmp_path / "runs"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 1  # eval fails for seed 2
    page_path = report.build(out / "pipe")
    page = page_path.read_text()
    assert page_path.stat().st_size < 2_000_000

    runs = {r.varied["seed"]: r for r in xp.plan(xp.load(spec), out)}
    first = page.index("<h2>Failures</h2>")
    assert first < page.index("<h2>Headline metrics</h2>") < page.index("<h2>Stages</h2>") < page.index("<h2>Runs</h2>")
    fail_row = page[first:page.index("</table>", first)]
    assert "fixture stage failure for seed=2" in fail_row and f"{runs[2].run_id}/eval/executed.html" in fail_row
    assert "Against the varied parameters" not in page  # seeds only: nothing to draw against
    assert not list((out / "pipe/figures").glob("*.png"))

    # headline table: the stage the file names (eval), per seed; train's numbers are in the summary only
    rows = re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td><td class=(\w+)>(.*?)</td><td class=num>(\d+)</td></tr>", page)
    assert [(st, m) for st, m, *_ in rows] == [("eval", "acc"), ("eval", "recall")]
    cells = {(st, m): (text, int(n)) for st, m, _, text, n in rows}
    assert cells[("eval", "acc")] == ("seed=0: 0.8<br>seed=1: 0.81", 2)  # the failed eval run is left out
    assert cells[("eval", "recall")] == ("not reported", 0)
    summary = pd.read_csv(out / "pipe/summary.csv")
    assert set(summary[summary.stage == "train"].metric) == {"acc", "loss", "params", "metric_wall_s", "acc_lo"}

    # stage figures: the notebooks' own PNGs, each linked to the run's executed notebook of that stage
    stages = page[page.index("<h2>Stages</h2>"):page.index("<h2>Runs</h2>")]
    figures = re.findall(r"<figure><a href='([^']+)'><img alt='([^']+)' src='data:image/png;base64,([^']+)'>", stages)
    assert [alt for _, alt, _ in figures] == ["seed=0: curve", "seed=1: curve", "seed=2: curve",
                                              "seed=0: curve", "seed=1: curve"]
    for (href, alt, data), (seed, stage) in zip(figures, [(0, "train"), (1, "train"), (2, "train"), (0, "eval"), (1, "eval")]):
        assert href == f"{runs[seed].run_id}/{stage}/executed.html" and "saved curve" in (out / "pipe" / href).read_text()
        with Image.open(io.BytesIO(base64.b64decode(data))) as im, Image.open(out / "pipe" / href.replace(
                "executed.html", "curve.png")) as full:  # downscaled from the 300 dpi original to 120 dpi
            assert im.format == "PNG" and im.width == round(full.width * report.THUMB_DPI / 300)
    eval_part = stages[stages.index("<h3>eval</h3>"):]
    assert eval_part.index("fixture stage failure for seed=2") < eval_part.index("<figure>")  # failures first
    assert f"href='{runs[0].run_id}/train/curve.pdf'" in stages


def test_report_links_figures_beyond_the_embedding_budget(tmp_path, monkeypatch):
    d = tmp_path / "exp"
    run = d / "r1"
    run.mkdir(parents=True)
    from vtkit import plots

    for name in ("a", "b"):
        fig, ax = plots.figure("single")
        ax.plot([0, 1], [0, 1])
        plots.savefig(fig, run / name, close=True)
    pd.DataFrame({"run_id": ["r1"], "stage": ["s"], "status": ["ok"], "error": [None], "wall_s": [1.0],
                  "out_dir": [str(run)], "acc": [0.5]}).to_parquet(d / "results.parquet")
    (d / "sweep.json").write_text('{"name": "exp", "spec": {"pipeline": []}, "stages": ["s"], "metrics": ["acc"], '
                                  '"params": [], "varied": []}')
    one = len(base64.b64encode(report.thumbnail(run / "a.png")))
    monkeypatch.setattr(report, "EMBED_BUDGET", one + 10)
    page = report.build(d, render_notebooks=False).read_text()
    assert page.count("src='data:image/png;base64,") == 1 and "<a href='r1/b.png'>[b.png]</a>" in page
    assert "1 figure(s) linked rather than embedded" in page


def test_report_without_results_says_what_to_do(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "after `vtkit sweep` has written its results there" in capsys.readouterr().err


def _synthetic(tmp_path, seeds, stages, spec_report):
    """A results.parquet + sweep.json as `vtkit sweep` writes them, for `stages` = {stage: {metric: [one value
    per seed]}} (`X_lo`/`X_hi` are metrics too); no notebooks run."""
    d = tmp_path / "exp"
    d.mkdir()
    rows, metrics = [], []
    for stage, cols in stages.items():
        for i, seed in enumerate(seeds):
            out = d / f"seed={seed}" / stage
            out.mkdir(parents=True)
            row = {"run_id": f"seed={seed}-0123456789", "stage": stage, "seed": seed, "status": "ok", "error": None,
                   "wall_s": 1.0, "vtkit_source": "abc", "out_dir": str(out)}
            row.update({m: vals[i] for m, vals in cols.items()})
            rows.append(row)
            metrics += [m for m in cols if m not in metrics]
    pd.DataFrame(rows).to_parquet(d / "results.parquet")
    (d / "sweep.json").write_text(json.dumps({
        "name": "exp", "spec": {"pipeline": [], "report": spec_report}, "stages": list(stages),
        "metrics": metrics, "params": ["seed"], "varied": ["seed"]}))
    return d


def _headline_rows(page: str) -> dict:
    part = page[page.index("<h2>Headline metrics</h2>"):page.index("<h2>Runs</h2>")]
    return {(st, m): (text.split("<br>"), int(n)) for st, m, text, n in re.findall(
        r"<tr><td>([\w/]+)</td><td>([\w/@]+)</td><td class=\w+>(.*?)</td><td class=num>(\d+)</td></tr>", part)}


def test_two_seeds_show_each_runs_own_interval_and_a_pooled_value_never_a_t_interval(tmp_path):
    """The issue's case: two seeds of an accuracy near 0.9 gave `0.885 [0.1862, 1.584]` (t, 1 dof)."""
    d = _synthetic(tmp_path, [0, 1], {
        "quickstart": {"greedy_acc": [0.85, 0.92], "greedy_acc_lo": [0.78, 0.86], "greedy_acc_hi": [0.91, 0.97],
                       "train_steps": [120, 120], "params": [400_000, 400_000], "greedy_acc_before": [0.0, 0.02]},
        "rl": {"math/heldout_gain": [0.19, 0.17], "math/heldout_gain_lo": [0.13, 0.11],
               "math/heldout_gain_hi": [0.25, 0.24], "math/n_prompts": [64, 64]},
        "merge": {"merged_minus_last/mean/mean@4": [0.02, -0.01]},   # no interval of its own
    }, {"headline": {"quickstart": ["greedy_acc"], "rl": ["math/heldout_gain"],
                     "merge": ["merged_minus_last/mean/mean@4"], "clr": ["verifier_acc"]}})   # clr did not run
    page = report.build(d, render_notebooks=False).read_text()
    rows = _headline_rows(page)
    assert list(rows) == [("quickstart", "greedy_acc"), ("rl", "math/heldout_gain"),
                          ("merge", "merged_minus_last/mean/mean@4")]   # as named; the absent stage is left out
    pooled_lo, pooled_hi = 0.885 - (0.07 + 0.06) / 2, 0.885 + (0.06 + 0.05) / 2   # mean of the half-widths
    assert rows[("quickstart", "greedy_acc")] == (
        ["seed=0: 0.85 [0.78, 0.91]", "seed=1: 0.92 [0.86, 0.97]", f"pooled: 0.885 [{pooled_lo:.4g}, {pooled_hi:.4g}]"], 2)
    assert rows[("rl", "math/heldout_gain")][0][:2] == ["seed=0: 0.19 [0.13, 0.25]", "seed=1: 0.17 [0.11, 0.24]"]
    assert rows[("merge", "merged_minus_last/mean/mean@4")] == (["seed=0: 0.02", "seed=1: -0.01"], 2)  # no pooled
    assert "1.584" not in page and "0.1862" not in page   # the t interval over 2 seeds is gone
    # bookkeeping and unnamed metrics are in the summary below, not up front
    head = page[page.index("<h2>Headline metrics</h2>"):page.index("<h2>Runs</h2>")]
    assert "train_steps" not in head and "n_prompts" not in head and "greedy_acc_before" not in head
    summary = pd.read_csv(d / "summary.csv").set_index(["stage", "metric"])
    assert {("quickstart", "train_steps"), ("rl", "math/n_prompts"), ("quickstart", "greedy_acc_before")} <= set(summary.index)
    assert ("quickstart", "greedy_acc_lo") not in summary.index   # a metric's own bounds are its interval
    acc = summary.loc[("quickstart", "greedy_acc")]
    assert (acc["mean"], acc["ci_low"], acc["ci_high"], acc["n"]) == pytest.approx((0.885, pooled_lo, pooled_hi, 2))
    assert pd.isna(summary.loc[("quickstart", "train_steps"), "ci_low"])   # 2 seeds, no item interval: none


def test_six_seeds_get_a_t_interval_clipped_to_the_metrics_range(tmp_path):
    from vtkit import stats

    accs = [0.99, 1.0, 0.93, 1.0, 0.97, 0.9]
    gains = [0.3, -0.1, 0.5, 0.2, 0.9, -0.4]
    d = _synthetic(tmp_path, list(range(6)), {"s": {
        "verifier_acc": accs, "verifier_acc_lo": [a - 0.05 for a in accs], "verifier_acc_hi": [min(1.0, a + 0.02) for a in accs],
        "clr_minus_majority": gains, "bits": [1.0, 2.0, 3.0, 4.0, 5.0, 60.0]}}, {"headline": {"s": ["verifier_acc", "clr_minus_majority", "bits"]}})
    page = report.build(d, render_notebooks=False).read_text()
    table = report.headline_table(pd.read_parquet(d / "results.parquet"), json.loads((d / "sweep.json").read_text()),
                                  {"s": ["verifier_acc", "clr_minus_majority", "bits"]}).set_index("metric")
    assert list(table.run) == ["mean", "mean", "mean"] and list(table.n) == [6, 6, 6]
    for metric, values, rng in (("verifier_acc", accs, (0.0, 1.0)), ("clr_minus_majority", gains, (-1.0, 1.0)),
                                ("bits", [1.0, 2.0, 3.0, 4.0, 5.0, 60.0], None)):
        mean, lo, hi, n = stats.t_interval(values)
        row = table.loc[metric]
        want = (mean, lo, hi) if rng is None else (mean, max(lo, rng[0]), min(hi, rng[1]))
        assert (row.value, row.ci_low, row.ci_high) == pytest.approx(want) and row.interval == "t over 6 runs"
    assert stats.t_interval(accs)[2] > 1.0 and table.loc["verifier_acc", "ci_high"] == 1.0   # clipped, not 1.0x
    assert stats.t_interval(gains)[1] < -0.1 and table.loc["bits", "ci_low"] < 0   # an unbounded metric is not clipped
    rows = _headline_rows(page)
    assert rows[("s", "verifier_acc")][1] == 6 and rows[("s", "verifier_acc")][0][0].endswith(", 1]")


def test_no_interval_leaves_the_metrics_range():
    """Every interval the report draws stays in [0, 1] for a rate and [-1, 1] for a gain, even where a run's
    own bounds or a t interval would cross; a name the rule does not know is left unbounded."""
    assert report.metric_range("stage1/math/add/greedy_acc") == report.metric_range("verifier_acc") == (0.0, 1.0)
    assert report.metric_range("headline") == report.metric_range("clr@8") == report.metric_range("mean@4") == (0.0, 1.0)
    assert report.metric_range("rl/heldout_gain") == report.metric_range("stage1/math/add/gain") == (-1.0, 1.0)
    assert report.metric_range("merged_minus_last/mean/mean@4") == report.metric_range("clr_minus_majority") == (-1.0, 1.0)
    for unbounded in ("merged_minus_last/mean/distinct@4", "N50_knowledge", "loss", "score/aime/x", "knowledge_doubling_factor"):
        assert report.metric_range(unbounded) is None, unbounded
    assert report.bound_columns("N50_knowledge", ["N50_knowledge", "N50_lo_knowledge", "N50_hi_knowledge"]) == \
        ("N50_lo_knowledge", "N50_hi_knowledge")   # the figures stage's form
    assert report.bound_columns("acc", ["acc", "acc_lo"]) is None
    one = report.summarize([0.98], [0.9], [1.04], (0.0, 1.0))   # a run's own bounds past 1 (a normal approximation)
    assert (one["lo"], one["hi"], one["interval"]) == (0.9, 1.0, "the run's own")
    few = report.summarize([0.02, 0.05], [-0.03, 0.0], [0.08, 0.11], (0.0, 1.0))
    assert few["lo"] == 0.0 and few["hi"] == pytest.approx(0.035 + 0.06) and few["interval"] == "items, pooled over 2 runs"
    many = report.summarize([-0.9, -0.95, -0.5, -1.0, -0.99], rng=(-1.0, 1.0))
    assert many["lo"] == -1.0 and many["hi"] < 0 and many["interval"] == "t over 5 runs"
    wrong = report.summarize([1.5, 2.0, 2.5, 3.0, 3.5], rng=(0.0, 1.0))   # values outside: the range is wrong, not clipped
    assert (wrong["lo"], wrong["hi"]) == pytest.approx(__import__("vtkit.stats").stats.t_interval([1.5, 2.0, 2.5, 3.0, 3.5])[1:3])
    assert wrong["lo"] > 1.0   # t over 5 runs: [1.52, 3.48], nothing clipped to 1
    assert report.summarize([None, float("nan")])["n"] == 0


def test_compute_by_stage_is_cumulative_per_run_and_never_a_headline(tmp_path):
    d = _synthetic(tmp_path, [0, 1], {
        "sft": {"greedy_acc": [0.5, 0.6], "tokens_trained": [1000, 1200], "tokens_generated": [50, 60],
                "tokens_generated_eval": [50, 60], "train_flops": [6e9, 7e9], "gen_flops": [1e8, 2e8]},
        "rl": {"math/heldout_gain": [0.1, 0.2], "tokens_trained": [300, 400], "tokens_generated": [900, 800],
               "tokens_generated_eval": [100, 100], "train_flops": [2e9, 3e9], "gen_flops": [5e8, 4e8]},
        "figures": {"bits": [1.0, 2.0]},   # a stage that recorded no compute (an older run) adds nothing
    }, None)
    df = pd.read_parquet(d / "results.parquet")
    table = report.compute_table(df, json.loads((d / "sweep.json").read_text()))
    seed1 = table[table.run_id.str.startswith("seed=1")].set_index("stage")
    assert list(seed1.index) == ["sft", "rl", "figures"]
    assert seed1.loc["rl", "cum_train_flops"] == 7e9 + 3e9 and seed1.loc["rl", "cum_gen_flops"] == 2e8 + 4e8
    assert seed1.loc["figures", "cum_flops"] == 7e9 + 3e9 + 2e8 + 4e8 and pd.isna(seed1.loc["figures", "train_flops"])
    page = report.build(d, render_notebooks=False).read_text()
    part = page[page.index("<h2>Compute by stage</h2>"):]
    cells = re.findall(r"<tr><td>(seed=\d)</td><td>(\w+)</td>((?:<td class=num>[^<]*</td>)+)</tr>", part)
    assert [(run, st) for run, st, _ in cells] == [(f"seed={s}", st) for s in (0, 1) for st in ("sft", "rl", "figures")]
    last = re.findall(r"<td class=num>([^<]*)</td>", cells[4][2])   # seed=1, rl
    assert last == ["400", "800", "100", "3e+09", "4e+08", "1e+10", "6e+08", "1.06e+10"]
    assert (pd.read_csv(d / "compute.csv")["cum_flops"].iloc[-1]) == pytest.approx(1.06e10)
    heads = _headline_rows(page)
    assert not any("flops" in m or "tokens" in m for _, m in heads)   # bookkeeping, in the summary only
    assert report.is_bookkeeping("train_flops") and report.is_bookkeeping("gen_flops_eval")
