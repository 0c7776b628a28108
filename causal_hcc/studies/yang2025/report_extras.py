"""What the Yang et al. 2025 profile adds to a report (proposed: causal_hcc/studies/yang2025/report_extras.py).

The engine's report knows no study; this fills a StudyExtras with the paper's figure numbers,
its Table 3 file name and caption, the reconstruction note and the NED figure (Figure 5),
whose correlation is computed here, not in the plotting code.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from causal_hcc.reporting.content import StudyExtras

FIGURE_NAMES = {
    "km_overall": ("figure2a_km_overall", "Figure 2A: overall survival, whole cohort"),
    "km_by_arm": ("figure2b_km_by_arm", "Figure 2B: local therapy vs none"),
    "km_oligometastatic_1": ("figure3a_km_oligometastatic",
                             "Figure 3A: oligometastatic patients"),
    "km_oligometastatic_0": ("figure3b_km_non_oligometastatic",
                             "Figure 3B: non-oligometastatic patients"),
}
RECONSTRUCTION_NOTE = (
    "The bundled data are a reconstruction from the paper's published aggregates; they "
    "reproduce its tables and survival curves but are not its patients. Numbers below are "
    "those of these pseudo-patients.")
#: Why the default PS covariates (DESIGN.md: the baseline differences that matter).
COVARIATE_RATIONALE = (
    "the three variables that differ most between the arms in the paper's Table 1 and are "
    "prognostic in its Table 3: ECOG PS, intrahepatic complete response (29/40 vs 2/36) and "
    "vascular invasion (5 vs 17)")
#: Published multivariable HR of local therapy (Table 3), package direction.
PUBLISHED_HR = ("paper, multivariable", 0.708, 0.290, 1.733)


def ned_figure(cohort):
    """Figure 5: cumulative NED months vs OS in treated patients with NED (None if < 3)."""
    data = cohort.data
    if not {"ned_cumulative_months", "ned_achieved"} <= set(data):
        return None
    ned = data[(data["local_therapy"] == 1) & (data["ned_achieved"] == 1)]
    ned = ned.dropna(subset=["ned_cumulative_months"])
    if len(ned) < 3:
        return None
    x, y = ned["ned_cumulative_months"].to_numpy(float), ned["os_months"].to_numpy(float)
    from causal_hcc._numeric import pearsonr  # scipy.stats' r and P, without its import
    from causal_hcc.reporting.plots import plot_scatter  # matplotlib only when drawn
    r, p = pearsonr(x, y)
    slope, intercept = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (0.0, float(np.mean(y)))
    return plot_scatter(x, y, r=float(r), p_value=float(p), line=(intercept, slope),
                        xlabel="Cumulative NED duration (months)",
                        ylabel="Overall survival (months)",
                        title="Figure 5: cumulative NED vs OS, treated patients with NED",
                        published="r = 0.851, P < 0.001 (n and method not stated)",
                        provenance=cohort.label)


def report_extras(cohort) -> StudyExtras:
    """The paper's additions to a report on this study's data (bundled or real)."""
    # A builder, drawn only when a figure format is asked for (None: no file, no caption).
    figures = {"figure5_ned_vs_os": (partial(ned_figure, cohort),
                                     "Figure 5: cumulative NED months vs OS")}
    return StudyExtras(
        name="Yang et al. 2025", figure_names=FIGURE_NAMES, figures=figures,
        cox_table_stem="cox_table3",
        cox_caption="Cox models (Table 3), HR for level vs reference; beside them the same "
                    "reproduced HR turned to the paper's direction (its comparison) where "
                    "the paper compares the other way round (not the published numbers: "
                    "those are in the published-vs-reproduced table)",
        cox_columns=("hr_paper", "ci_lower_paper", "ci_upper_paper"),
        provenance_notes=(RECONSTRUCTION_NOTE,) if cohort.reconstructed else (),
        published_hr=PUBLISHED_HR, covariate_rationale=COVARIATE_RATIONALE)
