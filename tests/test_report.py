"""`vtkit report`: figures, summary numbers and report.html from a real sweep's results."""
import base64
import io
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from vtkit import cli, experiment as xp, report

FIX = Path(__file__).parent / "fixtures"


def test_mean_ci_matches_the_t_interval():
    mean, lo, hi, n = report.mean_ci([1.0, 2.0, 3.0, None])
    # sd = 1, t(0.975, df=2) = 4.303: half-width 4.303 / sqrt(3)
    assert (mean, n) == (2.0, 3) and hi - mean == pytest.approx(4.303 / 3 ** 0.5) and mean - lo == pytest.approx(hi - mean)
    assert report.mean_ci([5.0])[:1] == (5.0,) and all(v != v for v in report.mean_ci([5.0])[1:3])


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
    for x in (1.0, 2.0):  # two seeds each: mean and t-interval of the runs
        mean, lo, hi, n = report.mean_ci(ok[ok.x == x].y)
        assert (y.loc[x, "mean"], y.loc[x, "ci_low"], y.loc[x, "ci_high"], y.loc[x, "n"]) == pytest.approx((mean, lo, hi, 2))
        assert lo < mean < hi and mean == pytest.approx(x ** 2, abs=0.01)
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
    for x in (1.0, 2.0):  # the headline table: y per value of x, over two seeds
        mean, lo, hi, n = report.mean_ci(ok[ok.x == x].y)
        assert f"<td class=num>{mean:.4g} [{lo:.4g}, {hi:.4g}]</td><td class=num>2</td>" in page
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
    assert report.headline_metrics(df, roles, {"headline": {"sft": ["params", "nope"]}})["sft"] == ["params", "nope"]
    table = report.headline_table(df, roles, {"sft": ["accuracy", "nope"], "rl": ["heldout_gain"]})
    acc = table[table.metric == "accuracy"].iloc[0]
    assert (acc["group"], acc["n"]) == ("", 2) and acc["mean"] == pytest.approx(0.55)
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

    # headline table: train by the default rule (acc, loss; not params, wall_s, acc_lo), eval as named
    heads = dict(re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td>", page[page.index("<h2>Headline metrics</h2>"):]))
    rows = re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td><td class=(\w+)>([^<]*)</td><td class=num>(\d+)</td></tr>", page)
    assert [(st, m) for st, m, *_ in rows] == [("train", "acc"), ("train", "loss"), ("eval", "acc"), ("eval", "recall")]
    cells = {(st, m): (text, int(n)) for st, m, _, text, n in rows}
    for stage, accs in (("train", [0.5, 0.51, 0.52]), ("eval", [0.8, 0.81])):  # the failed eval run is left out
        mean, lo, hi, n = report.mean_ci(accs)
        assert cells[(stage, "acc")] == (f"{mean:.4g} [{lo:.4g}, {hi:.4g}]", n) and lo < mean < hi
    assert cells[("eval", "recall")] == ("not reported", 0) and heads

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
