"""Unmeasured-confounder tipping points for a hazard ratio (Lin, Psaty & Kronmal 1998).

A binary unmeasured confounder U, present in a proportion p1 of treated and p0 of
untreated patients and multiplying the hazard of death by HR_U, biases the observed
treatment HR by the factor

    B = (1 + (HR_U - 1) p1) / (1 + (HR_U - 1) p0),

so the HR adjusted for U is HR_obs / B, and the same for each confidence limit (Lin,
Psaty & Kronmal 1998, eq. for a binary covariate under a rare-outcome/Cox approximation;
the CI is shifted, not widened). B < 1 means U made treatment look better than it is.

Directions, for an observed protective HR (< 1): U explains the benefit away only if
B < 1, that is (HR_U - 1)(p1 - p0) < 0: a *harmful* U (HR_U > 1) *less* prevalent among
the treated, or equivalently a *protective* U (HR_U < 1) *more* prevalent among the
treated. For a harmful observed HR (> 1) the directions swap. Every function here works
for both and says which direction it used.

References
----------
Lin DY, Psaty BM, Kronmal RA. Assessing the sensitivity of regression results to
unmeasured confounders in observational studies. Biometrics 1998;54:948-963.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.sensitivity._cox import fit_counting_process_cox


def bias_factor(hr_u, p1, p0):
    """Lin-Psaty-Kronmal bias factor (1 + (HR_U - 1) p1) / (1 + (HR_U - 1) p0).

    Parameters
    ----------
    hr_u : float or array
        Hazard ratio of the unmeasured binary confounder with death (> 0).
    p1, p0 : float or array
        Its prevalence among treated and untreated patients, in [0, 1]. Broadcast.

    Returns
    -------
    float or numpy.ndarray
        The factor by which the observed treatment HR is biased; HR_true = HR_obs / B.
    """
    hr_u, p1, p0 = (np.asarray(x, dtype=float) for x in (hr_u, p1, p0))
    if np.any(hr_u <= 0):
        raise ValueError("hr_u must be > 0.")
    for name, p in (("p1", p1), ("p0", p0)):
        if np.any((p < 0) | (p > 1)):
            raise ValueError(f"{name} (a prevalence) must be in [0, 1].")
    out = (1 + (hr_u - 1) * p1) / (1 + (hr_u - 1) * p0)
    return float(out) if out.ndim == 0 else out


def _check_hr(hr, ci_lower, ci_upper):
    if not 0 < ci_lower <= hr <= ci_upper:
        raise ValueError(f"Expected 0 < ci_lower <= hr <= ci_upper; got {ci_lower!r} <= "
                         f"{hr!r} <= {ci_upper!r}.")


def _nulled(hr, lower_c, upper_c, corrected):
    """Whether a correction reaches the null: point crosses 1, CI includes 1."""
    if hr < 1:
        return corrected >= 1, upper_c >= 1
    if hr > 1:
        return corrected <= 1, lower_c <= 1
    return np.ones_like(corrected, bool), np.ones_like(corrected, bool)


@dataclass(frozen=True)
class TippingPointGrid:
    """Bias-corrected HRs over a grid of unmeasured-confounder scenarios.

    ``table`` has one row per (hr_u, p1, p0): bias_factor, hr_corrected,
    ci_lower_corrected, ci_upper_corrected, point_explained_away (corrected HR on the
    other side of 1, or at it), ci_includes_1 (corrected CI contains 1).
    """

    hr: float
    ci_lower: float
    ci_upper: float
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> str:
        t = self.table
        return (f"Lin-Psaty-Kronmal tipping-point grid for HR {self.hr:.3g} "
                f"({self.ci_lower:.3g}-{self.ci_upper:.3g}): {len(t)} scenarios; point "
                f"estimate explained away in {int(t['point_explained_away'].sum())}, CI "
                f"includes 1 after correction in {int(t['ci_includes_1'].sum())}. "
                "HR_true = HR_obs / B, B = (1 + (HR_U-1) p1) / (1 + (HR_U-1) p0).")


def tipping_point_grid(hr: float, ci_lower: float, ci_upper: float, p1_values, p0_values,
                       hr_u_values) -> TippingPointGrid:
    """Bias-corrected HR and CI for every combination of (HR_U, p1, p0).

    Parameters
    ----------
    hr, ci_lower, ci_upper : float
        Observed treatment hazard ratio (treated vs untreated) and confidence limits.
    p1_values, p0_values : sequence of float
        Prevalences of the unmeasured binary confounder among treated / untreated.
    hr_u_values : sequence of float
        Hazard ratios of the confounder with death.

    Returns
    -------
    TippingPointGrid
        ``to_frame()``: tidy, one row per scenario.

    References
    ----------
    Lin DY, Psaty BM, Kronmal RA. Biometrics 1998;54:948-963.
    """
    _check_hr(hr, ci_lower, ci_upper)
    h, a, b = np.meshgrid(np.asarray(hr_u_values, float), np.asarray(p1_values, float),
                          np.asarray(p0_values, float), indexing="ij")
    h, a, b = h.ravel(), a.ravel(), b.ravel()
    bf = bias_factor(h, a, b)
    corrected, lo, hi = hr / bf, ci_lower / bf, ci_upper / bf
    point_null, ci_null = _nulled(hr, lo, hi, corrected)
    table = pd.DataFrame({"hr_u": h, "p1": a, "p0": b, "bias_factor": bf,
                          "hr_corrected": corrected, "ci_lower_corrected": lo,
                          "ci_upper_corrected": hi, "point_explained_away": point_null,
                          "ci_includes_1": ci_null})
    return TippingPointGrid(float(hr), float(ci_lower), float(ci_upper), table)


@dataclass(frozen=True)
class TippingPointContour:
    """For each HR_U and p0, the prevalence among treated p1 at which the target hits 1.

    ``table`` columns: hr_u, p0, p1_required (NaN when no p1 in [0, 1] reaches it),
    feasible, region (which side of p1_required also explains it away), confounder_type.
    """

    hr: float
    ci_lower: float
    ci_upper: float
    target: str
    limit: float
    table: pd.DataFrame
    note: str

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> str:
        feasible = self.table[self.table["feasible"]]
        return (f"Tipping-point contour for HR {self.hr:.3g} ({self.ci_lower:.3g}-"
                f"{self.ci_upper:.3g}); target: {self.target} ({self.limit:.3g}) reaches 1. "
                f"{len(feasible)} of {len(self.table)} (HR_U, p0) pairs have a p1 in [0, 1] "
                f"that does it. {self.note}")


def tipping_point_contour(hr: float, ci_lower: float, ci_upper: float, hr_u_values,
                          p0_values=None, target: str = "ci") -> TippingPointContour:
    """The (p1, p0) contour on which the corrected CI limit (or point) reaches 1.

    Parameters
    ----------
    hr, ci_lower, ci_upper : float
        Observed treatment HR and limits.
    hr_u_values : sequence of float
        Confounder-death hazard ratios (values equal to 1 are skipped: no bias).
    p0_values : sequence of float, optional
        Prevalences among untreated; default 0, 0.01, ..., 1.
    target : {"ci", "point"}
        ``"ci"``: the limit closest to 1 (upper for a protective HR, lower for a harmful
        one) reaches 1; ``"point"``: the point estimate reaches 1.

    Returns
    -------
    TippingPointContour

    Notes
    -----
    Solving limit / B = 1 for p1 gives p1 = (limit (1 + (HR_U - 1) p0) - 1) / (HR_U - 1).
    For a protective HR the solution lies below p0 when HR_U > 1 (a harmful confounder
    rarer among the treated; smaller p1 explains it away too) and above p0 when HR_U < 1
    (a protective confounder commoner among the treated; larger p1 too). When the CI
    already includes 1 the contour is empty and the note says so.
    """
    _check_hr(hr, ci_lower, ci_upper)
    if target not in ("ci", "point"):
        raise ValueError("target must be 'ci' or 'point'.")
    p0 = np.linspace(0, 1, 101) if p0_values is None else np.asarray(p0_values, float)
    limit = hr if target == "point" else (ci_upper if hr < 1 else ci_lower)
    note = ""
    rows = []
    already = (hr < 1 and limit >= 1) or (hr > 1 and limit <= 1) or hr == 1
    if already:
        note = f"The {target} already reaches 1 without any confounding; no contour."
    for h in np.asarray(hr_u_values, float):
        if h == 1:
            continue
        p1 = (limit * (1 + (h - 1) * p0) - 1) / (h - 1)
        feasible = (p1 >= 0) & (p1 <= 1) & (not already)
        # B increases with p1 when HR_U > 1: for limit < 1 smaller p1 lowers B below limit.
        below = (h > 1) == (limit < 1)
        rows.append(pd.DataFrame({
            "hr_u": h, "p0": p0, "p1_required": np.where(feasible, p1, np.nan),
            "feasible": feasible,
            "region": "p1 <= p1_required" if below else "p1 >= p1_required",
            "confounder_type": ("harmful (HR_U > 1)" if h > 1 else "protective (HR_U < 1)")
            + (", rarer among treated" if (h > 1) == (limit < 1) else
               ", commoner among treated")}))
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["hr_u", "p0", "p1_required", "feasible", "region", "confounder_type"])
    return TippingPointContour(float(hr), float(ci_lower), float(ci_upper), target,
                               float(limit), table, note)


@dataclass(frozen=True)
class ConfounderBenchmarks:
    """Observed confounders as benchmarks for an unmeasured one.

    ``table``: two rows per confounder, ``imbalance`` "as observed" (its own p1, p0) and
    "reversed" (p1 and p0 swapped, the same strength biasing the other way): prevalence
    among treated (p1) and untreated (p0), its HR with death adjusted for treatment (and
    the other confounders when ``mutually_adjusted``) with CI, the bias factor, the
    corrected treatment HR and CI, bias_direction, and whether the point estimate / CI
    would be explained away.
    """

    hr: float
    ci_lower: float
    ci_upper: float
    hr_label: str
    table: pd.DataFrame
    cohort_label: str
    notes: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> str:
        lines = [self.cohort_label,
                 f"Observed HR {self.hr:.3g} ({self.ci_lower:.3g}-{self.ci_upper:.3g}): "
                 f"{self.hr_label}.",
                 "Would an unmeasured binary confounder as strong as each observed one "
                 "explain it away? (Lin, Psaty & Kronmal 1998)"]
        for _, r in self.table.iterrows():
            if not r["estimable"]:
                lines.append(f"  {r['confounder']}: not estimable ({r['reason']}).")
                continue
            verdict = ("would" if r["ci_includes_1"] else "would not")
            lines.append(
                f"  {r['confounder']} [{r['imbalance']}]: p1 {r['p1']:.2f}, p0 {r['p0']:.2f},"
                f" HR_U {r['hr_u']:.2f}; corrected HR {r['hr_corrected']:.3g} "
                f"({r['ci_lower_corrected']:.3g}-{r['ci_upper_corrected']:.3g}); a confounder "
                f"as strong {verdict} move the CI to include 1"
                + ("; point estimate explained away." if r["point_explained_away"] else "."))
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def observed_confounder_benchmarks(cohort: Cohort, confounders=None, *,
                                   hr: float | None = None, ci_lower: float | None = None,
                                   ci_upper: float | None = None, hr_label: str | None = None,
                                   mutually_adjusted: bool = False,
                                   conf_level: float = 0.95) -> ConfounderBenchmarks:
    """How an unmeasured confounder as strong as each observed one would move the HR.

    Parameters
    ----------
    cohort : Cohort
    confounders : sequence of str, optional
        Binary (0/1) observed confounders; default the binary ones among the cohort's PS
        covariates (``cohort.roles.covariates``).
    hr, ci_lower, ci_upper : float, optional
        The treatment HR to correct (e.g. the propensity-adjusted one). Default: the crude
        Cox HR of local therapy in ``cohort`` (Efron ties), labelled as such.
    hr_label : str, optional
        What ``hr`` is (printed in the summary).
    mutually_adjusted : bool
        False (default): each confounder's HR with death is adjusted for treatment only
        (``coxph(Surv(time, event) ~ treatment + c)``); True: for treatment and
        all the other confounders.
    conf_level : float

    Returns
    -------
    ConfounderBenchmarks

    Notes
    -----
    For confounder c: p1 = P(c = 1 | treated), p0 = P(c = 1 | untreated), HR_U = its Cox HR
    with death, B = (1 + (HR_U - 1) p1) / (1 + (HR_U - 1) p0), corrected HR = HR / B.
    Both directions are reported: "as observed" and "reversed" (p1 and p0 swapped, so
    B -> 1/B): a confounder as strong as c but imbalanced the other way. For a protective
    HR the relevant direction is the one with B < 1 (bias_direction "toward benefit").

    References
    ----------
    Lin DY, Psaty BM, Kronmal RA. Biometrics 1998;54:948-963.
    """
    df = cohort.data
    r = cohort.roles
    if confounders is None:
        confounders = tuple(c for c in r.covariates if c in df
                            and set(pd.unique(df[c].dropna())) <= {0, 1})
        if not confounders:
            raise ValueError("No binary PS covariate to benchmark against; name binary "
                             "confounders (confounders=[...]).")
    confounders = tuple(confounders)
    missing = [c for c in confounders if c not in df]
    if missing:
        raise ValueError(f"Confounders {missing} are not columns of the cohort.")
    nonbinary = [c for c in confounders if not set(df[c].dropna().unique()) <= {0, 1}]
    if nonbinary:
        raise ValueError(f"Confounders {nonbinary} are not binary 0/1; the Lin-Psaty-Kronmal "
                         "benchmark needs a binary confounder. Recode (e.g. a cut-off) first.")
    notes = []
    if hr is None:
        crude = fit_counting_process_cox(df, terms=[r.treatment], stop_col=r.time,
                                         event_col=r.event, exposure=r.treatment,
                                         conf_level=conf_level)
        t = crude.term(r.treatment)
        hr, ci_lower, ci_upper = t["hr"], t["ci_lower"], t["ci_upper"]
        hr_label = hr_label or (f"crude Cox HR (Efron ties), {cohort.labels.comparison}, in "
                                "this cohort")
    elif ci_lower is None or ci_upper is None:
        raise ValueError("Give ci_lower and ci_upper with hr.")
    hr_label = hr_label or "hazard ratio supplied by the caller"
    _check_hr(hr, ci_lower, ci_upper)
    treated = cohort.treated == 1
    rows = []
    for c in confounders:
        terms = [r.treatment, c] + ([o for o in confounders if o != c]
                                    if mutually_adjusted else [])
        fit = fit_counting_process_cox(df, terms=terms, stop_col=r.time, event_col=r.event,
                                       exposure=c, conf_level=conf_level)
        est = fit.term(c)
        p1, p0 = float(df.loc[treated, c].mean()), float(df.loc[~treated, c].mean())
        for imbalance, (a, b) in (("as observed", (p1, p0)), ("reversed", (p0, p1))):
            row = {"confounder": c, "imbalance": imbalance, "p1": a, "p0": b,
                   "hr_u": est["hr"], "hr_u_ci_lower": est["ci_lower"],
                   "hr_u_ci_upper": est["ci_upper"], "hr_u_p": est["p"],
                   "hr_u_adjusted_for": ", ".join(t for t in terms if t != c),
                   "estimable": fit.estimable, "reason": fit.reason}
            if fit.estimable:
                bf = bias_factor(est["hr"], a, b)
                corr, lo, hi = hr / bf, ci_lower / bf, ci_upper / bf
                pn, cn = _nulled(hr, np.array(lo), np.array(hi), np.array(corr))
                row.update(bias_factor=bf, hr_corrected=corr, ci_lower_corrected=lo,
                           ci_upper_corrected=hi,
                           bias_direction=("toward benefit" if bf < 1 else
                                           "toward harm" if bf > 1 else "none"),
                           point_explained_away=bool(pn), ci_includes_1=bool(cn))
            else:
                row.update(bias_factor=np.nan, hr_corrected=np.nan, ci_lower_corrected=np.nan,
                           ci_upper_corrected=np.nan, bias_direction="not estimable",
                           point_explained_away=False, ci_includes_1=False)
            rows.append(row)
    if ci_lower <= 1 <= ci_upper:
        notes.append("The observed CI already includes 1; the benchmarks show how far the "
                     "point estimate would move.")
    notes.append(f"HR_U is each confounder's Cox HR with the outcome ({cohort.labels.outcome}; "
                 "Efron ties) adjusted for "
                 + ("treatment and the other confounders." if mutually_adjusted
                    else "treatment only."))
    notes.append("'reversed' swaps p1 and p0: the same strength, imbalanced the other way. "
                 "For a protective HR only bias 'toward benefit' (B < 1) can explain it away.")
    return ConfounderBenchmarks(float(hr), float(ci_lower), float(ci_upper), hr_label,
                                pd.DataFrame(rows), cohort.label, tuple(notes))
