"""A validated cohort and the roles its columns play.

The engine never names a study's column: every stage asks the :class:`Cohort` which column
is the time, the event, the treatment, the propensity-score covariates and so on
(:class:`Roles`), and how to label arms, outcome and time (:class:`Labels`). A study
profile (``causal_hcc.studies``) supplies defaults for both; a user names them with
``Cohort.from_frame(df, time=..., event=..., treatment=..., covariates=[...])`` or the
CLI's ``--time --event --treatment --covariates``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType

import numpy as np
import pandas as pd

from causal_hcc.data.units import DAYS_PER_UNIT, TIME_UNITS  # noqa: F401  (re-exported)

KINDS = ("binary", "numeric", "categorical")
TIMINGS = ("baseline", "post-baseline")


def _rebuild(cls, values: dict):
    return cls(**values)


class _PicklableMappings:
    """Pickling for frozen dataclasses whose mappings are read-only views: a
    ``MappingProxyType`` cannot be pickled, so the fields travel as plain dicts and
    ``__post_init__`` wraps them again (e.g. a cohort handed to a worker process)."""

    def __reduce__(self):
        return _rebuild, (type(self), {
            f.name: dict(v) if isinstance(v := getattr(self, f.name), MappingProxyType) else v
            for f in fields(self)})


def infer_kind(column: pd.Series, categorical: bool = False) -> str:
    """The kind of an already coded column: ``categorical`` when declared so or not
    numeric, ``binary`` for numeric 1/0, else ``numeric``."""
    if categorical or not pd.api.types.is_numeric_dtype(column) \
            or pd.api.types.is_bool_dtype(column):
        return "categorical"
    return "binary" if set(pd.unique(column.dropna())) <= {0, 1} else "numeric"


@dataclass(frozen=True)
class Roles:
    """Which column plays which part in the analysis.

    Attributes
    ----------
    time, event, treatment : str
        Follow-up time (>= 0, in ``Labels.time_unit``), event indicator (1 = event,
        0 = censored) and treatment (two groups; which one is treated is decided by the
        validation gate and recorded in ``Cohort.treated_value``).
    id : str or None
        Patient identifier (text, unique); row numbers when None.
    covariates : tuple of str
        Propensity-score covariates: the default adjustment set of every method.
    outcome_covariates : tuple of str
        Extra covariates for outcome models only (multivariable Cox, doubly robust).
    subgroups : tuple of str
        Variables whose levels define subgroup analyses.
    candidates : tuple of str
        Covariates the specification grid may add one at a time.
    categorical : tuple of str
        Covariates declared categorical although they look numeric.
    post_baseline : tuple of str
        Covariates measured after time zero (e.g. a response to therapy): adjusting for
        them is flagged, never silent.
    descriptive : tuple of str
        Further baseline variables shown in Table 1 and the balance tables (not modelled).
    treatment_start : str or None
        Time from time zero to the start of treatment (treated patients; same unit as
        ``time``), for the immortal-time analyses.
    """

    time: str
    event: str
    treatment: str
    id: str | None = None
    covariates: tuple[str, ...] = ()
    outcome_covariates: tuple[str, ...] = ()
    subgroups: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    post_baseline: tuple[str, ...] = ()
    descriptive: tuple[str, ...] = ()
    treatment_start: str | None = None

    def __post_init__(self):
        for name in ("covariates", "outcome_covariates", "subgroups", "candidates",
                     "categorical", "post_baseline", "descriptive"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(dict.fromkeys(value or ())))

    @property
    def analysis_columns(self) -> tuple[str, ...]:
        """Every column with a role (time, event, treatment, id and all covariates)."""
        cols = [self.time, self.event, self.treatment, *([self.id] if self.id else []),
                *self.covariates, *self.outcome_covariates, *self.subgroups,
                *self.candidates]
        return tuple(dict.fromkeys(cols))

    @property
    def balance_variables(self) -> tuple[str, ...]:
        """Every variable a balance table shows: model covariates, candidates, subgroups,
        descriptive variables."""
        return tuple(dict.fromkeys(self.model_covariates + self.candidates + self.subgroups
                                   + self.descriptive))

    @property
    def model_covariates(self) -> tuple[str, ...]:
        """PS covariates then outcome-only covariates: the outcome models' adjustment set."""
        return tuple(dict.fromkeys(self.covariates + self.outcome_covariates))

    def with_covariates(self, covariates) -> "Roles":
        return replace(self, covariates=tuple(covariates))


@dataclass(frozen=True)
class Labels(_PicklableMappings):
    """How results name things: arms, outcome, time unit, time zero, title."""

    treated: str = "treated"
    control: str = "control"
    outcome: str = "event"
    time_unit: str = "months"
    time_zero: str = "not stated"
    title: str = "Observational survival study"
    variables: dict = field(default_factory=dict)   # column -> readable name

    def __post_init__(self):
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit {self.time_unit!r}: use one of {TIME_UNITS}")
        object.__setattr__(self, "variables", MappingProxyType(dict(self.variables)))

    @property
    def comparison(self) -> str:
        """'TREATED vs CONTROL (reference)': the comparison every HR names."""
        return f"{self.treated} vs {self.control} (reference)"

    def arm(self, treated: int | bool) -> str:
        return self.treated if treated else self.control

    def variable(self, column: str) -> str:
        return self.variables.get(column, column)

    @property
    def time_axis(self) -> str:
        """Axis label for time, e.g. 'Months since diagnosis of extrahepatic metastasis'."""
        unit = self.time_unit.capitalize()
        if self.time_zero and self.time_zero != "not stated":
            return f"{unit} since {self.time_zero}"
        return f"{unit} of follow-up"


@dataclass(frozen=True)
class Exclusion:
    """A row left out of the analysis, and why (only with ``missing="drop"``)."""

    row: int
    patient_id: str
    reason: str


@dataclass(frozen=True)
class Cohort(_PicklableMappings):
    """A validated analysis dataset: the data, the roles of its columns, provenance.

    Attributes
    ----------
    data : pandas.DataFrame
        The analysed rows, in the source's column names. Role columns are coded: time
        float, event int 1/0, treatment int 1 (treated) / 0 (control), id text. Columns
        without a role pass through untouched. Treat as read-only.
    roles : Roles
    labels : Labels
    source : str
        Where the data came from (a path, or the bundled reconstruction).
    reconstructed : bool
        True for the bundled pseudo-cohort. Every artefact made from it says so.
    n_read : int
        Rows read from the source, before any opt-in exclusion.
    exclusions : tuple of Exclusion
        Rows excluded (complete-case analysis only), with reasons.
    notes : tuple of str
        What was assumed or recoded while reading.
    sha256 : str or None
        SHA-256 of the source file, for provenance.
    levels : mapping
        Categorical covariates: their levels, the reference first.
    kinds : mapping
        Covariate -> ``binary`` (numeric 1/0), ``numeric`` or ``categorical``.
    treated_value, control_value
        The source codes of the two arms.
    study : str or None
        The study profile the data were validated against (e.g. ``"yang2025"``).
    provenance : str
        Overrides the provenance line (the bundled cohort's reconstruction label).
    """

    data: pd.DataFrame
    roles: Roles
    labels: Labels = field(default_factory=Labels)
    source: str = "data frame"
    reconstructed: bool = False
    n_read: int = 0
    exclusions: tuple[Exclusion, ...] = ()
    notes: tuple[str, ...] = ()
    sha256: str | None = None
    extra: pd.DataFrame | None = field(default=None, repr=False)
    levels: dict = field(default_factory=dict)
    kinds: dict = field(default_factory=dict)
    treated_value: object = 1
    control_value: object = 0
    study: str | None = None
    provenance: str = ""

    def __post_init__(self):
        object.__setattr__(self, "levels", MappingProxyType(
            {k: tuple(v) for k, v in dict(self.levels).items()}))
        object.__setattr__(self, "kinds", MappingProxyType(dict(self.kinds)))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, time: str, event: str, treatment: str,
                   covariates=(), id: str | None = None, outcome_covariates=(),
                   subgroups=(), candidates=(), categorical=(), post_baseline=(),
                   treated_value=None, missing: str = "raise", time_unit: str = "months",
                   arm_labels: tuple[str, str] | None = None, outcome: str = "event",
                   time_zero: str = "not stated", title: str | None = None,
                   source: str = "data frame") -> "Cohort":
        """Validate a DataFrame whose columns are named by role; see
        :func:`causal_hcc.data.schema.validate_frame`.

        Examples
        --------
        >>> from lifelines.datasets import load_rossi
        >>> cohort = Cohort.from_frame(load_rossi(), time="week", event="arrest",
        ...                            treatment="fin", covariates=["age", "prio"],
        ...                            time_unit="weeks")
        """
        from causal_hcc.data.schema import validate_frame
        roles = Roles(time=time, event=event, treatment=treatment, id=id,
                      covariates=covariates, outcome_covariates=outcome_covariates,
                      subgroups=subgroups, candidates=candidates, categorical=categorical,
                      post_baseline=post_baseline)
        return validate_frame(frame, roles=roles, source=source, missing=missing,
                              treated_value=treated_value,
                              labels=dict(time_unit=time_unit, arm_labels=arm_labels,
                                          outcome=outcome, time_zero=time_zero,
                                          title=title))

    # ------------------------------------------------------------------ role access
    @property
    def n(self) -> int:
        return len(self.data)

    @property
    def time(self) -> np.ndarray:
        """Follow-up times as float (``labels.time_unit``)."""
        return self.data[self.roles.time].to_numpy(float)

    @property
    def event(self) -> np.ndarray:
        """Event indicator as float 1/0."""
        return self.data[self.roles.event].to_numpy(float)

    @property
    def treated(self) -> np.ndarray:
        """Treatment indicator as int 1 (treated) / 0 (control)."""
        return self.data[self.roles.treatment].to_numpy(int)

    @property
    def ids(self) -> np.ndarray:
        """Patient ids as text (1-based row numbers of the source when no id role)."""
        if self.roles.id:
            return self.data[self.roles.id].astype(str).to_numpy(object)
        return self.data["_row"].astype(str).to_numpy(object) if "_row" in self.data \
            else np.array([str(i + 1) for i in range(self.n)], dtype=object)

    @property
    def covariates(self) -> tuple[str, ...]:
        return self.roles.covariates

    @property
    def n_treated(self) -> int:
        return int(self.treated.sum())

    @property
    def n_control(self) -> int:
        return self.n - self.n_treated

    @property
    def events(self) -> int:
        return int(self.event.sum())

    @property
    def n_excluded(self) -> int:
        return len(self.exclusions)

    @property
    def label(self) -> str:
        """Provenance line to print on every artefact made from this cohort."""
        if self.provenance:
            return self.provenance
        return f"Patient-level data from {self.source}"

    def kind(self, column: str) -> str:
        """``binary``, ``numeric`` or ``categorical`` for a covariate (inferred if unseen)."""
        return self.kinds.get(column) or infer_kind(self.data[column], column in self.levels)

    def post_baseline_in(self, covariates) -> tuple[str, ...]:
        """The covariates among ``covariates`` measured after time zero."""
        return tuple(c for c in covariates if c in self.roles.post_baseline)

    # ------------------------------------------------------------------ derived cohorts
    def with_roles(self, **changes) -> "Cohort":
        """The same data with some roles changed (columns must already be validated)."""
        return replace(self, roles=replace(self.roles, **changes))

    def subset(self, mask, description: str) -> "Cohort":
        """Rows where ``mask`` is true, as a new Cohort (e.g. a subgroup)."""
        mask = np.asarray(mask, dtype=bool)
        extra = None if self.extra is None else self.extra.loc[mask].reset_index(drop=True)
        return replace(self, data=self.data.loc[mask].reset_index(drop=True),
                       source=f"{self.source} [{description}]", extra=extra)

    def summary(self) -> str:
        r, lab = self.roles, self.labels
        lines = [self.label,
                 f"{self.n_read} rows read; {self.n} analysed "
                 f"({self.n_treated} {lab.treated}, {self.n_control} {lab.control}); "
                 f"{self.events} {lab.outcome}{'' if lab.outcome.endswith('s') else 's'}.",
                 f"Roles: time '{r.time}' ({lab.time_unit}), event '{r.event}', treatment "
                 f"'{r.treatment}' (treated = {self.treated_value!r}, control = "
                 f"{self.control_value!r}), id '{r.id or '(row number)'}'.",
                 f"Propensity-score covariates: {', '.join(r.covariates) or 'none named'}."]
        if r.outcome_covariates:
            lines.append(f"Outcome-model covariates: {', '.join(r.outcome_covariates)}.")
        for name in r.model_covariates:
            if self.kind(name) == "categorical":
                lv = self.levels.get(name, ())
                lines.append(f"  {name}: categorical, levels {list(lv)} (reference "
                             f"{lv[0]!r})." if lv else f"  {name}: categorical.")
        if r.post_baseline:
            lines.append("Measured after time zero (flagged when adjusted for): "
                         f"{', '.join(r.post_baseline)}.")
        if self.exclusions:
            lines.append(f"{len(self.exclusions)} rows excluded (complete-case analysis, "
                         "missing='drop'):")
            lines += [f"  row {e.row} ({e.patient_id}): {e.reason}" for e in self.exclusions]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def exclusions_frame(self) -> pd.DataFrame:
        """``patient_id``, ``row``, ``reason`` of every excluded row."""
        return pd.DataFrame([vars(e) for e in self.exclusions],
                            columns=["row", "patient_id", "reason"])
