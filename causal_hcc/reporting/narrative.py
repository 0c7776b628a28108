"""All prose of the report: title, plain-language summary, checklist, captions, notes.

Every sentence is generated from the numbers and the cohort's labels (arm names, outcome,
time unit, time zero); nothing here names a study. Words a study needs (the paper's figure
numbers, its reconstruction) come in through :class:`~causal_hcc.reporting.content.StudyExtras`.
"""

from __future__ import annotations

import pandas as pd

#: Outcome labels that mean "not named by the user".
UNNAMED = ("", "event", "not stated")
#: Column order of the published-vs-reproduced table as shown to readers.
CLAIM_COLUMNS = ("description", "source", "printed", "reproduced_text", "tolerance",
                 "status", "note")


# ----------------------------------------------------------------------------- words
def outcome_name(labels) -> str:
    """The outcome as named by the user ("death"), or "the event" when not named."""
    return "the event" if labels.outcome in UNNAMED else labels.outcome


def events_text(n: int, labels) -> str:
    """"47 deaths" when the outcome is death, else "120 events (relapse)"."""
    if labels.outcome == "death":
        return f"{n} deaths"
    return f"{n} events" + ("" if labels.outcome in UNNAMED else f" ({labels.outcome})")


def survival_axis(labels) -> str:
    """Y axis of a survival curve: overall survival when the outcome is death."""
    if labels.outcome == "death":
        return "Overall survival (probability)"
    if labels.outcome in UNNAMED:
        return "Event-free probability"
    return f"Probability free of {labels.outcome}"


def report_title(cohort) -> str:
    title = cohort.labels.title
    return title + (" (RECONSTRUCTED PSEUDO-DATA)" if cohort.reconstructed else "")


SUBTITLE = ("How much of the crude survival difference survives adjustment for "
            "confounding, and how fragile is what survives?")


def fmt_hr(e) -> str:
    if not e.estimable:
        return f"not estimable ({e.reason})"
    return f"{e.hr:.2f} (95% CI {e.ci_lower:.2f}-{e.ci_upper:.2f}; P = {e.p_value:.3f})"


def fmt_p(p: float) -> str:
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


def _covariate_list(cohort, covariates) -> str:
    return ", ".join(cohort.labels.variable(c) for c in covariates) or "no covariates"


# ----------------------------------------------------------------------------- summary
def plain_summary(cohort, crude, effects, sensitivity=None) -> list[str]:
    """Sentences generated from the numbers: what survives adjustment, and how fragile."""
    lab = cohort.labels
    est = {(e.method, e.estimand): e for e in effects.estimates}
    lines = [f"Data: {cohort.label}. {cohort.n} patients ({cohort.n_treated} {lab.treated}, "
             f"{cohort.n_control} {lab.control}), {events_text(cohort.events, lab)}; "
             f"time in {lab.time_unit}."]
    if cohort.n_excluded:
        lines.append(f"{cohort.n_excluded} rows with missing values were excluded "
                     "(complete-case analysis); they are listed in the input section.")
    crude_hr = est.get(("crude", None))
    if crude_hr is not None:
        lines.append(f"Crude hazard ratio of {outcome_name(lab)}, {lab.comparison}: "
                     f"{fmt_hr(crude_hr)}; log-rank {fmt_p(crude.arms.log_rank.p)}.")
    lines += identification_sentences(effects)
    m = effects.matched
    psm = est.get(("psm", m.estimand)) or est.get(("psm", "ATT"))
    lines.append(f"Propensity-score matching (caliper {m.caliper_sd} SD of the logit PS) "
                 f"matched {m.n_matched_treated} of {m.n_treated} {lab.treated} patients; "
                 f"the matched estimate refers to {m.estimand}."
                 + (f" PSM HR {fmt_hr(psm)} ({_verdict_word(psm)})." if psm is not None
                    else ""))
    positivity = positivity_sentence(effects, lab)
    if positivity:
        lines.append(positivity)
    smd = effects.max_abs_smd()
    if smd:
        worst = max(smd.items(), key=lambda kv: kv[1]["ps_covariates"])
        lines.append(f"Largest |SMD| of a PS covariate after adjustment: "
                     f"{worst[1]['ps_covariates']:.2f} ({worst[0]}); threshold 0.1.")
    residual = residual_sentence(effects)
    if residual:
        lines.append(residual)
    post = cohort.post_baseline_in(effects.covariates)
    if post:
        lines.append(f"Time zero: the adjustment conditions on "
                     f"{_covariate_list(cohort, post)}, measured after time zero; it may "
                     "itself be affected by treatment or early survival, so every adjusted "
                     "estimate above can be biased by it (see the restricted or landmark "
                     "analysis).")
    sentences = getattr(sensitivity, "plain_sentences", None)
    if callable(sentences):
        lines += list(sentences())
    return lines


def _verdict_word(e) -> str:
    return {True: "identified", False: "NOT identified",
            None: "not a causal estimand"}[getattr(e, "identified", None)]


def _name(e) -> str:
    return f"{e.method} {e.estimand}" if e.estimand else e.method


def identification_sentences(effects) -> list[str]:
    """The adjusted estimates, identified first: the primary, the identified ones and
    their range, then those not identified (named, never in a range), then conditional HRs.
    """
    adjusted = [e for e in effects.estimates if e.method != "crude" and e.estimable]
    identified = [e for e in adjusted if e.identified is True]
    unidentified = [e for e in adjusted if e.identified is False]
    conditional = [e for e in adjusted if e.identified is None]
    lines = []
    primary = effects.primary_estimate() if hasattr(effects, "primary_estimate") else None
    if primary is not None:
        lines.append(f"Primary estimate: {_name(primary)} HR {fmt_hr(primary)}, "
                     f"{_verdict_word(primary)}. {getattr(effects, 'primary_reason', '')}")
    elif getattr(effects, "primary_reason", ""):
        lines.append(f"No primary estimate: {effects.primary_reason}")
    if identified:
        excl = [e for e in identified if e.ci_upper < 1 or e.ci_lower > 1]
        below = [e for e in identified if e.hr < 1]
        lines.append(
            f"Identified adjusted estimates ({len(identified)}: "
            + ", ".join(f"{_name(e)} {e.hr:.2f}" for e in identified)
            + f"): hazard ratios from {min(e.hr for e in identified):.2f} to "
              f"{max(e.hr for e in identified):.2f} ({len(below)} below 1); the 95% CI "
              f"excludes 1 in {len(excl)} of them.")
    if unidentified:
        lines.append(
            "Not identified, because part of their target population has no counterpart "
            "in the other arm (kept out of the range above and out of the headline): "
            + "; ".join(f"{_name(e)} HR {e.hr:.2f}" for e in unidentified) + ".")
    if conditional:
        lines.append("Conditional hazard ratios of regression models (not marginal causal "
                     "estimands): " + "; ".join(f"{_name(e)} {fmt_hr(e)}"
                                                for e in conditional) + ".")
    return lines


def residual_sentence(effects, per_method: int = 3) -> str:
    """Variables still above |SMD| 0.1 after each adjustment ("" when none or unknown)."""
    if not hasattr(effects, "residual_imbalance"):
        return ""
    frame = effects.residual_imbalance()
    if frame.empty:
        return ""
    parts = []
    for method, rows in frame.groupby("method", sort=False):
        named = ", ".join(f"{r.variable}{' = ' + str(r.level) if r.level else ''} "
                          f"{r.smd_after:+.2f}" for r in rows.head(per_method).itertuples())
        more = len(rows) - per_method
        parts.append(f"{method}: {named}" + (f" and {more} more" if more > 0 else ""))
    return ("Residual imbalance, every balance variable considered (|SMD| > 0.1 after "
            "adjustment; residual_imbalance() lists all): " + "; ".join(parts) + ".")


def positivity_sentence(effects, labels) -> str:
    """Patients whose covariate pattern occurs in one arm only ("" when none)."""
    counts = getattr(effects.propensity, "pattern_counts", None)
    if counts is None or len(counts) == 0:
        return ""
    frame = pd.DataFrame(counts)
    cols = {c.lower(): c for c in frame.columns}
    t_col = next((cols[c] for c in cols if c in ("n_treated", "treated")), None)
    c_col = next((cols[c] for c in cols if c in ("n_control", "control")), None)
    if t_col is None or c_col is None:
        return ""
    only_t = int(frame.loc[frame[c_col] == 0, t_col].sum())
    only_c = int(frame.loc[frame[t_col] == 0, c_col].sum())
    if only_t == 0 and only_c == 0:
        return ""
    return (f"Positivity: {only_t} {labels.treated} and {only_c} {labels.control} patients "
            "have covariate patterns seen in one arm only; no weighting or matching can "
            "compare them, so ATE-type estimates extrapolate there.")


# ----------------------------------------------------------------------------- checklist
def time_zero_text(cohort) -> str:
    text = cohort.labels.time_zero or "not stated"
    start = cohort.roles.treatment_start
    if start:
        text += (f"; {cohort.labels.treated} starts later (column '{start}'): immortal time, "
                 "see the sensitivity section")
    return text


def outcome_text(cohort) -> str:
    lab, r = cohort.labels, cohort.roles
    where = f"event column '{r.event}' = 1, time '{r.time}' in {lab.time_unit}"
    if lab.outcome == "death":
        return f"overall survival ({lab.time_unit}); death from any cause ({where})"
    if lab.outcome in UNNAMED:
        return f"not stated ({where})"
    return f"time to {lab.outcome} ({where})"


def checklist(cohort, crude, effects) -> pd.DataFrame:
    """Reporting checklist (time zero, outcome, estimand, PS model, caliper, balance...)."""
    m = effects.matched
    ess = {k: w.ess for k, w in effects.weights.items()}
    rows = [
        ("Time zero", time_zero_text(cohort)),
        ("Outcome", outcome_text(cohort)),
        ("Comparison", cohort.labels.comparison),
        ("Rows excluded", f"{cohort.n_excluded} (complete-case analysis)" if cohort.n_excluded
         else "none"),
        ("Estimands", f"PSM: {m.estimand}; IPTW: ATE (stabilised), ATT, ATC, ATO (overlap); "
                      "identification verdict per estimate (identified / "
                      "identification_note in effects.json)"),
        ("PS model", f"unpenalised logistic regression on "
                     f"{_covariate_list(cohort, effects.covariates)}; c-statistic "
                     f"{effects.propensity.c_statistic:.3f}; events per variable "
                     f"{effects.propensity.events_per_variable:.1f}"),
        ("Matching", f"greedy 1:{m.ratio} nearest neighbour on the logit PS, "
                     f"{'with' if m.replace else 'without'} replacement, order {m.order}, "
                     f"caliper {m.caliper_sd} SD (SD: {m.sd_denominator}, "
                     f"{m.sd_value:.3f}); matched {m.n_matched_treated}/{m.n_treated} treated"),
        ("Balance", "SMD with the unadjusted SD (treated SD for matching/ATT, control SD "
                    "for ATC, pooled for ATE/ATO); threshold 0.1"),
        ("Effective sample size", "; ".join(
            f"{k}: treated {v['treated']:.1f}, control {v['control']:.1f}"
            for k, v in ess.items())),
        ("Standard errors", "crude/multivariable: model; PSM: robust clustered on matched "
                            "set (stratified alternative: model); IPTW and covariate-adjusted "
                            "weighted Cox: robust sandwich; AIPW: influence function"),
        ("Bootstrap", f"{effects.settings['n_boot']} replicates, seed "
                      f"{effects.settings['seed']}, PS refitted each time, percentile CIs"),
        ("Cox ties", f"{crude.cox.ties}"),
        ("KM confidence intervals", f"{crude.conf_type} scale; median CI Brookmeyer-Crowley"),
    ]
    return pd.DataFrame(rows, columns=["item", "this analysis"])


def estimates_table(effects, evalues=None) -> pd.DataFrame:
    """One row per adjusted HR, formatted for reading (E-values when given)."""
    rows = []
    for e in effects.estimates:
        row = {"method": e.method, "estimand": e.estimand or "",
               "identified": _verdict_word(e), "HR (95% CI)": fmt_hr(e),
               "SE": e.variance, "bootstrap 95% CI": (
                   f"{e.boot_ci_lower:.2f}-{e.boot_ci_upper:.2f}"
                   if e.boot_ci_lower is not None else ""),
               "n treated / control": f"{e.n_treated} / {e.n_control}", "events": e.events}
        if evalues is not None:
            ev = evalues.get((e.method, e.estimand or ""))
            row["E-value (point / CI)"] = (
                f"{ev['evalue_point']:.2f} / {ev['evalue_ci']:.2f}"
                if ev and ev.get("evalue_point") is not None
                and ev.get("evalue_ci") is not None else "")
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- sections
def provenance_paragraphs(cohort, study) -> list[str]:
    """Where the data come from; a study's reconstruction notes when it gives them."""
    lines = [f"Source: {cohort.source}"
             + (f" (SHA-256 {cohort.sha256})" if cohort.sha256 else "")]
    if study.provenance_notes:
        lines += list(study.provenance_notes)
    elif cohort.reconstructed:
        lines.append("The data are a reconstruction from published aggregates, not "
                     "patients; numbers below are those of the pseudo-patients.")
    else:
        lines.append("Patient-level data supplied by the user.")
    return lines


def claims_table(check) -> pd.DataFrame:
    """The published-vs-reproduced table as shown to readers."""
    return (check.to_frame()[list(CLAIM_COLUMNS)]
            .rename(columns={"printed": "published", "reproduced_text": "reproduced"}))


def claims_sentence(check) -> str:
    c = check.counts
    return (f"Claims of {check.manuscript.rstrip('.')}: {len(check.table)} published "
            f"numbers checked; {c.get('agrees', 0)} agree within tolerance, "
            f"{c.get('differs', 0)} differ, "
            f"{c.get('paper inconsistent', 0)} contradict the publication itself, "
            f"{c.get('not estimable', 0)} not estimable.")


#: Columns of the crude Cox table shown in the report (the CSV has them all).
COX_COLUMNS = ("model", "comparison", "estimable", "reason", "n", "events", "hr", "ci_lower",
               "ci_upper", "p")


def cox_display(crude, study) -> pd.DataFrame:
    """The crude Cox table as shown: the readable columns, and a study's own."""
    frame = crude.cox.to_frame()
    return frame[[c for c in dict.fromkeys((*COX_COLUMNS, *study.cox_columns)) if c in frame]]


def cox_caption(crude, study) -> str:
    return study.cox_caption or (f"Cox models of {crude.n} patients: univariable and "
                                 "multivariable, HR for level vs reference")


def curves_caption(curves, time_unit: str) -> str:
    return (f"{curves.method} ({curves.estimand}): landmark survival and RMST ({time_unit}) "
            "per arm, difference treated - control, bootstrap 95% CI")


def balance_caption(name: str, table) -> str:
    return f"{name}: {table.adjustment}; SMD denominator: {table.denominator_description}"
