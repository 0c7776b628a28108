"""Is an adjusted estimate identified by the data? Positivity cells, PS support, ESS and
leave-one-out influence -> a verdict per estimate.

An estimand is a causal contrast in a *target population*: all patients (ATE), the
treated (ATT), the controls (ATC), or the overlap population (ATO, weights e(1 - e)). It
is **not identified** when part of its target population has no counterpart in the other
arm: no patient of the other arm with the same covariates, so no adjustment can say what
would have happened to them under the other treatment (a structural positivity violation;
a model can only extrapolate). The rules, applied to every adjusted estimate:

1. *Who lacks a counterpart* (:func:`positivity`).
   - All PS covariates discrete (the :class:`~causal_hcc.propensity.PropensityModel` then
     has ``pattern_counts``): a patient lacks a counterpart when its covariate pattern
     (the cell of all PS covariates) contains no patient of the other arm.
   - Otherwise (a continuous PS covariate): the PS-support rule. A patient lacks a
     counterpart when its logit PS lies outside the other arm's range (min to max) of
     logit PS by more than a tolerance: the larger of :data:`SUPPORT_CALIPER_SD` (0.2) SD
     of the logit PS over all patients (n - 1 SD; the matching caliper, Austin 2011) and
     :data:`SUPPORT_MIN_LOGIT` (log 2: odds of treatment more than twice, or less than
     half, those of the other arm's most extreme patient). The floor keeps the sample
     extremes of a randomised trial, whose logit-PS spread is noise, from counting.
2. *Target population of the estimate*: the patients with positive weight in the arm(s)
   the estimand targets: both arms (ATE), treated (ATT), controls (ATC); for a matched
   sample the matched focal patients; for a trimmed sample the retained ones.
3. *Verdict*: ATE, ATT, ATC are identified when the share of the target population
   without a counterpart is at most :data:`MAX_SHARE_WITHOUT_COUNTERPART` (0: one patient
   without a counterpart is enough to fail). ATO is identified by construction (its
   target is defined by the overlap of the arms); its note gives the share of overlap
   weight on patients without a counterpart. Crude and conditional HRs (crude,
   multivariable, a weighted Cox with covariates) are not marginal causal estimands:
   ``identified`` is None, with a note saying so.
4. *Fragility, reported beside the verdict* (it does not change it): effective sample
   size per arm, the largest weights, and leave-one-out influence on the HR
   (:func:`leave_one_out`): the patients whose removal moves the HR across 1 (by more
   than a factor :data:`CROSSING_MIN_RATIO`, 1.05, so that an HR of 1.00 does not name
   everybody) or changes it by more than a factor :data:`INFLUENCE_RATIO` (1.25, i.e. by
   more than 25% up or 20% down). Leave-one-out refits the Cox model with the other weights held fixed (the
   PS is not refitted), exactly for up to :data:`LOO_EXACT_MAX` patients (one batched
   fit, :func:`causal_hcc.survival.cox_many.fit_cox_many`), by the one-step dfbeta
   approximation (R ``residuals(fit, "dfbeta")``) above.

References
----------
Petersen ML, Porter KE, Gruber S, Wang Y, van der Laan MJ (2012). Diagnosing and
responding to violations in the positivity assumption. Stat Methods Med Res 21:31-54.
Westreich D, Cole SR (2010). Invited commentary: positivity in practice. Am J Epidemiol
171:674-677.
Li F, Morgan KL, Zaslavsky AM (2018). Balancing covariates via propensity score weighting.
J Am Stat Assoc 113:390-400.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from causal_hcc.errors import PositivityWarning
from causal_hcc.survival.cox import fit_cox
from causal_hcc.survival.cox_many import fit_cox_many
from causal_hcc.weighting import effective_sample_size

#: Tolerance of the PS-support rule, in SDs of the logit PS (the matching caliper).
SUPPORT_CALIPER_SD = 0.2
#: Floor of that tolerance on the logit scale: log 2 (a factor 2 in the odds of treatment).
SUPPORT_MIN_LOGIT = float(np.log(2))
#: Largest share of the target population without a counterpart for an identified estimand.
MAX_SHARE_WITHOUT_COUNTERPART = 0.0
#: A leave-one-out HR off by more than this factor (either way) names the patient.
INFLUENCE_RATIO = 1.25
#: Crossing 1 names a patient only when the HR also moves by more than this factor.
CROSSING_MIN_RATIO = 1.05
#: Up to this many patients leave-one-out is refitted exactly; above, dfbeta (one step).
LOO_EXACT_MAX = 3000
#: Above this many cells (patients in the estimate x all patients), the exact
#: leave-one-out refits use only the patients in the estimate (memory: no n x n batch).
LOO_FULL_CELLS = 1e7
#: Leave-one-out results kept for reuse, keyed by their inputs' contents: the same
#: influence asked for twice in one process (two estimates with the same weights, e.g.
#: 3 of the 16 on the bundled cohort; or adjust called again on the same data) is
#: computed once; up to 3,000 patients each costs O(n^2) (85 s for the 16 estimates of
#: a 2,500-patient registry). Only the exact
#: refits are kept: the dfbeta above :data:`LOO_EXACT_MAX` costs less than the key.
LOO_MEMO_SIZE = 64
_LOO_MEMO: OrderedDict = OrderedDict()
#: Causal estimands with a target population, in the order ``primary = "auto"`` tries them.
ESTIMAND_ORDER = ("ATE", "ATT", "ATC", "ATO")
TARGETS = {"ATE": "all patients", "ATT": "the treated", "ATC": "the controls",
           "ATO": "the overlap population"}
MAX_NAMED = 5


def estimand_head(estimand: str | None) -> str | None:
    """"ATT" of "ATT (matched treated)"; None stays None."""
    return None if not estimand else str(estimand).split(" ")[0]


# ----------------------------------------------------------------------------- positivity
@dataclass(frozen=True)
class Positivity:
    """Which patients have no counterpart in the other arm, and by which rule.

    Attributes
    ----------
    rule : {"covariate patterns", "PS support"}
    patient_id, treated, logit_ps : numpy.ndarray
    cell : numpy.ndarray or None
        Covariate pattern of each patient (pattern rule), as in ``pattern_counts``.
    no_counterpart : numpy.ndarray of bool
        True where the patient's cell (pattern rule) or logit PS beyond the tolerance
        (support rule) holds no patient of the other arm.
    patterns : pandas.DataFrame or None
        The PS model's ``pattern_counts`` (pattern, n_treated, n_control, one_arm).
    support : dict
        Logit-PS range (min, max) per arm.
    tolerance : float
        Support-rule tolerance on the logit scale: max(``SUPPORT_CALIPER_SD`` x SD,
        ``SUPPORT_MIN_LOGIT``).
    """

    rule: str
    patient_id: np.ndarray
    treated: np.ndarray
    logit_ps: np.ndarray
    cell: np.ndarray | None
    no_counterpart: np.ndarray
    patterns: pd.DataFrame | None
    support: dict
    tolerance: float
    support_caliper_sd: float = SUPPORT_CALIPER_SD

    def to_frame(self) -> pd.DataFrame:
        """One row per patient: patient_id, treated, logit_ps, cell, no_counterpart."""
        return pd.DataFrame({"patient_id": self.patient_id, "treated": self.treated,
                             "logit_ps": self.logit_ps,
                             "cell": self.cell if self.cell is not None else "",
                             "no_counterpart": self.no_counterpart})

    def counts(self) -> dict:
        """Patients without a counterpart per arm."""
        return {"treated": int(np.sum(self.no_counterpart & (self.treated == 1))),
                "control": int(np.sum(self.no_counterpart & (self.treated == 0)))}

    def describe(self, mask=None) -> str:
        """Where the patients without a counterpart are (cells or PS ranges)."""
        sel = self.no_counterpart if mask is None else self.no_counterpart & mask
        if self.rule == "covariate patterns":
            cells = pd.Series(self.cell[sel]).value_counts(sort=False)
            rows = self.patterns.set_index("pattern")
            return "; ".join(f"{c}: {rows.loc[c, 'n_treated']} treated, "
                             f"{rows.loc[c, 'n_control']} control" for c in cells.index)
        parts = []
        for arm, other, name in ((1, "control", "treated"), (0, "treated", "control")):
            k = int(np.sum(sel & (self.treated == arm)))
            if k:
                lo, hi = self.support[other]
                parts.append(f"{k} {name} with logit PS outside the {other} range "
                             f"[{lo:.2f}, {hi:.2f}] by more than {self.tolerance:.3f}")
        return "; ".join(parts)

    def summary(self) -> str:
        c = self.counts()
        rule = ("covariate pattern (all PS covariates discrete) without the other arm"
                if self.rule == "covariate patterns" else
                f"logit PS outside the other arm's range by more than max("
                f"{self.support_caliper_sd:g} SD, log 2) = {self.tolerance:.3f}")
        text = (f"Positivity by {self.rule}: {c['treated']} treated and {c['control']} "
                f"control patients without a counterpart ({rule}).")
        where = self.describe()
        return text + (f" {where}." if where else "")


def _cells(frame: pd.DataFrame, covariates) -> np.ndarray:
    """Pattern label per patient, spelled as PropensityModel.pattern_counts spells it."""
    label = frame[covariates[0]].astype(str).radd(f"{covariates[0]}=")
    for c in covariates[1:]:
        label = label + f", {c}=" + frame[c].astype(str)
    return label.to_numpy(object)


def positivity(cohort, propensity, *,
               support_caliper_sd: float = SUPPORT_CALIPER_SD) -> Positivity:
    """Patients without a counterpart in the other arm (rule 1 of the module docstring).

    Parameters
    ----------
    cohort : Cohort
        The cohort the propensity model was fitted to.
    propensity : PropensityModel
        Discrete PS covariates (``pattern_counts`` not None) use the pattern rule, others
        the PS-support rule.
    support_caliper_sd : float
        Tolerance of the support rule in SDs of the logit PS (0.2; at least log 2).

    Returns
    -------
    Positivity
    """
    treated = np.asarray(propensity.treated).astype(int)
    lp = np.asarray(propensity.logit_ps, float)
    support = {name: (float(lp[treated == a].min()), float(lp[treated == a].max()))
               for name, a in (("treated", 1), ("control", 0))}
    sd = float(np.std(lp, ddof=1)) if len(lp) > 1 else 0.0
    tolerance = max(support_caliper_sd * sd, SUPPORT_MIN_LOGIT)
    patterns = propensity.pattern_counts
    if patterns is not None:
        cell = _cells(cohort.data, list(propensity.covariates))
        rows = patterns.set_index("pattern")
        other = np.where(treated == 1, rows.loc[cell, "n_control"].to_numpy(),
                         rows.loc[cell, "n_treated"].to_numpy())
        return Positivity("covariate patterns", np.asarray(propensity.patient_id), treated,
                          lp, cell, other == 0, patterns, support, tolerance,
                          support_caliper_sd)
    lo = np.where(treated == 1, support["control"][0], support["treated"][0])
    hi = np.where(treated == 1, support["control"][1], support["treated"][1])
    outside = (lp < lo - tolerance) | (lp > hi + tolerance)
    return Positivity("PS support", np.asarray(propensity.patient_id), treated, lp, None,
                      outside, None, support, tolerance, support_caliper_sd)


# ----------------------------------------------------------------------------- influence
@dataclass(frozen=True)
class Influence:
    """Leave-one-out hazard ratios of one estimate (weights held fixed).

    ``hr_without[i]`` is the HR with patient i's weight set to 0 (NaN for patients not in
    the estimate or a refit that failed); ``method`` is "exact refit" or "dfbeta
    (one-step approximation)"; ``crossing_ids`` the patients whose removal moves the HR
    across 1, ``large_ids`` those (others) that change it by more than ``ratio``.
    """

    hr: float
    patient_id: np.ndarray
    hr_without: np.ndarray
    method: str
    ratio: float
    crossing_ids: tuple
    large_ids: tuple

    def to_frame(self) -> pd.DataFrame:
        """patient_id, hr_without, ratio_to_hr, crosses_1, large, sorted by influence."""
        ratio = self.hr_without / self.hr
        frame = pd.DataFrame({"patient_id": self.patient_id, "hr_without": self.hr_without,
                              "ratio_to_hr": ratio,
                              "crosses_1": np.isin(self.patient_id, self.crossing_ids),
                              "large": np.isin(self.patient_id, self.large_ids)})
        order = np.argsort(-np.abs(np.log(ratio)), kind="stable")
        return frame.iloc[order].dropna().reset_index(drop=True)

    def sentence(self) -> str:
        """One sentence naming the influential patients ("" when none)."""
        if not (self.crossing_ids or self.large_ids):
            return (f"leave-one-out ({self.method}): no single patient moves the HR across "
                    f"1 or by more than a factor {self.ratio:g}")
        by_id = dict(zip(self.patient_id, self.hr_without))
        parts = []
        for ids, what in ((self.crossing_ids, "across 1"),
                          (self.large_ids, f"a change by more than a factor {self.ratio:g}")):
            if ids:
                named = ", ".join(f"{i} {by_id[i]:.2f}" for i in ids[:MAX_NAMED])
                more = len(ids) - MAX_NAMED
                parts.append(f"without {named}" + (f" and {more} more" if more > 0 else "")
                             + f" ({what})")
        return (f"leave-one-out HR ({self.method}, weights fixed), from {self.hr:.2f}: "
                + "; ".join(parts))


def leave_one_out(time, event, x, weights, *, strata=None, patient_id=None,
                  ratio: float = INFLUENCE_RATIO, exact_max: int = LOO_EXACT_MAX,
                  fitted=None) -> Influence:
    """HR of the first column of ``x`` without each patient in turn (weights fixed).

    Parameters
    ----------
    time, event : array (n,)
    x : array (n, p)
        Treatment first (the HR reported), then any covariates.
    weights : array (n,)
        Matching or IPTW weights; patients with weight 0 are not in the estimate.
    strata : array (n,), optional
        Matched sets of a stratified Cox model.
    patient_id : array (n,), optional
    ratio : float
        HR_without / HR beyond [1/ratio, ratio] names the patient (1.25); so does an
        HR_without on the other side of 1 that differs by more than CROSSING_MIN_RATIO.
    exact_max : int
        Exact batched refits up to this many patients in the estimate; dfbeta above.
    fitted : causal_hcc.effects.estimate.FitRecord, optional
        The fit of this same model already made (its log HR and dfbeta): not refitted.

    Returns
    -------
    Influence

    Notes
    -----
    Exact: ``fit_cox_many`` with one weight vector per left-out patient (R: ``coxph`` on
    the data without that row, same weights). dfbeta: log HR minus R's
    ``residuals(fit, "dfbeta", weighted = TRUE)``, a one-step approximation that
    understates the influence of the most extreme patients.
    """
    time, event = np.asarray(time, float), np.asarray(event, float)
    x = np.asarray(x, float).reshape(len(time), -1)
    w = np.asarray(weights, float)
    ids = (np.array([str(i + 1) for i in range(len(time))], dtype=object)
           if patient_id is None else np.asarray(patient_id, dtype=object))
    if np.count_nonzero(w > 0) > exact_max:
        # dfbeta: one pass, cheaper than the memo's key (hashing a million patient ids
        # took about 0.25 s per estimate).
        return _leave_one_out(time, event, x, w, strata, ids, ratio, exact_max, fitted)
    key = _memo_key(time, event, x, w, strata, ids, ratio, exact_max, fitted)
    if key in _LOO_MEMO:
        _LOO_MEMO.move_to_end(key)
        return _LOO_MEMO[key]
    result = _leave_one_out(time, event, x, w, strata, ids, ratio, exact_max, fitted)
    _LOO_MEMO[key] = result
    while len(_LOO_MEMO) > LOO_MEMO_SIZE:
        _LOO_MEMO.popitem(last=False)
    return result


def _digest(value) -> bytes:
    """Bytes that identify an array's contents (object arrays by their text)."""
    if value is None:
        return b"None"
    a = np.asarray(value)
    if a.dtype.kind == "O":
        return "\x1f".join(map(str, a.ravel())).encode() + repr(a.shape).encode()
    return np.ascontiguousarray(a).tobytes() + f"{a.dtype.str}{a.shape}".encode()


def _memo_key(time, event, x, w, strata, ids, ratio, exact_max, fitted) -> bytes:
    """SHA-256 of everything leave_one_out's result depends on."""
    h = hashlib.sha256()
    parts = [time, event, x, w, strata, ids, repr((ratio, exact_max)).encode()]
    if fitted is not None:   # its log HR (and, in dfbeta mode, its dfbeta) are used
        parts += [repr(float(fitted.coef)).encode(), fitted.dfbeta]
    for part in parts:
        h.update(part if isinstance(part, bytes) else _digest(part))
        h.update(b"|")
    return h.digest()


def _leave_one_out(time, event, x, w, strata, ids, ratio, exact_max, fitted) -> Influence:
    if fitted is None:
        fit = fit_cox(time[w > 0], event[w > 0], x[w > 0], weights=w[w > 0],
                      strata=None if strata is None else np.asarray(strata)[w > 0])
        beta, dfbeta = float(fit.coef[0]), (lambda: fit.dfbeta()[:, 0])
    else:
        beta, dfbeta = fitted.coef, (lambda: fitted.dfbeta)
    inside = np.flatnonzero(w > 0)
    coef = np.full(len(time), np.nan)
    if len(inside) <= exact_max:
        rows = slice(None)
        if len(inside) * len(time) > LOO_FULL_CELLS:
            # Only the rows in the estimate: an (inside x inside) batch, never inside x n
            # (rows of weight 0 are left out of every fit anyway; same fits to rounding).
            rows = inside
        sub_w = w[rows]
        reps = np.tile(sub_w, (len(inside), 1))
        reps[np.arange(len(inside)), np.flatnonzero(sub_w > 0)] = 0.0
        many = fit_cox_many(time[rows], event[rows], x[rows], reps,
                            strata=None if strata is None else np.asarray(strata)[rows])
        coef[inside] = many.coef[:, 0]
        method = "exact refit"
    else:
        coef[inside] = beta - dfbeta()
        method = "dfbeta, one-step approximation"
    hr, hr_without = float(np.exp(beta)), np.exp(coef)
    with np.errstate(invalid="ignore"):
        crosses = ((np.sign(coef) * np.sign(beta) < 0)
                   & (np.abs(coef - beta) > np.log(CROSSING_MIN_RATIO)))
        large = ~crosses & (np.abs(coef - beta) > np.log(ratio))
    # The flagged patients, most influential first: a stable sort of the flagged rows
    # alone orders them as filtering a stable sort of all rows would (no n-row sort, no
    # gather of n patient ids).
    key = -np.abs(np.nan_to_num(coef - beta))

    def named(flag):
        rows = np.flatnonzero(flag)
        return tuple(ids[rows[np.argsort(key[rows], kind="stable")]])

    return Influence(hr, ids, hr_without, method, ratio, named(crosses), named(large))


# ----------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class Identification:
    """The identification verdict of one estimate and the diagnostics behind it.

    ``identified`` is True / False for ATE, ATT, ATC, ATO and None for HRs that are not
    marginal causal estimands; ``note`` is the sentence written to ``effects.json``
    (``identification_note``).
    """

    method: str
    estimand: str | None
    identified: bool | None
    note: str
    rule: str = ""
    n_target: int = 0
    n_without_counterpart: int = 0
    without_counterpart_ids: tuple = ()
    ess_treated: float | None = None
    ess_control: float | None = None
    largest_weights: tuple = ()
    influence: Influence | None = field(default=None, repr=False)

    @property
    def share_without_counterpart(self) -> float:
        return self.n_without_counterpart / self.n_target if self.n_target else 0.0

    def to_dict(self) -> dict:
        """The diagnostics as a flat record (``identification.csv``)."""
        inf = self.influence
        return {"method": self.method, "estimand": self.estimand,
                "identified": self.identified, "rule": self.rule,
                "n_target": self.n_target, "n_without_counterpart": self.n_without_counterpart,
                "share_without_counterpart": self.share_without_counterpart,
                "without_counterpart_ids": list(self.without_counterpart_ids),
                "ess_treated": self.ess_treated, "ess_control": self.ess_control,
                "largest_weights": [[i, w] for i, w in self.largest_weights],
                "influence_method": inf.method if inf else None,
                "loo_crosses_1": list(inf.crossing_ids) if inf else [],
                "loo_large_change": list(inf.large_ids) if inf else [],
                "note": self.note}


def not_causal(method: str, estimand: str | None = None) -> Identification:
    """The verdict of an HR that is not a marginal causal estimand (identified None)."""
    what = ("an unadjusted association" if method == "crude" else
            "a conditional HR of a regression model (HRs are non-collapsible)")
    return Identification(method, estimand, None,
                          f"Not a causal estimand ({what}): no identification verdict; "
                          "see the weighted and matched estimates.")


def _target(estimand: str, treated, weights) -> np.ndarray:
    positive = np.asarray(weights, float) > 0
    if estimand == "ATT":
        return positive & (treated == 1)
    if estimand == "ATC":
        return positive & (treated == 0)
    return positive


def _largest3(w: np.ndarray) -> np.ndarray:
    """Rows of the 3 largest weights, ties in row order: ``np.argsort(-w, kind="stable")[:3]``
    without sorting all n weights (a partition finds the third largest; only the rows at
    or above it are sorted, stably, so ties resolve as in the full sort)."""
    neg = -w
    if neg.size <= 3:
        return np.argsort(neg, kind="stable")[:3]
    third = np.partition(neg, 2)[2]
    if np.isnan(third):
        return np.argsort(neg, kind="stable")[:3]
    rows = np.flatnonzero(neg <= third)
    return rows[np.argsort(neg[rows], kind="stable")][:3]


def identify(method: str, estimand: str | None, positivity: Positivity, weights=None, *,
             time=None, event=None, strata=None, influence: bool = True,
             max_share: float = MAX_SHARE_WITHOUT_COUNTERPART, fits=()) -> Identification:
    """The verdict of one estimate (rules 2-4 of the module docstring).

    Parameters
    ----------
    method : str
        "iptw", "psm", ... (crude and multivariable give identified None).
    estimand : str or None
        "ATE", "ATT", "ATC", "ATO" (first word used: "ATT (matched treated)" -> ATT);
        None for HRs that are not causal estimands.
    positivity : Positivity
    weights : array (n,), optional
        The estimate's weights (matching or IPTW); None: every patient weight 1.
    time, event : array (n,), optional
        For leave-one-out influence (skipped when not given or ``influence=False``).
    strata : array (n,), optional
        Matched sets of a stratified estimate.
    max_share : float
        Largest share of the target population without a counterpart (0).
    fits : sequence of causal_hcc.effects.estimate.FitRecord
        Fits already made; leave-one-out starts from the one of this very model (same
        inputs) instead of refitting it.

    Returns
    -------
    Identification
    """
    head = estimand_head(estimand)
    if method in ("crude", "multivariable") or head not in ESTIMAND_ORDER:
        return not_causal(method, estimand)
    treated = positivity.treated
    w = np.ones(len(treated)) if weights is None else np.asarray(weights, float)
    target = _target(head, treated, w)
    lacking = target & positivity.no_counterpart
    ess = {a: effective_sample_size(w[(treated == v) & (w > 0)])
           for a, v in (("treated", 1), ("control", 0))}
    top = _largest3(w)
    largest = tuple((str(positivity.patient_id[i]), float(w[i])) for i in top if w[i] > 0)
    inf = None
    if influence and time is not None and event is not None:
        tx = treated.astype(float)
        fitted = next((f for f in fits if f.matches(time, event, tx, w, strata)), None)
        inf = leave_one_out(time, event, tx[:, None], w, strata=strata,
                            patient_id=positivity.patient_id, fitted=fitted)
    n_target, k = int(target.sum()), int(lacking.sum())
    population = TARGETS[head]
    if method.startswith("psm") or method in ("exact", "cem", "subclass", "matching"):
        population += f" with positive matching weight ({n_target})"
    if head == "ATO":
        mass = float(w[lacking].sum() / w[target].sum()) if k else 0.0
        verdict = True
        head_text = ("Identified by construction: overlap weights e(1 - e) target the "
                     "patients both arms could have (ATO)"
                     + (f"; {100 * mass:.1f}% of the overlap weight lies on {k} patients "
                        "without a counterpart" if k else ""))
    else:
        verdict = k <= max_share * n_target
        if k == 0:
            head_text = (f"Identified: every patient of the target population ({population}) "
                         f"has a counterpart in the other arm ({positivity.rule} rule)")
        else:
            head_text = (f"NOT identified: {k} of {n_target} patients of the target "
                         f"population ({population}) have no counterpart in the other arm "
                         f"({positivity.rule} rule; {positivity.describe(target)})")
    extra = [f"ESS treated {ess['treated']:.1f}, control {ess['control']:.1f}"]
    if largest:
        extra.append("largest weights " + ", ".join(f"{i} {v:.2f}" for i, v in largest))
    if inf is not None:
        extra.append(inf.sentence())
    note = head_text + ". " + "; ".join(extra) + "."
    return Identification(method, estimand, bool(verdict), note, positivity.rule, n_target,
                          k, tuple(positivity.patient_id[lacking]), ess["treated"],
                          ess["control"], largest, inf)


def identify_estimates(cohort, positivity: Positivity, estimates, row_weights: dict, *,
                       influence: bool = True, fits=()):
    """Verdicts for every estimate, and the estimates carrying them.

    Parameters
    ----------
    cohort : Cohort
    positivity : Positivity
    estimates : sequence of EffectEstimate
    row_weights : dict
        ``{(method, estimand head): (weights, strata or None)}`` (:func:`row_weights`); an
        estimate not in it is judged on its whole target arm(s) without leave-one-out
        influence.
    influence : bool
        Compute leave-one-out influence.
    fits : sequence of causal_hcc.effects.estimate.FitRecord
        The estimates' own fits (:func:`causal_hcc.effects.estimate.recording_fits`), so
        that leave-one-out does not refit them.

    Returns
    -------
    estimates : tuple of EffectEstimate
        With ``identified`` and ``identification_note`` set.
    verdicts : tuple of Identification
    """
    out, verdicts = [], []
    for e in estimates:
        weights, strata = row_weights.get((e.method, estimand_head(e.estimand)),
                                          (None, None))
        known = weights is not None
        # Matched sets are Cox strata only for a stratified row; elsewhere they are the
        # clusters of the robust SE, which do not change the HR.
        strata = strata if e.method.endswith("_stratified") else None
        v = identify(e.method, e.estimand, positivity, weights,
                     time=cohort.time if known and e.estimable else None,
                     event=cohort.event, strata=strata, influence=influence, fits=fits)
        if v.influence is not None and not np.isclose(v.influence.hr, e.hr, rtol=1e-6):
            # The refit does not reproduce the row (e.g. a model with covariates): the
            # influence would describe another estimate, so it is left out.
            v = identify(e.method, e.estimand, positivity, weights, influence=False)
            v = replace(v, note=v.note[:-1] + "; leave-one-out not computed (the "
                                              "treatment-only refit is not this model).")
        if not known and v.identified is not None:
            v = replace(v, note=v.note + " (weights of this estimate not available: judged "
                                         "on its whole target arm(s)).")
        verdicts.append(v)
        out.append(replace(e, identified=v.identified, identification_note=v.note))
    return tuple(out), tuple(verdicts)


def row_weights(matched=None, weights=None, extra=None) -> dict:
    """``{(method, estimand head): (weights, strata)}`` of the standard rows of
    :func:`causal_hcc.effects.adjust`: ``psm`` and ``psm_stratified`` (matching weights;
    matched sets as strata), ``iptw`` per estimand; ``extra`` adds or overrides entries
    (e.g. further matching methods)."""
    out = {}
    if matched is not None:
        head = estimand_head(matched.estimand)
        out[("psm", head)] = (np.asarray(matched.weights, float), None)
        if not matched.replace:
            out[("psm_stratified", head)] = (np.asarray(matched.weights, float),
                                             np.asarray(matched.subclass))
    for estimand, w in (weights or {}).items():
        out[("iptw", estimand)] = (np.asarray(w.weights, float), None)
    out.update(extra or {})
    return out


def unidentified_message(estimates) -> str:
    """The PositivityWarning text naming the estimates that are not identified ("" if
    none)."""
    bad = [e for e in estimates if e.identified is False and e.estimable]
    if not bad:
        return ""
    return ("Not identified (part of the target population has no counterpart in the other "
            "arm): " + ", ".join(f"{e.method} {e.estimand}" for e in bad)
            + ". They are labelled in effects.json (identified = false), kept out of quoted "
              "ranges and, under primary = auto, out of the primary estimate.")


# ----------------------------------------------------------------------------- primary
def choose_primary(estimates, primary: str = "auto", method: str = "iptw"):
    """The primary estimate: ``(method, estimand)`` and why.

    ``primary = "auto"`` takes the first estimable and identified IPTW estimand in the
    order ATE, ATT, ATC, ATO; a named estimand is taken as asked (the reason then says
    whether it is identified). Returns ``(None, reason)`` when nothing qualifies.
    """
    rows = {(e.method, estimand_head(e.estimand)): e for e in estimates}
    if primary != "auto":
        if primary not in ESTIMAND_ORDER:
            raise ValueError(f"primary must be 'auto' or one of {ESTIMAND_ORDER}, not "
                             f"{primary!r}")
        e = rows.get((method, primary))
        if e is None or not e.estimable:
            return None, (f"{method.upper()} {primary} was asked for as primary but is not "
                          "estimable" + (f": {e.reason}" if e is not None else ""))
        status = ("identified" if e.identified else
                  "NOT identified (labelled as such; see its identification note)")
        return (method, e.estimand), f"{method.upper()} {primary} as configured; {status}."
    skipped = []
    for estimand in ESTIMAND_ORDER:
        e = rows.get((method, estimand))
        if e is None:
            continue
        if e.estimable and e.identified:
            why = (f" ({'; '.join(skipped)})" if skipped else "")
            return (method, e.estimand), (
                f"primary = auto: {method.upper()} {estimand}, the first identified "
                f"estimand in the order {', '.join(ESTIMAND_ORDER)}{why}.")
        skipped.append(f"{estimand} " + ("not estimable" if not e.estimable
                                         else "not identified"))
    return None, ("primary = auto: no identified, estimable IPTW estimand ("
                  + "; ".join(skipped) + ").")


def judge_estimates(cohort, propensity, estimates, row_weights_: dict,
                    primary: str = "auto", *, influence: bool = True, fits=()):
    """Positivity, verdicts and the primary estimate of one adjusted analysis.

    Returns ``(estimates, verdicts, positivity, primary, primary_reason)``: the estimates
    carrying ``identified`` / ``identification_note``, the :class:`Identification` per
    estimate, the :class:`Positivity`, the primary ``(method, estimand)`` (None when
    nothing qualifies) and why. Warns (:class:`~causal_hcc.errors.PositivityWarning`)
    naming the estimates that are not identified, and when the primary is not.
    """
    pos = positivity(cohort, propensity)
    estimates, verdicts = identify_estimates(cohort, pos, estimates, row_weights_,
                                             influence=influence, fits=fits)
    chosen, reason = choose_primary(estimates, primary)
    message = unidentified_message(estimates)
    if message:
        warnings.warn(message, PositivityWarning, stacklevel=3)
    if chosen is not None and primary != "auto" and not next(
            e.identified for e in estimates if (e.method, e.estimand) == chosen):
        warnings.warn(f"The configured primary estimate {chosen[0]} {chosen[1]} is not "
                      "identified; it stays labelled as such.", PositivityWarning,
                      stacklevel=3)
    return estimates, verdicts, pos, chosen, reason
