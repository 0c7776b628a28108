"""What every figure shares: greyscale styles, a fresh axes, the provenance footer, the
log-scale HR axis, and the reproducible file writer.

Figures are readable in greyscale: arms differ by line style and marker, not only by
colour. Every figure carries the data's provenance line under it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

# Black and dark grey with distinct dashes: survives greyscale printing.
STYLES = ({"color": "black", "linestyle": "-"}, {"color": "0.45", "linestyle": "--"},
          {"color": "0.25", "linestyle": ":"}, {"color": "0.6", "linestyle": "-."})
CENSOR_MARKERS = ("+", "x", "|", "1")
MARKERS = ("o", "s", "^", "D", "v", "P")
FORMATS = ("png", "svg", "pdf")
#: Salt of the ids in SVG files: fixed, so that the same figure gives the same bytes.
SVG_HASHSALT = "causal_hcc"
DPI = 150


def new_axes(ax, figsize=(7.0, 5.2)):
    """``(figure, axes)``: the given axes' figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def add_provenance(fig, provenance: str, width: int = 110) -> None:
    """The provenance line (e.g. RECONSTRUCTED PSEUDO-DATA) under the figure."""
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, width), fontsize=6.5, color="0.3")


def hr_log_axis(ax) -> None:
    """Log-scale HR axis with a line at 1 and plain-number ticks (0.5 and 2, not 10^-1)."""
    ax.axvline(1.0, color="0.4", linewidth=1)
    ax.set_xscale("log")
    ticks = [t for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 20)
             if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()


def p_text(p: float) -> str:
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


def parse_formats(formats) -> list[str]:
    """``"png,svg"``, ``("png", "svg")`` or ``"none"`` -> the list of file formats.

    Raises
    ------
    ValueError
        For a format other than png, svg, pdf (or none).
    """
    if formats is None:
        return []
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    items = [str(f).strip().lower().lstrip(".") for f in items]
    items = [f for f in items if f and f != "none"]
    unknown = sorted(set(items) - set(FORMATS))
    if unknown:
        raise ValueError(f"figure formats {unknown}: use any of {', '.join(FORMATS)}, "
                         "comma-separated, or 'none'")
    return list(dict.fromkeys(items))


def save_figure(fig, stem: str | Path, formats) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format; returns the paths written.

    Notes
    -----
    The files are reproducible: the same figure gives the same bytes. Matplotlib writes
    the date into SVG and PDF metadata and random ids into SVG unless told otherwise, so
    the date is left out (``metadata={"Date": None}`` / ``CreationDate``) and the SVG id
    salt is fixed (``svg.hashsalt``).
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in parse_formats(formats):
        path = stem.with_suffix(f".{fmt}")
        metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None},
                    "png": {}}[fmt]
        with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
            fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)
        paths.append(path)
    return paths
