"""Cox fits on (start, stop] rows for the immortal-time and benchmark analyses.

:func:`fit_counting_process_cox` never raises on statistical trouble and reports every
term. One row per patient (no ``start_col``): the package's one Cox,
:func:`causal_hcc.survival.cox.fit_cox_frame` (R-exact). (start, stop] rows:
:func:`causal_hcc.sensitivity._cp_cox.fit_cp_cox` (Efron, run to the maximum), because
:mod:`causal_hcc.survival.cox` has no counting-process (delayed-entry) input yet; when it
has, this wrapper becomes a call to it. Its coefficients and model-based SEs agree with R's
``coxph(Surv(start, stop, event) ~ ..., ties = "efron")`` run to eps = 1e-14 within 2e-13
(tested at rtol 1e-10; ``tests/reference/counting_process.R``; lifelines' ``CoxTimeVaryingFitter``, used before,
was off by up to 1e-7 on the SEs).

Statistical trouble never crashes a sensitivity table: a fit that cannot be trusted
(an arm without events, a constant covariate, a singular information matrix, an optimiser
that did not converge, monotone likelihood) comes back as a record with
``estimable=False`` and the reason, and the caller reports it as "not estimable".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc._numeric import norm_ppf, norm_sf
from causal_hcc.sensitivity._cp_cox import CoxFitError, fit_cp_cox
from causal_hcc.survival.cox import fit_cox_frame

# |coef| beyond this means the partial likelihood is monotone (an infinite estimate).
_MONOTONE_COEF = 15.0
_MONOTONE = "monotone likelihood (an infinite coefficient): separation"


@dataclass(frozen=True)
class CountingProcessFit:
    """One Cox model: every term's coefficient, SE, HR, Wald CI and P (Efron ties).

    Attributes
    ----------
    terms : tuple of str
        Covariate names, in model order.
    coef, se : tuple of float
        Log hazard ratios and their model-based (inverse information) standard errors.
    loglik : float
        Maximised log partial likelihood (R: ``fit$loglik[2]``).
    n_rows, n_patients, events : int
        Rows used (more than patients for (start, stop] data), patients, deaths.
    conf_level : float
    estimable : bool
        False when the fit could not be trusted; ``reason`` says why and the numbers are NaN.
    reason : str
    """

    terms: tuple[str, ...]
    coef: tuple[float, ...]
    se: tuple[float, ...]
    loglik: float
    n_rows: int
    n_patients: int
    events: int
    conf_level: float = 0.95
    estimable: bool = True
    reason: str = ""

    def _z(self) -> float:
        return float(norm_ppf(0.5 + self.conf_level / 2))

    def term(self, name: str) -> dict:
        """HR, CI and two-sided Wald P of one term (NaN when not estimable)."""
        if not self.estimable:
            return {"coef": np.nan, "se": np.nan, "hr": np.nan, "ci_lower": np.nan,
                    "ci_upper": np.nan, "p": np.nan}
        i = self.terms.index(name)
        b, s = self.coef[i], self.se[i]
        z = self._z()
        return {"coef": b, "se": s, "hr": float(np.exp(b)), "ci_lower": float(np.exp(b - z * s)),
                "ci_upper": float(np.exp(b + z * s)),
                "p": float(2 * norm_sf(abs(b / s)))}

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for name in self.terms:
            rows.append({"term": name, **self.term(name), "n_rows": self.n_rows,
                         "n_patients": self.n_patients, "events": self.events,
                         "loglik": self.loglik, "ties": "efron", "estimable": self.estimable,
                         "reason": self.reason})
        return pd.DataFrame(rows)


def _not_estimable(terms, n_rows, n_patients, events, reason, conf_level) -> CountingProcessFit:
    nan = tuple(np.nan for _ in terms)
    return CountingProcessFit(tuple(terms), nan, nan, np.nan, n_rows, n_patients, events, conf_level,
                  False, reason)


def _precheck(frame: pd.DataFrame, terms, event_col: str, exposure: str | None) -> str:
    """Reason the model cannot be fitted, or '' (checked before calling the optimiser)."""
    if len(frame) == 0:
        return "no patients"
    if frame[event_col].sum() == 0:
        return "no events"
    if exposure is not None:
        # An arm without deaths makes the partial likelihood monotone: HR 0 or infinity.
        for level, label in ((1, "exposed"), (0, "unexposed")):
            arm = frame[exposure] == level
            if not arm.any():
                return f"no {label} ({exposure} = {level}) patients or patient-time"
            if frame.loc[arm, event_col].sum() == 0:
                return f"no events in the {label} group ({exposure} = {level})"
    for name in terms:
        if frame[name].nunique() < 2:
            return f"covariate '{name}' is constant in this sample"
    if frame[event_col].sum() <= len(terms):
        return f"{int(frame[event_col].sum())} events for {len(terms)} coefficients"
    return ""


def _fit_package_cox(data, terms, stop_col, event_col, n_patients, conf_level) -> CountingProcessFit:
    """One row per patient: causal_hcc.survival.cox (R-exact), warnings turned into a reason."""
    from causal_hcc.errors import CausalHccWarning, NotEstimableError

    events = int(data[event_col].sum())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_cox_frame(data, terms, time_col=stop_col, event_col=event_col,
                                conf_level=conf_level)
        except NotEstimableError as exc:
            return _not_estimable(terms, len(data), n_patients, events, str(exc), conf_level)
    trouble = [str(w.message) for w in caught if issubclass(w.category, CausalHccWarning)]
    if trouble or fit.infinite or not fit.converged:
        why = trouble[0] if trouble else "monotone likelihood or no convergence"
        return _not_estimable(terms, len(data), n_patients, events, why, conf_level)
    return CountingProcessFit(tuple(terms), tuple(float(c) for c in fit.coef),
                  tuple(float(s) for s in fit.se_model), float(fit.loglik), len(data),
                  n_patients, events, conf_level)


def fit_counting_process_cox(frame: pd.DataFrame, *, terms, stop_col: str, event_col: str,
            start_col: str | None = None, id_col: str | None = None,
            exposure: str | None = None, conf_level: float = 0.95) -> CountingProcessFit:
    """Cox proportional-hazards fit with Efron ties, never raising on statistical trouble.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per patient (``start_col`` None) or per (start, stop] interval. Not modified.
    terms : sequence of str
        Numeric covariate columns.
    stop_col, event_col : str
        Follow-up time in months (end of the interval) and the death indicator (1/0).
    start_col : str, optional
        Start of each interval, for counting-process (time-varying) data.
    id_col : str, optional
        Patient id (counts patients in (start, stop] data).
    exposure : str, optional
        A binary term whose both levels must carry deaths (else "not estimable").
    conf_level : float

    Returns
    -------
    CountingProcessFit

    Notes
    -----
    Agrees with R ``coxph(Surv(stop, event) ~ ..., ties = "efron")`` or
    ``coxph(Surv(start, stop, event) ~ ...)``; Wald CIs exp(b +- z se) and Wald P, as in
    ``summary(coxph)``.
    """
    terms = list(terms)
    cols = ([start_col] if start_col else []) + [stop_col, event_col] + terms
    data = frame[cols + ([id_col] if id_col and id_col not in cols else [])].copy()
    data[terms] = data[terms].astype(float)
    n_rows = len(data)
    n_patients = int(data[id_col].nunique()) if id_col else n_rows
    events = int(data[event_col].sum())
    reason = _precheck(data, terms, event_col, exposure)
    if reason:
        return _not_estimable(terms, n_rows, n_patients, events, reason, conf_level)
    if not start_col:
        return _fit_package_cox(data, terms, stop_col, event_col, n_patients, conf_level)
    try:
        coef, var, loglik, _ = fit_cp_cox(data[start_col], data[stop_col], data[event_col],
                                          data[terms].to_numpy(float))
    except CoxFitError as exc:
        if exc.beta is not None and np.any(np.abs(exc.beta) > _MONOTONE_COEF):
            return _not_estimable(terms, n_rows, n_patients, events, _MONOTONE, conf_level)
        return _not_estimable(terms, n_rows, n_patients, events, f"Cox fit failed: {exc}",
                              conf_level)
    se = np.sqrt(np.diag(var))
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(se))) or \
            np.any(np.abs(coef) > _MONOTONE_COEF):
        return _not_estimable(terms, n_rows, n_patients, events, _MONOTONE, conf_level)
    return CountingProcessFit(tuple(terms), tuple(float(c) for c in coef),
                              tuple(float(s) for s in se), loglik, n_rows, n_patients,
                              events, conf_level)
