"""Which figures each stage's results make, with their file stems and captions.

Each function returns ``{stem: (builder, caption)}`` in reading order, where ``builder``
is a callable of no arguments that makes the matplotlib Figure (or, for a study's own
figures, the Figure itself). Nothing is drawn until :func:`causal_hcc.reporting.render.
render_figures` calls the builders of the figures asked for: ``--formats none`` builds
none. Stems are generic (``km_by_arm``); a study profile may rename them and number them
after its paper (:attr:`StudyExtras.figure_names`) and add its own figures
(:attr:`StudyExtras.figures`).

Stems: crude ``km_overall``, ``km_by_arm``, ``km_<subgroup>``; adjust ``ps_overlap``,
``ps_overlap_matched``, ``ps_overlap_weighted`` (a panel per IPTW estimand), ``weights``,
``love_plot``, ``forest_plot``, ``adjusted_km_<method>_<estimand>``; sensitivity
``specification_curve``, ``tipping_point``, ``subgroups``.
"""

from __future__ import annotations

import re
from functools import partial

import numpy as np

from causal_hcc.reporting import narrative
from causal_hcc.reporting.content import NO_STUDY


def _nice_step(horizon: float) -> float:
    # imported here: curves_plots loads matplotlib, which --formats none never needs
    from causal_hcc.reporting.curves_plots import nice_step
    return nice_step(horizon)


def risk_times_for(curves, time_unit: str) -> np.ndarray:
    """Number-at-risk times: every year in months (every 6 months under 3 years), else a
    round step of the unit."""
    horizon = max((float(k.time.max()) for k in curves if k.time.size), default=1.0)
    if time_unit == "months":
        step = 12.0 if horizon > 36 else 6.0
    elif time_unit == "weeks":
        step = 52.0 if horizon > 156 else 13.0 if horizon > 39 else _nice_step(horizon)
    else:
        step = _nice_step(horizon)
    return np.arange(0.0, horizon + 1e-9, step)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _plots():
    # matplotlib is imported only when a figure is built: runs with --formats none
    # never load it.
    from causal_hcc.reporting import plots
    return plots


def _km(curves, **kw):
    return _plots().plot_km(curves, **kw)


def crude_figures(crude, cohort, *, ci: bool = False, study=NO_STUDY) -> dict:
    """KM of the whole cohort, by arm, and by arm within each subgroup level.

    ``ci`` shades the pointwise 95% CI bands of each curve.
    """
    lab = cohort.labels
    kw = {"provenance": crude.label, "ci": ci, "xlabel": lab.time_axis,
          "ylabel": narrative.survival_axis(lab)}
    arms_text = f"{lab.treated} vs {lab.control}"
    made = {"km_overall": ([crude.arms.overall], None,
                           "Kaplan-Meier, whole cohort"),
            "km_by_arm": (crude.arms.curves, crude.arms.log_rank,
                          f"Kaplan-Meier by arm: {arms_text}")}
    for group in crude.subgroups:
        where = group.description.split(":")[0]
        made[f"km_{_slug(where)}"] = (group.curves, group.log_rank,
                                      f"Kaplan-Meier by arm, {where}: {arms_text}")
    figs = {}
    for stem, (curves, test, caption) in made.items():
        stem, caption = study.figure_names.get(stem, (stem, caption))
        figs[stem] = (partial(_km, curves, log_rank=test, title=caption,
                              risk_times=risk_times_for(curves, lab.time_unit), **kw),
                      caption)
    figs.update(study.figures)
    return figs


def _ess(weights, treated) -> str:
    from causal_hcc.weighting import effective_sample_size
    w, t = np.asarray(weights, float), np.asarray(treated) == 1
    return (f"ESS treated {effective_sample_size(w[t & (w > 0)]):.1f}, "
            f"control {effective_sample_size(w[~t & (w > 0)]):.1f}")


def _overlap(effects, weights, title):
    return _plots().plot_overlap(effects.propensity, weights=weights,
                                 arm_labels=tuple(effects.arm_labels),
                                 provenance=effects.label, title=title)


def _balance_summary(effects, labels):
    """The long balance summary of the methods of ``effects.balance`` (PSM and IPTW per
    estimand): ``causal_hcc.balance.balance_summary`` where the package has it, else the
    same frame from the effects' BalanceTables."""
    from causal_hcc import balance
    from causal_hcc.reporting.balance_plots import summary_from_tables
    make = getattr(balance, "balance_summary", None)
    if make is None:
        return summary_from_tables(effects.balance)
    return make(effects, labels=labels)


def _love(effects, labels):
    return _plots().plot_love(_balance_summary(effects, labels), provenance=effects.label)


def _curve_weights(effects, curve):
    """The weights a curve was built with (None if the method is not known here)."""
    if curve.method == "psm":
        return effects.matched.weights
    if curve.method == "iptw" and curve.estimand in effects.weights:
        return effects.weights[curve.estimand].weights
    return None


def _adjusted_km(effects, cohort, curve, caption, labels):
    from causal_hcc.reporting.curves_plots import patient_counts
    curves = [curve.treated, curve.control]
    times = risk_times_for(curves, labels.time_unit)
    w = _curve_weights(effects, curve)
    counts = None
    if w is not None and cohort is not None:
        tx = cohort.treated == 1
        counts = [patient_counts(cohort.time[arm], cohort.event[arm],
                                 np.asarray(w, float)[arm], times) for arm in (tx, ~tx)]
    return _km(curves, provenance=effects.label, title=caption, ci=True,
               xlabel=labels.time_axis, ylabel=narrative.survival_axis(labels),
               risk_times=times, counts=counts)


def adjust_figures(effects, cohort, *, study=NO_STUDY) -> dict:
    """Love plot, PS overlap (before, matched, under each IPTW estimand), weights, forest plot,
    adjusted KM curves.

    ``cohort`` (the analysed Cohort) gives the adjusted curves' risk tables the patients
    beside the weighted sums; a ``Labels`` object alone is accepted (weighted sums only).
    """
    labels = getattr(cohort, "labels", cohort)
    cohort = cohort if hasattr(cohort, "labels") else None
    prov = effects.label
    m = effects.matched
    figs = {
        "ps_overlap": (partial(_overlap, effects, None, "Propensity score overlap, "
                               "before adjustment"), "PS overlap before adjustment"),
        "ps_overlap_matched": (partial(_overlap, effects, m, "Propensity score overlap, "
                                       f"matched ({m.estimand}; {_ess(m.weights, m.treated)})"),
                               "PS overlap, matched sample"),
    }
    panels = {f"IPTW {estimand} ({_ess(w.weights, w.treated)})": w
              for estimand, w in effects.weights.items()}
    figs["ps_overlap_weighted"] = (
        lambda: _plots().plot_overlap_panels(effects.propensity, panels,
                                             arm_labels=tuple(effects.arm_labels),
                                             provenance=prov),
        ("PS overlap under each IPTW estimand's weights (outline) over the unweighted "
         "distribution, with the effective sample size per arm"))
    plots_kw = {"provenance": prov}
    figs["weights"] = (lambda: _plots().plot_weights(effects.weights,
                                                     arm_labels=tuple(effects.arm_labels),
                                                     **plots_kw),
                       "Weight distribution per estimand")
    figs["love_plot"] = (partial(_love, effects, labels),
                         "Love plot: |SMD| before and after each method, and variance ratios")
    figs["forest_plot"] = (lambda: _plots().plot_forest(
        effects.estimates, comparison=effects.comparison, published=study.published_hr,
        **plots_kw), f"HR by method, {effects.comparison} (dashed: bootstrap CI)")
    for c in effects.curves:
        caption = f"Adjusted Kaplan-Meier ({c.method}, {c.estimand})"
        figs[f"adjusted_km_{c.method}_{str(c.estimand).lower()}"] = (
            partial(_adjusted_km, effects, cohort, c, caption, labels), caption)
    return figs


def crude_contour(sensitivity, contour):
    """The primary contour's twin for the crude HR (same HR_U values and target), or
    None when the report has no estimable crude HR."""
    from causal_hcc.sensitivity.unmeasured import tipping_point_contour
    effects = getattr(sensitivity, "effects", None)
    crude = next((e for e in getattr(effects, "estimates", ()) if e.method == "crude"
                  and e.estimable), None)
    if crude is None or contour is None or "hr_u" not in contour.table:
        return None
    hr_u = sorted(set(contour.table["hr_u"].astype(float)))
    out = tipping_point_contour(crude.hr, crude.ci_lower, crude.ci_upper, hr_u,
                                target=contour.target)
    if contour.target == "ci" and not out.table["feasible"].any():
        out = tipping_point_contour(crude.hr, crude.ci_lower, crude.ci_upper, hr_u,
                                    target="point")
    return out


#: Stem of the scaled Schoenfeld-residual figure of the report's PH checks.
PH_FIGURE = "ph_schoenfeld"


def _schoenfeld(checks, **kw):
    from causal_hcc.reporting.ph_plots import plot_schoenfeld
    return plot_schoenfeld(checks, **kw)


def ph_figures(checks, time_label: str, provenance: str = "") -> dict:
    """The scaled Schoenfeld residuals of the PH checks
    (:func:`causal_hcc.effects.ph.ph_checks`), one panel per model; none without checks."""
    if not checks:
        return {}
    return {PH_FIGURE: (partial(_schoenfeld, checks, time_label=time_label,
                                provenance=provenance), "Scaled Schoenfeld residuals")}


def sensitivity_figures(sensitivity, comparison: str = "") -> dict:
    """Specification curve, tipping points (adjusted and crude) and subgroups, for what
    the report holds."""
    figs = {}
    prov = getattr(sensitivity, "label", "")
    comparison = comparison or getattr(getattr(sensitivity, "effects", None), "comparison", "")
    grid = getattr(sensitivity, "grid", None)
    if grid is not None and len(getattr(grid, "estimable_rows", ())):
        figs["specification_curve"] = (lambda: _plots().plot_specification_curve(
            grid, provenance=prov, comparison=comparison),
            ("Specification curve: HR across analytic choices (sorted; grey: balanced "
             "specifications), the choices marked below and the median HR per level beside"))
    contour = getattr(sensitivity, "tipping_contour", None)
    if contour is not None:
        figs["tipping_point"] = (lambda: _plots().plot_tipping_point(
            contour, benchmarks=getattr(sensitivity, "benchmarks", None), provenance=prov,
            crude=crude_contour(sensitivity, contour)),
            ("Unmeasured-confounder tipping points for the adjusted HR and for the crude "
             "HR, with the observed confounders for comparison"))
    subgroups = getattr(sensitivity, "subgroups", None)
    if subgroups is not None and getattr(subgroups, "estimates", ()):
        figs["subgroups"] = (lambda: _plots().plot_subgroups(
            subgroups, provenance=prov,
            comparison=comparison or "treated vs control (reference)"),
            f"HR within the levels of {subgroups.variable}, with the interaction tests")
    return figs
