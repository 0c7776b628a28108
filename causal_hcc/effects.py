"""Adjusted effects of local therapy: matched and weighted Cox models, adjusted curves.

Every hazard ratio is for local therapy (yes) vs none (reference), with its SE type:

========================  ===========================================================
method                    model
========================  ===========================================================
``crude``                 Cox, local therapy only; model-based SE
``multivariable``         Cox, local therapy + the PS covariates; model-based SE
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

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc.balance import BalanceTable, balance_table
from causal_hcc.cox import fit_cox
from causal_hcc.data.schema import DEFAULT_CONFOUNDERS, Cohort
from causal_hcc.errors import CausalHccWarning, NotEstimableError
from causal_hcc.matching import MatchedSample, match_on_logit, match_patients
from causal_hcc.propensity import PropensityModel, build_design, fit_logistic, fit_propensity
from causal_hcc.survival import kaplan_meier, survival_curve
from causal_hcc.weighting import Weights, compute_weights, ps_weights

COMPARISON = "local therapy vs no local therapy (reference)"
LANDMARKS = (12.0, 24.0, 36.0, 60.0)
RMST_HORIZONS = (36.0, 60.0)
IPTW_ESTIMANDS = (("ATE", True), ("ATT", False), ("ATO", False))


@dataclass(frozen=True)
class EffectEstimate:
    """One adjusted (or crude) hazard ratio of local therapy vs none.

    ``se_log_hr`` is the SE of log HR of type ``variance`` (model, robust or
    cluster_robust); ``boot_ci_*`` are bootstrap percentile limits (None when not
    bootstrapped), from ``n_boot`` successful replicates (``n_boot_failed`` failed).
    ``n_treated``/``n_control`` count patients with positive weight; ``events`` the deaths
    among them.
    """

    method: str
    estimand: str | None
    description: str
    hr: float
    ci_lower: float
    ci_upper: float
    p_value: float
    se_log_hr: float
    variance: str
    n_treated: int
    n_control: int
    events: int
    covariates: tuple = ()
    ess_treated: float | None = None
    ess_control: float | None = None
    boot_ci_lower: float | None = None
    boot_ci_upper: float | None = None
    n_boot: int = 0
    n_boot_failed: int = 0
    comparison: str = COMPARISON
    estimable: bool = True
    reason: str = ""

    def to_dict(self) -> dict:
        return dict(vars(self), covariates=list(self.covariates))


@dataclass(frozen=True)
class AdjustedCurves:
    """(Weighted) Kaplan-Meier per arm for one adjustment, with landmarks and RMST.

    ``table`` has one row per quantity: landmark survival per arm and difference (treated
    minus control, percentage points on the 0-1 scale), RMST per arm and difference
    (months), with bootstrap percentile CIs where bootstrapped.
    """

    method: str
    estimand: str | None
    treated: object
    control: object
    table: pd.DataFrame


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
                 f"Adjusted effect of local therapy ({COMPARISON}); PS covariates: "
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


# ----------------------------------------------------------------------------- models
def _cox_effect(method, estimand, description, time, event, x, names, *, weights=None,
                strata=None, cluster=None, robust=False, treated=None) -> EffectEstimate:
    """Fit one Cox model; local therapy is the first column of ``x``."""
    w = np.ones(len(time)) if weights is None else np.asarray(weights, float)
    keep = w > 0
    tx = x[:, 0] == 1
    n1, n0 = int((keep & tx).sum()), int((keep & ~tx).sum())
    events = int(event[keep].sum())
    ess = (_ess(w[keep & tx]), _ess(w[keep & ~tx])) if weights is not None else (None, None)
    common = dict(method=method, estimand=estimand, description=description,
                  n_treated=n1, n_control=n0, events=events, covariates=tuple(names[1:]),
                  ess_treated=ess[0], ess_control=ess[1])
    for arm, label in ((tx, "local therapy"), (~tx, "no local therapy")):
        if event[keep & arm].sum() == 0:
            return _not_estimable(common, f"no deaths in the {label} arm of this sample")
    fit = fit_cox(time[keep], event[keep], x[keep], names=names,
                  weights=None if weights is None else w[keep],
                  strata=None if strata is None else np.asarray(strata)[keep],
                  cluster=None if cluster is None else np.asarray(cluster)[keep], robust=robust)
    return EffectEstimate(hr=float(fit.hr[0]), ci_lower=float(fit.ci_lower[0]),
                          ci_upper=float(fit.ci_upper[0]), p_value=float(fit.p[0]),
                          se_log_hr=float(fit.se[0]), variance=fit.variance_type, **common)


def _not_estimable(common, reason) -> EffectEstimate:
    nan = float("nan")
    return EffectEstimate(hr=nan, ci_lower=nan, ci_upper=nan, p_value=nan, se_log_hr=nan,
                          variance="", estimable=False, reason=reason, **common)


def _ess(w) -> float:
    return float(w.sum() ** 2 / (w ** 2).sum()) if w.size else 0.0


def _arrays(cohort: Cohort, covariates):
    data = cohort.data
    time = data["os_months"].to_numpy(float)
    event = data["death"].to_numpy(float)
    tx = data["local_therapy"].to_numpy(float)
    design = build_design(data, covariates)
    return time, event, tx, design


def _model_matrix(tx, design, with_covariates: bool):
    """Local therapy first, then the PS design's columns without its intercept."""
    if not with_covariates:
        return tx[:, None], ["local_therapy"]
    x = np.column_stack([tx, design.matrix[:, 1:]])
    return x, ["local_therapy", *design.terms[1:]]


def estimate_effects(cohort: Cohort, propensity: PropensityModel, matched: MatchedSample,
                     weights: dict) -> tuple[EffectEstimate, ...]:
    """Crude, multivariable, PSM (clustered and stratified), IPTW and doubly robust HRs."""
    covariates = propensity.covariates
    time, event, tx, design = _arrays(cohort, covariates)
    x1, n1 = _model_matrix(tx, design, False)
    xa, na = _model_matrix(tx, design, True)
    out = [
        _cox_effect("crude", None, "Cox, local therapy only", time, event, x1, n1),
        _cox_effect("multivariable", None, "Cox adjusted for the PS covariates", time,
                    event, xa, na),
        _cox_effect("psm", matched.estimand.split(" ")[0], "Cox in the matched sample, "
                    "robust SE clustered on matched set", time, event, x1, n1,
                    weights=matched.weights, cluster=matched.subclass),
        _cox_effect("psm_stratified", matched.estimand.split(" ")[0], "Cox stratified on "
                    "matched set", time, event, x1, n1, weights=matched.weights,
                    strata=matched.subclass),
    ]
    if matched.replace:
        # With replacement a control sits in several sets: cluster on patient instead.
        out[2] = _cox_effect("psm", "ATT", "Cox in the matched sample (with replacement), "
                             "robust SE clustered on patient", time, event, x1, n1,
                             weights=matched.weights, robust=True)
        out[3] = _not_estimable(dict(method="psm_stratified", estimand="ATT",
                                     description="Cox stratified on matched set",
                                     n_treated=0, n_control=0, events=0),
                                "matched sets overlap when matching with replacement")
    for estimand, w in weights.items():
        out.append(_cox_effect("iptw", estimand, f"weighted Cox ({estimand}"
                               f"{', stabilised' if w.stabilized else ''}), robust SE",
                               time, event, x1, n1, weights=w.weights, robust=True))
    ate = weights.get("ATE")
    if ate is not None:
        out.append(_cox_effect("doubly_robust", "ATE", "weighted Cox (ATE) also adjusted "
                               "for the PS covariates, robust SE", time, event, xa, na,
                               weights=ate.weights, robust=True))
    return tuple(out)


# ----------------------------------------------------------------------------- curves
def rmst(km, horizon: float) -> float:
    """Restricted mean survival time (months): area under the KM step curve to ``horizon``.

    Agrees with R ``print(survfit(...), rmean = horizon)``.
    """
    return _rmst(km.time, km.surv, horizon)


def _rmst(times, surv, horizon: float) -> float:
    t = np.r_[0.0, times]
    s = np.r_[1.0, surv]
    right = np.minimum(np.r_[t[1:], horizon], horizon)
    width = np.clip(right - t, 0.0, None)
    return float(np.sum(s * width))


def _surv_at(times, surv, t: float) -> float:
    """S(t) of a step curve; NaN beyond the last time unless the curve reached 0."""
    if t > times[-1] and surv[-1] > 0:
        return float("nan")  # nobody followed that long: not estimable
    i = np.searchsorted(times, t, side="right") - 1
    return 1.0 if i < 0 else float(surv[i])


def _curve_values(curves, landmarks, horizons) -> dict:
    """Landmark survival and RMST per arm and their differences (treated - control)."""
    (t1, s1), (t0, s0) = curves
    values = {}
    for t in landmarks:
        a, b = _surv_at(t1, s1, t), _surv_at(t0, s0, t)
        values[("survival", t)] = (a, b, a - b)
    for h in horizons:
        a, b = _rmst(t1, s1, h), _rmst(t0, s0, h)
        values[("rmst", h)] = (a, b, a - b)
    return values


def _curve_stats(time, event, tx, w, landmarks, horizons):
    """Weighted KM per arm (full curves with CIs) and their landmark/RMST values."""
    arms = []
    for arm, label in ((1, "local therapy"), (0, "no local therapy")):
        sel = (tx == arm) & (w > 0)
        arms.append(kaplan_meier(time[sel], event[sel], weights=w[sel], label=label))
    return arms, _curve_values([(k.time, k.surv) for k in arms], landmarks, horizons)


def _fast_curve_values(time, event, tx, w, landmarks, horizons) -> dict:
    """The same values from the bare step functions (bootstrap replicates)."""
    curves = [survival_curve(time[(tx == arm) & (w > 0)], event[(tx == arm) & (w > 0)],
                             w[(tx == arm) & (w > 0)]) for arm in (1, 0)]
    return _curve_values(curves, landmarks, horizons)


def _curves_table(values, boot=None) -> pd.DataFrame:
    rows = []
    for i, ((kind, t), (v1, v0, diff)) in enumerate(values.items()):
        row = {"quantity": kind, "months": t, "treated": v1, "control": v0,
               "difference": diff, "boot_ci_lower": None, "boot_ci_upper": None}
        if boot is not None and np.isfinite(boot[:, i]).sum() >= 10:
            lo, hi = np.nanpercentile(boot[:, i], [2.5, 97.5])
            row.update(boot_ci_lower=float(lo), boot_ci_upper=float(hi))
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class _Options:
    caliper_sd: float | None
    ratio: int
    replace: bool
    order: str
    landmarks: tuple
    horizons: tuple


def _replicate(idx, time, event, tx, design, opts: _Options, seed: int):
    """One bootstrap replicate: refit PS, re-match and re-weight, refit the Cox models.

    Returns a dict of log HRs and curve statistics; a method that is not estimable in
    this replicate (no match within the caliper, fitted PS of exactly 0 or 1 after
    separation, an arm without deaths) is NaN and counted as a failed replicate.
    """
    t, d, a, xd = time[idx], event[idx], tx[idx], design.matrix[idx]
    out = {"psm": np.nan, **{f"iptw_{e}": np.nan for e, _ in IPTW_ESTIMANDS}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        lp = fit_logistic(xd, a, covariance=False).linear_predictor
        ps = 1.0 / (1.0 + np.exp(-lp))
        try:
            m = match_on_logit(lp, a, caliper_sd=opts.caliper_sd, ratio=opts.ratio,
                               replace=opts.replace, order=opts.order, seed=seed)
            out["psm"] = _log_hr(t, d, a, m.weights)
            out["psm_curves"] = _fast_curve_values(t, d, a, m.weights, opts.landmarks,
                                                   opts.horizons)
        except NotEstimableError:
            pass
        for estimand, stabilized in IPTW_ESTIMANDS:
            if not np.all((ps > 0) & (ps < 1)):
                continue  # separation in this replicate: infinite weights
            w = ps_weights(ps, a, estimand=estimand, stabilized=stabilized)[0]
            out[f"iptw_{estimand}"] = _log_hr(t, d, a, w)
            if estimand == "ATE":
                out["iptw_curves"] = _fast_curve_values(t, d, a, w, opts.landmarks,
                                                        opts.horizons)
    return out


def _log_hr(t, d, a, w) -> float:
    """log HR of a weighted Cox fit (point estimate only: the bootstrap needs no SE)."""
    keep = w > 0
    if d[keep & (a == 1)].sum() == 0 or d[keep & (a == 0)].sum() == 0:
        return np.nan
    fit = fit_cox(t[keep], d[keep], a[keep][:, None], weights=w[keep])
    return float(fit.coef[0]) if fit.converged and not fit.infinite else np.nan


def bootstrap(cohort: Cohort, covariates, *, n_boot: int, seed: int, opts: _Options,
              jobs: int = 1, progress=None) -> list[dict]:
    """Run ``n_boot`` replicates; the resampling indices are drawn up front from ``seed``.

    Drawing every index vector before any work starts makes the result independent of
    ``jobs`` (the order in which replicates run).
    """
    time, event, tx, design = _arrays(cohort, covariates)
    rng = np.random.default_rng(seed)
    n = len(time)
    draws = rng.integers(0, n, size=(n_boot, n))
    seeds = rng.integers(0, 2**31 - 1, size=n_boot)
    if jobs == 1:
        results = []
        for b in range(n_boot):
            results.append(_replicate(draws[b], time, event, tx, design, opts, int(seeds[b])))
            if progress is not None:
                progress(b + 1, n_boot)
        return results
    from joblib import Parallel, delayed
    return Parallel(n_jobs=jobs)(delayed(_replicate)(draws[b], time, event, tx, design, opts,
                                                      int(seeds[b])) for b in range(n_boot))


def _percentile_ci(values) -> tuple[float | None, float | None, int]:
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    if ok.sum() < 10:
        return None, None, int(ok.sum())
    lo, hi = np.exp(np.percentile(v[ok], [2.5, 97.5]))
    return float(lo), float(hi), int(ok.sum())


def _attach_boot(est: EffectEstimate, reps: list[dict], key: str) -> EffectEstimate:
    lo, hi, ok = _percentile_ci([r.get(key, np.nan) for r in reps])
    return EffectEstimate(**{**vars(est), "boot_ci_lower": lo, "boot_ci_upper": hi,
                             "n_boot": ok, "n_boot_failed": len(reps) - ok})


# ----------------------------------------------------------------------------- driver
def adjust(cohort: Cohort, covariates=None, *, caliper_sd: float | None = 0.2,
           ratio: int = 1, replace: bool = False, order: str = "largest",
           n_boot: int = 1000, seed: int = 20250710, jobs: int = 1,
           landmarks=LANDMARKS, horizons=RMST_HORIZONS, progress=None) -> EffectsReport:
    """The whole adjusted analysis: PS, matching, IPTW, balance, HRs, curves, bootstrap.

    Parameters
    ----------
    cohort : Cohort
    covariates : sequence of str, optional
        PS covariates; default ECOG PS, intrahepatic cCR and vascular invasion.
    caliper_sd, ratio, replace, order
        Matching options (:func:`causal_hcc.matching.match_on_logit`).
    n_boot : int
        Bootstrap replicates (0 skips the bootstrap).
    seed : int
        Seed of the bootstrap (and of random matching order).
    jobs : int
        Parallel workers (joblib) for the bootstrap.
    landmarks, horizons : sequences of float
        Months for landmark survival differences and RMST differences.

    Returns
    -------
    EffectsReport
    """
    covariates = tuple(DEFAULT_CONFOUNDERS if covariates is None else covariates)
    notes = []
    propensity = fit_propensity(cohort, covariates)
    matched = match_patients(cohort, propensity, caliper_sd=caliper_sd, ratio=ratio,
                             replace=replace, order=order,
                             seed=seed if order == "random" else None)
    weights = {est: compute_weights(cohort, propensity, estimand=est, stabilized=stab)
               for est, stab in IPTW_ESTIMANDS}
    balance = {"psm": balance_table(cohort, matched)}
    balance.update({f"iptw_{k}": balance_table(cohort, w) for k, w in weights.items()})
    estimates = estimate_effects(cohort, propensity, matched, weights)
    time, event, tx, _ = _arrays(cohort, covariates)
    opts = _Options(caliper_sd, ratio, replace, order, tuple(landmarks), tuple(horizons))
    reps = bootstrap(cohort, covariates, n_boot=n_boot, seed=seed, opts=opts, jobs=jobs,
                     progress=progress) if n_boot > 0 else []
    if reps:
        estimates = tuple(
            _attach_boot(e, reps, "psm" if e.method == "psm" else f"iptw_{e.estimand}")
            if e.estimable and e.method in ("psm", "iptw") else e for e in estimates)
        notes.append("Bootstrap CIs: percentile; PS refitted and patients re-matched / "
                     "re-weighted in every replicate.")
    curves = []
    for method, estimand, w, key in (("psm", "ATT", matched.weights, "psm_curves"),
                                     ("iptw", "ATE", weights["ATE"].weights, "iptw_curves")):
        arms, values = _curve_stats(time, event, tx, w, opts.landmarks, opts.horizons)
        boot = None
        if reps:
            boot = np.array([[v[2] for v in r[key].values()] if key in r
                             else [np.nan] * len(values) for r in reps])
        curves.append(AdjustedCurves(method, estimand, arms[0], arms[1],
                                     _curves_table(values, boot)))
    settings = {"caliper_sd": caliper_sd, "sd_denominator": matched.sd_denominator,
                "ratio": ratio, "replace": replace, "order": order, "n_boot": n_boot,
                "seed": seed, "ties": "efron", "landmarks": list(landmarks),
                "rmst_horizons": list(horizons)}
    return EffectsReport(cohort.label, covariates, propensity, matched, weights, balance,
                         estimates, tuple(curves), settings, tuple(notes))
