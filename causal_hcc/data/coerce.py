"""Reading one column for its role: yes/no codes, times, treatment groups, covariate kinds.

The pieces of the validation gate (:mod:`causal_hcc.data.schema`) that look at a single
column. Each appends problems (column, what was found, which rows, what is allowed) to a
list instead of raising, so that the gate can report every problem at once.
"""

from __future__ import annotations

import difflib
from contextlib import contextmanager

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


# ----------------------------------------------------------------------------- per value
# The gate's text operations (strip, lower, a regex, to_numeric) are applied to each
# distinct value of a text column once and spread back over the rows by their codes: the
# same Python string operations as before, so the same results, but a registry column of
# a million rows with a few hundred distinct values costs a few hundred of them.

_CACHE: dict | None = None


@contextmanager
def shared_values():
    """Within the block, a column's distinct values are found once, however many checks
    look at it (the gate reads each role column several times)."""
    global _CACHE
    outer = _CACHE
    _CACHE = {} if outer is None else outer
    try:
        yield
    finally:
        _CACHE = outer


def _cached(col: pd.Series, key: str, compute):
    if _CACHE is None:
        return compute()
    hit = _CACHE.get((id(col), key))
    if hit is None or hit[0] is not col:     # the column itself is kept: ids stay unique
        hit = (col, compute())
        _CACHE[(id(col), key)] = hit
    return hit[1]


def _is_text(col: pd.Series) -> bool:
    return col.dtype == object and _cached(
        col, "text", lambda: pd.api.types.infer_dtype(col, skipna=True) in ("string",
                                                                             "empty"))


def _factorized(col: pd.Series):
    return _cached(col, "codes", lambda: pd.factorize(col, use_na_sentinel=True))


def per_value(col: pd.Series, op) -> pd.Series:
    """``op(col.astype("string"))`` (an elementwise function of a ``string`` Series),
    computed once per distinct value of a text column; the result keeps ``col``'s index
    and is missing where ``col`` is."""
    if not _is_text(col):
        # numbers, booleans or mixed objects: values equal as Python objects may print
        # differently (1, 1.0, True), so they are not merged
        return op(col.astype("string"))
    codes, uniques = _factorized(col)
    done = op(pd.Series(uniques, dtype="string"))
    return pd.Series(done.array.take(codes, allow_fill=True), index=col.index,
                     name=col.name)


def _stripped_uniques(col: pd.Series) -> np.ndarray:
    """``str.strip`` of each distinct value of a text column (object array)."""
    def compute():
        uniques = _factorized(col)[1]
        return np.array([u.strip() for u in uniques], dtype=object) if len(uniques) \
            else np.array([], dtype=object)
    return _cached(col, "stripped", compute)


def stripped(col: pd.Series) -> pd.Series:
    """``col.astype("string").str.strip()``."""
    if not _is_text(col):
        return col.astype("string").str.strip()
    codes = _factorized(col)[0]
    done = pd.array(_stripped_uniques(col), dtype="string")
    return pd.Series(done.take(codes, allow_fill=True), index=col.index, name=col.name)


def numeric(col: pd.Series) -> pd.Series:
    """``pd.to_numeric(col, errors="coerce").astype(float)``, once per distinct text."""
    if not _is_text(col):
        return pd.to_numeric(col, errors="coerce").astype(float)
    codes, uniques = _factorized(col)
    values = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce") \
        .to_numpy(float)
    out = values[codes] if len(values) else np.full(len(codes), np.nan)
    out[codes < 0] = np.nan
    return pd.Series(out, index=col.index, name=col.name)


def missing_mask(col: pd.Series) -> pd.Series:
    """Missing or blank (spaces only): a boolean Series."""
    if not _is_text(col):
        return col.isna() | (col.astype("string").str.strip() == "")
    codes = _factorized(col)[0]
    blank = _stripped_uniques(col) == ""
    miss = codes < 0
    if blank.any():
        miss |= blank[codes] & ~miss
    return pd.Series(miss, index=col.index)


# ----------------------------------------------------------------------------- coercion
def coerce_binary(col: pd.Series, name: str, df, problems, notes, role: str,
                  id_col=None) -> pd.Series:
    """1/0 (or yes/no, true/false) -> float 1.0/0.0; anything else is a problem."""
    text = per_value(col, lambda s: s.str.strip().str.lower())
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
    values = numeric(col)
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
    return values


def _format_g(col: pd.Series) -> pd.Series:
    """``f"{v:g}"`` of each value (None where missing), formatted once per distinct value
    (distinct by bit pattern: -0.0 prints as '-0')."""
    values = col.to_numpy(float)
    codes, uniques = pd.factorize(values.view(np.int64))
    shown = np.array([None if np.isnan(v) else f"{v:g}" for v in uniques.view(np.float64)],
                     dtype=object)
    return pd.Series(shown[codes], index=col.index, dtype=object)


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
        text = stripped(col)
        return "categorical", text.astype(object).where(present, None), tuple(levels)
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    is_number = pd.api.types.is_numeric_dtype(col)
    if not is_number:
        as_num = numeric(col.where(present))
        if (as_num.notna() == present).all() and present.any():
            col, is_number = as_num, True
    if is_number:
        col = numeric(col.where(present))
        values = np.sort(pd.unique(col.dropna()))
        if not declared_categorical and set(values) <= {0.0, 1.0}:
            return "binary", col, ()
        if declared_categorical or len(values) == 2:
            labels = _numeric_text(values.tolist())
            text = _format_g(col)
            return "categorical", text, tuple(labels)
        return "numeric", col, ()
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = tuple(str(c) for c in col.cat.categories if (col == c).any())
        return "categorical", col.astype(object).where(present, None).map(
            lambda v: None if v is None else str(v).strip()), cats
    text = stripped(col)
    labels = tuple(sorted(set(pd.unique(text[present].astype(str)))))
    return "categorical", text.astype(object).where(present, None), labels


def coerce_treatment(col: pd.Series, name: str, treated_value, df, problems, notes,
                      id_col=None):
    """0/1 int treatment; returns (values, treated_code, control_code)."""
    present = ~missing_mask(col)
    norm = per_value(col, lambda s: s.str.strip().str.replace(r"^(-?\d+)\.0+$", r"\1",
                                                            regex=True))
    found = sorted(set(pd.unique(norm[present].astype(str))))
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
    if len(text) and per_value(text, lambda s: s.str.match(_DATE)).all():
        problems.append(f"Column '{name}' (covariate): holds dates (e.g. {text.iloc[0]!r}). A "
                        "covariate must be a baseline value: derive one (e.g. age at time "
                        "zero, or calendar year) and name that column instead.")
    elif len(text) > 20 and len(levels) > 0.5 * len(text):
        problems.append(f"Column '{name}' (covariate): {len(levels)} distinct text values in "
                        f"{len(text)} rows ({rows_text(df, present, id_col)}): an identifier "
                        "or free text, not a covariate. Recode it into a few categories, or "
                        "declare it numeric if it holds numbers.")


