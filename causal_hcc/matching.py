"""Propensity-score matching on the logit of the PS -> MatchedSample.

Greedy nearest-neighbour matching reproduces MatchIt's ``method = "nearest"`` pair for
pair: treated patients are taken from the largest score down (``m.order = "largest"``), each
takes the nearest still-available control on the logit scale (on a tie, the lower score),
none when the nearest lies outside the caliper; 1:k matching proceeds in k rounds, as
MatchIt does. Optimal pair matching (``method="optimal"``) minimises the total distance
with :func:`scipy.optimize.linear_sum_assignment`. The algorithms are in
:mod:`causal_hcc.matching_algorithms`; this module checks the options and builds the
:class:`MatchedSample` (match matrix, weights, subclasses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.errors import CohortError, NotEstimableError
from causal_hcc.matching_algorithms import greedy_match, optimal_match
from causal_hcc.propensity import PropensityModel

ORDERS = ("largest", "smallest", "random", "data")
SD_DENOMINATORS = {
    "all": "sample SD (n - 1) of the logit PS over all patients (MatchIt std.caliper)",
    "pooled": "pooled within-arm SD of the logit PS, sqrt((s1^2 + s0^2) / 2) (Austin 2011)",
}


@dataclass(frozen=True)
class MatchedSample:
    """A matched sample and how it was made.

    Attributes
    ----------
    patient_id, treated, logit_ps : numpy.ndarray
        Per patient, in the cohort's row order.
    match_matrix : numpy.ndarray (n_treated, ratio)
        Row i: the controls (row indices) matched to the i-th treated patient in row order,
        in the order they were matched; -1 = none.
    subclass : numpy.ndarray
        Matched-set number per patient (1, 2, ... by the treated patient's row order);
        -1 for unmatched patients, and for everyone when matching with replacement (sets
        then overlap: see :meth:`pairs_frame`).
    weights : numpy.ndarray
        MatchIt's matching weights: matched treated 1; a control gets 1/k from each
        treated patient matched to it with k controls, then control weights are scaled to
        sum to the number of distinct matched controls; unmatched 0.
    caliper_sd, caliper : float or None
        Caliper in SDs of the logit PS, and in logit units (caliper_sd * sd_value).
    sd_denominator, sd_value : str, float
        Which SD of the logit PS scales the caliper ("all" or "pooled"), and its value.
    estimand : str
        "ATT", or "ATT among the matchable treated" when treated patients were dropped.
    """

    label: str
    method: str
    ratio: int
    replace: bool
    order: str
    seed: int | None
    caliper_sd: float | None
    caliper: float | None
    sd_denominator: str
    sd_value: float
    exact: tuple[str, ...]
    covariates: tuple[str, ...]
    patient_id: np.ndarray
    treated: np.ndarray
    logit_ps: np.ndarray
    match_matrix: np.ndarray
    subclass: np.ndarray
    weights: np.ndarray
    estimand: str
    notes: tuple[str, ...] = field(default=())

    @property
    def n_treated(self) -> int:
        return int(self.treated.sum())

    @property
    def n_control(self) -> int:
        return len(self.treated) - self.n_treated

    @property
    def matched(self) -> np.ndarray:
        return self.weights > 0

    @property
    def n_matched_treated(self) -> int:
        return int(np.sum(self.matched & (self.treated == 1)))

    @property
    def n_matched_control(self) -> int:
        """Distinct controls used (a control reused with replacement counts once)."""
        return int(np.sum(self.matched & (self.treated == 0)))

    @property
    def unmatched_treated_ids(self) -> tuple[str, ...]:
        return tuple(self.patient_id[(self.treated == 1) & ~self.matched])

    def to_frame(self) -> pd.DataFrame:
        """One row per patient: patient_id, treated, logit_ps, matched, subclass, weight."""
        sub = pd.array(np.where(self.subclass > 0, self.subclass, 0), dtype="Int64")
        sub[self.subclass <= 0] = pd.NA
        return pd.DataFrame({"patient_id": self.patient_id, "treated": self.treated,
                             "logit_ps": self.logit_ps, "matched": self.matched,
                             "subclass": sub, "weight": self.weights})

    def pairs_frame(self) -> pd.DataFrame:
        """One row per matched treated-control pair: matched_set, slot, ids, distance."""
        t_rows = np.flatnonzero(self.treated == 1)
        rows = []
        for i, t in enumerate(t_rows):
            for slot, c in enumerate(self.match_matrix[i]):
                if c >= 0:
                    rows.append({"matched_set": i + 1, "slot": slot + 1,
                                 "treated_id": self.patient_id[t],
                                 "control_id": self.patient_id[c],
                                 "distance": abs(self.logit_ps[t] - self.logit_ps[c])})
        return pd.DataFrame(rows, columns=["matched_set", "slot", "treated_id", "control_id",
                                           "distance"])

    def summary(self) -> str:
        cal = ("no caliper" if self.caliper is None else
               f"caliper {self.caliper_sd:g} SD of the logit PS = {self.caliper:.4f} logit "
               f"units (SD {self.sd_value:.4f}: {SD_DENOMINATORS[self.sd_denominator]})")
        how = (f"{self.method} 1:{self.ratio} matching on the logit of the propensity score, "
               f"{'with' if self.replace else 'without'} replacement"
               + (f", order '{self.order}'" if self.method == "nearest" else "")
               + (f" (seed {self.seed})" if self.order == "random" else "")
               + (f", exact on {', '.join(self.exact)}" if self.exact else ""))
        lines = [self.label, how.capitalize() + f"; {cal}.",
                 f"Matched: {self.n_matched_treated} of {self.n_treated} treated, "
                 f"{self.n_matched_control} of {self.n_control} controls.",
                 f"Estimand: {self.estimand}."]
        if self.unmatched_treated_ids:
            lines.append(f"Unmatched treated ({len(self.unmatched_treated_ids)}): "
                         + ", ".join(self.unmatched_treated_ids) + ".")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------- weights and subclass
def matching_weights(match_matrix: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """MatchIt's weights from a match matrix (rows: treated patients in row order).

    Notes
    -----
    As MatchIt's ``weights.matrix``: each matched treated patient 1; each control receives
    1/k from every treated patient it is matched to (k = that patient's number of
    controls); control weights are then scaled to sum to the number of distinct matched
    controls. 1:1 without replacement gives weights 1 and 0.
    """
    treated = np.asarray(treated)
    weights = np.zeros(len(treated))
    t_rows = np.flatnonzero(treated == 1)
    match_matrix = np.asarray(match_matrix, dtype=np.int64).reshape(len(t_rows), -1)
    valid = match_matrix >= 0
    counts = valid.sum(axis=1)
    weights[t_rows[counts > 0]] = 1.0
    # Row-major order of (treated, slot): the additions happen in the same order as a
    # loop over treated patients, so the weights are the same to the last bit.
    rows, slots = np.nonzero(valid)
    np.add.at(weights, match_matrix[rows, slots], 1.0 / counts[rows])
    control = treated == 0
    total = weights[control].sum()
    if total > 0:
        weights[control] *= np.sum(weights[control] > 0) / total
    return weights


def _subclass(match_matrix, treated, replace) -> np.ndarray:
    """Matched-set number per patient (1, 2, ... by treated row order); -1 if unmatched."""
    sub = np.full(len(treated), -1, dtype=np.int64)
    if replace:
        return sub
    t_rows = np.flatnonzero(np.asarray(treated) == 1)
    match_matrix = np.asarray(match_matrix, dtype=np.int64).reshape(len(t_rows), -1)
    valid = match_matrix >= 0
    has = valid.any(axis=1)
    set_id = np.cumsum(has)
    sub[t_rows[has]] = set_id[has]
    rows, slots = np.nonzero(valid)
    sub[match_matrix[rows, slots]] = set_id[rows]
    return sub


# ---------------------------------------------------------------- public entry points
def _check_options(method, ratio, caliper_sd, sd_denominator, replace, order, seed):
    if method not in ("nearest", "optimal"):
        raise ValueError(f"method must be 'nearest' or 'optimal', not {method!r}")
    if not isinstance(ratio, (int, np.integer)) or ratio < 1:
        raise ValueError(f"ratio must be a positive integer (1:k matching), not {ratio!r}")
    if caliper_sd is not None and not caliper_sd > 0:
        raise ValueError(f"caliper_sd must be > 0 (SDs of the logit PS) or None, "
                         f"not {caliper_sd!r}")
    if sd_denominator not in SD_DENOMINATORS:
        raise ValueError(f"sd_denominator must be one of {sorted(SD_DENOMINATORS)}, "
                         f"not {sd_denominator!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    if order == "random" and seed is None:
        raise ValueError("order='random' needs an integer seed= (results must be "
                         "reproducible).")
    if method == "optimal" and replace:
        raise ValueError("Optimal matching with replacement is nearest-neighbour matching "
                         "with replacement; use method='nearest', replace=True.")


def logit_sd(logit_ps, treated, sd_denominator: str = "all") -> float:
    """SD of the logit PS that scales the caliper ("all": MatchIt; "pooled": Austin)."""
    logit_ps = np.asarray(logit_ps, dtype=float)
    treated = np.asarray(treated) == 1
    if sd_denominator == "all":
        return float(np.std(logit_ps, ddof=1))
    return float(np.sqrt((np.var(logit_ps[treated], ddof=1)
                          + np.var(logit_ps[~treated], ddof=1)) / 2))


def match_on_logit(logit_ps, treated, *, method: str = "nearest", ratio: int = 1,
                   caliper_sd: float | None = 0.2, sd_denominator: str = "all",
                   replace: bool = False, order: str = "largest", seed: int | None = None,
                   exact_strata=None, patient_id=None, exact: tuple[str, ...] = (),
                   covariates: tuple[str, ...] = (), label: str = "") -> MatchedSample:
    """Match treated to control patients on the logit of the propensity score (arrays).

    Parameters
    ----------
    logit_ps : array (n,)
        Logit of the propensity score.
    treated : array (n,) of 0/1
    method : {"nearest", "optimal"}
        Greedy nearest neighbour (MatchIt ``"nearest"``), or optimal pair matching
        (minimum total distance; pairs outside the caliper or across exact strata are
        forbidden, so the most pairs are formed first, then the closest).
    ratio : int
        Controls per treated patient (1:k).
    caliper_sd : float or None
        Caliper in SDs of the logit PS (default 0.2, Austin 2011); None for no caliper.
    sd_denominator : {"all", "pooled"}
        "all": sample SD (n - 1) over all patients (MatchIt ``std.caliper = TRUE``);
        "pooled": sqrt((s1^2 + s0^2) / 2) within arms (Austin 2011).
    replace : bool
        Controls may be reused (order then does not matter).
    order : {"largest", "smallest", "random", "data"}
        Order in which treated patients choose (MatchIt ``m.order``); "random" uses
        ``numpy.random.default_rng(seed)`` (not R's generator).
    seed : int, optional
        Required for ``order="random"``.
    exact_strata : array (n,), optional
        Match only within equal values (e.g. codes of the ``exact`` variables).
    patient_id : array (n,), optional
    exact, covariates, label : audit trail carried into the result.

    Returns
    -------
    MatchedSample

    Raises
    ------
    NotEstimableError
        No treated patient has a control within the caliper (and exact strata).

    Notes
    -----
    Agrees pair for pair with MatchIt 4.5.1 ``matchit(method = "nearest", distance =
    logit_ps * 2^26, caliper = 0.2, std.caliper = TRUE)`` (the scaling works around a
    4.5.1 bug; see tests/reference/matching.R), including 1:k, replacement, m.order and
    exact, with one exception: in rounds 2..k of 1:k matching MatchIt 4.5.1 checks "already
    matched to this patient" against the wrong row (a 0-/1-based index mix-up), so it can
    match the same control twice (with replacement) or skip an available one. We take the
    k nearest distinct controls; tests/test_matching.py shows, with a port of MatchIt's C++
    loop, that this bug is the only difference. Greedy matching sorts once and finds the
    nearest available control by union-find over sorted positions: O(n log n).

    References
    ----------
    Austin PC (2011). Optimal caliper widths for propensity-score matching when estimating
    differences in means and differences in proportions in observational studies. Pharm
    Stat 10:150-161.
    Ho D, Imai K, King G, Stuart EA (2011). MatchIt: nonparametric preprocessing for
    parametric causal inference. J Stat Softw 42(8).
    """
    _check_options(method, ratio, caliper_sd, sd_denominator, replace, order, seed)
    score = np.asarray(logit_ps, dtype=float)
    is_treated = np.asarray(treated).astype(int) == 1
    n = len(score)
    ids = (np.array([str(i + 1) for i in range(n)], dtype=object) if patient_id is None
           else np.asarray(patient_id).astype(str).astype(object))
    if not np.all(np.isfinite(score)):
        bad = list(ids[~np.isfinite(score)][:10])
        raise NotEstimableError(f"The logit propensity score is infinite or missing for "
                                f"patients {bad} (separation?); refit the PS model "
                                "(e.g. method='firth') before matching.")
    sd_value = logit_sd(score, is_treated, sd_denominator)
    caliper = None if caliper_sd is None else caliper_sd * sd_value
    strata = None if exact_strata is None else pd.factorize(
        pd.Series(np.asarray(exact_strata, dtype=object)).astype(str))[0]
    if method == "optimal":
        found = optimal_match(score, is_treated, strata, ratio, caliper)
        order_used = "n/a (optimal)"
    else:
        found = greedy_match(score, is_treated, strata, ratio, caliper, replace, order, seed)
        order_used = order
    t_rows = np.flatnonzero(is_treated)
    mm = np.full((len(t_rows), ratio), -1, dtype=np.int64)
    for i, t in enumerate(t_rows):
        got = found.get(int(t), [])
        mm[i, :len(got)] = got
    if not np.any(mm >= 0):
        where = ("" if caliper is None else f" within the caliper ({caliper_sd:g} SD of the "
                 f"logit PS = {caliper:.4g} logit units)")
        raise NotEstimableError(f"No treated patient has a control{where}"
                                + (f" in the same exact stratum ({', '.join(exact)})"
                                   if strata is not None else "")
                                + ". Check the overlap of the propensity scores, or widen "
                                "caliper_sd.")
    weights = matching_weights(mm, is_treated.astype(int))
    n_unmatched = int(np.sum(is_treated & (weights == 0)))
    notes = []
    estimand = "ATT"
    if n_unmatched:
        estimand = "ATT among the matchable treated"
        notes.append(f"{n_unmatched} of {int(is_treated.sum())} treated patients have no "
                     "control within the caliper and are dropped: the estimand changes from "
                     "the ATT to the ATT among the matchable treated.")
    short = int(np.sum((mm >= 0).sum(axis=1)[(mm >= 0).any(axis=1)] < ratio))
    if ratio > 1 and short:
        notes.append(f"{short} matched treated patients received fewer than {ratio} "
                     "controls; weights account for it.")
    if replace:
        notes.append("With replacement matched sets overlap: subclass is undefined; "
                     "cluster on patient id (pairs_frame lists the sets).")
    frozen = [_frozen(a) for a in (ids, is_treated.astype(np.int8), score, mm,
                                   _subclass(mm, is_treated.astype(int), replace), weights)]
    return MatchedSample(label=label, method=method, ratio=int(ratio), replace=replace,
                         order=order_used, seed=seed, caliper_sd=caliper_sd, caliper=caliper,
                         sd_denominator=sd_denominator, sd_value=sd_value,
                         exact=tuple(exact), covariates=tuple(covariates),
                         patient_id=frozen[0], treated=frozen[1], logit_ps=frozen[2],
                         match_matrix=frozen[3], subclass=frozen[4], weights=frozen[5],
                         estimand=estimand, notes=tuple(notes))


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def match_patients(cohort: Cohort, propensity: PropensityModel, *, method: str = "nearest",
                   ratio: int = 1, caliper_sd: float | None = 0.2, sd_denominator: str = "all",
                   replace: bool = False, order: str = "largest", seed: int | None = None,
                   exact: tuple[str, ...] = ()) -> MatchedSample:
    """Propensity-score matching of a cohort on the logit of its fitted PS.

    Parameters
    ----------
    cohort : Cohort
        The cohort the propensity model was fitted to (same patients, same order).
    propensity : PropensityModel
    method, ratio, caliper_sd, sd_denominator, replace, order, seed
        See :func:`match_on_logit`. Defaults: greedy 1:1 without replacement, largest PS
        first, caliper 0.2 SD of the logit PS with MatchIt's SD over all patients.
    exact : tuple of str
        Cohort columns to match exactly on.

    Returns
    -------
    MatchedSample

    Notes
    -----
    Equals MatchIt 4.5.1 ``matchit(..., method = "nearest", distance = logit_ps * 2^26,
    caliper = 0.2, std.caliper = TRUE)`` (same pairs; tests/reference/matching.R).

    References
    ----------
    Austin PC (2011). Pharm Stat 10:150-161.
    Austin PC, Stuart EA (2015). Moving towards best practice when using inverse probability
    of treatment weighting (IPTW) using the propensity score to estimate causal treatment
    effects in observational studies. Stat Med 34:3661-3679.
    """
    ids = cohort.ids
    if len(ids) != len(propensity.patient_id) or np.any(ids != propensity.patient_id):
        raise CohortError(["The propensity model was fitted to other patients (or another "
                           "row order) than this cohort; refit it on this cohort."],
                          header="Cannot match:")
    strata = None
    if exact:
        problems = [f"Column '{c}' (exact matching): not in the cohort." for c in exact
                    if c not in cohort.data]
        problems += [f"Column '{c}' (exact matching): {int(cohort.data[c].isna().sum())} "
                     "missing values; exact matching needs complete values."
                     for c in exact if c in cohort.data and cohort.data[c].isna().any()]
        if problems:
            raise CohortError(problems, header="Cannot match:")
        strata = cohort.data[list(exact)].astype(str).agg("|".join, axis=1).to_numpy()
    return match_on_logit(propensity.logit_ps, propensity.treated, method=method,
                          ratio=ratio, caliper_sd=caliper_sd, sd_denominator=sd_denominator,
                          replace=replace, order=order, seed=seed, exact_strata=strata,
                          patient_id=ids, exact=tuple(exact),
                          covariates=propensity.covariates, label=cohort.label)
