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
from scipy.special import expit

from causal_hcc._numeric import norm_sf, rankdata, z_value
from causal_hcc.data.cohort import Cohort
from causal_hcc.design import Design, as_text, build_design, covariate_levels
from causal_hcc.errors import (CohortError, ConvergenceWarning, OverlapWarning, SeparationWarning,
                               SmallSampleWarning)
from causal_hcc.logistic import LogisticFit, check_rank, detect_separation, fit_logistic
# Re-exported for effects/bootstrap.py, which still imports it from here.

MIN_EVENTS_PER_VARIABLE = 10      # Peduzzi et al. 1996; below it: SmallSampleWarning
SPARSE_CELL = 5                   # a level with < 5 patients in one arm is reported as sparse
_EPS01 = 10 * np.finfo(float).eps  # R glm.fit's "fitted probabilities numerically 0 or 1"
METHODS = {"glm": "unpenalised logistic regression, as R glm",
           "firth": "Firth-penalised logistic regression (Wald CIs)"}


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


# ---------------------------------------------------------------- diagnostics
def _level_counts(frame, covariates, treated, levels) -> pd.DataFrame:
    rows = []
    n1, n0 = int(treated.sum()), int((1 - treated).sum())
    is_treated = np.asarray(treated) == 1
    for name in covariates:
        col = frame[name]
        kind, lv = covariate_levels(col, name, levels)
        if kind == "numeric":
            values = col.dropna().unique()
            if not set(np.asarray(values, dtype=float)) <= {0.0, 1.0}:
                continue
            lv = (0, 1)
        if kind == "category":
            # patients per arm for each distinct text, then looked up level by level
            codes, uniques = pd.factorize(as_text(col))
            per_arm = {arm: np.bincount(codes[treated == arm], minlength=len(uniques))
                       for arm in (1, 0)}
            position = {u: i for i, u in enumerate(uniques)}
        else:
            number = col.to_numpy(float)
        for v in lv:
            if kind == "category":
                i = position.get(str(v))
                t1, t0 = (0, 0) if i is None else (int(per_arm[1][i]), int(per_arm[0][i]))
            else:
                hit = number == float(v)
                t1 = int(np.count_nonzero(hit & is_treated))
                t0 = int(np.count_nonzero(hit & ~is_treated))
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
    discrete = all(covariate_levels(frame[c], c, levels)[0] == "category"
                   or set(frame[c].unique()) <= {0, 1} for c in covariates)
    if not discrete or not covariates:
        return None
    # Each patient's pattern is "a=1, b=x, ...": the text is written once per distinct
    # combination of the covariates' texts (not per patient) and the counts summed per text,
    # which is grouping the patients by their pattern text.
    texts = [frame[c].astype(str).to_numpy(object) for c in covariates]
    key = np.zeros(len(frame), dtype=np.int64)
    for text in texts:
        codes, uniques = pd.factorize(text)
        key, _ = pd.factorize(key * len(uniques) + codes)
    first = np.unique(key, return_index=True)[1]
    pattern = [", ".join(f"{c}={t[i]}" for c, t in zip(covariates, texts)) for i in first]
    table = (pd.DataFrame({"pattern": pattern,
                           "sum": np.bincount(key[np.asarray(treated) == 1],
                                              minlength=len(first)),
                           "size": np.bincount(key, minlength=len(first))})
             .groupby("pattern", sort=True)[["sum", "size"]].sum())
    out = pd.DataFrame({"pattern": table.index, "n_treated": table["sum"].to_numpy(),
                        "n_control": (table["size"] - table["sum"]).to_numpy()})
    out["one_arm"] = (out.n_treated == 0) | (out.n_control == 0)
    return out.sort_values(["one_arm", "n_treated"], ascending=False, kind="stable",
                           ignore_index=True)


def c_statistic(score, treated) -> float:
    """Area under the ROC curve (Mann-Whitney; ties count 1/2)."""
    treated = np.asarray(treated).astype(bool)
    ranks = rankdata(score)
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
                   confidence_level: float = 0.95,
                   pattern_counts: bool = True) -> PropensityModel:
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
    pattern_counts : bool
        Tabulate the covariate patterns per arm (``pattern_counts``, for the
        identification verdicts); False leaves it None, for loops that read only the
        scores (the specification grid's PS fits).

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
                                confidence_level=confidence_level, label=cohort.label,
                                pattern_counts=pattern_counts)


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
                         confidence_level: float = 0.95, label: str = "",
                         pattern_counts: bool = True) -> PropensityModel:
    """As :func:`fit_propensity`, for any data frame (e.g. R's lalonde in the tests).

    ``levels`` fixes the level order (first = reference) of categorical covariates not in
    the data dictionary; by default their sorted values, as R's ``factor``.
    """
    covariates = tuple(covariates)
    ids, treated = _validate_inputs(frame, treatment_col, covariates, id_col)
    design = build_design(frame, covariates, splines=splines, interactions=interactions,
                          levels=levels)
    check_rank(design.matrix, design.terms)
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
        pattern_counts=(_pattern_counts(frame, covariates, treated, levels)
                        if pattern_counts else None),
        confidence_level=confidence_level, notes=tuple(notes))
    _warn(model, one_arm)
    return model


def _coefficient_table(design: Design, fit: LogisticFit, level: float) -> pd.DataFrame:
    se = np.sqrt(np.diag(fit.covariance))
    z = fit.coef / se
    crit = z_value(level)
    return pd.DataFrame({"term": design.terms, "covariate": design.term_covariate,
                         "estimate": fit.coef, "std_error": se, "z_value": z,
                         "p_value": 2 * norm_sf(np.abs(z)),
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
