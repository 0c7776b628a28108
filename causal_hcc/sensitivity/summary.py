"""Plain-text summary of a SensitivityReport: what the analyses say about the claim.

Each ``summary_*`` function turns one part of a
:class:`~causal_hcc.sensitivity.analysis.SensitivityReport` (passed as ``r``) into
sentences; :func:`sensitivity_summary` joins them into the text of
``SensitivityReport.summary()`` and :func:`summary_conclusion` gives the closing sentences
(``SensitivityReport.plain_sentences()``). Text only: nothing here computes an estimate.
"""

from __future__ import annotations

import math

from causal_hcc.sensitivity.effect_rows import landmark_label
from causal_hcc.sensitivity.grid import BALANCE_THRESHOLD
from causal_hcc.sensitivity.grid_summary import grid_by_estimand_lines

METHOD_LABELS = {"crude": "crude Cox", "multivariable": "multivariable Cox",
                 "psm": "PSM", "psm_stratified": "PSM, stratified on matched set",
                 "iptw": "IPTW",
                 "weighted_cox_adjusted": "covariate-adjusted weighted Cox (conditional HR)",
                 "restricted_crude": "Cox in the restricted stratum",
                 "restricted_adjusted": "adjusted Cox in the restricted stratum"}


def hr_text(hr, lo, hi, p=None) -> str:
    """``HR 0.52 (95% CI 0.30-0.91, P 0.02)``; the P value only when given and finite."""
    text = f"HR {hr:.2f} (95% CI {lo:.2f}-{hi:.2f}"
    return text + (f", P {p:.3g})" if p is not None and math.isfinite(p) else ")")


def ci_excludes_1(lo, hi) -> bool:
    """Whether the interval [lo, hi] lies wholly below or above 1."""
    return hi < 1 or lo > 1


def sensitivity_summary(r) -> str:
    """The text of ``SensitivityReport.summary()``: every part, then what was not run."""
    treated = r.comparison.split(" vs ")[0]
    lines = [r.label,
             f"Sensitivity analyses of {r.comparison}; HR < 1 favours {treated}."]
    lines += summary_effects(r) + summary_time_zero(r) + summary_grid(r) + summary_evalues(r)
    if r.evalues:
        lines.append(f"Outcome proportion for the E-values: {r.evalues[0].conversion_reason}.")
    lines += summary_tipping(r) + summary_immortal(r) + summary_subgroups(r)
    lines += summary_extras(r) + summary_conclusion(r)
    for name, reason in r.unavailable.items():
        lines.append(f"Not run: {name}: {reason}")
    if r.notes:
        lines.append(f"{len(r.notes)} notes (warnings raised inside the analyses) are listed "
                     "in the report's notes.")
    return "\n".join(lines)


def summary_effects(r) -> list[str]:
    crude = r.estimate("crude")
    out = [f"Crude: {hr_text(crude.hr, crude.ci_lower, crude.ci_upper, crude.p_value)}."]
    try:
        p = r.estimate(*r.primary)
    except KeyError:
        return out + [f"Primary adjusted estimate {r.primary}: not in the effects report."]
    if p.estimable:
        ess = (f"; effective sample size {p.ess_treated:.1f} treated / {p.ess_control:.1f} "
               "control" if p.ess_treated is not None else "")
        out.append(f"Primary adjusted ({METHOD_LABELS.get(p.method, p.method)}"
                   f"{' ' + p.estimand if p.estimand else ''}): "
                   f"{hr_text(p.hr, p.ci_lower, p.ci_upper, p.p_value)}{ess}.")
    else:
        out.append(f"Primary adjusted ({p.method} {p.estimand}): not estimable ({p.reason}).")
    adjusted = [e for e in r.effects.estimates if e.method != "crude" and e.estimable]
    excl = [e for e in adjusted if ci_excludes_1(e.ci_lower, e.ci_upper)]
    out.append(f"Adjusted estimates of the effects report: the 95% CI excludes 1 in "
               f"{len(excl)} of {len(adjusted)} (HRs from {min(e.hr for e in adjusted):.2f} "
               f"to {max(e.hr for e in adjusted):.2f})." if adjusted else
               "No adjusted estimate of the effects report is estimable.")
    return out


def summary_grid(r) -> list[str]:
    g = r.grid
    if g is None:
        return []
    c = g.ci_counts()
    return [f"Specification grid ({c['n_specifications']} specifications, "
            f"{c['n_estimable']} estimable): {g.headline()} HR median {c['hr_median']:.2f}, "
            f"range {c['hr_min']:.2f}-{c['hr_max']:.2f}. "
            + g.headline(max_smd=BALANCE_THRESHOLD), g.denominator_text(),
            *grid_by_estimand_lines(g.rows)]


def summary_evalues(r) -> list[str]:
    """E-values of the crude and the primary HR, from the Wald CI and, when bootstrapped,
    from the bootstrap CI; the numbers are given whether the outcome is common or rare."""
    out = []
    for rec in r.evalues:
        if rec.measure != "HR" or not rec.estimable:
            continue
        if rec.method == "crude" or (rec.method, rec.estimand) == tuple(r.primary):
            how = ("common outcome, HR converted to a risk ratio"
                   if rec.outcome_conversion == "common" else
                   f"{rec.outcome_conversion} outcome, HR used as the risk ratio")
            boot = ("" if rec.evalue_ci_boot is None else
                    f", {rec.evalue_ci_boot:.2f} for the bootstrap CI "
                    f"({rec.boot_ci_lower:.2f}-{rec.boot_ci_upper:.2f})")
            out.append(f"E-value, {METHOD_LABELS.get(rec.method, rec.method)}"
                       f"{' ' + rec.estimand if rec.estimand else ''} HR {rec.hr:.2f}: "
                       f"{rec.evalue_point:.2f} for the point estimate, {rec.evalue_ci:.2f} "
                       f"for the Wald CI{boot} ({how}).")
    return out


def summary_time_zero(r) -> list[str]:
    """Post-baseline covariates: the flags, and the analysis restricted to level 0."""
    out = [f"Time zero: {flag}" for flag in getattr(r, "time_zero_flags", ())]
    out += [a.sentence() for a in getattr(r, "restricted", ())]
    return out


def summary_tipping(r) -> list[str]:
    out = []
    for t in r.tipping_points:
        if not t.estimable or t.benchmarks is None:
            continue
        table = t.benchmarks.table
        hits = table[table["ci_includes_1"].astype(bool) & table["estimable"].astype(bool)]
        already = t.ci_lower <= 1 <= t.ci_upper
        if already:
            out.append(f"Benchmarks ({t.name} HR {t.hr:.2f}): its CI already includes 1.")
            continue
        named = sorted(set(f"{x.confounder} ({x.imbalance})" for x in hits.itertuples()))
        out.append(f"Benchmarks ({t.name} HR {t.hr:.2f}, CI {t.ci_lower:.2f}-"
                   f"{t.ci_upper:.2f}): an unmeasured binary confounder as strong and as "
                   "imbalanced as "
                   + (", ".join(named) + " would move the CI to include 1." if named else
                      "any single observed confounder would not move the CI to include 1."))
    return out


def summary_immortal(r) -> list[str]:
    out = []
    if r.landmark is not None:
        parts = []
        unit = r.settings.get("time_unit", "months")
        for d in r.landmark.datasets:
            rows = [x for x in r.landmark.rows
                    if x.analysis == landmark_label(d.landmark_months, unit)]
            parts.append(f"at {d.landmark_months:g} {unit} ({d.n} alive, "
                         f"{d.n_treated_by_landmark} treated by then) " + ", ".join(
                             f"{model_short(x.model)} " + (
                                 f"{x.hr:.2f} ({x.ci_lower:.2f}-{x.ci_upper:.2f})"
                                 if x.estimable else "not estimable") for x in rows))
        out.append("Landmark analyses (HR, treated = treatment started by the "
                   "landmark): " + "; ".join(parts) + ".")
    if r.time_varying is not None:
        parts = [f"{x.model}: " + (f"{x.hr:.2f} ({x.ci_lower:.2f}-{x.ci_upper:.2f})"
                                   if x.estimable else "not estimable")
                 for x in r.time_varying.rows]
        out.append("Treatment as a time-varying covariate: " + "; ".join(parts) + ".")
    return out


def model_short(model: str) -> str:
    """Short name of a landmark or time-varying row's model: crude, adjusted, or the hook's."""
    if model.startswith("adjust hook: "):
        return model.split(",")[0].replace("adjust hook: ", "")
    return "adjusted" if model.startswith("adjusted") else model


def summary_subgroups(r) -> list[str]:
    out = []
    for s in r.subgroup_analyses or ((r.subgroups,) if r.subgroups is not None else ()):
        parts = [f"{e.subgroup} {e.method}: " + (
            f"{e.hr:.2f} ({e.ci_lower:.2f}-{e.ci_upper:.2f})" if e.estimable
            else "not estimable") for e in s.estimates]
        inter = [f"{t.model} P {t.p_value:.2f}" if t.estimable else f"{t.model} not estimable"
                 for t in s.interactions]
        out.append(f"Subgroups by {s.variable}: " + "; ".join(parts) + ". Interaction "
                   f"(treatment x {s.variable}): " + ", ".join(inter) + ".")
    return out


def summary_extras(r) -> list[str]:
    """One or more sentences per extra stage (its ``sentences()``, else its headline)."""
    out = []
    for name, result in r.extras.items():
        if hasattr(result, "sentences"):
            out += list(result.sentences())
        else:
            out.append(f"{name}: " + result.summary().splitlines()[0])
    return out


def summary_conclusion(r) -> list[str]:
    """"What this says about the claim:" then one "- " sentence per finding."""
    out = ["What this says about the claim:"]
    crude = r.estimate("crude")
    if crude.estimable:
        verb = "excludes" if ci_excludes_1(crude.ci_lower, crude.ci_upper) else "includes"
        out.append(f"- Unadjusted, the HR is {crude.hr:.2f} and its 95% CI {verb} 1.")
    try:
        p = r.estimate(*r.primary)
    except KeyError:
        p = None
    if p is not None and p.estimable:
        verb = "excludes" if ci_excludes_1(p.ci_lower, p.ci_upper) else "includes"
        out.append(f"- After the primary adjustment the HR is {p.hr:.2f} and its 95% CI "
                   f"{verb} 1.")
    if r.grid is not None:
        c = r.grid.ci_counts()
        b = r.grid.ci_counts(max_smd=BALANCE_THRESHOLD)
        if c["n_estimable"]:
            share = c["n_ci_excludes_1"] / c["n_estimable"]
            out.append(f"- Across analytic choices the CI excludes 1 in {share:.0%} of "
                       f"estimable specifications ({c['n_ci_excludes_1']} of "
                       f"{c['n_estimable']}); among those balanced to max |SMD| <= "
                       f"{BALANCE_THRESHOLD:g}, in {b['n_ci_excludes_1']} of "
                       f"{b['n_estimable']}.")
    t = next((t for t in r.tipping_points if t.name == "crude" and t.benchmarks is not None),
             None)
    if t is not None:
        table = t.benchmarks.table
        hits = table[table["ci_includes_1"].astype(bool) & table["estimable"].astype(bool)
                     & (table["imbalance"] == "as observed")]
        if len(hits):
            out.append("- A single unmeasured confounder no stronger and no more imbalanced "
                       f"than the observed {', '.join(sorted(set(hits['confounder'])))} "
                       "would be enough to move the crude CI to include 1.")
    if r.time_varying is not None:
        rows = [x for x in r.time_varying.rows if x.estimable]
        if rows:
            out.append("- With treatment counted from its start (no immortal time): "
                       + "; ".join(f"{model_short(x.model)} HR {x.hr:.2f}, CI "
                                   + ("excludes" if ci_excludes_1(x.ci_lower, x.ci_upper)
                                      else "includes") + " 1" for x in rows) + ".")
    if r.settings.get("reconstructed"):
        out.append("- These numbers come from the reconstructed pseudo-cohort: they show what "
                   "the published aggregates are compatible with, not the study's "
                   "patient-level results.")
    return out
