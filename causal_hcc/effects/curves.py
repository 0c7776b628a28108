"""Adjusted survival curves: (weighted) Kaplan-Meier per arm, landmark survival, RMST.

Differences are treated minus control; RMST is the area under the KM step curve to the
horizon (R ``survRM2``/``print(survfit, rmean=)`` convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc._numeric import row_sum
from causal_hcc.survival.km import kaplan_meier, survival_curve



@dataclass(frozen=True)
class AdjustedCurves:
    """(Weighted) Kaplan-Meier per arm for one adjustment, with landmarks and RMST.

    ``table`` has one row per quantity: landmark survival per arm and difference (treated
    minus control, percentage points on the 0-1 scale), RMST per arm and difference
    (months), with bootstrap percentile CIs where bootstrapped.
    """

    method: str
    estimand: str | None
    treated: object
    control: object
    table: pd.DataFrame


# ----------------------------------------------------------------------------- curves
def rmst(km, horizon: float) -> float:
    """Restricted mean survival time (months): area under the KM step curve to ``horizon``.

    Agrees with R ``print(survfit(...), rmean = horizon)``.
    """
    return rmst_steps(km.time, km.surv, horizon)


def rmst_steps(times, surv, horizon: float) -> float:
    t = np.r_[0.0, times]
    s = np.r_[1.0, surv]
    right = np.minimum(np.r_[t[1:], horizon], horizon)
    width = np.clip(right - t, 0.0, None)
    return float(np.sum(s * width))


def surv_at(times, surv, t: float) -> float:
    """S(t) of a step curve; NaN beyond the last time unless the curve reached 0."""
    if t > times[-1] and surv[-1] > 0:
        return float("nan")  # nobody followed that long: not estimable
    i = np.searchsorted(times, t, side="right") - 1
    return 1.0 if i < 0 else float(surv[i])


def curve_values(curves, landmarks, horizons) -> dict:
    """Landmark survival and RMST per arm and their differences (treated - control)."""
    (t1, s1), (t0, s0) = curves
    values = {}
    for t in landmarks:
        a, b = surv_at(t1, s1, t), surv_at(t0, s0, t)
        values[("survival", t)] = (a, b, a - b)
    for h in horizons:
        a, b = rmst_steps(t1, s1, h), rmst_steps(t0, s0, h)
        values[("rmst", h)] = (a, b, a - b)
    return values


def curve_stats(time, event, tx, w, landmarks, horizons, arm_labels=("treated", "control")):
    """Weighted KM per arm (full curves with CIs) and their landmark/RMST values."""
    arms = []
    for arm, label in ((1, arm_labels[0]), (0, arm_labels[1])):
        sel = (tx == arm) & (w > 0)
        arms.append(kaplan_meier(time[sel], event[sel], weights=w[sel], label=label))
    return arms, curve_values([(k.time, k.surv) for k in arms], landmarks, horizons)


def fast_curve_values(time, event, tx, w, landmarks, horizons) -> dict:
    """The same values from the bare step functions (bootstrap replicates)."""
    curves = [survival_curve(time[(tx == arm) & (w > 0)], event[(tx == arm) & (w > 0)],
                             w[(tx == arm) & (w > 0)]) for arm in (1, 0)]
    return curve_values(curves, landmarks, horizons)


def curves_table(values, boot=None, time_col: str = "months") -> pd.DataFrame:
    """One row per landmark / horizon; the time column is named after the time unit.

    ``boot`` (replicates x quantities) holds the replicates' differences, NaN where a
    replicate failed or is left out (separation rule); percentile CI from >= 10 of them.
    """
    rows = []
    for i, ((kind, t), (v1, v0, diff)) in enumerate(values.items()):
        row = {"quantity": kind, time_col: t, "treated": v1, "control": v0,
               "difference": diff, "boot_ci_lower": None, "boot_ci_upper": None}
        if boot is not None and np.isfinite(boot[:, i]).sum() >= 10:
            lo, hi = np.nanpercentile(boot[:, i], [2.5, 97.5])
            row.update(boot_ci_lower=float(lo), boot_ci_upper=float(hi))
        rows.append(row)
    return pd.DataFrame(rows)


def curve_values_many(time, event, tx, weights, landmarks, horizons) -> np.ndarray:
    """fast_curve_values for many weight vectors at once: (B, quantities, 3).

    Weighted KM per arm over the arm's distinct times; at a time where a vector has no
    weight nobody dies, a factor exactly 1 of the product, so each curve is the one on
    the vector's own rows. Landmark S(t) (NaN beyond the vector's last time unless its
    curve reached 0) and RMST are read off as there. Quantities are ordered as
    ``curve_values``: landmarks, then RMST horizons; the last axis is (treated,
    control, treated - control).
    """
    arms = []
    for arm in (1, 0):
        sel = np.flatnonzero(tx == arm)
        sel = sel[np.argsort(time[sel], kind="stable")]
        t_arm = time[sel]
        starts = np.flatnonzero(np.r_[True, t_arm[1:] != t_arm[:-1]])
        uniq = t_arm[starts]
        w = np.ascontiguousarray(weights[:, sel])
        n_total = np.add.reduceat(w, starts, axis=1)
        n_event = np.add.reduceat(w * event[sel], starts, axis=1)
        n_risk = np.cumsum(n_total[:, ::-1], axis=1)[:, ::-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            surv = np.cumprod(np.where(n_event > 0, 1 - n_event / n_risk, 1.0), axis=1)
        last = np.max(np.where(w > 0, t_arm, -np.inf), axis=1)
        values = []
        for t in landmarks:
            i = np.searchsorted(uniq, t, side="right") - 1
            s = np.ones(len(w)) if i < 0 else surv[:, i].copy()
            s[(t > last) & (surv[:, -1] > 0)] = np.nan   # nobody followed that long
            values.append(s)
        steps = np.c_[np.ones(len(w)), surv]
        for h in horizons:
            width = np.clip(np.minimum(np.r_[uniq, h], h) - np.r_[0.0, uniq], 0.0, None)
            values.append(row_sum(steps * width))
        arms.append(np.stack(values, axis=1))
    return np.stack([arms[0], arms[1], arms[0] - arms[1]], axis=-1)


