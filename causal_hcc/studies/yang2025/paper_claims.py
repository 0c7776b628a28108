"""Build the paper's claims file from ``targets.json`` (every published survival number).

A claims file is data, not code: each claim says what is estimated, in which subset, the
published value (or CI) as printed, the reading the audit settles, and a tolerance. The
engine in :mod:`causal_hcc.claims` evaluates any claims file on any cohort. This module
only translates the study's ``targets.json`` (copied into the package as
``data/paper_targets.json``) into ``data/paper_claims.json``; ``scripts/build_paper_claims.py``
rewrites the shipped file and a test checks the two agree.

Claim fields
------------
id, source (where printed), description, quantity (``n``, ``deaths``, ``survival_pct``,
``median_months``, ``median_ci``, ``logrank_p``, ``median_follow_up``, ``cox_hr``,
``correlation``), subset (column -> value, all patients when empty), arm (1, 0 or null for
both arms pooled), time (months, for survival_pct), published (the number as printed, or
null), printed (the text as printed), tolerance (``{"abs": x}``, ``{"range": [lo, hi]}``,
``{"log_ratio": x, "inside_ci": true}``), paper_issue (null, or the audit's reason why the
printed number contradicts the paper itself: such claims are flagged, not scored).
Cox claims add ``model`` (a model name under ``models``) and ``term`` (see
:func:`causal_hcc.claims.term_column`), and ``published_ci``, ``published_p`` and
``printed_label``.
"""

from __future__ import annotations

import json
from importlib import resources

from causal_hcc.studies.yang2025.table3 import TABLE3_VARIABLES
from causal_hcc.survival.cox_table import CoxVariable

ARMS = {"local": 1, "no_local": 0}
LANDMARKS = ("12", "24", "36", "60")

def paper_term(variable: CoxVariable) -> dict:
    """A Table 3 row as a claims-file term, in the direction the paper's HR is for.

    The coding is :data:`causal_hcc.studies.yang2025.table3.TABLE3_VARIABLES` (one source for both the
    Cox table and the claims); audit C1's reading decides which level the printed HR is
    for ("A vs. B" printed means B relative to reference A).
    """
    if variable.rule == ">":
        return {"column": variable.column, "above": variable.value}
    value = variable.value
    other = 1 - value if value in (0, 1) else variable.reference
    level, reference = (value, other) if variable.paper_same_direction else (other, value)
    return {"column": variable.column, "level": level, "reference": reference}


COX_TERMS = {v.key: paper_term(v) for v in TABLE3_VARIABLES}

# Tolerances of the side-by-side table (absolute, in the claim's unit).
TOL_SURVIVAL_PTS = {"12": 3.0, "24": 3.0, "36": 3.0, "60": 4.0}
TOL_SURVIVAL_SUBGROUP_PTS = 7.0
TOL_MEDIAN_MONTHS = 1.5
TOL_HR_LOG_RATIO = 0.15


def load_targets() -> dict:
    """The paper's targets (copy of ``paper/targets.json`` shipped in the package)."""
    text = resources.files(__package__).joinpath(
        "paper_targets.json").read_text("utf-8")
    return json.loads(text)


def _survival_claims(group_key: str, block: dict, subset: dict, label: str) -> list[dict]:
    claims = []
    for arm_key, arm in ARMS.items():
        entry = block.get(arm_key)
        if entry is None:
            continue
        name = f"{label}, {'local therapy' if arm else 'no local therapy'}"
        claims += _landmark_and_median_claims(entry, subset, arm, name,
                                              f"{group_key}_{arm_key}", block["source"],
                                              subgroup=bool(subset))
    return claims


def _landmark_and_median_claims(entry, subset, arm, name, key, source, subgroup) -> list[dict]:
    claims = []
    for t, value in (entry.get("os_rate_pct") or {}).items():
        tol = TOL_SURVIVAL_SUBGROUP_PTS if subgroup else TOL_SURVIVAL_PTS[t]
        claims.append({
            "id": f"os{t}_{key}", "source": source, "quantity": "survival_pct",
            "description": f"{int(t) // 12}-year OS (%), {name}", "subset": subset, "arm": arm,
            "time": float(t), "published": value, "printed": f"{value}%",
            "tolerance": {"abs": tol}, "paper_issue": None})
    median = entry.get("median_os_months")
    if isinstance(median, dict):
        issue = None
        if median.get("status") == "inconsistent_with_own_rates":
            rng = median["implied_range_derived"]
            issue = (f"printed '{median['printed']}', but the group's own landmark rates put "
                     f"the KM median in ({rng['lower_exclusive']}, "
                     f"{rng['upper_inclusive']}] months (audit A2)")
        claims.append({
            "id": f"median_{key}", "source": source, "quantity": "median_months",
            "description": f"median OS (months), {name}", "subset": subset, "arm": arm,
            "published": median.get("value"), "printed": median.get("printed",
                                                                     str(median.get("value"))),
            "tolerance": {"abs": TOL_MEDIAN_MONTHS}, "paper_issue": issue})
        if median.get("ci95_lower") is not None:
            lo, hi = median["ci95_lower"], median["ci95_upper"]
            claims.append({
                "id": f"median_ci_{key}", "source": source, "quantity": "median_ci",
                "description": f"95% CI of median OS (months), {name}; the paper's CI is "
                               "symmetric (SPSS plain, median +/- 1.96 SE; audit A7)",
                "subset": subset, "arm": arm, "published": [lo, hi],
                "printed": f"{lo}-{hi}", "ci_method": "plain",
                "tolerance": {"abs": 3.0}, "paper_issue": None})
    return claims


def build_claims(targets: dict | None = None) -> dict:
    """Translate ``targets.json`` into the claims file (a JSON-serialisable dict)."""
    t = targets or load_targets()
    surv = t["survival"]
    claims: list[dict] = [
        {"id": "n_local", "source": "Section 1.1; Table 1", "quantity": "n",
         "description": "patients with local therapy", "subset": {}, "arm": 1,
         "published": t["cohort"]["local_arm_n"]["value"],
         "printed": "40", "tolerance": {"abs": 0}, "paper_issue": None},
        {"id": "n_no_local", "source": "Section 1.1; Table 1", "quantity": "n",
         "description": "patients without local therapy", "subset": {}, "arm": 0,
         "published": t["cohort"]["no_local_arm_n"]["value"], "printed": "36", "tolerance": {"abs": 0}, "paper_issue": None},
        {"id": "deaths", "source": "Section 2.2 text", "quantity": "deaths",
         "description": "deaths by the end of follow-up", "subset": {}, "arm": None,
         "published": surv["overall"]["deaths"], "printed": "32 (42.1%)",
         "tolerance": {"abs": 0}, "paper_issue": None},
        {"id": "median_follow_up", "source": surv["median_follow_up_months"]["source"],
         "quantity": "median_follow_up", "method": "observed",
         "description": "median follow-up (months; the paper does not say how it was "
                        "computed: compared with the median observed time, and the reverse "
                        "Kaplan-Meier median is reported beside it)",
         "subset": {}, "arm": None, "published": surv["median_follow_up_months"]["value"],
         "printed": "15 (2.5-72.0)", "tolerance": {"abs": 1.0}, "paper_issue": None},
    ]
    for which in ("min", "max"):
        value = surv["median_follow_up_months"][f"range_{which}"]
        claims.append({
            "id": f"follow_up_{which}", "source": surv["median_follow_up_months"]["source"],
            "quantity": "follow_up_extreme", "which": which,
            "description": f"{'shortest' if which == 'min' else 'longest'} follow-up (months)",
            "subset": {}, "arm": None, "published": value, "printed": str(value),
            "tolerance": {"abs": 0.5}, "paper_issue": None})
    overall = surv["overall"]
    claims += _landmark_and_median_claims(overall, {}, None, "whole cohort", "overall",
                                          overall["source"], subgroup=False)
    for key, subset, label in (("by_local_therapy", {}, "all patients"),
                               ("oligometastatic_subgroup", {"oligometastatic": 1},
                                "oligometastatic"),
                               ("non_oligometastatic_subgroup", {"oligometastatic": 0},
                                "non-oligometastatic")):
        block = surv[key]
        group = {"by_local_therapy": "all", "oligometastatic_subgroup": "oligo",
                 "non_oligometastatic_subgroup": "nonoligo"}[key]
        claims += _survival_claims(group, block, subset, label)
        p = block["log_rank_p"]
        claims.append({
            "id": f"logrank_{group}", "source": block["source"], "quantity": "logrank_p",
            "description": f"log-rank P, local vs no local therapy, {label}",
            "subset": subset, "arm": None, "published": p, "printed": f"P={p}",
            "tolerance": {"range": _p_range(p)}, "paper_issue": None})
    claims += _cox_claims(t["cox_table3"])
    ned = t["ned"]
    claims.append({
        "id": "ned_os_correlation", "source": ned["ned_os_correlation"]["source"],
        "quantity": "correlation", "x": "ned_cumulative_months", "y": "os_months",
        "method": "pearson", "description": "correlation of cumulative NED months with OS, "
        "treated patients who reached NED (n and method not stated in the paper)",
        "subset": {"local_therapy": 1, "ned_achieved": 1}, "arm": None,
        "published": ned["ned_os_correlation"]["r"], "printed": "r=0.851, P<0.001",
        "tolerance": {"abs": 0.15}, "paper_issue": None})
    return {
        "manuscript": t["meta"]["citation"], "doi": t["meta"]["doi"],
        "built_from": "paper/targets.json via causal_hcc.paper_claims.build_claims",
        "time_unit": "months",
        "models": {"table3_multivariable": [k for k, v in t["cox_table3"]["variables"].items()
                                            if v.get("multivariable")]},
        "terms": COX_TERMS,
        "claims": claims,
    }


def _p_range(p: float) -> list[float]:
    """Agreement band for a P value: the printed value within a factor of about 3.

    The bands are those the reconstruction is held to (foundation issue): 0.003 ->
    0.001-0.01, 0.008 -> 0.002-0.03, 0.124 -> 0.05-0.30.
    """
    bands = {0.003: [0.001, 0.01], 0.008: [0.002, 0.03], 0.124: [0.05, 0.30]}
    return bands.get(p, [p / 3, min(1.0, p * 3)])


def _cox_claims(table3: dict) -> list[dict]:
    claims = []
    for key, var in table3["variables"].items():
        interp = var["interpretation"]
        for model in ("univariable", "multivariable"):
            fit = var.get(model)
            if not fit:
                continue
            claims.append({
                "id": f"cox_{model[:5]}_{key}", "source": var["source"], "quantity": "cox_hr",
                "model": model if model == "univariable" else "table3_multivariable",
                "term": key, "description": f"Cox HR, {model}: {interp['hr_is_for']} "
                f"(reference {interp['reference_level']})",
                "subset": {}, "arm": None, "published": fit["hr"],
                "published_ci": [fit["ci95_lower"], fit["ci95_upper"]],
                "published_p": fit["p"], "printed": f"{fit['printed_text']}, P={fit['p_printed_text']}",
                "printed_label": var["printed_label_en"],
                "reading": f"{interp['hr_is_for']} (audit C1: printed 'A vs. B' is B relative to A)",
                "tolerance": {"log_ratio": TOL_HR_LOG_RATIO, "inside_ci": True},
                "paper_issue": None})
    return claims
