"""Figures of the sensitivity analyses: specification curve, tipping points, subgroups.

Like :mod:`causal_hcc.reporting.plots`, each function takes a result object, draws what it
holds and returns the figure. ``comparison`` names the arms ("A vs B (reference)").
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from causal_hcc.reporting.style import STYLES, add_provenance, hr_log_axis, new_axes

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
                             comparison: str = "", title: str = "") -> Figure:
    """HRs of every estimable specification, sorted, with CIs and the choices beneath.

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

    Notes
    -----
    Top: HR (log scale) with its 95% CI per specification, sorted by HR; filled points
    have a CI excluding 1, open points one including it; diamonds are the package's
    default analyses. Bottom: one row per choice level, a mark where the specification
    uses it. Specifications that are not estimable are counted in the title, not drawn.
    """
    comparison = comparison or getattr(grid, "comparison", "")
    title = title or "Specification curve: HR" + (f", {comparison}" if comparison else "")
    choices = [c for c in choices if c in grid.estimable_rows]
    pairs = _choice_levels(grid.estimable_rows, choices)   # levels in the grid's order
    rows = grid.estimable_rows.sort_values("hr", kind="stable").reset_index(drop=True)
    x = np.arange(len(rows))
    matrix_ax = None
    if ax is None:
        fig = Figure(figsize=(11.0, 4.2 + 0.17 * len(pairs)), layout="constrained")
        gs = fig.add_gridspec(2, 1, height_ratios=[4.0, 0.17 * len(pairs) + 0.3])
        ax = fig.add_subplot(gs[0])
        matrix_ax = fig.add_subplot(gs[1], sharex=ax)
    else:
        fig = ax.figure
    hr, lo, hi = (rows[c].to_numpy(float) for c in ("hr", "ci_lower", "ci_upper"))
    excl = (hi < 1) | (lo > 1)
    ax.vlines(x, lo, hi, color="0.7", linewidth=0.6)
    ax.plot(x[excl], hr[excl], "o", color="black", markersize=2.4,
            label="95% CI excludes 1")
    ax.plot(x[~excl], hr[~excl], "o", color="black", markerfacecolor="white",
            markersize=2.4, markeredgewidth=0.6, label="95% CI includes 1")
    default = (rows["is_default"].to_numpy(bool) if "is_default" in rows
               else np.zeros(len(rows), bool))
    ax.plot(x[default], hr[default], "D", color="black", markerfacecolor="0.6",
            markersize=7, label="default analyses")
    ax.axhline(1.0, color="black", linewidth=0.9, linestyle="--")
    ax.set_yscale("log")
    ax.set_ylabel("HR (log scale), 95% CI")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    n_all = grid.n_specifications
    ax.set_title(f"{title}\n" + textwrap.fill(
        f"{len(rows)} of {n_all} specifications estimable (the others are not drawn). "
        f"{grid.headline()}", 120), fontsize=10)
    if matrix_ax is None:
        ax.set_xlabel("specification (sorted by HR)")
    else:
        ax.tick_params(labelbottom=False)
        _choice_matrix(matrix_ax, rows, pairs, x)
    add_provenance(fig, provenance, 140)
    return fig


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
    ax.set_xlim(-1, len(x))
    ax.set_xlabel("specification (sorted by HR)")
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plot_tipping_point(contour_or_grid, benchmarks=None, *, ax=None, provenance: str = "",
                       title: str = "") -> Figure:
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

    Notes
    -----
    Lin, Psaty & Kronmal (1998): HR_true = HR_obs / B, B = (1 + (HR_U - 1) p1) /
    (1 + (HR_U - 1) p0). On the diagonal p1 = p0 there is no bias. Each line's legend says
    on which side of it the confounder explains the HR away.
    """
    fig, ax = new_axes(ax, figsize=(7.2, 8.0))
    obj = contour_or_grid
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
        _benchmark_points(ax, benchmarks, target)
    what = "upper 95% limit" if (target == "ci" and obj.hr < 1) else (
        "lower 95% limit" if target == "ci" else "point estimate")
    ax.set_title(title or f"Tipping points for HR {obj.hr:.2f} ({obj.ci_lower:.2f}-"
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
    add_provenance(fig, provenance)
    return fig


def _benchmark_points(ax, benchmarks, target: str) -> None:
    """Observed confounders at (p0, p1); a star where one that strong reaches the target."""
    table = benchmarks.table
    table = table[table["estimable"].astype(bool)]
    column = "ci_includes_1" if target == "ci" else "point_explained_away"
    for r in table.itertuples():
        observed = r.imbalance == "as observed"
        hit = bool(getattr(r, column))
        ax.plot(r.p0, r.p1, "*" if hit else "o", color="black",
                markersize=11 if hit else 7,
                markerfacecolor="black" if observed else "white")
        ax.annotate(f"{r.confounder}{'' if observed else ' (reversed)'}\nHR_U {r.hr_u:.2f}",
                    (r.p0, r.p1), textcoords="offset points", xytext=(6, -4), fontsize=7,
                    va="top")
    ax.plot([], [], "o", color="black", label="observed confounder (filled: as observed, "
            "open: reversed)")
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
    fig, ax = new_axes(ax, figsize=(9.5, 2.4 + 0.4 * len(rows)))
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
    ax.set_title(title)
    add_provenance(fig, provenance)
    return fig
