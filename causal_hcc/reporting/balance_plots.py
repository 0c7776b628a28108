"""Balance figures in the style of cobalt: the love plot (``love.plot``) and the weighted
propensity-score overlap plots (``bal.plot``), and the weight distribution.

The love plot reads the long balance summary (``causal_hcc.balance.balance_summary``:
one row per covariate row and method, columns ``variable, label, level, kind, in_model,
method, estimand, smd, smd_denominator, variance_ratio, ks, n_missing, imbalanced``,
'Unadjusted' rows first); :func:`summary_from_tables` builds the same frame from the
per-method BalanceTables of an EffectsReport.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from causal_hcc.reporting.style import (
    FOOTER_IN,
    MARKERS,
    STYLES,
    add_provenance,
    fixed_title,
    new_axes,
    text_width_in,
)

SUMMARY_COLUMNS = ("variable", "label", "level", "kind", "in_model", "method", "estimand",
                   "smd", "smd_denominator", "variance_ratio", "ks", "n_missing",
                   "imbalanced")
UNADJUSTED = "Unadjusted"
#: Variance ratios outside [1/2, 2] are flagged (cobalt's default threshold).
VR_THRESHOLD = 2.0


def summary_from_tables(balances: dict, threshold: float = 0.1) -> pd.DataFrame:
    """The long balance summary from ``{method: BalanceTable}``: an 'Unadjusted' row set
    per SMD denominator used (before adjustment), then each method's rows after."""
    frames, seen = [], set()
    for name, table in balances.items():
        rows = table.rows
        base = pd.DataFrame({"variable": rows["variable"], "label": rows["variable"],
                             "level": rows["level"].fillna("").astype(str),
                             "kind": rows["kind"],
                             "in_model": rows["ps_covariate"].astype(bool),
                             "smd_denominator": table.smd_denominator,
                             "n_missing": rows["n_missing"]})
        if table.smd_denominator not in seen:
            seen.add(table.smd_denominator)
            frames.append(base.assign(method=UNADJUSTED, estimand=None,
                                      smd=rows["smd_before"].to_numpy(float),
                                      variance_ratio=rows["variance_ratio_before"],
                                      ks=rows["ks_before"]))
        frames.append(base.assign(method=name, estimand=table.estimand,
                                  smd=rows["smd_after"].to_numpy(float),
                                  variance_ratio=rows["variance_ratio_after"],
                                  ks=rows["ks_after"]))
    frame = pd.concat(frames, ignore_index=True)
    frame["imbalanced"] = np.abs(frame["smd"]) > threshold
    unadjusted = frame["method"] == UNADJUSTED
    return pd.concat([frame[unadjusted], frame[~unadjusted]], ignore_index=True)[
        list(SUMMARY_COLUMNS)]


def _key(frame: pd.DataFrame) -> pd.Series:
    level = frame["level"].fillna("").astype(str)
    return frame["variable"].astype(str) + np.where(level != "", " = " + level, "")


def _row_label(row) -> str:
    label = str(row.label) if isinstance(row.label, str) and row.label else str(row.variable)
    level = "" if pd.isna(row.level) else str(row.level)
    return label + (f" = {level}" if level and level not in label else "")


def love_order(summary: pd.DataFrame) -> list[str]:
    """Covariate rows (``variable = level``) from most to least imbalanced before
    adjustment (|SMD| of the first 'Unadjusted' denominator; ties keep table order)."""
    unadj = summary[summary["method"] == UNADJUSTED]
    first = unadj[unadj["smd_denominator"] == unadj["smd_denominator"].iloc[0]]
    keys = _key(first).to_numpy()
    size = np.abs(first["smd"].to_numpy(float))
    order = np.argsort(-np.nan_to_num(size, nan=-1.0), kind="stable")
    return list(dict.fromkeys(keys[order]))


def plot_love(balance, *, threshold: float = 0.1, provenance: str = "",
              title: str = "Covariate balance (love plot)") -> Figure:
    """cobalt-style love plot: |SMD| per covariate row before and after each method, one
    panel per SMD denominator (stated in its title), and a variance-ratio panel.

    Parameters
    ----------
    balance : DataFrame or dict
        The long balance summary (columns :data:`SUMMARY_COLUMNS`), or ``{method:
        BalanceTable}`` (converted by :func:`summary_from_tables`).
    threshold : float
        The |SMD| line (0.1).

    Notes
    -----
    Rows are sorted by |SMD| before adjustment (most imbalanced on top, on the first
    'Unadjusted' denominator). In each panel the unadjusted points use the panel's
    denominator (``smd_unadjusted``), so before and after are on one scale. Covariates
    outside the propensity model are in italics and marked with a dagger. Variance ratios
    (continuous covariates only) are on a log scale with lines at 1/2 and 2.
    """
    summary = summary_from_tables(balance, threshold) if isinstance(balance, dict) \
        else balance
    keys = love_order(summary)
    keyed = summary.assign(_key=_key(summary).to_numpy())
    unadj = keyed[keyed["method"] == UNADJUSTED]
    methods = keyed[keyed["method"] != UNADJUSTED]
    denominators = list(dict.fromkeys(methods["smd_denominator"])) or \
        list(dict.fromkeys(unadj["smd_denominator"]))
    first_rows = unadj.drop_duplicates("_key").set_index("_key").loc[keys]
    names = [_row_label(r) + ("" if bool(r.in_model) else " \u2020")
             for r in first_rows.itertuples()]
    n_panels = len(denominators) + 1
    left = max(1.0, text_width_in(names, 8) + 0.3)
    panel_w, height = 3.0, 1.95 + 0.26 * len(keys)
    fig = Figure(figsize=(left + panel_w * n_panels + 0.3 * n_panels, height + FOOTER_IN))
    fig.subplots_adjust(left=left / fig.get_figwidth(), right=1 - 0.15 / fig.get_figwidth(),
                        top=1 - 0.65 / fig.get_figheight(),
                        bottom=(1.3 + FOOTER_IN) / fig.get_figheight(), wspace=0.12)
    # Panels share the rows but not the y axis: a shared axis would build a tick (two
    # lines, two texts) per covariate in every panel; only the first one is labelled.
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    y = np.arange(len(keys))[::-1]
    method_names = list(dict.fromkeys(methods["method"]))
    for ax, denominator in zip(axes, denominators):
        _smd_panel(ax, unadj, methods, method_names, keys, y, denominator, threshold)
    _variance_ratio_panel(axes[-1], unadj, methods, method_names, keys, y)
    axes[0].set_yticks(y, names, fontsize=8)
    for label, r in zip(axes[0].get_yticklabels(), first_rows.itertuples()):
        if not bool(r.in_model):
            label.set_fontstyle("italic")
    for ax in axes:
        ax.set_ylim(-0.7, len(keys) - 0.3)
    for ax in axes[1:]:
        ax.yaxis.set_major_locator(NullLocator())
    entries = {}
    for ax in axes:   # every method once, whichever panel it is drawn in
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    handles, labels = list(entries.values()), list(entries)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=7.5,
               frameon=False, bbox_to_anchor=(0.5, (FOOTER_IN + 0.05) / fig.get_figheight()))
    fig.suptitle(title + ("   (\u2020 not in the propensity model)"
                          if not first_rows["in_model"].astype(bool).all() else ""),
                 fontsize=10, y=1 - 0.08 / fig.get_figheight(), va="top")
    add_provenance(fig, provenance)
    return fig


def _points(frame, keys, column="smd") -> np.ndarray:
    values = frame.drop_duplicates("_key").set_index("_key")[column].reindex(keys)
    return values.to_numpy(float)


def _unadjusted_points(unadj, methods, keys, denominator) -> tuple[np.ndarray, str]:
    """|SMD| before adjustment on the panel's denominator: the methods' own
    ``smd_unadjusted`` where the summary has it, else 'Unadjusted' rows on that
    denominator, else the first 'Unadjusted' rows (and the denominator they use)."""
    on_panel = methods[methods["smd_denominator"] == denominator]
    if "smd_unadjusted" in on_panel and on_panel["smd_unadjusted"].notna().any():
        first = on_panel[on_panel["method"] == on_panel["method"].iloc[0]]
        return _points(first, keys, "smd_unadjusted"), denominator
    base = unadj[unadj["smd_denominator"] == denominator]
    stated = denominator if len(base) else unadj["smd_denominator"].iloc[0]
    base = base if len(base) else unadj[unadj["smd_denominator"] == stated]
    return _points(base, keys), stated


def _sd_words(denominator: str) -> str:
    text = str(denominator)
    return text if text.endswith("SD") else f"{text} SD"


def _smd_panel(ax, unadj, methods, method_names, keys, y, denominator, threshold) -> None:
    before, stated = _unadjusted_points(unadj, methods, keys, denominator)
    ax.plot(np.abs(before), y, linestyle="none", marker="o", color="black",
            markerfacecolor="none", markersize=6.5, label=UNADJUSTED.lower())
    for i, name in enumerate(method_names):
        rows = methods[(methods["method"] == name) &
                       (methods["smd_denominator"] == denominator)]
        if rows.empty:
            continue
        estimand = rows["estimand"].iloc[0]
        ax.plot(np.abs(_points(rows, keys)), y, linestyle="none",
                marker=MARKERS[(i + 1) % len(MARKERS)],
                color=STYLES[i % len(STYLES)]["color"], markersize=5.5,
                label=name + (f" ({estimand})" if isinstance(estimand, str) and estimand
                              and "(" not in name and estimand.lower() not in name.lower()
                              else ""))
    ax.axvline(threshold, color="0.5", linestyle="--", linewidth=1)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlim(left=0)
    fixed_title(ax, textwrap.fill(f"|SMD|, denominator: {_sd_words(denominator)}", 40)
                + (f"\n(unadjusted on the {_sd_words(stated)})" if stated != denominator
                   else ""), fontsize=8.5)
    ax.set_xlabel(f"absolute standardised mean difference\n(line at {threshold:g})",
                  fontsize=8)


def _variance_ratio_panel(ax, unadj, methods, method_names, keys, y) -> None:
    base = _points(unadj, keys, "variance_ratio")
    ax.plot(base, y, linestyle="none", marker="o", color="black", markerfacecolor="none",
            markersize=6.5)
    for i, name in enumerate(method_names):
        rows = methods[methods["method"] == name]
        ax.plot(_points(rows, keys, "variance_ratio"), y, linestyle="none",
                marker=MARKERS[(i + 1) % len(MARKERS)],
                color=STYLES[i % len(STYLES)]["color"], markersize=5.5)
    ax.set_xscale("log")
    ax.set_xlim(0.2, 5)
    ax.set_xticks([0.25, 0.5, 1, 2, 4], ["0.25", "0.5", "1", "2", "4"])
    ax.minorticks_off()
    for x in (1 / VR_THRESHOLD, VR_THRESHOLD):
        ax.axvline(x, color="0.5", linestyle="--", linewidth=1)
    ax.axvline(1.0, color="0.3", linewidth=0.8)
    ax.grid(axis="x", alpha=0.3)
    fixed_title(ax, "Variance ratio (treated / control)\ncontinuous covariates", fontsize=8.5)
    ax.set_xlabel("variance ratio, log scale\n(lines at 1/2 and 2)", fontsize=8)


def plot_overlap_panels(propensity, adjustments: dict, *, arm_labels=("treated", "control"),
                        provenance: str = "", bins: int = 20,
                        title: str = "Propensity score overlap under each estimand's weights"
                        ) -> Figure:
    """cobalt ``bal.plot`` for several adjustments: one mirrored-histogram panel per
    ``{panel title: Weights or MatchedSample}`` (two panels a row), each over the
    unweighted distribution (see :func:`plot_overlap`)."""
    n = max(len(adjustments), 1)
    cols = 1 if n == 1 else 2
    rows = -(-n // cols)
    fig = Figure(figsize=(5.2 * cols + 0.4, 3.3 * rows + 0.9 + FOOTER_IN))
    h = fig.get_figheight()
    fig.subplots_adjust(left=0.9 / fig.get_figwidth(), right=1 - 0.15 / fig.get_figwidth(),
                        top=1 - 0.75 / h, bottom=(0.55 + FOOTER_IN) / h, hspace=0.45,
                        wspace=0.3)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for i, (ax, (name, weights)) in enumerate(zip(axes, adjustments.items())):
        plot_overlap(propensity, weights=weights, arm_labels=arm_labels, ax=ax, bins=bins,
                     title=name, legend=i == 0, ylabel=i % cols == 0)
    for ax in axes[len(adjustments):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10.5, y=1 - 0.1 / h, va="top")
    add_provenance(fig, provenance)
    return fig


def plot_overlap(propensity, *, weights=None, arm_labels=("treated", "control"), ax=None,
                 provenance: str = "", bins: int = 20,
                 title: str = "Propensity score overlap", legend: bool = True,
                 ylabel: bool = True) -> Figure:
    """Mirrored PS histograms (cobalt ``bal.plot``): treated above the axis, controls below,
    as shares of each arm.

    With ``weights`` (a Weights or MatchedSample), the weighted distribution (share of the
    arm's weight per bin) is drawn as an outline over the unweighted bars. ``arm_labels``
    is (treated, control). Any n: the bins are the summary, no point is drawn per patient.
    """
    fig, ax = new_axes(ax, figsize=(7.0, 4.5), left=0.9)
    ps, treated = np.asarray(propensity.ps), np.asarray(propensity.treated) == 1
    edges = np.linspace(0, 1, bins + 1)
    shares = []
    for arm in (treated, ~treated):
        h, _ = np.histogram(ps[arm], edges)
        shares.append(h / max(h.sum(), 1))
    # One filled step patch per arm, not a rectangle per bin: the same picture, drawn
    # and laid out as one artist (bars cost ~0.1 s per panel in patch bookkeeping).
    ax.stairs(shares[0], edges, fill=True, color="0.55", linewidth=0,
              label=f"{arm_labels[0]}, unadjusted")
    ax.stairs(-shares[1], edges, fill=True, facecolor="0.85", hatch="//", edgecolor="0.5",
              linewidth=0, label=f"{arm_labels[1]}, unadjusted")
    if weights is not None:
        w = np.asarray(weights.weights, float)
        for sign, arm in ((1, treated), (-1, ~treated)):
            h, _ = np.histogram(ps[arm], edges, weights=w[arm])
            h = h / max(h.sum(), 1e-300)
            shares.append(h)
            ax.stairs(sign * h, edges, color="black", linewidth=1.6,
                      label="weighted / matched" if sign == 1 else None)
    ax.axhline(0, color="black", linewidth=0.8)
    top = max(max(s.max(initial=0) for s in shares), 0.05) * 1.15
    ax.set_ylim(-top, top)
    ticks = ax.get_yticks()
    ax.set_yticks(ticks, [f"{abs(t):.0%}" for t in ticks])
    ax.set_ylim(-top, top)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"Propensity score (probability of {arm_labels[0]})", fontsize=9)
    if ylabel:
        ax.set_ylabel(f"share of the arm\n({arm_labels[0]} above, {arm_labels[1]} below)",
                      fontsize=9)
    if legend:
        ax.legend(fontsize=7.5, frameon=False, loc="upper right")
    fixed_title(ax, title, fontsize=9.5)
    add_provenance(fig, provenance)
    return fig


def plot_weights(weights: dict, *, arm_labels=("treated", "control"), ax=None,
                 provenance: str = "", title: str = "Weight distribution") -> Figure:
    """Box plots of the positive weights per estimand and arm (log scale), min and max
    stated; outliers are drawn only up to 5,000 patients per box (beyond, the whiskers
    and the stated extremes summarise them)."""
    fig, ax = new_axes(ax, figsize=(7.0, 4.2), left=0.8, bottom=0.75)
    data, labels = [], []
    for name, w in weights.items():
        for arm, arm_label in ((1, arm_labels[0]), (0, arm_labels[1])):
            sel = (np.asarray(w.treated) == arm) & (np.asarray(w.weights) > 0)
            values = np.asarray(w.weights)[sel]
            data.append(values)
            extremes = (f"\n{values.min():.2g}-{values.max():.3g}" if values.size else "")
            labels.append(f"{name}\n{textwrap.fill(arm_label, 12)}{extremes}")
    fliers = max((d.size for d in data), default=0) <= 5000
    # Black medians: matplotlib's default is the orange of its colour cycle, the one
    # colour in otherwise greyscale figures.
    ax.boxplot(data, tick_labels=labels, patch_artist=False, showfliers=fliers,
               medianprops={"color": "black", "linewidth": 1.6})
    ax.tick_params(axis="x", labelsize=7.5)
    ax.set_yscale("log")
    # Plain numbers (0.1, 1, 10), not 10^k: no mathtext to lay out, and easier to read.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.minorticks_off()
    ax.set_ylabel("weight (log scale)")
    ax.grid(axis="y", alpha=0.3)
    fixed_title(ax, title + " (min-max under each box)", fontsize=10)
    add_provenance(fig, provenance)
    return fig
