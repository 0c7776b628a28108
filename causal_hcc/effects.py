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
from functools import partial

import numpy as np
import pandas as pd

from causal_hcc._numeric import row_sum
from causal_hcc.balance import balance_table
from causal_hcc.cox import fit_cox, fit_cox_many
from causal_hcc.data.schema import DEFAULT_CONFOUNDERS, Cohort
from causal_hcc.errors import CausalHccWarning, NotEstimableError
from causal_hcc.matching import MatchedSample, match_on_logit, match_patients
from causal_hcc.parallel import run_parallel
from causal_hcc.propensity import (PropensityModel, build_design, fit_logistic,
                                   fit_logistic_many, fit_propensity)
from causal_hcc.survival import kaplan_meier, survival_curve
from causal_hcc.weighting import compute_weights, ps_weights

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
def cox_effect(method, estimand, description, time, event, x, names, *, weights=None,
                strata=None, cluster=None, robust=False, treated=None) -> EffectEstimate:
    """Fit one Cox model and return the local-therapy HR as an EffectEstimate.

    Local therapy is the first column of ``x`` (then any covariates); ``weights``,
    ``strata``, ``cluster`` and ``robust`` as :func:`causal_hcc.cox.fit_cox`. Rows with
    weight 0 are left out. An arm without deaths gives a not-estimable estimate with the
    reason. Shared by the effects, the specification grid and the subgroup analyses so
    that their numbers are the same computation.
    """
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
        cox_effect("crude", None, "Cox, local therapy only", time, event, x1, n1),
        cox_effect("multivariable", None, "Cox adjusted for the PS covariates", time,
                    event, xa, na),
        cox_effect("psm", matched.estimand.split(" ")[0], "Cox in the matched sample, "
                    "robust SE clustered on matched set", time, event, x1, n1,
                    weights=matched.weights, cluster=matched.subclass),
        cox_effect("psm_stratified", matched.estimand.split(" ")[0], "Cox stratified on "
                    "matched set", time, event, x1, n1, weights=matched.weights,
                    strata=matched.subclass),
    ]
    if matched.replace:
        # With replacement a control sits in several sets: cluster on patient instead.
        out[2] = cox_effect("psm", "ATT", "Cox in the matched sample (with replacement), "
                             "robust SE clustered on patient", time, event, x1, n1,
                             weights=matched.weights, robust=True)
        out[3] = _not_estimable(dict(method="psm_stratified", estimand="ATT",
                                     description="Cox stratified on matched set",
                                     n_treated=0, n_control=0, events=0),
                                "matched sets overlap when matching with replacement")
    for estimand, w in weights.items():
        out.append(cox_effect("iptw", estimand, f"weighted Cox ({estimand}"
                               f"{', stabilised' if w.stabilized else ''}), robust SE",
                               time, event, x1, n1, weights=w.weights, robust=True))
    ate = weights.get("ATE")
    if ate is not None:
        out.append(cox_effect("doubly_robust", "ATE", "weighted Cox (ATE) also adjusted "
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
BOOT_METHODS = ("psm", *(f"iptw_{e}" for e, _ in IPTW_ESTIMANDS))
BOOT_TASKS = 32                  # re-matching tasks per block handed to run_parallel
BOOT_BYTES = 2 ** 28             # working memory of one block of replicates (~256 MB)


@dataclass(frozen=True)
class _Options:
    caliper_sd: float | None
    ratio: int
    replace: bool
    order: str
    landmarks: tuple
    horizons: tuple


def _multiplicity(draws: np.ndarray, n: int) -> np.ndarray:
    """Times each patient is drawn in each replicate (B, n)."""
    flat = draws + n * np.arange(draws.shape[0])[:, None]
    return np.bincount(flat.ravel(), minlength=draws.size).reshape(draws.shape).astype(float)


def _replicate_ps(draws, design, tx) -> np.ndarray:
    """Logit PS of every replicate on its resampled rows (B, n): the PS model refitted.

    Most replicates in one batch (:func:`causal_hcc.propensity.fit_logistic_many`, fit_logistic's iterations);
    the few it flags exactly as before, with fit_logistic on the resampled rows.
    """
    n = draws.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)    # exp overflow at separation
        lp, refit = fit_logistic_many(design.matrix, tx, _multiplicity(draws, n))
    out = np.take_along_axis(lp, draws, axis=1)
    for b in np.flatnonzero(refit):
        idx = draws[b]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CausalHccWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            out[b] = fit_logistic(design.matrix[idx], tx[idx], covariance=False).linear_predictor
    return out


@dataclass(frozen=True)
class _Reweighted:
    """One method's weights in the replicates where it could be computed.

    ``weights`` sums each patient's weights over its resampled rows (so a patient drawn
    twice, matched once, counts once); ``copies`` counts those rows with positive weight,
    so a Cox fit on the original rows treats them as tied rows, as on the resampled ones.
    """

    rows: np.ndarray          # replicate numbers
    weights: np.ndarray       # (len(rows), n)
    copies: np.ndarray        # (len(rows), n)


def _per_patient(rows, draws, copy_weights, n: int) -> _Reweighted:
    """Sum weights of resampled rows per original patient, for every replicate at once."""
    flat = (draws + n * np.arange(len(rows))[:, None]).ravel()
    size = len(rows) * n
    weights = np.bincount(flat, weights=copy_weights.ravel(), minlength=size)
    copies = np.bincount(flat, weights=(copy_weights > 0).ravel(), minlength=size)
    return _Reweighted(np.asarray(rows), weights.reshape(-1, n), copies.reshape(-1, n))


def _rematch(idx, lp, tx, opts: _Options, seed: int) -> np.ndarray | None:
    """Matching weights of one replicate's resampled rows (re-matched on its refitted PS);
    None when no treated patient has a control within the caliper."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        try:
            return match_on_logit(lp, tx[idx], caliper_sd=opts.caliper_sd, ratio=opts.ratio,
                                  replace=opts.replace, order=opts.order, seed=seed).weights
        except NotEstimableError:
            return None


def _rematch_block(task, tx, opts: _Options) -> list:
    """_rematch over a block of replicates (one run_parallel task)."""
    draws, lps, seeds = task
    return [_rematch(draws[i], lps[i], tx, opts, int(seeds[i])) for i in range(len(seeds))]


def _reweight(draws, lps, tx) -> dict:
    """IPTW weights of every replicate whose refitted PS lies inside (0, 1).

    The arithmetic of :func:`causal_hcc.weighting.ps_weights` on each replicate's rows
    (elementwise, so all replicates go through it at once); stabilisation uses each
    replicate's own share of treated rows, as ps_weights does per replicate.
    """
    n = draws.shape[1]
    with np.errstate(over="ignore"):
        ps = 1.0 / (1.0 + np.exp(-lps))
    rows = np.flatnonzero(np.all((ps > 0) & (ps < 1), axis=1))   # else: infinite weights
    ps, treated = ps[rows], tx[draws[rows]]
    share = treated.mean(axis=1, keepdims=True)
    out = {}
    for estimand, stabilized in IPTW_ESTIMANDS:
        w = ps_weights(ps.ravel(), treated.ravel(), estimand=estimand)[0].reshape(ps.shape)
        if stabilized:
            with np.errstate(divide="ignore", invalid="ignore"):
                w = w * (np.where(treated == 1, share, 1 - share) if estimand == "ATE"
                         else np.where(treated == 1, 1.0, (1 - share) / share))
        out[f"iptw_{estimand}"] = _per_patient(rows, draws[rows], w, n)
    return out


def _log_hr(time, event, tx, method: _Reweighted, n_boot: int) -> np.ndarray:
    """log HR of local therapy in every replicate: one batched weighted Cox fit (Efron).

    NaN where the method failed, an arm has no deaths, or the fit does not converge or
    runs off to infinity, as for the per-replicate fit_cox this replaces.
    """
    out = np.full(n_boot, np.nan)
    if method.rows.size:
        fit = fit_cox_many(time, event, tx[:, None], method.weights, copies=method.copies,
                           ties="efron")
        out[method.rows] = fit.coef[:, 0]
    return out


def _curve_values_many(time, event, tx, weights, landmarks, horizons) -> np.ndarray:
    """_fast_curve_values for many weight vectors at once: (B, quantities, 3).

    Weighted KM per arm over the arm's distinct times; at a time where a vector has no
    weight nobody dies, a factor exactly 1 of the product, so each curve is the one on
    the vector's own rows. Landmark S(t) (NaN beyond the vector's last time unless its
    curve reached 0) and RMST are read off as there. Quantities are ordered as
    ``_curve_values``: landmarks, then RMST horizons; the last axis is (treated,
    control, treated - control).
    """
    arms = []
    for arm in (1, 0):
        sel = np.flatnonzero(tx == arm)
        sel = sel[np.argsort(time[sel], kind="stable")]
        t_arm = time[sel]
        starts = np.flatnonzero(np.r_[True, t_arm[1:] != t_arm[:-1]])
        uniq = t_arm[starts]
        w = np.ascontiguousarray(weights[:, sel])
        n_total = np.add.reduceat(w, starts, axis=1)
        n_event = np.add.reduceat(w * event[sel], starts, axis=1)
        n_risk = np.cumsum(n_total[:, ::-1], axis=1)[:, ::-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            surv = np.cumprod(np.where(n_event > 0, 1 - n_event / n_risk, 1.0), axis=1)
        last = np.max(np.where(w > 0, t_arm, -np.inf), axis=1)
        values = []
        for t in landmarks:
            i = np.searchsorted(uniq, t, side="right") - 1
            s = np.ones(len(w)) if i < 0 else surv[:, i].copy()
            s[(t > last) & (surv[:, -1] > 0)] = np.nan   # nobody followed that long
            values.append(s)
        steps = np.c_[np.ones(len(w)), surv]
        for h in horizons:
            width = np.clip(np.minimum(np.r_[uniq, h], h) - np.r_[0.0, uniq], 0.0, None)
            values.append(row_sum(steps * width))
        arms.append(np.stack(values, axis=1))
    return np.stack([arms[0], arms[1], arms[0] - arms[1]], axis=-1)


def bootstrap(cohort: Cohort, covariates, *, n_boot: int, seed: int, opts: _Options,
              jobs: int = 1, progress=None, dask_address: str | None = None) -> list[dict]:
    """Run ``n_boot`` replicates of the whole PS pipeline; indices drawn up front from ``seed``.

    Each replicate resamples patients with replacement, refits the PS model, re-matches
    and re-weights, and refits the Cox model of each method. Returns one dict per
    replicate: the log HR of ``psm`` and ``iptw_<estimand>`` (NaN = failed) and, where
    matching / ATE weighting succeeded, ``psm_curves`` / ``iptw_curves`` (landmark
    survival and RMST per arm and their difference, as ``_fast_curve_values``).

    Notes
    -----
    Every index vector and matching seed is drawn before any work starts, so the result
    does not depend on ``jobs`` or the backend. Replicates are then processed in blocks
    of bounded memory (:data:`BOOT_BYTES`): the PS refits of a block as one batch, the
    re-matching per replicate through :func:`causal_hcc.parallel.run_parallel` (joblib
    locally, Dask when ``dask_address`` is given), and, per method, one
    :func:`causal_hcc.cox.fit_cox_many` over the replicates' weight vectors on the
    original rows (multiplicity x matching or IPTW weight, repeated rows kept as tied
    copies), and the weighted KM curves of the block at once. The batched steps run in
    this process and compute each replicate on its own (no sums across replicates), so
    the output is the same bit for bit whatever ``jobs``, the backend or the block size.
    A replicate is what it was when each was fitted on its resampled rows; the numbers
    agree with that to rounding (tests/test_parallel.py).
    """
    time, event, tx, design = _arrays(cohort, covariates)
    rng = np.random.default_rng(seed)
    n = len(time)
    draws = rng.integers(0, n, size=(n_boot, n))
    seeds = rng.integers(0, 2**31 - 1, size=n_boot)
    block = max(1, BOOT_BYTES // (8 * n * (design.matrix.shape[1] + 16)))
    out = []
    for first in range(0, n_boot, block):
        rows = slice(first, first + block)
        out += _bootstrap_block(draws[rows], seeds[rows], time, event, tx, design, opts,
                                jobs, dask_address, progress, first, n_boot)
    return out


def _bootstrap_block(draws, seeds, time, event, tx, design, opts, jobs, dask_address,
                     progress, done_before: int, n_boot: int) -> list[dict]:
    """The replicates of one block (see :func:`bootstrap`)."""
    n_rep, n = draws.shape
    lps = _replicate_ps(draws, design, tx)
    blocks = np.array_split(np.arange(n_rep), min(n_rep, BOOT_TASKS))
    ends = done_before + np.cumsum([len(blk) for blk in blocks])

    def report(done_tasks: int, _total: int) -> None:
        start = ends[done_tasks - 2] if done_tasks > 1 else done_before
        for done in range(start + 1, ends[done_tasks - 1] + 1):
            progress(int(done), n_boot)

    matched = run_parallel(partial(_rematch_block, tx=tx, opts=opts),
                           [(draws[blk], lps[blk], seeds[blk]) for blk in blocks], jobs=jobs,
                           dask_address=dask_address,
                           progress=None if progress is None else report)
    matched = [w for part in matched for w in part]
    rows = [b for b, w in enumerate(matched) if w is not None]
    methods = {"psm": _per_patient(rows, draws[rows], np.array([matched[b] for b in rows])
                                   .reshape(len(rows), n), n)}
    methods.update(_reweight(draws, lps, tx))
    log_hr = {key: _log_hr(time, event, tx, m, n_rep) for key, m in methods.items()}
    out = [{key: float(log_hr[key][b]) for key in BOOT_METHODS} for b in range(n_rep)]
    names = [("survival", t) for t in opts.landmarks] + [("rmst", h) for h in opts.horizons]
    for key, curves in (("psm", "psm_curves"), ("iptw_ATE", "iptw_curves")):
        m = methods[key]
        if m.rows.size == 0:
            continue
        values = _curve_values_many(time, event, tx, m.weights, opts.landmarks, opts.horizons)
        for i, b in enumerate(m.rows):
            out[b][curves] = {name: tuple(float(v) for v in values[i, j])
                              for j, name in enumerate(names)}
    return out


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
           landmarks=LANDMARKS, horizons=RMST_HORIZONS, progress=None,
           dask_address: str | None = None) -> EffectsReport:
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
    dask_address : str, optional
        Dask scheduler (``tcp://host:port``) to run the bootstrap on instead (optional
        extra ``dask``); same results as locally, bit for bit.
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
                     progress=progress, dask_address=dask_address) if n_boot > 0 else []
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
