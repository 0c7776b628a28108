"""The reviewer's report as a list of sections, the answer first.

:func:`build_document` turns the results of every stage into
:class:`~causal_hcc.reporting.content.Section` objects that
:mod:`causal_hcc.reporting.html` renders. Order: the answer (verdict, estimand table,
forest plot), the summary in words, what cannot be estimated, balance, the PS model, the
adjusted curves, proportional hazards, the crude analyses, the sensitivity analyses, the
published-vs-reproduced table and a study's own sections (only when given), the data and
its checks, and the reporting checklist. Sections refer to figures by file stem; the
figures are drawn elsewhere (:mod:`causal_hcc.reporting.figures`).
"""

from __future__ import annotations

import pandas as pd

from causal_hcc.reporting import format as fmt
from causal_hcc.reporting import narrative
from causal_hcc.reporting.content import NO_STUDY, Block, Section, Table
from causal_hcc.reporting.figures import PH_FIGURE
from causal_hcc.reporting.sections_answer import (estimand_table, first_screen_frames,
                                                  verdict)
from causal_hcc.reporting.sections_checklist import checklist_table
from causal_hcc.reporting.sections_gaps import gaps, gaps_blocks
from causal_hcc.reporting.sections_sensitivity import sensitivity_blocks
from causal_hcc.reporting import sections_tables as tables

#: File stem of the proportional-hazards figure (reporting.ph_plots).


def _figure_blocks(captions) -> list[Block]:
    return [Block("figure", None, caption, stem) for stem, caption in captions]


def _answer(cohort, effects, rows, cannot, sensitivity, adjust_caps) -> Section:
    lab = cohort.labels
    blocks = [Block("banner", cohort.label)] if cohort.reconstructed else []
    blocks.append(Block("verdict", verdict(effects, cannot, sensitivity)))
    main = estimand_table(rows, first_screen=True)
    more = estimand_table(rows, first_screen=False)
    if len(more.frame):
        frame = pd.concat([main.frame, more.frame], ignore_index=True)
        classes = pd.concat([main.classes, more.classes], ignore_index=True)
        main = Table(frame, classes=classes,
                     row_classes=main.row_classes + more.row_classes,
                     folded=(False,) * len(main.frame) + (True,) * len(more.frame),
                     fold_summary=f"{len(more.frame)} more matching designs (exact, "
                                  "coarsened exact, subclassification)")
    blocks.append(Block("table", main, f"Hazard ratio of {narrative.outcome_name(lab)}, "
                                       f"{lab.comparison}, by method"))
    blocks.append(Block("note", (
        "T / C: treated / control. ESS: effective sample size (sum w)\u00b2 / sum w\u00b2 per "
        "arm. Worst |SMD|: largest over every covariate, in the PS model or not, after "
        "adjustment (before, for the crude row). Crude log HR kept: log HR / crude log HR "
        "(100% = all of the crude effect survives; negative = reversed). \u2605 primary: "
        + (effects.primary_reason or "none identified"))))
    blocks += _figure_blocks((s, adjust_caps[s]) for s in ("forest_plot",) if s in adjust_caps)
    return Section("The answer", tuple(blocks), anchor="answer")


def _balance(cohort, effects, balance, weights, adjust_caps, placed) -> Section:
    blocks = [Block("text", [
        "One row per covariate (a binary variable is one row, a categorical one row per "
        "level); SMD = difference in (weighted) means over an SD of the unadjusted sample, "
        "named in each column group; VR = variance ratio treated / control (continuous "
        "variables); |SMD| > 0.1 highlighted; \u2713 = in the PS model. balance.csv holds "
        "every number, including the other matching designs."]),
        Block("table", tables.balance_table(balance),
              "Balance before and after each adjustment (cobalt bal.tab style)")]
    ks = tables.ks_table(balance)
    if ks is not None:
        blocks.append(Block("table", ks, "Kolmogorov-Smirnov statistic (largest gap between "
                                         "the arms' weighted distribution functions)"))
    blocks.append(Block("table", tables.weights_table(weights, cohort.labels),
                        "Patients used, effective sample size (ESS) and weights per arm. "
                        "The sum of weights is not a head count; ESS below half the "
                        "patients used is highlighted."))
    stems = [s for s in adjust_caps if s not in placed and (
        s in ("love_plot", "weights") or "overlap" in s or "balance" in s or "love" in s)
        and not s.startswith("ps_overlap")]
    placed.update(stems)
    blocks += _figure_blocks((s, adjust_caps[s]) for s in stems)
    return Section("Balance and effective sample size", tuple(blocks), anchor="balance")


def _propensity(effects, adjust_caps, placed) -> Section:
    p = effects.propensity
    coef = p.coefficients
    frame = pd.DataFrame({
        "Term": coef["term"],
        "Log odds (95% CI)": [f"{fmt.format_number(e)} ({fmt.interval(lo, hi)})"
                              for e, lo, hi in zip(coef["estimate"], coef["ci_lower"],
                                                   coef["ci_upper"])],
        "P": coef["p_value"].map(lambda v: fmt.p_value(v, prefix=False))})
    lo, hi = p.common_support
    text = [f"Unpenalised logistic regression: {p.formula}. c-statistic "
            f"{p.c_statistic:.3f}; events per variable {p.events_per_variable:.1f}; "
            f"{'converged' if p.converged else 'NOT converged'}; separation: {p.separation}"
            + (f" ({', '.join(p.separated_covariates)})" if p.separated_covariates else "")
            + f". Common support {lo:.3f}\u2013{hi:.3f}: {len(p.outside_support_ids)} "
              "patients outside."] + [fmt.tidy_text(n) for n in p.notes]
    stems = [s for s in adjust_caps if s.startswith("ps_overlap") and s not in placed]
    placed.update(stems)
    return Section("Propensity-score model and overlap", (
        Block("text", text), Block("table", Table(frame, classes=pd.DataFrame(
            {"Term": "text", "Log odds (95% CI)": "num", "P": "num"}, index=frame.index))),
        *_figure_blocks((s, adjust_caps[s]) for s in stems)), anchor="propensity")


def _curves(cohort, effects, adjust_caps, placed) -> Section:
    lab = cohort.labels
    stems = [s for s in adjust_caps if s.startswith("adjusted_km") and s not in placed]
    placed.update(stems)
    blocks = _figure_blocks((s, adjust_caps[s]) for s in stems)
    blocks += [Block("table", tables.curves_table(c, lab.time_unit, lab),
                     narrative.curves_caption(c, lab.time_unit)) for c in effects.curves]
    aipw = getattr(effects, "aipw", None)
    if aipw is not None:
        t = aipw.table
        frame = pd.DataFrame({
            f"At ({lab.time_unit})": t["time"].map(fmt.time_point),
            "Difference in survival": t["difference"].map(fmt.percent),
            "95% CI": [f"{fmt.percent(a)} to {fmt.percent(b)}" for a, b in
                       zip(t["ci_lower_difference"], t["ci_upper_difference"])]})
        blocks.append(Block("table", Table(frame, classes=pd.DataFrame(
            "num", index=frame.index, columns=frame.columns)),
            f"Doubly robust AIPW (ATE): survival {lab.treated} - {lab.control}, "
            "influence-function 95% CI"))
    return Section("Adjusted survival curves", tuple(blocks), anchor="curves")


def _ph(cohort, ph) -> Section:
    from causal_hcc.effects.ph import ph_frame
    frame = ph_frame(ph)
    if frame.empty:
        return Section("Proportional hazards", (Block("text", "No model could be tested."),),
                       anchor="ph")
    bad = list(frame.loc[frame["violated"], "model"])
    advice = ("Proportional hazards is rejected (P < 0.05) for " + ", ".join(bad) + ": its "
              "HR averages an effect that changes over follow-up. Read the landmark survival "
              "and RMST differences (adjusted survival curves section) and the landmark "
              "analyses (sensitivity section) for those estimands instead of the single HR."
              if bad else "Proportional hazards is not rejected for any model (P \u2265 0.05 "
              "for every treatment term); with few events the test has little power, so the "
              "residual plots are worth a look.")
    return Section("Proportional hazards", (
        Block("text", ["Schoenfeld-residual test of R survival's cox.zph (score test, "
                       "Kaplan-Meier time transform) for the treatment term of every model "
                       "behind a reported HR, and the global test.", advice]),
        Block("table", tables.ph_table(frame)),
        Block("figure", None, "Scaled Schoenfeld residuals of the treatment term over "
                              "follow-up, one panel per model", PH_FIGURE)), anchor="ph")


def build_document(cohort, crude, check, effects, figures=None, *, captions=None,
                   sensitivity=None, input_notes=(), warnings_seen=(), study=None,
                   ph=None) -> list:
    """Sections of the report, referring to figures by file stem.

    Parameters
    ----------
    cohort, crude, effects
        The Cohort, CrudeResults and EffectsReport.
    check : ClaimCheck or None
        A claims comparison; its section appears only when given.
    figures : dict, optional
        Unused here (kept for the renderers, which leave out missing figures).
    captions : dict, optional
        Stage ("crude", "adjust", "sensitivity") -> sequence of (stem, caption), in order.
    sensitivity : SensitivityReport, optional
    input_notes : sequence of str
        Warnings raised while reading the data.
    warnings_seen : sequence of str
        Warnings raised by the analyses, each tagged with its stage and estimand.
    study : StudyExtras, optional
        A study profile's additions (provenance notes, Cox caption, further sections).
    ph : sequence of PHCheck, optional
        Proportional-hazards checks (:func:`causal_hcc.effects.ph.ph_checks`); computed
        when not given.
    """
    study = study or NO_STUDY
    captions = captions or {}
    if ph is None:
        from causal_hcc.effects.ph import ph_checks
        ph = ph_checks(cohort, effects)
    adjust_caps = dict(captions.get("adjust", ()))
    placed = {"forest_plot"}
    balance, weights, rows = first_screen_frames(effects, cohort)
    gap_frame, cannot, _ = gaps(cohort, effects, sensitivity)
    sections = [_answer(cohort, effects, rows, cannot, sensitivity, adjust_caps),
                Section("Summary in words", (Block("text", [fmt.tidy_text(s) for s in
                                                            narrative.plain_summary(
                                                                cohort, crude, effects)]),),
                        anchor="summary"),
                Section("What cannot be estimated", gaps_blocks(gap_frame), anchor="gaps"),
                _balance(cohort, effects, balance, weights, adjust_caps, placed),
                _propensity(effects, adjust_caps, placed),
                _curves(cohort, effects, adjust_caps, placed), _ph(cohort, ph)]
    rest = [s for s in adjust_caps if s not in placed]
    crude_blocks = _figure_blocks(captions.get("crude", ()))
    crude_blocks.append(Block("table", tables.cox_table(crude, study),
                              narrative.cox_caption(crude, study)))
    crude_blocks += _figure_blocks((s, adjust_caps[s]) for s in rest)
    sections.append(Section("Crude survival analyses", tuple(crude_blocks), anchor="crude"))
    if sensitivity is not None:
        sections.append(Section("Sensitivity analyses", sensitivity_blocks(
            sensitivity, _figure_blocks(captions.get("sensitivity", ()))),
            anchor="sensitivity"))
    if check is not None:
        sections.append(Section("Published vs reproduced", (
            Block("text", narrative.claims_sentence(check)),
            Block("table", tables.claims_table(check))), anchor="claims"))
    sections += list(study.sections)
    sections.append(Section("Data and input checks", (
        Block("text", narrative.provenance_paragraphs(cohort, study)),
        Block("pre", cohort.summary()),
        Block("text", [fmt.tidy_text(n) for n in input_notes]
              or ["No warnings were raised while reading the data."]),
        Block("text", ["Warnings raised by the analyses:"]
              + [fmt.tidy_text(w) for w in dict.fromkeys(warnings_seen)]
              if warnings_seen else ["No warnings were raised by the analyses."])),
        anchor="data"))
    sections.append(Section("Reporting checklist", (
        Block("table", checklist_table(cohort, crude, effects, study, balance,
                                       _ph_frame(ph))),), anchor="checklist"))
    return sections


def _ph_frame(ph):
    from causal_hcc.effects.ph import ph_frame
    frame = ph_frame(ph)
    return frame if len(frame) else None
