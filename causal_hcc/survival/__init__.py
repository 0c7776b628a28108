"""Survival stage: the one Kaplan-Meier, the one Cox fit (single and batched), the crude
analysis. Checked against R's ``survival`` (survfit, survdiff, coxph, cox.zph)."""

from causal_hcc.survival.cox import TIES, CoxFit, fit_cox, fit_cox_frame, timefix
from causal_hcc.survival.cox_many import MANY_STATUS, CoxManyFit, fit_cox_many
from causal_hcc.survival.cox_table import CoxTable, CoxTerm, CoxVariable, cohort_variables, cox_table
from causal_hcc.survival.crude import CrudeResults, GroupSurvival, crude_analysis, survival_by_group
from causal_hcc.survival.km import (CONF_TYPES, FollowUp, KaplanMeier, Landmark, LogRank,
                                    MedianSurvival, kaplan_meier, log_rank, median_follow_up,
                                    survival_curve)
from causal_hcc.survival.zph import PHTest, cox_zph

__all__ = ["CONF_TYPES", "MANY_STATUS", "TIES", "CoxFit", "CoxManyFit", "CoxTable", "CoxTerm",
           "CoxVariable", "CrudeResults", "FollowUp", "GroupSurvival", "KaplanMeier",
           "Landmark", "LogRank", "MedianSurvival", "PHTest", "cohort_variables", "cox_table",
           "cox_zph", "crude_analysis", "fit_cox", "fit_cox_frame", "fit_cox_many",
           "kaplan_meier", "log_rank", "median_follow_up", "survival_by_group",
           "survival_curve", "timefix"]
