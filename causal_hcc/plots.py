"""Every figure of the package; the only module that imports matplotlib.

Functions take result objects (and an optional ``ax``), draw what the result already
holds, and return the figure. They compute nothing a table does not hold. Figures are
readable in greyscale: arms differ by line style and marker, not only by colour. Each
figure made from the bundled cohort carries the reconstructed-pseudo-data label.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

# Black and dark grey with distinct dashes: survives greyscale printing.
STYLES = ({"color": "black", "linestyle": "-"}, {"color": "0.45", "linestyle": "--"},
          {"color": "0.25", "linestyle": ":"}, {"color": "0.6", "linestyle": "-."})
CENSOR_MARKERS = ("+", "x", "|", "1")


def _new_axes(ax, figsize=(7.0, 5.2)):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _step_xy(km):
    """KM step coordinates starting at (0, 1)."""
    x = np.r_[0.0, km.time]
    y = np.r_[1.0, km.surv]
    return x, y


def _risk_times(curves):
    """Every 12 months, or every 6 when follow-up is shorter than 3 years."""
    horizon = max(float(km.time.max()) for km in curves if km.time.size)
    return np.arange(0.0, horizon + 1e-9, 12.0 if horizon > 36 else 6.0)


def plot_km(curves, *, title: str = "", ax=None, ci: bool = False, log_rank=None,
            risk_times=None, provenance: str = "", xlabel: str = "Months since diagnosis "
            "of extrahepatic metastasis") -> Figure:
    """Kaplan-Meier curves with censoring marks, optional CI bands and a risk table.

    Parameters
    ----------
    curves : sequence of KaplanMeier
        One curve per group, drawn in order (first solid black).
    ax : matplotlib Axes, optional
        Draw into this axes (the number-at-risk table is then left out).
    ci : bool
        Shade each curve's pointwise CI (the curve's own ``conf_type``).
    log_rank : LogRank, optional
        Printed in the plot (chi-square, df, P).
    risk_times : sequence of float, optional
        Times (months) of the number-at-risk table; default every 12 months.
    provenance : str
        Data provenance printed under the figure (the reconstructed-data label).
    """
    curves = list(curves)
    times = np.asarray(risk_times if risk_times is not None else _risk_times(curves), float)
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
    ax.set_xlim(left=0, right=max(times[-1], max(float(k.time.max()) for k in curves)) * 1.02)
    ax.set_ylabel("Overall survival (probability)")
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
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, 110), fontsize=6.5, color="0.3")
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
    p = test.p
    p_text = "P < 0.001" if p < 0.001 else f"P = {p:.3f}"
    return f"Log-rank \u03c7\u00b2 = {test.chisq:.2f}, df = {test.df}, {p_text}"


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
                 title: str = "", published: str = "", provenance: str = "",
                 ax=None) -> Figure:
    """Scatter plot with a least-squares line and the correlation (paper Figure 5)."""
    fig, ax = _new_axes(ax, figsize=(6.0, 5.0))
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.plot(x, y, "o", color="black", markerfacecolor="none")
    if x.size >= 2 and np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        grid = np.linspace(x.min(), x.max(), 50)
        ax.plot(grid, intercept + slope * grid, color="0.4", linestyle="--")
    p_text = "P < 0.001" if p_value < 0.001 else f"P = {p_value:.3f}"
    label = f"r = {r:.3f}, {p_text} (n = {x.size})"
    if published:
        label += f"\npublished: {published}"
    ax.text(0.03, 0.95, label, transform=ax.transAxes, va="top", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, 110), fontsize=6.5, color="0.3")
    return fig


MARKERS = ("o", "s", "^", "D", "v", "P")


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
    fig, ax = _new_axes(ax, figsize=(7.0, 1.2 + 0.32 * len(names)))
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
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, 110), fontsize=6.5, color="0.3")
    return fig


def plot_overlap(propensity, *, weights=None, ax=None, provenance: str = "",
                 bins: int = 20, title: str = "Propensity score overlap") -> Figure:
    """Mirrored histograms of the PS: treated above the axis, controls below.

    With ``weights`` (a Weights or MatchedSample), the weighted histogram is drawn as an
    outline over the unweighted one.
    """
    fig, ax = _new_axes(ax, figsize=(7.0, 4.5))
    ps, treated = np.asarray(propensity.ps), np.asarray(propensity.treated) == 1
    edges = np.linspace(0, 1, bins + 1)
    h1, _ = np.histogram(ps[treated], edges)
    h0, _ = np.histogram(ps[~treated], edges)
    width = np.diff(edges)
    ax.bar(edges[:-1], h1, width, align="edge", color="0.35", label="local therapy")
    ax.bar(edges[:-1], -h0, width, align="edge", color="0.75", hatch="//",
           label="no local therapy")
    if weights is not None:
        w = np.asarray(weights.weights, float)
        w1, _ = np.histogram(ps[treated], edges, weights=w[treated])
        w0, _ = np.histogram(ps[~treated], edges, weights=w[~treated])
        ax.step(edges[:-1], w1, where="post", color="black", linewidth=1.5,
                label="weighted / matched")
        ax.step(edges[:-1], -w0, where="post", color="black", linewidth=1.5)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Propensity score (probability of local therapy)")
    ax.set_ylabel("patients (controls below 0)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title)
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, 110), fontsize=6.5, color="0.3")
    return fig


def plot_weights(weights: dict, *, ax=None, provenance: str = "",
                 title: str = "Weight distribution") -> Figure:
    """Box plots of the weights per estimand and arm (log scale)."""
    fig, ax = _new_axes(ax, figsize=(7.0, 4.0))
    data, labels = [], []
    for name, w in weights.items():
        for arm, arm_label in ((1, "treated"), (0, "control")):
            sel = (np.asarray(w.treated) == arm) & (np.asarray(w.weights) > 0)
            data.append(np.asarray(w.weights)[sel])
            labels.append(f"{name}\n{arm_label}")
    ax.boxplot(data, tick_labels=labels, patch_artist=False)
    ax.set_yscale("log")
    ax.set_ylabel("weight (log scale)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title)
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, 110), fontsize=6.5, color="0.3")
    return fig


def _hr_log_axis(ax) -> None:
    """Log-scale HR axis with a line at 1 and plain-number ticks (0.5 and 2, not 10^-1)."""
    ax.axvline(1.0, color="0.4", linewidth=1)
    ax.set_xscale("log")
    ticks = [t for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 20)
             if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()


def plot_forest(estimates, *, ax=None, provenance: str = "", published=None,
                title: str = "Hazard ratio of local therapy vs none") -> Figure:
    """Forest plot of HRs with Wald CIs (and bootstrap CIs as open whiskers).

    Parameters
    ----------
    estimates : sequence of EffectEstimate
    published : (label, hr, lower, upper), optional
        A published estimate drawn as the first row for comparison.
    """
    rows = [(f"{e.method}" + (f" ({e.estimand})" if e.estimand else ""), e) for e in estimates
            if e.estimable]
    fig, ax = _new_axes(ax, figsize=(7.0, 1.4 + 0.42 * (len(rows) + bool(published))))
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
    _hr_log_axis(ax)
    ax.set_yticks([p for p, _ in labels], [t for _, t in labels], fontsize=8)
    ax.set_xlabel("HR (log scale); < 1 favours local therapy; dashed: bootstrap 95% CI")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, 110), fontsize=6.5, color="0.3")
    return fig


# ----------------------------------------------------------------------------- sensitivity
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
                             title: str = "Specification curve: HR of local therapy vs none"
                             ) -> Figure:
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

    Notes
    -----
    Top: HR (log scale) with its 95% CI per specification, sorted by HR; filled points
    have a CI excluding 1, open points one including it; diamonds are the package's
    default analyses. Bottom: one row per choice level, a mark where the specification
    uses it. Specifications that are not estimable are counted in the title, not drawn.
    """
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
    default = rows["is_default"].to_numpy(bool)
    ax.plot(x[default], hr[default], "D", color="black", markerfacecolor="0.6",
            markersize=7, label="default analysis (PSM / IPTW ATE)")
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
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, 140), fontsize=6.5, color="0.3")
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
        with death (HR_U); filled when imbalanced as observed, open when reversed; a star
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
    fig, ax = _new_axes(ax, figsize=(7.2, 8.0))
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
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, 110), fontsize=6.5, color="0.3")
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
                   title: str = "Local therapy vs none within subgroups") -> Figure:
    """Forest plot of the subgroup HRs, with the interaction P values underneath.

    Parameters
    ----------
    subgroups : SubgroupAnalysis
        From :func:`causal_hcc.sensitivity.subgroups.subgroup_effects`.
    """
    rows = list(subgroups.estimates)
    fig, ax = _new_axes(ax, figsize=(9.5, 2.4 + 0.4 * len(rows)))
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
                     f"{e.events} deaths" + (" *" if e.note and "too small" in e.note else ""))
        else:
            name += ": not estimable"
        labels.append((y, name))
    _hr_log_axis(ax)
    ax.set_yticks([p for p, _ in labels], [t for _, t in labels], fontsize=8)
    inter = "; ".join(f"{t.model} P = {t.p_value:.2f}" if t.estimable else
                      f"{t.model} not estimable" for t in subgroups.interactions)
    ax.set_xlabel("HR (log scale); < 1 favours local therapy\n" + textwrap.fill(
        f"Interaction local therapy x {subgroups.variable} (Wald): {inter}", 90)
        + f"\n* too small to say anything (fewer than "
        f"{subgroups.settings.get('min_events', 10)} deaths or "
        f"{subgroups.settings.get('min_arm', 5)} patients in an arm)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    if provenance:
        fig.supxlabel(textwrap.fill(provenance, 110), fontsize=6.5, color="0.3")
    return fig
