"""The crude (unadjusted) survival analysis of a Cohort: KM by arm, log-rank, Cox table.

:func:`crude_analysis` compares the treatment arms (Kaplan-Meier with medians and
landmarks, log-rank), repeats the comparison within each level of a subgroup variable,
reports the follow-up, and fits the univariable and multivariable Cox models of
:func:`causal_hcc.survival.cox_table.cox_table` (the cohort's covariates by default, or a
study's own table such as Yang et al.'s Table 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc._numeric import to_jsonable
from causal_hcc.defaults import default_landmarks
from causal_hcc.survival.cox_table import CoxTable, cox_table
from causal_hcc.survival.km import (FollowUp, KaplanMeier, LogRank, kaplan_meier, log_rank,
                                    median_follow_up)


@dataclass(frozen=True)
class GroupSurvival:
    """KM per group (with medians and landmarks), the pooled curve and the log-rank test."""

    description: str
    group_col: str
    curves: tuple
    overall: KaplanMeier
    log_rank: LogRank

    def to_frame(self) -> pd.DataFrame:
        """Medians and landmarks, one row per group (and 'all')."""
        rows = []
        for km in (*self.curves, self.overall):
            m = km.median
            row = {"comparison": self.description, "group": km.label, "n": km.n,
                   "deaths": km.events, "median": m.estimate, "median_lower": m.lower,
                   "median_upper": m.upper, "median_ci": f"Brookmeyer-Crowley {km.conf_type}",
                   "median_se_spss": m.se_spss, "median_lower_spss": m.lower_spss,
                   "median_upper_spss": m.upper_spss}
            for lm in km.landmarks:
                row.update({f"os_{lm.time:g}": lm.surv, f"os_{lm.time:g}_lower": lm.lower,
                            f"os_{lm.time:g}_upper": lm.upper, f"at_risk_{lm.time:g}": lm.n_risk})
            rows.append(row)
        return pd.DataFrame(rows)

    def summary(self) -> str:
        return "\n".join([f"{self.description}:", *(km.summary() for km in self.curves),
                          self.overall.summary(), self.log_rank.summary()])


def survival_by_group(cohort, *, group_col: str | None = None, mask=None,
                      description: str | None = None, strata_col: str | None = None,
                      landmarks=None, conf_type: str = "log-log",
                      conf_level: float = 0.95) -> GroupSurvival:
    """KM by group, medians, landmarks and log-rank, within ``mask`` (a subgroup) if given.

    Parameters
    ----------
    cohort : Cohort
    group_col : str, optional
        Column defining the groups (default the treatment arms; treated listed first).
    mask : array_like of bool, optional
        Patients of a subgroup.
    description : str, optional
        Default "TREATED vs CONTROL" from the cohort's labels.
    strata_col : str, optional
        Stratify the log-rank test on this column (R ``survdiff(... + strata())``).
    landmarks : sequence of float, optional
        In the cohort's time unit; default :func:`causal_hcc.defaults.default_landmarks`.
    """
    group_col = group_col or cohort.roles.treatment
    description = description or _arms_text(cohort)
    if landmarks is None:
        landmarks = default_landmarks(cohort.time, cohort.labels.time_unit)
    data = cohort.data if mask is None else cohort.data.loc[np.asarray(mask, dtype=bool)]
    time = data[cohort.roles.time].to_numpy(float)
    event = data[cohort.roles.event].to_numpy(float)
    kw = dict(conf_type=conf_type, conf_level=conf_level, landmarks=landmarks)
    names = _arm_names(cohort) if group_col == cohort.roles.treatment else {}
    levels = sorted(data[group_col].dropna().unique(), reverse=True)
    curves = tuple(kaplan_meier(time[(data[group_col] == lv).to_numpy()],
                                event[(data[group_col] == lv).to_numpy()],
                                label=names.get(lv, f"{group_col} = {lv}"), **kw)
                   for lv in levels)
    if time.size == 0:
        raise ValueError(f"{description}: the subgroup has no patients")
    overall = kaplan_meier(time, event, label="all", **kw)
    test = log_rank(time, event, data[group_col].to_numpy(),
                    strata=None if strata_col is None else data[strata_col].to_numpy(),
                    description=description, stratified_by=strata_col or "",
                    group_names={lv: names.get(lv, f"{group_col} = {lv}") for lv in levels})
    return GroupSurvival(description, group_col, curves, overall, test)


def _arm_names(cohort) -> dict:
    return {1: cohort.labels.treated, 0: cohort.labels.control}


def _arms_text(cohort) -> str:
    return f"{cohort.labels.treated} vs {cohort.labels.control}"


# ----------------------------------------------------------------------------- bundle
@dataclass(frozen=True)
class CrudeResults:
    """Everything of the crude (unadjusted) survival analysis of one Cohort.

    Attributes
    ----------
    label : str
        The cohort's provenance line (``cohort.label``), first line of every output.
    arms : GroupSurvival
        KM per arm (treated first), pooled curve, log-rank between arms.
    stratified_log_rank : LogRank or None
        Log-rank between arms stratified on ``strata_col``, when asked.
    subgroups : tuple of GroupSurvival
        The arm comparison within each level of ``subgroup_col``.
    follow_up : FollowUp
    cox : CoxTable
        Univariable and multivariable Cox models, with the PH tests.
    time_unit : str
    arm_labels : tuple of str
        (treated, control).
    """

    label: str
    source: str
    reconstructed: bool
    n: int
    deaths: int
    conf_type: str
    conf_level: float
    landmark_times: tuple
    arms: GroupSurvival
    stratified_log_rank: LogRank | None
    subgroups: tuple
    follow_up: FollowUp
    cox: CoxTable
    time_unit: str = "months"
    arm_labels: tuple = ("treated", "control")
    n_excluded: int = 0

    def to_frame(self) -> pd.DataFrame:
        """Medians and landmark OS for every group of every comparison."""
        return pd.concat([g.to_frame() for g in (self.arms, *self.subgroups)],
                         ignore_index=True)

    def to_dict(self) -> dict:
        """JSON-serialisable dict (NaN -> None).

        Keys: ``label``, ``source``, ``reconstructed``, ``n``, ``deaths``, ``settings``
        (conf_type, conf_level, landmarks, time_unit, median_ci_method,
        spss_median_ci_method, ties, select_p), ``follow_up``, ``arms`` and each of ``subgroups`` (description,
        groups: [{label, n, deaths, median: {estimate, lower, upper, se_spss, lower_spss,
        upper_spss, estimable, reason}, landmarks: [{time, surv, se, lower, upper, n_risk,
        estimable, reason}]}], overall, log_rank: {chisq, df, p, groups, observed,
        expected, estimable, reason}), ``stratified_log_rank``, ``cox`` (rows: one dict
        per CoxTerm; selected; events_per_variable; ph_test and ph_test_treatment as
        {terms, chisq, df, p, global_chisq, global_df, global_p}; notes).
        """
        return to_jsonable({
            "label": self.label, "source": self.source, "reconstructed": self.reconstructed,
            "n": self.n, "deaths": self.deaths, "n_excluded": self.n_excluded,
            "arm_labels": list(self.arm_labels),
            "settings": {"conf_type": self.conf_type, "conf_level": self.conf_level,
                         "landmarks": list(self.landmark_times),
                         "time_unit": self.time_unit,
                         "median_ci_method": f"Brookmeyer-Crowley, {self.conf_type} scale "
                                             "(R print.survfit)",
                         "spss_median_ci_method": "median -/+ z * SE(S(median)) / f "
                                                  "(Collett density estimate)",
                         "ties": self.cox.ties, "select_p": self.cox.select_p},
            "follow_up": vars(self.follow_up),
            "arms": _group_dict(self.arms),
            "stratified_log_rank": None if self.stratified_log_rank is None
            else vars(self.stratified_log_rank),
            "subgroups": [_group_dict(g) for g in self.subgroups],
            "cox": {"rows": [vars(r) for r in self.cox.rows], "selected": self.cox.selected,
                    "events_per_variable": self.cox.events_per_variable,
                    "ph_test": _zph_dict(self.cox.ph_test),
                    "ph_test_treatment": _zph_dict(self.cox.ph_test_treatment),
                    "notes": self.cox.notes}})

    def summary(self) -> str:
        pct = f"{100 * self.conf_level:g}%"
        parts = [self.label,
                 f"Crude survival analysis: {self.n} patients, {self.deaths} deaths. KM with "
                 f"Greenwood SE, {pct} CIs on the {self.conf_type} scale (R's survfit "
                 "default is 'log'); median CI Brookmeyer-Crowley on the same scale, and "
                 "SPSS-style plain median -/+ 1.96 SE as the paper prints.",
                 self.follow_up.summary(), self.arms.summary()]
        if self.stratified_log_rank is not None:
            parts.append(self.stratified_log_rank.summary())
        parts += [g.summary() for g in self.subgroups]
        parts.append(self.cox.summary())
        return "\n\n".join(parts)


def _km_dict(km: KaplanMeier) -> dict:
    return {"label": km.label, "n": km.n, "deaths": km.events,
            "median": vars(km.median), "landmarks": [vars(lm) for lm in km.landmarks]}


def _group_dict(g: GroupSurvival) -> dict:
    return {"description": g.description, "groups": [_km_dict(k) for k in g.curves],
            "overall": _km_dict(g.overall), "log_rank": vars(g.log_rank)}


def _zph_dict(z) -> dict | None:
    if z is None:
        return None
    return {"terms": z.names, "chisq": z.chisq, "df": z.df, "p": z.p,
            "global_chisq": z.global_chisq, "global_df": z.global_df,
            "global_p": z.global_p, "transform": z.transform}


def crude_analysis(cohort, landmarks=None, *, conf_type: str = "log-log",
                   conf_level: float = 0.95, subgroup_col: str | None = "default",
                   strata_col: str | None = None, ties: str = "efron",
                   select_p: float = 0.05, multivariable=None,
                   cox_variables=None) -> CrudeResults:
    """The crude survival analysis of a Cohort, in R's terms.

    Parameters
    ----------
    cohort : Cohort
    landmarks : sequence of float, optional
        Landmark times in the cohort's unit; default
        :func:`causal_hcc.defaults.default_landmarks` (round years within follow-up).
    conf_type : {"log-log", "log", "plain"}
        Scale of KM and median CIs (package default log-log; R's default is log).
    conf_level : float
    subgroup_col : str or None
        Repeat the arm comparison within each level of this column; ``"default"`` takes the
        cohort's first subgroup role (none: no subgroups).
    strata_col : str, optional
        Also report the log-rank test between arms stratified on this column.
    ties : {"efron", "breslow"}
        Cox ties (SPSS has Breslow).
    select_p : float
        Univariable P threshold for the multivariable Cox model.
    multivariable : sequence of str, optional
        Fixed multivariable model (term keys), instead of the P rule.
    cox_variables : sequence of CoxVariable, optional
        The Cox table's terms; default the cohort's covariates and treatment.

    Returns
    -------
    CrudeResults

    Warns
    -----
    SmallSampleWarning, SeparationWarning, ConvergenceWarning
        From the Cox models (see :func:`causal_hcc.survival.cox_table.cox_table`).
    """
    if landmarks is None:
        landmarks = default_landmarks(cohort.time, cohort.labels.time_unit)
    if subgroup_col == "default":
        subgroup_col = cohort.roles.subgroups[0] if cohort.roles.subgroups else None
    kw = dict(landmarks=tuple(landmarks), conf_type=conf_type, conf_level=conf_level)
    data, r = cohort.data, cohort.roles
    arms = survival_by_group(cohort, **kw)
    stratified = None
    if strata_col is not None:
        stratified = log_rank(data[r.time], data[r.event], data[r.treatment],
                              strata=data[strata_col], stratified_by=strata_col,
                              description=_arms_text(cohort), group_names=_arm_names(cohort))
    subgroups = ()
    if subgroup_col is not None and subgroup_col in data:
        subgroups = tuple(
            survival_by_group(cohort, mask=(data[subgroup_col] == lv).to_numpy(),
                              description=f"{subgroup_col} = {lv}: {_arms_text(cohort)}",
                              **kw)
            for lv in sorted(data[subgroup_col].dropna().unique(), reverse=True))
    follow = median_follow_up(cohort.time, cohort.event, conf_type=conf_type)
    table = cox_table(cohort, cox_variables, ties=ties, select_p=select_p,
                      multivariable=multivariable, conf_level=conf_level)
    return CrudeResults(cohort.label, cohort.source, cohort.reconstructed, cohort.n,
                        cohort.events, conf_type, conf_level, tuple(landmarks), arms,
                        stratified, subgroups, follow, table, cohort.labels.time_unit,
                        (cohort.labels.treated, cohort.labels.control), cohort.n_excluded)
