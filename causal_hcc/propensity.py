"""Propensity score: logistic regression of treatment on the confounders -> PropensityModel.

The default fit is unpenalised maximum likelihood by iteratively reweighted least squares,
the algorithm of R's ``glm(family = binomial)``; Firth's penalised likelihood is used only
when asked (``method="firth"``). The model carries what a reviewer checks before trusting
a propensity score: the coefficients, the c-statistic, events per variable, the score's
distribution per arm, common support, and (quasi-)complete separation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, optimize, stats
from scipy.interpolate import BSpline
from scipy.special import expit, xlogy

from causal_hcc._numeric import row_sum, z_value
from causal_hcc.data.cohort import Cohort
from causal_hcc.errors import (CohortError, ConvergenceWarning, DataWarning, NotEstimableError,
                               OverlapWarning, SeparationWarning, SmallSampleWarning)

MIN_EVENTS_PER_VARIABLE = 10      # Peduzzi et al. 1996; below it: SmallSampleWarning
SPARSE_CELL = 5                   # a level with < 5 patients in one arm is reported as sparse
_EPS01 = 10 * np.finfo(float).eps  # R glm.fit's "fitted probabilities numerically 0 or 1"
_LP_TOL = 1e-7
METHODS = {"glm": "unpenalised logistic regression, as R glm",
           "firth": "Firth-penalised logistic regression (Wald CIs)"}
_ETA_MAX = -np.log(np.finfo(float).eps)


@dataclass(frozen=True)
class Design:
    """Model matrix of a propensity model: intercept first, then one column per term."""

    matrix: np.ndarray
    terms: tuple[str, ...]
    term_covariate: tuple[str, ...]
    formula_terms: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogisticFit:
    """Array-level result of :func:`fit_logistic`."""

    coef: np.ndarray
    covariance: np.ndarray
    linear_predictor: np.ndarray
    converged: bool
    iterations: int
    deviance: float
    method: str


@dataclass(frozen=True)
class PropensityModel:
    """A fitted propensity-score model and its diagnostics.

    Attributes
    ----------
    label : str
        Provenance of the data (the cohort's label).
    formula : str
        The model actually fitted, R style (``treatment ~ x1 + x2 + ...``); a covariate
        dropped for carrying no information is absent from it (and named in ``notes``).
    method : {"glm", "firth"}
        Unpenalised maximum likelihood (R ``glm``) or Firth's penalised likelihood.
    coefficients : pandas.DataFrame
        term, covariate, estimate (log odds), std_error, z_value, p_value, ci_lower,
        ci_upper (Wald), odds_ratio.
    patient_id, treated, ps, logit_ps : numpy.ndarray
        Per patient, in the cohort's row order (treated: 1 = treated arm).
    c_statistic : float
        Area under the ROC curve of the PS for treatment (ties count 1/2).
    events_per_variable : float
        min(n treated, n control) / number of non-intercept parameters.
    separation : {"none", "quasi-complete", "complete"}
        From a linear program over the design (Konis 2007) and per-level counts.
    separated_covariates, separated_terms : tuple of str
        The covariates (terms) whose maximum-likelihood estimate is infinite.
    level_counts : pandas.DataFrame
        Per level of each categorical or binary covariate: covariate, level, n_treated,
        n_control, pct_of_treated, pct_of_control (% of each arm), all_one_arm (that level
        occurs in one arm only: quasi-complete separation), sparse_level (fewer than 5
        patients in one arm; e.g. intrahepatic cCR 29/40 vs 2/36 in the paper).
    ps_summary : pandas.DataFrame
        Distribution of the PS per arm.
    common_support : tuple of float
        [max of the arms' minimum PS, min of their maximum PS].
    outside_support_ids : tuple of str
        Patients whose PS lies outside the common support.
    pattern_counts : pandas.DataFrame or None
        When every covariate is binary or categorical: treated and control counts per
        covariate pattern (pattern, n_treated, n_control, one_arm). Patterns found in one
        arm only have no counterpart however the PS is modelled (the range-based common
        support cannot show this for a discrete score).
    """

    label: str
    treatment_col: str
    covariates: tuple[str, ...]
    formula: str
    method: str
    coefficients: pd.DataFrame
    patient_id: np.ndarray
    treated: np.ndarray
    ps: np.ndarray
    logit_ps: np.ndarray
    c_statistic: float
    n_parameters: int
    events_per_variable: float
    converged: bool
    iterations: int
    deviance: float
    separation: str
    separated_covariates: tuple[str, ...]
    separated_terms: tuple[str, ...]
    level_counts: pd.DataFrame
    ps_summary: pd.DataFrame
    common_support: tuple[float, float]
    outside_support_ids: tuple[str, ...]
    pattern_counts: pd.DataFrame | None = None
    confidence_level: float = 0.95
    notes: tuple[str, ...] = field(default=())

    @property
    def n(self) -> int:
        return len(self.ps)

    @property
    def n_treated(self) -> int:
        return int(self.treated.sum())

    @property
    def n_control(self) -> int:
        return self.n - self.n_treated

    def to_frame(self) -> pd.DataFrame:
        """One row per patient: patient_id, treated, ps, logit_ps, outside_common_support."""
        outside = np.isin(self.patient_id, np.asarray(self.outside_support_ids, dtype=object))
        return pd.DataFrame({"patient_id": self.patient_id, "treated": self.treated,
                             "ps": self.ps, "logit_ps": self.logit_ps,
                             "outside_common_support": outside})

    def summary(self) -> str:
        lo, hi = self.common_support
        lines = [self.label,
                 f"Propensity score model ({METHODS[self.method]}): {self.formula}",
                 f"n = {self.n} ({self.n_treated} treated, {self.n_control} control); "
                 f"{self.n_parameters} parameters; events per variable "
                 f"{self.events_per_variable:.1f} (min arm / parameters); "
                 f"c-statistic {self.c_statistic:.3f}; "
                 f"{'converged' if self.converged else 'NOT converged'} in "
                 f"{self.iterations} iterations.",
                 f"Coefficients (log odds, Wald {self.confidence_level:.0%} CI):"]
        for row in self.coefficients.itertuples():
            lines.append(f"  {row.term:<32} {row.estimate:9.4f} ({row.ci_lower:.4f}, "
                         f"{row.ci_upper:.4f})  p = {row.p_value:.3g}")
        lines.append("PS by arm (min / median / max): " + "; ".join(
            f"{r.arm} {r.min:.3f} / {r.median:.3f} / {r.max:.3f}"
            for r in self.ps_summary.itertuples()))
        lines.append(f"Common support [{lo:.3f}, {hi:.3f}]: "
                     f"{len(self.outside_support_ids)} patients outside.")
        if self.pattern_counts is not None:
            alone = self.pattern_counts[self.pattern_counts["one_arm"]]
            lines.append(f"Covariate patterns in one arm only: {len(alone)} of "
                         f"{len(self.pattern_counts)} ({int(alone.n_treated.sum())} treated, "
                         f"{int(alone.n_control.sum())} control patients)"
                         + "".join(f"; {r.pattern}: {r.n_treated} treated, {r.n_control} "
                                   "control" for r in alone.itertuples()) + ".")
        lines.append(f"Separation: {self.separation}"
                     + (f" ({', '.join(self.separated_covariates)})"
                        if self.separated_covariates else "") + ".")
        sparse = self.level_counts[self.level_counts["sparse_level"].astype(bool)]
        for r in sparse.itertuples():
            lines.append(f"  Sparse level {r.covariate} = {r.level}: {r.n_treated} treated vs "
                         f"{r.n_control} control ({r.pct_of_treated:.1f}% vs "
                         f"{r.pct_of_control:.1f}% of each arm).")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------- design matrix
def natural_spline_basis(x, df: int) -> np.ndarray:
    """Natural cubic spline basis without intercept, as R's ``splines::ns(x, df)``.

    Interior knots at quantiles of ``x`` (type 7), boundary knots at its range. The basis
    spans the same space as R's (coefficients may differ by a rotation; fitted values agree).
    """
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


def _covariate_levels(column: pd.Series, name: str, levels: dict | None):
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
        kind, lv = _covariate_levels(col, name, levels)
        if kind == "category":
            text = col.astype(str)
            present = [v for v in lv if (text == str(v)).any()]
            absent = [v for v in lv if v not in present]
            unknown = sorted(set(text[col.notna()]) - {str(v) for v in lv})
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
            columns[name] = [(f"{name}[{v}]", (text == str(v)).to_numpy(float))
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


# ---------------------------------------------------------------- fitting
def _deviance(y, mu) -> float:
    return float(-2 * np.sum(xlogy(y, mu) + xlogy(1 - y, 1 - mu)))


def _check_rank(X: np.ndarray, terms) -> None:
    # Unpivoted QR of the column-scaled design: a tiny |r_jj| means column j is a linear
    # combination of the columns before it, the one R's glm would report as NA.
    scale = np.linalg.norm(X, axis=0)
    scale[scale == 0] = 1.0
    r = linalg.qr(X / scale, mode="r")[0]
    dependent = np.abs(np.diag(r)[:X.shape[1]]) < 1e-7
    if dependent.any() or X.shape[0] < X.shape[1]:
        dropped = [terms[i] for i in np.flatnonzero(dependent)] or list(terms[X.shape[0]:])
        raise NotEstimableError(
            f"The propensity model is not estimable: term(s) {dropped} are linear "
            "combinations of the others (a constant covariate, an empty level, or collinear "
            "covariates). Drop or recode them.")


def fit_logistic(X, y, *, method: str = "glm", tol: float = 1e-10,
                 max_iter: int = 50, covariance: bool = True) -> LogisticFit:
    """Logistic regression of binary ``y`` on design ``X`` (intercept column included).

    Parameters
    ----------
    X : array (n, p)
    y : array (n,) of 0/1
    method : {"glm", "firth"}
        ``glm``: maximum likelihood by IRLS from R's starting values (mu = (y + 1/2)/2),
        stopping when |dev - dev_old| / (|dev| + 0.1) < ``tol`` (R glm uses 1e-8; ours is
        tighter). ``firth``: Newton iterations on Firth's modified score
        X'(y - p + h(1/2 - p)) with step-halving on the penalised log-likelihood.
    covariance : bool
        Compute the covariance (glm only); bootstrap loops that need only the fitted
        values skip it (the covariance is then NaN).

    Returns
    -------
    LogisticFit
        Covariance = inverse Fisher information at the estimate.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if method == "glm":
        return _fit_irls(X, y, tol, max_iter, covariance)
    if method == "firth":
        return _fit_firth(X, y, tol, max(max_iter, 100))
    raise ValueError(f"method must be 'glm' or 'firth', not {method!r}")


def _fit_irls(X, y, tol, max_iter, covariance: bool = True) -> LogisticFit:
    mu = (y + 0.5) / 2
    eta = np.log(mu / (1 - mu))
    dev_old = _deviance(y, mu)
    converged = False
    beta = np.zeros(X.shape[1])
    it = 0
    for it in range(1, max_iter + 1):
        # As R's binomial()$mu.eta and linkinv: weights >= machine eps, |eta| <= -log(eps),
        # so separated data give huge finite coefficients rather than NaN.
        w = np.maximum(mu * (1 - mu), np.finfo(float).eps)
        z = eta + (y - mu) / w
        sw = np.sqrt(w)
        beta = linalg.lstsq(X * sw[:, None], z * sw, lapack_driver="gelsy")[0]
        eta = X @ beta
        mu = expit(np.clip(eta, -_ETA_MAX, _ETA_MAX))
        dev = _deviance(y, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < tol:
            converged = True
            break
        dev_old = dev
    cov = _inverse_information(X, mu) if covariance else np.full((X.shape[1],) * 2, np.nan)
    return LogisticFit(beta, cov, eta, converged, it, _deviance(y, mu), "glm")


def _inverse_information(X, mu) -> np.ndarray:
    """(X'WX)^-1 from the QR of W^1/2 X, as R's summary.glm (chol2inv of R): forming X'WX
    first would square the condition number (lalonde's earnings columns: ~1e-6 error)."""
    w = np.maximum(mu * (1 - mu), np.finfo(float).eps)
    r = linalg.qr(X * np.sqrt(w)[:, None], mode="r")[0][:X.shape[1]]
    r_inv = linalg.solve_triangular(r, np.eye(X.shape[1]))
    return r_inv @ r_inv.T


def _firth_objective(X, y, beta):
    eta = X @ beta
    mu = expit(eta)
    info = (X * (mu * (1 - mu))[:, None]).T @ X
    sign, logdet = np.linalg.slogdet(info)
    loglik = np.sum(y * eta - np.logaddexp(0, eta))
    return loglik + 0.5 * logdet if sign > 0 else -np.inf


def _fit_firth(X, y, tol, max_iter) -> LogisticFit:
    beta = np.zeros(X.shape[1])
    penalised = _firth_objective(X, y, beta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        mu = expit(X @ beta)
        w = mu * (1 - mu)
        info_inv = linalg.pinvh((X * w[:, None]).T @ X)
        xw = X * np.sqrt(w)[:, None]
        hat = np.einsum("ij,jk,ik->i", xw, info_inv, xw)
        step = info_inv @ (X.T @ (y - mu + hat * (0.5 - mu)))
        step *= min(1.0, 5.0 / max(np.max(np.abs(step)), 1e-300))  # logistf maxstep = 5
        for _ in range(30):
            candidate = _firth_objective(X, y, beta + step)
            if candidate >= penalised - 1e-12:
                break
            step /= 2
        beta = beta + step
        penalised = candidate
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    eta = X @ beta
    mu = expit(eta)
    return LogisticFit(beta, _inverse_information(X, mu), eta, converged, it,
                       _deviance(y, mu), "firth")


# ---------------------------------------------------------------- diagnostics
def detect_separation(X, y) -> tuple[str, np.ndarray]:
    """Complete / quasi-complete separation by linear programming (Konis 2007).

    Separation exists iff some beta != 0 has (2y - 1) * X beta >= 0 for every row; it is
    complete iff the inequality can be strict for all rows. A coefficient's maximum
    likelihood estimate is infinite iff some such beta has a non-zero component there.

    Returns
    -------
    kind : {"none", "quasi-complete", "complete"}
    infinite : bool array (p,)
    """
    X = np.asarray(X, dtype=float)
    scale = np.max(np.abs(X), axis=0)
    scale[scale == 0] = 1.0
    signed = X / scale * (2 * np.asarray(y, dtype=float) - 1)[:, None]
    n, p = signed.shape
    bounds = [(-1.0, 1.0)] * p
    first = optimize.linprog(-signed.sum(axis=0), A_ub=-signed, b_ub=np.zeros(n),
                             bounds=bounds, method="highs")
    infinite = np.zeros(p, dtype=bool)
    if first.status != 0 or -first.fun <= _LP_TOL * n:
        return "none", infinite
    for j in range(p):
        for sign in (1.0, -1.0):
            c = np.zeros(p)
            c[j] = -sign
            res = optimize.linprog(c, A_ub=-signed, b_ub=np.zeros(n), bounds=bounds,
                                   method="highs")
            if res.status == 0 and -res.fun > _LP_TOL:
                infinite[j] = True
    strict = optimize.linprog(np.r_[np.zeros(p), -1.0],
                              A_ub=np.c_[-signed, np.ones(n)], b_ub=np.zeros(n),
                              bounds=bounds + [(0.0, 1.0)], method="highs")
    complete = strict.status == 0 and -strict.fun > _LP_TOL
    return ("complete" if complete else "quasi-complete"), infinite


def _level_counts(frame, covariates, treated, levels) -> pd.DataFrame:
    rows = []
    n1, n0 = int(treated.sum()), int((1 - treated).sum())
    for name in covariates:
        col = frame[name]
        kind, lv = _covariate_levels(col, name, levels)
        if kind == "numeric":
            values = col.dropna().unique()
            if not set(np.asarray(values, dtype=float)) <= {0.0, 1.0}:
                continue
            lv = (0, 1)
        text = col.astype(str) if kind == "category" else col.astype(float)
        for v in lv:
            key = str(v) if kind == "category" else float(v)
            hit = (text == key).to_numpy()
            t1, t0 = int(hit[treated == 1].sum()), int(hit[treated == 0].sum())
            if t1 + t0 == 0:
                continue
            rows.append({"covariate": name, "level": str(v), "n_treated": t1,
                         "n_control": t0, "pct_of_treated": 100 * t1 / n1,
                         "pct_of_control": 100 * t0 / n0,
                         "all_one_arm": min(t1, t0) == 0,
                         "sparse_level": min(t1, t0) < SPARSE_CELL})
    return pd.DataFrame(rows, columns=["covariate", "level", "n_treated", "n_control",
                                       "pct_of_treated", "pct_of_control", "all_one_arm",
                                       "sparse_level"])


def _pattern_counts(frame, covariates, treated, levels) -> pd.DataFrame | None:
    discrete = all(_covariate_levels(frame[c], c, levels)[0] == "category"
                   or set(frame[c].unique()) <= {0, 1} for c in covariates)
    if not discrete or not covariates:
        return None
    pattern = frame[covariates[0]].astype(str).radd(f"{covariates[0]}=")
    for c in covariates[1:]:
        pattern = pattern + f", {c}=" + frame[c].astype(str)
    table = (pd.DataFrame({"pattern": pattern.to_numpy(), "treated": treated})
             .groupby("pattern", sort=True)["treated"].agg(["sum", "size"]))
    out = pd.DataFrame({"pattern": table.index, "n_treated": table["sum"].to_numpy(),
                        "n_control": (table["size"] - table["sum"]).to_numpy()})
    out["one_arm"] = (out.n_treated == 0) | (out.n_control == 0)
    return out.sort_values(["one_arm", "n_treated"], ascending=False, kind="stable",
                           ignore_index=True)


def c_statistic(score, treated) -> float:
    """Area under the ROC curve (Mann-Whitney; ties count 1/2)."""
    treated = np.asarray(treated).astype(bool)
    ranks = stats.rankdata(score)
    n1, n0 = treated.sum(), (~treated).sum()
    return float((ranks[treated].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _ps_summary(ps, treated) -> pd.DataFrame:
    rows = []
    for arm, mask in (("treated", treated == 1), ("control", treated == 0)):
        v = ps[mask]
        rows.append({"arm": arm, "n": int(mask.sum()), "min": v.min(),
                     "q25": np.quantile(v, 0.25), "median": np.median(v),
                     "q75": np.quantile(v, 0.75), "max": v.max(), "mean": v.mean()})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- public entry points
def fit_propensity(cohort: Cohort, covariates=None, *, method: str = "glm",
                   splines: dict | None = None, interactions=(),
                   check_separation: bool = True,
                   confidence_level: float = 0.95) -> PropensityModel:
    """Propensity score of treatment given the covariates, for a validated cohort.

    Parameters
    ----------
    cohort : Cohort
    covariates : sequence of str, optional
        Default the cohort's PS covariates (``cohort.roles.covariates``). Categorical
        covariates are dummy-coded against their reference level (``cohort.levels``);
        numeric ones enter linearly unless in ``splines``.
    method : {"glm", "firth"}
        Unpenalised (default) or Firth-penalised logistic regression.
    splines : dict, optional
        ``{covariate: df}`` natural cubic splines (R ``ns``).
    interactions : sequence of (str, str)
    check_separation : bool
        Run the linear-programming separation check (skip it in bootstrap loops).
    confidence_level : float
        For the Wald CIs of the coefficients.

    Returns
    -------
    PropensityModel

    Warns
    -----
    SeparationWarning
        Naming the covariate(s) whose estimate diverges.
    SmallSampleWarning
        Events per variable below 10.
    ConvergenceWarning, OverlapWarning
        Non-convergence; arms whose PS ranges do not overlap at all.

    Notes
    -----
    Agrees with R ``glm(treatment ~ ..., family = binomial)`` (coefficients and fitted
    values, rtol 1e-6; tests/reference/matching.R).

    References
    ----------
    Austin PC (2011). An introduction to propensity score methods for reducing the effects
    of confounding in observational studies. Multivariate Behav Res 46:399-424.
    Firth D (1993). Bias reduction of maximum likelihood estimates. Biometrika 80:27-38.
    Konis K (2007). Linear programming algorithms for detecting separated data in binary
    logistic regression models. DPhil thesis, University of Oxford.
    """
    covariates = tuple(cohort.roles.covariates if covariates is None else covariates)
    if not covariates:
        raise CohortError(["No propensity-score covariates: name them (covariates=[...]; "
                           "CLI --covariates a,b,c)."], header="The propensity model cannot "
                          "be fitted:")
    frame = cohort.data if cohort.roles.id else cohort.data.assign(_id=cohort.ids)
    return fit_propensity_frame(frame, cohort.roles.treatment, covariates,
                                id_col=cohort.roles.id or "_id", levels=cohort.levels,
                                method=method, splines=splines, interactions=interactions,
                                check_separation=check_separation,
                                confidence_level=confidence_level, label=cohort.label)


def _validate_inputs(frame, treatment_col, covariates, id_col):
    problems = []
    missing_cols = [c for c in (treatment_col, *covariates) if c not in frame]
    for c in missing_cols:
        problems.append(f"Column '{c}': not found. Columns available: "
                        f"{list(frame.columns)[:30]}.")
    if problems:
        raise CohortError(problems, header="The propensity model cannot be fitted:")
    ids = (frame[id_col].astype(str).to_numpy(object) if id_col
           else np.array([str(i + 1) for i in range(len(frame))], dtype=object))
    for c in (treatment_col, *covariates):
        miss = frame[c].isna().to_numpy()
        if miss.any():
            problems.append(f"Column '{c}': {int(miss.sum())} missing values (patient ids "
                            f"{list(ids[miss][:5])}). Validate with require=('{c}',) and "
                            "missing='drop' for a complete-case analysis.")
    values = set(pd.unique(frame[treatment_col].dropna()))
    if not values <= {0, 1} or len(values) < 2:
        problems.append(f"Column '{treatment_col}' (treatment): values {sorted(values)}. "
                        "Expected both 0 and 1 (1 = treated).")
    if problems:
        raise CohortError(problems, header="The propensity model cannot be fitted:")
    return ids, frame[treatment_col].to_numpy(int)


def fit_propensity_frame(frame: pd.DataFrame, treatment_col: str, covariates, *,
                         id_col: str | None = None, method: str = "glm",
                         splines: dict | None = None, interactions=(),
                         levels: dict | None = None, check_separation: bool = True,
                         confidence_level: float = 0.95, label: str = "") -> PropensityModel:
    """As :func:`fit_propensity`, for any data frame (e.g. R's lalonde in the tests).

    ``levels`` fixes the level order (first = reference) of categorical covariates not in
    the data dictionary; by default their sorted values, as R's ``factor``.
    """
    covariates = tuple(covariates)
    ids, treated = _validate_inputs(frame, treatment_col, covariates, id_col)
    design = build_design(frame, covariates, splines=splines, interactions=interactions,
                          levels=levels)
    _check_rank(design.matrix, design.terms)
    fit = fit_logistic(design.matrix, treated, method=method)
    notes = list(design.notes)
    n_par = design.matrix.shape[1] - 1
    epv = min(treated.sum(), len(treated) - treated.sum()) / max(n_par, 1)
    counts = _level_counts(frame, covariates, treated, levels)
    kind, infinite = ("none", np.zeros(len(design.terms), bool))
    if check_separation:
        kind, infinite = detect_separation(design.matrix, treated)
    ps = expit(fit.linear_predictor)
    if method == "glm" and kind == "none" and np.any((ps < _EPS01) | (ps > 1 - _EPS01)):
        kind = "quasi-complete"
        notes.append("Fitted probabilities numerically 0 or 1 occurred (as R glm warns).")
    sep_terms = tuple(t for t, inf in zip(design.terms, infinite) if inf and t != "(Intercept)")
    sep_covs = tuple(dict.fromkeys(c for t, c in zip(design.terms, design.term_covariate)
                                   if t in sep_terms))
    one_arm = counts[counts["all_one_arm"].astype(bool)]
    sep_covs = tuple(dict.fromkeys(sep_covs + tuple(one_arm["covariate"])))
    if kind == "none" and not one_arm.empty:
        kind = "quasi-complete"
    coefficients = _coefficient_table(design, fit, confidence_level)
    lo = max(ps[treated == 1].min(), ps[treated == 0].min())
    hi = min(ps[treated == 1].max(), ps[treated == 0].max())
    outside = tuple(ids[(ps < lo) | (ps > hi)])
    model = PropensityModel(
        label=label, treatment_col=treatment_col, covariates=covariates,
        formula=f"{treatment_col} ~ " + " + ".join(design.formula_terms), method=method,
        coefficients=coefficients, patient_id=_frozen(ids), treated=_frozen(treated),
        ps=_frozen(ps), logit_ps=_frozen(fit.linear_predictor),
        c_statistic=c_statistic(ps, treated), n_parameters=n_par,
        events_per_variable=float(epv), converged=fit.converged, iterations=fit.iterations,
        deviance=fit.deviance, separation=kind, separated_covariates=sep_covs,
        separated_terms=sep_terms,
        level_counts=counts, ps_summary=_ps_summary(ps, treated), common_support=(lo, hi),
        outside_support_ids=outside,
        pattern_counts=_pattern_counts(frame, covariates, treated, levels),
        confidence_level=confidence_level, notes=tuple(notes))
    _warn(model, one_arm)
    return model


def _coefficient_table(design: Design, fit: LogisticFit, level: float) -> pd.DataFrame:
    se = np.sqrt(np.diag(fit.covariance))
    z = fit.coef / se
    crit = z_value(level)
    return pd.DataFrame({"term": design.terms, "covariate": design.term_covariate,
                         "estimate": fit.coef, "std_error": se, "z_value": z,
                         "p_value": 2 * stats.norm.sf(np.abs(z)),
                         "ci_lower": fit.coef - crit * se, "ci_upper": fit.coef + crit * se,
                         "odds_ratio": np.exp(fit.coef)})


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _warn(model: PropensityModel, one_arm: pd.DataFrame) -> None:
    if model.separation != "none":
        detail = "; ".join(f"{r.covariate} = {r.level}: {r.n_treated} treated, "
                           f"{r.n_control} control" for r in one_arm.itertuples())
        consequence = ("Firth estimates stay finite, but the scores of these patients are "
                       "extreme." if model.method == "firth" else
                       "Their glm coefficients diverge and fitted scores reach 0 or 1; "
                       "consider method='firth', a coarser coding, or dropping the "
                       "covariate.")
        warnings.warn(f"{model.separation.capitalize()} separation in the propensity model: "
                      f"covariate(s) {', '.join(model.separated_covariates) or 'unknown'}"
                      + (f" ({detail})" if detail else "") + f". {consequence}",
                      SeparationWarning, stacklevel=3)
    if not model.converged:
        warnings.warn(f"The propensity model ({model.method}) did not converge in "
                      f"{model.iterations} iterations; do not report its estimates as is.",
                      ConvergenceWarning, stacklevel=3)
    if model.events_per_variable < MIN_EVENTS_PER_VARIABLE:
        warnings.warn(f"Events per variable {model.events_per_variable:.1f} < "
                      f"{MIN_EVENTS_PER_VARIABLE} (min(treated, control) = "
                      f"{min(model.n_treated, model.n_control)} for {model.n_parameters} "
                      "parameters): the propensity model may be overfitted.",
                      SmallSampleWarning, stacklevel=3)
    lo, hi = model.common_support
    if lo > hi:
        warnings.warn(f"No overlap: the arms' propensity-score ranges do not intersect "
                      f"(treated from {model.ps_summary['min'].iloc[0]:.3f}, control up to "
                      f"{model.ps_summary['max'].iloc[1]:.3f}).", OverlapWarning, stacklevel=3)


# ---------------------------------------------------------------- many fits at once
def fit_logistic_many(matrix, treated, mult, tol: float = 1e-10, max_iter: int = 50):
    """Unpenalised logistic fits of many replicates at once (bootstrap frequency weights).

    ``matrix`` (n, q) is the design with intercept, ``treated`` (n,) the 0/1 outcome and
    ``mult`` (B, n) each replicate's multiplicity of each row.

    The iterations are fit_logistic's (R glm's IRLS: same start, same deviance rule),
    with a replicate's multiplicities as frequency weights on the original rows: the
    same likelihood, and the same weighted least-squares step, as on its repeated rows
    (a row drawn m times is one row scaled by sqrt(m)). Each step is solved by QR, as
    fit_logistic's lstsq, on standardised columns (fitted values do not depend on the
    column scaling). Returns the linear predictor (B, n) and a mask of replicates to
    refit one by one with fit_logistic: a rank-deficient design (a covariate constant in
    the replicate), no convergence, or a non-finite step.
    """
    x = np.array(matrix, dtype=float)
    sd = x.std(axis=0)
    varying = sd > 0
    if (~varying).any():          # an intercept: centre the other columns too
        x[:, varying] -= x[:, varying].mean(axis=0)
    x[:, varying] /= sd[varying]
    q = x.shape[1]
    lp = np.full(mult.shape, np.nan)
    gram = np.empty((mult.shape[0], q, q))
    for j in range(q):
        for k in range(j, q):
            gram[:, j, k] = gram[:, k, j] = row_sum(mult * (x[:, j] * x[:, k]))
    eig = np.linalg.eigvalsh(gram)
    refit = eig[:, 0] <= 1e-10 * eig[:, -1]
    active = np.flatnonzero(~refit)
    y = np.asarray(treated, dtype=float)
    mu = np.broadcast_to((y + 0.5) / 2, (active.size, y.size)).copy()
    eta = np.log(mu / (1 - mu))
    dev_old = _deviance_many(y, mu, mult[active])
    eps = np.finfo(float).eps
    for _ in range(max_iter):
        if active.size == 0:
            break
        m = mult[active]
        w = np.maximum(mu * (1 - mu), eps)
        root = np.sqrt(m * w)
        beta = _least_squares(x[None, :, :] * root[:, :, None], root * (eta + (y - mu) / w))
        eta = beta[:, :1] * x[:, 0]
        for j in range(1, q):
            eta += beta[:, j:j + 1] * x[:, j]
        mu = 1 / (1 + np.exp(-np.clip(eta, np.log(eps), -np.log(eps))))
        dev = _deviance_many(y, mu, m)
        bad = ~np.isfinite(dev)
        done = bad | (np.abs(dev - dev_old) / (np.abs(dev) + 0.1) < tol)
        lp[active[done & ~bad]] = eta[done & ~bad]
        refit[active[bad]] = True
        keep = ~done
        active, mu, eta, dev_old = active[keep], mu[keep], eta[keep], dev[keep]
    refit[active] = True
    return lp, refit


def _least_squares(design: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of each replicate (B, n, q) by QR; NaN when singular."""
    qmat, rmat = np.linalg.qr(design)
    qt = np.ascontiguousarray(qmat.transpose(0, 2, 1))
    rhs = (qt * response[:, None, :]).sum(axis=2)
    return _solve(rmat, rhs)


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched solve; NaN rows where a matrix is singular."""
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full_like(b, np.nan)
        for i in range(len(b)):
            try:
                out[i] = np.linalg.solve(a[i], b[i])
            except np.linalg.LinAlgError:
                pass
        return out


def _deviance_many(y, mu, mult) -> np.ndarray:
    return -2 * row_sum(mult * (xlogy(y, mu) + xlogy(1 - y, 1 - mu)))
