"""What every figure shares: greyscale styles, a fixed-layout figure, the provenance
footer, the log-scale HR axis, and the reproducible file writer.

Figures are readable in greyscale: arms differ by line style and marker, not only by
colour. Every figure carries the data's provenance line under it.

Layout is fixed, not constrained: margins are set in inches from the longest tick label's
character count. Matplotlib's constrained layout measures every text's extent in extra
draws and cost 0.5-1 s per figure and format; a fixed layout draws once.
"""

from __future__ import annotations

import textwrap
from functools import cache
from pathlib import Path

# Black and dark grey with distinct dashes: survives greyscale printing.
STYLES = ({"color": "black", "linestyle": "-"}, {"color": "0.45", "linestyle": "--"},
          {"color": "0.25", "linestyle": ":"}, {"color": "0.6", "linestyle": "-."})
CENSOR_MARKERS = ("+", "x", "|", "1")
MARKERS = ("o", "s", "^", "D", "v", "P")
FORMATS = ("png", "svg", "pdf")
#: Figure files written when the caller names none: PNG only (SVG and PDF are opt-in).
DEFAULT_FORMATS = "png"
#: Salt of the ids in SVG files: fixed, so that the same figure gives the same bytes.
SVG_HASHSALT = "causal_hcc"
DPI = 150
#: zlib level of the PNG files: 1 encodes these flat-colour figures in about a third of the
#: time of the default 6, for files about 4% larger.
PNG_COMPRESS_LEVEL = 1
#: FreeType hinting of the raster (PNG) text. Matplotlib 3.11 renders text glyph by glyph
#: and hinting ("default") was 15% of the CPU time of the eight adjust figures (3.69 s
#: hinted, 3.14 s unhinted, warm, this machine); unhinted glyphs at :data:`DPI` are as
#: legible, and SVG and PDF text is never hinted.
TEXT_HINTING = "no_hinting"
#: Height (inches) kept under the axes for the provenance footer.
FOOTER_IN = 0.32
#: Width of one character of a sans-serif label, in points per point of font size: an
#: upper bound of DejaVu Sans' mean advance, so estimated margins never clip a label.
CHAR_WIDTH = 0.6


def text_width_in(texts, fontsize: float = 8.0) -> float:
    """Estimated width (inches) of the longest line of ``texts`` at ``fontsize`` points,
    from its character count (no text extents measured)."""
    longest = max((len(line) for t in texts for line in str(t).split("\n")), default=0)
    return longest * fontsize * CHAR_WIDTH / 72.0


def fixed_figure(width: float, height: float, *, left: float = 0.8, right: float = 0.2,
                 top: float = 0.45, bottom: float = 0.55):
    """A figure of ``width`` x ``height`` inches whose subplot area leaves the given
    margins (inches); ``bottom`` is above the provenance footer."""
    from matplotlib.figure import Figure  # imported when a figure is made, not before
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width,
                        top=1 - top / height, bottom=(bottom + FOOTER_IN) / height)
    return fig


def new_axes(ax, figsize=(7.0, 5.2), *, left: float = 0.8, right: float = 0.2,
             top: float = 0.45, bottom: float = 0.55):
    """``(figure, axes)``: the given axes' figure, or a new fixed-layout figure with one
    axes and the given margins (inches)."""
    if ax is not None:
        return ax.figure, ax
    fig = fixed_figure(*figsize, left=left, right=right, top=top, bottom=bottom)
    return fig, fig.add_subplot()


def add_provenance(fig, provenance: str, width: int = 110) -> None:
    """The provenance line (e.g. RECONSTRUCTED PSEUDO-DATA) at the foot of the figure."""
    if provenance:
        width = max(width, int(fig.get_figwidth() * 72 / (6.5 * CHAR_WIDTH)) - 4)
        fig.text(0.5, 0.04 / fig.get_figheight(), textwrap.fill(provenance, width),
                 fontsize=6.5, color="0.3", ha="center", va="bottom")


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


def save_figure(fig, stem: str | Path, formats=DEFAULT_FORMATS) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format (default PNG only); returns the
    paths written.

    Notes
    -----
    The files are reproducible: the same figure gives the same bytes. Matplotlib writes
    the date into SVG and PDF metadata and random ids into SVG unless told otherwise, so
    the date is left out (``metadata={"Date": None}`` / ``CreationDate``) and the SVG id
    salt is fixed (``svg.hashsalt``). PNG goes through Agg with no timestamp, at zlib
    level :data:`PNG_COMPRESS_LEVEL`, with unhinted text (:data:`TEXT_HINTING`), as grey,
    RGB or RGBA, whichever holds the pixels exactly (:func:`png_mode`).
    """
    import matplotlib
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in parse_formats(formats):
        path = stem.with_suffix(f".{fmt}")
        metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None},
                    "png": {}}[fmt]
        extra = {"pil_kwargs": {"compress_level": PNG_COMPRESS_LEVEL}} if fmt == "png" else {}
        # PNG through :func:`_png_canvas`, swapped in for this one file and then taken
        # out again, as matplotlib does with the canvas of any other format (a pyplot
        # figure keeps its window's canvas).
        own = fig.canvas
        if fmt == "png":
            _png_canvas()(fig)                # attaches itself as the figure's canvas
        try:
            with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT,
                                        "text.hinting": TEXT_HINTING}):
                fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata, **extra)
        finally:
            fig.set_canvas(own)
        paths.append(path)
    return paths


def png_mode(rgba) -> str:
    """The smallest PNG colour type that holds the (h, w, 4) uint8 image ``rgba`` exactly:
    "L" (8-bit grey) when it is opaque and every pixel has R = G = B, "RGB" when it is
    opaque, else "RGBA"."""
    import numpy as np
    rgba = np.asarray(rgba)
    if not np.all(rgba[..., 3] == 255):
        return "RGBA"
    r, g, b = rgba[..., 0], rgba[..., 1], rgba[..., 2]
    return "L" if np.array_equal(r, g) and np.array_equal(g, b) else "RGB"


@cache
def _png_canvas():
    """Matplotlib's Agg canvas, writing PNG in :func:`png_mode`'s colour type (a class
    made on first use: this module is imported by commands that draw nothing).

    Matplotlib always writes RGBA; these figures are greyscale and opaque, and zlib
    compresses a quarter of the bytes in about a third of the time (the eight adjust
    figures: 396 ms of encoding as RGBA, 116 ms as grey, files half the size). The
    pixels, the ``Software`` text and the resolution are those matplotlib writes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    class PngCanvas(FigureCanvasAgg):
        def print_png(self, filename_or_obj, *, metadata=None, pil_kwargs=None,
                      **_figure_settings):
            # print_figure passes dpi, facecolor, edgecolor, orientation and
            # bbox_inches_restore to print methods outside matplotlib; it has set them
            # on the figure already (its own print_png drops them as well).
            import matplotlib
            import numpy as np
            from PIL import Image, PngImagePlugin
            FigureCanvasAgg.draw(self)
            rgba = np.asarray(self.buffer_rgba())
            mode = png_mode(rgba)
            pixels = rgba[..., 0] if mode == "L" else rgba[..., :3] if mode == "RGB" else rgba
            info = PngImagePlugin.PngInfo()
            for key, value in {"Software": f"Matplotlib version{matplotlib.__version__}, "
                               "https://matplotlib.org/", **(metadata or {})}.items():
                if value is not None:
                    info.add_text(key, value)
            kwargs = {"dpi": (self.figure.dpi, self.figure.dpi), **(pil_kwargs or {})}
            Image.fromarray(np.ascontiguousarray(pixels), mode).save(
                filename_or_obj, format="png", pnginfo=info, **kwargs)

    return PngCanvas


def fixed_title(ax, text: str, **kwargs):
    """``ax.set_title`` at a fixed height (y = 1): matplotlib otherwise searches, at every
    draw, for a title position clear of the axes' decorations (a tight-bbox pass)."""
    kwargs.setdefault("y", 1.0)
    return ax.set_title(text, **kwargs)
