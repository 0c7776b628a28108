"""Propensity-score matching on the logit of the PS -> MatchedSample.

The focal units are the treated patients for the ATT and the controls for the ATC (MatchIt
``estimand = "ATC"``). Two tie rules for greedy nearest-neighbour matching:

* ``ties="matchit"`` reproduces MatchIt's ``method = "nearest"`` pair for pair: focal
  patients are taken from the largest score down for the ATT and the smallest up for the
  ATC (MatchIt's default ``m.order``), each takes the nearest still-available partner on the
  logit scale (on a tie, the lower score; among equal scores, the one just before it in row
  order), none when the nearest lies outside the caliper; 1:k matching proceeds in k
  rounds, as MatchIt does. With tied scores the result depends on the row order.
* ``ties="all"`` (order-free): focal patients with the same score form one block, and the
  block takes ALL available partners at the nearest distance, sharing their weight
  (details in :func:`match_on_logit`). Permuting the rows changes nothing.
 Optimal pair matching (``method="optimal"``) minimises the total distance
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
# The weights, subclasses and the caliper's SD live with the algorithms (the bootstrap's
# lean path, match_weights, needs them without a MatchedSample); importable from here.
from causal_hcc.matching_algorithms import (MATCHIT_ORDER, _subclass,  # noqa: F401
                                           greedy_match, greedy_matrix, logit_sd,
                                           match_weights,
                                           matching_weights, optimal_match, set_weights,
                                           tied_match)
from causal_hcc.propensity import PropensityModel

ORDERS = ("largest", "smallest", "random", "data")
TIES = ("all", "matchit")
ESTIMANDS = ("ATT", "ATC")
#: MatchIt 4.5.1's default m.order for a numeric distance, per estimand.
DEFAULT_ORDER = MATCHIT_ORDER
FOCAL_LABEL = {"ATT": "treated", "ATC": "controls"}
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
    match_matrix : numpy.ndarray (n_focal, ratio)
        Row i: the partners (row indices) matched to the i-th focal patient (treated for
        the ATT, control for the ATC) in row order, in the order they were matched;
        -1 = none. Empty (n_focal, 0) with ``ties="all"``: see ``sets``.
    subclass : numpy.ndarray
        Matched-set number per patient (``ties="matchit"``: 1, 2, ... by the focal
        patient's row order; ``ties="all"``: by exact stratum, then score); -1 for
        unmatched patients, and for everyone when matching with replacement (sets then
        overlap: see :meth:`pairs_frame`).
    weights : numpy.ndarray
        MatchIt's matching weights: matched focal patients 1; a partner gets 1/k from each
        focal patient matched to it with k partners, then partner weights are scaled to
        sum to the number of distinct matched partners; unmatched 0.
    caliper_sd, caliper : float or None
        Caliper in SDs of the logit PS, and in logit units (caliper_sd * sd_value).
    sd_denominator, sd_value : str, float
        Which SD of the logit PS scales the caliper ("all" or "pooled"), and its value.
    estimand : str
        "ATT" / "ATC", or "ATT among matched treated" / "ATC among matched controls" when
        focal patients were left unmatched (the target population then shrinks).
    ties : str
        "matchit" (MatchIt's greedy rule, row order breaks ties) or "all" (order-free).
    sets : tuple of (numpy.ndarray, numpy.ndarray)
        ``ties="all"`` only: per matched set, the focal rows and the partner rows.
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
    ties: str = "matchit"
    sets: tuple = field(default=())

    @property
    def target(self) -> str:
        """"ATT" or "ATC": the estimand without the "among matched" qualifier."""
        return self.estimand.split(" ")[0]

    @property
    def focal(self) -> np.ndarray:
        """True for the focal patients (treated for the ATT, controls for the ATC)."""
        return (self.treated == 1) if self.target == "ATT" else (self.treated == 0)

    @property
    def unmatched_focal_ids(self) -> tuple[str, ...]:
        return tuple(self.patient_id[self.focal & ~self.matched])

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

    def _pair_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(matched_set, slot, focal row, partner row) of every pair, as arrays."""
        if self.ties == "all":
            parts = [(np.full(len(f) * len(q), k + 1),
                      np.tile(np.arange(1, len(q) + 1), len(f)),
                      np.repeat(np.asarray(f, dtype=np.int64), len(q)),
                      np.tile(np.asarray(q, dtype=np.int64), len(f)))
                     for k, (f, q) in enumerate(self.sets)]
            if not parts:
                return tuple(np.empty(0, dtype=np.int64) for _ in range(4))
            return tuple(np.concatenate(c) for c in zip(*parts))
        mm = np.asarray(self.match_matrix, dtype=np.int64).reshape(-1, max(self.ratio, 1))
        i, slot = np.nonzero(mm >= 0)
        return i + 1, slot + 1, np.flatnonzero(self.focal)[i], mm[i, slot]

    @property
    def n_pairs(self) -> int:
        """Rows of :meth:`pairs_frame`: with ``ties="all"`` every focal patient of a set
        times every partner of it (quadratic in the size of a tied set)."""
        if self.ties == "all":
            return int(sum(len(f) * len(q) for f, q in self.sets))
        return int((np.asarray(self.match_matrix) >= 0).sum())

    def pairs_frame(self) -> pd.DataFrame:
        """One row per matched treated-control pair: matched_set, slot, ids, distance.

        ``slot`` is the partner's place among the focal patient's partners. With
        ``ties="all"`` every focal patient of a set is paired with every partner of it
        (see :attr:`n_pairs`; :meth:`sets_frame` lists the same sets a row per patient).
        """
        matched_set, slot, f, q = self._pair_rows()
        focal_treated = self.treated[f] == 1
        t, c = np.where(focal_treated, f, q), np.where(focal_treated, q, f)
        ids = np.asarray(self.patient_id, dtype=object)
        logit = np.asarray(self.logit_ps, dtype=float)
        return pd.DataFrame({"matched_set": matched_set, "slot": slot,
                             "treated_id": ids[t], "control_id": ids[c],
                             "distance": np.abs(logit[t] - logit[c])})

    def sets_frame(self) -> pd.DataFrame:
        """The matched sets a row per patient: matched_set, patient_id, treated, role
        ('focal' or 'partner'), logit_ps, weight (the matching weight); linear in n,
        whatever the size of a tied set."""
        if self.ties == "all":
            sets = self.sets
        else:
            mm = np.asarray(self.match_matrix, dtype=np.int64).reshape(-1, max(self.ratio, 1))
            sets = [([f], [q for q in row if q >= 0])
                    for f, row in zip(np.flatnonzero(self.focal), mm) if (row >= 0).any()]
        k = np.concatenate([np.full(len(f) + len(q), i + 1) for i, (f, q) in enumerate(sets)]
                           ) if sets else np.empty(0, dtype=np.int64)
        rows = np.concatenate([np.r_[np.asarray(f, dtype=np.int64),
                                     np.asarray(q, dtype=np.int64)] for f, q in sets]
                              ) if sets else np.empty(0, dtype=np.int64)
        role = np.concatenate([["focal"] * len(f) + ["partner"] * len(q) for f, q in sets]
                              ) if sets else np.empty(0, dtype=object)
        return pd.DataFrame({"matched_set": k, "patient_id": np.asarray(
                                 self.patient_id, dtype=object)[rows],
                             "treated": np.asarray(self.treated)[rows], "role": role,
                             "logit_ps": np.asarray(self.logit_ps, dtype=float)[rows],
                             "weight": np.asarray(self.weights, dtype=float)[rows]})

    def summary(self) -> str:
        cal = ("no caliper" if self.caliper is None else
               f"caliper {self.caliper_sd:g} SD of the logit PS = {self.caliper:.4f} logit "
               f"units (SD {self.sd_value:.4f}: {SD_DENOMINATORS[self.sd_denominator]})")
        how = (f"{self.method} 1:{self.ratio} matching on the logit of the propensity score, "
               f"{'with' if self.replace else 'without'} replacement"
               + (f", order '{self.order}', ties '{self.ties}'" if self.method == "nearest"
                  else "")
               + (f" (seed {self.seed})" if self.order == "random" else "")
               + (f", exact on {', '.join(self.exact)}" if self.exact else ""))
        lines = [self.label, how.capitalize() + f"; {cal}.",
                 f"Matched: {self.n_matched_treated} of {self.n_treated} treated, "
                 f"{self.n_matched_control} of {self.n_control} controls.",
                 f"Estimand: {self.estimand} (focal patients: {FOCAL_LABEL[self.target]})."]
        if self.unmatched_focal_ids:
            lines.append(f"Unmatched {FOCAL_LABEL[self.target]} "
                         f"({len(self.unmatched_focal_ids)}): "
                         + ", ".join(self.unmatched_focal_ids) + ".")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------- public entry points
def _check_options(method, ratio, caliper_sd, sd_denominator, replace, order, seed,
                   estimand="ATT", ties="matchit"):
    if method not in ("nearest", "optimal"):
        raise ValueError(f"method must be 'nearest' or 'optimal', not {method!r}")
    if estimand not in ESTIMANDS:
        raise ValueError(f"estimand must be one of {ESTIMANDS} for matching, not "
                         f"{estimand!r} (the ATE: use subclassification or weighting)")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, not {ties!r}")
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
    if ties == "all" and order == "data":
        raise ValueError("order='data' makes matching depend on the row order; with "
                         "ties='all' use 'largest', 'smallest' or 'random'.")
    if method == "optimal" and replace:
        raise ValueError("Optimal matching with replacement is nearest-neighbour matching "
                         "with replacement; use method='nearest', replace=True.")


def match_on_logit(logit_ps, treated, *, method: str = "nearest", ratio: int = 1,
                   caliper_sd: float | None = 0.2, sd_denominator: str = "all",
                   replace: bool = False, order: str | None = None, seed: int | None = None,
                   exact_strata=None, patient_id=None, exact: tuple[str, ...] = (),
                   covariates: tuple[str, ...] = (), label: str = "",
                   estimand: str = "ATT", ties: str = "matchit") -> MatchedSample:
    """Match patients of one arm to the other on the logit of the propensity score.

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
        Partners per focal patient (1:k).
    caliper_sd : float or None
        Caliper in SDs of the logit PS (default 0.2, Austin 2011); None for no caliper.
    sd_denominator : {"all", "pooled"}
        "all": sample SD (n - 1) over all patients (MatchIt ``std.caliper = TRUE``);
        "pooled": sqrt((s1^2 + s0^2) / 2) within arms (Austin 2011).
    replace : bool
        Partners may be reused.
    order : {"largest", "smallest", "random", "data"}, optional
        Order in which focal patients choose (MatchIt ``m.order``); default MatchIt's:
        "largest" for the ATT, "smallest" for the ATC. "random" uses
        ``numpy.random.default_rng(seed)`` (not R's generator).
    seed : int, optional
        Required for ``order="random"``.
    exact_strata : array (n,), optional
        Match only within equal values (e.g. codes of the ``exact`` variables).
    patient_id : array (n,), optional
    exact, covariates, label : audit trail carried into the result.
    estimand : {"ATT", "ATC"}
        Focal patients: the treated (ATT) or the controls (ATC, MatchIt ``estimand =
        "ATC"``: every control looks for treated partners).
    ties : {"matchit", "all"}
        "matchit": MatchIt's greedy rule (row order breaks ties in the score).
        "all": order-free; see Notes.

    Returns
    -------
    MatchedSample

    Raises
    ------
    NotEstimableError
        No focal patient has a partner within the caliper (and exact strata).

    Notes
    -----
    ``ties="matchit"`` agrees pair for pair with MatchIt 4.5.1 ``matchit(method =
    "nearest", distance = logit_ps * 2^26, caliper = 0.2, std.caliper = TRUE, estimand =
    "ATT" | "ATC")`` (the scaling works around a 4.5.1 bug; see tests/reference/matching.R,
    estimands.R and public.R), including 1:k, replacement, m.order and exact, with one
    exception: in rounds 2..k of 1:k matching MatchIt 4.5.1 checks "already matched to this
    patient" against the wrong row (a 0-/1-based index mix-up), so it can match the same
    control twice (with replacement) or skip an available one. We take the k nearest
    distinct partners; tests/test_matching.py shows, with a port of MatchIt's C++ loop,
    that this bug is the only difference. Greedy matching sorts once and finds the nearest
    available partner by union-find over sorted positions: O(n log n).

    ``ties="all"``, the order-free rule. Scores within 1e-10 (relative) of each other are
    one *level*. All focal patients at one level form a block, and blocks choose in
    ``order`` (by level). In round r = 1..k a block of f patients that holds fewer than
    r * f partners takes ALL still-available partners at the nearest partner level within
    the caliper (both neighbouring levels when they are equally far). The block and its
    partners are one matched set: focal patients weight 1, each partner f / (number of
    partners), partners then scaled as MatchIt does. No step looks at a row number, so any
    permutation of the rows (both arms) gives the same sets and weights, bit for bit.
    Without ties (every level holds one patient of an arm) and ``ratio=1`` it equals the
    MatchIt rule. With a discrete PS and a tight caliper it becomes exact matching on the
    PS level, weighted as MatchIt's ``method = "exact"``.

    References
    ----------
    Austin PC (2011). Optimal caliper widths for propensity-score matching when estimating
    differences in means and differences in proportions in observational studies. Pharm
    Stat 10:150-161.
    Ho D, Imai K, King G, Stuart EA (2011). MatchIt: nonparametric preprocessing for
    parametric causal inference. J Stat Softw 42(8).
    """
    order = DEFAULT_ORDER.get(estimand, "largest") if order is None else order
    _check_options(method, ratio, caliper_sd, sd_denominator, replace, order, seed,
                   estimand, ties)
    score = np.asarray(logit_ps, dtype=float)
    is_treated = np.asarray(treated).astype(int) == 1
    is_focal = is_treated if estimand == "ATT" else ~is_treated
    focal_word, partner_word = (("treated patient", "control") if estimand == "ATT"
                                else ("control", "treated patient"))
    n = len(score)
    ids = (np.arange(1, n + 1).astype(str).astype(object) if patient_id is None
           else np.asarray(patient_id).astype(str).astype(object))
    if not np.all(np.isfinite(score)):
        bad = list(ids[~np.isfinite(score)][:10])
        raise NotEstimableError(f"The logit propensity score is infinite or missing for "
                                f"patients {bad} (separation?); refit the PS model "
                                "(e.g. method='firth') before matching.")
    sd_value = logit_sd(score, is_treated, sd_denominator)
    caliper = None if caliper_sd is None else caliper_sd * sd_value
    # Sorted codes (np.unique), not order of appearance: the numbering of the sets must
    # not depend on the row order either.
    strata = None if exact_strata is None else np.unique(
        pd.Series(np.asarray(exact_strata, dtype=object)).astype(str).to_numpy(),
        return_inverse=True)[1]
    f_rows = np.flatnonzero(is_focal)
    sets = ()
    if method == "nearest" and ties == "all":
        sets = tuple(tied_match(score, is_focal, strata, ratio, caliper, replace, order,
                                seed))
        mm = np.full((len(f_rows), 0), -1, dtype=np.int64)
        any_match = bool(sets)
        order_used = order
    else:
        if method == "optimal":
            found = optimal_match(score, is_focal, strata, ratio, caliper)
            order_used = "n/a (optimal)"
        else:
            found = None
            mm = greedy_matrix(score, is_focal, strata, ratio, caliper, replace, order,
                               seed)
            order_used = order
        if found is not None:
            mm = np.full((len(f_rows), ratio), -1, dtype=np.int64)
            for i, t in enumerate(f_rows):
                got = found.get(int(t), [])
                mm[i, :len(got)] = got
        any_match = bool(np.any(mm >= 0))
    if not any_match:
        where = ("" if caliper is None else f" within the caliper ({caliper_sd:g} SD of the "
                 f"logit PS = {caliper:.4g} logit units)")
        raise NotEstimableError(f"No {focal_word} has a {partner_word}{where}"
                                + (f" in the same exact stratum ({', '.join(exact)})"
                                   if strata is not None else "")
                                + ". Check the overlap of the propensity scores, or widen "
                                "caliper_sd.")
    if sets:
        weights = set_weights(sets, is_focal)
        subclass = np.full(n, -1, dtype=np.int64)
        if not replace:
            for k, (focal_rows, partner_rows) in enumerate(sets):
                subclass[focal_rows] = k + 1
                subclass[partner_rows] = k + 1
    else:
        weights = matching_weights(mm, is_focal.astype(int))
        subclass = _subclass(mm, is_focal.astype(int), replace)
    n_focal = int(is_focal.sum())
    n_unmatched = int(np.sum(is_focal & (weights == 0)))
    notes = []
    label_full = estimand
    if n_unmatched:
        group = "treated" if estimand == "ATT" else "controls"
        label_full = f"{estimand} among matched {group}"
        notes.append(f"{n_unmatched} of {n_focal} {group} (the focal patients) have no "
                     f"{partner_word} within the caliper and are dropped: the estimand "
                     f"changes from the {estimand} to the {label_full}.")
    if sets:
        big = [(len(f), len(p)) for f, p in sets if len(f) > 1 or len(p) > ratio]
        if big:
            f_big, p_big = max(big, key=sum)
            notes.append(f"ties='all': {len(big)} matched sets hold tied patients (largest "
                         f"{f_big} {group_of(estimand)} : {p_big} partners); tied partners "
                         "share the weight, so no row order decides the match.")
    else:
        short = int(np.sum((mm >= 0).sum(axis=1)[(mm >= 0).any(axis=1)] < ratio))
        if ratio > 1 and short:
            notes.append(f"{short} matched {focal_word}s received fewer than {ratio} "
                         f"{partner_word}s; weights account for it.")
    if replace:
        notes.append("With replacement matched sets overlap: subclass is undefined; "
                     "cluster on patient id (pairs_frame lists the sets).")
    frozen = [_frozen(a) for a in (ids, is_treated.astype(np.int8), score, mm, subclass,
                                   weights)]
    frozen_sets = tuple((_frozen(f), _frozen(p)) for f, p in sets)
    return MatchedSample(label=label, method=method, ratio=int(ratio), replace=replace,
                         order=order_used, seed=seed, caliper_sd=caliper_sd, caliper=caliper,
                         sd_denominator=sd_denominator, sd_value=sd_value,
                         exact=tuple(exact), covariates=tuple(covariates),
                         patient_id=frozen[0], treated=frozen[1], logit_ps=frozen[2],
                         match_matrix=frozen[3], subclass=frozen[4], weights=frozen[5],
                         estimand=label_full, notes=tuple(notes),
                         ties=ties if method == "nearest" else "n/a (optimal)",
                         sets=frozen_sets)


def group_of(estimand: str) -> str:
    return "treated" if estimand == "ATT" else "controls"


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def match_patients(cohort: Cohort, propensity: PropensityModel, *, method: str = "nearest",
                   ratio: int = 1, caliper_sd: float | None = 0.2, sd_denominator: str = "all",
                   replace: bool = False, order: str | None = None, seed: int | None = None,
                   exact: tuple[str, ...] = (), estimand: str = "ATT",
                   ties: str = "matchit") -> MatchedSample:
    """Propensity-score matching of a cohort on the logit of its fitted PS.

    Parameters
    ----------
    cohort : Cohort
        The cohort the propensity model was fitted to (same patients, same order).
    propensity : PropensityModel
    method, ratio, caliper_sd, sd_denominator, replace, order, seed, estimand, ties
        See :func:`match_on_logit`. Defaults: greedy 1:1 without replacement, MatchIt's
        order (largest PS first for the ATT), caliper 0.2 SD of the logit PS with
        MatchIt's SD over all patients, MatchIt's tie rule.
    exact : tuple of str
        Cohort columns to match exactly on.

    Returns
    -------
    MatchedSample

    Notes
    -----
    Equals MatchIt 4.5.1 ``matchit(..., method = "nearest", distance = logit_ps * 2^26,
    caliper = 0.2, std.caliper = TRUE)`` (same pairs; tests/reference/matching.R) with
    ``ties="matchit"``.

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
                          covariates=propensity.covariates, label=cohort.label,
                          estimand=estimand, ties=ties)
