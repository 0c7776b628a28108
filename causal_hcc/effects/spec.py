"""One estimation path: a :class:`Specification` of analytic choices and :func:`estimate`.

A specification names everything that changes a propensity-score hazard ratio: the family
(``"psm"`` matching or ``"iptw"`` weighting), the PS covariates (numeric ones optionally as
natural splines), and the options of that family (caliper, ratio, replacement, order;
estimand, stabilisation, trimming, truncation). :func:`estimate` turns a cohort and a
specification into one :class:`~causal_hcc.effects.estimate.EffectEstimate` plus the
balance it achieves (max |SMD| over the PS covariates). The specification grid, the
subgroup and landmark analyses of :mod:`causal_hcc.sensitivity` call it, and
:func:`causal_hcc.effects.adjust`'s PSM and IPTW rows come from the same two functions
(:func:`matched_effect`, :func:`weighted_effect`), so one analytic choice gives one number
wherever it is made.

Loops over many specifications of one covariate set fit the PS once: :func:`prepare` then
:func:`estimate_prepared` per specification (what :func:`estimate` does for one).

Conventions: PSM Cox with matching weights and a cluster-robust SE over matched sets (on
patient when matching with replacement; R ``coxph(..., weights, cluster = subclass)``);
IPTW Cox with the robust sandwich SE (R ``coxph(..., weights, robust = TRUE)``); SMD as in
:mod:`causal_hcc.balance` (denominator the treated arm's SD for matching and ATT, the
control arm's for ATC, pooled for ATE and ATO; unadjusted sample).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from causal_hcc.balance import variable_rows
from causal_hcc.data.cohort import Cohort
from causal_hcc.effects.estimate import (EffectEstimate, matched_effect, not_estimable,
                                         weighted_effect)
from causal_hcc.errors import (CohortError, ConvergenceWarning, NotEstimableError,
                               SeparationWarning, SmallSampleWarning)
from causal_hcc.matching import match_on_logit
from causal_hcc.propensity import fit_propensity
from causal_hcc.survival.cox_many import fit_cox_many
from causal_hcc.weighting import ps_weights

FAMILIES = ("psm", "iptw")
_TINY = np.sqrt(np.finfo(float).eps)


@dataclass(frozen=True)
class Specification:
    """One combination of analytic choices for a propensity-score hazard ratio.

    Attributes
    ----------
    family : {"psm", "iptw"}
    covariates : tuple of str
        PS covariates.
    splines : tuple of (str, int)
        Numeric covariates entered as natural cubic splines with that df (R ``ns``).
    caliper_sd, ratio, replace, order, order_seed, ties
        Matching (:func:`causal_hcc.matching.match_on_logit`); caliper in SDs of the logit
        PS (MatchIt's SD over all patients), None for none; ``ties="all"`` (default, as
        :func:`causal_hcc.effects.adjust`) is the order-free rule, ``"matchit"`` MatchIt's
        greedy rule.
    estimand : str
        IPTW: "ATE", "ATT", "ATC" or "ATO". Matching: "ATT" (treated are matched).
    stabilized : bool
    trim, truncate : (low, high) or None
        PS limits for trimming; weight percentiles for truncation (per arm).
    name : str
        A label for the covariate set (e.g. "default", "without age").
    """

    family: str
    covariates: tuple = ()
    splines: tuple = ()
    caliper_sd: float | None = 0.2
    ratio: int = 1
    replace: bool = False
    order: str = "largest"
    order_seed: int | None = None
    estimand: str = "ATT"
    stabilized: bool = False
    trim: tuple | None = None
    truncate: tuple | None = None
    name: str = "default"
    ties: str = "all"

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family {self.family!r}: use one of {FAMILIES}")
        object.__setattr__(self, "covariates", tuple(self.covariates))
        splines = self.splines.items() if isinstance(self.splines, dict) else self.splines
        object.__setattr__(self, "splines", tuple((str(k), int(v)) for k, v in splines))
        for name in ("trim", "truncate"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(x) for x in value))

    @classmethod
    def psm(cls, covariates, *, caliper_sd=0.2, ratio=1, replace=False, order="largest",
            order_seed=None, splines=(), name="default", ties="all") -> "Specification":
        """Matching on the logit PS (default: 1:1, caliper 0.2 SD, largest first,
        order-free ties)."""
        return cls("psm", covariates, splines, caliper_sd, int(ratio), bool(replace), order,
                   order_seed, "ATT", name=name, ties=ties)

    @classmethod
    def iptw(cls, covariates, *, estimand="ATE", stabilized=True, trim=None, truncate=None,
             splines=(), name="default") -> "Specification":
        """Inverse probability weighting (default: ATE, stabilised, untrimmed)."""
        return cls("iptw", covariates, splines, None, estimand=estimand,
                   stabilized=bool(stabilized), trim=trim, truncate=truncate, name=name)

    @property
    def spline_dict(self) -> dict:
        return dict(self.splines)

    @property
    def key(self) -> tuple:
        """What the PS model depends on: covariates and splines."""
        return self.covariates, self.splines

    def with_covariates(self, covariates, name: str | None = None) -> "Specification":
        return replace(self, covariates=tuple(covariates),
                       name=self.name if name is None else name)


@dataclass(frozen=True)
class SpecResult:
    """The estimate of one specification and the balance it achieves.

    ``max_abs_smd`` is the largest |SMD| over the PS covariates after adjustment (each
    category level a row; NaN when not estimable), with ``smd_denominator``; ``notes``
    hold the PS model's small-sample warnings and trimming counts.
    """

    spec: Specification
    estimate: EffectEstimate
    max_abs_smd: float = float("nan")
    smd_denominator: str = ""
    notes: tuple = field(default=())
    estimand_text: str = ""     # the matching's own wording, e.g. "ATT (matched treated)"

    @property
    def estimable(self) -> bool:
        return self.estimate.estimable


@dataclass(frozen=True)
class Prepared:
    """Arrays shared by every specification of one PS model (covariates + splines)."""

    time: np.ndarray
    event: np.ndarray
    treated: np.ndarray
    ps: np.ndarray | None
    logit_ps: np.ndarray | None
    balance_x: np.ndarray | None    # n x r: one column per balance row of the covariates
    var_treated: np.ndarray | None  # unadjusted variances per row and arm (SMD denominators)
    var_control: np.ndarray | None
    treatment: str
    comparison: str
    arm_labels: tuple
    reason: str = ""
    notes: tuple = ()


def _balance_columns(cohort: Cohort, covariates, treated):
    cols, binary = [], []
    for name in dict.fromkeys(covariates):
        for _level, kind, x in variable_rows(cohort.data, name, cohort.levels, cohort.kinds):
            cols.append(x)
            binary.append(kind != "continuous")
    x = np.column_stack(cols)
    binary = np.asarray(binary)
    var = []
    for arm in (1, 0):
        xa = x[treated == arm]
        m = xa.mean(axis=0)
        var.append(np.where(binary, m * (1 - m), xa.var(axis=0, ddof=1)))
    return x, var[0], var[1]


def prepare(cohort: Cohort, covariates, splines=()) -> Prepared:
    """Fit the PS of one covariate set once (for many specifications).

    A PS model that cannot be used (a column absent, separation, no convergence) gives a
    :class:`Prepared` whose ``reason`` says why; every specification on it is then not
    estimable with that reason. Separation makes the unpenalised PS not identified, so its
    weights and the caliper (in SDs of an arbitrary logit) would be arbitrary too.
    """
    covariates = tuple(covariates)
    splines = dict(splines.items() if isinstance(splines, dict) else splines)
    lab = cohort.labels
    common = dict(time=cohort.time, event=cohort.event, treated=cohort.treated,
                  treatment=cohort.roles.treatment, comparison=lab.comparison,
                  arm_labels=(lab.treated, lab.control))
    empty = dict(ps=None, logit_ps=None, balance_x=None, var_treated=None, var_control=None)
    absent = [c for c in covariates if c not in cohort.data]
    if absent:
        return Prepared(**common, **empty, reason=f"column(s) {absent} not in the data")
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = fit_propensity(cohort, covariates, splines=splines or None,
                                   pattern_counts=False)
        except (CohortError, NotEstimableError, ValueError) as exc:
            return Prepared(**common, **empty, reason="PS model not estimable: "
                            + " ".join(str(exc).split()))
    for w in caught:
        message = str(w.message)
        if issubclass(w.category, SmallSampleWarning):
            notes.append("PS model: " + message)
        elif not issubclass(w.category, (SeparationWarning, ConvergenceWarning)):
            notes.append(f"PS model ({w.category.__name__}): {message}")
    reason = ""
    if model.separation != "none":
        reason = (f"{model.separation} separation in the PS model "
                  f"({', '.join(model.separated_covariates) or 'fitted PS 0 or 1'}): "
                  "the unpenalised PS is not identified")
    elif not model.converged:
        reason = "the PS model did not converge"
    if reason:
        return Prepared(**common, **empty, reason=reason, notes=tuple(notes))
    x, vt, vc = _balance_columns(cohort, covariates, common["treated"])
    return Prepared(**common, ps=np.asarray(model.ps, float),
                    logit_ps=np.asarray(model.logit_ps, float), balance_x=x, var_treated=vt,
                    var_control=vc, notes=tuple(notes))


def max_abs_smd(prep: Prepared, weights, denominator: str) -> float:
    """Largest |SMD| over the PS covariates after adjustment (balance.py's convention)."""
    w = np.asarray(weights, float)
    pooled = np.sqrt((prep.var_treated + prep.var_control) / 2)
    sd = {"treated": np.sqrt(prep.var_treated),
          "control": np.sqrt(prep.var_control)}.get(denominator, pooled)
    sd = np.where(sd < _TINY, np.where(pooled >= _TINY, pooled, np.nan), sd)
    means = []
    for arm in (1, 0):
        sel = (prep.treated == arm) & (w > 0)
        means.append(w[sel] @ prep.balance_x[sel] / w[sel].sum())
    with np.errstate(invalid="ignore"):
        smd = np.abs((means[0] - means[1]) / sd)
    return float(np.nanmax(smd)) if np.isfinite(smd).any() else float("nan")


def _smd_denominator(family: str, estimand: str) -> str:
    if family == "psm" or estimand == "ATT":
        return "treated"
    return "control" if estimand == "ATC" else "pooled"


# ----------------------------------------------------------------------------- the Cox step
def _guarded(fn, common) -> EffectEstimate:
    """Run a Cox step; separation / convergence trouble or a non-finite HR -> not estimable."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est = fn()
        except NotEstimableError as exc:
            return not_estimable(common, str(exc))
    trouble = [str(w.message) for w in caught
               if issubclass(w.category, (SeparationWarning, ConvergenceWarning))]
    reason = ""
    if trouble:
        reason = trouble[0] if trouble[0].startswith("Cox model") else "Cox model: " + trouble[0]
    elif est.estimable and not np.all(np.isfinite([est.hr, est.ci_lower, est.ci_upper])):
        reason = "Cox model: non-finite hazard ratio or CI"
    if reason:   # an estimate that cannot be trusted is not reported
        fields = {k: getattr(est, k) for k in ("method", "estimand", "description",
                                               "n_treated", "n_control", "events",
                                               "covariates", "ess_treated", "ess_control",
                                               "comparison")}
        return not_estimable(fields, reason)
    return est


@dataclass(frozen=True)
class _Weighted:
    """A specification whose weights are made, waiting for its Cox step."""

    spec: Specification
    weights: np.ndarray
    cox: object               # fitted -> EffectEstimate (the guarded Cox step)
    common: dict
    notes: tuple
    denominator: str
    estimand_text: str
    cluster: np.ndarray | None = None    # matched sets of a cluster-robust SE


def _weigh(prep: Prepared, spec: Specification):
    """The matching or weighting step of one specification: a final (not estimable)
    SpecResult, or a :class:`_Weighted` for the Cox step."""
    estimand = "ATT" if spec.family == "psm" else spec.estimand
    common = dict(method=spec.family, estimand=estimand, description="", n_treated=0,
                  n_control=0, events=0, comparison=prep.comparison)
    notes = list(prep.notes)
    if prep.reason:
        return SpecResult(spec, not_estimable(common, prep.reason), notes=tuple(notes))
    tx = prep.treated.astype(float)[:, None]
    names = [prep.treatment]
    labels = dict(comparison=prep.comparison, arm_labels=prep.arm_labels)
    denominator = _smd_denominator(spec.family, estimand)
    if spec.family == "psm":
        try:
            m = match_on_logit(prep.logit_ps, prep.treated, ratio=spec.ratio,
                               caliper_sd=spec.caliper_sd, replace=spec.replace,
                               order=spec.order, seed=spec.order_seed, ties=spec.ties)
        except NotEstimableError as exc:
            return SpecResult(spec, not_estimable(common, str(exc)), notes=tuple(notes))
        estimand = m.estimand.split(" ")[0]
        common["estimand"] = estimand

        def cox(fitted=None):
            return _guarded(lambda: matched_effect(
                prep.time, prep.event, tx, names, m.weights, m.subclass, spec.replace,
                estimand, fitted=fitted, **labels), common)
        return _Weighted(spec, m.weights, cox, common, tuple(notes + list(m.notes)),
                         denominator, m.estimand,
                         None if spec.replace else np.asarray(m.subclass))
    if not np.all((prep.ps > 0) & (prep.ps < 1)):
        return SpecResult(spec, not_estimable(common, "fitted PS of 0 or 1: infinite "
                                              "weights"), notes=tuple(notes))
    try:
        weights, keep, _, _ = ps_weights(prep.ps, prep.treated, estimand=estimand,
                                         stabilized=spec.stabilized, trim=spec.trim,
                                         truncate=spec.truncate)
    except NotEstimableError as exc:
        return SpecResult(spec, not_estimable(common, str(exc)), notes=tuple(notes))

    def cox(fitted=None):
        return _guarded(lambda: weighted_effect(
            prep.time, prep.event, tx, names, weights, estimand, spec.stabilized,
            fitted=fitted, **labels), common)
    if spec.trim is not None:
        notes.append(f"{int((~keep).sum())} patients trimmed (PS outside "
                     f"{spec.trim[0]:g}-{spec.trim[1]:g}): {estimand} in the trimmed "
                     "population.")
    return _Weighted(spec, weights, cox, common, tuple(notes), denominator, estimand)


def _finish(prep: Prepared, w: _Weighted, fitted=None) -> SpecResult:
    est = w.cox(fitted)
    return SpecResult(w.spec, est, max_abs_smd(prep, w.weights, w.denominator),
                      w.denominator, w.notes, w.estimand_text)


def estimate_prepared(prep: Prepared, spec: Specification) -> SpecResult:
    """The estimate of one specification on a prepared PS model."""
    step = _weigh(prep, spec)
    return step if isinstance(step, SpecResult) else _finish(prep, step)


def estimate_prepared_many(prep: Prepared, specs) -> list[SpecResult]:
    """:func:`estimate_prepared` of many specifications on one PS model, their Cox models
    fitted in one batch.

    The weights of every specification are made first; then one
    :func:`causal_hcc.survival.cox_many.fit_cox_many` fits all their Cox models
    (treatment only, Efron) at once, with the robust SE of each (clustered on matched set
    for matching without replacement, on patient otherwise), as the one-at-a-time fit. A
    fit the batch flags (no events, separation, no convergence, an infinite coefficient)
    is refitted on its own, so its reason reads as before. The numbers equal the
    one-at-a-time ones to rounding (rtol 1e-12: the batched fit sums in another order).
    """
    steps = [_weigh(prep, spec) for spec in specs]
    pending = [i for i, s in enumerate(steps)
               if isinstance(s, _Weighted) and np.all(np.isfinite(s.weights))
               and np.all(s.weights >= 0)]
    fitted = {}
    if pending:
        n = len(prep.time)
        own = np.arange(n)           # robust on patient: each row its own cluster
        clusters = np.stack([own if steps[i].cluster is None else
                             np.where(steps[i].cluster >= 0, steps[i].cluster, 0)
                             for i in pending])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_cox_many(prep.time, prep.event, prep.treated.astype(float)[:, None],
                               np.stack([steps[i].weights for i in pending]), ties="efron",
                               robust=True, cluster=clusters)
        fitted = {i: (fit.coef[k, 0], fit.se_robust[k, 0],
                      "robust" if steps[i].cluster is None else "cluster_robust")
                  for k, i in enumerate(pending) if fit.status[k] == "ok"}
    return [s if isinstance(s, SpecResult) else _finish(prep, s, fitted.get(i))
            for i, s in enumerate(steps)]


def estimate(cohort: Cohort, spec: Specification) -> SpecResult:
    """The hazard ratio of one specification on one cohort (no bootstrap).

    Parameters
    ----------
    cohort : Cohort
    spec : Specification

    Returns
    -------
    SpecResult
        ``.estimate`` (an EffectEstimate naming the cohort's comparison), ``.max_abs_smd``
        and its denominator, and notes. Statistical trouble (separation, no match within
        the caliper, an arm without events, nobody left after trimming) gives a
        not-estimable estimate with the reason, never an exception.

    Notes
    -----
    Same computation as :func:`causal_hcc.effects.adjust` for the same choices: the
    default PSM (1:1, caliper 0.2 SD, largest first) and IPTW (ATE, stabilised) HRs equal
    ``adjust``'s (tests/test_sensitivity_grid.py).
    """
    return estimate_prepared(prepare(cohort, spec.covariates, spec.splines), spec)
