"""Figures of the survival, propensity and effect results.

Functions take result objects (and an optional ``ax``), draw what the result already
holds, and return the figure; they compute nothing a table does not hold. Names of arms,
outcome and time come from the caller (the cohort's labels), never from a study. The
curves are in :mod:`.curves_plots`, the balance figures in :mod:`.balance_plots` and the
sensitivity figures in :mod:`.sensitivity_plots` (all re-exported here).
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from causal_hcc.reporting.balance_plots import (
    plot_love,
    plot_overlap,
    plot_overlap_panels,
    plot_weights,
)
from causal_hcc.reporting.curves_plots import nice_step, plot_km
from causal_hcc.reporting.sensitivity_plots import (
    plot_specification_curve,
    plot_subgroups,
    plot_tipping_point,
)
from causal_hcc.reporting.style import (
    add_provenance,
    fixed_title,
    hr_log_axis,
    new_axes,
    p_text,
    text_width_in,
)

#: Above this many points a scatter plot becomes a 2-D histogram (hexagonal bins).
SCATTER_MAX_POINTS = 5000

__all__ = ["nice_step", "plot_forest", "plot_km", "plot_love", "plot_overlap",
           "plot_overlap_panels", "plot_scatter",
           "plot_specification_curve", "plot_subgroups", "plot_tipping_point", "plot_weights"]


def plot_scatter(x, y, *, r: float, p_value: float, xlabel: str, ylabel: str,
                 line: tuple[float, float] | None = None, title: str = "",
                 published: str = "", provenance: str = "", ax=None) -> Figure:
    """Scatter plot with the correlation (computed by the caller) and an optional line.

    Parameters
    ----------
    r, p_value : float
        The correlation and its P value, as the caller computed them.
    line : (intercept, slope), optional
        A fitted straight line to draw over the range of ``x``.
    published : str, optional
        A published value printed beside the reproduced one.

    Notes
    -----
    Above :data:`SCATTER_MAX_POINTS` points the points are binned (hexagonal 2-D
    histogram, grey scale by count), so the figure's cost does not grow with n.
    """
    fig, ax = new_axes(ax, figsize=(6.0, 5.0))
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size > SCATTER_MAX_POINTS:
        ax.hexbin(x, y, gridsize=60, cmap="Greys", mincnt=1, linewidths=0)
    else:
        ax.plot(x, y, "o", color="black", markerfacecolor="none")
    if line is not None and x.size:
        intercept, slope = line
        ends = np.array([x.min(), x.max()])
        ax.plot(ends, intercept + slope * ends, color="0.4", linestyle="--")
    label = f"r = {r:.3f}, {p_text(p_value)} (n = {x.size})"
    if published:
        label += f"\npublished: {published}"
    ax.text(0.03, 0.95, label, transform=ax.transAxes, va="top", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        fixed_title(ax, title)
    add_provenance(fig, provenance)
    return fig


def plot_forest(estimates, *, ax=None, provenance: str = "", published=None,
                comparison: str = "treated vs control (reference)",
                title: str = "") -> Figure:
    """Forest plot of HRs with Wald CIs (and bootstrap CIs as dashed whiskers).

    Parameters
    ----------
    estimates : sequence of EffectEstimate
    published : (label, hr, lower, upper), optional
        A published estimate drawn as the first row for comparison.
    comparison : str
        What the HR compares, e.g. ``EffectsReport.comparison``; its first arm is the one
        an HR below 1 favours.
    """
    # The names and number style of the report's estimand table ('IPTW (ATE)',
    # '0.50 (0.21–1.22)'), the HR and CI in a column right of the axes.
    from causal_hcc.reporting.format import hr_ci
    from causal_hcc.reporting.sections_answer import estimate_name
    rows = [(estimate_name(e), e) for e in estimates if e.estimable]
    texts = [name for name, _ in rows] + ([published[0]] if published else [])
    n_rows = len(rows) + bool(published)
    fig, ax = new_axes(ax, figsize=(7.6, 1.9 + 0.36 * n_rows),
                       left=max(0.8, text_width_in(texts, 8) + 0.2), right=1.45,
                       bottom=0.75)
    y = n_rows
    labels, values = [], []
    if published:
        label, hr, lo, hi = published
        y -= 1
        ax.errorbar(hr, y, xerr=[[hr - lo], [hi - hr]], fmt="D", color="0.45", capsize=3)
        labels.append((y, label))
        values.append((y, hr_ci(hr, lo, hi)))
    for name, e in rows:
        y -= 1
        ax.errorbar(e.hr, y, xerr=[[e.hr - e.ci_lower], [e.ci_upper - e.hr]], fmt="s",
                    color="black", capsize=3)
        if e.boot_ci_lower is not None:
            ax.plot([e.boot_ci_lower, e.boot_ci_upper], [y - 0.22] * 2, color="0.5",
                    linestyle="--", linewidth=1)
        labels.append((y, name))
        values.append((y, hr_ci(e.hr, e.ci_lower, e.ci_upper)))
    for pos, text in values:
        ax.annotate(text, (1.0, pos), xycoords=("axes fraction", "data"),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    hr_log_axis(ax)
    ax.set_yticks([p for p, _ in labels], [t for _, t in labels], fontsize=8)
    favoured = comparison.split(" vs ")[0]
    ax.set_xlabel(textwrap.fill(f"HR (log scale); < 1 favours {favoured}; dashed: "
                                "bootstrap 95% CI", 80))
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(y - 0.7 if labels else 0, n_rows - 0.3)
    fixed_title(ax, textwrap.fill(title or f"Hazard ratio, {comparison}", 70), fontsize=10)
    add_provenance(fig, provenance)
    return fig
