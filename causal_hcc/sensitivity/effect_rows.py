"""Shared pieces of the immortal-time analyses (:mod:`~causal_hcc.sensitivity.immortal_time`,
:mod:`~causal_hcc.sensitivity.time_varying`): one treatment HR per :class:`EffectRow`, the
comparison texts and analysis labels, the treatment-start check, and the dummy coding of
covariates for the Cox terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.errors import CohortError
from causal_hcc.sensitivity._cox import CountingProcessFit


def naive_text(cohort: Cohort) -> str:
    """Comparison text of the naive rows: ever vs never treated, from time zero."""
    lab = cohort.labels
    return f"{lab.treated} ever vs never, from time zero (reference: {lab.control})"


def landmark_text(cohort: Cohort) -> str:
    """Comparison text of the landmark rows: treatment started by the landmark vs not."""
    return (f"{cohort.labels.treated} started by the landmark vs not (reference: not started "
            "by the landmark)")


def time_varying_text(cohort: Cohort) -> str:
    """Comparison text of the time-varying rows: patient-time after the start vs before."""
    return (f"patient-time after the start of {cohort.labels.treated} vs before it or "
            "without it (reference: untreated patient-time)")


def landmark_label(landmark: float, unit: str = "months") -> str:
    """The ``analysis`` name of a landmark's rows, e.g. 'landmark 3 months'."""
    return f"landmark {landmark:g} {unit}"


def require_treatment_start(cohort: Cohort) -> str:
    """The treatment-start column; CohortError when absent or missing for a treated patient."""
    col = cohort.roles.treatment_start
    df = cohort.data
    if not col:
        raise CohortError(["No treatment-start role: landmark and time-varying analyses need "
                           "the time from time zero to the start of treatment of every "
                           "treated patient (role treatment_start; CLI --treatment-start "
                           "COL); without it immortal time cannot be assessed."])
    if col not in df:
        raise CohortError([f"Column '{col}' (treatment start): not in the data. Landmark and "
                           "time-varying analyses need the time from time zero to the start "
                           f"of treatment of every treated patient; add the column '{col}' "
                           "(empty for untreated patients)."])
    missing = (cohort.treated == 1) & df[col].isna().to_numpy()
    if missing.any():
        idx = np.flatnonzero(missing)
        ids = cohort.ids
        shown = ", ".join(f"{i + 1} (id {ids[i]})" for i in idx[:5])
        more = f" and {len(idx) - 5} more" if len(idx) > 5 else ""
        raise CohortError([f"Column '{col}': missing for {len(idx)} treated patients (rows "
                           f"{shown}{more}). The immortal-time analyses need the treatment "
                           "start of every treated patient: fill it in, or exclude those "
                           "patients explicitly (e.g. cohort.subset(...)) and say so."])
    return col


@dataclass(frozen=True)
class EffectRow:
    """One treatment HR of an immortal-time comparison (NaN numbers when not estimable)."""

    analysis: str
    model: str
    hr: float
    ci_lower: float
    ci_upper: float
    p: float
    n: int
    events: int
    n_treated: int
    estimable: bool
    reason: str
    handles_immortal_time: bool
    note: str = ""
    comparison: str = ""


def effect_row_from_fit(analysis, model, fit: CountingProcessFit, term, n, n_treated, handles,
                        note="", comparison=""):
    """The EffectRow of ``term`` (the treatment) in a counting-process Cox fit."""
    est = fit.term(term)
    return EffectRow(analysis, model, est["hr"], est["ci_lower"], est["ci_upper"], est["p"],
                     n, fit.events, n_treated, fit.estimable, fit.reason, handles, note,
                     comparison)


def dummy_coded_frame(frame: pd.DataFrame, covariates, levels) -> tuple[pd.DataFrame, list]:
    """``frame`` with text / declared-categorical covariates dummy-coded (reference level
    first, as the PS design), and the Cox terms; numeric covariates enter as they are."""
    terms, added = [], {}
    for c in covariates:
        col = frame[c]
        categorical = c in levels or not pd.api.types.is_numeric_dtype(col) \
            or pd.api.types.is_bool_dtype(col)
        if not categorical:
            terms.append(c)
            continue
        lv = tuple(levels.get(c) or sorted(col.dropna().astype(str).unique()))
        text = col.astype(str)
        for v in lv[1:]:
            added[f"{c}[{v}]"] = (text == str(v)).to_numpy(float)
            terms.append(f"{c}[{v}]")
    return (frame.assign(**added) if added else frame), terms


def model_name(covariates) -> str:
    """``crude``, or ``adjusted for a, b``."""
    return "crude" if not covariates else "adjusted for " + ", ".join(covariates)


def effect_row_text(r: EffectRow) -> str:
    """One line of a summary: the row's counts and HR (or why it is not estimable)."""
    head = f"{r.analysis}, {r.model}: n={r.n}, events={r.events}, treated={r.n_treated}: "
    if not r.estimable:
        return head + f"not estimable ({r.reason})"
    return head + f"HR {r.hr:.3f} ({r.ci_lower:.3f}-{r.ci_upper:.3f}), P={r.p:.3g}"
