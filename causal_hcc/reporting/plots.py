"""Figures of the survival, propensity and effect results.

Functions take result objects (and an optional ``ax``), draw what the result already
holds, and return the figure; they compute nothing a table does not hold. Names of arms,
outcome and time come from the caller (the cohort's labels), never from a study. The
sensitivity figures are in :mod:`causal_hcc.reporting.sensitivity_plots` (re-exported here).
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from causal_hcc.reporting.sensitivity_plots import (
    plot_specification_curve,
    plot_subgroups,
    plot_tipping_point,
)
from causal_hcc.reporting.style import (
    CENSOR_MARKERS,
    MARKERS,
    STYLES,
    add_provenance,
    hr_log_axis,
    new_axes,
    p_text,
)

__all__ = ["nice_step", "plot_forest", "plot_km", "plot_love", "plot_overlap", "plot_scatter",
           "plot_specification_curve", "plot_subgroups", "plot_tipping_point", "plot_weights"]

NICE_STEPS = (1, 2, 3, 5, 6, 10, 12, 20, 24, 25, 30, 50, 60, 100, 120, 200, 250, 500, 1000,
              2000, 2500, 5000, 10000)


def nice_step(horizon: float, max_intervals: int = 10) -> float:
    """The smallest round step that cuts ``[0, horizon]`` into at most ``max_intervals``."""
    for step in NICE_STEPS:
        if horizon / step <= max_intervals:
            return float(step)
    return float(10 ** np.ceil(np.log10(horizon / max_intervals)))


def _step_xy(km):
    """KM step coordinates starting at (0, 1)."""
    return np.r_[0.0, km.time], np.r_[1.0, km.surv]


def _horizon(curves) -> float:
    return max((float(km.time.max()) for km in curves if km.time.size), default=1.0)


def plot_km(curves, *, title: str = "", ax=None, ci: bool = False, log_rank=None,
            risk_times=None, provenance: str = "", xlabel: str = "Time",
            ylabel: str = "Survival probability") -> Figure:
    """Kaplan-Meier curves with censoring marks, optional CI bands and a risk table.

    Parameters
    ----------
    curves : sequence of KaplanMeier
        One curve per group, drawn in order (first solid black), labelled with its label.
    ax : matplotlib Axes, optional
        Draw into this axes (the number-at-risk table is then left out).
    ci : bool
        Shade each curve's pointwise CI (the curve's own ``conf_type``).
    log_rank : LogRank, optional
        Printed in the plot (chi-square, df, P).
    risk_times : sequence of float, optional
        Times (the data's unit) of the number-at-risk table; default a round step
        (:func:`nice_step`) over the follow-up.
    provenance : str
        Data provenance printed under the figure.
    xlabel, ylabel : str
        Axis labels, e.g. ``Labels.time_axis`` ("Days of follow-up").
    """
    curves = list(curves)
    if risk_times is None:
        horizon = _horizon(curves)
        risk_times = np.arange(0.0, horizon + 1e-9, nice_step(horizon))
    times = np.asarray(risk_times, float)
    risk_ax = None
    if ax is None:
        fig = Figure(figsize=(7.5, 5.4 + 0.28 * len(curves)), layout="constrained")
        grid = fig.add_gridspec(2, 1, height_ratios=[5.0, 0.45 + 0.3 * len(curves)])
        ax = fig.add_subplot(grid[0])
        risk_ax = fig.add_subplot(grid[1], sharex=ax)
    else:
        fig = ax.figure
    for i, km in enumerate(curves):
        _draw_curve(ax, km, i, ci)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0, right=max(times[-1], _horizon(curves)) * 1.02)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", frameon=False, fontsize=9,
              title="markers: censored" if curves else None, title_fontsize=8)
    if log_rank is not None:
        ax.text(0.02, 0.04, _log_rank_text(log_rank), transform=ax.transAxes, fontsize=9)
    if title:
        ax.set_title(title)
    ax.set_xticks(times)
    if risk_ax is None:
        ax.set_xlabel(xlabel)
    else:
        ax.tick_params(labelbottom=True)
        _risk_table(risk_ax, curves, times, xlabel)
    add_provenance(fig, provenance)
    return fig


def _draw_curve(ax, km, i: int, ci: bool) -> None:
    style = STYLES[i % len(STYLES)]
    x, y = _step_xy(km)
    ax.step(x, y, where="post", linewidth=1.8, label=f"{km.label} (n={km.n})", **style)
    if ci:
        # No CI where S is 1 or 0 (log-log scale): the band collapses onto the curve.
        lo = np.r_[1.0, np.where(np.isnan(km.lower), km.surv, km.lower)]
        hi = np.r_[1.0, np.where(np.isnan(km.upper), km.surv, km.upper)]
        ax.fill_between(x, lo, hi, step="post", alpha=0.15, color=style["color"], linewidth=0)
    cens = km.n_censor > 0
    ax.plot(km.time[cens], km.surv[cens], linestyle="none",
            marker=CENSOR_MARKERS[i % len(CENSOR_MARKERS)], markersize=7, color=style["color"])


def _log_rank_text(test) -> str:
    if not getattr(test, "estimable", True):
        return f"Log-rank: not estimable ({test.reason})"
    return f"Log-rank \u03c7\u00b2 = {test.chisq:.2f}, df = {test.df}, {p_text(test.p)}"


def _risk_table(ax, curves, times, xlabel: str) -> None:
    """Number at risk in its own axes under the curves, one row per curve."""
    rows = np.arange(len(curves))[::-1]
    for row, km in zip(rows, curves):
        for t, n in zip(times, km.n_at_risk(times)):
            ax.text(t, row, str(int(n)), ha="center", va="center", fontsize=8)
    ax.set_ylim(-0.6, len(curves) - 0.4)
    ax.set_yticks(rows, [km.label for km in curves], fontsize=8)
    ax.tick_params(axis="y", length=0, pad=16)  # keep labels clear of the t = 0 counts
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title("Number at risk", fontsize=8, loc="left")
    ax.set_xlabel(xlabel)


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
    """
    fig, ax = new_axes(ax, figsize=(6.0, 5.0))
    x, y = np.asarray(x, float), np.asarray(y, float)
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
        ax.set_title(title)
    add_provenance(fig, provenance)
    return fig


def plot_love(balances: dict, *, threshold: float = 0.1, ax=None, provenance: str = "",
              title: str = "Covariate balance (love plot)") -> Figure:
    """|SMD| per covariate before adjustment and after each method.

    Parameters
    ----------
    balances : dict
        Method name -> BalanceTable (all on the same covariates).
    """
    tables = list(balances.items())
    first = tables[0][1].rows
    names = [f"{v}" + (f" = {lv}" if isinstance(lv, str) and lv else "")
             for v, lv in zip(first["variable"], first["level"])]
    fig, ax = new_axes(ax, figsize=(7.0, 1.2 + 0.32 * len(names)))
    y = np.arange(len(names))[::-1]
    ax.plot(np.abs(first["smd_before"]), y, linestyle="none", marker="o", color="black",
            markerfacecolor="none", markersize=7, label="unadjusted")
    for i, (name, table) in enumerate(tables):
        ax.plot(np.abs(table.rows["smd_after"]), y, linestyle="none",
                marker=MARKERS[(i + 1) % len(MARKERS)], color=STYLES[i % len(STYLES)]["color"],
                markersize=6, label=f"{name} (max {table.max_abs_smd:.2f})")
    ax.axvline(threshold, color="0.5", linestyle="--", linewidth=1)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel(f"|standardised mean difference| (threshold {threshold:g})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_title(title)
    add_provenance(fig, provenance)
    return fig


def plot_overlap(propensity, *, weights=None, arm_labels=("treated", "control"), ax=None,
                 provenance: str = "", bins: int = 20,
                 title: str = "Propensity score overlap") -> Figure:
    """Mirrored histograms of the PS: treated above the axis, controls below.

    With ``weights`` (a Weights or MatchedSample), the weighted histogram is drawn as an
    outline over the unweighted one. ``arm_labels`` is (treated, control).
    """
    fig, ax = new_axes(ax, figsize=(7.0, 4.5))
    ps, treated = np.asarray(propensity.ps), np.asarray(propensity.treated) == 1
    edges = np.linspace(0, 1, bins + 1)
    h1, _ = np.histogram(ps[treated], edges)
    h0, _ = np.histogram(ps[~treated], edges)
    width = np.diff(edges)
    ax.bar(edges[:-1], h1, width, align="edge", color="0.35", label=arm_labels[0])
    ax.bar(edges[:-1], -h0, width, align="edge", color="0.75", hatch="//",
           label=arm_labels[1])
    if weights is not None:
        w = np.asarray(weights.weights, float)
        w1, _ = np.histogram(ps[treated], edges, weights=w[treated])
        w0, _ = np.histogram(ps[~treated], edges, weights=w[~treated])
        ax.step(edges[:-1], w1, where="post", color="black", linewidth=1.5,
                label="weighted / matched")
        ax.step(edges[:-1], -w0, where="post", color="black", linewidth=1.5)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"Propensity score (probability of {arm_labels[0]})")
    ax.set_ylabel(f"patients ({arm_labels[1]} below 0)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title)
    add_provenance(fig, provenance)
    return fig


def plot_weights(weights: dict, *, arm_labels=("treated", "control"), ax=None,
                 provenance: str = "", title: str = "Weight distribution") -> Figure:
    """Box plots of the weights per estimand and arm (log scale)."""
    fig, ax = new_axes(ax, figsize=(7.0, 4.0))
    data, labels = [], []
    for name, w in weights.items():
        for arm, arm_label in ((1, arm_labels[0]), (0, arm_labels[1])):
            sel = (np.asarray(w.treated) == arm) & (np.asarray(w.weights) > 0)
            data.append(np.asarray(w.weights)[sel])
            labels.append(f"{name}\n{arm_label}")
    ax.boxplot(data, tick_labels=labels, patch_artist=False)
    ax.set_yscale("log")
    ax.set_ylabel("weight (log scale)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title)
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
    rows = [(f"{e.method}" + (f" ({e.estimand})" if e.estimand else ""), e) for e in estimates
            if e.estimable]
    fig, ax = new_axes(ax, figsize=(7.0, 1.4 + 0.42 * (len(rows) + bool(published))))
    y = len(rows) + bool(published)
    labels = []
    if published:
        label, hr, lo, hi = published
        y -= 1
        ax.errorbar(hr, y, xerr=[[hr - lo], [hi - hr]], fmt="D", color="0.45", capsize=3)
        labels.append((y, label))
    for name, e in rows:
        y -= 1
        ax.errorbar(e.hr, y, xerr=[[e.hr - e.ci_lower], [e.ci_upper - e.hr]], fmt="s",
                    color="black", capsize=3)
        if e.boot_ci_lower is not None:
            ax.plot([e.boot_ci_lower, e.boot_ci_upper], [y - 0.22] * 2, color="0.5",
                    linestyle="--", linewidth=1)
        labels.append((y, f"{name}: {e.hr:.2f} ({e.ci_lower:.2f}-{e.ci_upper:.2f})"))
    hr_log_axis(ax)
    ax.set_yticks([p for p, _ in labels], [t for _, t in labels], fontsize=8)
    favoured = comparison.split(" vs ")[0]
    ax.set_xlabel(textwrap.fill(f"HR (log scale); < 1 favours {favoured}; dashed: "
                                "bootstrap 95% CI", 80))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or f"Hazard ratio, {comparison}")
    add_provenance(fig, provenance)
    return fig
