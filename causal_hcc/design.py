"""Model matrix of a propensity (or any regression) model from a data frame, as R's
``model.matrix``: intercept, treatment-coded factors, linear or natural-spline terms and
interactions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.errors import CohortError, DataWarning


@dataclass(frozen=True)
class Design:
    """Model matrix of a propensity model: intercept first, then one column per term."""

    matrix: np.ndarray
    terms: tuple[str, ...]
    term_covariate: tuple[str, ...]
    formula_terms: tuple[str, ...]
    notes: tuple[str, ...] = ()


def natural_spline_basis(x, df: int) -> np.ndarray:
    """Natural cubic spline basis without intercept, as R's ``splines::ns(x, df)``.

    Interior knots at quantiles of ``x`` (type 7), boundary knots at its range. The basis
    spans the same space as R's (coefficients may differ by a rotation; fitted values agree).
    """
    from scipy.interpolate import BSpline   # here: scipy.interpolate takes ~0.4 s to import
    x = np.asarray(x, dtype=float)
    if df < 1:
        raise ValueError("spline df must be >= 1")
    inner = np.quantile(x, np.linspace(0, 1, df + 1)[1:-1])
    lo, hi = float(x.min()), float(x.max())
    knots = np.sort(np.r_[[lo] * 4, inner, [hi] * 4])
    m = len(knots) - 4
    spline = BSpline(knots, np.eye(m), 3, extrapolate=True)
    basis = spline(x)[:, 1:]
    const = spline.derivative(2)(np.array([lo, hi]))[:, 1:]
    q, _ = np.linalg.qr(const.T, mode="complete")
    return basis @ q[:, 2:]


def as_text(column: pd.Series) -> np.ndarray:
    """``column.astype(str)`` as an object array; a column of str only is returned as it
    is (no copy of a million strings to get the same strings)."""
    if column.dtype == object and pd.api.types.infer_dtype(column, skipna=False) == "string":
        return column.to_numpy(object)
    return column.astype(str).to_numpy(object)


def covariate_levels(column: pd.Series, name: str, levels: dict | None):
    """(kind, levels) for one covariate: 'category' with ordered levels, or 'numeric'."""
    if levels and name in levels:
        return "category", tuple(levels[name])
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        if isinstance(column.dtype, pd.CategoricalDtype):
            return "category", tuple(column.cat.categories)
        return "category", tuple(sorted(column.dropna().astype(str).unique()))
    return "numeric", ()


def build_design(frame: pd.DataFrame, covariates, *, splines: dict | None = None,
                 interactions=(), levels: dict | None = None) -> Design:
    """Model matrix: intercept, categorical covariates dummy-coded, continuous linear.

    Parameters
    ----------
    frame : pandas.DataFrame
        Not modified.
    covariates : sequence of str
        Column names.
    splines : dict, optional
        ``{name: df}``: natural cubic spline of that continuous covariate (R ``ns``).
    interactions : sequence of (str, str)
        Products of all columns of the two covariates (R ``a:b``).
    levels : dict, optional
        ``{name: levels}``; the first level is the reference. By default the data
        dictionary's reference level, else the sorted values (R's factor default).
    """
    splines = dict(splines or {})
    columns: dict[str, list] = {}
    notes = []
    formula_terms = []
    for name in covariates:
        col = frame[name]
        kind, lv = covariate_levels(col, name, levels)
        if kind == "category":
            # each cell's text, coded once; a level's dummy is (code == its code)
            codes, uniques = pd.factorize(as_text(col))
            position = {u: i for i, u in enumerate(uniques)}
            present = [v for v in lv if str(v) in position]
            absent = [v for v in lv if v not in present]
            seen = np.zeros(len(uniques), dtype=bool)
            seen[codes[col.notna().to_numpy()]] = True
            unknown = sorted(set(uniques[seen]) - {str(v) for v in lv})
            if unknown:
                raise CohortError([f"Column '{name}': values {unknown[:5]} are not among its "
                                   f"levels {list(lv)}. Recode them or declare the levels."],
                                  header="The model cannot be built:")
            if absent:
                _dropped(notes, f"'{name}': levels {absent} have no patients in these data; "
                                "they have no term in the model.")
            if len(present) < 2:
                _dropped(notes, f"'{name}' takes a single level ({present[0] if present else 'none'}"
                                ") here; it carries no information and is left out of the "
                                "model.")
                continue
            columns[name] = [(f"{name}[{v}]", (codes == position[str(v)]).astype(float))
                             for v in present[1:]]
            formula_terms.append(name)
        elif name in splines:
            basis = natural_spline_basis(col.to_numpy(float), int(splines[name]))
            columns[name] = [(f"ns({name}, df={splines[name]})[{j + 1}]", basis[:, j])
                             for j in range(basis.shape[1])]
            formula_terms.append(f"ns({name}, df={splines[name]})")
        else:
            values = col.to_numpy(float)
            if values.size and np.nanmax(values) == np.nanmin(values):
                _dropped(notes, f"'{name}' is constant ({values[0]:g}) here; it carries no "
                                "information and is left out of the model.")
                continue
            columns[name] = [(name, values)]
            formula_terms.append(name)
    unknown = set(splines) - set(covariates)
    if unknown:
        raise ValueError(f"splines names {sorted(unknown)}, which are not covariates.")
    for a, b in interactions:
        if a not in columns or b not in columns:
            raise ValueError(f"Interaction ({a!r}, {b!r}): both must be covariates.")
        columns[f"{a}:{b}"] = [(f"{ta}:{tb}", xa * xb) for ta, xa in columns[a]
                               for tb, xb in columns[b]]
        formula_terms.append(f"{a}:{b}")
    terms = ["(Intercept)"]
    owner = ["(Intercept)"]
    mats = [np.ones(len(frame))]
    for cov, cols in columns.items():
        for term, values in cols:
            terms.append(term)
            owner.append(cov)
            mats.append(values)
    return Design(np.column_stack(mats), tuple(terms), tuple(owner), tuple(formula_terms),
                  tuple(notes))


def _dropped(notes: list, message: str) -> None:
    """Record and warn: a covariate (level) is not in the model actually fitted."""
    notes.append(message)
    warnings.warn(message, DataWarning, stacklevel=4)
