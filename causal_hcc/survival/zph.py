"""Proportional-hazards test of R survival 3.x ``cox.zph`` for a fitted :class:`CoxFit`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc._numeric import chi2_sf, rankdata
from causal_hcc.survival.cox import CoxFit
from causal_hcc.survival.risk_sets import RiskSets, information, likelihood_terms


# ----------------------------------------------------------------------------- PH test
@dataclass(frozen=True)
class PHTest:
    """Proportional-hazards test of R survival 3.x ``cox.zph`` (per covariate and global).

    Attributes
    ----------
    names : tuple of str
        Covariates tested, in model order.
    chisq, df, p : ndarray
        Score-test chi-square, degrees of freedom and P value per covariate.
    global_chisq, global_df, global_p : float, int, float
        Global test of all covariates at once.
    transform : str
        Time transform g(t): ``"km"`` (R's default), ``"identity"``, ``"rank"``, ``"log"``.
    """

    names: tuple
    chisq: np.ndarray
    df: np.ndarray
    p: np.ndarray
    global_chisq: float
    global_df: int
    global_p: float
    transform: str

    def to_frame(self) -> pd.DataFrame:
        """One row per covariate and a final ``GLOBAL`` row, as ``cox.zph(fit)$table``."""
        return pd.DataFrame({"term": [*self.names, "GLOBAL"],
                             "chisq": [*self.chisq, self.global_chisq],
                             "df": [*self.df, self.global_df], "p": [*self.p, self.global_p],
                             "transform": self.transform})

    def summary(self) -> str:
        lines = [f"Proportional-hazards test (scaled Schoenfeld residuals, score test of "
                 f"R survival 3.x cox.zph, transform = '{self.transform}'):"]
        for name, c, d, p in zip(self.names, self.chisq, self.df, self.p):
            lines.append(f"  {name:<24} chi-square {c:8.3f}  df {int(d)}  P = {p:.4f}")
        lines.append(f"  {'GLOBAL':<24} chi-square {self.global_chisq:8.3f}  df "
                     f"{self.global_df}  P = {self.global_p:.4f}")
        return "\n".join(lines)


def _transformed_time(rs: RiskSets, transform: str) -> np.ndarray:
    """g(t) for each sorted row; ``km`` is 1 - S(t-) of the pooled unweighted KM (R)."""
    t = rs.time
    if transform == "identity":
        return t.copy()
    if transform == "log":
        return np.log(t)
    if transform == "rank":
        return rankdata(t)
    if transform != "km":
        raise ValueError("transform must be 'km', 'identity', 'rank' or 'log'")
    uniq, inv = np.unique(t, return_inverse=True)
    deaths = np.bincount(inv, weights=rs.event, minlength=uniq.size)
    at_risk = np.cumsum(np.bincount(inv, minlength=uniq.size)[::-1])[::-1]
    surv = np.cumprod(1 - deaths / at_risk)
    before = np.r_[1.0, surv[:-1]]
    return 1 - before[inv]


def cox_zph(fit: CoxFit, transform: str = "km") -> PHTest:
    """Test proportional hazards for each covariate and globally, as R ``cox.zph``.

    Parameters
    ----------
    fit : CoxFit
        A model from :func:`fit_cox` (weights, strata and ties are taken from it).
    transform : {"km", "identity", "rank", "log"}
        Time transform; R's default ``"km"`` uses 1 - S(t-) of the pooled KM curve.

    Returns
    -------
    PHTest

    Notes
    -----
    survival 3.x replaced the old regression of scaled Schoenfeld residuals on g(t) by an
    exact score test: at the fitted beta, add the p covariates x * (g(t) - mean g over
    events) and test their coefficients with the 2p x 2p information matrix (R C routine
    ``zph1``). The per-covariate test uses the block of the first p terms plus that
    covariate's time term; the global test uses all. Agrees with R ``survival::cox.zph``
    (``terms = FALSE``) for Efron or Breslow ties, case weights and strata.
    """
    rs = fit.risk_set_data
    p = len(fit.names)
    tm = likelihood_terms(fit.coef, rs)
    g_row = _transformed_time(rs, transform)
    g_row = g_row - g_row[rs.event == 1].mean()
    g = g_row[rs.block_first[rs.group_block]][rs.slot_group]
    wr = rs.weight * tm.risk
    dead = rs.event == 1
    u = ((g_row * rs.weight)[dead, None] * rs.x[dead]).sum(axis=0) - (g * rs.slot_mw) @ tm.slot_mean
    i12 = information(rs, wr, tm.slot_mean, tm.slot_h, g)
    i22 = information(rs, wr, tm.slot_mean, tm.slot_h, g * g)
    imat = np.block([[tm.info, i12], [i12.T, i22]])
    full_u = np.r_[np.zeros(p), u]
    chisq = np.empty(p)
    for j in range(p):
        keep = np.r_[np.arange(p), p + j]
        sub_u = full_u[keep]
        chisq[j] = sub_u @ np.linalg.solve(imat[np.ix_(keep, keep)], sub_u)
    global_chisq = float(full_u @ np.linalg.solve(imat, full_u))
    df = np.ones(p, dtype=int)
    return PHTest(fit.names, chisq, df, chi2_sf(chisq, df), global_chisq, p,
                  float(chi2_sf(global_chisq, p)), transform)


