"""The bootstrap of the whole PS pipeline (PSM and IPTW), batched.

Bootstrap: patients are resampled with replacement; in each replicate the PS model is
refitted and the patients re-matched (PSM) or re-weighted (IPTW), then the Cox model is
refitted; percentile CIs. Replicates come from one ``numpy.random.Generator(seed)``, so the
same seed gives the same intervals bit for bit. Failed replicates (e.g. no match within
the caliper, no events in an arm) are counted and reported, never silently dropped.

Separation rule. A replicate whose refitted PS model separates is flagged
(``separated``, :func:`separated_replicates`): a level of a binary design column (a 0/1
covariate or a dummy of a categorical one) seen in one arm only, or a fitted logit PS
beyond +/- :data:`SEPARATION_LOGIT` (a PS numerically 0 or 1). Its PS, and so its
weights and matched sets, are artefacts of the maximum likelihood running off to
infinity. Default rule (``separation="fail"``): such replicates count as failed and are
left out of the percentile CI (``boot_ci_lower/upper``); the CI over every replicate that
gave a number (``boot_ci_all_lower/upper``) and their count (``n_boot_separated``) are
reported beside it. ``separation="keep"`` uses every replicate.

Matching with replacement: the bootstrap of a matching estimator is not valid (Abadie &
Imbens 2008, Econometrica 76:1537-1557), so its percentile CI is withheld (None) with the
reason in ``boot_note``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np

from causal_hcc.data.cohort import Cohort
from causal_hcc.effects.curves import curve_values_many
from causal_hcc.effects.estimate import IPTW_ESTIMANDS, EffectEstimate, cohort_arrays
from causal_hcc.errors import CausalHccWarning
from causal_hcc.matching import match_weights
from causal_hcc.parallel import run_parallel
from causal_hcc.logistic import fit_logistic, fit_logistic_many
from causal_hcc.survival.cox_many import fit_cox_many
from causal_hcc.weighting import ps_weights



# ----------------------------------------------------------------------------- bootstrap
BOOT_METHODS = ("psm", *(f"iptw_{e}" for e, _ in IPTW_ESTIMANDS))
BOOT_TASKS = 32                  # re-matching tasks per block handed to run_parallel
BOOT_BYTES = 2 ** 28             # working memory of one block of replicates (~256 MB)
#: |logit PS| beyond which a replicate's PS counts as numerically 0 or 1 (separation): a
#: PS below 3.1e-7, an inverse weight above 3 million. Separated fits in the bundled
#: cohort reach 25-47; a fit without separation stays far below on data of this kind.
SEPARATION_LOGIT = 15.0
SEPARATION_RULES = ("fail", "keep")
REPLACE_NOTE = ("bootstrap percentile CI withheld: matching with replacement, where the "
                "bootstrap is not valid (Abadie & Imbens 2008)")


@dataclass(frozen=True)
class BootOptions:
    caliper_sd: float | None
    ratio: int
    replace: bool
    order: str
    landmarks: tuple
    horizons: tuple
    ties: str = "matchit"       # the tie rule of the point estimate's matching


def _multiplicity(draws: np.ndarray, n: int) -> np.ndarray:
    """Times each patient is drawn in each replicate (B, n)."""
    flat = draws + n * np.arange(draws.shape[0])[:, None]
    return np.bincount(flat.ravel(), minlength=draws.size).reshape(draws.shape).astype(float)


def _replicate_ps(draws, design, tx) -> np.ndarray:
    """Logit PS of every replicate on its resampled rows (B, n): the PS model refitted.

    Most replicates in one batch (:func:`causal_hcc.logistic.fit_logistic_many`, fit_logistic's iterations);
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


def separated_replicates(draws, lps, design_matrix, tx) -> np.ndarray:
    """Which replicates' refitted PS models separate (bool, one per replicate).

    A replicate separates when a binary (0/1) design column that takes both values in the
    replicate has a value seen in one arm only (quasi-complete separation: e.g. no
    untreated patient with intrahepatic cCR), or when a fitted logit PS lies beyond
    +/- :data:`SEPARATION_LOGIT`. Counts are sums of integer multiplicities, so the flag
    is exact and the same whatever the block size.
    """
    n = draws.shape[1]
    x = np.asarray(design_matrix, float)
    binary = [j for j in range(x.shape[1])
              if np.ptp(x[:, j]) > 0 and np.isin(x[:, j], (0.0, 1.0)).all()]
    flagged = ~np.all(np.abs(lps) <= SEPARATION_LOGIT, axis=1)     # NaN counts as flagged
    if binary:
        xb = x[:, binary]
        cells = np.column_stack([tx[:, None] * xb, (1 - tx)[:, None] * xb,
                                 tx[:, None] * (1 - xb), (1 - tx)[:, None] * (1 - xb)])
        counts = (_multiplicity(draws, n) @ cells).reshape(len(draws), 4, len(binary))
        ones, zeros = counts[:, 0] + counts[:, 1], counts[:, 2] + counts[:, 3]
        varying = (ones > 0) & (zeros > 0)
        flagged |= np.any(varying & np.any(counts == 0, axis=1), axis=1)
    return flagged


def _rematch(idx, lp, tx, opts: BootOptions, seed: int) -> np.ndarray | None:
    """Matching weights of one replicate's resampled rows (re-matched on its refitted PS);
    None when no treated patient has a control within the caliper (or the PS is not
    finite). :func:`causal_hcc.matching.match_weights`: match_on_logit's weights, bit for
    bit, without building a MatchedSample per replicate."""
    return match_weights(lp, tx[idx], caliper_sd=opts.caliper_sd, ratio=opts.ratio,
                         replace=opts.replace, order=opts.order, seed=seed, ties=opts.ties)


def _rematch_block(task, tx, opts: BootOptions) -> list:
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


def _log_hr(time, event, tx, methods: dict, n_boot: int) -> dict:
    """log HR of treatment in every replicate of every method: ONE batched weighted Cox
    fit (Efron) over all methods' weight vectors (a vector's fit does not depend on the
    others in the batch, :func:`causal_hcc.survival.cox_many.fit_cox_many`).

    NaN where the method failed, an arm has no deaths, or the fit does not converge or
    runs off to infinity, as for the per-replicate fit_cox this replaces.
    """
    out = {key: np.full(n_boot, np.nan) for key in methods}
    used = [key for key, m in methods.items() if m.rows.size]
    if used:
        fit = fit_cox_many(time, event, tx[:, None],
                           np.concatenate([methods[k].weights for k in used]),
                           copies=np.concatenate([methods[k].copies for k in used]),
                           ties="efron")
        ends = np.cumsum([methods[k].rows.size for k in used])
        for key, coef in zip(used, np.split(fit.coef[:, 0], ends[:-1])):
            out[key][methods[key].rows] = coef
    return out


def bootstrap(cohort: Cohort, covariates, *, n_boot: int, seed: int, opts: BootOptions,
              jobs: int = 1, progress=None, dask_address: str | None = None) -> list[dict]:
    """Run ``n_boot`` replicates of the whole PS pipeline; indices drawn up front from ``seed``.

    Each replicate resamples patients with replacement, refits the PS model, re-matches
    and re-weights, and refits the Cox model of each method. Returns one dict per
    replicate: the log HR of ``psm`` and ``iptw_<estimand>`` (NaN = failed), whether its
    PS model separates (``separated``, :func:`separated_replicates`) and, where
    matching / ATE weighting succeeded, ``psm_curves`` / ``iptw_curves`` (landmark
    survival and RMST per arm and their difference, as ``fast_curve_values``).

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
    time, event, tx, design = cohort_arrays(cohort, covariates)
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
    log_hr = _log_hr(time, event, tx, methods, n_rep)
    separated = separated_replicates(draws, lps, design.matrix, tx)
    columns = [log_hr[key].tolist() for key in BOOT_METHODS]
    out = [dict(zip(BOOT_METHODS, values)) for values in zip(*columns)]
    for b, flag in enumerate(separated.tolist()):
        out[b]["separated"] = bool(flag)
    names = [("survival", t) for t in opts.landmarks] + [("rmst", h) for h in opts.horizons]
    for key, curves in (("psm", "psm_curves"), ("iptw_ATE", "iptw_curves")):
        m = methods[key]
        if m.rows.size == 0:
            continue
        values = curve_values_many(time, event, tx, m.weights, opts.landmarks,
                                   opts.horizons).tolist()       # Python floats, as float()
        for b, rows in zip(m.rows.tolist(), values):
            out[b][curves] = {name: tuple(row) for name, row in zip(names, rows)}
    return out


def percentile_ci(values) -> tuple[float | None, float | None, int]:
    """exp of the 2.5th and 97.5th percentiles of the finite log HRs (None with < 10)."""
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    if ok.sum() < 10:
        return None, None, int(ok.sum())
    lo, hi = np.exp(np.percentile(v[ok], [2.5, 97.5]))
    return float(lo), float(hi), int(ok.sum())


def accepted(reps: list[dict], separation: str = "fail") -> np.ndarray:
    """Replicates the CI uses under the separation rule (bool, one per replicate)."""
    if separation not in SEPARATION_RULES:
        raise ValueError(f"separation must be one of {SEPARATION_RULES}, not {separation!r}")
    sep = np.array([bool(r.get("separated", False)) for r in reps], bool)
    return ~sep if separation == "fail" else np.ones(len(reps), bool)


def attach_boot(est: EffectEstimate, reps: list[dict], key: str, *, separation: str = "fail",
                replace: bool = False) -> EffectEstimate:
    """The estimate with its bootstrap percentile CI under the separation rule.

    ``boot_ci_lower/upper`` from the accepted replicates (``n_boot`` of them; the others,
    failed or separated, in ``n_boot_failed``), ``boot_ci_all_lower/upper`` from every
    replicate that gave a number, ``n_boot_separated`` the replicates whose PS separated.
    With ``replace`` (matching with replacement) both CIs are withheld (None), with the
    reason in ``boot_note``.
    """
    values = np.array([r.get(key, np.nan) for r in reps], float)
    keep = accepted(reps, separation)
    lo, hi, ok = percentile_ci(np.where(keep, values, np.nan))
    lo_all, hi_all, _ = percentile_ci(values)
    n_sep = int(sum(bool(r.get("separated", False)) for r in reps))
    note = (f"{n_sep} of {len(reps)} replicates had a separated PS model and count as "
            "failed" if n_sep and separation == "fail" else
            f"{n_sep} of {len(reps)} replicates had a separated PS model and are kept"
            if n_sep else "")
    if replace:
        lo = hi = lo_all = hi_all = None
        note = REPLACE_NOTE + (f"; {note}" if note else "")
    return EffectEstimate(**{**vars(est), "boot_ci_lower": lo, "boot_ci_upper": hi,
                             "boot_ci_all_lower": lo_all, "boot_ci_all_upper": hi_all,
                             "n_boot": ok, "n_boot_failed": len(reps) - ok,
                             "n_boot_separated": n_sep, "boot_note": note})
