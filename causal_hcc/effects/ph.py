"""Proportional hazards of every Cox model behind a reported HR: cox.zph tests and the
scaled Schoenfeld residuals of the treatment term, for the report's table and plots.

Each model of :func:`causal_hcc.effects.estimate.estimate_effects` (crude, multivariable,
PSM, PSM stratified on matched set, IPTW per estimand, covariate-adjusted weighted Cox) is
refitted with the same data, weights, strata and ties, and tested with
:func:`causal_hcc.survival.zph.cox_zph` (R survival 3.x ``cox.zph``, ``transform = "km"``).
A weighted HR is an average over follow-up: when the hazards are not proportional it
still summarises, but the time-specific contrasts (landmark survival and RMST
differences, in the adjusted-curves tables) are the ones to read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.effects.estimate import cohort_arrays, model_matrix
from causal_hcc.survival.cox import fit_cox
from causal_hcc.survival.zph import cox_zph

#: A P value of the treatment term below this is reported as evidence of non-PH.
PH_ALPHA = 0.05


@dataclass(frozen=True)
class PHCheck:
    """The PH test of one model's treatment term (and its global test).

    ``time`` and ``residual`` are the event times and the scaled Schoenfeld residuals of
    the treatment term (log-HR scale; empty for a stratified model), ``coef`` the fitted
    log HR: the residuals scatter around it when hazards are proportional.
    """

    method: str
    estimand: str | None
    label: str
    chisq: float
    p: float
    global_chisq: float
    global_df: int
    global_p: float
    coef: float
    time: np.ndarray
    residual: np.ndarray
    weighted: bool

    @property
    def violated(self) -> bool:
        return bool(self.p < PH_ALPHA)


def schoenfeld_scaled(time, event, x, weights, coef, variance) -> tuple[np.ndarray, np.ndarray]:
    """Event times and scaled Schoenfeld residuals (n_events x p), as R ``cox.zph(fit)$y``.

    r_i = x_i - xbar(t_i): xbar the (weight x risk)-weighted mean over the risk set at t_i,
    with Efron's correction for tied events (the mean of xbar over the m Efron slots, the
    k-th removing k/m of the tied deaths); scaled as R does: beta + d V r_i, d the number
    of events and V the model variance. Unstratified models only.
    """
    order = np.lexsort((-np.asarray(event), -np.asarray(time)))   # time descending
    t, d, xs, w = time[order], event[order].astype(bool), x[order], weights[order]
    r = w * np.exp(xs @ coef)
    s0 = np.cumsum(r)
    s1 = np.cumsum(r[:, None] * xs, axis=0)
    # the risk set at t includes every row with time >= t: the last row of its time run
    last = np.searchsorted(-t, -t, side="right") - 1
    dt = t[d]
    group = np.unique(dt, return_inverse=True)[1].ravel()
    m = np.bincount(group).astype(float)
    d0 = np.bincount(group, weights=r[d])
    d1 = np.stack([np.bincount(group, weights=r[d] * xs[d, j]) for j in range(xs.shape[1])],
                  axis=1)
    first = np.zeros(m.size, dtype=int)
    first[group[::-1]] = np.flatnonzero(d)[::-1]          # any row of the group: same run
    a0, a1 = s0[last[first]], s1[last[first]]
    xbar = np.zeros_like(a1)
    for k in range(int(m.max())):
        use = k < m
        frac = np.where(use, k / m, 0.0)
        xbar += np.where(use[:, None], (a1 - frac[:, None] * d1)
                         / (a0 - frac * d0)[:, None], 0.0)
    xbar /= m[:, None]
    resid = xs[d] - xbar[group]
    scaled = coef + d.sum() * resid @ variance
    back = np.argsort(dt, kind="stable")
    return dt[back], scaled[back]


def _model_specs(effects):
    """(method, estimand, label, weights, strata, with covariates) of each tested model."""
    m = effects.matched
    specs = [("crude", None, "Crude Cox", None, None, False),
             ("multivariable", None, "Multivariable Cox", None, None, True),
             ("psm", m.estimand, f"PSM ({m.estimand.split(' ')[0]})", m.weights, None, False)]
    if not m.replace:
        specs.append(("psm_stratified", m.estimand, "PSM, stratified on matched set",
                      m.weights, m.subclass, False))
    specs += [("iptw", k, f"IPTW ({k})", w.weights, None, False)
              for k, w in effects.weights.items()]
    if "ATE" in effects.weights:
        specs.append(("weighted_cox_adjusted", None, "IPTW (ATE) + covariates",
                      effects.weights["ATE"].weights, None, True))
    return specs


def ph_checks(cohort, effects, transform: str = "km") -> tuple[PHCheck, ...]:
    """cox.zph of each model behind the HRs of ``effects`` (an EffectsReport).

    Parameters
    ----------
    cohort : Cohort
        The cohort the effects were estimated on.
    effects : EffectsReport
    transform : str
        Time transform of the test (R's default ``"km"``).

    Returns
    -------
    tuple of PHCheck
        One per model that could be fitted, in the order of the effects table; the
        treatment term's test (1 df) and the global test.
    """
    time, event, tx, design = cohort_arrays(cohort, effects.covariates)
    out = []
    for method, estimand, label, weights, strata, with_cov in _model_specs(effects):
        x, names = model_matrix(tx, design, with_cov, cohort.roles.treatment)
        w = np.ones(len(time)) if weights is None else np.asarray(weights, float)
        keep = w > 0
        if event[keep & (tx == 1)].sum() == 0 or event[keep & (tx == 0)].sum() == 0:
            continue
        try:
            fit = fit_cox(time[keep], event[keep], x[keep], names=names,
                          weights=None if weights is None else w[keep],
                          strata=None if strata is None else np.asarray(strata)[keep])
            test = cox_zph(fit, transform=transform)
        except (ValueError, np.linalg.LinAlgError, ArithmeticError):
            continue
        if strata is None:
            ts, res = schoenfeld_scaled(time[keep], event[keep], x[keep], w[keep], fit.coef,
                                        fit.variance_model)
            res = res[:, 0]
        else:
            ts, res = np.empty(0), np.empty(0)
        out.append(PHCheck(method, estimand, label, float(test.chisq[0]), float(test.p[0]),
                           float(test.global_chisq), int(test.global_df),
                           float(test.global_p), float(fit.coef[0]), ts, res,
                           weights is not None))
    return tuple(out)


def ph_frame(checks) -> pd.DataFrame:
    """One row per model: method, estimand, model, chisq, p (treatment term), global_chisq,
    global_df, global_p, violated (p < 0.05)."""
    return pd.DataFrame([{"method": c.method, "estimand": c.estimand, "model": c.label,
                          "chisq": c.chisq, "p": c.p, "global_chisq": c.global_chisq,
                          "global_df": c.global_df, "global_p": c.global_p,
                          "violated": c.violated} for c in checks])
