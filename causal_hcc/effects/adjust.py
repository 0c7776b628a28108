"""Adjusted treatment effects: matched and weighted Cox models, adjusted curves.

Every hazard ratio is for the treated arm vs the control arm (reference), named with the
cohort's arm labels, with its SE type:

========================  ===========================================================
method                    model
========================  ===========================================================
``crude``                 Cox, treatment only; model-based SE
``multivariable``         Cox, treatment + the PS covariates; model-based SE
``psm``                   Cox in the matched sample (matching weights), robust SE
                          clustered on matched set (R ``coxph(..., weights, cluster =
                          subclass)``)
``psm_stratified``        Cox stratified on matched set; model-based SE
``iptw``                  weighted Cox, robust sandwich SE (R ``coxph(..., weights,
                          robust = TRUE)``), for ATE (stabilised), ATT and ATO weights
``doubly_robust``         IPTW (ATE, stabilised) Cox also adjusted for the PS covariates
========================  ===========================================================

Bootstrap: patients are resampled with replacement; in each replicate the PS model is
refitted and the patients re-matched (PSM) or re-weighted (IPTW), then the Cox model is
refitted; percentile CIs. Replicates come from one ``numpy.random.Generator(seed)``, so the
same seed gives the same intervals bit for bit. Failed replicates (e.g. no match within
the caliper, no events in an arm) are counted and reported, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc.balance import balance_table
from causal_hcc.data.cohort import Cohort
from causal_hcc.defaults import SEED, default_horizons, default_landmarks
from causal_hcc.effects.bootstrap import BootOptions, attach_boot, bootstrap
from causal_hcc.effects.curves import AdjustedCurves, curve_stats, curves_table
from causal_hcc.effects.estimate import IPTW_ESTIMANDS, cohort_arrays, estimate_effects
from causal_hcc.matching import MatchedSample, match_patients
from causal_hcc.propensity import (PropensityModel, fit_propensity)
from causal_hcc.weighting import compute_weights



@dataclass(frozen=True)
class EffectsReport:
    """Everything of the adjusted analysis of one cohort."""

    label: str
    covariates: tuple
    propensity: PropensityModel
    matched: MatchedSample
    weights: dict
    balance: dict
    estimates: tuple
    curves: tuple
    settings: dict
    notes: tuple = field(default=())
    comparison: str = "treated vs control (reference)"
    arm_labels: tuple = ("treated", "control")
    time_unit: str = "months"
    n_excluded: int = 0

    def to_frame(self) -> pd.DataFrame:
        """One row per estimate (the columns of ``effects.json``)."""
        return pd.DataFrame([e.to_dict() for e in self.estimates])

    def max_abs_smd(self) -> dict:
        """Largest |SMD| after adjustment per method: over the PS covariates (what the
        adjustment targets) and over every Table 1 variable (residual imbalance)."""
        out = {}
        for name, table in self.balance.items():
            rows = table.rows
            ps_rows = rows[rows["ps_covariate"]]
            out[name] = {"ps_covariates": float(np.nanmax(np.abs(ps_rows["smd_after"]))),
                         "all_variables": table.max_abs_smd}
        return out

    def summary(self) -> str:
        lines = [self.label,
                 f"Adjusted effect of treatment ({self.comparison}); PS covariates: "
                 f"{', '.join(self.covariates)}. Caliper {self.settings['caliper_sd']} SD of "
                 f"the logit PS; bootstrap {self.settings['n_boot']} replicates "
                 f"(seed {self.settings['seed']}).",
                 f"Matched: {self.matched.n_matched_treated} treated / "
                 f"{self.matched.n_matched_control} controls; unmatched treated: "
                 f"{len(self.matched.unmatched_treated_ids)} ({self.matched.estimand}).",
                 f"{'method':<15}{'estimand':<9}{'HR':>7}  {'95% CI':<15}{'P':>7}  "
                 f"{'SE':<15}{'bootstrap CI':<15}"]
        for e in self.estimates:
            if not e.estimable:
                lines.append(f"{e.method:<15}{e.estimand or '':<9} not estimable: {e.reason}")
                continue
            boot = (f"{e.boot_ci_lower:.2f}-{e.boot_ci_upper:.2f}"
                    if e.boot_ci_lower is not None else "")
            lines.append(f"{e.method:<15}{e.estimand or '':<9}{e.hr:>7.3f}  "
                         f"{e.ci_lower:.3f}-{e.ci_upper:.3f}  {e.p_value:>7.4f}  "
                         f"{e.variance:<15}{boot:<15}")
        lines.append("Balance after adjustment, max |SMD| over PS covariates / all Table 1 "
                     "variables: " + "; ".join(
                         f"{k} {v['ps_covariates']:.3f} / {v['all_variables']:.3f}"
                         for k, v in self.max_abs_smd().items()))
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- driver
def adjust(cohort: Cohort, covariates=None, *, caliper_sd: float | None = 0.2,
           ratio: int = 1, replace: bool = False, order: str = "largest",
           n_boot: int = 1000, seed: int = SEED, jobs: int = 1,
           landmarks=None, horizons=None, progress=None,
           dask_address: str | None = None) -> EffectsReport:
    """The whole adjusted analysis: PS, matching, IPTW, balance, HRs, curves, bootstrap.

    Parameters
    ----------
    cohort : Cohort
    covariates : sequence of str, optional
        PS covariates; default the cohort's (``cohort.roles.covariates``).
    caliper_sd, ratio, replace, order
        Matching options (:func:`causal_hcc.matching.match_on_logit`).
    n_boot : int
        Bootstrap replicates (0 skips the bootstrap).
    seed : int
        Seed of the bootstrap (and of random matching order).
    jobs : int
        Parallel workers (joblib) for the bootstrap.
    dask_address : str, optional
        Dask scheduler (``tcp://host:port``) to run the bootstrap on instead (optional
        extra ``dask``); same results as locally, bit for bit.
    landmarks, horizons : sequences of float, optional
        Times (cohort's unit) for landmark survival differences and RMST differences;
        default :func:`causal_hcc.defaults.default_landmarks` and
        :func:`~causal_hcc.defaults.default_horizons` (within the follow-up of both arms).
        A horizon beyond an arm's follow-up is kept and flagged in ``notes``.

    Returns
    -------
    EffectsReport
    """
    covariates = tuple(cohort.roles.covariates if covariates is None else covariates)
    unit = cohort.labels.time_unit
    landmarks = default_landmarks(cohort.time, unit) if landmarks is None else landmarks
    horizons = (default_horizons(cohort.time, cohort.treated, unit) if horizons is None
                else horizons)
    tx_all = cohort.treated.astype(bool)
    notes = _follow_up_notes(cohort.time, tx_all, np.ones_like(tx_all), landmarks, horizons,
                             unit)
    post = cohort.post_baseline_in(covariates)
    if post:
        notes.append(f"Adjusted for {', '.join(post)}, measured after time zero: conditioning "
                     "on a post-baseline variable can bias the effect (it may itself be "
                     "affected by treatment or by early survival).")
    propensity = fit_propensity(cohort, covariates)
    matched = match_patients(cohort, propensity, caliper_sd=caliper_sd, ratio=ratio,
                             replace=replace, order=order,
                             seed=seed if order == "random" else None)
    weights = {est: compute_weights(cohort, propensity, estimand=est, stabilized=stab)
               for est, stab in IPTW_ESTIMANDS}
    balance = {"psm": balance_table(cohort, matched)}
    balance.update({f"iptw_{k}": balance_table(cohort, w) for k, w in weights.items()})
    estimates = estimate_effects(cohort, propensity, matched, weights)
    time, event, tx, _ = cohort_arrays(cohort, covariates)
    opts = BootOptions(caliper_sd, ratio, replace, order, tuple(landmarks), tuple(horizons))
    reps = bootstrap(cohort, covariates, n_boot=n_boot, seed=seed, opts=opts, jobs=jobs,
                     progress=progress, dask_address=dask_address) if n_boot > 0 else []
    if reps:
        estimates = tuple(
            attach_boot(e, reps, "psm" if e.method == "psm" else f"iptw_{e.estimand}")
            if e.estimable and e.method in ("psm", "iptw") else e for e in estimates)
        notes.append("Bootstrap CIs: percentile; PS refitted and patients re-matched / "
                     "re-weighted in every replicate.")
    curves = []
    for method, estimand, w, key in (("psm", "ATT", matched.weights, "psm_curves"),
                                     ("iptw", "ATE", weights["ATE"].weights, "iptw_curves")):
        arms, values = curve_stats(time, event, tx, w, opts.landmarks, opts.horizons,
                                    (cohort.labels.treated, cohort.labels.control))
        boot = None
        if reps:
            boot = np.array([[v[2] for v in r[key].values()] if key in r
                             else [np.nan] * len(values) for r in reps])
        curves.append(AdjustedCurves(method, estimand, arms[0], arms[1],
                                     curves_table(values, boot)))
        notes += _follow_up_notes(time, tx == 1, w > 0, opts.landmarks, opts.horizons, unit,
                                  f"the {method.upper()} ({estimand}) curves")
    settings = {"caliper_sd": caliper_sd, "sd_denominator": matched.sd_denominator,
                "ratio": ratio, "replace": replace, "order": order, "n_boot": n_boot,
                "seed": seed, "ties": "efron", "landmarks": list(landmarks),
                "rmst_horizons": list(horizons)}
    return EffectsReport(cohort.label, covariates, propensity, matched, weights, balance,
                         estimates, tuple(curves), settings, tuple(notes),
                         cohort.labels.comparison,
                         (cohort.labels.treated, cohort.labels.control), unit,
                         cohort.n_excluded)


def _follow_up_notes(time, treated, used, landmarks, horizons, unit: str,
                     what: str = "the data") -> list[str]:
    """Flag landmarks and horizons beyond the longest follow-up of an arm (never silent).

    ``used`` selects the patients the curves are built on (positive weight): a matched or
    weighted arm can end earlier than the cohort's.
    """
    ends = [time[used & arm].max() if (used & arm).any() else 0.0
            for arm in (treated, ~treated)]
    reach = min(ends)
    late = sorted({float(t) for t in (*landmarks, *horizons) if t > reach})
    if not late:
        return []
    return [f"{what}: times {[f'{t:g}' for t in late]} {unit} lie beyond the longest "
            f"follow-up of an arm ({reach:g} {unit}); survival there is not observed (a "
            "landmark is not estimable; an RMST carries the last value forward)."]
