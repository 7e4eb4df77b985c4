"""vtkit.plots: one paper style, column sizes, PDF + PNG at 300 dpi in one call, reproducible files."""
import warnings

import matplotlib
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
