"""Subgroups: the effect of treatment within the levels of a binary subgroup variable.

A benefit reported "especially" in one subgroup needs a test of interaction, not two
subgroup P values. Here, within each level of a binary subgroup variable (default the
cohort's first ``subgroups`` role; e.g. oligometastatic status in Yang 2025):

- crude Cox HR (model-based SE);
- IPTW ATE HR (stabilised weights, PS re-estimated within the subgroup, robust SE);
- PSM HR (1:1, caliper 0.2 SD of the subgroup's logit PS, largest first, cluster-robust
  SE over matched sets),

each "not estimable" with the reason where it cannot be estimated. Interaction of local
each estimated by :func:`causal_hcc.effects.spec.estimate` on the subgroup. Interaction of
treatment with the subgroup, on the whole cohort, by the Wald test of the product term in

- ``coxph(Surv(time, event) ~ treatment * subgroup)`` (model SE),
- the same adjusted for the PS covariates (model SE),
- the same weighted by the within-subgroup IPTW ATE weights above (robust SE; R
  ``coxph(..., weights = w, robust = TRUE)``).

exp(interaction coefficient) is the ratio of the treatment HRs (subgroup level 1 over
level 0). A subgroup with fewer than ``min_events`` deaths or an arm of fewer than
``min_arm`` patients is too small to say anything: a SmallSampleWarning is raised and the
note travels with the result.

References
----------
Wang R, Lagakos SW, Ware JH, Hunter DJ, Drazen JM. Statistics in medicine - reporting of
subgroup analyses in clinical trials. N Engl J Med 2007;357:2189-2194.
Green KM, Stuart EA. Examining moderation analyses in propensity score methods:
application to depression and substance use. J Consult Clin Psychol 2014;82:773-783.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.design import build_design
from causal_hcc.effects.estimate import cox_effect
from causal_hcc.effects.spec import Specification, estimate_prepared, prepare
from causal_hcc.errors import (CohortError, ConvergenceWarning, NotEstimableError,
                               SeparationWarning, SmallSampleWarning)
from causal_hcc.survival.cox import fit_cox
from causal_hcc.weighting import ps_weights

MIN_EVENTS = 10
MIN_ARM = 5


@dataclass(frozen=True)
class SubgroupEstimate:
    """HR of treated vs control within one subgroup, by one method."""

    subgroup: str
    variable: str
    level: int
    method: str
    estimand: str | None
    hr: float
    ci_lower: float
    ci_upper: float
    p_value: float
    se_log_hr: float
    variance: str
    n_treated: int
    n_control: int
    events: int
    ess_treated: float | None
    ess_control: float | None
    estimable: bool
    reason: str = ""
    note: str = ""
    comparison: str = "treated vs control (reference)"


@dataclass(frozen=True)
class InteractionTest:
    """Wald test of treatment x subgroup in a Cox model of the whole cohort.

    ``ratio_of_hrs`` = exp(interaction coefficient) = HR in level 1 / HR in level 0, with
    its Wald CI; ``hr_level0`` and ``hr_level1`` are the treatment HRs the model
    implies in each level.
    """

    model: str
    description: str
    coef: float
    se: float
    ratio_of_hrs: float
    ci_lower: float
    ci_upper: float
    p_value: float
    hr_level0: float
    hr_level1: float
    variance: str
    n: int
    events: int
    estimable: bool
    reason: str = ""


@dataclass(frozen=True)
class SubgroupAnalysis:
    """Subgroup HRs and tests of interaction for one binary subgroup variable."""

    label: str
    variable: str
    covariates: tuple
    estimates: tuple
    interactions: tuple
    settings: dict
    notes: tuple = field(default=())
    comparison: str = "treated vs control (reference)"

    def to_frame(self) -> pd.DataFrame:
        """One row per subgroup and method."""
        return pd.DataFrame([asdict(e) for e in self.estimates])

    def interaction_frame(self) -> pd.DataFrame:
        """One row per interaction model."""
        return pd.DataFrame([asdict(t) for t in self.interactions])

    def estimate(self, level: int, method: str) -> SubgroupEstimate:
        """The estimate of one subgroup level and method ("crude", "iptw", "psm")."""
        for e in self.estimates:
            if e.level == level and e.method == method:
                return e
        raise KeyError((level, method))

    def summary(self) -> str:
        lines = [self.label,
                 f"Treatment within subgroups of {self.variable} ({self.comparison}); PS "
                 f"re-estimated within each subgroup on {', '.join(self.covariates)}."]
        for e in self.estimates:
            head = (f"  {e.subgroup}, {e.method}{' ' + e.estimand if e.estimand else ''}: "
                    f"{e.n_treated} treated / {e.n_control} control, {e.events} events: ")
            lines.append(head + (f"HR {e.hr:.3f} ({e.ci_lower:.3f}-{e.ci_upper:.3f}), P "
                                 f"{e.p_value:.3g}" if e.estimable
                                 else f"not estimable ({e.reason})"))
        lines.append(f"Interaction treatment x {self.variable} (ratio of HRs, level 1 "
                     "over level 0; Wald test):")
        for t in self.interactions:
            lines.append(f"  {t.model}: " + (
                f"ratio {t.ratio_of_hrs:.3f} ({t.ci_lower:.3f}-{t.ci_upper:.3f}), P "
                f"{t.p_value:.3g} [{t.variance} SE]" if t.estimable
                else f"not estimable ({t.reason})"))
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _estimate(subgroup, variable, level, method, estimand, row, note="",
              comparison="treated vs control (reference)") -> SubgroupEstimate:
    get = row.get
    return SubgroupEstimate(
        subgroup, variable, int(level), method, estimand, float(get("hr", np.nan)),
        float(get("ci_lower", np.nan)), float(get("ci_upper", np.nan)),
        float(get("p_value", np.nan)), float(get("se_log_hr", np.nan)),
        get("variance", "") or "", int(get("n_treated", 0)), int(get("n_control", 0)),
        int(get("events", 0)), _opt(get("ess_treated")), _opt(get("ess_control")),
        bool(get("estimable", False)), get("reason", "") or "",
        " ".join(x for x in (get("note", "") or "", note) if x), comparison)


def _opt(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _row(result) -> dict:
    """A SpecResult / EffectEstimate as the dict _estimate reads."""
    e = getattr(result, "estimate", result)
    row = {k: getattr(e, k) for k in ("hr", "ci_lower", "ci_upper", "p_value", "se_log_hr",
                                      "variance", "n_treated", "n_control", "events",
                                      "ess_treated", "ess_control", "estimable", "reason")}
    notes = getattr(result, "notes", ())
    row["note"] = " ".join(n for n in notes if n)
    row["estimand"] = getattr(result, "estimand_text", "") or e.estimand
    return row


def _crude_row(sub: Cohort) -> dict:
    time, event, tx = sub.time, sub.event, sub.treated.astype(float)
    if tx.min() == tx.max():
        return {"estimable": False, "reason": "only one arm in this subgroup"}
    lab = sub.labels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            e = cox_effect("crude", None, "", time, event, tx[:, None], [sub.roles.treatment],
                           comparison=lab.comparison, arm_labels=(lab.treated, lab.control))
        except NotEstimableError as exc:
            return {"estimable": False, "reason": str(exc)}
    trouble = [str(w.message) for w in caught
               if issubclass(w.category, (SeparationWarning, ConvergenceWarning))]
    row = _row(e)
    if trouble:
        nan = float("nan")
        row.update(estimable=False, reason=trouble[0], hr=nan, ci_lower=nan, ci_upper=nan,
                   p_value=nan, se_log_hr=nan)
    return row


def _levels(cohort: Cohort, variable: str):
    """(level, mask) of the subgroup variable's two levels, 1 first."""
    values = cohort.data[variable].to_numpy()
    return [(level, values == level) for level in (1, 0)]


def _subgroup_weights(cohort: Cohort, covariates, variable, preps=None):
    """Stabilised ATE weights from a PS fitted within each subgroup, or (None, reason).

    ``preps``: level -> the subgroup's PS fit (:func:`~causal_hcc.effects.spec.prepare` of
    ``covariates``) when the caller has it already."""
    w = np.zeros(cohort.n)
    for level, mask in _levels(cohort, variable)[::-1]:
        sub = cohort.subset(mask, f"{variable} = {level}")
        if len(set(sub.treated)) < 2:
            return None, f"{variable} = {level}: only one arm"
        prep = (preps or {}).get(level) or prepare(sub, covariates)
        if prep.reason:
            return None, f"{variable} = {level}: {prep.reason}"
        w[mask] = ps_weights(prep.ps, prep.treated, estimand="ATE", stabilized=True)[0]
    return w, ""


def _interaction(model, description, cohort: Cohort, variable, extra, extra_names,
                 weights=None, robust=False) -> InteractionTest:
    treatment = cohort.roles.treatment
    tx = cohort.treated.astype(float)
    g = cohort.data[variable].to_numpy(float)
    x = np.column_stack([tx, g, tx * g, *([extra] if extra is not None else [])])
    names = [treatment, variable, f"{treatment}:{variable}", *extra_names]
    nan = float("nan")
    n, events = cohort.n, cohort.events
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_cox(cohort.time, cohort.event, x, weights=weights, robust=robust,
                          names=names)
        except NotEstimableError as exc:
            return InteractionTest(model, description, nan, nan, nan, nan, nan, nan, nan, nan,
                                   "", n, events, False, str(exc))
    trouble = [str(w.message) for w in caught
               if issubclass(w.category, (SeparationWarning, ConvergenceWarning))]
    if trouble:
        return InteractionTest(model, description, nan, nan, nan, nan, nan, nan, nan, nan,
                               fit.variance_type, n, events, False, trouble[0])
    b, se = float(fit.coef[2]), float(fit.se[2])
    return InteractionTest(model, description, b, se, float(fit.hr[2]),
                           float(fit.ci_lower[2]), float(fit.ci_upper[2]), float(fit.p[2]),
                           float(np.exp(fit.coef[0])), float(np.exp(fit.coef[0] + b)),
                           fit.variance_type, n, events, True)


def _variable(cohort: Cohort, variable):
    if variable is not None:
        return variable
    if not cohort.roles.subgroups:
        raise ValueError("No subgroup variable: name one (variable=...; role 'subgroups', "
                         "CLI --subgroup COL).")
    return cohort.roles.subgroups[0]


def interaction_tests(cohort: Cohort, variable: str | None = None,
                      covariates=None) -> tuple[InteractionTest, ...]:
    """Wald tests of treatment x ``variable``: crude, adjusted, IPTW-weighted.

    Parameters
    ----------
    cohort : Cohort
    variable : str, optional
        A binary (0/1) column; default the cohort's first ``subgroups`` role.
    covariates : sequence of str, optional
        PS covariates (default ``cohort.roles.covariates``): the adjusted model's
        covariates and the within-subgroup PS models of the weighted one.

    Returns
    -------
    tuple of InteractionTest
        "crude" (model SE), "adjusted" (model SE), "iptw_ate" (robust SE).

    Notes
    -----
    R: ``coxph(Surv(time, event) ~ treatment * subgroup)``, the same ``+ covariates``, and
    the same with ``weights = w,
    robust = TRUE`` where w are stabilised ATE weights from ``glm`` PS models fitted
    within each subgroup (tests/reference/sensitivity.R; coef rtol 1e-6, SE rtol 1e-5).
    """
    variable = _variable(cohort, variable)
    covariates = tuple(cohort.roles.covariates if covariates is None else covariates)
    _check_binary(cohort.data, variable)
    return _interaction_tests(cohort, variable, covariates)


def _interaction_tests(cohort: Cohort, variable, covariates, preps=None):
    treatment = cohort.roles.treatment
    design = build_design(cohort.data, covariates, levels=cohort.levels)
    out = [_interaction("crude", f"Cox {treatment} * {variable}, model SE", cohort,
                        variable, None, []),
           _interaction("adjusted", f"Cox {treatment} * {variable} + "
                        f"{' + '.join(covariates)}, model SE", cohort, variable,
                        design.matrix[:, 1:], list(design.terms[1:]))]
    w, reason = _subgroup_weights(cohort, covariates, variable, preps)
    description = (f"weighted Cox {treatment} * {variable}, stabilised ATE weights from a "
                   "PS fitted within each subgroup, robust SE")
    if w is None:
        nan = float("nan")
        out.append(InteractionTest("iptw_ate", description, nan, nan, nan, nan, nan, nan,
                                   nan, nan, "", cohort.n, cohort.events, False, reason))
    else:
        out.append(_interaction("iptw_ate", description, cohort, variable, None, [],
                                weights=w, robust=True))
    return tuple(out)


def _check_binary(frame, variable) -> None:
    if variable not in frame:
        raise CohortError([f"Column '{variable}' (subgroup) is not in the cohort."])
    values = set(pd.unique(frame[variable].dropna()))
    if not values <= {0, 1} or frame[variable].isna().any():
        raise CohortError([f"Column '{variable}' (subgroup) must be binary 0/1 without "
                           f"missing values; found {sorted(values)}."])


def subgroup_effects(cohort: Cohort, variable: str | None = None, covariates=None, *,
                     caliper_sd: float = 0.2, min_events: int = MIN_EVENTS,
                     min_arm: int = MIN_ARM, ties: str = "all") -> SubgroupAnalysis:
    """Adjusted HRs of treatment within each level of a binary subgroup variable.

    Parameters
    ----------
    cohort : Cohort
    variable : str, optional
        Binary 0/1 subgroup column; default the cohort's first ``subgroups`` role.
    covariates : sequence of str, optional
        PS covariates, re-estimated within each subgroup (default
        ``cohort.roles.covariates``).
    caliper_sd : float
        Caliper of the within-subgroup matching (SDs of the subgroup's logit PS).
    min_events, min_arm : int
        Below ``min_events`` events or ``min_arm`` patients in an arm a subgroup is too
        small to say anything (SmallSampleWarning, and a note).
    ties : {"all", "matchit"}
        Tie rule of the within-subgroup matching (as :func:`causal_hcc.effects.adjust`).

    Returns
    -------
    SubgroupAnalysis

    Warns
    -----
    SmallSampleWarning
        Per subgroup that is too small. Warnings of the within-subgroup PS models (events
        per variable, overlap) are recorded as notes, not raised.

    Notes
    -----
    Each method is :func:`causal_hcc.effects.spec.estimate` on the subgroup (as
    :func:`causal_hcc.effects.adjust` does it, without the bootstrap). The levels are the
    subgroup's 1 then 0.
    """
    variable = _variable(cohort, variable)
    covariates = tuple(cohort.roles.covariates if covariates is None else covariates)
    _check_binary(cohort.data, variable)
    specs = (Specification.iptw(covariates, estimand="ATE", stabilized=True),
             Specification.psm(covariates, caliper_sd=caliper_sd, ties=ties))
    estimates, notes, preps = [], [], {}
    for level, mask in _levels(cohort, variable):
        name = f"{variable} = {level}"
        sub = cohort.subset(mask, name)
        n1 = sub.n_treated
        n0, events = sub.n - n1, sub.events
        small = events < min_events or min(n1, n0) < min_arm
        note = (f"{name}: {events} events, {n1} treated and {n0} control patients (fewer "
                f"than {min_events} events or {min_arm} patients in an arm): too small to say "
                "anything about the effect of treatment in this subgroup." if small
                else "")
        rows = [("crude", None, _crude_row(sub))]
        if min(n1, n0) == 0:
            rows += [(m, None, {"reason": "only one arm in this subgroup"})
                     for m in ("iptw", "psm")]
        else:
            prep = preps[level] = prepare(sub, covariates)
            for spec in specs:
                row = _row(estimate_prepared(prep, spec))
                rows.append((spec.family, "ATE" if spec.family == "iptw"
                             else (row.get("estimand") or "ATT"), row))
        too_small = [] if small else [
            f"{method}: {row['events']} events, {row['n_treated']} treated / "
            f"{row['n_control']} control" for method, _, row in rows
            if row.get("estimable") and (row["events"] < min_events
                                         or min(row["n_treated"], row["n_control"]) < min_arm)]
        if too_small:
            note = (f"{name}: the sample used by {'; '.join(too_small)} has fewer than "
                    f"{min_events} events or {min_arm} patients in an arm: too small to say "
                    "anything from that estimate.")
        if note:
            warnings.warn(note, SmallSampleWarning, stacklevel=2)
            notes.append(note)
        for method, estimand, row in rows:
            applies = small or any(t.startswith(method + ":") for t in too_small)
            estimates.append(_estimate(name, variable, level, method, estimand, row,
                                       note if applies else "", cohort.labels.comparison))
    interactions = _interaction_tests(cohort, variable, covariates, preps)
    settings = {"variable": variable, "covariates": list(covariates),
                "caliper_sd": caliper_sd, "min_events": min_events, "min_arm": min_arm,
                "iptw": "ATE, stabilised within the subgroup, robust SE",
                "psm": "1:1 nearest, largest first, without replacement, cluster-robust SE"}
    notes.append("Whether the effect differs between subgroups is tested by the interaction "
                 "P values, not by comparing the subgroup P values (or separate log-rank "
                 "tests).")
    return SubgroupAnalysis(cohort.label, variable, covariates, tuple(estimates),
                            interactions, settings, tuple(notes), cohort.labels.comparison)
