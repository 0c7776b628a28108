"""E-values of an effects report: one EValueRecord per hazard ratio, landmark survival
difference and RMST difference (:func:`effect_evalues`), for
:func:`~causal_hcc.sensitivity.analysis.run_sensitivity`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from causal_hcc.effects import EffectsReport
from causal_hcc.sensitivity.evalues import (EValueResult, evalue_hr,
                                            evalue_landmark_difference,
                                            evalue_rmst_difference)


@dataclass(frozen=True, kw_only=True)
class EValueRecord(EValueResult):
    """E-value of one estimate of an effects report: an :class:`EValueResult` plus which.

    ``method`` and ``estimand`` name the estimate; ``months`` is the landmark or RMST
    horizon in the cohort's time unit (None for HRs); ``hr`` equals ``estimate`` for HRs
    and is None otherwise. ``evalue_ci`` is from the Wald CI; for a bootstrapped HR,
    ``evalue_ci_boot`` is the E-value of the bootstrap percentile CI
    (``boot_ci_lower/upper``, replicates with a separated PS left out by default) and
    ``ci_limit_boot`` its limit (None when not bootstrapped or the CI was withheld).
    """

    method: str
    estimand: str | None
    months: float | None = None
    hr: float | None = None
    boot_ci_lower: float | None = None
    boot_ci_upper: float | None = None
    evalue_ci_boot: float | None = None
    ci_limit_boot: str | None = None


def _record(method, estimand, months, result: EValueResult, hr=None) -> EValueRecord:
    return EValueRecord(**asdict(result), method=method, estimand=estimand, months=months,
                        hr=hr)


def _not_estimable_record(method, estimand, measure, months, estimate, hr, ci, note):
    nan = float("nan")
    return EValueRecord(measure=measure, estimate=estimate, ci_lower=ci[0], ci_upper=ci[1],
                        rr=nan, rr_lower=nan, rr_upper=nan, evalue_point=nan, evalue_ci=nan,
                        ci_limit="none", direction="null", outcome_conversion="not applicable",
                        conversion_reason="", estimable=False, note=note, method=method,
                        estimand=estimand, months=months, hr=hr)


def _outcome_proportion(effects: EffectsReport) -> tuple[float, str]:
    crude = next(e for e in effects.estimates if e.method == "crude")
    n = crude.n_treated + crude.n_control
    return crude.events / n, (f"{crude.events} of {n} patients died during follow-up (a "
                              "lower bound of the proportion dead by its end)")


def effect_evalues(effects: EffectsReport, *, outcome_proportion: float | None = None
                   ) -> tuple[EValueRecord, ...]:
    """E-values for every HR of an effects report, and for its curve differences.

    Parameters
    ----------
    effects : EffectsReport
    outcome_proportion : float, optional
        Proportion dead by the end of follow-up; default deaths / patients of the crude
        estimate (32/76 = 42% in the bundled cohort: a common outcome, so HRs are converted
        to risk ratios, VanderWeele 2020).

    Returns
    -------
    tuple of EValueRecord
        One per estimate (crude, multivariable, PSM, PSM stratified, IPTW per estimand,
        covariate-adjusted weighted Cox), then per adjusted curve (PSM, IPTW ATE): each landmark survival
        difference (risk ratio of death by the landmark, point estimate only) and each RMST
        difference (no published conversion: a not-estimable record saying so).

    Notes
    -----
    :func:`~causal_hcc.sensitivity.evalues.evalue_hr` (R ``EValue::evalues.HR``) on the Wald
    CI of each HR, and on its bootstrap percentile CI when it has one (the two can
    disagree: on the bundled cohort the IPTW ATE Wald CI is far wider). Landmark differences carry no CI: the weighted-KM Greenwood SEs of the
    adjusted curves ignore the estimation of the weights and the matched-set dependence.

    References
    ----------
    VanderWeele TJ, Ding P. Ann Intern Med 2017;167:268-274.
    """
    reason = ""
    if outcome_proportion is None:
        outcome_proportion, reason = _outcome_proportion(effects)
    nan = float("nan")
    out = []
    for e in effects.estimates:
        if not e.estimable or not all(map(math.isfinite, (e.hr, e.ci_lower, e.ci_upper))):
            out.append(_not_estimable_record(e.method, e.estimand, "HR", None, e.hr, e.hr,
                                             (e.ci_lower, e.ci_upper),
                                             f"HR not estimable: {e.reason}"))
            continue
        res = evalue_hr(e.hr, e.ci_lower, e.ci_upper, outcome_proportion=outcome_proportion)
        rec = _record(e.method, e.estimand, None, res, e.hr)
        if e.boot_ci_lower is not None and e.boot_ci_upper is not None:
            boot = evalue_hr(e.hr, e.boot_ci_lower, e.boot_ci_upper,
                             outcome_proportion=outcome_proportion)
            rec = EValueRecord(**{**asdict(rec), "boot_ci_lower": e.boot_ci_lower,
                                  "boot_ci_upper": e.boot_ci_upper,
                                  "evalue_ci_boot": boot.evalue_ci,
                                  "ci_limit_boot": boot.ci_limit})
        if reason:
            rec = EValueRecord(**{**asdict(rec), "conversion_reason":
                                  f"{rec.conversion_reason}; {reason}"})
        out.append(rec)
    unit = effects.time_unit
    for curves in effects.curves:
        for row in curves.table.rename(columns={unit: "months"}).itertuples():
            if row.quantity == "rmst":
                res = evalue_rmst_difference(row.difference, horizon_months=row.months)
            elif not (math.isfinite(row.treated) and math.isfinite(row.control)):
                out.append(_not_estimable_record(
                    curves.method, curves.estimand, "landmark risk difference",
                    float(row.months), float(row.difference), None, (nan, nan),
                    f"Survival at {row.months:g} {effects.time_unit} not estimable (beyond "
                    "follow-up in "
                    "an arm)."))
                continue
            else:
                res = evalue_landmark_difference(row.treated, row.control, row.months)
            out.append(_record(curves.method, curves.estimand, float(row.months), res))
    return tuple(out)
