"""`vtkit report`: figures, summary numbers and report.html from a real sweep's results."""
import base64
import re
from pathlib import Path

import pandas as pd
import pytest

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

    page = (out / "rep/report.html").read_text()
    assert "y against x over two seeds" in page and "name: rep" in page  # the experiment
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == len(list(figs.glob("*.png"))) >= 2
    assert base64.b64decode(images[0])[:4] == b"\x89PNG"
    runs = xp.plan(xp.load(spec), out)
    assert all(r.run_id in page for r in runs)
    assert page.count("<tr class='failed'>") == 1 and "fixture failure for x=3.0" in page
    links = re.findall(r"<a href='([^']+executed\.html)'>notebook</a>", page)
    assert len(links) == 5  # failed runs keep their executed notebook too
    for link in links:
        rendered = (out / "rep" / link).read_text()
        assert "working on x=" in rendered  # the notebook's output, as HTML


def test_report_without_results_says_what_to_do(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "after `vtkit sweep` has written its results there" in capsys.readouterr().err
