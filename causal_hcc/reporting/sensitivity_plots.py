"""Figures of the sensitivity analyses: specification curve, tipping points, subgroups.

Like :mod:`causal_hcc.reporting.plots`, each function takes a result object, draws what it
holds and returns the figure. ``comparison`` names the arms ("A vs B (reference)").
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from causal_hcc.reporting.style import (
    FOOTER_IN,
    MARKERS,
    STYLES,
    add_provenance,
    fixed_figure,
    fixed_title,
    hr_log_axis,
    new_axes,
    text_width_in,
)

SPEC_CHOICES = ("family", "covariate_set", "caliper", "ratio", "replacement", "order",
                "weights", "stabilized", "truncation", "trimming")


def _choice_levels(rows, columns):
    """(column, level) pairs present in the rows, in order of first appearance."""
    pairs = []
    for col in columns:
        for level in dict.fromkeys(rows[col].astype(str)):
            if level not in ("", "nan"):
                pairs.append((col, level))
    return pairs


def plot_specification_curve(grid, *, ax=None, provenance: str = "", choices=SPEC_CHOICES,
                             comparison: str = "", title: str = "",
                             balance_threshold: float = 0.1) -> Figure:
    """HRs of every estimable specification, sorted, with CIs, the choices beneath and the
    median HR per level of each choice beside them.

    Parameters
    ----------
    grid : SpecificationGrid
        From :func:`causal_hcc.sensitivity.grid.specification_grid`.
    ax : matplotlib Axes, optional
        Draw only the curve into this axes (no dot matrix of choices).
    provenance : str
        Data provenance printed under the figure.
    choices : sequence of str
        Choice columns shown as rows of the dot matrix.
    comparison : str
        What the HR compares (default the grid's ``comparison``, if it has one).
    balance_threshold : float
        Specifications whose max |SMD| over the PS covariates is at most this are shaded
        as balanced.

    Notes
    -----
    Top: HR (log scale) with its 95% CI per specification, sorted by HR; the marker shape
    is the method (family and estimand), filled where the CI excludes 1, open where it
    includes 1; large diamonds are the package's default analyses; grey columns mark the
    balanced specifications. Bottom left: one row per choice level, a mark where the
    specification uses it. Bottom right: the median HR (and interquartile range) of the
    specifications at each level: the choice whose levels differ most moves the HR.
    Specifications that are not estimable are counted in the title, not drawn.
    """
    comparison = comparison or getattr(grid, "comparison", "")
    title = title or "Specification curve: HR" + (f", {comparison}" if comparison else "")
    choices = [c for c in choices if c in grid.estimable_rows]
    pairs = _choice_levels(grid.estimable_rows, choices)   # levels in the grid's order
    rows = grid.estimable_rows.sort_values("hr", kind="stable").reset_index(drop=True)
    x = np.arange(len(rows))
    matrix_ax = median_ax = None
    if ax is None:
        fig, ax, matrix_ax, median_ax = _spec_layout(pairs)
    else:
        fig = ax.figure
    hr, lo, hi = (rows[c].to_numpy(float) for c in ("hr", "ci_lower", "ci_upper"))
    balanced = (rows["max_abs_smd"].to_numpy(float) <= balance_threshold
                if "max_abs_smd" in rows else np.zeros(len(rows), bool))
    if balanced.any():
        ax.fill_between(x, 0, 1, where=balanced, step="mid", color="0.86", linewidth=0,
                        transform=ax.get_xaxis_transform(), zorder=0,
                        label=f"balanced (max |SMD| <= {balance_threshold:g})")
    ax.vlines(x, lo, hi, color="0.65", linewidth=0.6)
    _method_points(ax, rows, x, hr, (hi < 1) | (lo > 1))
    default = (rows["is_default"].to_numpy(bool) if "is_default" in rows
               else np.zeros(len(rows), bool))
    ax.plot(x[default], hr[default], "D", color="black", markerfacecolor="none",
            markersize=8, markeredgewidth=1.2, label="default analyses")
    ax.axhline(1.0, color="black", linewidth=0.9, linestyle="--")
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis, float(np.nanmin(lo)), float(np.nanmax(hi)))
    ax.set_ylabel("HR (log scale), 95% CI")
    ax.set_xlim(-1, max(len(x), 1))
    ax.grid(axis="y", alpha=0.3)
    if matrix_ax is None:
        ax.legend(fontsize=7, frameon=False, loc="upper left", ncol=2)
    else:   # beside the curve, above the medians panel
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n_all = grid.n_specifications
    fixed_title(ax, f"{title}\n" + textwrap.fill(
        f"{len(rows)} of {n_all} specifications estimable (the others are not drawn). "
        f"{grid.headline()}", 120), fontsize=9.5, loc="left")
    if matrix_ax is None:
        ax.set_xlabel("specification (sorted by HR)")
    else:
        ax.tick_params(labelbottom=False)
        _choice_matrix(matrix_ax, rows, pairs, x)
        _choice_medians(median_ax, rows, pairs)
    add_provenance(fig, provenance, 140)
    return fig


def _spec_layout(pairs):
    """Fixed layout: curve on top, choice matrix below, medians per level to its right."""
    labels = [f"{col.replace('_', ' ')}: {level}" for col, level in pairs]
    left = max(1.0, text_width_in(labels, 7) + 0.25)
    width, curve_h, row_h = 12.0, 3.4, 0.17
    matrix_h = row_h * len(pairs) + 0.3
    top, gap, xlab = 0.75, 0.1, 0.45
    height = top + curve_h + gap + matrix_h + xlab + FOOTER_IN + 0.05
    median_w, right = 2.6, 0.15
    main_w = width - left - median_w - right - 0.15
    fig = Figure(figsize=(width, height))

    def box(x0, y_top, w, h):
        return [x0 / width, 1 - (y_top + h) / height, w / width, h / height]

    ax = fig.add_axes(box(left, top, main_w, curve_h))
    matrix_ax = fig.add_axes(box(left, top + curve_h + gap, main_w, matrix_h), sharex=ax)
    # Not sharey: a shared axis would build a tick per choice level here as well.
    median_ax = fig.add_axes(box(left + main_w + 0.15, top + curve_h + gap, median_w,
                                 matrix_h))
    return fig, ax, matrix_ax, median_ax


def _method_of(rows) -> np.ndarray:
    """'family (estimand)' of each specification: the method the marker shows."""
    family = rows["family"].astype(str) if "family" in rows else pd.Series("", rows.index)
    estimand = rows["estimand"].fillna("").astype(str) if "estimand" in rows else ""
    return (family + np.where(estimand != "", " (" + estimand + ")", "")).to_numpy()


def _method_points(ax, rows, x, hr, excl) -> None:
    """One marker shape per method; filled where the CI excludes 1, open where not."""
    methods = _method_of(rows)
    for i, method in enumerate(dict.fromkeys(methods)):
        sel = methods == method
        marker = MARKERS[i % len(MARKERS)]
        ax.plot(x[sel & excl], hr[sel & excl], marker, color="black", markersize=3,
                linestyle="none")
        ax.plot(x[sel & ~excl], hr[sel & ~excl], marker, color="black",
                markerfacecolor="white", markersize=3, markeredgewidth=0.6,
                linestyle="none")
        ax.plot([], [], marker, color="black", markersize=5, linestyle="none", label=method)
    ax.plot([], [], "o", color="black", markersize=5, linestyle="none",
            label="filled: 95% CI excludes 1")
    ax.plot([], [], "o", color="black", markerfacecolor="white", markersize=5,
            linestyle="none", label="open: 95% CI includes 1")


def _plain_log_ticks(axis, low: float, high: float) -> None:
    """HR ticks as plain numbers (0.25, 1, 4), not powers of ten, on a log axis."""
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 20, 50, 100)
             if low / 1.5 <= t <= high * 1.5] or [1]
    axis.set_ticks(ticks, [f"{t:g}" for t in ticks])
    axis.set_minor_locator(NullLocator())


def choice_medians(rows, pairs) -> pd.DataFrame:
    """Median HR and its quartiles over the specifications at each (choice, level)."""
    out = []
    for col, level in pairs:
        hr = rows.loc[rows[col].astype(str).to_numpy() == level, "hr"].to_numpy(float)
        q = np.quantile(hr, [0.25, 0.5, 0.75]) if hr.size else [np.nan] * 3
        out.append({"choice": col, "level": level, "n": hr.size, "q1": q[0],
                    "median": q[1], "q3": q[2]})
    return pd.DataFrame(out, columns=["choice", "level", "n", "q1", "median", "q3"])


def _choice_medians(ax, rows, pairs) -> None:
    """Median HR (IQR) per level, on the matrix's rows: which choice moves the HR."""
    table = choice_medians(rows, pairs)
    y = np.arange(len(pairs))[::-1]
    ax.hlines(y, table["q1"], table["q3"], color="0.55", linewidth=1.2)
    ax.plot(table["median"], y, "o", color="black", markersize=3.5)
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis, float(np.nanmin(table["q1"])), float(np.nanmax(table["q3"])))
    ax.set_ylim(-0.6, len(pairs) - 0.4)
    ax.yaxis.set_major_locator(NullLocator())
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    fixed_title(ax, "median HR (IQR) per level", fontsize=8)
    ax.set_xlabel("HR (log scale)", fontsize=8)


def _choice_matrix(ax, rows, pairs, x) -> None:
    """Dot matrix: one row per (choice, level), a mark where the specification uses it."""
    y = np.arange(len(pairs))[::-1]
    shade = False
    previous = None
    for (col, level), yy in zip(pairs, y):
        if col != previous:
            shade = not shade
            previous = col
        if shade:
            ax.axhspan(yy - 0.5, yy + 0.5, color="0.93", linewidth=0)
        used = rows[col].astype(str).to_numpy() == level
        ax.plot(x[used], np.full(used.sum(), yy), "|", color="black", markersize=4,
                markeredgewidth=0.5)
    ax.set_yticks(y, [f"{col.replace('_', ' ')}: {level}" for col, level in pairs],
                  fontsize=7)
    ax.set_ylim(-0.6, len(pairs) - 0.4)
    ax.set_xlim(-1, max(len(x), 1))
    ax.set_xlabel("specification (sorted by HR)")
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plot_tipping_point(contour_or_grid, benchmarks=None, *, ax=None, provenance: str = "",
                       title: str = "", crude=None) -> Figure:
    """Where an unmeasured binary confounder would move the HR (or its CI) to 1.

    Parameters
    ----------
    contour_or_grid : TippingPointContour or TippingPointGrid
        A contour: one line per HR_U of the prevalence among treated (p1) at which the
        target reaches 1, against the prevalence among untreated (p0). A grid: the same
        lines drawn as the level-1 contour of the corrected CI limit on its (p0, p1) lattice.
    benchmarks : ConfounderBenchmarks, optional
        Observed confounders drawn as labelled points at their (p0, p1), with their HR
        with the outcome (HR_U); filled when imbalanced as observed, open when reversed; a star
        when a confounder that strong would move the CI to include 1.
    ax : matplotlib Axes, optional
    provenance : str
    title : str, optional
    crude : TippingPointContour, optional
        The same contour for the crude HR: drawn in a second panel beside the adjusted
        one (with ``ax``, ignored), so that the reader sees how strong a confounder must
        be to explain away the crude benefit as well as the adjusted one. The observed
        confounders are placed on it without stars (their stars refer to the adjusted HR).

    Notes
    -----
    Lin, Psaty & Kronmal (1998): HR_true = HR_obs / B, B = (1 + (HR_U - 1) p1) /
    (1 + (HR_U - 1) p0). On the diagonal p1 = p0 there is no bias. Each line's legend says
    on which side of it the confounder explains the HR away.
    """
    if ax is None:
        panels = 2 if crude is not None else 1
        fig = fixed_figure(1.0 + 5.6 * panels, 8.2, left=0.75, top=0.75, bottom=2.3)
        if panels == 2:
            fig.subplots_adjust(wspace=0.25)
        axes = fig.subplots(1, panels, squeeze=False)[0]
    else:
        fig, axes = ax.figure, [ax]
    _tipping_panel(axes[0], contour_or_grid, benchmarks, title, stars=True)
    if crude is not None and len(axes) > 1:
        _tipping_panel(axes[1], crude, benchmarks, "", stars=False, what_hr="crude HR")
    add_provenance(fig, provenance)
    return fig


def _tipping_panel(ax, obj, benchmarks, title: str, *, stars: bool,
                   what_hr: str = "HR") -> None:
    styles = ("-", "--", "-.", ":", (0, (5, 1)), (0, (1, 1)))
    if "p1_required" in obj.table:          # a TippingPointContour
        target, note = obj.target, obj.note
        for i, (h, part) in enumerate(obj.table.groupby("hr_u", sort=True)):
            ok = part[part["feasible"]]
            if ok.empty:
                continue
            side = "below" if ok["region"].iloc[0].startswith("p1 <=") else "above"
            ax.plot(ok["p0"], ok["p1_required"], color=STYLES[i % len(STYLES)]["color"],
                    linestyle=styles[i % len(styles)], linewidth=1.6,
                    label=f"HR_U {h:g}: {ok['confounder_type'].iloc[0]}; explained away "
                          f"{side} the line")
    else:
        target, note = "ci", ""
        table = obj.table
        limit_col = "ci_upper_corrected" if obj.hr < 1 else "ci_lower_corrected"
        for i, (h, part) in enumerate(table.groupby("hr_u", sort=True)):
            if h == 1:
                continue
            lattice = part.pivot_table(index="p1", columns="p0", values=limit_col)
            values = lattice.to_numpy(float)
            if not (np.nanmin(values) < 1 < np.nanmax(values)):
                continue
            ax.contour(lattice.columns.to_numpy(float), lattice.index.to_numpy(float),
                       values, levels=[1.0], colors=[STYLES[i % len(STYLES)]["color"]],
                       linestyles=[styles[i % len(styles)]], linewidths=1.6)
            ax.plot([], [], color=STYLES[i % len(STYLES)]["color"],
                    linestyle=styles[i % len(styles)], label=f"HR_U {h:g}")
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":",
            label="p1 = p0 (no bias)")
    if benchmarks is not None:
        _benchmark_points(ax, benchmarks, target, stars=stars)
    what = "upper 95% limit" if (target == "ci" and obj.hr < 1) else (
        "lower 95% limit" if target == "ci" else "point estimate")
    fixed_title(ax, title or f"Tipping points for {what_hr} {obj.hr:.2f} ({obj.ci_lower:.2f}-"
                 f"{obj.ci_upper:.2f}):\nlines where the corrected {what} reaches 1",
                 fontsize=10)
    if note:
        ax.text(0.5, 0.5, textwrap.fill(note, 45), transform=ax.transAxes, ha="center",
                va="center", fontsize=9, bbox={"facecolor": "white", "edgecolor": "0.5"})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("prevalence of the confounder among untreated patients (p0)")
    ax.set_ylabel("prevalence among treated patients (p1)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1),
              ncol=1)


def _benchmark_points(ax, benchmarks, target: str, stars: bool = True) -> None:
    """Observed confounders at (p0, p1); a star where one that strong reaches the target."""
    table = benchmarks.table
    table = table[table["estimable"].astype(bool)]
    column = "ci_includes_1" if target == "ci" else "point_explained_away"
    for r in table.itertuples():
        observed = r.imbalance == "as observed"
        hit = stars and bool(getattr(r, column))
        ax.plot(r.p0, r.p1, "*" if hit else "o", color="black",
                markersize=11 if hit else 7,
                markerfacecolor="black" if observed else "white")
        ax.annotate(f"{r.confounder}{'' if observed else ' (reversed)'}\nHR_U {r.hr_u:.2f}",
                    (r.p0, r.p1), textcoords="offset points", xytext=(6, -4), fontsize=7,
                    va="top")
    ax.plot([], [], "o", color="black", label="observed confounder (filled: as observed, "
            "open: reversed)")
    if stars:
        ax.plot([], [], "*", color="black", markersize=9,
                label="a confounder that strong and that imbalanced "
                      + ("moves the CI to include 1" if target == "ci"
                         else "moves the point estimate to 1"))


def plot_subgroups(subgroups, *, ax=None, provenance: str = "",
                   comparison: str = "treated vs control (reference)",
                   title: str = "") -> Figure:
    """Forest plot of the subgroup HRs, with the interaction P values underneath.

    Parameters
    ----------
    subgroups : SubgroupAnalysis
        From :func:`causal_hcc.sensitivity.subgroups.subgroup_effects`.
    """
    rows = list(subgroups.estimates)
    title = title or f"{comparison} within subgroups"
    treated = comparison.split(" vs ")[0]
    texts = [f"{e.subgroup}, {e.method} {e.estimand or ''}: 0.00 (0.00-0.00), 000 events *"
             for e in rows]
    fig, ax = new_axes(ax, figsize=(9.5, 2.9 + 0.4 * len(rows)),
                       left=max(1.0, text_width_in(texts, 8) + 0.2), bottom=1.15)
    labels = []
    markers = {"crude": "s", "iptw": "o", "psm": "^"}
    for i, e in enumerate(rows):
        y = len(rows) - i
        name = f"{e.subgroup}, {e.method}{' ' + e.estimand.split(' ')[0] if e.estimand else ''}"
        if e.estimable:
            ax.errorbar(e.hr, y, xerr=[[e.hr - e.ci_lower], [e.ci_upper - e.hr]],
                        fmt=markers.get(e.method, "o"), color="black", capsize=3,
                        markerfacecolor="black" if e.method == "crude" else "white")
            name += (f": {e.hr:.2f} ({e.ci_lower:.2f}-{e.ci_upper:.2f}), "
                     f"{e.events} events" + (" *" if e.note and "too small" in e.note else ""))
        else:
            name += ": not estimable"
        labels.append((y, name))
    hr_log_axis(ax)
    ax.set_yticks([p for p, _ in labels], [t for _, t in labels], fontsize=8)
    inter = "; ".join(f"{t.model} P = {t.p_value:.2f}" if t.estimable else
                      f"{t.model} not estimable" for t in subgroups.interactions)
    ax.set_xlabel(f"HR (log scale); < 1 favours {treated}\n" + textwrap.fill(
        f"Interaction {treated} x {subgroups.variable} (Wald): {inter}", 90)
        + f"\n* too small to say anything (fewer than "
        f"{subgroups.settings.get('min_events', 10)} events or "
        f"{subgroups.settings.get('min_arm', 5)} patients in an arm)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fixed_title(ax, title)
    add_provenance(fig, provenance)
    return fig
