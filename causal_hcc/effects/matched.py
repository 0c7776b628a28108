"""Hazard ratios of the matching family: PSM for the ATT and the ATC, exact / CEM /
propensity-subclass strata for the ATT, ATC and ATE, and the spread of greedy PSM over
random row orders (:func:`order_spread`).

The Cox fits are :func:`causal_hcc.effects.estimate.cox_effect`, the one Cox step of the
effects stage, so these rows are the same computation as every other HR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_hcc.data.cohort import Cohort
from causal_hcc.defaults import SEED
from causal_hcc.effects.estimate import (EffectEstimate, cohort_arrays, cox_effect,
                                         model_matrix, not_estimable)
from causal_hcc.errors import NotEstimableError
from causal_hcc.matching import MatchedSample, match_on_logit, match_weights
from causal_hcc.matching_strata import (STRATA_ESTIMANDS, STRATA_METHODS, StrataSample,
                                        stratum_matches)
from causal_hcc.propensity import PropensityModel
from causal_hcc.survival.cox_many import fit_cox_many

STRATA_DESCRIPTION = {
    "exact": "exact matching on the PS covariates",
    "cem": "coarsened exact matching (Sturges bins) on the PS covariates",
    "subclass": "propensity-score subclassification (6 quantile classes)",
}


@dataclass(frozen=True)
class OrderSpread:
    """The HR of greedy PSM (MatchIt's tie rule) over K random row orders of both arms.

    ``log_hr`` holds the K log HRs (NaN = no estimate in that order; counted in
    ``n_failed``). The PS is fitted once; each order permutes all rows (treated and
    controls) before matching, so only the tie-breaking changes.
    """

    estimand: str
    k: int
    seed: int
    log_hr: np.ndarray
    n_failed: int

    def _hr(self) -> np.ndarray:
        return np.exp(self.log_hr[np.isfinite(self.log_hr)])

    @property
    def quantiles(self) -> dict:
        """min, q25, median, q75, max of the HR (numpy's linear quantiles)."""
        hr = self._hr()
        if hr.size == 0:
            return dict.fromkeys(("min", "q25", "median", "q75", "max"), float("nan"))
        q = np.quantile(hr, [0, 0.25, 0.5, 0.75, 1])
        return dict(zip(("min", "q25", "median", "q75", "max"), map(float, q)))

    @property
    def share_below_1(self) -> float:
        hr = self._hr()
        return float(np.mean(hr < 1)) if hr.size else float("nan")

    @property
    def crosses_1(self) -> bool:
        """True when some orders give HR < 1 and others HR > 1."""
        hr = self._hr()
        return bool(hr.size and np.any(hr < 1) and np.any(hr > 1))

    def to_dict(self) -> dict:
        return {"estimand": self.estimand, "k": self.k, "seed": self.seed,
                **{f"hr_{k}": v for k, v in self.quantiles.items()},
                "share_hr_below_1": self.share_below_1, "crosses_1": self.crosses_1,
                "n_failed": self.n_failed}

    def summary(self) -> str:
        q = self.quantiles
        return (f"Greedy PSM ({self.estimand}, MatchIt tie rule) over {self.k} random row "
                f"orders of both arms (seed {self.seed}): HR min {q['min']:.3f}, quartiles "
                f"{q['q25']:.3f} / {q['median']:.3f} / {q['q75']:.3f}, max {q['max']:.3f}; "
                f"HR < 1 in {100 * self.share_below_1:.1f}% of orders"
                + (f"; {self.n_failed} orders without an estimate" if self.n_failed else "")
                + ".")


def _labels(cohort: Cohort) -> dict:
    return dict(comparison=cohort.labels.comparison,
                arm_labels=(cohort.labels.treated, cohort.labels.control))


def order_spread(cohort: Cohort, propensity: PropensityModel, *, estimand: str = "ATT",
                 k: int = 200, seed: int = SEED, caliper_sd: float | None = 0.2,
                 ratio: int = 1, sd_denominator: str = "all",
                 order: str | None = None) -> OrderSpread:
    """HR of greedy PSM (``ties="matchit"``) over ``k`` random permutations of all rows.

    Parameters
    ----------
    cohort, propensity
        The cohort and its fitted PS model (fitted once: only the row order changes).
    estimand : {"ATT", "ATC"}
    k : int
        Number of random row orders.
    seed : int
        ``numpy.random.default_rng(seed)`` draws the K permutations.
    caliper_sd, ratio, sd_denominator, order
        As :func:`causal_hcc.matching.match_on_logit` (order default MatchIt's).

    Returns
    -------
    OrderSpread

    Notes
    -----
    Each HR is the Cox model in the matched sample (the ``psm`` row's point estimate; all
    K fitted at once by :func:`causal_hcc.survival.cox_many.fit_cox_many`). With tied propensity scores MatchIt's greedy rule
    lets the row order decide which tied partner a patient gets; this shows how much
    that moves the HR. The order-free rule (``ties="all"``) gives one answer.
    """
    time, event, tx, _ = cohort_arrays(cohort, propensity.covariates)
    lp = np.asarray(propensity.logit_ps, float)
    rng = np.random.default_rng(seed)
    weights = np.zeros((k, len(lp)))
    matched = np.zeros(k, bool)
    perms = [rng.permutation(len(lp)) for _ in range(k)]
    # Without tied scores the greedy rule never looks at the row order (ties in distance
    # go to the lower score), so every order gives the same matched sample: match once.
    # 1:1 only, where every weight is 1 (1:k sums 1/k in row order: last-bit differences).
    distinct = ratio == 1 and np.unique(lp).size == lp.size
    for b, perm in enumerate(perms):
        if distinct and b > 0:
            weights[b], matched[b] = weights[0], matched[0]
            continue
        w = match_weights(lp[perm], tx[perm], caliper_sd=caliper_sd, ratio=ratio,
                          sd_denominator=sd_denominator, order=order, estimand=estimand,
                          ties="matchit")
        if w is not None:
            weights[b, perm] = w              # back to the cohort's row order
            matched[b] = True
    # One batched Cox fit over the K matched samples (the point estimate is what moves;
    # an arm without events or a diverging fit is NaN, as cox_effect's not estimable).
    out = np.full(k, np.nan)
    if matched.any():
        fit = fit_cox_many(time, event, tx[:, None], weights[matched], ties="efron")
        out[matched] = np.where(fit.status == "ok", fit.coef[:, 0], np.nan)
    out.setflags(write=False)
    return OrderSpread(estimand, int(k), int(seed), out, int(np.sum(~np.isfinite(out))))


def _cox_arrays(cohort: Cohort, propensity: PropensityModel):
    """(time, event, model matrix, its names) of the psm rows' Cox model."""
    time, event, tx, design = cohort_arrays(cohort, propensity.covariates)
    x1, n1 = model_matrix(tx, design, False, cohort.roles.treatment)
    return time, event, x1, n1


def matched_row(cohort: Cohort, propensity: PropensityModel, matched: MatchedSample,
                extra: str = "", *, arrays=None) -> EffectEstimate:
    """The ``psm`` row of one matched sample (ATT or ATC): Cox in the matched sample,
    robust SE clustered on matched set (on patient with replacement). ``arrays``: the
    cohort's Cox arrays when the caller has them already (one cohort, several rows)."""
    time, event, x1, n1 = _cox_arrays(cohort, propensity) if arrays is None else arrays
    rule = ("order-free ties='all'" if matched.ties == "all" else
            f"MatchIt greedy rule, order '{matched.order}'")
    if matched.replace:
        return cox_effect("psm", matched.estimand, f"Cox in the matched sample ({rule}, with "
                          f"replacement), robust SE clustered on patient{extra}", time,
                          event, x1, n1, weights=matched.weights, robust=True,
                          **_labels(cohort))
    return cox_effect("psm", matched.estimand, f"Cox in the matched sample ({rule}), robust "
                      f"SE clustered on matched set{extra}", time, event, x1, n1,
                      weights=matched.weights, cluster=matched.subclass, **_labels(cohort))


def psm_atc_row(cohort: Cohort, propensity: PropensityModel, *, ties: str = "all",
                caliper_sd=0.2, ratio=1, replace=False, order=None, seed=None,
                spread: OrderSpread | None = None, arrays=None):
    """(MatchedSample or None, EffectEstimate) of PSM for the ATC (controls focal)
    (``arrays``: as :func:`matched_row`)."""
    try:
        m = match_on_logit(propensity.logit_ps, propensity.treated, caliper_sd=caliper_sd,
                           ratio=ratio, replace=replace, order=order, seed=seed,
                           patient_id=cohort.ids, covariates=propensity.covariates,
                           label=cohort.label, estimand="ATC", ties=ties)
    except NotEstimableError as err:
        return None, not_estimable(dict(method="psm", estimand="ATC",
                                        description="Cox in the matched sample (ATC)",
                                        n_treated=0, n_control=0, events=0,
                                        comparison=cohort.labels.comparison), str(err))
    if arrays is None:
        arrays = _cox_arrays(cohort, propensity)      # once for both Cox fits
    extra = (greedy_note(cohort, propensity, m, spread, arrays=arrays) if ties == "all"
             else "")
    return m, matched_row(cohort, propensity, m, extra, arrays=arrays)


def greedy_note(cohort: Cohort, propensity: PropensityModel, matched: MatchedSample,
                spread: OrderSpread | None = None, *, arrays=None) -> str:
    """"; MatchIt greedy rule HR x; over K random row orders ..." for an order-free row
    (``arrays``: as :func:`matched_row`)."""
    target = matched.target
    try:
        g = match_on_logit(propensity.logit_ps, propensity.treated,
                           caliper_sd=matched.caliper_sd, ratio=matched.ratio,
                           replace=matched.replace, sd_denominator=matched.sd_denominator,
                           estimand=target, ties="matchit")
        ge = matched_row(cohort, propensity, g, arrays=arrays)
        text = (f"; MatchIt greedy rule (data order) HR {ge.hr:.3f}" if ge.estimable
                else "; MatchIt greedy rule: not estimable")
    except NotEstimableError:
        text = "; MatchIt greedy rule: no match"
    if spread is not None:
        s = spread
        q = s.quantiles
        text += (f"; over {s.k} random row orders (seed {s.seed}) HR {q['min']:.3f}-"
                 f"{q['max']:.3f} (median {q['median']:.3f}, HR < 1 in "
                 f"{100 * s.share_below_1:.0f}%)")
    return text


def strata_rows(cohort: Cohort, propensity: PropensityModel, *,
                methods=STRATA_METHODS, estimands=STRATA_ESTIMANDS, arrays=None):
    """({(method, estimand): StrataSample}, rows): weighted Cox per stratum method and
    estimand, robust sandwich SE by patient (R ``coxph(..., weights, robust = TRUE)``);
    a not-estimable row (with the reason) where no stratum holds both arms or an arm of
    the weighted sample has no events (``arrays``: as :func:`matched_row`)."""
    time, event, x1, n1 = _cox_arrays(cohort, propensity) if arrays is None else arrays
    samples: dict[tuple[str, str], StrataSample] = {}
    rows = []
    for method in methods:
        # One call per method: the exact / CEM strata are the same for every estimand.
        made = stratum_matches(cohort, method, estimands, propensity=propensity)
        for estimand in estimands:
            desc = (f"weighted Cox after {STRATA_DESCRIPTION[method]} (MatchIt "
                    f"weights.subclass, {estimand}), robust SE")
            s = made[estimand]
            if isinstance(s, NotEstimableError):
                rows.append(not_estimable(dict(method=method, estimand=estimand,
                                               description=desc, n_treated=0, n_control=0,
                                               events=0,
                                               comparison=cohort.labels.comparison),
                                          str(s)))
                continue
            samples[(method, estimand)] = s
            rows.append(cox_effect(method, s.estimand, desc, time, event, x1, n1,
                                   weights=s.weights, robust=True, **_labels(cohort)))
    return samples, rows
