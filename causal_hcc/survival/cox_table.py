"""Univariable and multivariable Cox models of the outcome on a Cohort (a paper's "Table 3").

:func:`cox_table` fits, for each variable, the univariable Cox model and then the
multivariable model (variables with univariable P below ``select_p``, or as specified),
each HR with its comparison and reference and, beside it, the HR in the direction a
publication printed it (``paper_same_direction``; see the Yang et al. profile, audit C1).
By default the variables are the cohort's own: every model covariate as it is coded
(binary 1 vs 0, numeric per unit, categorical levels vs the reference) and the treatment.
The fitting itself is :func:`causal_hcc.survival.cox.fit_cox`, checked against R
``survival::coxph``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.survival.cox import CoxFit, fit_cox
from causal_hcc.survival.zph import PHTest, cox_zph
from causal_hcc.errors import (ConvergenceWarning, NotEstimableError, SeparationWarning,
                               SmallSampleWarning)


@dataclass(frozen=True)
class CoxVariable:
    """How one Cox term is coded: ``level`` (1) vs ``reference`` (0), or per unit.

    ``rule`` makes the model column: ``"=="`` (1 where the column equals ``value``),
    ``">"`` (1 above the cut ``value``), ``"linear"`` (the column itself, per unit).
    Terms sharing a ``group`` (the levels of one categorical variable) enter every model
    together, as R's factor coding. ``paper_same_direction`` is True when a publication's
    HR is for ``level`` vs ``reference``; ``key`` names the term (in a claims file too).
    ``among`` restricts the reference rows of a categorical level to the reference level.
    """

    key: str
    column: str
    label: str
    level: str
    reference: str
    paper_same_direction: bool
    rule: str
    value: object = 1
    group: str = ""

    @property
    def comparison(self) -> str:
        return f"{self.label}: {self.level} vs {self.reference} (reference: {self.reference})"

    @property
    def paper_comparison(self) -> str:
        if self.paper_same_direction:
            return f"{self.level} vs {self.reference}"
        return f"{self.reference} vs {self.level}"

    def indicator(self, data: pd.DataFrame) -> np.ndarray:
        """1.0 for ``level``, 0.0 for ``reference``, NaN where the value is missing."""
        col = data[self.column]
        missing = col.isna().to_numpy()
        if self.rule == "linear":
            return pd.to_numeric(col).to_numpy(float)
        if self.rule == ">":
            out = (pd.to_numeric(col) > self.value).to_numpy(float)
        else:
            out = (col == self.value).to_numpy(float)
        out[missing] = np.nan
        return out


@dataclass(frozen=True)
class CoxTerm:
    """One HR of a Cox table: comparison, reference, estimate, and the paper's direction.

    ``hr``/``ci_lower``/``ci_upper`` are for ``level`` vs ``reference``;
    ``hr_reversed`` etc. for ``reference`` vs ``level``; ``hr_paper`` etc. in the
    direction of the paper's printed HR (``paper_comparison``). NaN when not estimable.
    """

    variable: str
    model: str
    comparison: str
    level: str
    reference: str
    estimable: bool
    reason: str
    n: int
    events: int
    coef: float = np.nan
    se: float = np.nan
    hr: float = np.nan
    ci_lower: float = np.nan
    ci_upper: float = np.nan
    p: float = np.nan
    hr_reversed: float = np.nan
    ci_lower_reversed: float = np.nan
    ci_upper_reversed: float = np.nan
    paper_comparison: str = ""
    hr_paper: float = np.nan
    ci_lower_paper: float = np.nan
    ci_upper_paper: float = np.nan


def _term(var: CoxVariable, model: str, fit: CoxFit | None, j: int, n: int, events: int,
          reason: str = "") -> CoxTerm:
    base = dict(variable=var.key, model=model, comparison=var.comparison,
                level=var.level, reference=var.reference, n=n, events=events,
                paper_comparison=var.paper_comparison)
    if fit is None:
        return CoxTerm(estimable=False, reason=reason, **base)
    hr, lo, hi = fit.hr[j], fit.ci_lower[j], fit.ci_upper[j]
    paper = (hr, lo, hi) if var.paper_same_direction else (1 / hr, 1 / hi, 1 / lo)
    return CoxTerm(estimable=True, reason="", coef=fit.coef[j], se=fit.se[j], hr=hr,
                   ci_lower=lo, ci_upper=hi, p=fit.p[j], hr_reversed=1 / hr,
                   ci_lower_reversed=1 / hi, ci_upper_reversed=1 / lo, hr_paper=paper[0],
                   ci_lower_paper=paper[1], ci_upper_paper=paper[2], **base)


def _fit_quietly(time, event, x, names, notes, **kwargs):
    """fit_cox, turning trouble into (None, reason) and re-issuing its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_cox(time, event, x, names=names, **kwargs)
        except NotEstimableError as exc:
            return None, str(exc)
    reason = ""
    for w in caught:
        notes.append(str(w.message))
        warnings.warn(w.message, w.category, stacklevel=3)
        if issubclass(w.category, (SeparationWarning, ConvergenceWarning)) and not reason:
            reason = str(w.message)      # the first is the most specific
    return (None, reason) if reason else (fit, "")


@dataclass(frozen=True)
class CoxTable:
    """Univariable and multivariable Cox models of the outcome.

    Attributes
    ----------
    rows : tuple of CoxTerm
        Univariable rows (every variable) then multivariable rows.
    selected : tuple of str
        Variables in the multivariable model.
    selection : str
        How they were chosen ("univariable P < 0.05" or "as specified").
    select_p : float
    multivariable : CoxFit or None
    events_per_variable : float
        Events of the multivariable model per covariate (NaN without one).
    ph_test : PHTest or None
        cox.zph of the multivariable model.
    ph_test_treatment : PHTest or None
        cox.zph of the univariable treatment model.
    ties, variance_type : str
    notes : tuple of str
        Warnings raised while fitting, for the report.
    """

    rows: tuple
    selected: tuple
    selection: str
    select_p: float
    multivariable: CoxFit | None
    events_per_variable: float
    ph_test: PHTest | None
    ph_test_treatment: PHTest | None
    ties: str
    variance_type: str
    notes: tuple = ()

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per (model, variable)."""
        return pd.DataFrame([vars(r) for r in self.rows])

    def summary(self) -> str:
        lines = [f"Cox models of the outcome ({self.ties} ties, {self.variance_type} "
                 f"variance; HR for level vs reference, Wald 95% CI and P):"]
        for r in self.rows:
            est = (f"HR {r.hr:.3f} ({r.ci_lower:.3f}-{r.ci_upper:.3f}), P = {r.p:.3f}"
                   if r.estimable else f"not estimable: {r.reason}")
            lines.append(f"  [{r.model}] {r.comparison}: {est}")
        lines.append(f"Multivariable model: {', '.join(self.selected) or 'none'} "
                     f"({self.selection}); events per variable {self.events_per_variable:.1f}.")
        if self.ph_test is not None:
            lines.append(self.ph_test.summary())
        return "\n".join(lines + [f"Note: {n}" for n in self.notes])


def cohort_variables(cohort) -> tuple[CoxVariable, ...]:
    """The Cox terms of a cohort's own variables: its model covariates, then the treatment.

    Binary covariates: 1 vs 0; numeric: per unit (``linear``); categorical: each level vs
    the reference level (R's treatment contrasts), grouped so that a factor enters every
    model whole. The treatment term is last, keyed by its column name.
    """
    out = []
    for name in cohort.roles.model_covariates:
        label = cohort.labels.variable(name)
        kind = cohort.kind(name)
        if kind == "binary":
            out.append(CoxVariable(name, name, label, "1", "0", True, "==", 1))
        elif kind == "numeric":
            out.append(CoxVariable(name, name, label, "per unit", "", True, "linear"))
        else:
            levels = cohort.levels.get(name) or tuple(sorted(
                cohort.data[name].dropna().astype(str).unique()))
            out += [CoxVariable(f"{name}[{lv}]", name, label, str(lv), str(levels[0]), True,
                                "==", lv, group=name) for lv in levels[1:]]
    t = cohort.roles.treatment
    out.append(CoxVariable(t, t, "treatment", cohort.labels.treated, cohort.labels.control,
                           True, "==", 1))
    return tuple(out)


def cox_table(cohort, variables: tuple[CoxVariable, ...] | None = None, *,
              ties: str = "efron", select_p: float = 0.05, multivariable=None,
              conf_level: float = 0.95) -> CoxTable:
    """Univariable Cox model of the outcome for each variable, then the multivariable model.

    Parameters
    ----------
    cohort : causal_hcc.data.Cohort
    variables : tuple of CoxVariable, optional
        Default :func:`cohort_variables` (the cohort's covariates and treatment); a study
        passes its own (e.g. Yang et al.'s Table 3 with the paper's cut-offs).
    ties : {"efron", "breslow"}
        Efron is the package default (R's); SPSS uses Breslow.
    select_p : float
        Variables with a univariable Wald P below this enter the multivariable model (a
        categorical variable when any of its levels does; it enters whole).
    multivariable : sequence of str, optional
        Keys of the multivariable model, overriding the P-value rule.
    conf_level : float

    Returns
    -------
    CoxTable

    Warns
    -----
    SmallSampleWarning
        Fewer than 10 events per covariate in the multivariable model.
    SeparationWarning, ConvergenceWarning
        From a model; that row is then not estimable, with the reason.

    Notes
    -----
    Each model is a complete-case analysis of its own variables (``n`` per row). The
    model-based variance is used, as R's ``coxph`` (and SPSS's Cox regression).
    """
    variables = cohort_variables(cohort) if variables is None else tuple(variables)
    data, notes = cohort.data, []
    time, event = cohort.time, cohort.event
    rows, uni_p, columns = [], {}, {}
    for group in _groups(variables):
        group_rows, x = _univariable(group, data, time, event, ties, conf_level, notes)
        rows += group_rows
        for var, row, j in zip(group, group_rows, range(len(group))):
            if row.estimable:
                uni_p[var.key], columns[var.key] = row.p, x[:, j]
    small = sorted({r.variable for r in rows if r.estimable and r.events < 10})
    if small:
        _small_sample(f"univariable Cox models with fewer than 10 events ({', '.join(small)})",
                      notes)
    if multivariable is not None:
        selected = tuple(multivariable)
    else:
        chosen = {v.group or v.key for v in variables
                  if v.key in uni_p and uni_p[v.key] < select_p}
        selected = tuple(v.key for v in variables if (v.group or v.key) in chosen)
    multi, epv, multi_rows = _multivariable(selected, variables, columns, time, event, ties,
                                            conf_level, notes)
    treatment = _treatment_zph(cohort.roles.treatment, variables, columns, time, event, ties,
                               notes)
    selection = ("as specified" if multivariable is not None
                 else f"univariable Wald P < {select_p:g}")
    return CoxTable(tuple(rows + multi_rows), selected, selection, select_p, multi, epv,
                    None if multi is None else cox_zph(multi), treatment, ties, "model",
                    tuple(notes))


def _groups(variables) -> list[list[CoxVariable]]:
    """Variables in order, the levels of one categorical variable together."""
    groups: dict[str, list] = {}
    for v in variables:
        groups.setdefault(v.group or f"\0{v.key}", []).append(v)
    return list(groups.values())


def _univariable(group, data, time, event, ties, conf_level, notes):
    column = group[0].column
    if column not in data:
        return [_term(v, "univariable", None, 0, 0, 0, f"column '{column}' is not in the data")
                for v in group], None
    x = np.column_stack([v.indicator(data) for v in group])
    ok = ~np.isnan(x).any(axis=1)
    n, events = int(ok.sum()), int(event[ok].sum())
    if n == 0:
        return [_term(v, "univariable", None, 0, 0, 0, f"'{column}' is all missing")
                for v in group], None
    fit, reason = _fit_quietly(time[ok], event[ok], x[ok], [v.key for v in group], notes,
                               ties=ties, conf_level=conf_level)
    return [_term(v, "univariable", fit, j, n, events, reason)
            for j, v in enumerate(group)], x


def _multivariable(selected, variables, columns, time, event, ties, conf_level, notes):
    by_key = {v.key: v for v in variables}
    unknown = [k for k in selected if k not in columns]
    if not selected or unknown:
        if unknown:
            notes.append(f"multivariable model not fitted: {', '.join(unknown)} not estimable "
                         "or not in the data")
        return None, np.nan, []
    x = np.column_stack([columns[k] for k in selected])
    ok = ~np.isnan(x).any(axis=1)
    events = int(event[ok].sum())
    epv = events / len(selected)
    if epv < 10:
        _small_sample(f"multivariable Cox model: {events} events for {len(selected)} "
                      f"covariates ({epv:.1f} events per variable, below 10)", notes)
    fit, reason = _fit_quietly(time[ok], event[ok], x[ok], list(selected), notes, ties=ties,
                               conf_level=conf_level)
    rows = [_term(by_key[k], "multivariable", fit, j, int(ok.sum()), events, reason)
            for j, k in enumerate(selected)]
    return fit, epv, rows


def _treatment_zph(treatment, variables, columns, time, event, ties, notes):
    key = next((v.key for v in variables if v.column == treatment and v.key in columns), None)
    if key is None:
        return None
    fit, _ = _fit_quietly(time, event, columns[key], [key], notes, ties=ties)
    return None if fit is None else cox_zph(fit)


def _small_sample(message: str, notes: list) -> None:
    notes.append(message)
    warnings.warn(message + "; estimates are unstable.", SmallSampleWarning, stacklevel=4)
