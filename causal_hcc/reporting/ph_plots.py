"""The proportional-hazards figure: scaled Schoenfeld residuals of the treatment term, one
panel per model (R ``plot(cox.zph(fit))``), computed in :mod:`causal_hcc.effects.ph`.

A flat smooth around the fitted log HR means proportional hazards; a trend means the HR
changes over follow-up, and the weighted HR is then an average over it.
"""

from __future__ import annotations

import math

import numpy as np

from causal_hcc.reporting.format import p_value
from causal_hcc.reporting.style import add_provenance, fixed_figure

#: At most this many residuals drawn per panel: beyond it every k-th (in time order) is
#: drawn and the panel says so; the smooth and the test use them all.
MAX_POINTS = 2000

#: lowess span of the smooth (statsmodels' frac; R's plot.cox.zph uses a spline).
SMOOTH_FRAC = 0.6


def _smooth(t, y):
    """lowess of y on t (deterministic: no robustness iterations); None when too few."""
    if t.size < 6:
        return None
    from statsmodels.nonparametric.smoothers_lowess import lowess
    fit = lowess(y, t, frac=SMOOTH_FRAC, it=0, return_sorted=True)
    return fit[:, 0], fit[:, 1]


def plot_schoenfeld(checks, *, time_label: str = "Time", provenance: str = "",
                    columns: int = 3):
    """Scaled Schoenfeld residuals vs time, one panel per model with residuals.

    Parameters
    ----------
    checks : sequence of PHCheck
        From :func:`causal_hcc.effects.ph.ph_checks` (stratified models have no residuals
        and get no panel).
    time_label : str
        The x axis (e.g. "Months since diagnosis").
    provenance : str
        The data's provenance line under the figure.

    Returns
    -------
    matplotlib Figure or None (no model with residuals).
    """
    shown = [c for c in checks if c.residual.size]
    if not shown:
        return None
    cols = min(columns, len(shown))
    rows = math.ceil(len(shown) / cols)
    # A fixed layout (margins in inches): constrained layout measured every text of the
    # up to 18 panels and cost seconds per file.
    width, height = 3.0 * cols + 0.4, 2.3 * rows + 0.9
    fig = fixed_figure(width, height, left=0.75, right=0.15, top=0.55, bottom=0.45)
    fig.subplots_adjust(hspace=0.75, wspace=0.35)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, check in zip(axes.ravel(), shown):
        step = max(1, math.ceil(check.time.size / MAX_POINTS))
        ax.scatter(check.time[::step], check.residual[::step], s=8, color="0.45",
                   linewidths=0, rasterized=step > 1)
        smooth = _smooth(check.time, check.residual)
        if smooth is not None:
            ax.plot(*smooth, color="black", linewidth=1.4)
        ax.axhline(check.coef, color="black", linestyle="--", linewidth=0.9)
        ax.axhline(0.0, color="0.7", linewidth=0.7)
        thinned = f"; every {step}th point drawn" if step > 1 else ""
        ax.set_title(f"{check.label}\nPH test {p_value(check.p)}{thinned}", fontsize=8)
        ax.tick_params(labelsize=7)
        lo, hi = np.percentile(check.residual, [2, 98])
        pad = 0.15 * (hi - lo + 1e-9)
        ax.set_ylim(min(lo, check.coef) - pad, max(hi, check.coef) + pad)
    for ax in axes.ravel()[len(shown):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("Beta(t) of treatment\n(log HR)", fontsize=7)
    for ax in axes[-1, :]:
        ax.set_xlabel(time_label, fontsize=7)
    fig.suptitle("Proportional hazards: scaled Schoenfeld residuals (dashed: fitted "
                 "log HR; line: lowess)", fontsize=9)
    add_provenance(fig, provenance)
    return fig
