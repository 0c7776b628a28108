"""The paper's Table 3: univariable and multivariable Cox models of OS on a Cohort.

:func:`cox_table` fits, for each Table 3 variable, the univariable Cox model and then the
multivariable model (variables with univariable P below ``select_p``, or as specified),
each HR with its comparison and reference and, beside it, the HR in the direction the
paper printed it (audit.md C1). The fitting itself is :func:`causal_hcc.cox.fit_cox`,
checked against R ``survival::coxph``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.cox import CoxFit, PHTest, cox_zph, fit_cox
from causal_hcc.errors import (ConvergenceWarning, NotEstimableError, SeparationWarning,
                               SmallSampleWarning)


@dataclass(frozen=True)
class CoxVariable:
    """How one Table 3 variable is coded for the Cox model: ``level`` (1) vs ``reference`` (0).

    ``paper_same_direction`` is True when the paper's HR (read as audit C1 prescribes:
    printed "A vs. B" = hazard of B relative to A) is for ``level`` vs ``reference``.
    ``paper_key`` is the variable's key in ``paper_targets.json`` (``cox_table3``).
    """

    paper_key: str
    column: str
    label: str
    level: str
    reference: str
    paper_same_direction: bool
    rule: str            # how the 0/1 indicator is made: "==value", ">cut" or "==1", "==0"
    value: object = 1

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
        if self.rule == ">":
            out = (pd.to_numeric(col) > self.value).to_numpy(float)
        else:
            out = (col == self.value).to_numpy(float)
        out[missing] = np.nan
        return out


TABLE3_VARIABLES: tuple[CoxVariable, ...] = (
    CoxVariable("sex", "sex", "sex", "female", "male", True, "==", "female"),
    CoxVariable("age", "age", "age", ">50 years", "<=50 years", True, ">", 50),
    CoxVariable("hepatitis", "hepatitis", "hepatitis", "no", "yes", True, "==", 0),
    CoxVariable("cirrhosis", "cirrhosis", "cirrhosis", "yes", "no", False, "==", 1),
    CoxVariable("ecog_ps", "ecog", "ECOG PS", "1", "0", True, "==", 1),
    CoxVariable("child_pugh_class", "child_pugh", "Child-Pugh class", "B", "A", True, "==", "B"),
    CoxVariable("afp", "afp_positive", "AFP", "positive", "negative", True, "==", 1),
    CoxVariable("intrahepatic_milan", "milan_within", "intrahepatic lesions",
                "within Milan criteria", "beyond Milan criteria", True, "==", 1),
    CoxVariable("intrahepatic_ccr", "intrahepatic_ccr", "intrahepatic cCR", "yes", "no", True,
                "==", 1),
    CoxVariable("extrahepatic_max_diameter", "extrahepatic_max_diameter_cm",
                "maximum extrahepatic lesion diameter", ">2 cm", "<=2 cm", True, ">", 2),
    CoxVariable("oligometastasis", "oligometastatic", "oligometastasis", "yes", "no", False,
                "==", 1),
    CoxVariable("local_therapy", "local_therapy", "local therapy", "yes", "no", False, "==", 1),
)
"""Table 3 in package convention. Hepatitis keeps the paper's direction (no vs yes);
cirrhosis, oligometastasis and local therapy are reversed relative to the paper's HRs,
whose direction each row keeps in ``hr_paper`` for comparison (audit.md C1)."""


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
    base = dict(variable=var.paper_key, model=model, comparison=var.comparison,
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
    """Univariable and multivariable Cox models of OS (the paper's Table 3).

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
    ph_test_local_therapy : PHTest or None
        cox.zph of the univariable local-therapy model.
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
    ph_test_local_therapy: PHTest | None
    ties: str
    variance_type: str
    notes: tuple = ()

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per (model, variable)."""
        return pd.DataFrame([vars(r) for r in self.rows])

    def summary(self) -> str:
        lines = [f"Cox models of overall survival ({self.ties} ties, {self.variance_type} "
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


def cox_table(cohort, variables: tuple[CoxVariable, ...] = TABLE3_VARIABLES, *,
              ties: str = "efron", select_p: float = 0.05, multivariable=None,
              conf_level: float = 0.95) -> CoxTable:
    """Univariable Cox model of OS for each variable, then the multivariable model.

    Parameters
    ----------
    cohort : causal_hcc.data.Cohort
    variables : tuple of CoxVariable
        Default: the paper's Table 3 variables in package convention.
    ties : {"efron", "breslow"}
        Efron is the package default (R's); SPSS, which the paper used, uses Breslow.
    select_p : float
        Variables with univariable Wald P below this enter the multivariable model.
    multivariable : sequence of str, optional
        ``paper_key`` s of the multivariable model, overriding the P-value rule.
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
    model-based variance is used, as the paper's SPSS Cox regression and R's ``coxph``.
    """
    data, notes = cohort.data, []
    time, event = data["os_months"].to_numpy(float), data["death"].to_numpy(float)
    rows, uni_p, columns = [], {}, {}
    for var in variables:
        row, x = _univariable(var, data, time, event, ties, conf_level, notes)
        rows.append(row)
        if row.estimable:
            uni_p[var.paper_key], columns[var.paper_key] = row.p, x
    small = [r.variable for r in rows if r.estimable and r.events < 10]
    if small:
        _small_sample(f"univariable Cox models with fewer than 10 events ({', '.join(small)})",
                      notes)
    selected = tuple(multivariable) if multivariable is not None else tuple(
        k for k, p in uni_p.items() if p < select_p)
    multi, epv, multi_rows = _multivariable(selected, variables, columns, time, event, ties,
                                            conf_level, notes)
    local = _local_therapy_zph(variables, columns, time, event, ties, notes)
    selection = ("as specified" if multivariable is not None
                 else f"univariable Wald P < {select_p:g}")
    return CoxTable(tuple(rows + multi_rows), selected, selection, select_p, multi, epv,
                    None if multi is None else cox_zph(multi), local, ties, "model",
                    tuple(notes))


def _univariable(var, data, time, event, ties, conf_level, notes):
    if var.column not in data:
        return _term(var, "univariable", None, 0, 0, 0,
                     f"column '{var.column}' is not in the data"), None
    x = var.indicator(data)
    ok = ~np.isnan(x)
    n, events = int(ok.sum()), int(event[ok].sum())
    if n == 0:
        return _term(var, "univariable", None, 0, 0, 0, f"'{var.column}' is all missing"), None
    fit, reason = _fit_quietly(time[ok], event[ok], x[ok], [var.paper_key], notes, ties=ties,
                               conf_level=conf_level)
    return _term(var, "univariable", fit, 0, n, events, reason), x


def _multivariable(selected, variables, columns, time, event, ties, conf_level, notes):
    by_key = {v.paper_key: v for v in variables}
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


def _local_therapy_zph(variables, columns, time, event, ties, notes):
    if "local_therapy" not in columns:
        return None
    fit, _ = _fit_quietly(time, event, columns["local_therapy"], ["local_therapy"], notes,
                          ties=ties)
    return None if fit is None else cox_zph(fit)


def _small_sample(message: str, notes: list) -> None:
    notes.append(message)
    warnings.warn(message + "; estimates are unstable.", SmallSampleWarning, stacklevel=4)
