"""The reporting checklist, item by item, mapped to STROBE, RECORD(-PE) and the items of
propensity-score reporting; with the software and package versions used.

STROBE: von Elm et al. 2007 (items 6-17 of the methods and results). RECORD: Benchimol et
al. 2015 (7.1 codes and algorithms, 12.2 data cleaning, 13.1 selection, 22.1 access to
code and data), which RECORD-PE (Langan et al. 2018) extends for pharmacoepidemiology.
PS reporting: Austin 2008 and Yao et al. 2017 (model and its variables, matching
algorithm, caliper, ratio, replacement, balance diagnostics, variance estimation that
accounts for matching or weighting, sensitivity analyses).
"""

from __future__ import annotations

import platform
from importlib import metadata

import pandas as pd

from causal_hcc.reporting import format as fmt
from causal_hcc.reporting.content import Table
from causal_hcc.reporting.narrative import outcome_text, time_zero_text
from causal_hcc.version import __version__

PACKAGES = ("numpy", "scipy", "pandas", "matplotlib", "statsmodels", "joblib")


def software_versions() -> str:
    """'Python 3.11.2; causal_hcc 0.1.0; numpy 2.4.6; ...' (installed distributions)."""
    parts = [f"Python {platform.python_version()}", f"causal_hcc {__version__}"]
    for name in PACKAGES:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return "; ".join(parts)


def _names(cohort, columns) -> str:
    return ", ".join(cohort.labels.variable(c) for c in columns) or "none"


def _why_covariates(cohort, effects, study) -> str:
    r = cohort.roles
    ps = tuple(effects.covariates)
    others = [v for v in r.balance_variables if v in cohort.data and v not in ps]
    text = (f"PS model: {_names(cohort, ps)}"
            + (f" ({study.covariate_rationale})" if getattr(study, "covariate_rationale", "")
               else " (named by the user as the confounders to adjust for)")
            + f". Balance is also shown for {len(others)} variables outside the model "
              f"({_names(cohort, others)}), unmarked in the balance table.")
    post = cohort.post_baseline_in(ps)
    if post:
        text += (f" Measured after time zero and flagged: {_names(cohort, post)} "
                 "(the restricted analysis avoids it).")
    return text


def _missing(cohort, balance) -> str:
    un = balance[balance["method"] == "Unadjusted"].drop_duplicates("variable")
    miss = un[un["n_missing"] > 0]
    where = ("; ".join(f"{cohort.labels.variable(v)} {n}" for v, n in
                       zip(miss["variable"], miss["n_missing"]))
             if len(miss) else "no missing values in the analysed rows")
    dropped = (f"{cohort.n_excluded} rows excluded (complete-case, listed in exclusions.csv)"
               if cohort.n_excluded else "no rows excluded (missing values raise an error "
                                         "unless --missing drop is chosen)")
    return f"{dropped}; missing values by variable: {where}."


def _matching(effects) -> str:
    m = effects.matched
    cal = ("no caliper" if m.caliper_sd is None else
           f"caliper {m.caliper_sd:g} SD of the logit PS ({m.sd_denominator} SD = "
           f"{m.sd_value:.3f})")
    return (f"greedy nearest neighbour 1:{m.ratio} on the logit PS, "
            f"{'with' if m.replace else 'without'} replacement, order {m.order}, {cal}; "
            f"ties: {effects.settings.get('matching_ties', 'all')}; matched "
            f"{m.n_matched_treated} of {m.n_treated} treated ({m.estimand}). Also: PSM for "
            "the ATC, exact, coarsened exact and subclassification (estimand table).")


def _weighting(effects) -> str:
    parts = []
    for k, w in effects.weights.items():
        parts.append(f"{k}{' stabilised' if w.stabilized else ''}"
                     + (f", trimmed at PS {w.trim}" if w.trim else "")
                     + (f", truncated at percentiles {w.truncate}" if w.truncate else ""))
    return ("IPTW with " + "; ".join(parts) + ". ESS, sums of weights and extreme weights "
            "per arm in the balance section.")


def checklist_table(cohort, crude, effects, study, balance, ph_frame=None) -> Table:
    """Item, what this analysis did, and the STROBE / RECORD(-PE) / PS-reporting items."""
    s = effects.settings
    p = effects.propensity
    ph = ("cox.zph (score test, KM time transform) for every model; "
          + (f"rejected (P < 0.05) for {', '.join(ph_frame.loc[ph_frame['violated'], 'model'])}"
             "; read the landmark survival and RMST differences there"
             if ph_frame is not None and ph_frame["violated"].any()
             else "not rejected for any model")) if ph_frame is not None else "not tested"
    rows = [
        ("Time zero", time_zero_text(cohort), "STROBE 6a, 12d", ""),
        ("Outcome", outcome_text(cohort), "STROBE 7; RECORD 7.1", ""),
        ("Exposure and comparison", cohort.labels.comparison, "STROBE 7; RECORD 7.1", ""),
        ("Data source", cohort.label, "STROBE 8; RECORD 12.1", ""),
        ("Why these covariates", _why_covariates(cohort, effects, study), "STROBE 16a",
         "variables in the PS model and why"),
        ("Missing data", _missing(cohort, balance), "STROBE 12c; RECORD 12.2", ""),
        ("PS model", f"unpenalised logistic regression ({p.formula}); c-statistic "
                     f"{p.c_statistic:.3f}; events per variable "
                     f"{p.events_per_variable:.1f}; separation: {p.separation}",
         "STROBE 12a", "PS estimation method"),
        ("Matching", _matching(effects), "STROBE 12a",
         "matching algorithm, caliper, ratio, replacement"),
        ("Weighting", _weighting(effects), "STROBE 12a", "weights, stabilisation, trimming"),
        ("Balance diagnostics", "SMD on the unadjusted SD (treated SD for matching/ATT, "
                                "control SD for ATC, pooled for unadjusted/ATE/ATO), "
                                "variance ratios, KS; threshold 0.1; every baseline variable",
         "STROBE 12a", "balance diagnostics after matching/weighting"),
        ("Estimands and identification", "ATE, ATT, ATC, ATO; identification verdict per "
                                         "estimate; the primary chosen by the rule stated "
                                         f"({effects.primary_reason})", "STROBE 12a", ""),
        ("Variance estimation", "crude/multivariable: model-based; PSM: cluster-robust on "
                                "matched set; IPTW: robust sandwich; AIPW: influence "
                                f"function; bootstrap {s['n_boot']} replicates (seed "
                                f"{s['seed']}), PS refitted and patients re-matched or "
                                "re-weighted, percentile CIs", "STROBE 12a",
         "variance accounting for matching/weighting"),
        ("Proportional hazards", ph, "STROBE 12a", ""),
        ("Cox ties; KM intervals", f"{crude.cox.ties}; KM CIs on the {crude.conf_type} "
                                   "scale, median CI Brookmeyer-Crowley", "STROBE 12a", ""),
        ("Unadjusted and adjusted estimates", "estimand table: crude and every adjusted HR "
                                              "with its CI", "STROBE 16a", ""),
        ("Subgroups and interactions", "pre-specified subgroups with interaction tests; "
                                       "too-small estimates withheld", "STROBE 12b, 17", ""),
        ("Sensitivity analyses", "E-values, specification grid, unmeasured-confounder "
                                 "tipping points and benchmarks, time zero and immortal "
                                 "time", "STROBE 12e, 17", "sensitivity to unmeasured "
                                                           "confounding"),
        ("Software and versions", software_versions() + ". Checked against R survival, "
                                                        "MatchIt, riskRegression (tests).",
         "RECORD 22.1", "software"),
    ]
    frame = pd.DataFrame(rows, columns=["Item", "This analysis", "STROBE / RECORD(-PE)",
                                        "PS reporting"])
    frame["This analysis"] = frame["This analysis"].map(fmt.tidy_text)
    classes = pd.DataFrame("text", index=frame.index, columns=frame.columns)
    return Table(frame, classes=classes)
