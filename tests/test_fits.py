"""vtkit.fits recovers the parameters of synthetic curves and fails loudly on bad input."""
import math

import numpy as np
import pytest

from vtkit.fits import fit_logistic_logN, fit_powerlaw, logistic

SIZES = np.geomspace(2e4, 2e7, 9)


def test_logistic_is_half_the_ceiling_at_N50():
    assert logistic(3e5, 0.8, 1.7, 3e5) == pytest.approx(0.4)
    assert logistic(1e12, 0.8, 1.7, 3e5) == pytest.approx(0.8, abs=1e-6)
    assert logistic(1.0, 0.8, 1.7, 3e5) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("c,k,N50", [(0.9, 1.5, 3e5), (0.35, 3.0, 2e6), (1.0, 0.7, 1e5)])
def test_logistic_fit_recovers_parameters_from_noisy_points(c, k, N50):
    rng = np.random.default_rng(0)
    y = logistic(SIZES, c, k, N50) + rng.normal(0, 0.005, SIZES.size)
    fit = fit_logistic_logN(SIZES, y)
    assert fit["ok"] and not fit["extrapolated"]
    assert fit["c"] == pytest.approx(c, rel=0.05)
    assert fit["k"] == pytest.approx(k, rel=0.15)
    assert math.log10(fit["N50"]) == pytest.approx(math.log10(N50), abs=0.05)
    assert fit["r2"] > 0.99


def test_logistic_fit_with_fixed_ceiling_and_repeated_seeds():
    N = np.repeat(SIZES[:4], 3)  # 4 sizes x 3 seeds
    y = logistic(N, 1.0, 2.0, 1e5) + np.random.default_rng(1).normal(0, 0.01, N.size)
    fit = fit_logistic_logN(N, y, ceiling=1.0)
    assert fit["ok"] and fit["ceiling_fixed"] and fit["c"] == 1.0
    assert fit["k"] == pytest.approx(2.0, rel=0.2)
    assert math.log10(fit["N50"]) == pytest.approx(5.0, abs=0.1)


def test_falling_curve_gets_negative_steepness():
    y = logistic(SIZES, 0.6, -2.0, 1e6)
    fit = fit_logistic_logN(SIZES, y)
    assert fit["k"] == pytest.approx(-2.0, rel=1e-3) and fit["N50"] == pytest.approx(1e6, rel=1e-3)


def test_midpoint_outside_the_data_is_flagged():
    N = SIZES[:4]  # 2e4 .. ~2e5, midpoint at 1e7
    fit = fit_logistic_logN(N, logistic(N, 1.0, 1.0, 1e7), ceiling=1.0)
    assert fit["ok"] and fit["extrapolated"] and fit["N50"] == pytest.approx(1e7, rel=0.01)


def test_flat_curve_is_not_ok_but_does_not_raise():
    fit = fit_logistic_logN(SIZES, np.zeros(SIZES.size))
    assert not fit["ok"] and "constant" in fit["reason"] and math.isnan(fit["N50"])


def test_too_few_points_and_bad_input_raise_clear_errors():
    with pytest.raises(ValueError, match="at least 4 distinct sizes.*ceiling="):
        fit_logistic_logN([1e4, 1e5, 1e6, 1e6], [0.1, 0.5, 0.9, 0.9])
    with pytest.raises(ValueError, match="at least 3 distinct sizes"):
        fit_logistic_logN([1e4, 1e5], [0.1, 0.5], ceiling=1.0)
    with pytest.raises(ValueError, match="same length"):
        fit_logistic_logN([1e4, 1e5, 1e6, 1e7], [0.1, 0.5])
    with pytest.raises(ValueError, match="> 0"):
        fit_logistic_logN([0, 1e5, 1e6, 1e7], [0.1, 0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match="finite"):
        fit_logistic_logN([1e4, 1e5, 1e6, 1e7], [0.1, float("nan"), 0.6, 0.7])


def test_powerlaw_recovers_exponent_and_prefactor():
    rng = np.random.default_rng(2)
    y = 2.0 * SIZES**0.93 * np.exp(rng.normal(0, 0.02, SIZES.size))  # ~2 bits/param, slightly sublinear
    fit = fit_powerlaw(SIZES, y)
    assert fit["b"] == pytest.approx(0.93, abs=0.02)
    assert fit["A"] == pytest.approx(2.0, rel=0.3)
    assert fit["r2"] > 0.999 and 0 < fit["b_stderr"] < 0.02


def test_powerlaw_rejects_nonpositive_y_and_single_size():
    with pytest.raises(ValueError, match="> 0 for a log-log fit"):
        fit_powerlaw([1e4, 1e5, 1e6], [1.0, 0.0, 3.0])
    with pytest.raises(ValueError, match="2 distinct sizes"):
        fit_powerlaw([1e4, 1e4], [1.0, 2.0])


def test_published_scores_ship_as_package_data_with_their_sources():
    import csv
    from importlib.resources import files

    data = files("vtkit") / "data"
    rows = list(csv.DictReader(data.joinpath("published_scores.csv").open(encoding="utf-8")))
    readme = data.joinpath("README.md").read_text(encoding="utf-8")
    assert rows and list(rows[0]) == ["model", "family", "params_b", "active_params_b", "benchmark", "category",
                                      "score", "setting", "source", "verified"]
    for col in rows[0]:
        assert f"`{col}`" in readme, f"README does not document column {col}"
    for source in {r["source"].split(" (")[0].split(";")[0] for r in rows}:
        assert source in readme, f"README does not name source {source!r}"
    assert all(0 <= float(r["score"]) <= 100 and r["verified"] in ("yes", "no") for r in rows)
    # the figure's use: one family's knowledge score against size, on a log-log line
    gemma = [r for r in rows if r["family"] == "gemma3" and r["benchmark"] == "TriviaQA"]
    fit = fit_powerlaw([float(r["params_b"]) * 1e9 for r in gemma], [float(r["score"]) for r in gemma])
    assert len(gemma) == 4 and 0.1 < fit["b"] < 0.5 and fit["r2"] > 0.9


def test_size_at_inverts_the_logistic():
    from vtkit.fits import size_at
    fit = {"ok": True, "c": 0.8, "k": 2.0, "N50": 1e5}
    assert size_at(fit, 0.5) == pytest.approx(1e5)
    n90 = size_at(fit, 0.9)
    assert n90 == pytest.approx(1e5 * 9 ** 0.5) and logistic(n90, 0.8, 2.0, 1e5) == pytest.approx(0.9 * 0.8)
    assert math.isnan(size_at({"ok": False}, 0.5))
    with pytest.raises(ValueError, match="q must be"):
        size_at(fit, 1.0)
    # a refit started from a previous fit lands on the same optimum
    N = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    y = logistic(N, 0.8, 2.0, 1e5)
    first = fit_logistic_logN(N, y)
    again = fit_logistic_logN(N, y, start=first)
    assert again["N50"] == pytest.approx(first["N50"], rel=1e-4) and again["c"] == pytest.approx(0.8, abs=1e-3)


def test_midpoint_the_points_do_not_pin_is_not_ok_and_does_not_overflow():
    # the demo's capacity slice on one CPU: three sizes all at chance (acc - chance rescaled), ceiling 1;
    # the least-squares midpoint ran off to ~1e400 and math.exp overflowed in the figures stage
    chance = 1 / 7
    y = (np.array([0.125, 0.15625, 0.125]) - chance) / (1 - chance)
    fit = fit_logistic_logN([105072, 51488, 24208], y, ceiling=1.0)
    assert not fit["ok"] and "do not pin it" in fit["reason"] and math.isnan(fit["N50"])
