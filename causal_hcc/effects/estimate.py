"""One hazard ratio of treated vs control from a Cox model: the estimate every method shares.

:func:`cox_effect` is the one Cox-based estimation step of the effects stage, the
specification grid and the subgroup analyses, so their numbers are the same computation.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np

from causal_hcc.data.cohort import Cohort
from causal_hcc.design import build_design
from causal_hcc.matching import MatchedSample
from causal_hcc.propensity import PropensityModel
from causal_hcc.survival.cox import fit_cox, wald
from causal_hcc.survival.risk_sets import subset_order


IPTW_ESTIMANDS = (("ATE", True), ("ATT", False), ("ATC", False), ("ATO", False))


@dataclass(frozen=True)
class EffectEstimate:
    """One adjusted (or crude) hazard ratio of treated vs control (``comparison``).

    ``se_log_hr`` is the SE of log HR of type ``variance`` (model, robust or
    cluster_robust); ``boot_ci_*`` are bootstrap percentile limits (None when not
    bootstrapped), from ``n_boot`` accepted replicates (``n_boot_failed`` failed or, under
    the default separation rule, separated); ``boot_ci_all_*`` from every replicate that
    gave a number, separated ones included; ``n_boot_separated`` counts the replicates
    whose PS model separated; ``boot_note`` says why a CI is withheld or what was left out
    (:mod:`causal_hcc.effects.bootstrap`).
    ``n_treated``/``n_control`` count patients with positive weight; ``events`` the events
    among them. ``identified`` is the verdict of :mod:`causal_hcc.identification` (True /
    False for a causal estimand, None for crude and conditional HRs), explained in
    ``identification_note``.
    """

    method: str
    estimand: str | None
    description: str
    hr: float
    ci_lower: float
    ci_upper: float
    p_value: float
    se_log_hr: float
    variance: str
    n_treated: int
    n_control: int
    events: int
    covariates: tuple = ()
    ess_treated: float | None = None
    ess_control: float | None = None
    boot_ci_lower: float | None = None
    boot_ci_upper: float | None = None
    n_boot: int = 0
    n_boot_failed: int = 0
    boot_ci_all_lower: float | None = None
    boot_ci_all_upper: float | None = None
    n_boot_separated: int = 0
    boot_note: str = ""
    comparison: str = "treated vs control (reference)"
    estimable: bool = True
    reason: str = ""
    identified: bool | None = None
    identification_note: str = ""

    def to_dict(self) -> dict:
        return dict(vars(self), covariates=list(self.covariates))


# ----------------------------------------------------------------------------- recording
@dataclass(frozen=True)
class FitRecord:
    """A treatment-only Cox fit made by :func:`cox_effect` (inside :func:`recording_fits`):
    its inputs as passed (full length, weight-0 rows included) and what leave-one-out
    influence needs, so that :mod:`causal_hcc.identification` does not refit it."""

    time: np.ndarray
    event: np.ndarray
    treated: np.ndarray
    weights: np.ndarray | None
    strata: np.ndarray | None
    coef: float                 # log HR
    dfbeta: np.ndarray          # weighted dfbeta of the log HR, rows with weight > 0

    def matches(self, time, event, treated, weights, strata) -> bool:
        """Whether this is the fit of exactly these inputs (same values)."""
        same = (lambda a, b: (a is None and b is None) or (
            a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b))))
        w_mine = np.ones(len(self.time)) if self.weights is None else self.weights
        w_other = np.ones(len(time)) if weights is None else weights
        return (same(self.time, time) and same(self.event, event)
                and same(self.treated, treated) and same(w_mine, w_other)
                and same(self.strata, strata))


_RECORDING: list | None = None


@contextmanager
def recording_fits():
    """Collect a :class:`FitRecord` of every treatment-only fit :func:`cox_effect` makes in
    the block (yields the list): adjust hands them to the identification checks, whose
    leave-one-out influence starts from the same fit."""
    global _RECORDING
    outer, _RECORDING = _RECORDING, []
    try:
        yield _RECORDING
    finally:
        _RECORDING = outer


# ----------------------------------------------------------------------------- models
def cox_effect(method, estimand, description, time, event, x, names, *, weights=None,
               strata=None, cluster=None, robust=False, treated=None,
               comparison: str = "treated vs control (reference)",
               arm_labels=("treated", "control"), fitted=None) -> EffectEstimate:
    """Fit one Cox model and return the treatment HR as an EffectEstimate.

    The treatment is the first column of ``x`` (then any covariates); ``weights``,
    ``strata``, ``cluster`` and ``robust`` as :func:`causal_hcc.cox.fit_cox`; ``fitted`` =
    (log HR, its SE, variance type) of this same model fitted in a batch
    (:func:`causal_hcc.survival.cox_many.fit_cox_many` with ``robust``) replaces the
    fit. Rows with
    weight 0 are left out. An arm without deaths gives a not-estimable estimate with the
    reason. Shared by the effects, the specification grid and the subgroup analyses so
    that their numbers are the same computation.
    """
    w = np.ones(len(time)) if weights is None else np.asarray(weights, float)
    keep = w > 0
    tx = x[:, 0] == 1
    n1, n0 = int((keep & tx).sum()), int((keep & ~tx).sum())
    events = int(event[keep].sum())
    ess = ((effective_size(w[keep & tx]), effective_size(w[keep & ~tx]))
           if weights is not None else (None, None))
    common = dict(method=method, estimand=estimand, description=description,
                  n_treated=n1, n_control=n0, events=events, covariates=tuple(names[1:]),
                  ess_treated=ess[0], ess_control=ess[1], comparison=comparison)
    for arm, label in ((tx, arm_labels[0]), (~tx, arm_labels[1])):
        if event[keep & arm].sum() == 0:
            return not_estimable(common, f"no events in the {label} arm of this sample")
    if fitted is not None:
        coef, se, variance = fitted
        wald_ = wald(coef, se)
        return EffectEstimate(hr=float(wald_["hr"]), ci_lower=float(wald_["ci_lower"]),
                              ci_upper=float(wald_["ci_upper"]), p_value=float(wald_["p"]),
                              se_log_hr=float(se), variance=variance, **common)
    order = _time_order(time)
    fit = fit_cox(time[keep], event[keep], x[keep], names=names,
                  weights=None if weights is None else w[keep],
                  strata=None if strata is None else np.asarray(strata)[keep],
                  cluster=None if cluster is None else np.asarray(cluster)[keep], robust=robust,
                  time_sorted=order if keep.all() else subset_order(order, keep))
    if _RECORDING is not None and x.shape[1] == 1:
        _RECORDING.append(FitRecord(time, event, x[:, 0], weights, strata,
                                    float(fit.coef[0]), fit.dfbeta()[:, 0]))
    return EffectEstimate(hr=float(fit.hr[0]), ci_lower=float(fit.ci_lower[0]),
                          ci_upper=float(fit.ci_upper[0]), p_value=float(fit.p[0]),
                          se_log_hr=float(fit.se[0]), variance=fit.variance_type, **common)


_ORDER: list = []           # [(a copy of the times, their stable sort order)] of the last call


def _time_order(time) -> np.ndarray:
    """Stable sort order of ``time``, kept for the next call on the same times: the
    effects stage fits a dozen models on subsets of one cohort, and each subset's order
    follows from the cohort's (:func:`causal_hcc.survival.risk_sets.subset_order`)
    instead of a new sort of up to a million times. The times are compared by value (a
    copy is kept), so a changed array is never given a stale order."""
    time = np.asarray(time, float)
    entry = _ORDER[0] if _ORDER else None       # read once: safe if another thread swaps it
    if entry is not None and np.array_equal(entry[0], time):
        return entry[1]
    order = np.argsort(time, kind="stable")
    _ORDER[:] = [(time.copy(), order)]
    return order


def not_estimable(common, reason) -> EffectEstimate:
    nan = float("nan")
    return EffectEstimate(hr=nan, ci_lower=nan, ci_upper=nan, p_value=nan, se_log_hr=nan,
                          variance="", estimable=False, reason=reason, **common)


def effective_size(w) -> float:
    """Kish effective sample size (sum w)^2 / sum w^2; 0 for no patients."""
    return float(w.sum() ** 2 / (w ** 2).sum()) if w.size else 0.0


def cohort_arrays(cohort: Cohort, covariates):
    design = build_design(cohort.data, covariates, levels=cohort.levels)
    return cohort.time, cohort.event, cohort.treated.astype(float), design


def model_matrix(tx, design, with_covariates: bool, name: str = "treatment"):
    """The treatment first, then the PS design's columns without its intercept."""
    if not with_covariates:
        return tx[:, None], [name]
    x = np.column_stack([tx, design.matrix[:, 1:]])
    return x, [name, *design.terms[1:]]


def matched_effect(time, event, tx, names, weights, subclass, replace: bool, estimand: str,
                   fitted=None, **labels) -> EffectEstimate:
    """Cox in a matched sample: robust SE clustered on matched set (on patient when
    matching with replacement, since sets then overlap). Shared by adjust and
    :func:`causal_hcc.effects.spec.estimate`."""
    if replace:
        return cox_effect("psm", estimand, "Cox in the matched sample (with replacement), "
                          "robust SE clustered on patient", time, event, tx, names,
                          weights=weights, robust=True, fitted=fitted, **labels)
    return cox_effect("psm", estimand, "Cox in the matched sample, robust SE clustered on "
                      "matched set", time, event, tx, names, weights=weights,
                      cluster=subclass, fitted=fitted, **labels)


def weighted_effect(time, event, tx, names, weights, estimand: str, stabilized: bool,
                    fitted=None, **labels) -> EffectEstimate:
    """Weighted Cox with the robust sandwich SE. Shared by adjust and
    :func:`causal_hcc.effects.spec.estimate`."""
    return cox_effect("iptw", estimand, f"weighted Cox ({estimand}"
                      f"{', stabilised' if stabilized else ''}), robust SE", time, event,
                      tx, names, weights=weights, robust=True, fitted=fitted,
                      **labels)


_cox_effect = cox_effect


def estimate_effects(cohort: Cohort, propensity: PropensityModel, matched: MatchedSample,
                     weights: dict, *, arrays=None) -> tuple[EffectEstimate, ...]:
    """Crude, multivariable, PSM (clustered and stratified), IPTW and covariate-adjusted
    weighted Cox HRs. ``arrays``: :func:`cohort_arrays` of the PS covariates when the
    caller has built them (the design matrix takes ~0.5 s at a million patients)."""
    covariates = propensity.covariates
    time, event, tx, design = (cohort_arrays(cohort, covariates) if arrays is None
                               else arrays)
    x1, n1 = model_matrix(tx, design, False, cohort.roles.treatment)
    xa, na = model_matrix(tx, design, True, cohort.roles.treatment)
    labels = dict(comparison=cohort.labels.comparison,
                  arm_labels=(cohort.labels.treated, cohort.labels.control))
    cox_effect = partial(_cox_effect, **labels)
    out = [
        cox_effect("crude", None, "Cox, treatment only", time, event, x1, n1),
        cox_effect("multivariable", None, "Cox adjusted for the PS covariates", time,
                    event, xa, na),
        # The full label: "ATT among matched treated" when treated patients were dropped.
        matched_effect(time, event, x1, n1, matched.weights, matched.subclass,
                       matched.replace, matched.estimand, **labels),
        # Stratified on matched set: a conditional HR (within sets), not a marginal one.
        cox_effect("psm_stratified", f"{matched.estimand} (conditional HR within "
                    "matched sets)", "Cox stratified on "
                    "matched set", time, event, x1, n1, weights=matched.weights,
                    strata=matched.subclass),
    ]
    if matched.replace:
        # With replacement a control sits in several sets: no stratification on them.
        out[3] = not_estimable(dict(method="psm_stratified", estimand="ATT",
                                     description="Cox stratified on matched set",
                                     n_treated=0, n_control=0, events=0,
                                     comparison=cohort.labels.comparison),
                                "matched sets overlap when matching with replacement")
    for estimand, w in weights.items():
        out.append(weighted_effect(time, event, x1, n1, w.weights, estimand, w.stabilized,
                                   **labels))
    ate = weights.get("ATE")
    if ate is not None:
        # Not doubly robust and not an ATE: a weighted Cox model with the covariates added
        # estimates a conditional HR (HRs are non-collapsible). AIPW is the doubly robust
        # estimator (effects.aipw, adjusted_curves.csv).
        out.append(cox_effect("weighted_cox_adjusted", None, "covariate-adjusted weighted "
                               "Cox (stabilised ATE weights + the PS covariates), robust SE: "
                               "a conditional HR, not a marginal one", time, event, xa, na,
                               weights=ate.weights, robust=True))
    return tuple(out)


