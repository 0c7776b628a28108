"""Survival curves as survminer draws them: CI bands, a risk table and a cumulative-events
table that say whether their counts are weighted, survival in percent, censoring marks,
and the plateaus of a weighted curve that rest on one heavily weighted patient.

Registry scale: steps are drawn at the event times only (S and its CI change nowhere
else), at most :data:`MAX_STEPS` of them (the last event in each of that many equal slices
of follow-up: less than a pixel apart), and censoring marks are thinned to at most
:data:`MAX_CENSOR_MARKS` per curve (the first censoring in each of that many slices), so a
curve of a million patients costs about what one of a few thousand does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from causal_hcc.reporting.style import (
    CENSOR_MARKERS,
    FOOTER_IN,
    STYLES,
    add_provenance,
    fixed_title,
    p_text,
    text_width_in,
)

#: Censoring marks drawn per curve at most.
MAX_CENSOR_MARKS = 200
#: Steps drawn per curve at most: 2,000 slices of a 7-inch axis at 150 dpi (about 1,000
#: pixels) are finer than a pixel.
MAX_STEPS = 2000
#: A plateau is flagged when one patient carries more than this share of the weight at
#: risk through it ...
PLATEAU_SHARE = 0.5
#: ... and it lasts at least this share of the arm's follow-up.
PLATEAU_MIN_LENGTH = 0.1

NICE_STEPS = (1, 2, 3, 5, 6, 10, 12, 20, 24, 25, 30, 50, 60, 100, 120, 200, 250, 500, 1000,
              2000, 2500, 5000, 10000)


def nice_step(horizon: float, max_intervals: int = 10) -> float:
    """The smallest round step that cuts ``[0, horizon]`` into at most ``max_intervals``."""
    for step in NICE_STEPS:
        if horizon / step <= max_intervals:
            return float(step)
    return float(10 ** np.ceil(np.log10(horizon / max_intervals)))


# ----------------------------------------------------------------------------- counts
@dataclass(frozen=True)
class PatientCounts:
    """Unweighted counts behind one weighted curve (patients with a positive weight).

    ``at_risk`` and ``events`` are patients at risk (time >= t) and cumulative events
    (time <= t) at each risk-table time; ``plateaus`` are (start, end, share) stretches
    without an event, at least :data:`PLATEAU_MIN_LENGTH` of the follow-up long, through
    which one patient carries ``share`` (> :data:`PLATEAU_SHARE`) of the weight at risk.
    """

    at_risk: np.ndarray
    events: np.ndarray
    plateaus: tuple = ()


def patient_counts(time, event, weights, times, *, share: float = PLATEAU_SHARE,
                   min_length: float = PLATEAU_MIN_LENGTH) -> PatientCounts:
    """Patients at risk, cumulative events and single-patient plateaus of one arm.

    Parameters
    ----------
    time, event : array_like
        Follow-up (the data's unit) and 1/0 event of the arm's patients.
    weights : array_like
        Their weights (IPTW or matching); patients with weight 0 are not in the curve.
    times : array_like
        Risk-table times.
    share : float
        A stretch with no event is flagged when its largest single weight exceeds this
        share of the total weight at risk at its start ...
    min_length : float
        ... and it lasts at least this share of the arm's longest follow-up.

    Notes
    -----
    O(n log n): one sort, then suffix sums and suffix maxima of the weights. The stretch
    after event time u (to the next event time, or to the last follow-up) starts with the
    patients whose time exceeds u.
    """
    w = np.asarray(weights, float)
    keep = w > 0
    t, d, w = (np.asarray(time, float)[keep], np.asarray(event, float)[keep], w[keep])
    order = np.argsort(t, kind="stable")
    t, d, w = t[order], d[order], w[order]
    times = np.asarray(times, float)
    at_risk = t.size - np.searchsorted(t, times, side="left")
    event_times = np.unique(t[d > 0])
    cum = np.cumsum(d)
    idx = np.searchsorted(t, times, side="right")
    events = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0).astype(int)
    if not event_times.size:
        return PatientCounts(at_risk, events)
    suffix_sum = np.cumsum(w[::-1])[::-1]
    suffix_max = np.maximum.accumulate(w[::-1])[::-1]
    start = np.searchsorted(t, event_times, side="right")
    ends = np.r_[event_times[1:], t[-1]]
    inside = start < t.size
    shares = np.zeros(event_times.size)
    shares[inside] = suffix_max[start[inside]] / suffix_sum[start[inside]]
    flagged = inside & (shares > share) & (ends - event_times >= min_length * t[-1]) & \
        (ends > event_times)
    spans = tuple((float(event_times[i]), float(ends[i]), float(shares[i]))
                  for i in np.flatnonzero(flagged))
    return PatientCounts(at_risk, events, spans)


def is_weighted(km) -> bool:
    """Whether a curve's counts are sums of weights (float counts) or patients."""
    return np.asarray(km.n_risk).dtype.kind == "f"


def cumulative_events(km, times) -> np.ndarray:
    """Events (weighted for a weighted curve) up to and including each time."""
    idx = np.searchsorted(km.time, np.asarray(times, float), side="right")
    cum = np.r_[0.0, np.cumsum(km.n_event)]
    return cum[idx]


# ----------------------------------------------------------------------------- drawing
def step_points(km, max_steps: int = MAX_STEPS):
    """Step coordinates at the event times only, from (0, 1) to the last follow-up:
    S(t) and its CI change only where someone has the event.

    Returns (indices into the curve, x, y). With more than ``max_steps`` event times, the
    last event time in each of ``max_steps`` equal slices of follow-up is kept: S is exact
    at every point drawn, and the steps merged lie within one slice (under a pixel).
    """
    idx = np.flatnonzero(np.asarray(km.n_event) > 0)
    if idx.size > max_steps:
        edges = np.linspace(0.0, float(km.time[-1]), max_steps + 1)
        slot = np.searchsorted(edges, km.time[idx], side="left")
        idx = idx[np.r_[slot[1:] != slot[:-1], True]]
    last = km.time.size - 1
    pick = np.r_[idx, last] if last >= 0 else idx
    return pick, np.r_[0.0, km.time[pick]], np.r_[1.0, km.surv[pick]]


def thinned_censoring(km, max_marks: int = MAX_CENSOR_MARKS) -> tuple[np.ndarray, bool]:
    """Indices of the censoring times to mark: all of them, or the first in each of
    ``max_marks`` equal slices of follow-up; and whether marks were thinned."""
    cens = np.flatnonzero(np.asarray(km.n_censor) > 0)
    if cens.size <= max_marks:
        return cens, False
    edges = np.linspace(0.0, float(km.time[-1]), max_marks + 1)
    slot = np.minimum(np.searchsorted(edges, km.time[cens], side="right") - 1,
                      max_marks - 1)
    _, first = np.unique(slot, return_index=True)
    return cens[first], True


def _draw_curve(ax, km, i: int, ci: bool, max_marks: int) -> bool:
    style = STYLES[i % len(STYLES)]
    pick, x, y = step_points(km)
    ax.step(x, 100 * y, where="post", linewidth=1.8, label=f"{km.label} (n={km.n})",
            **style)
    if ci:
        # No CI where S is 1 or 0 (log-log scale): the band collapses onto the curve.
        lo = np.r_[1.0, np.where(np.isnan(km.lower[pick]), km.surv[pick], km.lower[pick])]
        hi = np.r_[1.0, np.where(np.isnan(km.upper[pick]), km.surv[pick], km.upper[pick])]
        ax.fill_between(x, 100 * lo, 100 * hi, step="post", alpha=0.15,
                        color=style["color"], linewidth=0)
    cens, thinned = thinned_censoring(km, max_marks)
    ax.plot(km.time[cens], 100 * km.surv[cens], linestyle="none",
            marker=CENSOR_MARKERS[i % len(CENSOR_MARKERS)], markersize=7,
            color=style["color"])
    return thinned


def _log_rank_text(test) -> str:
    if not getattr(test, "estimable", True):
        return f"Log-rank: not estimable ({test.reason})"
    return f"Log-rank \u03c7\u00b2 = {test.chisq:.2f}, df = {test.df}, {p_text(test.p)}"


def _cell(weighted_value, patients, weighted: bool) -> str:
    if not weighted:
        return f"{round(float(weighted_value))}"
    text = f"{weighted_value:.1f}"
    return text if patients is None else f"{text} ({int(patients)})"


def table_titles(weighted: bool, with_patients: bool) -> tuple[str, str]:
    """Titles of the risk table and the cumulative-events table: what the counts are."""
    if not weighted:
        return ("Number at risk (patients, unweighted)",
                "Cumulative events (patients, unweighted)")
    tail = "; patients (unweighted) in brackets" if with_patients else \
        " (not patients)"
    return (f"Number at risk: weighted (sum of weights){tail}",
            f"Cumulative events: weighted (sum of weights){tail}")


def _count_table(ax, curves, times, cells, title: str) -> None:
    """One row of counts per curve, in its own axes under the curves."""
    rows = np.arange(len(curves))[::-1]
    widest = text_width_in([c for row in cells for c in row[:1]], 7.5) * 72
    for row, texts in zip(rows, cells):
        for t, text in zip(times, texts):
            ax.text(t, row, text, ha="center", va="center", fontsize=7.5)
    ax.set_ylim(-0.6, len(curves) - 0.4)
    ax.set_yticks(rows, [km.label for km in curves], fontsize=8)
    ax.tick_params(axis="y", length=0, pad=widest / 2 + 6)  # clear of the t = 0 counts
    ax.tick_params(axis="x", labelbottom=False, length=0)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    fixed_title(ax, title, fontsize=8, loc="left", pad=2)


def plot_km(curves, *, title: str = "", ax=None, ci: bool = False, log_rank=None,
            risk_times=None, provenance: str = "", xlabel: str = "Time",
            ylabel: str = "Survival probability", counts=None, events_table: bool = True,
            max_censor_marks: int = MAX_CENSOR_MARKS) -> Figure:
    """Kaplan-Meier curves in percent, with censoring marks, optional CI bands, a risk
    table and a cumulative-events table.

    Parameters
    ----------
    curves : sequence of KaplanMeier
        One curve per group, drawn in order (first solid black), labelled with its label.
    ax : matplotlib Axes, optional
        Draw into this axes (the tables are then left out).
    ci : bool
        Shade each curve's pointwise CI (the curve's own ``conf_type``).
    log_rank : LogRank, optional
        Printed in the plot (chi-square, df, P).
    risk_times : sequence of float, optional
        Times (the data's unit) of the tables; default a round step (:func:`nice_step`).
    provenance : str
        Data provenance printed under the figure.
    xlabel, ylabel : str
        Axis labels, e.g. ``Labels.time_axis``; "(%)" is added to ``ylabel``.
    counts : sequence of PatientCounts, optional
        For weighted curves, one per curve (:func:`patient_counts`): the patients beside
        the weighted sums in the tables, and the single-patient plateaus shaded.
    events_table : bool
        Draw the cumulative-events table under the risk table.
    max_censor_marks : int
        Censoring marks per curve at most (:func:`thinned_censoring`).

    Notes
    -----
    A weighted curve's at-risk "count" is a sum of weights: 12 "at risk" may be one
    patient of weight 12. The tables say which they show, and with ``counts`` show both.
    """
    curves = list(curves)
    horizon = max((float(k.time.max()) for k in curves if k.time.size), default=1.0)
    if risk_times is None:
        risk_times = np.arange(0.0, horizon + 1e-9, nice_step(horizon))
    times = np.asarray(risk_times, float)
    weighted = any(is_weighted(k) for k in curves)
    tables = None
    if ax is None:
        fig, ax, tables = _km_layout(curves, title, events_table)
    else:
        fig = ax.figure
    thinned = [_draw_curve(ax, km, i, ci, max_censor_marks) for i, km in enumerate(curves)]
    handles = _plateaus(ax, counts)
    ax.set_ylim(-2, 102)
    ax.set_xlim(left=0, right=max(times[-1], horizon) * 1.02)
    ax.set_yticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_ylabel(percent_label(ylabel))
    ax.grid(alpha=0.3)
    marks = "censored: marks" + (f" (at most {max_censor_marks} per curve)"
                                 if any(thinned) else "")
    ax.plot([], [], linestyle="none", marker="+", color="0.3", label=marks)
    ax.legend(handles=ax.get_legend_handles_labels()[0] + handles, loc="lower left",
              bbox_to_anchor=(0.0, 1.0), ncol=2, frameon=False, fontsize=8,
              borderaxespad=0.2)
    if log_rank is not None:
        ax.text(0.02, 0.04, _log_rank_text(log_rank), transform=ax.transAxes, fontsize=9)
    if title and tables is None:   # drawn into the caller's axes
        fixed_title(ax, title, fontsize=11)
    elif title:
        fig.suptitle(title, fontsize=11, y=1 - 0.08 / fig.get_figheight(), va="top")
    ax.set_xticks(times)
    ax.set_xlabel(xlabel)
    if tables is not None:
        _fill_tables(tables, curves, times, counts, weighted)
    add_provenance(fig, provenance)
    return fig


def percent_label(ylabel: str) -> str:
    """'Overall survival (probability)' -> 'Overall survival (%)'."""
    head = ylabel.removesuffix(" (probability)").removesuffix(" probability")
    return f"{head} (%)"


def _km_layout(curves, title: str, events_table: bool):
    """Fixed layout in inches: title, legend, curves, then the risk and events tables."""
    k = max(len(curves), 1)
    labels = [km.label for km in curves]
    left = max(0.85, text_width_in(labels, 8) + 0.75)
    width, plot_h, table_h = 7.5, 4.0, 0.4 + 0.22 * k
    n_tables = 2 if events_table else 1
    legend_rows = -(-(k + 2) // 2)
    top, xlab = (0.4 if title else 0.1) + 0.2 * legend_rows, 0.6
    height = top + plot_h + xlab + n_tables * table_h + 0.1 + FOOTER_IN
    fig = Figure(figsize=(width, height))

    def box(y_top, h):   # [left, bottom, width, height] in figure fractions
        return [left / width, 1 - (y_top + h) / height, (width - left - 0.2) / width,
                h / height]

    ax = fig.add_axes(box(top, plot_h))
    y = top + plot_h + xlab
    tables = []
    for _ in range(n_tables):
        tables.append(fig.add_axes(box(y, table_h), sharex=ax))
        y += table_h
    return fig, ax, tables


def _fill_tables(tables, curves, times, counts, weighted: bool) -> None:
    with_patients = counts is not None
    risk_title, events_title = table_titles(weighted, with_patients)
    risk_cells, event_cells = [], []
    for i, km in enumerate(curves):
        c = counts[i] if with_patients else None
        risk_cells.append([_cell(v, None if c is None else n, weighted) for v, n in
                           zip(km.n_at_risk(times), c.at_risk if c else [None] * len(times))])
        event_cells.append([_cell(v, None if c is None else n, weighted) for v, n in
                            zip(cumulative_events(km, times),
                                c.events if c else [None] * len(times))])
    _count_table(tables[0], curves, times, risk_cells, risk_title)
    if len(tables) > 1:
        _count_table(tables[1], curves, times, event_cells, events_title)


def _plateaus(ax, counts) -> list:
    """Shade the stretches that rest on one patient; returns the legend handle."""
    spans = [s for c in (counts or ()) for s in c.plateaus]
    for start, end, share in spans:
        ax.axvspan(start, end, facecolor="0.88", edgecolor="0.55", hatch="..",
                   linewidth=0, zorder=0)
        ax.text((start + end) / 2, 3, f"1 patient: {100 * share:.0f}%\nof weight at risk",
                ha="center", va="bottom", fontsize=6.5, color="0.2")
    if not spans:
        return []
    return [Patch(facecolor="0.88", edgecolor="0.55", hatch="..",
                  label=f"plateau resting on one patient (> {100 * PLATEAU_SHARE:.0f}% "
                        "of the weight at risk)")]
