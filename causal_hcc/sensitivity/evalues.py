"""E-values: how strong an unmeasured confounder would have to be to explain an effect away.

The E-value (VanderWeele & Ding 2017) is the minimum strength of association, on the risk
ratio scale, that an unmeasured confounder would need with both the treatment and the
outcome, conditional on the measured covariates, to fully explain away an observed
treatment-outcome risk ratio:

    E = RR + sqrt(RR * (RR - 1))      for RR >= 1;  RR < 1 (protective) uses 1 / RR.

The E-value of the confidence interval is that of the limit closest to 1, and 1 when the
interval includes 1. Hazard ratios are first put on the risk-ratio scale: unchanged when
the outcome is rare (<= 15% by the end of follow-up), else by VanderWeele's approximate
conversion RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)). These are the formulas of the
R package EValue (``evalues.RR``, ``evalues.HR``, ``threshold``).

References
----------
VanderWeele TJ, Ding P. Sensitivity analysis in observational research: introducing the
E-value. Ann Intern Med 2017;167:268-274.
VanderWeele TJ, Ding P, Mathur M. Technical considerations in the use of the E-value.
J Causal Inference 2019;7:20180007.
VanderWeele TJ. Optimal approximate conversions of odds ratios and hazard ratios to risk
ratios. Biometrics 2020;76:746-752.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from causal_hcc._numeric import norm_ppf

#: Outcome proportion above which an outcome counts as common (EValue's ``rare`` cut-off).
COMMON_OUTCOME_THRESHOLD = 0.15


def evalue_rr(rr: float) -> float:
    """E-value of one risk ratio: RR + sqrt(RR (RR - 1)), with 1/RR when RR < 1.

    Parameters
    ----------
    rr : float
        A risk ratio (> 0).

    Returns
    -------
    float
        The E-value (>= 1; exactly 1 for RR = 1).

    Notes
    -----
    R: ``EValue::threshold(rr)``. Example from VanderWeele & Ding (2017): RR 3.9 gives
    3.9 + sqrt(3.9 x 2.9) = 7.26.
    """
    if not (rr > 0 and math.isfinite(rr)):
        raise ValueError(f"A risk ratio must be positive and finite; got {rr!r}.")
    x = 1.0 / rr if rr < 1 else float(rr)
    return x + math.sqrt(x * (x - 1.0))


def hr_to_rr_common(hr: float) -> float:
    """VanderWeele's conversion of a hazard ratio to a risk ratio for a common outcome.

    RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)); monotone increasing, RR(1) = 1.
    R: the conversion inside ``EValue::evalues.HR(..., rare = FALSE)``.
    """
    if not (hr > 0 and math.isfinite(hr)):
        raise ValueError(f"A hazard ratio must be positive and finite; got {hr!r}.")
    return (1.0 - 0.5 ** math.sqrt(hr)) / (1.0 - 0.5 ** math.sqrt(1.0 / hr))


@dataclass(frozen=True)
class EValueResult:
    """An E-value for a point estimate and its confidence interval, with how it was made.

    Attributes
    ----------
    measure : str
        What was given: ``"RR"``, ``"HR"``, ``"landmark risk difference"`` or
        ``"RMST difference"``.
    estimate, ci_lower, ci_upper : float
        As given (NaN when not given).
    rr, rr_lower, rr_upper : float
        The risk ratio (and limits) the E-values were computed from.
    evalue_point : float
        E-value of the point estimate (NaN when not estimable).
    evalue_ci : float
        E-value of the CI limit closest to 1; 1 when the CI includes 1; NaN without a CI.
    ci_limit : str
        Which limit ``evalue_ci`` belongs to: ``"lower"`` (RR > 1), ``"upper"`` (RR < 1),
        ``"crosses 1"`` or ``"none"``.
    direction : str
        ``"harmful"`` (RR > 1), ``"protective"`` (RR < 1; E-value computed from 1/RR) or
        ``"null"``.
    outcome_conversion : str
        ``"common"`` (HR converted), ``"rare"`` (HR used as RR), or ``"not applicable"``.
    conversion_reason : str
        Why that conversion (what was stated or the outcome proportion and the 15% rule).
    estimable : bool
    note : str
        What was done, or why no E-value exists.
    """

    measure: str
    estimate: float
    ci_lower: float
    ci_upper: float
    rr: float
    rr_lower: float
    rr_upper: float
    evalue_point: float
    evalue_ci: float
    ci_limit: str
    direction: str
    outcome_conversion: str
    conversion_reason: str
    estimable: bool = True
    note: str = ""

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])

    def summary(self) -> str:
        if not self.estimable:
            return f"E-value for the {self.measure}: not estimable. {self.note}"
        ci = ("" if math.isnan(self.ci_lower) else
              f" (95% CI {self.ci_lower:.3g}-{self.ci_upper:.3g})")
        lines = [f"E-value for the {self.measure} {self.estimate:.3g}{ci} "
                 f"[{self.direction}]:",
                 f"  risk ratio used: {self.rr:.4g}"
                 + ("" if math.isnan(self.rr_lower) else
                    f" ({self.rr_lower:.4g}-{self.rr_upper:.4g})"),
                 f"  outcome conversion: {self.outcome_conversion} ({self.conversion_reason})",
                 f"  E-value, point estimate: {self.evalue_point:.3f}"]
        if self.ci_limit != "none":
            which = ("the CI includes 1" if self.ci_limit == "crosses 1"
                     else f"{self.ci_limit} limit")
            lines.append(f"  E-value, confidence limit closest to 1 ({which}): "
                         f"{self.evalue_ci:.3f}")
        if self.note:
            lines.append(f"  Note: {self.note}")
        return "\n".join(lines)


def _nan_or(x) -> float:
    return float("nan") if x is None else float(x)


def _check_interval(estimate, lower, upper, name):
    if (lower is None) != (upper is None):
        raise ValueError("Give both confidence limits or neither.")
    if lower is not None and not (0 < lower <= estimate <= upper):
        raise ValueError(f"Expected 0 < ci_lower <= {name} <= ci_upper; got "
                         f"{lower!r} <= {estimate!r} <= {upper!r}.")


def _from_rr(measure, estimate, lower, upper, rr, rr_lo, rr_hi, conversion, reason,
             note="") -> EValueResult:
    """E-values from a risk ratio and (optional) limits, with EValue's CI rules."""
    point = evalue_rr(rr)
    direction = "harmful" if rr > 1 else "protective" if rr < 1 else "null"
    if rr_lo is None:
        ci_e, limit = float("nan"), "none"
    elif rr > 1:
        ci_e, limit = (1.0, "crosses 1") if rr_lo <= 1 else (evalue_rr(rr_lo), "lower")
    elif rr < 1:
        ci_e, limit = (1.0, "crosses 1") if rr_hi >= 1 else (evalue_rr(rr_hi), "upper")
    else:
        ci_e, limit = 1.0, "crosses 1"
    return EValueResult(measure, float(estimate), _nan_or(lower), _nan_or(upper), float(rr),
                        _nan_or(rr_lo), _nan_or(rr_hi), point, ci_e, limit, direction,
                        conversion, reason, True, note)


def evalue_risk_ratio(rr: float, ci_lower: float | None = None,
                      ci_upper: float | None = None) -> EValueResult:
    """E-values for a risk ratio and its confidence interval.

    Parameters
    ----------
    rr : float
        Risk ratio, treated vs untreated.
    ci_lower, ci_upper : float, optional
        Its confidence limits.

    Returns
    -------
    EValueResult

    Notes
    -----
    R: ``EValue::evalues.RR(rr, lo, hi)``. Worked example (VanderWeele & Ding 2017,
    breastfeeding and infant respiratory death): RR 3.9 (1.8-8.7) gives 7.26 and 3.00.

    References
    ----------
    VanderWeele TJ, Ding P. Ann Intern Med 2017;167:268-274.
    """
    _check_interval(rr, ci_lower, ci_upper, "rr")
    return _from_rr("RR", rr, ci_lower, ci_upper, rr, ci_lower, ci_upper, "not applicable",
                    "a risk ratio needs no conversion")


def _conversion(common_outcome, outcome_proportion) -> tuple[bool, str]:
    if outcome_proportion is not None and not 0 <= outcome_proportion <= 1:
        raise ValueError(f"outcome_proportion must be in [0, 1]; got {outcome_proportion!r}.")
    by_proportion = (None if outcome_proportion is None
                     else outcome_proportion > COMMON_OUTCOME_THRESHOLD)
    if common_outcome is None and by_proportion is None:
        raise ValueError("State whether the outcome is common: pass common_outcome=True/False "
                         "or outcome_proportion= (the proportion with the outcome by the end "
                         f"of follow-up; > {COMMON_OUTCOME_THRESHOLD:g} counts as common). "
                         "Death in advanced HCC is common.")
    if common_outcome is not None and by_proportion is not None and \
            bool(common_outcome) != by_proportion:
        raise ValueError(f"common_outcome={common_outcome} contradicts outcome_proportion="
                         f"{outcome_proportion} (common means > "
                         f"{COMMON_OUTCOME_THRESHOLD:.0%}).")
    if by_proportion is not None:
        sign = ">" if by_proportion else "<="
        return by_proportion, (f"outcome proportion {outcome_proportion:.1%} {sign} "
                               f"{COMMON_OUTCOME_THRESHOLD:.0%} by the end of follow-up")
    return bool(common_outcome), f"stated by the caller (common_outcome={bool(common_outcome)})"


def evalue_hr(hr: float, ci_lower: float, ci_upper: float, common_outcome: bool | None = None,
              outcome_proportion: float | None = None) -> EValueResult:
    """E-values for a hazard ratio and its confidence interval.

    Parameters
    ----------
    hr, ci_lower, ci_upper : float
        Hazard ratio (treated vs untreated) and its confidence limits.
    common_outcome : bool, optional
        True when the outcome (death) occurs in more than 15% by the end of follow-up.
    outcome_proportion : float, optional
        Proportion with the outcome by the end of follow-up (e.g. 1 - KM survival at the
        last follow-up, or deaths / n as a lower bound); > 0.15 means common. Give this or
        ``common_outcome`` (both must agree if both are given).

    Returns
    -------
    EValueResult
        ``outcome_conversion`` is ``"common"`` or ``"rare"``, with the reason.

    Notes
    -----
    Common outcome: each of HR, lower and upper limit is converted with
    RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) (VanderWeele 2020; VanderWeele, Ding &
    Mathur 2019); rare outcome: RR = HR. Then E-values as for a risk ratio, protective
    effects through 1/RR. R: ``EValue::evalues.HR(hr, lo, hi, rare = !common_outcome)``.
    Example (the one in EValue's ``evalues.HR`` documentation, which prints no output):
    HR 0.56 (0.46-0.69), common outcome, gives RR 0.6701 (0.5859-0.7735) and E-values
    2.35 (point) and 1.91 (upper limit), computed from the formulas above.

    References
    ----------
    VanderWeele TJ, Ding P. Ann Intern Med 2017;167:268-274.
    VanderWeele TJ, Ding P, Mathur M. J Causal Inference 2019;7:20180007.
    """
    _check_interval(hr, ci_lower, ci_upper, "hr")
    common, reason = _conversion(common_outcome, outcome_proportion)
    convert = hr_to_rr_common if common else float
    return _from_rr("HR", hr, ci_lower, ci_upper, convert(hr), convert(ci_lower),
                    convert(ci_upper), "common" if common else "rare", reason)


def evalue_landmark_difference(surv_treated: float, surv_control: float,
                               landmark_months: float, se_treated: float | None = None,
                               se_control: float | None = None,
                               conf_level: float = 0.95) -> EValueResult:
    """E-value for a difference in survival at a landmark, via the risk ratio of death.

    Parameters
    ----------
    surv_treated, surv_control : float
        Survival probabilities at the landmark (e.g. KM or adjusted curves), treated and
        untreated.
    landmark_months : float
        The landmark (months), recorded in the note.
    se_treated, se_control : float, optional
        Standard errors of the two survival probabilities (e.g. Greenwood). When given, a
        CI for the risk ratio is formed on the log scale by the delta method, treating the
        arms as independent: var log RR = se1^2/(1-S1)^2 + se0^2/(1-S0)^2.
    conf_level : float

    Returns
    -------
    EValueResult
        ``measure`` "landmark risk difference"; the note states the conversion.

    Notes
    -----
    The survival difference S1 - S0 at the landmark is converted to the risk ratio of death
    by the landmark, RR = (1 - S1) / (1 - S0), and the E-value is that of this RR. This is a
    risk ratio for a fixed-time binary outcome, so no rare/common conversion applies.
    Not estimable when no one in an arm has died by the landmark (1 - S = 0).
    """
    for s in (surv_treated, surv_control):
        if not 0 <= s <= 1:
            raise ValueError(f"Survival probabilities must be in [0, 1]; got {s!r}.")
    risk1, risk0 = 1.0 - surv_treated, 1.0 - surv_control
    base = (f"Survival difference at {landmark_months:g} months "
            f"({surv_treated:.4g} - {surv_control:.4g} = {surv_treated - surv_control:+.4g}) "
            f"converted to the risk ratio of death by {landmark_months:g} months, "
            f"(1 - S1)/(1 - S0) = {risk1:.4g}/{risk0:.4g}.")
    if risk1 == 0 or risk0 == 0:
        nan = float("nan")
        return EValueResult("landmark risk difference", surv_treated - surv_control, nan, nan,
                            nan, nan, nan, nan, nan, "none", "null", "not applicable",
                            "risk ratio of death by the landmark", False,
                            base + " Not estimable: no deaths by the landmark in an arm.")
    rr = risk1 / risk0
    lo = hi = None
    note = base
    if (se_treated is None) != (se_control is None):
        raise ValueError("Give both standard errors or neither.")
    if se_treated is not None:
        z = float(norm_ppf(0.5 + conf_level / 2))
        se_log = math.sqrt((se_treated / risk1) ** 2 + (se_control / risk0) ** 2)
        lo, hi = rr * math.exp(-z * se_log), rr * math.exp(z * se_log)
        note += (" CI of the risk ratio by the delta method on the log scale, arms "
                 "independent.")
    diff = surv_treated - surv_control
    return _from_rr("landmark risk difference", diff, None, None, rr, lo, hi,
                    "not applicable", "risk ratio of death by the landmark", note)


def evalue_rmst_difference(difference: float, ci_lower: float | None = None,
                           ci_upper: float | None = None,
                           horizon_months: float | None = None) -> EValueResult:
    """No E-value for a difference in restricted mean survival time: a record saying so.

    Parameters
    ----------
    difference : float
        RMST difference, treated minus untreated (months).
    ci_lower, ci_upper : float, optional
    horizon_months : float, optional
        The RMST horizon (months), recorded in the note.

    Returns
    -------
    EValueResult
        ``estimable=False``; the note states that no published conversion of an RMST
        difference to the risk-ratio scale exists, so none is invented here.
    """
    nan = float("nan")
    horizon = "" if horizon_months is None else f" (horizon {horizon_months:g} months)"
    return EValueResult(
        "RMST difference", float(difference), _nan_or(ci_lower), _nan_or(ci_upper),
        nan, nan, nan, nan, nan, "none", "null", "not applicable", "none", False,
        f"No published conversion of a restricted mean survival time difference{horizon} "
        "to the risk-ratio scale exists, so no E-value is reported. Use the E-value of the "
        "hazard ratio or of a landmark survival difference instead.")


def outcome_proportion_km(time_months, event) -> float:
    """1 - Kaplan-Meier survival at the last follow-up time: the proportion dead by the end.

    A helper for ``evalue_hr(..., outcome_proportion=)``; R: ``1 - tail(survfit()$surv, 1)``.
    """
    time = np.asarray(time_months, dtype=float)
    event = np.asarray(event, dtype=int)
    surv = 1.0
    for t in np.unique(time[event == 1]):
        at_risk = np.sum(time >= t)
        surv *= 1.0 - np.sum((time == t) & (event == 1)) / at_risk
    return 1.0 - surv
