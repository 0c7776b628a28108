"""Propensity-score weights: ATE, ATT, ATC and overlap (ATO) -> Weights.

Weights are computed from the fitted PS e by formula (DESIGN.md): ATE 1/e for the treated
and 1/(1 - e) for controls; ATT 1 and e/(1 - e); ATC (1 - e)/e and 1 (the controls are the
target population, as MatchIt/WeightIt ``estimand = "ATC"``); overlap 1 - e and e.
Options: stabilising by the marginal treatment probability, trimming patients whose PS lies outside a range
(listed, never dropped silently), and truncating extreme weights at percentiles.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.errors import CohortError, NotEstimableError, OverlapWarning
from causal_hcc.propensity import PropensityModel

ESTIMANDS = {
    "ATE": "average treatment effect in the whole cohort",
    "ATT": "average treatment effect in the treated",
    "ATC": "average treatment effect in the controls (untreated)",
    "ATO": "average treatment effect in the overlap population (overlap weights)",
}
#: A weight above this is flagged (OverlapWarning naming the patients).
EXTREME_WEIGHT = 10.0
#: An arm whose effective sample size falls below this fraction of its n is flagged.
MIN_ESS_FRACTION = 0.5
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
MAX_LISTED = 10


@dataclass(frozen=True)
class Weights:
    """Propensity-score weights per patient and the options that made them.

    Attributes
    ----------
    weights : numpy.ndarray
        Per patient, in the cohort's row order; 0 for trimmed patients.
    estimand : {"ATE", "ATT", "ATC", "ATO"}
    stabilized : bool
        Multiplied by the marginal probability of the patient's arm (ATE), by
        (1 - p) / p for ATT controls or by p / (1 - p) for ATC treated, p = share treated
        among the retained patients.
    trim : tuple of float or None
        PS range kept, e.g. (0.1, 0.9) (Crump et al. 2009); trimmed patients get weight 0
        and are listed in ``trimmed_ids``.
    truncate : tuple of float or None
        Percentiles (e.g. (1, 99)) at which weights are truncated, within each arm, among
        the retained patients (numpy's linear interpolation = R ``quantile`` type 7).
    ess : dict
        Effective sample size per arm, (sum w)^2 / sum w^2.
    distribution : pandas.DataFrame
        Per arm: n, min, percentiles, max, mean, sum of the weights (retained patients).
    """

    label: str
    estimand: str
    stabilized: bool
    trim: tuple[float, float] | None
    truncate: tuple[float, float] | None
    covariates: tuple[str, ...]
    patient_id: np.ndarray
    treated: np.ndarray
    ps: np.ndarray
    weights: np.ndarray
    trimmed_ids: tuple[str, ...]
    truncated_ids: tuple[str, ...]
    marginal_treated: float
    ess: dict
    distribution: pd.DataFrame
    flagged_ids: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def n_treated(self) -> int:
        return int(self.treated.sum())

    @property
    def n_control(self) -> int:
        return len(self.treated) - self.n_treated

    @property
    def retained(self) -> np.ndarray:
        return ~np.isin(self.patient_id, np.asarray(self.trimmed_ids, dtype=object))

    def to_frame(self) -> pd.DataFrame:
        """One row per patient: patient_id, treated, ps, weight, trimmed, truncated."""
        return pd.DataFrame({
            "patient_id": self.patient_id, "treated": self.treated, "ps": self.ps,
            "weight": self.weights, "trimmed": ~self.retained,
            "truncated": np.isin(self.patient_id,
                                 np.asarray(self.truncated_ids, dtype=object))})

    def summary(self) -> str:
        options = [f"estimand {self.estimand} ({ESTIMANDS[self.estimand]})",
                   "stabilised by the marginal treatment probability "
                   f"({self.marginal_treated:.3f})" if self.stabilized else "not stabilised"]
        if self.trim:
            options.append(f"trimmed to PS in [{self.trim[0]:g}, {self.trim[1]:g}]")
        if self.truncate:
            options.append(f"truncated at the {self.truncate[0]:g}th/{self.truncate[1]:g}th "
                           "percentiles within each arm")
        lines = [self.label, "Propensity-score weights: " + "; ".join(options) + "."]
        for r in self.distribution.itertuples():
            lines.append(f"  {r.arm}: n {r.n}, weights {r.min:.3f} to {r.max:.3f} "
                         f"(median {r.p50:.3f}), sum {r.sum:.1f}, ESS "
                         f"{self.ess[r.arm]:.1f}")
        if self.trimmed_ids:
            lines.append(f"Trimmed ({len(self.trimmed_ids)}, weight 0): "
                         + ", ".join(self.trimmed_ids) + ".")
        if self.truncated_ids:
            lines.append(f"Truncated ({len(self.truncated_ids)}): "
                         + ", ".join(self.truncated_ids) + ".")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def effective_sample_size(weights) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.sum(w ** 2)) if np.any(w > 0) else 0.0


def _base_weights(ps, treated, estimand):
    if estimand == "ATE":
        return np.where(treated == 1, 1 / ps, 1 / (1 - ps))
    if estimand == "ATT":
        return np.where(treated == 1, 1.0, ps / (1 - ps))
    if estimand == "ATC":
        return np.where(treated == 1, (1 - ps) / ps, 1.0)
    return np.where(treated == 1, 1 - ps, ps)


def stabilising_factor(treated, p, estimand: str):
    """Factor of stabilised weights: p or 1 - p (ATE); (1 - p)/p on ATT controls; p/(1 - p)
    on ATC treated (the non-focal arm's weights then sum to about its size); 1 elsewhere."""
    if estimand == "ATE":
        return np.where(treated == 1, p, 1 - p)
    if estimand == "ATC":
        return np.where(treated == 1, p / (1 - p), 1.0)
    return np.where(treated == 1, 1.0, (1 - p) / p)


def ps_weights(ps, treated, *, estimand: str = "ATE", stabilized: bool = False,
               trim: tuple[float, float] | None = None,
               truncate: tuple[float, float] | None = None):
    """The weight arithmetic alone (no checks, summaries or warnings): for fast loops.

    Parameters as :func:`weights_from_ps`; ``ps`` must lie strictly in (0, 1).

    Returns
    -------
    weights, retained, truncated : numpy.ndarray
        Weight per patient (0 when trimmed), the retained mask, the truncated mask.
    marginal_treated : float
        Share treated among retained patients (the stabilising factor).
    """
    keep = np.ones(len(ps), dtype=bool)
    if trim is not None:
        keep = (ps >= trim[0]) & (ps <= trim[1])
    for arm, name in ((1, "treated"), (0, "control")):
        if not np.any(keep & (treated == arm)):
            raise NotEstimableError(f"No {name} patient left after trimming to PS in "
                                    f"{trim}; widen the range.")
    p = float(treated[keep].mean())
    w = _base_weights(ps, treated, estimand)
    if stabilized:
        w = w * stabilising_factor(treated, p, estimand)
    w = np.where(keep, w, 0.0)
    truncated = np.zeros(len(ps), dtype=bool)
    if truncate is not None:
        for arm in (0, 1):
            sel = keep & (treated == arm)
            lo, hi = np.percentile(w[sel], truncate)
            clipped = np.clip(w[sel], lo, hi)
            truncated[sel] = clipped != w[sel]
            w[sel] = clipped
    return w, keep, truncated, p


def _check_options(estimand, stabilized, trim, truncate):
    if estimand not in ESTIMANDS:
        raise ValueError(f"estimand must be one of {sorted(ESTIMANDS)}, not {estimand!r}")
    if stabilized and estimand == "ATO":
        raise ValueError("stabilized=True does not apply to estimand='ATO': overlap weights "
                         "are already bounded in [0, 1].")
    if trim is not None and not (0 <= trim[0] < trim[1] <= 1):
        raise ValueError(f"trim must be a PS range (low, high) with 0 <= low < high <= 1, "
                         f"e.g. (0.1, 0.9); got {trim!r}")
    if truncate is not None and not (0 <= truncate[0] < truncate[1] <= 100):
        raise ValueError(f"truncate must be percentiles (low, high) with 0 <= low < high <= "
                         f"100, e.g. (1, 99); got {truncate!r}")


def weights_from_ps(ps, treated, *, estimand: str = "ATE", stabilized: bool = False,
                    trim: tuple[float, float] | None = None,
                    truncate: tuple[float, float] | None = None, patient_id=None,
                    covariates: tuple[str, ...] = (), label: str = "",
                    warn_weight_above: float = EXTREME_WEIGHT,
                    warn_ess_below: float = MIN_ESS_FRACTION) -> Weights:
    """Propensity-score weights from arrays (the core of :func:`compute_weights`).

    Parameters
    ----------
    ps : array (n,)
        Propensity scores, strictly between 0 and 1.
    treated : array (n,) of 0/1
    estimand : {"ATE", "ATT", "ATC", "ATO"}
        ATC: (1 - e)/e for the treated, 1 for controls (the controls are the target).
    stabilized : bool
        Multiply by the marginal probability of the patient's arm (ATE), ATT control
        weights by (1 - p)/p, or ATC treated weights by p/(1 - p); p = share treated among
        retained patients. Not for ATO.
    trim : (low, high), optional
        Keep patients with low <= PS <= high (e.g. (0.1, 0.9)); the others get weight 0
        and are listed. Applied first.
    truncate : (low, high) percentiles, optional
        Weights below/above these percentiles of their arm's weights (retained patients)
        are set to those percentiles. Applied last.
    patient_id : array (n,), optional
    covariates, label : audit trail carried into the result.
    warn_weight_above, warn_ess_below : float
        Thresholds of the OverlapWarning: a weight above 10, or an arm's ESS below 50% of
        its retained n, by default.

    Returns
    -------
    Weights

    Notes
    -----
    The formulas are WeightIt's (``weightit(method = "glm")``) with the PS given; the
    tests compare them with the formulas evaluated in R and the weighted means with
    ``survey::svymean`` (tests/reference/matching.R).

    References
    ----------
    Austin PC, Stuart EA (2015). Moving towards best practice when using inverse probability
    of treatment weighting (IPTW) using the propensity score to estimate causal treatment
    effects in observational studies. Stat Med 34:3661-3679.
    Li F, Morgan KL, Zaslavsky AM (2018). Balancing covariates via propensity score
    weighting. J Am Stat Assoc 113:390-400.
    Crump RK, Hotz VJ, Imbens GW, Mitnik OA (2009). Dealing with limited overlap in
    estimation of average treatment effects. Biometrika 96:187-199.
    Cole SR, Hernán MA (2008). Constructing inverse probability weights for marginal
    structural models. Am J Epidemiol 168:656-664.
    """
    _check_options(estimand, stabilized, trim, truncate)
    ps = np.asarray(ps, dtype=float)
    treated = np.asarray(treated).astype(np.int8)
    ids = (np.array([str(i + 1) for i in range(len(ps))], dtype=object) if patient_id is None
           else _text_ids(patient_id))
    bad = ~np.isfinite(ps) | (ps <= 0) | (ps >= 1)
    if bad.any():
        raise NotEstimableError(f"Propensity scores of 0 or 1 (or missing) for patients "
                                f"{list(ids[bad][:MAX_LISTED])}: weights are infinite. Check "
                                "the PS model for separation (method='firth') or trim.")
    w, keep, truncated, p = ps_weights(ps, treated, estimand=estimand, stabilized=stabilized,
                                       trim=trim, truncate=truncate)
    notes = []
    if trim is not None:
        notes.append(f"{int((~keep).sum())} patients trimmed (PS outside [{trim[0]:g}, "
                     f"{trim[1]:g}]): the estimand becomes the {estimand} in the trimmed "
                     "population.")
    ess = {"treated": effective_sample_size(w[treated == 1]),
           "control": effective_sample_size(w[treated == 0])}
    flagged = _flag(w, treated, keep, ids, ess, warn_weight_above, warn_ess_below, notes)
    result = Weights(label=label, estimand=estimand, stabilized=stabilized,
                     trim=None if trim is None else tuple(trim),
                     truncate=None if truncate is None else tuple(truncate),
                     covariates=tuple(covariates), patient_id=_frozen(ids),
                     treated=_frozen(treated), ps=_frozen(ps), weights=_frozen(w),
                     trimmed_ids=tuple(ids[~keep]), truncated_ids=tuple(ids[truncated]),
                     marginal_treated=p, ess=ess,
                     distribution=_distribution(w, treated, keep), flagged_ids=flagged,
                     notes=tuple(notes))
    return result


def _flag(w, treated, keep, ids, ess, weight_above, ess_below, notes) -> tuple[str, ...]:
    """OverlapWarning on weights above the threshold or a low ESS; returns flagged ids."""
    messages = []
    extreme = w > weight_above
    if extreme.any():
        order = np.argsort(-w[extreme], kind="stable")
        listed = [f"{i} ({v:.1f})" for i, v in zip(ids[extreme][order], w[extreme][order])]
        more = len(listed) - MAX_LISTED
        messages.append(f"{int(extreme.sum())} weights above {weight_above:g}: patients "
                        + ", ".join(listed[:MAX_LISTED])
                        + (f" and {more} more" if more > 0 else ""))
    for arm, name in ((1, "treated"), (0, "control")):
        n_arm = int(np.sum(keep & (treated == arm)))
        if ess[name] < ess_below * n_arm:
            messages.append(f"effective sample size of the {name} arm {ess[name]:.1f} is "
                            f"below {ess_below:.0%} of its {n_arm} patients")
    if messages:
        text = ("Extreme propensity-score weights: " + "; ".join(messages)
                + ". Consider overlap weights (estimand='ATO'), trimming or truncation.")
        notes.append(text)
        warnings.warn(text, OverlapWarning, stacklevel=4)
    return tuple(ids[extreme])


def _distribution(w, treated, keep) -> pd.DataFrame:
    rows = []
    for arm, name in ((1, "treated"), (0, "control")):
        v = w[keep & (treated == arm)]
        q = np.percentile(v, PERCENTILES)
        rows.append({"arm": name, "n": len(v), "min": v.min(),
                     **{f"p{p}": x for p, x in zip(PERCENTILES, q)},
                     "max": v.max(), "mean": v.mean(), "sum": v.sum()})
    return pd.DataFrame(rows)


def _text_ids(patient_id) -> np.ndarray:
    """Patient ids as an object array of text. Ids that already are (a cohort's: str
    objects) are used as they are: the conversion through numpy's fixed-width text took
    0.3 s per call on a million patients, once per estimand."""
    a = np.asarray(patient_id)
    # pandas' C type scan: 13 ms on a million ids (a Python loop took 100 ms).
    if a.dtype == object and pd.api.types.infer_dtype(a.ravel(), skipna=False) == "string":
        return a
    return a.astype(str).astype(object)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def compute_weights(cohort: Cohort, propensity: PropensityModel, *, estimand: str = "ATE",
                    stabilized: bool = False, trim: tuple[float, float] | None = None,
                    truncate: tuple[float, float] | None = None,
                    warn_weight_above: float = EXTREME_WEIGHT,
                    warn_ess_below: float = MIN_ESS_FRACTION) -> Weights:
    """Propensity-score weights for a cohort; see :func:`weights_from_ps`.

    Parameters
    ----------
    cohort : Cohort
        The cohort the propensity model was fitted to (same patients, same order).
    propensity : PropensityModel
    estimand : {"ATE", "ATT", "ATC", "ATO"}
    stabilized, trim, truncate, warn_weight_above, warn_ess_below
        See :func:`weights_from_ps`.

    Returns
    -------
    Weights

    Warns
    -----
    OverlapWarning
        A weight above ``warn_weight_above`` (10), naming the patients, or an arm's
        effective sample size below ``warn_ess_below`` (50%) of its n.

    Notes
    -----
    Agrees with the formulas evaluated in R and with ``survey::svymean`` weighted means
    (tests/reference/matching.R).

    References
    ----------
    Austin PC, Stuart EA (2015). Stat Med 34:3661-3679.
    """
    ids = cohort.ids
    if len(ids) != len(propensity.patient_id) or np.any(ids != propensity.patient_id):
        raise CohortError(["The propensity model was fitted to other patients (or another "
                           "row order) than this cohort; refit it on this cohort."],
                          header="Cannot weight:")
    return weights_from_ps(propensity.ps, propensity.treated, estimand=estimand,
                           stabilized=stabilized, trim=trim, truncate=truncate,
                           patient_id=ids, covariates=propensity.covariates,
                           label=cohort.label, warn_weight_above=warn_weight_above,
                           warn_ess_below=warn_ess_below)
