"""Stratum matching -> StrataSample: exact, coarsened exact (CEM) and PS subclassification.

Each method cuts the cohort into strata and keeps the strata that hold both arms; the
weights are MatchIt's ``weights.subclass`` for the ATT, the ATC or the ATE. Nothing here
depends on the row order. The three methods agree with MatchIt 4.5.1 ``method = "exact"``,
``"cem"`` and ``"subclass"`` (tests/reference/estimands.R, whose header states every rule;
tests/test_matching_estimands.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.errors import NotEstimableError

STRATA_METHODS = ("exact", "cem", "subclass")
STRATA_ESTIMANDS = ("ATT", "ATC", "ATE")
N_SUBCLASSES = 6          # MatchIt's default subclass = 6


@dataclass(frozen=True)
class StrataSample:
    """Patients grouped into strata, and MatchIt's stratum weights for one estimand.

    Attributes
    ----------
    method : {"exact", "cem", "subclass"}
    estimand : str
        "ATT", "ATC" or "ATE"; with " in strata holding both arms" appended when patients
        of the target population were dropped (their stratum lacked an arm).
    patient_id, treated : numpy.ndarray
        Per patient, in the cohort's row order.
    subclass : numpy.ndarray
        Stratum number per patient (1..K by sorted stratum key); -1 = dropped.
    weights : numpy.ndarray
        MatchIt ``weights.subclass``; 0 for dropped patients.
    variables : tuple of str
        What the strata are made of (covariates, or "propensity score").
    details : dict
        CEM: ``{variable: interior breaks}`` (factors: None); subclass: ``{"quantiles":
        cut points, "basis": ..., "scooted": bool}``.
    """

    label: str
    method: str
    estimand: str
    patient_id: np.ndarray
    treated: np.ndarray
    subclass: np.ndarray
    weights: np.ndarray
    variables: tuple
    details: dict = field(default_factory=dict)
    notes: tuple = field(default=())

    @property
    def target(self) -> str:
        return self.estimand.split(" ")[0]

    @property
    def n_strata(self) -> int:
        return int(len(np.unique(self.subclass[self.subclass > 0])))

    @property
    def n_dropped_treated(self) -> int:
        return int(np.sum((self.treated == 1) & (self.weights == 0)))

    @property
    def n_dropped_control(self) -> int:
        return int(np.sum((self.treated == 0) & (self.weights == 0)))

    def to_frame(self) -> pd.DataFrame:
        """One row per patient: patient_id, treated, subclass (NA dropped), weight."""
        sub = pd.array(self.subclass, dtype="Int64")
        sub[self.subclass <= 0] = pd.NA
        return pd.DataFrame({"patient_id": self.patient_id, "treated": self.treated,
                             "subclass": sub, "weight": self.weights})

    def summary(self) -> str:
        lines = [self.label,
                 f"{self.method} matching on {', '.join(self.variables)}: {self.n_strata} "
                 f"strata with both arms; weights for the {self.target} (MatchIt "
                 "weights.subclass).",
                 f"Dropped (stratum without the other arm): {self.n_dropped_treated} treated, "
                 f"{self.n_dropped_control} controls. Estimand: {self.estimand}."]
        return "\n".join(lines + [f"Note: {n}" for n in self.notes])


# ---------------------------------------------------------------- strata rules
def sturges_breaks(x) -> np.ndarray:
    """MatchIt's CEM cut points for one numeric variable: ceiling(log2(n) + 1) equal-width
    bins over its range, end breaks at -Inf / +Inf (``cem_matchit``, ``"sturges"``)."""
    x = np.asarray(x, dtype=float)
    n_bins = int(np.ceil(np.log2(len(x)) + 1))
    breaks = np.linspace(np.min(x), np.max(x), n_bins + 1)
    # R's seq(from, to, length.out) computes from + (0:n) * by; linspace agrees to the bit
    # on the fixtures (tests), and the ends are replaced anyway.
    breaks[0], breaks[-1] = -np.inf, np.inf
    return breaks


def find_interval(x, breaks) -> np.ndarray:
    """R's findInterval(x, breaks): number of breaks <= x (a value on a break goes up)."""
    return np.searchsorted(np.asarray(breaks, float), np.asarray(x, float), side="right")


def ps_subclasses(ps, treated, estimand: str, n_sub: int = N_SUBCLASSES):
    """MatchIt's propensity subclasses: (subclass 1..K per patient, quantile cuts, scooted).

    Cuts: type-7 quantiles at 0, 1/n_sub, ..., 1 of the PS among the treated (ATT), the
    controls (ATC) or everyone (ATE); class = findInterval(ps, q, all.inside = TRUE);
    classes renumbered 1..K; then MatchIt's ``subclass_scoot`` moves patients into classes
    that lack an arm (rule in tests/reference/estimands.R, header (5)).
    """
    ps = np.asarray(ps, dtype=float)
    treated = np.asarray(treated).astype(int)
    basis = {"ATT": treated == 1, "ATC": treated == 0, "ATE": np.ones(len(ps), bool)}[estimand]
    q = np.quantile(ps[basis], np.linspace(0, 1, n_sub + 1))     # numpy "linear" = type 7
    raw = np.clip(find_interval(ps, q), 1, n_sub)
    levels = np.unique(raw)
    sub = np.searchsorted(levels, raw) + 1
    k = len(levels)
    scooted = False
    arms_in_class = np.zeros((2, k + 1), dtype=bool)        # [arm, class]
    arms_in_class[treated, sub] = True
    if not arms_in_class[:, 1:].all():
        for arm in pd.unique(treated):
            cnt = np.bincount(sub[treated == arm], minlength=k + 1)[1:]
            if 0 < cnt.sum() < k:
                raise NotEstimableError(f"Subclassification: {int(cnt.sum())} patients in "
                                        f"one arm for {k} subclasses.")
            while np.any(cnt == 0):
                scooted = True
                j0 = int(np.flatnonzero(cnt == 0)[0]) + 1          # 1-based
                soft = np.maximum(cnt - 1, 0)
                js = np.arange(1, k + 1)
                left = np.sum(soft[:j0 - 1] / (j0 - js[:j0 - 1])) if j0 > 1 else 0.0
                right = np.sum(soft[j0:] / (js[j0:] - j0)) if j0 < k else 0.0
                if j0 == k or (j0 != 1 and left >= right):
                    src = int(np.flatnonzero(cnt[:j0 - 1] > 0).max()) + 1
                    cand = np.flatnonzero((treated == arm) & (sub == src))
                    move = cand[np.flatnonzero(ps[cand] == ps[cand].max())[0]]
                else:
                    src = j0 + int(np.flatnonzero(cnt[j0:] > 0).min()) + 1
                    cand = np.flatnonzero((treated == arm) & (sub == src))
                    move = cand[np.flatnonzero(ps[cand] == ps[cand].min())[0]]
                sub[move] = j0
                cnt[j0 - 1] += 1
                cnt[src - 1] -= 1
    return sub.astype(np.int64), q, scooted


def stratum_weights(subclass, treated, estimand: str) -> np.ndarray:
    """MatchIt ``weights.subclass`` (subclass <= 0: dropped, weight 0).

    Per kept stratum with n1 treated and n0 controls: ATT treated 1, controls n1/n0; ATC
    controls 1, treated n0/n1; ATE treated (n1+n0)/n1, controls (n1+n0)/n0; then each arm is
    rescaled so its weights sum to its number of kept patients.
    """
    subclass = np.asarray(subclass)
    treated = np.asarray(treated).astype(int)
    kept = subclass > 0
    w = np.zeros(len(treated))
    if not kept.any():
        return w
    # Counts per stratum, indexed by the stratum number itself when it is a small
    # integer (1..K: no sort needed); sums of ones, so exact whatever the indexing.
    inv = subclass[kept]
    if inv.dtype.kind not in "iu" or inv.max() > 4 * len(inv) + 16:
        inv = np.unique(inv, return_inverse=True)[1].ravel()
    n1 = np.bincount(inv, weights=treated[kept] == 1)
    n0 = np.bincount(inv, weights=treated[kept] == 0, minlength=len(n1))
    tx = treated[kept] == 1
    if estimand == "ATT":
        wk = np.where(tx, 1.0, n1[inv] / n0[inv])
    elif estimand == "ATC":
        wk = np.where(tx, n0[inv] / n1[inv], 1.0)
    else:
        wk = np.where(tx, (n1[inv] + n0[inv]) / n1[inv], (n1[inv] + n0[inv]) / n0[inv])
    for arm in (True, False):
        sel = tx == arm
        if sel.any():
            wk[sel] = wk[sel] * sel.sum() / wk[sel].sum()
    w[kept] = wk
    return w


def _keep_both_arms(keys, treated) -> np.ndarray:
    """Stratum number 1..K (by sorted key) for strata holding both arms; -1 otherwise."""
    codes, inv = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
    return _keep_both_arms_codes(len(codes), inv, treated)


def _keep_both_arms_codes(n_codes: int, inv, treated) -> np.ndarray:
    """_keep_both_arms on key codes 0..n_codes-1 numbered in sorted key order."""
    has1 = np.bincount(inv, weights=treated == 1, minlength=n_codes) > 0
    has0 = np.bincount(inv, weights=treated == 0, minlength=len(has1)) > 0
    both = has1 & has0
    number = np.where(both, np.cumsum(both), -1)
    return number[inv].astype(np.int64)


def _sorted_key_codes(parts, n: int):
    """(number of keys, code per row) of the keys "\x1f".join(row's texts), numbered in
    sorted key order, as ``np.unique(keys, return_inverse=True)`` would number them.

    ``parts`` holds one (codes, texts) per variable (:func:`_text_codes`): the row's text
    is ``texts[codes[row]]``. The rows are grouped on integer codes, and the strings are
    joined and sorted for the distinct combinations only (one per stratum, not one per
    patient). Combinations whose texts coincide get one number, as equal keys would.
    """
    if not parts:
        return 1, np.zeros(n, dtype=np.int64)
    combo = np.zeros(n, dtype=np.int64)
    for codes, texts in parts:
        # At most n combinations so far times len(texts) values: no int64 overflow.
        combo = pd.factorize(combo * len(texts) + codes)[0]
    n_combos = int(combo.max()) + 1
    first = np.empty(n_combos, dtype=np.int64)
    first[combo] = np.arange(n)                 # any row of the combination
    row_texts = [texts[codes[first]].tolist() for codes, texts in parts]
    keys = np.array(["\x1f".join(map(str, t)) for t in zip(*row_texts)])
    _, rank = np.unique(keys, return_inverse=True)
    return n_combos, rank.ravel()[combo]


def _text_codes(x) -> tuple[np.ndarray, np.ndarray]:
    """(codes, texts) with ``texts[codes]`` equal to ``x.astype(str).to_numpy()`` (a
    pandas Series) or ``x.astype(str)`` (a numpy array), converting one value per distinct
    value instead of every row.

    The values are grouped on something at least as fine as their text: the value itself
    for integers and booleans, the bit pattern for floats (0.0 and -0.0, or two NaNs, print
    differently or alike: grouped apart, then merged on the text), the string for object
    columns of strings; anything else is converted row by row, as before.
    """
    is_series = isinstance(x, pd.Series)
    values = x.to_numpy() if is_series else np.asarray(x)
    kind = values.dtype.kind if isinstance(values, np.ndarray) else "?"
    if kind in "biuf":
        by = values.view(f"i{values.dtype.itemsize}") if kind == "f" else values
        codes, _ = pd.factorize(by)
    elif kind == "O" and pd.api.types.infer_dtype(values, skipna=False) == "string":
        codes, _ = pd.factorize(values)
    else:
        texts = x.astype(str).to_numpy() if is_series else values.astype(str)
        codes, uniques = pd.factorize(texts)
        return codes, np.asarray(uniques, dtype=object)
    first = np.empty(int(codes.max()) + 1 if len(codes) else 0, dtype=np.int64)
    first[codes] = np.arange(len(codes))
    texts = (x.iloc[first].astype(str).to_numpy() if is_series
             else values[first].astype(str))
    merged, uniques = pd.factorize(np.asarray(texts, dtype=object))
    return merged[codes], np.asarray(uniques, dtype=object)


# ---------------------------------------------------------------- entry point
def stratum_match(cohort: Cohort, method: str, estimand: str, *, covariates=None,
                  propensity=None, n_subclasses: int = N_SUBCLASSES) -> StrataSample:
    """Exact, coarsened exact or propensity-subclass matching with MatchIt's weights.

    Parameters
    ----------
    cohort : Cohort
    method : {"exact", "cem", "subclass"}
        "exact": strata = distinct combinations of ``covariates``. "cem": numeric
        covariates coarsened into Sturges bins (ceiling(log2(n) + 1) equal-width bins over
        the range, outer breaks at -Inf/+Inf, a value on an interior break goes to the upper
        bin), categorical ones exact. "subclass": ``n_subclasses`` classes of the PS cut
        at its quantiles among the treated / controls / everyone for ATT / ATC / ATE.
    estimand : {"ATT", "ATC", "ATE"}
    covariates : sequence of str, optional
        Default the PS covariates (``propensity.covariates``) or the cohort's.
    propensity : PropensityModel, optional
        Required for ``method="subclass"`` (uses its PS on the probability scale).
    n_subclasses : int
        Subclasses requested (MatchIt default 6; tied scores can give fewer).

    Returns
    -------
    StrataSample

    Raises
    ------
    NotEstimableError
        No stratum holds both arms.

    Notes
    -----
    Agrees with MatchIt 4.5.1 ``matchit(method = "exact" | "cem" | "subclass", estimand =
    ...)``: same strata (partition; labels differ) and same weights (tests/reference/
    estimands.R). A stratum with one arm only is dropped (MatchIt, ``k2k = FALSE``), and the
    estimand is then that of the retained population: the label says so.

    References
    ----------
    Iacus SM, King G, Porro G (2012). Causal inference without balance checking: coarsened
    exact matching. Polit Anal 20:1-24.
    Rosenbaum PR, Rubin DB (1984). Reducing bias in observational studies using
    subclassification on the propensity score. JASA 79:516-524.
    """
    return _matches(cohort, method, (estimand,), covariates, propensity,
                    n_subclasses)[estimand]


def stratum_matches(cohort: Cohort, method: str, estimands=STRATA_ESTIMANDS, *,
                    covariates=None, propensity=None,
                    n_subclasses: int = N_SUBCLASSES) -> dict:
    """:func:`stratum_match` for several estimands: ``{estimand: StrataSample, or the
    NotEstimableError stratum_match raises for it}``.

    The same samples as one ``stratum_match`` per estimand; the strata of "exact" and
    "cem", which do not depend on the estimand, and the patient ids are made once.
    """
    return _matches(cohort, method, tuple(estimands), covariates, propensity,
                    n_subclasses, errors=True)


def _matches(cohort, method, estimands, covariates, propensity, n_subclasses,
             errors=False) -> dict:
    """{estimand: StrataSample}; with ``errors`` a NotEstimableError is the value of its
    estimand instead of being raised."""
    if method not in STRATA_METHODS:
        raise ValueError(f"method must be one of {STRATA_METHODS}, not {method!r}")
    for estimand in estimands:
        if estimand not in STRATA_ESTIMANDS:
            raise ValueError(f"estimand must be one of {STRATA_ESTIMANDS}, not "
                             f"{estimand!r}")
    treated = cohort.treated.astype(int)
    covariates = tuple(covariates if covariates is not None else
                       propensity.covariates if propensity is not None else
                       cohort.roles.covariates)
    if method == "subclass" and propensity is None:
        raise ValueError("method='subclass' needs the fitted propensity model "
                         "(propensity=).")
    shared = None if method == "subclass" else _covariate_strata(cohort, method, covariates,
                                                                  treated)
    ids = _frozen(cohort.ids)
    out = {}
    for estimand in estimands:
        try:
            if method == "subclass":
                raw, q, scooted = ps_subclasses(propensity.ps, treated, estimand,
                                                n_subclasses)
                details = {"quantiles": tuple(float(v) for v in q), "scooted": scooted,
                           "basis": {"ATT": "treated", "ATC": "controls",
                                     "ATE": "all"}[estimand]}
                strata = (raw, details, ("propensity score",))  # both arms after the scoot
            else:
                strata = shared
            out[estimand] = _sample(cohort, method, estimand, treated, ids, *strata,
                                    n_subclasses)
        except NotEstimableError as err:
            if not errors:
                raise
            out[estimand] = err
    return out


def _covariate_strata(cohort, method, covariates, treated):
    """(stratum number per patient, details, variables) of "exact" or "cem"."""
    details: dict = {}
    parts = []
    for name in covariates:
        x = cohort.data[name]
        if method == "cem" and cohort.kind(name) != "categorical":
            breaks = sturges_breaks(x)
            details[name] = tuple(float(b) for b in breaks[1:-1])
            parts.append(_text_codes(find_interval(x, breaks)))
        else:
            if method == "cem":
                details[name] = None
            parts.append(_text_codes(x))
    subclass = _keep_both_arms_codes(*_sorted_key_codes(parts, len(treated)), treated)
    return subclass, details, covariates


def _sample(cohort, method, estimand, treated, ids, subclass, details, variables,
            n_subclasses) -> StrataSample:
    """The StrataSample of one estimand on given strata (NotEstimableError: no stratum
    holds both arms)."""
    if not np.any(subclass > 0):
        raise NotEstimableError(f"{method}: no stratum holds both arms.")
    weights = stratum_weights(subclass, treated, estimand)
    focal = {"ATT": treated == 1, "ATC": treated == 0,
             "ATE": np.ones(len(treated), bool)}[estimand]
    dropped = int(np.sum(focal & (subclass <= 0)))
    label = estimand
    notes = []
    if dropped:
        label = f"{estimand} in strata holding both arms"
        notes.append(f"{dropped} of {int(focal.sum())} patients of the {estimand} target "
                     "population are in strata without the other arm and are dropped: the "
                     f"estimand is the {estimand} of the retained strata only.")
    if method == "subclass" and len(np.unique(subclass)) < n_subclasses:
        notes.append(f"Tied propensity scores: {len(np.unique(subclass))} subclasses instead "
                     f"of {n_subclasses}.")
    frozen = [_frozen(a) for a in (treated.astype(np.int8), subclass, weights)]
    # ids: one read-only array shared by the samples of one call.
    return StrataSample(label=cohort.label, method=method, estimand=label,
                        patient_id=ids, treated=frozen[0], subclass=frozen[1],
                        weights=frozen[2], variables=tuple(variables),
                        details=dict(details), notes=tuple(notes))


def _frozen(a) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a
