"""Treatment as a time-varying covariate: counting-process (start, stop] rows split at the
start of treatment, and the Cox model on them (:func:`time_varying_cox`), without and with
the confounders.

Treatment is 0 from time zero until it starts and 1 after, so no immortal time is credited
to the treated. Times are in the cohort's unit. Cox models use Efron ties and agree with
R's ``coxph(Surv(start, stop, event) ~ tx + ..., ties = "efron")`` on the rows of
``tmerge`` (checked in ``tests/reference/immortal_time.R``).

References
----------
Suissa S. Immortal time bias in pharmaco-epidemiology. Am J Epidemiol 2008;167:492-499.
Crowley J, Hu M. Covariance analysis of heart transplant survival data. J Am Stat Assoc
1977;72:27-36 (the Stanford heart transplant data, R ``survival::heart``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.sensitivity._cox import CountingProcessFit, fit_counting_process_cox
from causal_hcc.sensitivity.effect_rows import (EffectRow, dummy_coded_frame,
                                                effect_row_from_fit, effect_row_text,
                                                model_name, require_treatment_start,
                                                time_varying_text)


@dataclass(frozen=True)
class CountingProcessData:
    """Counting-process (start, stop] rows with local therapy as a time-varying covariate.

    ``data`` columns: patient_id, start, stop, death (1 only on a patient's last row if
    they died), local_therapy (0 before the first local therapy, 1 from then on), then
    the baseline covariates carried on every row. ``excluded``: patient ids left out and
    why; ``notes``: conventions applied.
    """

    data: pd.DataFrame
    n_patients: int
    n_split: int
    excluded: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        return self.data.copy()

    def summary(self) -> str:
        lines = [f"{len(self.data)} (start, stop] rows for {self.n_patients} patients; "
                 f"{self.n_split} treated patients split at the start of local therapy."]
        lines += [f"Excluded {pid}: {why}" for pid, why in self.excluded]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def counting_process_data(cohort: Cohort, covariates=None) -> CountingProcessData:
    """Split each treated patient's follow-up at the start of treatment.

    Parameters
    ----------
    cohort : Cohort
        Needs the ``treatment_start`` role for every treated patient.
    covariates : sequence of str, optional
        Baseline columns to carry on every row; default the cohort's model covariates.

    Returns
    -------
    CountingProcessData
        Columns: the id (``cohort.roles.id``, else ``id``), ``start``, ``stop``, the event
        column, the treatment column, then the covariates.

    Notes
    -----
    Untreated: one row (0, time]. Treated with treatment start t: rows (0, t] with
    treatment 0 and no event, and (t, time] with treatment 1 carrying the event indicator.
    t = 0: one row (0, time] treated from time zero. t = time (treatment on the last day of
    follow-up): one untreated row, since no follow-up remains after the start. time = 0:
    excluded (a (0, 0] interval is empty; R's coxph refuses it), listed in ``excluded``.
    Equivalent to R's ``tmerge(..., death = event(time, death), tx = tdc(start))``.
    """
    start_col = require_treatment_start(cohort)
    r = cohort.roles
    df = cohort.data
    id_col = r.id or "id"
    if covariates is None:
        covariates = r.model_covariates
    covariates = list(covariates)
    zero = cohort.time <= 0
    ids = cohort.ids
    excluded = tuple((str(pid), f"{r.time} = 0: no follow-up time, an empty (0, 0] interval")
                     for pid in ids[zero])
    d = df.loc[~zero]
    treated = cohort.treated[~zero] == 1
    ttl = d[start_col].to_numpy(dtype=float)
    stop = cohort.time[~zero]
    event = cohort.event[~zero].astype(int)
    split = treated & (ttl > 0) & (ttl < stop)
    at_end = treated & (ttl >= stop)
    base = d[covariates].reset_index(drop=True)
    base.insert(0, id_col, ids[~zero])
    first = base.assign(start=0.0, stop=np.where(split, ttl, stop),
                        **{r.event: np.where(split, 0, event),
                           r.treatment: (treated & ~split & ~at_end).astype(int)})
    second = base.loc[split].assign(start=ttl[split], stop=stop[split],
                                    **{r.event: event[split], r.treatment: 1})
    rows = pd.concat([first, second], ignore_index=True)
    rows["_order"] = np.r_[np.arange(len(first)) * 2, np.flatnonzero(split) * 2 + 1]
    rows = rows.sort_values("_order", kind="stable").drop(columns="_order")
    rows = rows[[id_col, "start", "stop", r.event, r.treatment, *covariates]]
    notes = [f"{r.treatment} is 0 from time zero until {start_col} and 1 after "
             f"(intervals (start, stop], {cohort.labels.time_unit})."]
    if at_end.any():
        notes.append(f"{int(at_end.sum())} treated patients start treatment on their "
                     "last day of follow-up; they contribute untreated time only.")
    if (treated & (ttl == 0)).any():
        notes.append(f"{int((treated & (ttl == 0)).sum())} treated patients start at time "
                     "zero and are treated throughout.")
    return CountingProcessData(rows.reset_index(drop=True), int((~zero).sum()),
                               int(split.sum()), excluded, tuple(notes))


def counting_process_cox(frame: pd.DataFrame, covariates, *, start_col: str = "start",
                         stop_col: str = "stop", event_col: str = "event",
                         id_col: str | None = None, exposure: str | None = None,
                         conf_level: float = 0.95) -> CountingProcessFit:
    """Cox model on any (start, stop] data, Efron ties: R's ``coxph(Surv(start, stop, event)
    ~ ...)``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Counting-process rows; times in months (or any unit). Not modified.
    covariates : sequence of str
        Numeric covariates, the first usually the time-varying treatment.
    start_col, stop_col, event_col, id_col : str
    exposure : str, optional
        Binary covariate whose both levels must carry events (else not estimable).
    conf_level : float

    Returns
    -------
    CountingProcessFit
        ``to_frame()`` lists every term: coef, se, hr, ci_lower, ci_upper, p.
    """
    return fit_counting_process_cox(frame, terms=list(covariates), stop_col=stop_col,
                                    event_col=event_col, start_col=start_col, id_col=id_col,
                                    exposure=exposure, conf_level=conf_level)


@dataclass(frozen=True)
class TimeVaryingCox:
    """HR of treatment as a time-varying covariate, without and with confounders.

    ``fits``: the full :class:`CountingProcessFit` per model (every term); ``rows``: the
    treatment HR per model.
    """

    rows: tuple[EffectRow, ...]
    fits: tuple[CountingProcessFit, ...]
    counting_process: CountingProcessData
    cohort_label: str

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([dataclasses.asdict(r) for r in self.rows])

    def summary(self) -> str:
        lines = [self.cohort_label, "Treatment as a time-varying covariate (0 before, 1 "
                 "after its start; Cox, Efron ties, (start, stop] rows):"]
        lines += ["  " + effect_row_text(r) for r in self.rows]
        lines.append("  " + self.counting_process.summary().replace("\n", "\n  "))
        return "\n".join(lines)


def time_varying_cox(cohort: Cohort, covariates=(), conf_level: float = 0.95) -> TimeVaryingCox:
    """Cox model with local therapy as a time-varying covariate.

    Parameters
    ----------
    cohort : Cohort
        Needs ``months_to_local_therapy`` for every treated patient (else CohortError).
    covariates : sequence of str
        Baseline confounders; when given, an adjusted model is fitted besides the crude one.
    conf_level : float

    Returns
    -------
    TimeVaryingCox

    Notes
    -----
    R: ``coxph(Surv(start, stop, death) ~ local_therapy + ..., ties = "efron")`` on the
    rows of :func:`counting_process_data`. The HR compares patient-time after the start of
    local therapy with patient-time before it or without it, so no immortal time is
    credited to the treated.

    References
    ----------
    Suissa S. Am J Epidemiol 2008;167:492-499.
    """
    covariates = tuple(covariates)
    r = cohort.roles
    cp = counting_process_data(cohort, covariates)
    id_col = cp.data.columns[0]
    rows, fits = [], []
    for covs in ((),) + ((covariates,) if covariates else ()):
        frame, terms = dummy_coded_frame(cp.data, covs, cohort.levels)
        fit = counting_process_cox(frame, [r.treatment, *terms], stop_col="stop",
                                   event_col=r.event, id_col=id_col,
                                   exposure=r.treatment, conf_level=conf_level)
        fits.append(fit)
        rows.append(effect_row_from_fit(f"time-varying {cohort.labels.treated}", model_name(covs),
                                  fit, r.treatment, cp.n_patients, cohort.n_treated, True, "",
                                  time_varying_text(cohort)))
    return TimeVaryingCox(tuple(rows), tuple(fits), cp, cohort.label)
