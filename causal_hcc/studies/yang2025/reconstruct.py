"""Generator of the bundled RECONSTRUCTED pseudo-patient cohort (not the study's patients).

The patient-level data of Yang et al. 2025 (Chin J Gen Surg 34(7):1371-1381; 40 local
therapy vs 36 no local therapy, CNLC IIIb HCC) are not public. This module builds 76
pseudo-patients whose aggregates reproduce the published ones, read with the corrections
of ``paper/audit.md``:

1. Four fixed cells (arm x oligometastasis: 25, 15, 15, 21). Every categorical variable
   gets its exact per-cell count (Table 2; non-oligometastatic = Table 1 - Table 2, with the
   audit's B3 correction), and every continuous variable per-cell values with the published
   (or complement-derived) mean and SD.
2. A simulated-annealing search over individual (time, event) pairs and over swaps of
   covariate values between patients of the same cell (which keep every count, mean and SD
   exact) fits the Kaplan-Meier landmarks and medians, log-rank P values, follow-up and the
   Table 3 Cox models (Efron ties, reversed label convention, audit C1). It works on
   individual patients, not smooth curves, so differential censoring can reconcile the
   local-arm and oligo-local tails (audit A3/A5).
3. Treatment times, NED and diagnosis dates are then attached, consistent with each
   patient's follow-up.

The search uses the small vectorised estimators below (:func:`km_fast`,
:func:`logrank_fast`, :func:`cox_efron_fast`), which agree with lifelines to rtol 1e-6;
:mod:`causal_hcc.studies.yang2025.calibration` checks the result with lifelines itself.
Every output of this module is reconstructed pseudo-data.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from causal_hcc.studies.yang2025.calibration import (CELLS, COLUMNS, CUTOFF_DATE, ENROLMENT_END,
                                         ENROLMENT_START, LOGRANK_BANDS, MONTH_DAYS,
                                         cell_targets, load_paper_targets)
from causal_hcc.errors import ConvergenceWarning
from causal_hcc.studies.yang2025.dictionary import RECONSTRUCTED_LABEL

DEFAULT_SEED = 20250711
BUNDLED_FILENAME = "reconstructed_pseudo_cohort.csv"

__all__ = ["DEFAULT_SEED", "ReconstructionParams", "reconstruct_cohort", "write_bundled",
           "bundled_csv_path", "read_cohort_csv", "km_fast", "logrank_fast",
           "cox_efron_fast"]


@dataclass(frozen=True)
class ReconstructionParams:
    """Named choices the paper does not determine, for the reconstructed pseudo-cohort.

    Each default is documented; change one to regenerate the pseudo-cohort under another
    assumption (``reconstruct_cohort(params=ReconstructionParams(log_hr_vascular_invasion=0.7))``).

    Parameters
    ----------
    log_hr_vascular_invasion : float
        Target univariable log hazard ratio of vascular invasion (yes vs no). Not in Table 3;
        default log(1.5), a modest adverse effect.
    log_hr_combination_regimen : float
        Target univariable log HR of targeted + immune vs single-class systemic therapy.
        Not reported; default 0 (no effect).
    milan_multiple_max_cm : float or None
        Milan status is derived, not drawn: within = no vascular invasion and (no viable
        lesion, or a single lesion <= 5 cm, or multiple lesions with the largest <= this
        value, i.e. assumed <= 3 nodules). None: multiple lesions are always beyond Milan.
    child_pugh_b_requires_cirrhosis : bool
        Every Child-Pugh B patient has cirrhosis (clinical plausibility).
    diameter_advanced_corr : float
        Minimum correlation of log intrahepatic diameter with "vascular invasion or multiple
        lesions" (plausibility; soft, hinge penalty).
    min_milan_untreated : int
        Minimum number of untreated patients within Milan (soft). Without it the search can
        put every within-Milan patient in the treated arm, which would make Milan status
        separate the arms perfectly in a propensity model.
    age_min_cell, age_max_cell : str
        Cells holding the published age extremes 31 and 84 (Section 1.1).
    intrahepatic_diameter_min_cm, extrahepatic_diameter_min_cm : float
        Lower bounds of the generated diameters.
    local_interval_sigma : float
        Log-scale SD of the lognormal time from diagnosis to local therapy (medians 1 and 2
        months, oligo / non-oligo, from the Discussion; range 0-31).
    ned_fraction_beta : tuple of float
        Beta(a, b) shape of cumulative NED time as a fraction of follow-up after local therapy.
    ned_requires_ccr : bool
        NED patients are drawn among intrahepatic cCR patients (NED means no tumour anywhere).
    lost_to_follow_up_share : float
        Share of censored patients (among those an administrative cut-off can explain) made
        lost to follow-up, i.e. censored before the cut-off date allows. Low by default: the
        paper excluded patients without regular re-examination.
    early_censoring_weight : float
        Penalty per patient censored alive before 6 months (the shortest administrative
        follow-up: enrolment ends 2023-12-31, cut-off 2024-06-30), who must then be lost.
    n_iterations : int
        Annealing iterations per round.
    n_restarts, n_rounds : int
        Phase 1 (survival) makes up to ``n_restarts`` independent restarts; phases 2 and 3
        (associations, joint polish) up to ``n_rounds`` rounds each. A phase ends once every
        hard target of the phase is within ``stop_margin`` of its tolerance (log-rank P: of
        the distance from the published P to the nearer edge of its band).
    temperature_start, temperature_end : float
        Geometric annealing schedule of each round.
    weight_landmark_tail : float
        Weight of the 60-month landmarks of the local and oligo-local arms, the softest survival
        targets (audit A3/A5): it scales the quadratic pull only, the tolerance is still
        enforced.
    weight_soft_cox : float
        Weight of the univariable Cox rows without a hard tolerance (sex, age, hepatitis,
        cirrhosis, Child-Pugh, AFP, extrahepatic diameter, and the two chosen above).
    hinge_margin : float
        Fraction of a tolerance beyond which the loss steepens (30-fold, unweighted).
    """

    log_hr_vascular_invasion: float = math.log(1.5)
    log_hr_combination_regimen: float = 0.0
    milan_multiple_max_cm: float | None = 3.0
    child_pugh_b_requires_cirrhosis: bool = True
    diameter_advanced_corr: float = 0.25
    min_milan_untreated: int = 4
    age_min_cell: str = "local_oligo"
    age_max_cell: str = "no_local_non_oligo"
    intrahepatic_diameter_min_cm: float = 0.8
    extrahepatic_diameter_min_cm: float = 0.5
    local_interval_sigma: float = 1.0
    ned_fraction_beta: tuple[float, float] = (2.0, 1.5)
    ned_requires_ccr: bool = True
    lost_to_follow_up_share: float = 0.05
    early_censoring_weight: float = 1.0
    n_iterations: int = 6000
    n_restarts: int = 8
    n_rounds: int = 4
    stop_margin: float = 0.95
    temperature_start: float = 2.0
    temperature_end: float = 0.002
    weight_landmark_tail: float = 0.3
    weight_soft_cox: float = 0.3
    hinge_margin: float = 0.6


# --------------------------------------------------------------------------------------
# Fast estimators used inside the search (validated against lifelines in the tests).
# They serve the generator of the reconstructed pseudo-cohort; analyses use
# causal_hcc.survival.
# --------------------------------------------------------------------------------------

class _Blocks:
    """Time order and tie blocks of one (time, event) configuration, reused across fits.

    Patients are sorted by time with deaths first among equal times, so that the deaths of
    a tie block are contiguous and one cumulative sum gives both risk-set sums and tied-death
    sums.
    """

    def __init__(self, time, event, order=None):
        time = np.asarray(time, dtype=float)
        event = np.asarray(event, dtype=float)
        self.order = np.lexsort((-event, time)) if order is None else order
        self.time = time[self.order]
        self.event = event[self.order]
        n = len(time)
        starts = np.ones(n, dtype=bool)
        starts[1:] = self.time[1:] != self.time[:-1]
        self.start = np.flatnonzero(starts)
        cum_ev = np.concatenate(([0], np.cumsum(self.event).astype(np.int64)))
        ends = np.append(self.start[1:], n)
        self.n_deaths_block = cum_ev[ends] - cum_ev[self.start]
        self.death_end = self.start + self.n_deaths_block    # end of the block's deaths
        self.block_time = self.time[self.start]
        block_id = np.cumsum(starts) - 1
        self.death_pos = np.flatnonzero(self.event > 0)
        k = block_id[self.death_pos]
        self.d_start, self.d_end = self.start[k], self.death_end[k]
        # Efron: the l-th of m tied deaths removes l/m of the tied risk (l = 0..m-1).
        self.efron_frac = (self.death_pos - self.d_start) / self.n_deaths_block[k]
        self.death_block = k

    @staticmethod
    def cumulative(values):
        """Cumulative sums along the sorted patients, with a leading row of zeros."""
        out = np.zeros((values.shape[0] + 1,) + values.shape[1:])
        np.cumsum(values, axis=0, out=out[1:])
        return out

    def block_sums(self, values):
        """Per tie block: (sum over the risk set t >= block time, sum over the block's deaths)."""
        csum = self.cumulative(values)
        return csum[-1] - csum[self.start], csum[self.death_end] - csum[self.start]


def km_fast(time, event, groups, landmarks=(12.0, 24.0, 36.0, 60.0), blocks=None):
    """Kaplan-Meier survival at landmarks and median survival, for several groups at once.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up in months and 1 = death.
    groups : array-like of bool, shape (n, g)
        One column per group (a patient may be in several groups).
    landmarks : sequence of float
        Months at which S(t) is read (right-continuous: deaths at t count).

    Returns
    -------
    surv : ndarray, shape (g, len(landmarks))
    median : ndarray, shape (g,)
        First time with S(t) <= 0.5, ``inf`` when never reached (lifelines' convention).

    Notes
    -----
    Product-limit estimator over distinct times, computed as exp(cumsum(log(n - d) -
    log(n))) as lifelines does, so values agree with ``KaplanMeierFitter`` to rounding.
    Helper of the generator of the reconstructed pseudo-cohort; analyses use
    :mod:`causal_hcc.survival`.
    """
    b = blocks or _Blocks(time, event)
    at_risk, deaths = b.block_sums(np.asarray(groups, dtype=float)[b.order])
    return _km_from_counts(b, at_risk, deaths, landmarks)


def _km_from_counts(b, at_risk, deaths, landmarks):
    with np.errstate(divide="ignore", invalid="ignore"):
        logf = np.where(deaths > 0, np.log(at_risk - deaths) - np.log(at_risk), 0.0)
    surv = np.exp(np.cumsum(logf, axis=0))
    idx = np.searchsorted(b.block_time, np.asarray(landmarks, dtype=float), side="right") - 1
    at = np.where(idx[None, :] >= 0, surv[np.maximum(idx, 0)].T, 1.0)
    below = surv <= 0.5
    median = np.where(below.any(axis=0), b.block_time[below.argmax(axis=0)], np.inf)
    return at, median


def logrank_fast(time, event, group, subset=None, blocks=None):
    """Two-group log-rank test(s) with the hypergeometric variance (ties as lifelines/R).

    Parameters
    ----------
    time, event : array-like, shape (n,)
    group : array-like of bool, shape (n,) or (n, c)
        Group 1 membership, one column per comparison.
    subset : array-like of bool, same shape as ``group``, optional
        Patients entering each comparison (default all).

    Returns
    -------
    chi2, p : ndarray, shape (c,)
        Chi-square statistic (1 df) and its P value.

    Notes
    -----
    Per distinct time, E = d n1 / n and V = d (n1/n)(1 - n1/n)(n - d)/(n - 1), as R's
    ``survdiff`` and lifelines' ``logrank_test``. Helper of the generator of the
    reconstructed pseudo-cohort.
    """
    b = blocks or _Blocks(time, event)
    grp = np.asarray(group, dtype=float)
    if grp.ndim == 1:
        grp = grp[:, None]
    sub = (np.ones_like(grp) if subset is None
           else np.asarray(subset, dtype=float).reshape(grp.shape))
    at_risk, deaths = b.block_sums(np.hstack((sub, grp * sub))[b.order])
    return _logrank_from_counts(at_risk, deaths, grp.shape[1])


def _logrank_from_counts(at_risk, deaths, c):
    n_all, n_one, d_all, d_one = at_risk[:, :c], at_risk[:, c:], deaths[:, :c], deaths[:, c:]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(n_all > 0, n_one / n_all, 0.0)
        expected = (d_all * frac).sum(axis=0)
        var = np.where(n_all > 1, d_all * frac * (1 - frac) * (n_all - d_all) / (n_all - 1),
                       0.0).sum(axis=0)
        chi2 = (d_one.sum(axis=0) - expected) ** 2 / var
    p = np.array([math.erfc(math.sqrt(v / 2.0)) if np.isfinite(v) else np.nan for v in chi2])
    return chi2, p


def _efron_terms(b, x, beta):
    """Log-likelihood, gradient and Hessian of the Efron partial likelihood (p covariates)."""
    n, p = x.shape
    eta = x @ beta
    w = np.exp(eta)
    stacked = np.empty((n, 1 + p + p * p))
    stacked[:, 0] = w
    stacked[:, 1:1 + p] = w[:, None] * x
    stacked[:, 1 + p:] = (stacked[:, 1:1 + p, None] * x[:, None, :]).reshape(n, p * p)
    csum = b.cumulative(stacked)
    f = b.efron_frac[:, None]
    num = (csum[-1] - csum[b.d_start]) - f * (csum[b.d_end] - csum[b.d_start])
    den = num[:, 0]
    mean1 = num[:, 1:1 + p] / den[:, None]
    mean2 = num[:, 1 + p:].reshape(-1, p, p) / den[:, None, None]
    loglik = eta[b.death_pos].sum() - np.log(den).sum()
    grad = x[b.death_pos].sum(axis=0) - mean1.sum(axis=0)
    hess = -(mean2 - mean1[:, :, None] * mean1[:, None, :]).sum(axis=0)
    return loglik, grad, hess


def cox_efron_fast(time, event, covariates, beta0=None, max_iter=50, tol=1e-10, blocks=None):
    """Cox proportional-hazards fit by Newton-Raphson on the Efron partial likelihood.

    Parameters
    ----------
    time, event : array-like, shape (n,)
    covariates : array-like, shape (n, p)
    beta0 : array-like, shape (p,), optional
        Starting value (warm start inside the search); zeros by default.
    max_iter : int
        Newton iterations at most.
    tol : float
        Stop when the largest absolute Newton step is below this.

    Returns
    -------
    beta : ndarray, shape (p,)
        Log hazard ratios (as R ``coxph(ties = "efron")`` and lifelines ``CoxPHFitter``).
    se : ndarray, shape (p,)
        Model-based standard errors (inverse observed information).
    loglik : float
        Partial log-likelihood at ``beta``.

    Notes
    -----
    Efron (1977): the l-th of m deaths tied at a time sees the risk set less l/m of the tied
    deaths' weight. Helper of the generator of the reconstructed pseudo-cohort; analyses use
    :mod:`causal_hcc.survival`.
    """
    b = blocks or _Blocks(time, event)
    x = np.asarray(covariates, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    x = x[b.order]
    beta = np.zeros(x.shape[1]) if beta0 is None else np.array(beta0, dtype=float)
    for _ in range(max_iter):
        _, grad, hess = _efron_terms(b, x, beta)
        step = np.linalg.solve(hess, grad)
        beta = np.clip(beta - step, -12.0, 12.0)
        if np.max(np.abs(step)) < tol:
            break
    loglik, _, hess = _efron_terms(b, x, beta)
    se = np.sqrt(np.diag(np.linalg.inv(-hess)))
    return beta, se, loglik


def _cox_univariable_batch(b, x_sorted, beta, n_iter):
    """Separate one-covariate Efron fits for every column of ``x_sorted`` (Newton, warm start)."""
    n, k = x_sorted.shape
    f = b.efron_frac[:, None]
    xd_sum = x_sorted[b.death_pos].sum(axis=0)
    stacked = np.empty((n, 3 * k))
    for _ in range(n_iter):
        w = np.exp(x_sorted * beta)
        stacked[:, :k] = w
        np.multiply(w, x_sorted, out=stacked[:, k:2 * k])
        np.multiply(stacked[:, k:2 * k], x_sorted, out=stacked[:, 2 * k:])
        csum = b.cumulative(stacked)
        num = (csum[-1] - csum[b.d_start]) - f * (csum[b.d_end] - csum[b.d_start])
        den = num[:, :k]
        m1 = num[:, k:2 * k] / den
        m2 = num[:, 2 * k:] / den
        grad = xd_sum - m1.sum(axis=0)
        info = (m2 - m1 * m1).sum(axis=0)
        beta = np.clip(beta + grad / np.maximum(info, 1e-12), -12.0, 12.0)
    return beta


# --------------------------------------------------------------------------------------
# Baseline covariates: exact per-cell counts and moments
# --------------------------------------------------------------------------------------

#: Binary/categorical state arrays of the search, with the output value coded 1 (or 1, 2).
_BINARY = ("female", "hepatitis", "cirrhosis", "ecog", "child_pugh_b", "afp_positive",
           "vascular_invasion", "intrahepatic_ccr", "extrahepatic_multiple", "combination")
_CONTINUOUS = ("age", "intrahepatic_max_diameter_cm", "extrahepatic_max_diameter_cm")
_BINARY_SOURCE = {"female": ("sex", "female"), "hepatitis": ("hepatitis", 1),
                  "cirrhosis": ("cirrhosis", 1), "ecog": ("ecog", 1),
                  "child_pugh_b": ("child_pugh", "B"), "afp_positive": ("afp_positive", 1),
                  "vascular_invasion": ("vascular_invasion", 1),
                  "intrahepatic_ccr": ("intrahepatic_ccr", 1),
                  "extrahepatic_multiple": ("extrahepatic_lesions", "multiple"),
                  "combination": ("systemic_regimen", "combination")}
_LESION_CODES = ("none", "single", "multiple")


def _affine_to_moments(free, pinned, mean, sd):
    """a + b * free such that (a + b * free) together with ``pinned`` has this mean and SD."""
    n = len(free) + len(pinned)
    pinned = np.asarray(pinned, dtype=float)
    f_mean, f_var = free.mean(), free.var()
    rest_sum = n * mean - pinned.sum()
    m_free = rest_sum / len(free)
    # Total sum of squares about the overall mean, split into free and pinned parts.
    ss_target = (n - 1) * sd ** 2 - ((pinned - mean) ** 2).sum() - len(free) * (m_free - mean) ** 2
    b = math.sqrt(max(ss_target, 1e-12) / (len(free) * f_var))
    return m_free + b * (free - f_mean)


def _values_with_moments(rng, n, mean, sd, lognormal, lo, hi, decimals, pinned=()):
    """n values (``pinned`` included) with this sample mean and SD (n - 1), within [lo, hi].

    Normal draws are mapped affinely; lognormal draws (diameters, skewed) are mapped in
    the log scale so that the values stay positive. Values hitting a bound are held there
    and the others re-solved, so the moments are exact before rounding.
    """
    z = np.clip(rng.standard_normal(n - len(pinned)), -2.5, 2.5)
    if lognormal:
        def moments_gap(s):
            full = np.concatenate((np.exp(s * z), pinned))
            return full.std(ddof=1) / full.mean() - sd / mean
        lo_s, hi_s = 1e-3, 3.0
        for _ in range(60):  # bisection on the log-scale SD: the CV grows with it
            mid = 0.5 * (lo_s + hi_s)
            lo_s, hi_s = (mid, hi_s) if moments_gap(mid) < 0 else (lo_s, mid)
        base = np.exp(0.5 * (lo_s + hi_s) * z)
        x = base * (n * mean - np.sum(pinned)) / base.sum()
    else:
        x = _affine_to_moments(z, pinned, mean, sd)
    held = np.zeros(len(x), dtype=bool)
    for _ in range(50):
        out = (x < lo) | (x > hi)
        if not out.any():
            break
        held |= out
        x = np.clip(x, lo, hi)
        free = ~held
        x[free] = _affine_to_moments(x[free], np.concatenate((x[held], pinned)), mean, sd)
    values = np.concatenate((_round_keeping_sum(x, decimals), pinned))
    return values[rng.permutation(n)]


def _round_keeping_sum(x, decimals):
    """Round to ``decimals`` so that the total is the rounded total (largest remainders).

    Plain rounding of 15-25 values can move a cell mean by a tenth; this keeps it.
    """
    scale = 10.0 ** decimals
    y = x * scale
    base = np.floor(y)
    extra = int(round(y.sum() - base.sum()))
    base[np.argsort(-(y - base), kind="stable")[:extra]] += 1.0
    return np.round(base / scale, decimals)


def _initial_covariates(rng, cells, cell_index, params):
    """Per-cell exact counts, assigned at random subject to the hard consistency rules.

    Rules: no viable intrahepatic lesion implies cCR and no vascular invasion (audit B9:
    such patients are within Milan); Child-Pugh B implies cirrhosis (if the parameter says so).
    """
    n = len(cell_index)
    cov = {name: np.zeros(n, dtype=np.int64) for name in _BINARY}
    cov["lesions"] = np.zeros(n, dtype=np.int64)
    for name in _CONTINUOUS:
        cov[name] = np.zeros(n)
    counts, moments = cells["counts"], cells["moments"]
    for c, (cell, _local, _oligo) in enumerate(CELLS):
        idx = np.flatnonzero(cell_index == c)
        m = len(idx)
        lesion_counts = counts["intrahepatic_lesions"][cell]
        lesions = np.repeat([0, 1, 2], [lesion_counts[k] for k in _LESION_CODES])
        cov["lesions"][idx] = lesions[rng.permutation(m)]
        none = cov["lesions"][idx] == 0
        for name in _BINARY:
            column, level = _BINARY_SOURCE[name]
            k = counts[column][cell][level]
            forced = np.zeros(m, dtype=bool)   # must be 1
            banned = np.zeros(m, dtype=bool)   # must be 0
            if name == "intrahepatic_ccr":
                forced = none
            elif name == "vascular_invasion":
                banned = none
            elif name == "cirrhosis" and params.child_pugh_b_requires_cirrhosis:
                forced = cov["child_pugh_b"][idx] == 1
            free = np.flatnonzero(~forced & ~banned)
            chosen = np.concatenate((np.flatnonzero(forced),
                                     rng.permutation(free)[:k - int(forced.sum())]))
            values = np.zeros(m, dtype=np.int64)
            values[chosen] = 1
            cov[name][idx] = values
        for name in _CONTINUOUS:
            mean, sd = moments[name][cell]
            if name == "age":
                pinned = ([31.0] if cell == params.age_min_cell else []) + \
                         ([84.0] if cell == params.age_max_cell else [])
                vals = _values_with_moments(rng, m, mean, sd, False, 31.0, 84.0, 0, pinned)
            else:
                lo = (params.intrahepatic_diameter_min_cm if name.startswith("intra")
                      else params.extrahepatic_diameter_min_cm)
                vals = _values_with_moments(rng, m, mean, sd, True, lo, 25.0, 1)
            cov[name][idx] = vals
    return cov


def _milan_within(cov, params):
    """Milan status derived from lesions, largest diameter and vascular invasion."""
    single_ok = (cov["lesions"] == 1) & (cov["intrahepatic_max_diameter_cm"] <= 5.0)
    multi_ok = np.zeros_like(single_ok)
    if params.milan_multiple_max_cm is not None:
        multi_ok = (cov["lesions"] == 2) & (
            cov["intrahepatic_max_diameter_cm"] <= params.milan_multiple_max_cm)
    return ((cov["vascular_invasion"] == 0)
            & ((cov["lesions"] == 0) | single_ok | multi_ok)).astype(np.int64)


def _valid_patient(cov, i, params):
    """The hard per-patient rules (see :func:`_initial_covariates`)."""
    if cov["lesions"][i] == 0 and (cov["intrahepatic_ccr"][i] == 0
                                   or cov["vascular_invasion"][i] == 1):
        return False
    if params.child_pugh_b_requires_cirrhosis and cov["child_pugh_b"][i] == 1:
        return cov["cirrhosis"][i] == 1
    return True


# --------------------------------------------------------------------------------------
# The search: targets, loss, moves
# --------------------------------------------------------------------------------------

_KM_GROUPS = ("overall", "local", "no_local", "local_oligo", "no_local_oligo",
              "local_non_oligo", "no_local_non_oligo")
_LANDMARKS = (12.0, 24.0, 36.0, 60.0)
#: Univariable Cox columns of the search, coded 1 for the level each published HR is for
#: (Table 3 read with the reversed label convention, audit C1).
_UNI = ("ecog", "milan_within", "intrahepatic_ccr", "non_oligo", "no_local", "female",
        "age_over_50", "no_hepatitis", "no_cirrhosis", "child_pugh_b", "afp_positive",
        "extrahepatic_over_2cm", "vascular_invasion", "combination")
_UNI_KEYS = ("ecog_ps", "intrahepatic_milan", "intrahepatic_ccr", "oligometastasis",
             "local_therapy", "sex", "age", "hepatitis", "cirrhosis", "child_pugh_class",
             "afp", "extrahepatic_max_diameter")
_MULTI = _UNI[:5]


@dataclass
class _Targets:
    """Numeric search targets taken from paper_targets.json (audit readings applied)."""

    km_rate: np.ndarray          # (5 groups, 4 landmarks), fraction
    km_tol: np.ndarray
    km_weight: np.ndarray
    median_groups: tuple
    median_value: np.ndarray
    logrank_target: np.ndarray   # log10 P
    logrank_tol: np.ndarray
    uni_log_hr: np.ndarray
    uni_tol: np.ndarray
    uni_weight: np.ndarray
    multi_log_hr: np.ndarray
    follow_up: tuple = (15.0, 2.5, 72.0)
    ned_max: float = 64.6
    n_deaths: int = 32


def _search_targets(targets, params):
    """The search's numeric targets and tolerances from the paper's numbers."""
    surv = targets["survival"]
    arms, oligo = surv["by_local_therapy"], surv["oligometastatic_subgroup"]
    non_oligo = surv["non_oligometastatic_subgroup"]
    rates = [surv["overall"]["os_rate_pct"], arms["local"]["os_rate_pct"],
             arms["no_local"]["os_rate_pct"], oligo["local"]["os_rate_pct"],
             oligo["no_local"]["os_rate_pct"]]
    km_rate = np.array([[r[str(int(m))] / 100.0 for m in _LANDMARKS] for r in rates])
    km_tol = np.array([[0.03, 0.03, 0.03, 0.04]] * 3 + [[0.07] * 4] * 2)
    km_weight = np.ones_like(km_rate)
    km_weight[1, 3] = km_weight[3, 3] = params.weight_landmark_tail   # audit A3/A5
    median_groups = ("overall", "no_local", "no_local_oligo", "local_non_oligo",
                     "no_local_non_oligo")
    median_value = np.array([entry["median_os_months"]["value"] for entry in
                             (surv["overall"], arms["no_local"], oligo["no_local"],
                              non_oligo["local"], non_oligo["no_local"])])
    published_p = np.array([arms["log_rank_p"], oligo["log_rank_p"], non_oligo["log_rank_p"]])
    bands = np.log10(np.array(list(LOGRANK_BANDS.values())))
    target_p = np.log10(published_p)
    tol_p = np.minimum(target_p - bands[:, 0], bands[:, 1] - target_p)
    cox = targets["cox_table3"]["variables"]
    uni, uni_tol, uni_w = [], [], []
    for i, key in enumerate(_UNI_KEYS):
        row = cox[key]["univariable"]
        uni.append(math.log(row["hr"]))
        if i < 5:      # hard: |log ratio| <= 0.15
            uni_tol.append(0.15)
            uni_w.append(1.0)
        else:          # soft: inside the published CI
            uni_tol.append(0.5 * math.log(row["ci95_upper"] / row["ci95_lower"]))
            uni_w.append(params.weight_soft_cox)
    uni += [params.log_hr_vascular_invasion, params.log_hr_combination_regimen]
    uni_tol += [0.3, 0.3]
    uni_w += [params.weight_soft_cox] * 2
    multi = [math.log(cox[key]["multivariable"]["hr"]) for key in _UNI_KEYS[:5]]
    return _Targets(km_rate, km_tol, km_weight, median_groups, median_value, target_p, tol_p,
                    np.array(uni), np.array(uni_tol), np.array(uni_w), np.array(multi),
                    n_deaths=int(surv["overall"]["deaths"]),
                    ned_max=float(targets["ned"]["median_cumulative_ned_months"]["range_max"]),
                    follow_up=(surv["median_follow_up_months"]["value"],
                               surv["median_follow_up_months"]["range_min"],
                               surv["median_follow_up_months"]["range_max"]))


def _term(value, target, tol, weight, margin, hinge=1.0):
    """Weighted squared error in tolerance units, plus a steep unweighted penalty beyond
    ``margin`` of the tolerance (a low weight lets a target sit anywhere inside its
    tolerance, never outside)."""
    z = np.abs((value - target) / tol)
    return float(np.sum(weight * z * z + 30.0 * hinge * np.maximum(z - margin, 0.0) ** 2))


def _binary_cox_newton(at_risk_all, at_risk_one, x_deaths, beta, n_iter):
    """Newton steps of separate one-binary-covariate Efron fits from Efron-weighted counts.

    With x in {0, 1} the weighted risk set at each death is ``all + (exp(beta) - 1) * one``,
    where ``all`` and ``one`` are Efron-adjusted counts (shape (deaths, k)), so each step
    needs no pass over the patients.
    """
    for _ in range(n_iter):
        e = np.exp(beta)
        m1 = e * at_risk_one / (at_risk_all + (e - 1.0) * at_risk_one)
        info = (m1 * (1.0 - m1)).sum(axis=0)
        beta = np.clip(beta + (x_deaths - m1.sum(axis=0)) / np.maximum(info, 1e-12), -12.0, 12.0)
    return beta


#: The 32 covariate patterns of the five-variable model (bit j = covariate j of _MULTI).
_PATTERNS = ((np.arange(32)[:, None] >> np.arange(5)) & 1).astype(float)
_PATTERN_SQ = (_PATTERNS[:, :, None] * _PATTERNS[:, None, :]).reshape(32, 25)
_BITS = 2 ** np.arange(5)


class _Search:
    """State and loss of the annealing search (times in tenths of a month).

    All Cox covariates are binary, so inside the search the Efron risk-set sums are
    pattern counts times exp(pattern . beta): one cumulative sum of the counts per
    configuration, after which each Newton step is a few tiny matrix products.
    """

    def __init__(self, cov, cell_index, tenths, event, tg, params):
        self.cov, self.cell, self.tg, self.params = cov, cell_index, tg, params
        self.tenths, self.event = tenths, event
        local = np.array([CELLS[c][1] for c in cell_index]) == 1
        oligo = np.array([CELLS[c][2] for c in cell_index]) == 1
        self.local, self.oligo = local, oligo
        cell_no = {name: c for c, (name, _, _) in enumerate(CELLS)}
        cols = [np.ones_like(local), local, ~local] + [cell_index == cell_no[g]
                                                       for g in _KM_GROUPS[3:]]
        self.groups = np.column_stack(cols)
        self.lr_group = np.column_stack([local, local, local])
        self.lr_subset = np.column_stack([np.ones_like(local), oligo, ~oligo])
        self.count_columns = np.hstack((self.groups, self.lr_subset,
                                        self.lr_group & self.lr_subset,
                                        ~oligo[:, None])).astype(float)
        self.cell_x = np.column_stack([~local, ~oligo]).astype(float)
        self.beta_cell = np.zeros(2)
        self.median_cols = [_KM_GROUPS.index(g) for g in tg.median_groups]
        self.cells = [np.flatnonzero(cell_index == c) for c in range(4)]
        self.beta_uni = np.zeros(len(_UNI))
        self.beta_multi = np.zeros(len(_MULTI))
        # Survival targets as flat vectors: 20 landmarks, 5 medians, 3 log10 P, follow-up
        # (median, min, max), log HR of no local therapy and of non-oligometastatic.
        self.s_target = np.concatenate((tg.km_rate.ravel(), tg.median_value, tg.logrank_target,
                                        tg.follow_up, tg.uni_log_hr[[4, 3]]))
        self.s_tol = np.concatenate((tg.km_tol.ravel(), np.full(5, 1.5), tg.logrank_tol,
                                     [1.0, 0.5, 0.5], [0.15, 0.15]))
        self.s_weight = np.concatenate((tg.km_weight.ravel(), np.ones(13)))
        # Cox targets: the 14 univariable rows (the two cell-defined ones are counted in the
        # survival part, so weight 0 here) and the five-variable model.
        self.c_target = np.concatenate((tg.uni_log_hr, tg.multi_log_hr))
        self.c_tol = np.concatenate((tg.uni_tol, np.full(5, 0.15)))
        self.c_weight = np.concatenate((tg.uni_weight, np.ones(5)))
        self.c_weight[[3, 4]] = 0.0
        self.c_hinge = np.ones_like(self.c_weight)
        self.c_hinge[[3, 4]] = 0.0
        self.design_state = self.design()

    def design(self):
        """(design matrix of ``_UNI``, one-hot pattern of ``_MULTI``, plausibility loss)."""
        c = self.cov
        milan = _milan_within(c, self.params)
        x = np.column_stack([c["ecog"], milan, c["intrahepatic_ccr"], ~self.oligo,
                             ~self.local, c["female"], c["age"] > 50, 1 - c["hepatitis"],
                             1 - c["cirrhosis"], c["child_pugh_b"], c["afp_positive"],
                             c["extrahepatic_max_diameter_cm"] > 2.0,
                             c["vascular_invasion"], c["combination"]]).astype(float)
        onehot = np.zeros((len(x), 32))
        onehot[np.arange(len(x)), (x[:, :5] @ _BITS).astype(np.int64)] = 1.0
        return x, onehot, self._plausibility(milan)

    def blocks(self):
        """Tie blocks of the current times (integer sort key: time, deaths first)."""
        order = np.argsort(self.tenths * 2 + (1 - self.event), kind="stable")
        return _Blocks(self.tenths / 10.0, self.event, order)

    def survival_loss(self, n_iter=2):
        """Loss of everything that depends on (time, event, cell) only.

        KM landmarks and medians, log-rank P, follow-up, early censoring, and the two
        univariable Cox HRs whose covariate is the cell (local therapy, oligometastasis).
        Swapping (time, event) between two patients of the same cell leaves it unchanged.

        Returns
        -------
        loss : float
        blocks : _Blocks
        beta : ndarray, shape (2,)
            log HR of no local therapy and of non-oligometastatic (warm start for the next call).
        """
        p = self.params
        b = self.blocks()
        at_risk, deaths = b.block_sums(self.count_columns[b.order])
        g = self.groups.shape[1]
        surv, med = _km_from_counts(b, at_risk[:, :g], deaths[:, :g], _LANDMARKS)
        _, pv = _logrank_from_counts(at_risk[:, g:g + 6], deaths[:, g:g + 6], 3)
        # Efron risk sets at each death, all patients and the two cell-defined covariates.
        k, f = b.death_block, b.efron_frac[:, None]
        a = at_risk[k][:, [0, 2, g + 6]] - f * deaths[k][:, [0, 2, g + 6]]
        beta = _binary_cox_newton(a[:, :1], a[:, 1:], self.event @ self.cell_x, self.beta_cell,
                                  n_iter)
        st = b.time
        n = len(st)
        values = np.concatenate((surv[:5].ravel(), np.minimum(med[self.median_cols], 200.0),
                                 np.log10(np.maximum(pv, 1e-300)),
                                 [0.5 * (st[(n - 1) // 2] + st[n // 2]), st[0], st[-1]], beta))
        loss = _term(values, self.s_target, self.s_tol, self.s_weight, p.hinge_margin)
        loss += p.early_censoring_weight * np.count_nonzero((self.event == 0) & (self.tenths < 60))
        return loss, b, beta

    def cox_loss(self, b, design, n_iter=2):
        """Cox and plausibility loss, from warm-started Newton steps; returns the betas too."""
        tg, p = self.tg, self.params
        x, onehot, plaus = design
        csum = b.cumulative(np.hstack((x, onehot))[b.order])
        f = b.efron_frac[:, None]
        a = (csum[-1] - csum[b.d_start]) - f * (csum[b.d_end] - csum[b.d_start])
        k = x.shape[1]
        a1, apat = a[:, :k], a[:, k:]
        atot = apat.sum(axis=1, keepdims=True)
        xd = self.event @ x
        beta_u = _binary_cox_newton(atot, a1, xd, self.beta_uni, n_iter)
        beta_m = self.beta_multi
        for _ in range(n_iter):
            w = np.exp(_PATTERNS @ beta_m)
            den = apat @ w
            m1 = (apat @ (w[:, None] * _PATTERNS)) / den[:, None]
            info = ((apat @ (w[:, None] * _PATTERN_SQ)) / den[:, None]).sum(axis=0)
            info = info.reshape(5, 5) - m1.T @ m1
            step = np.linalg.solve(info, xd[:5] - m1.sum(axis=0))
            beta_m = np.clip(beta_m + step, -12.0, 12.0)
        loss = _term(np.concatenate((beta_u, beta_m)), self.c_target, self.c_tol,
                     self.c_weight, p.hinge_margin, self.c_hinge) + plaus
        # The longest NED (64.6 months) needs a treated cCR patient followed that long.
        best = self.tenths[self.local & (x[:, 2] > 0)].max() / 10.0
        loss += 5.0 * max(0.0, tg.ned_max + 0.5 - best) ** 2
        return loss, beta_u, beta_m

    def _plausibility(self, milan):
        """Soft plausibility penalties (see ``diameter_advanced_corr``, ``min_milan_untreated``)."""
        c = self.cov
        short = max(0, self.params.min_milan_untreated - int(milan[~self.local].sum()))
        advanced = ((c["vascular_invasion"] == 1) | (c["lesions"] == 2)).astype(float)
        logd = np.log(c["intrahepatic_max_diameter_cm"])
        logd = logd - logd.mean()
        advanced = advanced - advanced.mean()
        r = (logd @ advanced) / math.sqrt((logd @ logd) * (advanced @ advanced))
        return 10.0 * max(0.0, self.params.diameter_advanced_corr - r) ** 2 + 5.0 * short ** 2

    def check(self, margin=1.0, part="all"):
        """Fully converged fast statistics and whether every hard survival/Cox target is met.

        Parameters
        ----------
        margin : float
            Fraction of each tolerance that counts as met (< 1 asks for a safety margin).
        part : {"all", "survival", "association"}
            "survival": only the targets that depend on (time, event, cell); "association":
            only the Cox targets of covariates and the room for the longest NED.

        Returns
        -------
        ok : bool
        stats : dict
            KM rates, medians, log-rank P, follow-up, and Cox log-HRs (the five hard
            univariable ones and the five-variable model) of the current state.
        """
        tg = self.tg
        time = self.tenths / 10.0
        b = self.blocks()
        surv, med = km_fast(time, self.event, self.groups, _LANDMARKS, blocks=b)
        _, pv = logrank_fast(time, self.event, self.lr_group, self.lr_subset, blocks=b)
        x = self.design_state[0]
        uni = np.array([cox_efron_fast(time, self.event, x[:, j], blocks=b)[0][0]
                        for j in range(len(_MULTI))])
        multi = cox_efron_fast(time, self.event, x[:, :5], blocks=b)[0]
        bands = np.array(list(LOGRANK_BANDS.values()))
        fu = np.array([np.median(time), time.min(), time.max()])
        treated_ccr = self.local & (x[:, 2] > 0)
        lp, lo, hi = np.log10(pv), np.log10(bands[:, 0]), np.log10(bands[:, 1])
        hard_uni = [3, 4] if part == "survival" else [0, 1, 2, 3, 4]
        assoc_ok = bool(np.all(np.abs(uni - tg.uni_log_hr[:5]) <= 0.15 * margin)
                        and np.all(np.abs(multi - tg.multi_log_hr) <= 0.15 * margin)
                        and time[treated_ccr].max() >= tg.ned_max + 0.5)
        stats = {"surv": surv, "median": med, "logrank_p": pv, "uni": uni, "multi": multi,
                 "follow_up": fu}
        if part == "association":
            return assoc_ok, stats
        ok = bool(np.all(np.abs(surv[:5] - tg.km_rate) <= tg.km_tol * margin)
                  and np.all(np.abs(med[self.median_cols] - tg.median_value) <= 1.5 * margin)
                  and np.all(np.abs(lp - tg.logrank_target) <= tg.logrank_tol * margin)
                  and np.all((lp > lo) & (lp < hi))
                  and np.all(np.abs(uni[hard_uni] - tg.uni_log_hr[hard_uni]) <= 0.15 * margin)
                  and np.all(np.abs(fu - np.array(tg.follow_up))
                             <= np.array([1.0, 0.5, 0.5]) * margin))
        return (ok and assoc_ok if part == "all" else ok), stats


_COV_MOVES = ("ecog", "intrahepatic_ccr", "lesions", "vascular_invasion",
              "intrahepatic_max_diameter_cm", "female", "age", "hepatitis", "cirrhosis",
              "child_pugh_b", "afp_positive", "extrahepatic_max_diameter_cm", "combination",
              "extrahepatic_multiple")
_COV_MOVE_CUM = np.cumsum([3, 3, 2, 2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0.3])
_COV_MOVE_CUM = _COV_MOVE_CUM / _COV_MOVE_CUM[-1]
#: Move mixes: time change, event swap, (time, event) swap across cells, within a cell,
#: covariate swap within a cell. Phase 1 fits what depends on the cells only, phase 2 the
#: associations (its moves leave the survival part unchanged), phase 3 everything.
_PHASE_MOVES = {1: np.cumsum([0.45, 0.2, 0.35, 0.0, 0.0]),
                2: np.cumsum([0.0, 0.0, 0.0, 0.4, 0.6]),
                3: np.cumsum([0.30, 0.10, 0.15, 0.10, 0.35])}


def _pick(rng, pool):
    return pool[rng.integers(len(pool))]


def _swap(arrays, i, j):
    for arr in arrays:
        arr[i], arr[j] = arr[j], arr[i]


def _propose(s, rng, phase):
    """Apply one random move of the phase's mix to the search state.

    Returns
    -------
    undo : callable or None
        Restores the state; None when no move was made.
    kind : str
        "survival" (times or events changed), "within" (a within-cell swap: survival part
        unchanged, time order changed) or "covariate".
    """
    n = len(s.tenths)
    cum = _PHASE_MOVES[phase]
    kind = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
    if kind == 0:
        i = rng.integers(n)
        old = s.tenths[i]
        if rng.random() < 0.15:
            new = rng.integers(25, 721)
        else:
            new = int(np.clip(round(old * math.exp(0.25 * rng.standard_normal())), 25, 720))
        if new == old:
            return None, "survival"
        s.tenths[i] = new

        def undo():
            s.tenths[i] = old
        return undo, "survival"
    if kind == 1:
        i = _pick(rng, np.flatnonzero(s.event == 1))
        j = _pick(rng, np.flatnonzero(s.event == 0))
        _swap((s.event,), i, j)
        return (lambda: _swap((s.event,), i, j)), "survival"
    if kind in (2, 3):
        i = rng.integers(n)
        pool = np.flatnonzero(s.cell != s.cell[i]) if kind == 2 else s.cells[s.cell[i]]
        j = _pick(rng, pool)
        if s.tenths[i] == s.tenths[j] and s.event[i] == s.event[j]:
            return None, "survival"
        _swap((s.tenths, s.event), i, j)
        return (lambda: _swap((s.tenths, s.event), i, j)), ("survival" if kind == 2 else "within")
    name = _COV_MOVES[int(np.searchsorted(_COV_MOVE_CUM, rng.random(), side="right"))]
    members = s.cells[rng.integers(4)]
    arr = s.cov[name]
    i = _pick(rng, members)
    others = members[arr[members] != arr[i]]
    if len(others) == 0:
        return None, "covariate"
    j = _pick(rng, others)
    _swap((arr,), i, j)
    if not (_valid_patient(s.cov, i, s.params) and _valid_patient(s.cov, j, s.params)):
        _swap((arr,), i, j)
        return None, "covariate"
    return (lambda: _swap((arr,), i, j)), "covariate"


def _anneal_phase(s, rng, params, phase, state, n_iterations, t_start):
    """One annealing run of ``n_iterations`` over the phase's moves (geometric cooling).

    ``state`` holds the current losses and blocks and is updated in place (the betas live on
    ``s``). The loss is rounded to 10 significant digits before comparisons so that
    last-bit differences between floating-point libraries are less likely to change the path.
    """
    ratio = params.temperature_end / t_start
    for it in range(n_iterations):
        temp = t_start * ratio ** (it / n_iterations)
        undo, kind = _propose(s, rng, phase)
        if undo is None:
            continue
        design = s.design_state
        new_s, b, beta_cell = state["s"], state["b"], s.beta_cell
        if kind == "survival":
            new_s, b, beta_cell = s.survival_loss()
        elif kind == "within":
            b = s.blocks()
        else:
            design = s.design()
        if phase == 1:
            new_c, bu, bm = state["c"], s.beta_uni, s.beta_multi
        else:
            new_c, bu, bm = s.cox_loss(b, design)
        new_total = float(f"{new_s + new_c:.10g}")
        delta = new_total - state["total"]
        if delta <= 0 or rng.random() < math.exp(-delta / temp):
            state.update(total=new_total, s=new_s, c=new_c, b=b)
            s.beta_uni, s.beta_multi, s.beta_cell, s.design_state = bu, bm, beta_cell, design
        else:
            undo()


def _anneal(s, rng, params):
    """Simulated annealing in three phases (see ``_PHASE_MOVES``).

    Phase 1 fits the survival targets that depend on (time, event, cell) only, with up to
    ``n_restarts`` independent restarts (fresh times), keeping the best; phase 2 fits the Cox
    associations by within-cell moves that keep phase 1's fit; phase 3, only while some
    hard target is outside its tolerance, polishes everything jointly. Phases 2 and 3 run
    up to ``n_rounds`` rounds, each starting half as hot as the last. Phases 1 and 2 end
    once their targets are met within ``stop_margin`` of their tolerances.

    Returns
    -------
    dict
        The phase of each round run (``n_iterations`` each), the final loss, and whether every
        hard target was met.
    """
    margin = params.stop_margin
    used = []
    best = None
    # Phase 1: independent restarts (a fresh draw of times each), keeping the best: within
    # the stop margin, else within tolerance, else the lowest loss.
    for attempt in range(params.n_restarts):
        if attempt:
            s.tenths[:], s.event[:] = _initial_survival(rng, s.cell, s.tg.n_deaths)
        s.beta_cell = np.zeros(2)
        s_loss, b, s.beta_cell = s.survival_loss(n_iter=25)
        state = {"s": s_loss, "c": 0.0, "b": b, "total": s_loss}
        _anneal_phase(s, rng, params, 1, state, params.n_iterations, params.temperature_start)
        used.append(1)
        with_margin = s.check(margin, "survival")[0]
        rank = (not with_margin, not s.check(1.0, "survival")[0], state["s"])
        if best is None or rank < best[0]:
            best = (rank, s.tenths.copy(), s.event.copy())
        if with_margin:
            break
    s.tenths[:], s.event[:] = best[1], best[2]
    s_loss, b, s.beta_cell = s.survival_loss(n_iter=25)
    s.beta_uni, s.beta_multi = np.zeros(len(_UNI)), np.zeros(len(_MULTI))
    c_loss, s.beta_uni, s.beta_multi = s.cox_loss(b, s.design_state, n_iter=25)
    state = {"s": s_loss, "c": c_loss, "b": b, "total": s_loss + c_loss}
    # Phases 2 and 3: rounds from the current state, each half as hot as the last. Phase 3
    # is a rescue: it runs only while some hard target is outside its tolerance.
    for phase, part, phase_margin in ((2, "association", margin), (3, "all", 1.0)):
        for rnd in range(params.n_rounds):
            if s.check(phase_margin, part)[0]:
                break
            t_start = params.temperature_start * 0.5 ** rnd * (0.1 if phase == 3 else 1.0)
            t_start = max(t_start, 20 * params.temperature_end)
            _anneal_phase(s, rng, params, phase, state, params.n_iterations, t_start)
            used.append(phase)
    return {"rounds": used, "loss": float(state["total"]), "met": bool(s.check(1.0)[0])}


#: Rough per-cell survival curves (months, S) that seed the search: oligo cells from
#: Section 2.3; non-oligo cells from the n-weighted complements (targets.json
#: consistency_checks_derived), the negative local tail replaced by a small positive one.
_SEED_CURVES = (((0, 12, 24, 36, 60, 84), (1.0, 0.909, 0.818, 0.667, 0.25, 0.0)),
                ((0, 12, 24, 36, 60), (1.0, 0.858, 0.351, 0.12, 0.0)),
                ((0, 12, 24, 36, 60), (1.0, 0.786, 0.309, 0.111, 0.0)),
                ((0, 12, 24, 36, 60), (1.0, 0.582, 0.218, 0.07, 0.0)))


def _initial_survival(rng, cell_index, n_deaths):
    """Death times drawn from the seed curves, heavy early censoring, exactly ``n_deaths``."""
    n = len(cell_index)
    death = np.empty(n)
    for c, (months, surv) in enumerate(_SEED_CURVES):
        idx = np.flatnonzero(cell_index == c)
        u = rng.random(len(idx))
        death[idx] = np.interp(-u, -np.asarray(surv), np.asarray(months, dtype=float))
    censor = 3.0 + rng.exponential(14.0, n)
    time = np.clip(np.minimum(death, censor), 2.5, 72.0)
    event = (death <= censor).astype(np.int64)
    excess = int(event.sum()) - n_deaths
    if excess > 0:     # flip random deaths to censored (or back), keeping the times
        event[rng.choice(np.flatnonzero(event == 1), excess, replace=False)] = 0
    elif excess < 0:
        event[rng.choice(np.flatnonzero(event == 0), -excess, replace=False)] = 1
    return np.round(time * 10).astype(np.int64), event


# --------------------------------------------------------------------------------------
# Attached after the search: time to local therapy, NED, diagnosis dates, identifiers
# --------------------------------------------------------------------------------------

def _local_therapy_tenths(rng, s, targets, params, ned_anchor):
    """Months from diagnosis to local therapy (tenths), treated patients only.

    Lognormal around the Discussion's medians (1 month oligo, 2 months non-oligo), shifted
    so each cell's median draw sits exactly on it; then the range is pinned to the
    published 0-31 months (the latest start goes to the longest-followed treated patient
    other than ``ned_anchor``), and every start leaves at least a month of follow-up (and
    room for the 64.6-month NED of ``ned_anchor``).
    """
    timing = targets["treatment_timing"]
    medians = {0: timing["median_interval_oligometastatic_months"],
               1: timing["median_interval_non_oligometastatic_months"]}
    t_max = float(timing["systemic_to_local_interval_months"]["range_max"])
    t_min = float(timing["systemic_to_local_interval_months"]["range_min"])
    n = len(s.tenths)
    raw = np.full(n, np.nan)
    for c in (0, 1):
        idx = s.cells[c]
        z = rng.standard_normal(len(idx))
        raw[idx] = medians[c] * np.exp(params.local_interval_sigma * (z - np.median(z)))
    treated = np.flatnonzero(s.local)
    os_m = s.tenths / 10.0
    cap = np.maximum(os_m - 1.0, 0.0)
    cap[ned_anchor] = max(0.0, min(cap[ned_anchor], os_m[ned_anchor] - s.tg.ned_max))
    late_ok = treated[(os_m[treated] >= t_max + 1.0) & (treated != ned_anchor)]
    late = int(late_ok[np.argmax(os_m[late_ok])]) if len(late_ok) else -1
    # The draws of a cell are exchangeable: move them between patients (never changing
    # the cell's set of values, hence its median) so that the latest start goes to ``late``
    # and no draw exceeds its patient's follow-up.
    for c in (0, 1):
        idx = s.cells[c]
        if late in idx:
            top = idx[np.argmax(raw[idx])]
            raw[[late, top]] = raw[[top, late]]
        for i in idx:
            if raw[i] <= cap[i] or i == late:
                continue
            fits = [j for j in rng.permutation(idx) if j != late and raw[j] <= cap[i]
                    and raw[i] <= cap[j]]
            if fits:
                raw[[i, fits[0]]] = raw[[fits[0], i]]
    tenths = np.full(n, -1, dtype=np.int64)
    tenths[treated] = np.floor(np.minimum(np.minimum(raw[treated], cap[treated]), t_max) * 10
                               + 1e-9).astype(np.int64)
    if late >= 0:
        tenths[late] = int(round(t_max * 10))
    tenths[treated[np.argmin(raw[treated])]] = int(round(t_min * 10))
    return tenths


def _ned(rng, s, targets, params, lt_tenths, ned_anchor):
    """NED status and cumulative NED months (tenths, -1 = not reached).

    23 NED patients (18 oligo, 5 non-oligo), all in the treated arm, drawn among cCR
    patients (if ``ned_requires_ccr``) with probability rising with follow-up after local
    therapy; ``ned_anchor`` carries the longest NED (64.6 months). Cumulative NED is a
    Beta-distributed fraction of follow-up after local therapy, scaled so that the median is
    the published 10.2 months; the extremes are pinned to 0.6 and 64.6 months.
    """
    ned = targets["ned"]
    want = {0: ned["ned_oligometastatic"]["value"], 1: ned["ned_non_oligometastatic"]["value"]}
    summary = ned["median_cumulative_ned_months"]
    after = s.tenths - np.where(lt_tenths >= 0, lt_tenths, 0)     # tenths after local therapy
    chosen = []
    for c in (0, 1):
        idx = s.cells[c]
        if params.ned_requires_ccr:
            idx = idx[s.cov["intrahepatic_ccr"][idx] == 1]
        key = np.log(np.maximum(after[idx], 1)) + rng.gumbel(size=len(idx))
        key[idx == ned_anchor] = np.inf
        chosen.append(idx[np.argsort(-key, kind="stable")[:want[c]]])
    chosen = np.sort(np.concatenate(chosen))
    frac = rng.beta(*params.ned_fraction_beta, size=len(chosen))
    room = after[chosen].astype(float)

    def med(scale):
        return np.median(np.floor(np.minimum(scale * frac, 1.0) * room) / 10.0)
    lo, hi = 1e-3, 1e3
    for _ in range(80):   # the median is non-decreasing in the scale: bisection
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if med(mid) < summary["value"] else (lo, mid)
    shortest = int(round(summary["range_min"] * 10))
    ned_t = np.floor(np.minimum(hi * frac, 1.0) * room).astype(np.int64)
    ned_t = np.maximum(ned_t, np.minimum(shortest, room).astype(np.int64))
    ned_t[chosen == ned_anchor] = min(int(round(summary["range_max"] * 10)),
                                      int(room[chosen == ned_anchor][0]))
    others = np.flatnonzero(chosen != ned_anchor)
    low = others[np.argmin(ned_t[others])]
    ned_t[low] = min(shortest, int(room[low]))
    out = np.full(len(s.tenths), -1, dtype=np.int64)
    out[chosen] = ned_t
    return out


def _diagnosis_dates(rng, s, params):
    """Diagnosis dates (2017-01-01..2023-12-31) consistent with follow-up to 2024-06-30.

    A death needs diagnosis + OS <= cut-off. A censored patient is censored at the cut-off
    (diagnosis = cut-off - OS) when enrolment allows it, except round(share x eligible) of
    them chosen at random (``lost_to_follow_up_share``); those, and patients censored
    before 6 months (whom enrolment cannot explain), are lost to follow-up: diagnosed
    earlier, with at least 2 more months of follow-up available.
    """
    start = (ENROLMENT_START - CUTOFF_DATE).days      # day offsets from the cut-off (< 0)
    end = (ENROLMENT_END - CUTOFF_DATE).days
    n = len(s.tenths)
    need = np.array([math.ceil(t / 10.0 * MONTH_DAYS) for t in s.tenths])
    admin_ok = (s.event == 0) & (-need >= start) & (-need <= end)
    eligible = np.flatnonzero(admin_ok)
    n_lost = int(round(params.lost_to_follow_up_share * len(eligible)))
    admin_ok[rng.permutation(eligible)[:n_lost]] = False
    u_date = rng.random(n)
    dates = []
    for i in range(n):
        if admin_ok[i]:
            offset = -need[i]
        else:
            extra = 0 if s.event[i] == 1 else math.ceil(2.0 * MONTH_DAYS)
            latest = min(end, -need[i] - extra)
            offset = start + int(u_date[i] * (latest - start + 1))
        dates.append(CUTOFF_DATE + dt.timedelta(days=int(offset)))
    return dates


def _assemble(s, lt_tenths, ned_tenths, dates, rng):
    """The output frame in the data contract's names and codings, sorted by patient_id.

    Identifiers follow the order of diagnosis (ties broken at random), as a registry's would.
    """
    c, n = s.cov, len(s.tenths)
    tie = rng.permutation(n)
    rank = np.lexsort((tie, np.array([d.toordinal() for d in dates])))
    ids = np.empty(n, dtype=object)
    ids[rank] = [f"P{k + 1:03d}" for k in range(n)]
    lesions = np.array(_LESION_CODES, dtype=object)[c["lesions"]]
    frame = pd.DataFrame({
        "patient_id": ids,
        "local_therapy": s.local.astype(np.int64),
        "os_months": s.tenths / 10.0,
        "death": s.event.astype(np.int64),
        "sex": np.where(c["female"] == 1, "female", "male").astype(object),
        "age": c["age"].astype(np.int64),
        "hepatitis": c["hepatitis"], "cirrhosis": c["cirrhosis"], "ecog": c["ecog"],
        "child_pugh": np.where(c["child_pugh_b"] == 1, "B", "A").astype(object),
        "afp_positive": c["afp_positive"],
        "intrahepatic_lesions": lesions,
        "vascular_invasion": c["vascular_invasion"],
        "intrahepatic_max_diameter_cm": c["intrahepatic_max_diameter_cm"],
        "intrahepatic_ccr": c["intrahepatic_ccr"],
        "milan_within": _milan_within(c, s.params),
        "extrahepatic_lesions": np.where(c["extrahepatic_multiple"] == 1, "multiple",
                                         "single").astype(object),
        "extrahepatic_max_diameter_cm": c["extrahepatic_max_diameter_cm"],
        "systemic_regimen": np.where(c["combination"] == 1, "combination",
                                     "single_agent").astype(object),
        "oligometastatic": s.oligo.astype(np.int64),
        "months_to_local_therapy": np.where(lt_tenths >= 0, lt_tenths / 10.0, np.nan),
        "ned_achieved": (ned_tenths >= 0).astype(np.int64),
        "ned_cumulative_months": np.where(ned_tenths >= 0, ned_tenths / 10.0, np.nan),
        "diagnosis_date": np.array([d.isoformat() for d in dates], dtype=object),
    }, columns=list(COLUMNS))
    for col in ("hepatitis", "cirrhosis", "ecog", "afp_positive", "vascular_invasion",
                "intrahepatic_ccr", "milan_within"):
        frame[col] = frame[col].astype(np.int64)
    return frame.sort_values("patient_id", kind="stable").reset_index(drop=True)


def reconstruct_cohort(seed: int = DEFAULT_SEED,
                       params: ReconstructionParams | None = None) -> pd.DataFrame:
    """Generate the 76-patient RECONSTRUCTED pseudo-cohort (not the study's patients).

    Parameters
    ----------
    seed : int
        Seed of the ``numpy.random.Generator`` behind every random choice. The default
        seed gives the bundled ``reconstructed_pseudo_cohort.csv``.
    params : ReconstructionParams, optional
        The generator's assumptions where the paper is silent (defaults documented there).

    Returns
    -------
    pandas.DataFrame
        One row per pseudo-patient, columns :data:`~causal_hcc.studies.yang2025.calibration.COLUMNS`
        in the data contract's codings, sorted by ``patient_id``. ``attrs`` records the label,
        seed, parameters and the search's outcome.

    Warns
    -----
    causal_hcc.errors.ConvergenceWarning
        When the search ends with some hard target unmet (the calibration table shows which).

    Notes
    -----
    Deterministic: the same seed and parameters give the same frame bit for bit on a given
    platform (no global random state, no wall-clock limits; losses rounded to 10 significant
    digits before each accept/reject decision). Steps: exact per-cell counts and moments
    (Tables 1-2, audit B3); simulated annealing over (time, event) pairs and within-cell
    swaps (:func:`_anneal`); then time to local therapy, NED and diagnosis dates.
    Check the result with :func:`causal_hcc.studies.yang2025.calibration.calibration_table`.
    """
    params = params or ReconstructionParams()
    rng = np.random.default_rng(seed)
    targets = load_paper_targets()
    cells = cell_targets(targets)
    cell_index = np.repeat(np.arange(len(CELLS)), [cells["sizes"][c] for c, _, _ in CELLS])
    cov = _initial_covariates(rng, cells, cell_index, params)
    tg = _search_targets(targets, params)
    tenths, event = _initial_survival(rng, cell_index, tg.n_deaths)
    search = _Search(cov, cell_index, tenths, event, tg, params)
    outcome = _anneal(search, rng, params)
    if not outcome["met"]:
        warnings.warn(ConvergenceWarning(
            f"Reconstruction search (seed {seed}) ended with some hard target unmet; see "
            "calibration_table()."), stacklevel=2)
    treated_ccr = np.flatnonzero(search.local & (cov["intrahepatic_ccr"] == 1))
    anchor = int(treated_ccr[np.argmax(search.tenths[treated_ccr])])
    lt = _local_therapy_tenths(rng, search, targets, params, anchor)
    ned = _ned(rng, search, targets, params, lt, anchor)
    dates = _diagnosis_dates(rng, search, params)
    frame = _assemble(search, lt, ned, dates, rng)
    frame.attrs.update({"description": RECONSTRUCTED_LABEL, "seed": seed,
                        "params": asdict(params), "search": outcome})
    return frame


def bundled_csv_path() -> Path:
    """Path of the bundled reconstructed pseudo-cohort CSV inside the package."""
    return Path(str(resources.files(__package__).joinpath("bundled", BUNDLED_FILENAME)))


def write_bundled(path: str | Path | None = None, seed: int = DEFAULT_SEED,
                  params: ReconstructionParams | None = None) -> Path:
    """Regenerate the reconstructed pseudo-cohort and write it as a plain CSV.

    Parameters
    ----------
    path : str or Path, optional
        Destination; the package's ``bundled/reconstructed_pseudo_cohort.csv`` by default.
    seed, params
        As for :func:`reconstruct_cohort`.

    Returns
    -------
    Path
        The file written (UTF-8, ``\\n`` line ends, no index, no comment lines).
    """
    path = Path(path) if path is not None else bundled_csv_path()
    frame = reconstruct_cohort(seed, params)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def read_cohort_csv(path: str | Path) -> pd.DataFrame:
    """Read a reconstructed pseudo-cohort CSV with the dtypes :func:`reconstruct_cohort` gives."""
    return pd.read_csv(path, dtype={"patient_id": object, "sex": object, "child_pugh": object,
                                    "intrahepatic_lesions": object,
                                    "extrahepatic_lesions": object, "systemic_regimen": object,
                                    "diagnosis_date": object})
