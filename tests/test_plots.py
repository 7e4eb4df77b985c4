"""vtkit.plots: one paper style, column sizes, PDF + PNG at 300 dpi in one call, reproducible files."""
import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.font_manager import FontProperties, findfont
from PIL import Image

from vtkit import plots


def test_style_uses_bundled_serif_fonts_and_colourblind_palette():
    import seaborn as sns

    plots.use_style()
    rc = matplotlib.rcParams
    assert rc["font.family"] == ["serif"] and rc["mathtext.fontset"] == "stix" and rc["pdf.fonttype"] == 42
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing font would warn and fall back
        assert findfont(FontProperties(family="serif"), fallback_to_default=False).endswith("STIXGeneral.ttf")
    cycle = [c["color"] for c in rc["axes.prop_cycle"]]
    assert [matplotlib.colors.to_hex(c) for c in cycle[:4]] == sns.color_palette("colorblind").as_hex()[:4]


def test_figure_sizes_and_kinds():
    fig, ax = plots.figure("single")
    assert tuple(fig.get_size_inches()) == pytest.approx(plots.SINGLE_COL)
    fig2, axes = plots.figure("double", ncols=2)
    assert fig2.get_size_inches()[0] == pytest.approx(plots.DOUBLE_COL[0]) and len(axes) == 2
    assert plots.SINGLE_COL[0] == 3.25 and plots.DOUBLE_COL[0] == 6.75
    with pytest.raises(ValueError, match="'single' or 'double'"):
        plots.figure("triple")


def test_savefig_writes_pdf_and_png_at_300_dpi_reproducibly(tmp_path):
    def draw():
        fig, ax = plots.figure("single")
        ax.plot([1, 2, 3], [0.2, 0.5, 0.7], marker="o", label=r"pass@$k$")
        ax.set_xlabel("$k$")
        ax.legend()
        return fig

    paths = plots.savefig(draw(), tmp_path / "sub/acc.pdf", close=True)  # a suffix is dropped, folders made
    assert paths == [tmp_path / "sub/acc.pdf", tmp_path / "sub/acc.png"]
    assert paths[0].read_bytes()[:5] == b"%PDF-" and b"STIX" in paths[0].read_bytes()  # fonts embedded
    with Image.open(paths[1]) as im:
        dpi = im.info["dpi"]
        assert round(dpi[0]) == 300 and im.size[0] > 2 * 300  # ~3 in wide at 300 dpi (tight bbox)
    again = plots.savefig(draw(), tmp_path / "again", close=True)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]  # no timestamps inside


def test_yerr_is_two_by_n_and_clips_negative_widths():
    err = plots.yerr([0.5, 0.2, 0.9], [0.4, 0.3, 0.8], [0.7, 0.25, 0.85])
    assert err.shape == (2, 3) and err.dtype == float
    # an interval that does not contain its value (lo above y, hi below y) draws no whisker on that side
    np.testing.assert_allclose(err, [[0.1, 0.0, 0.1], [0.2, 0.05, 0.0]], atol=1e-12)
    assert plots.yerr(1.0, 0.5, 2.0).tolist() == [[0.5], [1.0]]  # a scalar is one point


def test_curve_ci_draws_bars_or_a_band():
    fig, ax = plots.figure("single")
    x, y, lo, hi = [1, 2, 3], [0.2, 0.5, 0.7], [0.1, 0.4, 0.65], [0.3, 0.55, 0.9]
    bars = plots.curve_ci(ax, x, y, lo, hi, label="acc")
    line, caps, (segments,) = bars
    assert line.get_marker() == "o" and bars.get_label() == "acc" and len(caps) == 2  # lower and upper caps
    np.testing.assert_allclose([seg[:, 1] for seg in segments.get_segments()], np.column_stack([lo, hi]))
    band = plots.curve_ci(ax, x, y, lo, hi, band=True, color="C3")
    assert isinstance(band, matplotlib.lines.Line2D) and list(band.get_ydata()) == y
    fill = ax.collections[-1]
    assert matplotlib.colors.to_hex(fill.get_facecolor()[0], keep_alpha=False) == matplotlib.colors.to_hex("C3")
    assert fill.get_facecolor()[0][3] == pytest.approx(0.15)
    matplotlib.pyplot.close(fig)


def test_bars_ci_sets_tick_labels_and_whiskers():
    fig, ax = plots.figure("single")
    bars = plots.bars_ci(ax, ("base", "sft", "rl"), [0.2, 0.4, 0.6], [0.1, 0.35, 0.6], [0.3, 0.5, 0.7])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["base", "sft", "rl"]
    assert list(ax.get_xticks()) == [0, 1, 2] and [b.get_height() for b in bars] == [0.2, 0.4, 0.6]
    (whiskers,) = bars.errorbar.lines[2]
    np.testing.assert_allclose([seg[:, 1] for seg in whiskers.get_segments()], [[0.1, 0.3], [0.35, 0.5], [0.6, 0.7]])
    matplotlib.pyplot.close(fig)


def test_with_ci_reads_key_lo_hi():
    m = {"mean@4": 0.5, "mean@4_lo": 0.4, "mean@4_hi": 0.6, "pass@4": 0.9}
    assert plots.with_ci(m, "mean@4") == (0.5, 0.4, 0.6)
    with pytest.raises(KeyError, match="pass@4_lo"):
        plots.with_ci(m, "pass@4")
    with pytest.raises(KeyError, match="greedy_acc"):
        plots.with_ci(m, "greedy_acc")


def test_log_x_labels_only_powers_of_ten():
    from matplotlib.ticker import NullFormatter

    fig, ax = plots.figure("single")
    ax.plot([1e3, 1e6], [0, 1])
    plots.log_x(ax)
    assert ax.get_xscale() == "log" and isinstance(ax.xaxis.get_minor_formatter(), NullFormatter)
    assert ax.get_yscale() == "linear"
    matplotlib.pyplot.close(fig)
