"""Immortal time: landmark and time-varying analyses of a treatment that starts late.

When treatment starts some time after the start of follow-up (the cohort's
``treatment_start`` role: time from time zero to the start of treatment, for treated
patients), a patient had to survive to receive it. A baseline comparison of "ever
treated" vs "never treated" credits the treated arm with that immortal waiting time. Two
standard remedies are provided:

- landmark analysis: keep patients alive and under follow-up at a landmark L, classify
  them by whether treatment had *started by L*, and restart the clock at L;
- time-varying Cox model: treatment is 0 from time zero until it starts and 1 after, on
  counting-process (start, stop] rows.

Landmark analyses are here; the time-varying model is in
:mod:`~causal_hcc.sensitivity.time_varying`. :func:`naive_vs_immortal_table` sets the
naive baseline Cox model beside both. Without a
``treatment_start`` role these analyses cannot be run (CohortError saying so, which
``run_sensitivity`` lists as unavailable).

Times are in the cohort's unit (``cohort.labels.time_unit``). Cox models use Efron ties and agree with R's
``coxph(Surv(start, stop, event) ~ tx + ..., ties = "efron")`` (checked in
``tests/reference/immortal_time.R`` on survival's ``heart`` data and a synthetic cohort).

References
----------
Anderson JR, Cain KC, Gelber RD. Analysis of survival by tumor response. J Clin Oncol
1983;1:710-719 (landmark method).
Suissa S. Immortal time bias in pharmaco-epidemiology. Am J Epidemiol 2008;167:492-499.
Crowley J, Hu M. Covariance analysis of heart transplant survival data. J Am Stat Assoc
1977;72:27-36 (the Stanford heart transplant data, R ``survival::heart``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.errors import CohortError, NotEstimableError
from causal_hcc.sensitivity._cox import fit_counting_process_cox
from causal_hcc.sensitivity.effect_rows import (EffectRow, dummy_coded_frame,
                                                effect_row_from_fit, effect_row_text,
                                                landmark_label, landmark_text, model_name,
                                                naive_text, require_treatment_start)
from causal_hcc.sensitivity.time_varying import time_varying_cox


def default_immortal_landmarks(cohort: Cohort) -> tuple[float, ...]:
    """Default landmarks: the quartiles of the treatment start among the treated.

    Rule: the 25th, 50th and 75th percentiles of ``treatment_start`` among treated patients
    who start after time zero, rounded to 3 significant digits, distinct, positive and
    before the longest follow-up. A study may give its own (Yang 2025: 1, 3, 6 months).
    Empty without a ``treatment_start`` role.
    """
    col = cohort.roles.treatment_start
    if not col or col not in cohort.data:
        return ()
    start = cohort.data[col].to_numpy(float)[cohort.treated == 1]
    start = start[np.isfinite(start) & (start > 0)]
    if not start.size:
        return ()
    longest = float(cohort.time.max())
    q = [float(f"{v:.3g}") for v in np.quantile(start, [0.25, 0.5, 0.75])]
    return tuple(v for v in dict.fromkeys(q) if 0 < v < longest)


@dataclass(frozen=True)
class LandmarkDataset:
    """Patients alive and under follow-up at a landmark, classified by treatment by then.

    Attributes
    ----------
    landmark_months : float
    cohort : Cohort
        The landmark population: ``os_months`` is time since the landmark,
        ``local_therapy`` is 1 if local therapy started at or before the landmark,
        ``months_to_local_therapy`` is 0 for those (treated from the new time zero) and
        empty for the rest.
    patients : pandas.DataFrame
        One row per patient of the original cohort: patient_id, status ("included",
        "excluded: died before the landmark", "excluded: censored before the landmark"),
        treated_at_baseline (ever treated), treated_by_landmark, reclassified.
    n_excluded_died, n_excluded_censored, n_reclassified, n_treated_by_landmark : int
    """

    landmark_months: float
    cohort: Cohort
    patients: pd.DataFrame
    n_excluded_died: int
    n_excluded_censored: int
    n_reclassified: int
    n_treated_by_landmark: int

    @property
    def n(self) -> int:
        return self.cohort.n

    @property
    def events(self) -> int:
        return self.cohort.events

    def to_frame(self) -> pd.DataFrame:
        return self.patients.copy()

    def summary(self) -> str:
        lab = self.cohort.labels
        return (f"Landmark {self.landmark_months:g} {lab.time_unit}: {self.n} patients alive "
                f"and under follow-up ({self.n_treated_by_landmark} with {lab.treated} "
                f"started by the landmark), {self.events} events ({lab.outcome}) after it. "
                f"Excluded: {self.n_excluded_died} with the event and "
                f"{self.n_excluded_censored} censored at or before the landmark. "
                f"{self.n_reclassified} treated patients whose treatment started after the "
                "landmark count as untreated at the landmark. Time is measured from the "
                "landmark.")


def landmark_dataset(cohort: Cohort, landmark_months: float) -> LandmarkDataset:
    """The landmark population: alive at L, treated = local therapy started by L.

    Parameters
    ----------
    cohort : Cohort
        Needs ``months_to_local_therapy`` for every treated patient.
    landmark_months : float
        The landmark L (months from time zero).

    Returns
    -------
    LandmarkDataset

    Notes
    -----
    Kept: ``os_months > L`` (a death or censoring exactly at L leaves no follow-up after
    it). Treated at the landmark: local therapy with ``months_to_local_therapy <= L``.
    Treated patients whose therapy starts after L are *untreated at the landmark*
    (reclassified): the landmark comparison is by what was known at L, which removes the
    immortal time. New time: ``os_months - L``. R equivalent:
    ``subset(d, os > L)`` with ``tx = !is.na(ttl) & ttl <= L`` and ``Surv(os - L, death)``.

    References
    ----------
    Anderson JR, Cain KC, Gelber RD. J Clin Oncol 1983;1:710-719.
    """
    if not landmark_months >= 0:
        raise ValueError(f"landmark_months must be >= 0; got {landmark_months!r}.")
    start_col = require_treatment_start(cohort)
    r = cohort.roles
    df = cohort.data
    L = float(landmark_months)
    alive = cohort.time > L
    ever = cohort.treated == 1
    by_l = ever & (df[start_col].to_numpy(float) <= L)
    died = ~alive & (cohort.event == 1)
    status = np.where(alive, "included", np.where(died, "excluded: died before the landmark",
                                                  "excluded: censored before the landmark"))
    patients = pd.DataFrame({"patient_id": cohort.ids, "status": status,
                             "treated_at_baseline": ever.astype(int),
                             "treated_by_landmark": by_l.astype(int),
                             "reclassified": (alive & ever & ~by_l).astype(int)})
    data = df.loc[alive].copy()
    data[r.time] = data[r.time] - L
    data[r.treatment] = by_l[alive].astype(int)
    data[start_col] = np.where(by_l[alive], 0.0, np.nan)
    extra = None if cohort.extra is None else cohort.extra.loc[alive].reset_index(drop=True)
    note = (f"Landmark {L:g} {cohort.labels.time_unit}: time since the landmark; treatment = "
            "started by the landmark (later starters count as untreated).")
    sub = dataclasses.replace(cohort, data=data.reset_index(drop=True),
                              source=f"{cohort.source} "
                                     f"[{landmark_label(L, cohort.labels.time_unit)}]",
                              notes=cohort.notes + (note,), extra=extra)
    return LandmarkDataset(L, sub, patients, int(died.sum()), int((~alive & ~died).sum()),
                           int((alive & ever & ~by_l).sum()), int(by_l[alive].sum()))


@dataclass(frozen=True)
class LandmarkAnalysis:
    """Treatment HRs at each landmark (crude, covariate-adjusted, and the ``adjust`` hook).

    ``rows``: one :class:`EffectRow` per landmark and model; ``datasets``: the landmark
    populations with their exclusion and reclassification counts.
    """

    rows: tuple[EffectRow, ...]
    datasets: tuple[LandmarkDataset, ...]
    cohort_label: str

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame([dataclasses.asdict(r) for r in self.rows])
        counts = pd.DataFrame([{"analysis": landmark_label(
                                    d.landmark_months, d.cohort.labels.time_unit),
                                "landmark_months": d.landmark_months,
                                "n_excluded_died": d.n_excluded_died,
                                "n_excluded_censored": d.n_excluded_censored,
                                "n_reclassified": d.n_reclassified} for d in self.datasets])
        return frame.merge(counts, on="analysis", how="left")

    def summary(self) -> str:
        lines = [self.cohort_label, "Landmark analysis (HR of treatment started by the "
                 "landmark vs not; Cox, Efron ties; time from the landmark):"]
        for d in self.datasets:
            lines.append("  " + d.summary())
        lines += ["  " + effect_row_text(r) for r in self.rows]
        return "\n".join(lines)


AdjustHook = Callable[[Cohort], tuple]


def _hook_row(analysis, adjust: AdjustHook, sub: Cohort, n_treated) -> EffectRow:
    name = getattr(adjust, "__name__", type(adjust).__name__)
    LANDMARK = landmark_text(sub)
    try:
        hr, lo, hi, p = (float(x) for x in adjust(sub))
    except NotEstimableError as exc:
        return EffectRow(analysis, f"adjust hook: {name}", np.nan, np.nan, np.nan, np.nan,
                         sub.n, sub.events, n_treated, False, str(exc), True, "", LANDMARK)
    return EffectRow(analysis, f"adjust hook: {name}", hr, lo, hi, p, sub.n, sub.events,
                     n_treated, True, "", True, "", LANDMARK)


def landmark_analysis(cohort: Cohort, landmarks=None, covariates=(),
                      adjust: AdjustHook | None = None,
                      conf_level: float = 0.95) -> LandmarkAnalysis:
    """Cox HR of treatment started by each landmark vs not, among landmark survivors.

    Parameters
    ----------
    cohort : Cohort
    landmarks : sequence of float, optional
        Landmarks from time zero (cohort's unit); default
        :func:`default_immortal_landmarks`.
    covariates : sequence of str
        Baseline covariates for an adjusted Cox model (besides the crude one).
    adjust : callable, optional
        ``adjust(cohort_at_landmark) -> (hr, ci_lower, ci_upper, p)``: another adjustment
        run on each landmark population (e.g. a propensity score re-estimated among the
        landmark survivors). Raising :class:`~causal_hcc.errors.NotEstimableError` gives a
        "not estimable" row.
    conf_level : float

    Returns
    -------
    LandmarkAnalysis
        Rows per landmark: n, events, n treated by the landmark, HR, CI, Wald P; exclusion
        and reclassification counts in ``to_frame()``.

    Notes
    -----
    R: ``coxph(Surv(os - L, death) ~ tx, data = subset(d, os > L), ties = "efron")``
    with ``tx = ttl <= L``. A landmark with an arm empty or without deaths is reported as
    not estimable, with the reason.
    """
    require_treatment_start(cohort)
    landmarks = default_immortal_landmarks(cohort) if landmarks is None else tuple(landmarks)
    if not landmarks:
        raise CohortError(["No landmark: no treated patient starts treatment after time zero "
                           "and before the end of follow-up; pass landmarks=[...] "
                           "(CLI --immortal-landmarks)."])
    r = cohort.roles
    rows, datasets = [], []
    for L in landmarks:
        lm = landmark_dataset(cohort, L)
        datasets.append(lm)
        label = landmark_label(L, cohort.labels.time_unit)
        data = lm.cohort.data
        for covs in ((),) + ((tuple(covariates),) if covariates else ()):
            frame, terms = dummy_coded_frame(data, covs, cohort.levels)
            fit = fit_counting_process_cox(frame, terms=[r.treatment, *terms],
                                           stop_col=r.time, event_col=r.event,
                                           exposure=r.treatment, conf_level=conf_level)
            rows.append(effect_row_from_fit(label, model_name(covs), fit, r.treatment, lm.n,
                                      lm.n_treated_by_landmark, True,
                                      f"{lm.n_reclassified} later starters counted as "
                                      "untreated", landmark_text(cohort)))
        if adjust is not None:
            rows.append(_hook_row(label, adjust, lm.cohort, lm.n_treated_by_landmark))
    return LandmarkAnalysis(tuple(rows), tuple(datasets), cohort.label)


@dataclass(frozen=True)
class ImmortalTimeComparison:
    """Naive baseline Cox model beside the landmark and time-varying analyses."""

    rows: tuple[EffectRow, ...]
    cohort_label: str
    notes: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([dataclasses.asdict(r) for r in self.rows])

    def summary(self) -> str:
        lines = [self.cohort_label, "Local therapy vs none: naive vs immortal-time-aware "
                 "analyses (Cox, Efron ties; HR < 1 favours the treated arm):"]
        lines += ["  " + effect_row_text(r) for r in self.rows]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def naive_vs_immortal_table(cohort: Cohort, landmarks=None, covariates=(),
                            adjust: AdjustHook | None = None,
                            conf_level: float = 0.95) -> ImmortalTimeComparison:
    """Side by side: naive baseline Cox, landmark analyses, time-varying Cox.

    Parameters
    ----------
    cohort : Cohort
    landmarks : sequence of float
        Landmarks (cohort's unit); default :func:`default_immortal_landmarks`.
    covariates : sequence of str
        Confounders: each analysis is also run adjusted for them.
    adjust : callable, optional
        Passed to :func:`landmark_analysis`.
    conf_level : float

    Returns
    -------
    ImmortalTimeComparison
        ``handles_immortal_time`` is False only for the naive rows, which treat local
        therapy as known at time zero (the paper's analysis; audit B10).
    """
    covariates = tuple(covariates)
    r = cohort.roles
    rows = []
    for covs in ((),) + ((covariates,) if covariates else ()):
        frame, terms = dummy_coded_frame(cohort.data, covs, cohort.levels)
        fit = fit_counting_process_cox(frame, terms=[r.treatment, *terms], stop_col=r.time,
                                       event_col=r.event, exposure=r.treatment,
                                       conf_level=conf_level)
        rows.append(effect_row_from_fit("naive baseline", model_name(covs), fit, r.treatment,
                                  cohort.n, cohort.n_treated, False,
                                  "ever vs never treated from time zero: immortal time "
                                  "credited to the treated", naive_text(cohort)))
    rows += landmark_analysis(cohort, landmarks, covariates, adjust, conf_level).rows
    rows += time_varying_cox(cohort, covariates, conf_level).rows
    notes = ("Landmark rows: patients alive at the landmark; treated = treatment started "
             "by it; later starters count as untreated.",
             "Time-varying rows: treatment switches from 0 to 1 at its start.")
    return ImmortalTimeComparison(tuple(rows), cohort.label, notes)
