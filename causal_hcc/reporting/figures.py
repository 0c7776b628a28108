"""Which figures each stage's results make, with their file stems and captions.

Each function returns ``{stem: (Figure, caption)}`` in reading order. Stems are generic
(``km_by_arm``); a study profile may rename them and number them after its paper
(:attr:`StudyExtras.figure_names`) and add its own figures (:attr:`StudyExtras.figures`).
"""

from __future__ import annotations

import re

import numpy as np

from causal_hcc.reporting import narrative, plots
from causal_hcc.reporting.content import NO_STUDY


def risk_times_for(curves, time_unit: str) -> np.ndarray:
    """Number-at-risk times: every year in months (every 6 months under 3 years), else a
    round step of the unit."""
    horizon = max((float(k.time.max()) for k in curves if k.time.size), default=1.0)
    if time_unit == "months":
        step = 12.0 if horizon > 36 else 6.0
    elif time_unit == "weeks":
        step = 52.0 if horizon > 156 else 13.0 if horizon > 39 else plots.nice_step(horizon)
    else:
        step = plots.nice_step(horizon)
    return np.arange(0.0, horizon + 1e-9, step)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


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
        figs[stem] = (plots.plot_km(curves, log_rank=test, title=caption,
                                    risk_times=risk_times_for(curves, lab.time_unit), **kw),
                      caption)
    figs.update(study.figures)
    return figs


def adjust_figures(effects, labels, *, study=NO_STUDY) -> dict:
    """Love plot, PS overlap (before, matched), weights, forest plot, adjusted KM curves."""
    prov, arms = effects.label, tuple(effects.arm_labels)
    figs = {
        "ps_overlap": (plots.plot_overlap(effects.propensity, arm_labels=arms, provenance=prov),
                       "PS overlap before adjustment"),
        "ps_overlap_matched": (plots.plot_overlap(effects.propensity, weights=effects.matched,
                                                  arm_labels=arms, provenance=prov,
                                                  title="Propensity score overlap, matched"),
                               "PS overlap, matched sample"),
        "weights": (plots.plot_weights(effects.weights, arm_labels=arms, provenance=prov),
                    "Weight distribution per estimand"),
        "love_plot": (plots.plot_love(effects.balance, provenance=prov),
                      "Love plot: |SMD| before and after each method"),
        "forest_plot": (plots.plot_forest(effects.estimates, provenance=prov,
                                          comparison=effects.comparison,
                                          published=study.published_hr),
                        f"HR by method, {effects.comparison} (dashed: bootstrap CI)"),
    }
    for c in effects.curves:
        caption = f"Adjusted Kaplan-Meier ({c.method}, {c.estimand})"
        curves = [c.treated, c.control]
        figs[f"adjusted_km_{c.method}_{str(c.estimand).lower()}"] = (plots.plot_km(
            curves, provenance=prov, title=caption, xlabel=labels.time_axis,
            ylabel=narrative.survival_axis(labels),
            risk_times=risk_times_for(curves, labels.time_unit)), caption)
    return figs


def sensitivity_figures(sensitivity, comparison: str = "") -> dict:
    """Specification curve, tipping points and subgroups, for what the report holds."""
    figs = {}
    prov = getattr(sensitivity, "label", "")
    comparison = comparison or getattr(getattr(sensitivity, "effects", None), "comparison", "")
    grid = getattr(sensitivity, "grid", None)
    if grid is not None and len(getattr(grid, "estimable_rows", ())):
        figs["specification_curve"] = (plots.plot_specification_curve(
            grid, provenance=prov, comparison=comparison),
            "Specification curve: HR across analytic choices (sorted), with the choices "
            "marked below")
    contour = getattr(sensitivity, "tipping_contour", None)
    if contour is not None:
        figs["tipping_point"] = (plots.plot_tipping_point(
            contour, benchmarks=getattr(sensitivity, "benchmarks", None), provenance=prov),
            "Unmeasured-confounder tipping points, with the observed confounders for "
            "comparison")
    subgroups = getattr(sensitivity, "subgroups", None)
    if subgroups is not None and getattr(subgroups, "estimates", ()):
        figs["subgroups"] = (plots.plot_subgroups(subgroups, provenance=prov,
                                                  comparison=comparison or
                                                  "treated vs control (reference)"),
                             f"HR within the levels of {subgroups.variable}, with the "
                             "interaction tests")
    return figs
