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
``weighted_cox_adjusted`` IPTW (ATE, stabilised) Cox also adjusted for the PS covariates:
                          a conditional HR (estimand None), not doubly robust
========================  ===========================================================

The doubly robust estimator is AIPW of the counterfactual survival of each arm at the
landmarks (:func:`causal_hcc.effects.aipw.aipw_survival`, R ``riskRegression::ate``):
``method = "aipw"`` rows of ``adjusted_curves.csv`` (:meth:`EffectsReport.curves_frame`).

Bootstrap: patients are resampled with replacement; in each replicate the PS model is
refitted and the patients re-matched (PSM) or re-weighted (IPTW), then the Cox model is
refitted; percentile CIs. Replicates come from one ``numpy.random.Generator(seed)``, so the
same seed gives the same intervals bit for bit. Failed replicates (e.g. no match within
the caliper, no events in an arm) are counted and reported, never silently dropped;
replicates whose PS model separates are handled by the rule of
:mod:`causal_hcc.effects.bootstrap` (default: counted as failed).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from dataclasses import replace as replace_field

import numpy as np
import pandas as pd

from causal_hcc.balance import balance_tables, residual_imbalance
from causal_hcc.data.cohort import Cohort
from causal_hcc.defaults import SEED, default_horizons, default_landmarks
from causal_hcc.effects.aipw import AIPWResult, aipw_survival, augmentation_cells
from causal_hcc.effects.bootstrap import (REPLACE_NOTE, SEPARATION_RULES, BootOptions,
                                          accepted, attach_boot, bootstrap)
from causal_hcc.effects.curves import AdjustedCurves, curve_stats, curves_table
from causal_hcc.effects.estimate import (IPTW_ESTIMANDS, cohort_arrays, estimate_effects,
                                         model_matrix, recording_fits)
from causal_hcc.errors import TimeZeroWarning
from causal_hcc.identification import judge_estimates, row_weights
from causal_hcc.matching import MatchedSample, match_patients
from causal_hcc.propensity import (PropensityModel, fit_propensity)
from causal_hcc.weighting import compute_weights



#: Largest patients x censoring jump columns of the AIPW augmentation
#: (:func:`causal_hcc.effects.aipw.augmentation_cells`: about two columns per distinct
#: censoring time before the last landmark). Its time is about proportional (a few
#: seconds per 2e7 cells), its memory bounded (rows are taken in blocks), so beyond this
#: the AIPW is skipped with a note for time, not memory.
AIPW_MAX_CELLS = 5e7
#: Largest patients x random row orders of the order spread (order_spread_k), per
#: estimand: each order is a full greedy matching of every patient, about 7 s per million
#: patient-orders (measured at 20,000 patients x 200 orders, where the former bound of 4e6
#: let it take a minute), so beyond this the spread is skipped with a note, as the AIPW
#: beyond AIPW_MAX_CELLS: 2,500 patients at the default 200 orders.
ORDER_SPREAD_MAX_ROWS = 5e5


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
    aipw: AIPWResult | None = None
    #: ``{(method, estimand head): (weights, strata)}`` of the matching rows beyond the
    #: standard ``psm`` ATT (psm ATC, exact, cem, subclass): identification.row_weights extra.
    matching_weights: dict = field(default_factory=dict)
    #: identification.Identification per estimate; the primary (method, estimand) and why.
    identification: tuple = ()
    primary: tuple | None = None
    primary_reason: str = ""

    def residual_imbalance(self) -> pd.DataFrame:
        """Every variable (level) above |SMD| 0.1 after each adjustment, over the PS
        covariates and all balance variables (:func:`causal_hcc.balance.residual_imbalance`)."""
        return residual_imbalance(self.balance)

    def primary_estimate(self):
        """The primary EffectEstimate (None when no estimand qualified)."""
        return next((e for e in self.estimates if self.primary is not None
                     and (e.method, e.estimand) == tuple(self.primary)), None)

    def curves_frame(self) -> pd.DataFrame:
        """``adjusted_curves.csv``: the (weighted) KM rows of each adjustment, then the AIPW
        rows (``method = "aipw"``, estimand ATE, with influence-function SEs and Wald CIs).
        The time column is named after the time unit (``months``, ``days``...)."""
        frames = [c.table.assign(method=c.method, estimand=c.estimand) for c in self.curves]
        if self.aipw is not None:
            frames.append(self.aipw.curve_rows().assign(estimand="ATE"))
        return pd.concat(frames, ignore_index=True)

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
        if self.aipw is not None:
            lines.append(_aipw_lines(self.aipw))
        lines += _identification_lines(self)
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _identification_lines(report: EffectsReport) -> list[str]:
    """Verdicts, the primary estimate and residual imbalance (EffectsReport.summary)."""
    lines = ["Identification (does every patient of the target population have a "
             "counterpart in the other arm?):"]
    lines += [f"  {e.method} {e.estimand or ''}: "
              + {True: "identified", False: "NOT identified", None: "no verdict"}[e.identified]
              + f". {e.identification_note}" for e in report.estimates]
    lines.append(f"Primary: {report.primary_reason}")
    residual = report.residual_imbalance()
    lines.append("Residual imbalance (|SMD| > 0.1 after adjustment, all balance variables): "
                 + ("none" if residual.empty else "; ".join(
                     f"{m}: " + ", ".join(f"{r.variable}{' = ' + r.level if r.level else ''} "
                                          f"{r.smd_after:+.2f}" for r in g.itertuples())
                     for m, g in residual.groupby("method", sort=False))) + ".")
    return lines


def _aipw_lines(aipw: AIPWResult) -> str:
    """The AIPW survival differences, one line (EffectsReport.summary)."""
    rows = [f"{r.time:g} {aipw.time_unit} {r.difference:+.3f} ({r.ci_lower_difference:+.3f} "
            f"to {r.ci_upper_difference:+.3f})" for r in aipw.table.itertuples()]
    return (f"Doubly robust (AIPW, ATE) survival difference {aipw.arm_labels[0]} - "
            f"{aipw.arm_labels[1]}, influence-function 95% CI: " + "; ".join(rows) + ".")


# ----------------------------------------------------------------------------- driver
def adjust(cohort: Cohort, covariates=None, *, caliper_sd: float | None = 0.2,
           ratio: int = 1, replace: bool = False, order: str = "largest",
           n_boot: int = 1000, seed: int = SEED, jobs: int = 1,
           landmarks=None, horizons=None, progress=None,
           dask_address: str | None = None, separation: str = "fail",
           aipw: bool = True, ties: str = "all",
           order_spread_k: int = 200, primary: str = "auto",
           on_preview=None) -> EffectsReport:
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
    separation : {"fail", "keep"}
        Bootstrap replicates whose PS model separates: counted as failed and left out of
        ``boot_ci_*`` (default), or kept; the CI over all replicates is reported beside it
        either way (:mod:`causal_hcc.effects.bootstrap`).
    aipw : bool
        Compute the doubly robust AIPW survival at the landmarks (``aipw``).
    ties : {"all", "matchit"}
        Tie rule of PSM (:func:`causal_hcc.matching.match_on_logit`): "all" (default) is
        order-free; "matchit" is MatchIt's greedy rule, where the row order breaks ties in
        the PS. With "all" the MatchIt-rule HR is recorded in the row's description.
    order_spread_k : int
        With ties="all": the HR of MatchIt's greedy rule over this many random row orders
        of both arms (:func:`causal_hcc.effects.matched.order_spread`, seeded by
        ``seed``), recorded in the psm rows' description and in ``settings``; 0 skips it.
        Skipped, with a note, when patients x K exceeds :data:`ORDER_SPREAD_MAX_ROWS`.
    primary : {"auto", "ATE", "ATT", "ATC", "ATO"}
        The primary IPTW estimand; "auto" takes the first identified one in that order
        (:mod:`causal_hcc.identification`); ``primary`` and ``primary_reason`` of the
        result say which and why.
    on_preview : callable, optional
        With ``n_boot > 0``: called once, before the bootstrap starts, with the report as
        it stands without it (no bootstrap CIs in the estimates and curves, no AIPW),
        e.g. to draw the figures that do not show the bootstrap while it runs. Everything
        else in it is what the returned report holds.

    Returns
    -------
    EffectsReport
    """
    if separation not in SEPARATION_RULES:
        raise ValueError(f"separation must be one of {SEPARATION_RULES}, not {separation!r}")
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
        warnings.warn(notes[-1] + " Show the analysis that avoids it (restriction to one "
                      "level, or a landmark).", TimeZeroWarning, stacklevel=2)
    propensity = fit_propensity(cohort, covariates)
    matched = match_patients(cohort, propensity, caliper_sd=caliper_sd, ratio=ratio,
                             replace=replace, order=order,
                             seed=seed if order == "random" else None, ties=ties)
    weights = {est: compute_weights(cohort, propensity, estimand=est, stabilized=stab)
               for est, stab in IPTW_ESTIMANDS}
    # One pass per variable for all five tables (the same numbers as one table at a time).
    balance = balance_tables(cohort, {"psm": matched,
                                      **{f"iptw_{k}": w for k, w in weights.items()}})
    # The treatment-only fits are recorded: the identification's leave-one-out influence
    # starts from them instead of refitting the same models.
    # The Cox arrays (and the design matrix) are built once for every row's fit.
    arrays = cohort_arrays(cohort, propensity.covariates)
    with recording_fits() as fits:
        estimates = estimate_effects(cohort, propensity, matched, weights, arrays=arrays)
    if tuple(propensity.covariates) != tuple(covariates):
        arrays = cohort_arrays(cohort, covariates)
    time, event, tx, design = arrays
    cox_arrays = (time, event, *model_matrix(tx, design, False, cohort.roles.treatment))
    del arrays, design
    opts = BootOptions(caliper_sd, ratio, replace, order, tuple(landmarks), tuple(horizons),
                       ties)
    # Everything that does not depend on the bootstrap comes first, so that on_preview can
    # be handed the bootstrap-free report before the bootstrap starts. The matching rows
    # (PSM for the ATC, the stratum methods) are added after the rows the bootstrap covers
    # (it re-matches for the ATT only: its "psm" replicates are attached to the first
    # n_base rows, never to these).
    n_base = len(estimates)
    order_note = None
    if ties == "all" and order_spread_k and cohort.n * order_spread_k > ORDER_SPREAD_MAX_ROWS:
        order_note = (f"Order spread of greedy PSM not computed: {cohort.n} patients x "
                      f"{order_spread_k} random row orders exceed {ORDER_SPREAD_MAX_ROWS:.0e} "
                      "(each order is a full greedy matching); pass a smaller "
                      "order_spread_k to compute it.")
        order_spread_k = 0
    with recording_fits() as more_fits:
        estimates, more_weights, spreads = _matching_rows(
            cohort, propensity, matched, estimates, ties=ties, caliper_sd=caliper_sd,
            ratio=ratio, replace=replace, order=order, seed=seed, spread_k=order_spread_k,
            arrays=cox_arrays)
    del cox_arrays
    estimates, verdicts, _, primary_row, primary_reason = judge_estimates(
        cohort, propensity, estimates, row_weights(matched, weights, more_weights), primary,
        fits=fits + more_fits)
    del fits, more_fits
    curve_parts, curve_notes = [], []
    for method, estimand, w, key in (("psm", "ATT", matched.weights, "psm_curves"),
                                     ("iptw", "ATE", weights["ATE"].weights, "iptw_curves")):
        arms, values = curve_stats(time, event, tx, w, opts.landmarks, opts.horizons,
                                    (cohort.labels.treated, cohort.labels.control))
        curve_parts.append((method, estimand, key, arms, values))
        curve_notes += _follow_up_notes(time, tx == 1, w > 0, opts.landmarks, opts.horizons,
                                        unit, f"the {method.upper()} ({estimand}) curves")
    settings = {"caliper_sd": caliper_sd, "sd_denominator": matched.sd_denominator,
                "ratio": ratio, "replace": replace, "order": order, "n_boot": n_boot,
                "seed": seed, "ties": "efron", "landmarks": list(landmarks),
                "rmst_horizons": list(horizons), "boot_separation": separation,
                "aipw": bool(aipw), "matching_ties": ties,
                "order_spread_k": order_spread_k if ties == "all" else 0,
                "order_spread": spreads, "primary": primary}

    def curves_with(reps):
        curves = []
        for method, estimand, key, arms, values in curve_parts:
            boot = None
            if reps and not (replace and method == "psm"):
                boot = np.array([[v[2] for v in r[key].values()] if key in r
                                 else [np.nan] * len(values) for r in reps])
                boot[~accepted(reps, separation)] = np.nan
            curves.append(AdjustedCurves(method, estimand, arms[0], arms[1],
                                         curves_table(values, boot, unit)))
        return tuple(curves)

    def report(estimates, curves, notes, aipw_result):
        return EffectsReport(cohort.label, covariates, propensity, matched, weights, balance,
                             estimates, curves, settings, tuple(notes),
                             cohort.labels.comparison,
                             (cohort.labels.treated, cohort.labels.control), unit,
                             cohort.n_excluded, aipw_result, more_weights,
                             identification=verdicts, primary=primary_row,
                             primary_reason=primary_reason)

    def notes_after(boot_notes):
        return [*notes, *boot_notes, *([order_note] if order_note else []),
                f"Primary estimate: {primary_reason}", *curve_notes]

    if on_preview is not None and n_boot > 0:
        on_preview(report(estimates, curves_with([]), notes_after([]), None))
    reps = bootstrap(cohort, covariates, n_boot=n_boot, seed=seed, opts=opts, jobs=jobs,
                     progress=progress, dask_address=dask_address) if n_boot > 0 else []
    boot_notes = []
    if reps:
        estimates = tuple(
            attach_boot(e, reps, "psm" if e.method == "psm" else f"iptw_{e.estimand}",
                        separation=separation, replace=replace and e.method == "psm")
            if i < n_base and e.estimable and e.method in ("psm", "iptw") else e
            for i, e in enumerate(estimates))
        n_sep = sum(bool(r.get("separated")) for r in reps)
        boot_notes.append("Bootstrap CIs: percentile; PS refitted and patients re-matched / "
                          "re-weighted in every replicate. " + (
                              f"{n_sep} of {len(reps)} replicates had a separated PS model "
                              "(a covariate level in one arm only, or |logit PS| > 15): "
                              + ("counted as failed and left out of the CIs (boot_ci_all_*: "
                                 "with them)." if separation == "fail" else "kept in the CIs.")
                              if n_sep else "No replicate had a separated PS model."))
        if replace:
            boot_notes.append(f"PSM: {REPLACE_NOTE}.")
    notes = notes_after(boot_notes)
    aipw_result = _aipw(cohort, covariates, opts.landmarks, notes) if aipw else None
    return report(estimates, curves_with(reps), notes, aipw_result)


def _matching_rows(cohort, propensity, matched, estimates, *, ties, caliper_sd, ratio,
                   replace, order, seed, spread_k, arrays=None):
    """Estimates with the psm ATC row and the exact / cem / subclass rows appended (and the
    MatchIt-rule HR and order spread in the psm rows' descriptions when ties="all");
    returns (estimates, {(method, estimand head): (weights, strata)}, order spreads).
    ``arrays``: (time, event, treatment column, its name) of the Cox fits, built once."""
    # Imported here: causal_hcc.effects.matched imports the effects package.
    from causal_hcc.effects.matched import (greedy_note, order_spread, psm_atc_row,
                                             strata_rows)
    spreads = {}
    out = list(estimates)
    atc_order = "smallest" if order in (None, "largest") else order   # MatchIt's ATC default
    spread = {}
    if ties == "all" and spread_k:
        spread = {est: order_spread(cohort, propensity, estimand=est, k=spread_k, seed=seed,
                                    caliper_sd=caliper_sd, ratio=ratio)
                  for est in ("ATT", "ATC")}
        spreads = {est: s.to_dict() for est, s in spread.items()}
    if ties == "all":
        for i, e in enumerate(out):
            if e.method == "psm" and e.estimable:
                out[i] = replace_field(e, description=e.description + greedy_note(
                    cohort, propensity, matched, spread.get("ATT"), arrays=arrays))
    m_atc, row = psm_atc_row(cohort, propensity, ties=ties, caliper_sd=caliper_sd,
                             ratio=ratio, replace=replace, order=atc_order,
                             seed=seed if order == "random" else None,
                             spread=spread.get("ATC"), arrays=arrays)
    out.append(row)
    extra = {}
    if m_atc is not None:
        extra[("psm", "ATC")] = (np.asarray(m_atc.weights, float), None)
    samples, rows = strata_rows(cohort, propensity, arrays=arrays)
    out += rows
    extra.update({(m, e): (np.asarray(s.weights, float), np.asarray(s.subclass))
                  for (m, e), s in samples.items()})
    return tuple(out), extra, spreads


def _aipw(cohort: Cohort, covariates, landmarks, notes: list) -> AIPWResult | None:
    """AIPW survival at the landmarks on the adjustment's covariates (its notes joined to
    ``notes``); None, with a note, when it cannot be computed."""
    if not landmarks:
        return None
    cells = augmentation_cells(cohort.time, cohort.event, landmarks)
    if cells > AIPW_MAX_CELLS:
        notes.append(f"AIPW survival not computed: {cohort.n} patients x "
                     f"{cells // cohort.n} censoring jump columns (distinct censoring times "
                     f"before the last landmark, tied ones twice) exceed "
                     f"{AIPW_MAX_CELLS:.0e} cells of the augmentation term (run "
                     "causal_hcc.effects.aipw.aipw_survival directly to compute it; its "
                     "time grows with the cells).")
        return None
    sub = cohort.with_roles(covariates=tuple(covariates))
    # The PS model's warnings were raised by adjust's own fit; the AIPW's own statistical
    # warnings become notes of the report.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = aipw_survival(sub, landmarks)
        except (ValueError, np.linalg.LinAlgError) as exc:
            notes.append(f"AIPW survival not computed: {' '.join(str(exc).split())}")
            return None
    notes += list(dict.fromkeys(f"AIPW: {' '.join(str(w.message).split())}" for w in caught
                                if "propensity" not in str(w.message).lower()))
    notes += [f"AIPW: {n}" for n in result.notes]
    return result


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
