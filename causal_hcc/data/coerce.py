"""Reading one column for its role: yes/no codes, times, treatment groups, covariate kinds.

The pieces of the validation gate (:mod:`causal_hcc.data.schema`) that look at a single
column. Each appends problems (column, what was found, which rows, what is allowed) to a
list instead of raising, so that the gate can report every problem at once.
"""

from __future__ import annotations

import difflib
import re
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
# a million rows with a few hundred distinct values costs a few hundred of them. Tests on
# the values (yes/no, the treated code, numbers, labels) are decided per distinct value
# too (by_value, spread). A column's factorisation is found once per gate (shared_values)
# or taken from the text reader, which has already made it (seed_coding).

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


def seed_coding(col: pd.Series, codes: np.ndarray, uniques: np.ndarray) -> None:
    """Within :func:`shared_values`, take (codes, uniques) as ``col``'s factorisation: the
    text reader's, whose distinct values are already stripped and never blank."""
    if _CACHE is None:
        return
    for key, value in (("text", True), ("codes", (codes, uniques)), ("stripped", uniques),
                       ("clean", True)):
        _CACHE[(id(col), key)] = (col, value)


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


def by_value(col: pd.Series, op) -> tuple[np.ndarray, pd.Series]:
    """(codes, done): ``per_value(col, op)`` is ``done`` taken at ``codes`` (-1: missing).

    For a text column ``done`` holds one entry per distinct value, so a test on it
    (``isin``, ``==``) costs a few hundred operations, not one per row; spread the answer
    over the rows with :func:`spread`. Other columns: every row is its own value.
    """
    if not _is_text(col):
        return np.arange(len(col)), op(col.astype("string")).reset_index(drop=True)
    codes, uniques = _factorized(col)
    return codes, op(pd.Series(uniques, dtype="string"))


def spread(per_code: np.ndarray, codes: np.ndarray, fill=False) -> np.ndarray:
    """``per_code[codes]``, with ``fill`` where the code is -1 (a missing cell)."""
    per_code = np.asarray(per_code)
    if not len(per_code):
        return np.full(len(codes), fill, dtype=per_code.dtype)
    out = per_code[codes]
    out[codes < 0] = fill
    return out


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


def stripped_objects(col: pd.Series) -> pd.Series:
    """``stripped(col).astype(object)``: str cells, ``pd.NA`` where missing; a text column
    is built from its distinct values (no ``string`` array of a million cells between)."""
    if not _is_text(col):
        return stripped(col).astype(object)
    codes = _factorized(col)[0]
    values = spread(_stripped_uniques(col), codes, pd.NA)
    return pd.Series(values, index=col.index, name=col.name, dtype=object)


def duplicated_stripped(col: pd.Series) -> np.ndarray | None:
    """Rows whose stripped value is not missing and occurs more than once: ``s.notna() &
    s.duplicated(keep=False)`` of ``s = stripped_objects(col)``, counted on the codes of a
    text column (None for other columns)."""
    if not _is_text(col):
        return None
    codes, uniques = _factorized(col)
    cleaned = _stripped_uniques(col)
    if not _cached(col, "clean", lambda: not (len(cleaned) and np.any(cleaned != uniques))):
        # stripping made some distinct values equal (" P1" and "P1"): count those as one
        merged = pd.factorize(cleaned)[0]
        codes = np.where(codes >= 0, merged[np.maximum(codes, 0)], -1)
    present = codes >= 0
    counts = np.bincount(codes[present], minlength=len(cleaned))
    return present & (spread(counts, codes, 0) > 1)


def numeric(col: pd.Series) -> pd.Series:
    """``pd.to_numeric(col, errors="coerce").astype(float)``, once per distinct text."""
    if not _is_text(col):
        return pd.to_numeric(col, errors="coerce").astype(float)
    out = spread(_unique_numbers(col), _factorized(col)[0], np.nan)
    return pd.Series(out, index=col.index, name=col.name)


def _unique_numbers(col: pd.Series) -> np.ndarray:
    """``pd.to_numeric(errors="coerce")`` of each distinct value of a text column (float)."""
    return _cached(col, "numbers", lambda: pd.to_numeric(
        pd.Series(_factorized(col)[1], dtype=object), errors="coerce").to_numpy(float))


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


def distinct_present(values: pd.Series) -> np.ndarray:
    """The distinct non-missing cells of a coded column (in no particular order),
    remembered when :func:`coerce_covariate` made the column from a text column's
    distinct values."""
    return _cached(values, "distinct", lambda: pd.unique(values[values.notna()]))


# ----------------------------------------------------------------------------- coercion
def coerce_binary(col: pd.Series, name: str, df, problems, notes, role: str,
                  id_col=None) -> pd.Series:
    """1/0 (or yes/no, true/false) -> float 1.0/0.0; anything else is a problem."""
    codes, text = by_value(col, lambda s: s.str.strip().str.lower())
    present = ~missing_mask(col).to_numpy(bool)
    out = np.full(len(col), np.nan)
    out[present & spread(text.isin(YES).to_numpy(bool), codes)] = 1.0
    out[present & spread(text.isin(NO).to_numpy(bool), codes)] = 0.0
    bad = present & np.isnan(out)
    if bad.any():
        problems.append(
            f"Column '{name}' ({role}): values {found_values(col, bad)} in "
            f"{rows_text(df, bad, id_col)}. Allowed: 1/0 (or yes/no, true/false). Say which "
            f"source code means what with --recode {name}:CODE=1,CODE=0 (one pair per "
            "code); nothing is guessed.")
    plain = spread(text.isin({"0", "1", "0.0", "1.0"}).to_numpy(bool), codes)
    spelled = present & ~bad & ~plain
    if spelled.any():
        notes.append(f"'{name}': read {found_values(col, spelled)} as 1/0.")
    return pd.Series(out, index=col.index)


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
    text_column = _is_text(col)
    if levels is not None:
        return "categorical", _labels_where(col, present), tuple(levels)
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    is_number = pd.api.types.is_numeric_dtype(col)
    if not is_number and text_column:
        # Numbers written as text when every present cell reads as one: decided on the
        # distinct values (a code's cells are all present, or all blank or missing). The
        # distinct numbers are in order of first appearance, as pd.unique of the cells.
        numbers = _unique_numbers(col)
        usable = ~(_stripped_uniques(col) == "")
        if usable.any() and not np.isnan(numbers[usable]).any():
            return _number_kind(numeric(col).where(present), declared_categorical,
                                pd.unique(numbers[usable]))
    elif not is_number:
        as_num = numeric(col.where(present))
        if (as_num.notna() == present).all() and present.any():
            col, is_number = as_num, True
    if is_number:
        col = numeric(col.where(present))
        return _number_kind(col, declared_categorical, pd.unique(col.dropna()))
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = tuple(str(c) for c in col.cat.categories if (col == c).any())
        return "categorical", col.astype(object).where(present, None).map(
            lambda v: None if v is None else str(v).strip()), cats
    if text_column:
        # the labels found in present cells: the distinct stripped values, blanks aside
        keep = ~(_stripped_uniques(col) == "")
        labels = tuple(sorted(set(_stripped_uniques(col)[keep])))
        values = _labels_where(col, present)
        _cached(values, "distinct", lambda: np.array(labels, dtype=object))
        return "categorical", values, labels
    text = stripped(col)
    labels = tuple(sorted(set(pd.unique(text[present].astype(str)))))
    return "categorical", text.astype(object).where(present, None), labels


def _number_kind(col: pd.Series, declared_categorical: bool, distinct: np.ndarray):
    """(kind, values, levels) of a numeric covariate with these distinct values."""
    values = np.sort(distinct)
    if not declared_categorical and set(values) <= {0.0, 1.0}:
        return "binary", col, ()
    if declared_categorical or len(values) == 2:
        labels = _numeric_text(values.tolist())
        text = _format_g(col)
        return "categorical", text, tuple(labels)
    return "numeric", col, ()


def _labels_where(col: pd.Series, present: pd.Series) -> pd.Series:
    """``stripped(col).astype(object).where(present, None)``: a text column's cells built
    from its stripped distinct values."""
    if not _is_text(col):
        return stripped(col).astype(object).where(present, None)
    codes = _factorized(col)[0]
    values = spread(_stripped_uniques(col), codes, None)
    values[~present.to_numpy(bool)] = None
    return pd.Series(values, index=col.index, name=col.name, dtype=object)


def coerce_treatment(col: pd.Series, name: str, treated_value, df, problems, notes,
                      id_col=None):
    """0/1 int treatment; returns (values, treated_code, control_code)."""
    present = ~missing_mask(col).to_numpy(bool)
    codes, norm = by_value(col, lambda s: s.str.strip().str.replace(r"^(-?\d+)\.0+$", r"\1",
                                                                   regex=True))
    # the distinct values found in present rows (a code's rows are all present or not)
    seen = np.zeros(len(norm), dtype=bool)
    seen[codes[present]] = True
    found = sorted(set(norm[seen].astype(str)))
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
        out[present] = (norm == key).fillna(False).to_numpy(bool)[codes[present]] \
            .astype(float)
        if key != "1" or control != "0":
            notes.append(f"'{name}': {key!r} is the treated group, {control!r} the control.")
        return out, key, control
    lower = {v.lower() for v in found}
    if lower <= (YES | NO) and len(found) == 2 and lower & YES and lower & NO:
        out[present] = norm.str.lower().isin(YES).to_numpy(bool)[codes[present]] \
            .astype(float)
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
_DATE_RE = re.compile(_DATE)


def check_categorical(values: pd.Series, name: str, levels, df, problems, id_col) -> None:
    """A text covariate that is really a date, or has a level per patient, cannot be
    modelled: say so, naming the column, instead of fitting a separated model."""
    present = values.notna()
    n_present = int(present.sum())
    # every present cell matches <=> every distinct present cell does
    distinct = [str(v) for v in distinct_present(values)]
    if n_present and all(_DATE_RE.match(v) for v in distinct):
        first = str(values[present].iloc[0])
        problems.append(f"Column '{name}' (covariate): holds dates (e.g. {first!r}). A "
                        "covariate must be a baseline value: derive one (e.g. age at time "
                        "zero, or calendar year) and name that column instead.")
    elif n_present > 20 and len(levels) > 0.5 * n_present:
        problems.append(f"Column '{name}' (covariate): {len(levels)} distinct text values in "
                        f"{n_present} rows ({rows_text(df, present, id_col)}): an identifier "
                        "or free text, not a covariate. Recode it into a few categories, or "
                        "declare it numeric if it holds numbers.")
