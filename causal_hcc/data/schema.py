"""The one validation gate: roles first, then a study profile's own checks.

:func:`validate_frame` checks the columns that play a role (time, event, treatment, id,
covariates) in any data frame, collects every problem and raises a single
:class:`~causal_hcc.errors.CohortError` listing them, each naming the column, what was
found, which rows (1-based data rows of the source, with patient ids) and what is allowed.
A :class:`StudyProfile` (e.g. :mod:`causal_hcc.studies.yang2025`) adds its dictionary's
codings and cross-column rules. Columns that play no role pass through untouched.

Covariate kinds are inferred, R-style: numeric 1/0 -> ``binary``; numeric with two other
values (e.g. 1/2) or declared categorical -> ``categorical`` (levels sorted, the first is
the reference, as R's ``factor``); other numeric -> ``numeric``; text -> ``categorical``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort, Exclusion, Labels, Roles, infer_kind
from causal_hcc.data.coerce import (MAX_LISTED, check_categorical, check_time_range,
                                    closest, coerce_binary, coerce_covariate, coerce_time,
                                    coerce_treatment, found_values, missing_mask, rows_text,
                                    distinct_present, duplicated_stripped, seed_coding,
                                    shared_values, stripped_objects)
from causal_hcc.errors import CohortError, DataWarning

@dataclass(frozen=True)
class StudyProfile:
    """What a study adds to the generic gate.

    Attributes
    ----------
    name : str
    roles : Roles
        Default roles (used when the caller names none).
    labels : Labels
    levels : dict
        Categorical variables of the dictionary: levels, reference first.
    coerce : callable
        ``coerce(df, problems, notes) -> DataFrame`` of the dictionary's variables present
        in ``df``, in canonical codings (it appends to ``problems``).
    check : callable, optional
        ``check(coded, df, problems, notes)``: cross-column rules.
    required : tuple of str
        Columns every analysis of this study needs.
    known_columns : tuple of str
        The dictionary's names (the allowed targets of a column mapping).
    integer_columns : tuple of str
        Yes/no variables stored as int 1/0 when they have no missing value.
    provenance : callable, optional
        ``provenance(cohort_source, reconstructed) -> str``: the line every artefact carries.
    """

    name: str
    roles: Roles
    labels: Labels
    levels: dict
    coerce: Callable
    check: Callable | None = None
    required: tuple[str, ...] = ()
    provenance: Callable | None = None
    known_columns: tuple[str, ...] = field(default=())
    integer_columns: tuple[str, ...] = field(default=())


# ----------------------------------------------------------------------------- the gate
def validate_frame(frame: pd.DataFrame, *, roles: Roles | None = None,
                   labels: Labels | dict | None = None, study: StudyProfile | None = None,
                   source: str = "data frame", require: tuple[str, ...] = (),
                   missing: str = "raise", treated_value=None, reconstructed: bool = False,
                   sha256: str | None = None, notes: tuple[str, ...] = (),
                   coded: dict | None = None) -> Cohort:
    """Check a frame's role columns (and a study's dictionary) -> :class:`Cohort`.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per patient. Not modified.
    roles : Roles, optional
        Which column is what; default the study profile's.
    labels : Labels or dict, optional
        Arm, outcome and time labels; a dict may hold ``time_unit``, ``arm_labels``
        (treated, control), ``outcome``, ``time_zero``, ``title`` (None = default).
    study : StudyProfile, optional
        Adds the study's dictionary codings and cross-column rules.
    source : str
        Where the frame came from, carried into every result.
    require : tuple of str
        Further columns the intended analysis needs (checked like the role columns).
    missing : {"raise", "drop"}
        Missing values in needed columns raise by default; ``"drop"`` excludes those rows
        and records each exclusion with its reason in ``Cohort.exclusions``.
    treated_value : optional
        The treatment column's code of the treated group, when it is not 1/yes.
    coded : dict, optional
        ``{column: (codes, uniques)}``: the text reader's factorisation of columns of
        ``frame`` exactly as it read them (stripped text, blank cells missing); taken as
        is, not checked (:func:`causal_hcc.data.io.load_cohort` passes it).

    Returns
    -------
    Cohort

    Raises
    ------
    CohortError
        Listing every problem found, one line each (column, what, rows, allowed values).
    """
    with shared_values():
        return _validate(frame, roles, labels, study, source, require, missing,
                         treated_value, reconstructed, sha256, notes, coded or {})


def _validate(frame, roles, labels, study, source, require, missing, treated_value,
              reconstructed, sha256, notes, coded) -> Cohort:
    if missing not in ("raise", "drop"):
        raise CohortError([f"missing={missing!r}: allowed values are 'raise' and 'drop'."])
    if roles is None:
        if study is None:
            raise CohortError(["No roles given: name the time, event and treatment columns "
                               "(time=, event=, treatment=; CLI --time --event --treatment)."])
        roles = study.roles
    labels = _labels(labels, study)
    problems: list[str] = []
    notes = list(notes)
    dup = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
    if dup:
        raise CohortError([f"Column '{c}': appears {list(frame.columns).count(c)} times in "
                           "the header. Each column name must be unique; rename or drop the "
                           "copies." for c in dup], header=f"{source}: duplicate columns.")
    # A shallow copy with a fresh row index: the caller's frame is never modified (columns
    # are only ever replaced, never written into) and no cell is copied.
    df = frame.copy(deep=False)
    df.index = pd.RangeIndex(len(df))
    df["_row"] = np.arange(1, len(df) + 1)
    for name, (codes, uniques) in coded.items():
        if name in df:
            seed_coding(df[name], codes, uniques)
    if study is not None:
        # A study's dictionary variables are optional unless an analysis needs them:
        # subgroup, candidate and descriptive roles absent from the file are dropped.
        present = set(frame.columns)
        roles = replace(roles, **{k: tuple(c for c in getattr(roles, k) if c in present)
                                  for k in ("subgroups", "candidates", "descriptive")})
    id_col = roles.id
    needed = list(dict.fromkeys(roles.analysis_columns + tuple(require)
                                + (study.required if study else ())))
    for name in needed:
        if name not in df:
            role = _role_of(name, roles)
            problems.append(f"Column '{name}' ({role}): not found.{closest(name, frame.columns)}"
                            f" Columns read: {[str(c) for c in frame.columns][:30]}.")
    if len(df) == 0:
        problems.append("The data has no rows.")
    overlap = {roles.time, roles.event, roles.treatment} & set(roles.model_covariates)
    if overlap:
        problems.append(f"Columns {sorted(overlap)} are both a covariate and the time, event "
                        "or treatment: a covariate must be measured before treatment and "
                        "cannot be the outcome or the treatment itself.")
    if roles.id and roles.id in roles.model_covariates:
        problems.append(f"Column '{roles.id}' is the patient id and cannot be a covariate.")

    if study is not None:
        out = study.coerce(df, problems, notes)
    else:
        # the frame's columns under the fresh index, as df.drop(columns="_row") would give
        # them but without copying the cells: role columns are replaced below, columns
        # without a role pass through as they are
        out = frame.copy(deep=False)
        out.index = df.index
        if "_row" in out.columns:
            out = out.drop(columns="_row")
    handled = set(out.columns) if study is not None else set()
    levels: dict = dict(study.levels) if study is not None else {}
    kinds: dict = {}
    if roles.id and roles.id in df and roles.id not in handled:
        out[roles.id] = stripped_objects(df[roles.id])
    if roles.time in df and roles.time not in handled:
        out[roles.time] = coerce_time(df[roles.time], roles.time, df, problems,
                                      labels.time_unit, id_col)
    elif roles.time in out:
        check_time_range(pd.to_numeric(out[roles.time], errors="coerce"), roles.time, df,
                          problems, labels.time_unit, id_col)
    if roles.event in df and roles.event not in handled:
        out[roles.event] = coerce_binary(df[roles.event], roles.event, df, problems, notes,
                                         "event", id_col)
    treated_code, control_code = 1, 0
    if roles.treatment in df and (roles.treatment not in handled or treated_value is not None):
        out[roles.treatment], treated_code, control_code = coerce_treatment(
            df[roles.treatment], roles.treatment, treated_value, df, problems, notes, id_col)
    for name in dict.fromkeys(roles.model_covariates + roles.subgroups + roles.candidates
                              + tuple(require) + roles.descriptive):
        if name not in df or name in (roles.time, roles.event, roles.treatment, roles.id):
            continue
        if name in handled:
            kinds[name] = infer_kind(out[name], name in levels)
            continue
        kind, values, lv = coerce_covariate(df[name], name, name in roles.categorical,
                                            levels.get(name))
        out[name], kinds[name] = values, kind
        if lv:
            levels[name] = lv
        if kind == "categorical" and name in roles.model_covariates:
            check_categorical(values, name, lv, df, problems, id_col)
        if kind == "categorical" and name in levels and not set(
                distinct_present(values)) <= set(levels[name]):
            bad = values.notna() & ~values.isin(levels[name])
            if bad.any():
                problems.append(f"Column '{name}': values {found_values(values, bad)} in "
                                f"{rows_text(df, bad, id_col)}. Allowed: {list(levels[name])}.")

    if study is None and (labels.treated, labels.control) == ("treated", "control") \
            and control_code is not None:
        # No arm labels given: name the arms by the treatment column and its codes, so
        # every HR says what was compared ("fin = 1 vs fin = 0 (reference)").
        labels = replace(labels, treated=f"{roles.treatment} = {treated_code}",
                         control=f"{roles.treatment} = {control_code}")
    drop, reasons = _missing_rows(df, out, needed, missing, problems, id_col)
    if study is not None and study.check is not None:
        study.check(out, df, problems, notes)
    dup = (duplicated_stripped(df[roles.id]) if roles.id and roles.id in df
           and roles.id not in handled else None)
    _check_ids(out, df, roles, problems, dup)
    _check_zero_times(out, df, roles, notes, id_col)
    if problems:
        raise CohortError(problems, header=f"{source}: {len(problems)} problem"
                          f"{'s' if len(problems) > 1 else ''} found; nothing was analysed.")

    row_ids = out[roles.id] if roles.id and roles.id in out else df["_row"]
    exclusions = tuple(Exclusion(int(df["_row"].iloc[i]), str(row_ids.iloc[i]),
                                 "; ".join(r)) for i, r in sorted(reasons.items()))
    keep = ~drop
    integer = (roles.event, roles.treatment) + (study.integer_columns if study else ())
    for col in dict.fromkeys(integer):
        if col in out and not out[col].isna().any():
            out[col] = out[col].astype(int)
    if roles.id is None:
        out["_row"] = df["_row"]
    data = out.loc[keep.to_numpy()].reset_index(drop=True) if drop.any() else out
    for name, kind in kinds.items():
        if kind == "binary" and name in data and not data[name].isna().any() \
                and name not in handled:
            data[name] = data[name].astype(int)
    extra = None
    if study is not None:
        extra_cols = [c for c in frame.columns if c not in out.columns]
        extra = frame.reset_index(drop=True)[extra_cols].loc[keep.to_numpy()] \
            .reset_index(drop=True) if extra_cols else None
    if exclusions:
        notes.append(f"{len(exclusions)} of {len(df)} rows excluded (missing='drop'); "
                     "each is listed with its reason.")
    post: list[str] = []
    _check_arms(data, roles, labels, post)
    _check_constant(data, roles, kinds, notes)
    if post:
        raise CohortError(post, header=f"{source}: {len(post)} problem"
                          f"{'s' if len(post) > 1 else ''} found; nothing was analysed.")
    provenance = study.provenance(source, reconstructed) if study and study.provenance \
        else ""
    return Cohort(data, roles, labels, source, reconstructed, len(df), exclusions,
                  tuple(notes), sha256, extra, levels, kinds, treated_code, control_code,
                  study.name if study else None, provenance)


def _labels(labels, study) -> Labels:
    base = study.labels if study is not None else Labels()
    if labels is None or isinstance(labels, Labels):
        return labels or base
    arms = labels.get("arm_labels")
    changes = {k: v for k, v in (("time_unit", labels.get("time_unit")),
                                 ("outcome", labels.get("outcome")),
                                 ("time_zero", labels.get("time_zero")),
                                 ("title", labels.get("title"))) if v is not None}
    if arms:
        if len(arms) != 2:
            raise CohortError([f"arm_labels {arms!r}: give two labels, treated first "
                               "(CLI --arm-labels 'TREATED,CONTROL')."])
        changes.update(treated=arms[0], control=arms[1])
    try:
        return Labels(**{**{k: getattr(base, k) for k in ("treated", "control", "outcome",
                                                          "time_unit", "time_zero", "title")},
                         "variables": dict(base.variables), **changes})
    except ValueError as exc:
        raise CohortError([f"time unit: {exc}"]) from exc


def _role_of(name: str, roles: Roles) -> str:
    for role in ("time", "event", "treatment", "id"):
        if getattr(roles, role) == name:
            return role
    if name in roles.covariates:
        return "covariate"
    if name in roles.outcome_covariates:
        return "outcome covariate"
    if name in roles.subgroups:
        return "subgroup"
    return "required"


def _missing_rows(df, out, needed, missing, problems, id_col):
    drop = pd.Series(False, index=df.index)
    reasons: dict[int, list[str]] = {}
    for name in needed:
        if name not in df:
            continue
        # Only what is missing in the source: a value that could not be read is a problem
        # of its own, reported once by the column's coercion.
        miss = missing_mask(df[name])
        if not miss.any():
            continue
        if missing == "raise":
            problems.append(f"Column '{name}' (needed): {int(miss.sum())} missing values "
                            f"({rows_text(df, miss, id_col)}). Fill them in, or pass "
                            "missing='drop' (CLI --missing drop) for a complete-case "
                            "analysis; excluded rows are then reported in every result.")
        else:
            drop |= miss
            for i in np.flatnonzero(miss):
                reasons.setdefault(int(i), []).append(f"missing {name}")
    return drop, reasons


def _check_ids(out, df, roles, problems, dup=None):
    """Duplicate ids; ``dup`` (the rows with a repeated id) when already counted."""
    if roles.id and roles.id in out:
        ids = out[roles.id]
        if dup is None:
            dup = ids.notna() & ids.duplicated(keep=False)
        if dup.any():
            problems.append(f"Column '{roles.id}' (id): duplicate ids "
                            f"{sorted(set(ids[dup]))[:MAX_LISTED]} "
                            f"({rows_text(df, dup, roles.id)}). Each patient must appear "
                            "once (one row per patient).")


def _check_zero_times(out, df, roles, notes, id_col):
    if roles.time in out:
        zero = out[roles.time] == 0
        if zero.any():
            where = rows_text(df, zero, id_col)
            warnings.warn(f"Column '{roles.time}': {int(zero.sum())} zero follow-up times "
                          f"({where}). Kept; check they are not missing dates.",
                          DataWarning, stacklevel=4)
            notes.append(f"'{roles.time}': {int(zero.sum())} zero times kept ({where}).")


def _check_arms(data: pd.DataFrame, roles: Roles, labels: Labels, problems) -> None:
    """Treatment must have two arms, each with at least one event."""
    if data.empty:
        problems.append("No rows left to analyse.")
        return
    if roles.treatment not in data or roles.event not in data:
        return
    levels = sorted(pd.unique(data[roles.treatment]).tolist())
    if len(levels) < 2:
        problems.append(f"Column '{roles.treatment}' (treatment): only one level {levels} in "
                        f"{len(data)} rows. Expected two groups (1 = {labels.treated}, "
                        f"0 = {labels.control}); check the column or the recode.")
        return
    for arm, name in ((1, labels.treated), (0, labels.control)):
        if data.loc[data[roles.treatment] == arm, roles.event].sum() == 0:
            problems.append(f"Column '{roles.event}' (event): no events in the {name} arm "
                            f"({roles.treatment} = {arm}). Hazard ratios are not estimable; "
                            "check the event coding (1 = event, 0 = censored).")


def _single_value(col: pd.Series) -> bool:
    """``col.nunique(dropna=True) < 2``; for numbers without hashing every cell."""
    if col.dtype.kind in "fiub":
        values = col.to_numpy()
        if values.dtype.kind == "f":
            values = values[~np.isnan(values)]
        return len(values) == 0 or bool(np.all(values == values[0]))
    return col.nunique(dropna=True) < 2


def _check_constant(data, roles, kinds, notes) -> None:
    for name in roles.model_covariates:
        if name in data and _single_value(data[name]):
            msg = (f"Covariate '{name}' takes a single value in the analysed rows; it "
                   "carries no information and is left out of every model.")
            warnings.warn(msg, DataWarning, stacklevel=4)
            notes.append(msg)
