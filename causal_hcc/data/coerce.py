"""Reading one column for its role: yes/no codes, times, treatment groups, covariate kinds.

The pieces of the validation gate (:mod:`causal_hcc.data.schema`) that look at a single
column. Each appends problems (column, what was found, which rows, what is allowed) to a
list instead of raising, so that the gate can report every problem at once.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import DAYS_PER_UNIT


# Unambiguous spellings of yes/no accepted without a value map; anything else (e.g. 1/2
# codings of an event) needs an explicit recode, because its direction cannot be guessed.
YES = {"1", "1.0", "yes", "y", "true", "t"}
NO = {"0", "0.0", "no", "n", "false", "f"}
MAX_LISTED = 5
#: Longest plausible follow-up (150 years) in each unit: beyond it the unit is wrong.
MAX_FOLLOW_UP_DAYS = 150 * 365.25


# ----------------------------------------------------------------------------- messages
def rows_text(df: pd.DataFrame, mask, id_col: str | None = None) -> str:
    """'rows 3, 7 (id P003, P007)' for the first few offending rows, 1-based."""
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    shown = idx[:MAX_LISTED]
    rows = ", ".join(str(int(df["_row"].iloc[i])) for i in shown)
    text = f"row{'s' if len(idx) > 1 else ''} {rows}"
    if id_col and id_col in df and df[id_col].notna().iloc[shown].all():
        text += " (id " + ", ".join(str(df[id_col].iloc[i]) for i in shown) + ")"
    if len(idx) > MAX_LISTED:
        text += f" and {len(idx) - MAX_LISTED} more"
    return text


def found_values(col: pd.Series, mask) -> list[str]:
    return sorted(set(col[mask].astype(str)))[:MAX_LISTED]


def closest(name: str, choices) -> str:
    """' Did you mean 'x'?' when a close match exists, else ''."""
    hit = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean '{hit[0]}'?" if hit else ""


def missing_mask(col: pd.Series) -> pd.Series:
    return col.isna() | (col.astype("string").str.strip() == "")


# ----------------------------------------------------------------------------- coercion
def coerce_binary(col: pd.Series, name: str, df, problems, notes, role: str,
                  id_col=None) -> pd.Series:
    """1/0 (or yes/no, true/false) -> float 1.0/0.0; anything else is a problem."""
    text = col.astype("string").str.strip().str.lower()
    present = ~missing_mask(col)
    out = pd.Series(np.nan, index=col.index, dtype=float)
    out[present & text.isin(YES)] = 1.0
    out[present & text.isin(NO)] = 0.0
    bad = present & out.isna()
    if bad.any():
        problems.append(
            f"Column '{name}' ({role}): values {found_values(col, bad)} in "
            f"{rows_text(df, bad, id_col)}. Allowed: 1/0 (or yes/no, true/false). Say which "
            f"source code means what with --recode {name}:CODE=1,CODE=0 (one pair per "
            "code); nothing is guessed.")
    spelled = present & ~bad & ~text.isin({"0", "1", "0.0", "1.0"})
    if spelled.any():
        notes.append(f"'{name}': read {found_values(col, spelled)} as 1/0.")
    return out


def coerce_time(col: pd.Series, name: str, df, problems, unit: str, id_col=None) -> pd.Series:
    """Finite, non-negative numbers below 150 years in ``unit``."""
    values = pd.to_numeric(col, errors="coerce")
    present = ~missing_mask(col)
    bad = present & values.isna()
    if bad.any():
        problems.append(f"Column '{name}' (time): non-numeric values {found_values(col, bad)} in "
                        f"{rows_text(df, bad, id_col)}. Give numbers in {unit}.")
    negative = values < 0
    if negative.any():
        problems.append(f"Column '{name}' (time): {int(negative.sum())} negative values "
                        f"({rows_text(df, negative, id_col)}). Times must be >= 0 {unit}.")
    check_time_range(values, name, df, problems, unit, id_col)
    return values.astype(float)


def _numeric_text(values) -> list[str]:
    return [f"{v:g}" if isinstance(v, float) else str(v) for v in values]


def coerce_covariate(col: pd.Series, name: str, declared_categorical: bool,
                     levels: tuple | None = None):
    """(kind, values, levels) of a covariate, R-style (see the module docstring).

    Categorical values are returned as text labels (``"2"`` for a numeric code 2), so a
    term is named ``name[2]`` whatever the source type.
    """
    present = ~missing_mask(col)
    if levels is not None:
        text = col.astype("string").str.strip()
        return "categorical", text.astype(object).where(present, None), tuple(levels)
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    numeric = pd.api.types.is_numeric_dtype(col)
    if not numeric:
        as_num = pd.to_numeric(col.where(present), errors="coerce")
        if (as_num.notna() == present).all() and present.any():
            col, numeric = as_num, True
    if numeric:
        col = pd.to_numeric(col.where(present), errors="coerce").astype(float)
        values = np.sort(pd.unique(col.dropna()))
        if not declared_categorical and set(values) <= {0.0, 1.0}:
            return "binary", col, ()
        if declared_categorical or len(values) == 2:
            labels = _numeric_text(values.tolist())
            text = pd.Series([f"{v:g}" if not np.isnan(v) else None for v in col],
                             index=col.index, dtype=object)
            return "categorical", text, tuple(labels)
        return "numeric", col, ()
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = tuple(str(c) for c in col.cat.categories if (col == c).any())
        return "categorical", col.astype(object).where(present, None).map(
            lambda v: None if v is None else str(v).strip()), cats
    text = col.astype("string").str.strip()
    labels = tuple(sorted(set(text[present].astype(str))))
    return "categorical", text.astype(object).where(present, None), labels


def coerce_treatment(col: pd.Series, name: str, treated_value, df, problems, notes,
                      id_col=None):
    """0/1 int treatment; returns (values, treated_code, control_code)."""
    present = ~missing_mask(col)
    text = col.astype("string").str.strip()
    norm = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    found = sorted(set(norm[present].astype(str)))
    out = pd.Series(np.nan, index=col.index, dtype=float)
    if treated_value is not None:
        key = str(treated_value).strip()
        key = key[:-2] if key.endswith(".0") else key
        if key not in found:
            problems.append(f"Column '{name}' (treatment): treated value {treated_value!r} "
                            f"not found; values present: {found}.")
            return out, treated_value, None
        if len(found) != 2:
            problems.append(f"Column '{name}' (treatment): {len(found)} distinct values "
                            f"{found[:10]}. Expected exactly two groups.")
            return out, treated_value, None
        control = next(v for v in found if v != key)
        out[present] = (norm[present] == key).astype(float)
        if key != "1" or control != "0":
            notes.append(f"'{name}': {key!r} is the treated group, {control!r} the control.")
        return out, key, control
    lower = {v.lower() for v in found}
    if lower <= (YES | NO) and len(found) == 2 and lower & YES and lower & NO:
        out[present] = norm[present].str.lower().isin(YES).astype(float)
        treated = next(v for v in found if v.lower() in YES)
        control = next(v for v in found if v.lower() in NO)
        return out, treated, control
    if len(found) == 2:
        problems.append(f"Column '{name}' (treatment): values {found}. Which group is "
                        "treated? Pass treated_value= (CLI --treated VALUE), e.g. "
                        f"--treated {found[-1]}; the other value becomes the reference.")
    else:
        problems.append(f"Column '{name}' (treatment): {len(found)} distinct values "
                        f"{found[:10]}. Expected exactly two groups (1 = treated, "
                        "0 = control, or name the treated value with --treated).")
    return out, None, None



def check_time_range(values, name, df, problems, unit, id_col):
    """Infinite times and times beyond 150 years in ``unit`` (a wrong unit, or garbage)."""
    infinite = np.isinf(values)
    if infinite.any():
        problems.append(f"Column '{name}' (time): infinite values in "
                        f"{rows_text(df, infinite, id_col)}. Follow-up times must be finite "
                        f"numbers in {unit}.")
    limit = MAX_FOLLOW_UP_DAYS / DAYS_PER_UNIT[unit]
    absurd = ~infinite & (values > limit)
    if absurd.any():
        problems.append(f"Column '{name}' (time): {int(absurd.sum())} values above {limit:g} "
                        f"{unit} (150 years; {rows_text(df, absurd, id_col)}). Check the "
                        "time unit (--time-unit days|weeks|months|years) and the values.")



_DATE = r"^\d{4}-\d{1,2}-\d{1,2}([ T].*)?$|^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}$"


def check_categorical(values: pd.Series, name: str, levels, df, problems, id_col) -> None:
    """A text covariate that is really a date, or has a level per patient, cannot be
    modelled: say so, naming the column, instead of fitting a separated model."""
    present = values.notna()
    text = values[present].astype(str)
    if len(text) and text.str.match(_DATE).all():
        problems.append(f"Column '{name}' (covariate): holds dates (e.g. {text.iloc[0]!r}). A "
                        "covariate must be a baseline value: derive one (e.g. age at time "
                        "zero, or calendar year) and name that column instead.")
    elif len(text) > 20 and len(levels) > 0.5 * len(text):
        problems.append(f"Column '{name}' (covariate): {len(levels)} distinct text values in "
                        f"{len(text)} rows ({rows_text(df, present, id_col)}): an identifier "
                        "or free text, not a covariate. Recode it into a few categories, or "
                        "declare it numeric if it holds numbers.")


