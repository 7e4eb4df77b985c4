"""One paper style for every figure in the kit, and one call that saves PDF + PNG.

    from vtkit import plots
    plots.use_style()
    fig, ax = plots.figure("single")          # 3.25 in wide: one column of a two-column paper
    ax.plot(x, y)
    plots.savefig(fig, out_dir / "figures/accuracy")   # -> [accuracy.pdf, accuracy.png]

Style: seaborn "paper" context on a white "ticks" background, the colour-blind palette, serif
text in STIX (a Times look-alike, matching most paper body fonts) with STIX math. STIX and
DejaVu ship inside matplotlib, so nothing is fetched from the network and nothing depends on
system fonts. Saved files are byte-identical for identical figures (no timestamps embedded).
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter
import seaborn as sns

# (width, height) in inches. Widths are the text widths of common ML paper templates
# (ICML/ICLR two-column: 3.25 in column, 6.75 in page); heights keep axes readable at 8 pt.
SINGLE_COL = (3.25, 2.2)
DOUBLE_COL = (6.75, 2.6)
DPI = 300  # PNG resolution; PDFs are vector
FONT_SIZE = 8  # pt, the caption size of most templates; titles and labels follow it

_RC = {
    "font.family": "serif",
    "font.serif": ["STIXGeneral", "DejaVu Serif"],  # both bundled with matplotlib
    "mathtext.fontset": "stix",
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE + 1,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "legend.fontsize": FONT_SIZE - 1,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "figure.dpi": 150,  # on screen; files use DPI
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,  # embed TrueType, so text stays text in the PDF (journals ask for it)
    "ps.fonttype": 42,
    "svg.fonttype": "none",
}


def use_style() -> None:
    """Apply the kit's paper style to matplotlib globally (idempotent)."""
    sns.set_theme(context="paper", style="ticks", palette="colorblind", rc=_RC)
    matplotlib.rcParams.update(_RC)  # set_theme's context scaling would otherwise resize fonts


def figure(kind: str = "single", nrows: int = 1, ncols: int = 1, height: float | None = None, **kwargs):
    """(fig, axes) sized for one column (`kind="single"`) or the full page width (`"double"`)."""
    sizes = {"single": SINGLE_COL, "double": DOUBLE_COL}
    if kind not in sizes:
        raise ValueError(f"figure kind must be 'single' or 'double', got {kind!r}")
    use_style()
    width, default_h = sizes[kind]
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width, height or default_h * max(1, nrows) ** 0.8), **kwargs)


def savefig(fig, path_without_ext: str | os.PathLike, close: bool = False) -> list[Path]:
    """Save `fig` as PDF and PNG (DPI) next to each other; returns [pdf_path, png_path].

    A trailing .pdf/.png/.svg on the path is dropped; parent folders are created. Under data
    parallelism only rank 0 writes (vtkit.runinfo.is_main); every rank gets the paths.
    """
    from vtkit import runinfo
    base = Path(path_without_ext)
    if base.suffix.lower() in (".pdf", ".png", ".svg"):
        base = base.with_suffix("")
    pdf, png = base.parent / f"{base.name}.pdf", base.parent / f"{base.name}.png"
    if not runinfo.is_main():
        if close:
            plt.close(fig)
        return [pdf, png]
    base.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(pdf, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
    if close:
        plt.close(fig)
    return [pdf, png]


def log_x(ax) -> None:
    """Log x axis labelled at powers of ten only (minor labels collide at single-column width)."""
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())


def yerr(y, lo, hi) -> np.ndarray:
    """matplotlib's asymmetric `yerr` (2 x n) from values and their interval ends, clipped at 0."""
    y, lo, hi = (np.asarray(v, dtype=float) for v in (y, lo, hi))
    return np.clip(np.vstack([y - lo, hi - y]), 0, None)


def curve_ci(ax, x, y, lo, hi, *, band: bool = False, **kw):
    """A line with its interval: error bars (default) or a shaded band (`band=True`)."""
    if band:
        line, = ax.plot(x, y, **kw)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        return line
    return ax.errorbar(x, y, yerr=yerr(y, lo, hi), capsize=2, **{"marker": "o", **kw})


def bars_ci(ax, labels, y, lo, hi, **kw):
    """Bars with interval whiskers, one per label."""
    pos = np.arange(len(labels))
    bars = ax.bar(pos, y, yerr=yerr(y, lo, hi), capsize=3, **kw)
    ax.set_xticks(pos, list(labels))
    return bars


def with_ci(metrics: dict, key: str) -> tuple[float, float, float]:
    """(value, lo, hi) of a rate in a flat metrics dict (`key`, `key_lo`, `key_hi`)."""
    return metrics[key], metrics[f"{key}_lo"], metrics[f"{key}_hi"]
