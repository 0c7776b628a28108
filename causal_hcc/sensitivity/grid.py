"""Specification grid: how the adjusted hazard ratio moves when each analytic choice moves.

One row per specification (a combination of choices), with the HR of local therapy vs
none, its 95% Wald CI and P, the patients used, the effective (or matched) sample size,
the largest |SMD| over the PS covariates after adjustment, and the choices as columns.

What is crossed (not the Cartesian product of everything, which explodes):

- **matching family** = covariate sets x calipers x ratios x (without replacement: treated
  order largest, smallest, random with ``n_order_seeds`` seeds; with replacement: order
  does not matter, one row). Defaults: 8 sets x 5 calipers (0.05, 0.1, 0.2, 0.5 SD of the
  logit PS, none) x 2 ratios (1:1, 1:2) x (7 + 1) = **640 rows**;
- **weighting family** = covariate sets x estimand/stabilisation (ATE and ATT stabilised or
  not, ATO) x truncation (none, 1st-99th, 5th-95th percentiles) x PS trimming (none,
  0.05-0.95, 0.1-0.9). Defaults: 8 x 5 x 3 x 3 = **360 rows**.

Default total: **1000 rows**. The covariate sets (:func:`default_covariate_sets`) are the
default three (ECOG, intrahepatic cCR, vascular invasion); the default plus Child-Pugh, plus
AFP, plus oligometastatic status; intrahepatic control coded by Milan, lesion count or
largest diameter instead of cCR (:func:`~causal_hcc.data.schema.confounders_for`); and all
Table 1 variables.

Each row is estimated as :mod:`causal_hcc.effects` does for that method, without the
bootstrap: PSM Cox with matching weights and the cluster-robust SE over matched sets (on
patient when matching with replacement; R ``coxph(..., weights, cluster = subclass)``);
IPTW Cox with the robust sandwich SE (R ``coxph(..., weights, robust = TRUE)``). A row that
cannot be estimated (no match within the caliper, separation in the PS model, an arm
without deaths, nobody left after trimming) stays in the grid with ``estimable=False`` and
the reason. Separation (a covariate level found in one arm only, fitted PS 0 or 1) makes
every row of that covariate set not estimable: the unpenalised PS is then not identified,
so its weights and the caliper (in SDs of an arbitrary logit) are arbitrary too.

The vascular-invasion what-if (audit B6) is :func:`vascular_invasion_sensitivity`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc.balance import TABLE1_VARIABLES, variable_rows
from causal_hcc.data.schema import DEFAULT_CONFOUNDERS, Cohort, confounders_for
from causal_hcc.effects import cox_effect
from causal_hcc.errors import (CohortError, ConvergenceWarning, NotEstimableError,
                               SeparationWarning, SmallSampleWarning)
from causal_hcc.matching import match_on_logit
from causal_hcc.propensity import fit_propensity
from causal_hcc.weighting import ps_weights

CALIPERS = (0.05, 0.1, 0.2, 0.5, None)
RATIOS = (1, 2)
REPLACE = (False, True)
ORDERS = ("largest", "smallest", "random")
N_ORDER_SEEDS = 5
WEIGHTINGS = (("ATE", True), ("ATE", False), ("ATT", True), ("ATT", False), ("ATO", False))
TRUNCATIONS = (None, (1.0, 99.0), (5.0, 95.0))
TRIMS = (None, (0.05, 0.95), (0.1, 0.9))
DEFAULT_SEED = 20250710
#: Specifications balanced to max |SMD| <= this are counted apart in the summary.
BALANCE_THRESHOLD = 0.1
#: The choice columns of the grid, in the order the specification curve shows them.
CHOICE_COLUMNS = ("family", "covariate_set", "caliper", "ratio", "replacement", "order",
                  "weights", "stabilized", "truncation", "trimming")
COLUMNS = ("spec_id", *CHOICE_COLUMNS, "caliper_sd", "order_seed", "estimand", "covariates",
           "is_default", "estimable", "reason", "hr", "ci_lower", "ci_upper", "p_value",
           "se_log_hr", "variance", "n_treated", "n_control", "n_used", "events",
           "ess_treated", "ess_control", "max_abs_smd", "smd_denominator", "note")
_TINY = np.sqrt(np.finfo(float).eps)


def default_covariate_sets(cohort: Cohort | None = None) -> dict[str, tuple[str, ...]]:
    """The PS covariate sets of the grid, by name.

    Parameters
    ----------
    cohort : Cohort, optional
        When given, "all Table 1 variables" lists those present in it.

    Returns
    -------
    dict
        name -> covariates. A set naming a column the cohort lacks gives rows that are
        not estimable (with the reason), never dropped rows.
    """
    base = tuple(DEFAULT_CONFOUNDERS)
    table1 = tuple(dict.fromkeys(base + tuple(
        v for v in TABLE1_VARIABLES if cohort is None or v in cohort.data)))
    return {
        "default": base,
        "default + child_pugh": base + ("child_pugh",),
        "default + afp_positive": base + ("afp_positive",),
        "default + oligometastatic": base + ("oligometastatic",),
        "intrahepatic control: Milan": confounders_for("milan"),
        "intrahepatic control: lesion count": confounders_for("lesions"),
        "intrahepatic control: largest diameter": confounders_for("diameter"),
        "all Table 1 variables": table1,
    }


@dataclass(frozen=True)
class Specification:
    """One combination of analytic choices (``family`` "matching" or "weighting")."""

    family: str
    covariate_set: str
    caliper_sd: float | None = None
    ratio: int = 1
    replace: bool = False
    order: str = "largest"
    order_seed: int | None = None
    estimand: str = "ATT"
    stabilized: bool = False
    truncate: tuple | None = None
    trim: tuple | None = None

    @property
    def spec_id(self) -> str:
        if self.family == "matching":
            order = self.order + (f" {self.order_seed}" if self.order == "random" else "")
            return (f"PSM | {self.covariate_set} | caliper {_caliper_label(self.caliper_sd)} "
                    f"| 1:{self.ratio} | {'with' if self.replace else 'without'} "
                    f"replacement | {order if not self.replace else 'any order'}")
        return (f"IPTW | {self.covariate_set} | {self.estimand} "
                f"{'stabilised' if self.stabilized else 'unstabilised'} | truncation "
                f"{_range_label(self.truncate)} | trimming {_range_label(self.trim)}")

    def choices(self) -> dict:
        """The choice columns of this specification ("" where not applicable)."""
        out = dict.fromkeys(CHOICE_COLUMNS, "")
        out.update(family=self.family, covariate_set=self.covariate_set)
        if self.family == "matching":
            out.update(caliper=_caliper_label(self.caliper_sd), ratio=f"1:{self.ratio}",
                       replacement="with" if self.replace else "without",
                       order="any (with replacement)" if self.replace else self.order)
        else:
            out.update(weights=self.estimand,
                       stabilized=("n/a" if self.estimand == "ATO" else
                                   "yes" if self.stabilized else "no"),
                       truncation=_range_label(self.truncate), trimming=_range_label(self.trim))
        return out


def _caliper_label(caliper_sd) -> str:
    return "none" if caliper_sd is None else f"{caliper_sd:g} SD"


def _range_label(limits) -> str:
    return "none" if limits is None else f"{limits[0]:g}-{limits[1]:g}"


def is_default(spec: Specification) -> bool:
    """The package's default analysis (effects.adjust): PSM 1:1, caliper 0.2 SD, largest
    first, no replacement; IPTW ATE stabilised, untrimmed, untruncated; default set."""
    if spec.covariate_set != "default":
        return False
    if spec.family == "matching":
        return (spec.caliper_sd == 0.2 and spec.ratio == 1 and not spec.replace
                and spec.order == "largest")
    return (spec.estimand == "ATE" and spec.stabilized and spec.truncate is None
            and spec.trim is None)


def build_specifications(covariate_sets, *, calipers=CALIPERS, ratios=RATIOS,
                         replace=REPLACE, orders=ORDERS, n_order_seeds=N_ORDER_SEEDS,
                         weightings=WEIGHTINGS, truncations=TRUNCATIONS, trims=TRIMS,
                         seed: int = DEFAULT_SEED) -> tuple[Specification, ...]:
    """Every specification of the grid, in a fixed order (set, family, options).

    The random-order seeds are drawn once from ``seed``, so the same seed gives the same
    grid whatever the number of workers.
    """
    order_seeds = [int(s) for s in np.random.default_rng(seed).integers(
        0, 2**31 - 1, size=n_order_seeds)]
    specs = []
    for name in covariate_sets:
        for cal in calipers:
            for ratio in ratios:
                for rep in replace:
                    if rep:
                        specs.append(Specification("matching", name, cal, int(ratio), True,
                                                   "largest"))
                        continue
                    for order in orders:
                        seeds = order_seeds if order == "random" else [None]
                        specs += [Specification("matching", name, cal, int(ratio), False,
                                                order, s) for s in seeds]
        for estimand, stab in weightings:
            for trunc in truncations:
                for trim in trims:
                    specs.append(Specification("weighting", name, estimand=estimand,
                                               stabilized=bool(stab),
                                               truncate=None if trunc is None else tuple(trunc),
                                               trim=None if trim is None else tuple(trim)))
    return tuple(specs)


# ----------------------------------------------------------------------------- one set
@dataclass(frozen=True)
class _SetData:
    """Arrays shared by every specification of one covariate set."""

    time: np.ndarray
    event: np.ndarray
    treated: np.ndarray
    logit_ps: np.ndarray
    ps: np.ndarray
    levels: np.ndarray          # n x r: one column per balance row of the PS covariates
    binary: np.ndarray          # r: True for binary / category-level rows
    var_treated: np.ndarray     # unadjusted variances per row and arm (SMD denominators)
    var_control: np.ndarray
    covariates: tuple


def _balance_columns(frame, covariates, treated):
    """Level indicators / values of the PS covariates, as rows of the balance table."""
    cols, binary = [], []
    for name in dict.fromkeys(covariates):
        for _level, kind, x in variable_rows(frame, name, None):
            cols.append(x)
            binary.append(kind != "continuous")
    x = np.column_stack(cols)
    binary = np.asarray(binary)
    var = []
    for arm in (1, 0):
        xa = x[treated == arm]
        m = xa.mean(axis=0)
        var.append(np.where(binary, m * (1 - m), xa.var(axis=0, ddof=1)))
    return x, binary, var[0], var[1]


def _max_abs_smd(data: _SetData, weights, denominator: str) -> float:
    """Largest |SMD| over the PS covariates after adjustment (balance.py's convention).

    Difference of weighted means over an SD from the unadjusted sample: the treated arm's
    (matching, ATT) or pooled sqrt((s1^2 + s0^2) / 2) (ATE, ATO); binary p(1 - p).
    """
    w = np.asarray(weights, float)
    pooled = np.sqrt((data.var_treated + data.var_control) / 2)
    sd = np.sqrt(data.var_treated) if denominator == "treated" else pooled
    sd = np.where(sd < _TINY, np.where(pooled >= _TINY, pooled, np.nan), sd)
    means = []
    for arm in (1, 0):
        sel = (data.treated == arm) & (w > 0)
        means.append(w[sel] @ data.levels[sel] / w[sel].sum())
    with np.errstate(invalid="ignore"):
        smd = np.abs((means[0] - means[1]) / sd)
    return float(np.nanmax(smd)) if np.isfinite(smd).any() else float("nan")


def _prepare_set(frame: pd.DataFrame, covariates, label: str):
    """Fit the PS of one covariate set; (data, reason not estimable, notes)."""
    covariates = tuple(covariates)
    notes = []
    absent = [c for c in covariates if c not in frame]
    if absent:
        return None, f"column(s) {absent} not in the data", notes
    cohort = Cohort(frame, label)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = fit_propensity(cohort, covariates)
        except (CohortError, NotEstimableError) as exc:
            return None, "PS model not estimable: " + " ".join(str(exc).split()), notes
    for w in caught:
        message = str(w.message)
        if issubclass(w.category, SmallSampleWarning):
            notes.append("PS model: " + message)
        elif issubclass(w.category, (SeparationWarning, ConvergenceWarning)):
            pass  # reported through model.separation / model.converged below
        else:
            notes.append(f"PS model ({w.category.__name__}): {message}")
    if model.separation != "none":
        return None, (f"{model.separation} separation in the PS model "
                      f"({', '.join(model.separated_covariates) or 'fitted PS 0 or 1'}): "
                      "the unpenalised PS is not identified"), notes
    if not model.converged:
        return None, "the PS model did not converge", notes
    treated = frame["local_therapy"].to_numpy(int)
    levels, binary, vt, vc = _balance_columns(frame, covariates, treated)
    data = _SetData(frame["os_months"].to_numpy(float), frame["death"].to_numpy(float),
                    treated, np.asarray(model.logit_ps, float), np.asarray(model.ps, float),
                    levels, binary, vt, vc, covariates)
    return data, "", notes


def _cox_row(method, estimand, data: _SetData, weights, **kwargs) -> dict:
    """HR of a (weighted) Cox fit as effects.py makes it, failures as a reason."""
    tx = data.treated.astype(float)[:, None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est = cox_effect(method, estimand, "", data.time, data.event, tx,
                              ["local_therapy"], weights=weights, **kwargs)
        except NotEstimableError as exc:
            return {"estimable": False, "reason": str(exc)}
    trouble = [str(w.message) for w in caught
               if issubclass(w.category, (SeparationWarning, ConvergenceWarning))]
    out = {"hr": est.hr, "ci_lower": est.ci_lower, "ci_upper": est.ci_upper,
           "p_value": est.p_value, "se_log_hr": est.se_log_hr, "variance": est.variance,
           "n_treated": est.n_treated, "n_control": est.n_control,
           "n_used": est.n_treated + est.n_control, "events": est.events,
           "ess_treated": est.ess_treated, "ess_control": est.ess_control,
           "estimable": est.estimable, "reason": est.reason}
    reason = ""
    if trouble:
        reason = trouble[0] if trouble[0].startswith("Cox model") else "Cox model: " + trouble[0]
    elif est.estimable and not np.all(np.isfinite([est.hr, est.ci_lower, est.ci_upper])):
        reason = "Cox model: non-finite hazard ratio or CI"
    if reason:   # an estimate that cannot be trusted is not reported
        nan = float("nan")
        out.update(estimable=False, reason=reason, hr=nan, ci_lower=nan, ci_upper=nan,
                   p_value=nan, se_log_hr=nan)
    return out


def _matching_row(spec: Specification, data: _SetData) -> dict:
    try:
        m = match_on_logit(data.logit_ps, data.treated, ratio=spec.ratio,
                           caliper_sd=spec.caliper_sd, replace=spec.replace,
                           order=spec.order, seed=spec.order_seed)
    except NotEstimableError as exc:
        return {"estimable": False, "reason": str(exc), "estimand": "ATT"}
    estimand = m.estimand.split(" ")[0]
    if spec.replace:   # matched sets overlap: cluster on patient (as effects.py)
        row = _cox_row("psm", estimand, data, m.weights, robust=True)
    else:
        row = _cox_row("psm", estimand, data, m.weights, cluster=m.subclass)
    row.update(estimand=m.estimand, smd_denominator="treated",
               max_abs_smd=_max_abs_smd(data, m.weights, "treated"))
    if m.notes:
        row["note"] = " ".join(m.notes)
    return row


def _weighting_row(spec: Specification, data: _SetData) -> dict:
    ps, tx = data.ps, data.treated
    if not np.all((ps > 0) & (ps < 1)):
        return {"estimable": False, "reason": "fitted PS of 0 or 1: infinite weights",
                "estimand": spec.estimand}
    try:
        w, keep, _, _ = ps_weights(ps, tx, estimand=spec.estimand,
                                   stabilized=spec.stabilized, trim=spec.trim,
                                   truncate=spec.truncate)
    except NotEstimableError as exc:
        return {"estimable": False, "reason": str(exc), "estimand": spec.estimand}
    row = _cox_row("iptw", spec.estimand, data, w, robust=True)
    denominator = "treated" if spec.estimand == "ATT" else "pooled"
    row.update(estimand=spec.estimand, smd_denominator=denominator,
               max_abs_smd=_max_abs_smd(data, w, denominator))
    if spec.trim is not None:
        row["note"] = (f"{int((~keep).sum())} patients trimmed (PS outside "
                       f"{_range_label(spec.trim)}): {spec.estimand} in the trimmed "
                       "population.")
    return row


def _empty_row(spec: Specification, covariates) -> dict:
    nan = float("nan")
    row = {c: nan for c in COLUMNS}
    row.update(spec.choices())
    row.update(spec_id=spec.spec_id, caliper_sd=nan if spec.caliper_sd is None
               else spec.caliper_sd, order_seed=spec.order_seed,
               estimand="ATT" if spec.family == "matching" else spec.estimand,
               covariates=", ".join(covariates), is_default=is_default(spec),
               estimable=False, reason="", variance="", smd_denominator="", note="",
               n_treated=0, n_control=0, n_used=0, events=0)
    return row


def evaluate_set(frame: pd.DataFrame, covariates, specs, label: str = "") -> list[dict]:
    """Rows of the grid for the specifications of one covariate set (one PS fit).

    Parameters
    ----------
    frame : pandas.DataFrame
        A validated cohort's data (not modified).
    covariates : sequence of str
        The PS covariates of this set.
    specs : sequence of Specification
    label : str
        Provenance of the data, carried into the PS model's audit trail.

    Returns
    -------
    list of dict
        One row per specification, with the columns :data:`COLUMNS`.
    """
    data, reason, notes = _prepare_set(frame, covariates, label)
    rows = []
    for spec in specs:
        row = _empty_row(spec, covariates)
        if data is None:
            row["reason"] = reason
        else:
            row.update(_matching_row(spec, data) if spec.family == "matching"
                       else _weighting_row(spec, data))
        row["note"] = " ".join(x for x in (*notes, row.get("note") or "") if x)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class SpecificationGrid:
    """The adjusted HR of local therapy across analytic choices.

    Attributes
    ----------
    label : str
        Provenance of the data (the cohort's label).
    rows : pandas.DataFrame
        One row per specification, columns :data:`COLUMNS`: the choices, ``estimable`` and
        ``reason``, HR, Wald 95% CI, P, SE of log HR and its type, n treated / control /
        used (positive weight), events, ESS per arm, max |SMD| over the PS covariates and
        its denominator, and notes (e.g. the events-per-variable warning of the PS model).
    covariate_sets : dict
        name -> covariates.
    design : str
        What is crossed and how many rows result.
    settings : dict
        The options of the grid (calipers, ratios, ..., seed, random-order seeds).
    """

    label: str
    rows: pd.DataFrame
    covariate_sets: dict
    design: str
    settings: dict
    notes: tuple = field(default=())

    @property
    def n_specifications(self) -> int:
        return len(self.rows)

    @property
    def estimable_rows(self) -> pd.DataFrame:
        return self.rows[self.rows["estimable"].astype(bool)]

    def to_frame(self) -> pd.DataFrame:
        """One row per specification (a copy)."""
        return self.rows.copy()

    def ci_counts(self, family: str | None = None, max_smd: float | None = None) -> dict:
        """Counts behind the headline: estimable specs, CI excluding 1, HR < 1 / > 1.

        ``family`` restricts to "matching" or "weighting"; ``max_smd`` to estimable
        specifications whose max |SMD| over the PS covariates is at most that value.
        """
        ok = self.estimable_rows
        if family is not None:
            ok = ok[ok["family"] == family]
        if max_smd is not None:
            ok = ok[ok["max_abs_smd"] <= max_smd]
        below = ok["ci_upper"] < 1
        above = ok["ci_lower"] > 1
        return {"n_specifications": int(len(self.rows) if family is None else
                                        (self.rows["family"] == family).sum()),
                "n_estimable": int(len(ok)), "n_ci_excludes_1": int((below | above).sum()),
                "n_ci_excludes_1_below": int(below.sum()),
                "n_ci_excludes_1_above": int(above.sum()),
                "n_hr_below_1": int((ok["hr"] < 1).sum()),
                "hr_min": float(ok["hr"].min()) if len(ok) else float("nan"),
                "hr_median": float(ok["hr"].median()) if len(ok) else float("nan"),
                "hr_max": float(ok["hr"].max()) if len(ok) else float("nan")}

    def headline(self, family: str | None = None, max_smd: float | None = None) -> str:
        """'In X of Y estimable specifications the 95% CI excludes 1 (HR < 1 in A, > 1 in
        B).'"""
        c = self.ci_counts(family, max_smd)
        which = ("" if max_smd is None else
                 f" with max |SMD| <= {max_smd:g} over the PS covariates")
        return (f"In {c['n_ci_excludes_1']} of {c['n_estimable']} estimable specifications"
                f"{which} the 95% CI excludes 1 (HR < 1 in {c['n_ci_excludes_1_below']}, > 1 "
                f"in {c['n_ci_excludes_1_above']}).")

    def summary(self) -> str:
        c = self.ci_counts()
        lines = [self.label,
                 "Specification grid: HR of local therapy vs none (reference) across "
                 "analytic choices; Wald 95% CIs with robust SEs (no bootstrap).",
                 self.design,
                 self.headline(),
                 f"Estimable: {c['n_estimable']} of {c['n_specifications']}; HR median "
                 f"{c['hr_median']:.3f} (range {c['hr_min']:.3f} to {c['hr_max']:.3f}); "
                 f"point estimate < 1 in {c['n_hr_below_1']}.",
                 self.headline(max_smd=BALANCE_THRESHOLD)]
        for family in ("matching", "weighting"):
            f = self.ci_counts(family)
            lines.append(f"  {family}: {f['n_estimable']} of {f['n_specifications']} "
                         f"estimable; HR median {f['hr_median']:.3f} (range "
                         f"{f['hr_min']:.3f} to {f['hr_max']:.3f}); "
                         + self.headline(family))
        by_set = []
        for name, part in self.rows.groupby("covariate_set", sort=False):
            ok = part[part["estimable"].astype(bool)]
            by_set.append(f"  {name}: {len(ok)} of {len(part)} estimable"
                          + (f", HR median {ok['hr'].median():.3f}" if len(ok) else ""))
        lines += ["By covariate set:"] + by_set
        failed = self.rows[~self.rows["estimable"].astype(bool)]
        if len(failed):
            lines.append("Not estimable, by reason:")
            reasons = failed["reason"].str.split(":").str[0].str.split(".").str[0]
            for reason, count in reasons.value_counts().items():
                lines.append(f"  {count} x {reason}")
        default = self.rows[self.rows["is_default"].astype(bool)]
        for r in default.itertuples():
            lines.append(f"Default {r.family}: " + (
                f"HR {r.hr:.3f} ({r.ci_lower:.3f}-{r.ci_upper:.3f})" if r.estimable
                else f"not estimable ({r.reason})"))
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _design_text(sets, specs, settings) -> str:
    n_sets = len(sets)
    per_set_m = sum(1 for s in specs if s.family == "matching") // max(n_sets, 1)
    per_set_w = sum(1 for s in specs if s.family == "weighting") // max(n_sets, 1)
    orders = ", ".join(o + (f" ({settings['n_order_seeds']} seeds)" if o == "random" else "")
                       for o in settings["orders"])
    return (f"Crossed: matching options x covariate sets, and weighting options x covariate "
            f"sets (not matching x weighting). Matching: {n_sets} covariate sets x "
            f"{len(settings['calipers'])} calipers x {len(settings['ratios'])} ratios x "
            f"(without replacement: orders {orders}; with replacement: one row, order "
            f"irrelevant) = {n_sets} x {per_set_m} = {n_sets * per_set_m} rows. Weighting: "
            f"{n_sets} sets x {len(settings['weightings'])} estimand/stabilisation x "
            f"{len(settings['truncations'])} truncations x {len(settings['trims'])} trims = "
            f"{n_sets} x {per_set_w} = {n_sets * per_set_w} rows. Total {len(specs)} rows.")


def specification_grid(cohort: Cohort, *, covariate_sets: dict | None = None,
                       calipers=CALIPERS, ratios=RATIOS, replace=REPLACE, orders=ORDERS,
                       n_order_seeds: int = N_ORDER_SEEDS, weightings=WEIGHTINGS,
                       truncations=TRUNCATIONS, trims=TRIMS, seed: int = DEFAULT_SEED,
                       jobs: int = 1, progress=None) -> SpecificationGrid:
    """Re-run the adjusted analysis across analytic choices; one row per specification.

    Parameters
    ----------
    cohort : Cohort
    covariate_sets : dict, optional
        name -> PS covariates; default :func:`default_covariate_sets`.
    calipers : sequence of float or None
        Calipers in SDs of the logit PS (MatchIt's SD over all patients); None = none.
    ratios : sequence of int
        Controls per treated patient (1:k).
    replace : sequence of bool
        Matching without / with replacement.
    orders : sequence of {"largest", "smallest", "random"}
        Order in which treated patients choose (without replacement only).
    n_order_seeds : int
        Seeds for the random order (drawn from ``seed``).
    weightings : sequence of (estimand, stabilized)
        Default ATE and ATT stabilised or not, and ATO.
    truncations : sequence of (low, high) percentiles or None
    trims : sequence of (low, high) PS limits or None
    seed : int
        Seed of the random matching orders.
    jobs : int
        Parallel workers (joblib; a ``joblib.parallel_config`` backend such as Dask is
        honoured). The result is identical to ``jobs=1``.
    progress : callable, optional
        ``progress(done, total)`` in rows, called as each covariate set and family is done.

    Returns
    -------
    SpecificationGrid

    Notes
    -----
    See the module docstring for what is crossed. Each row uses the point estimate and
    the model-based robust SE of its method as :func:`causal_hcc.effects.adjust` does; the
    default rows reproduce ``adjust``'s ``psm`` and ``iptw`` (ATE) estimates exactly.
    """
    sets = dict(default_covariate_sets(cohort) if covariate_sets is None else covariate_sets)
    specs = build_specifications(sets, calipers=calipers, ratios=ratios, replace=replace,
                                 orders=orders, n_order_seeds=n_order_seeds,
                                 weightings=weightings, truncations=truncations, trims=trims,
                                 seed=seed)
    tasks = []
    for name, covs in sets.items():
        for family in ("matching", "weighting"):
            chunk = [s for s in specs if s.covariate_set == name and s.family == family]
            if chunk:
                tasks.append((tuple(covs), chunk))
    total = len(specs)
    frame = cohort.data
    if jobs == 1:
        results = (evaluate_set(frame, covs, chunk, cohort.label) for covs, chunk in tasks)
    else:
        from joblib import Parallel, delayed
        results = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(evaluate_set)(frame, covs, chunk, cohort.label) for covs, chunk in tasks)
    rows, done = [], 0
    for chunk_rows in results:
        rows += chunk_rows
        done += len(chunk_rows)
        if progress is not None:
            progress(done, total)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["estimable"] = table["estimable"].astype(bool)
    table["is_default"] = table["is_default"].astype(bool)
    settings = {"calipers": list(calipers), "ratios": list(ratios), "replace": list(replace),
                "orders": list(orders), "n_order_seeds": n_order_seeds,
                "order_seeds": sorted({s.order_seed for s in specs if s.order_seed is not None}),
                "weightings": [list(w) for w in weightings],
                "truncations": [None if t is None else list(t) for t in truncations],
                "trims": [None if t is None else list(t) for t in trims], "seed": seed,
                "caliper_sd_denominator": "all", "ties": "efron", "bootstrap": False}
    notes = ("Wald CIs from robust SEs (cluster-robust over matched sets for PSM without "
             "replacement, robust on patient otherwise); no bootstrap in the grid.",
             "Max |SMD| over the PS covariates (each category level a row); denominator "
             "the treated arm's SD for matching and ATT, pooled for ATE and ATO.")
    return SpecificationGrid(cohort.label, table, {k: tuple(v) for k, v in sets.items()},
                             _design_text(sets, specs, settings), settings, notes)


# ----------------------------------------------------------------------------- audit B6
@dataclass(frozen=True)
class VascularInvasionSensitivity:
    """Default PSM and IPTW ATE HRs when vascular invasion in the treated arm is altered.

    ``rows``: one per scenario (k, draw) and method with the patients flipped;
    ``by_k``: per k and method the number of draws, the HR range (min, median, max) and
    the number of draws whose CI excludes 1.
    """

    label: str
    observed_k: int
    rows: pd.DataFrame
    by_k: pd.DataFrame
    n_draws: int
    seed: int
    notes: tuple

    def to_frame(self) -> pd.DataFrame:
        return self.rows.copy()

    def summary(self) -> str:
        lines = [self.label,
                 f"What-if on the reconstruction (audit B6): vascular invasion in the local "
                 f"therapy arm set to k patients (as reconstructed: {self.observed_k}) by "
                 f"flipping randomly chosen treated patients ({self.n_draws} draws per k, "
                 f"seed {self.seed}); default PSM and IPTW ATE re-run, PS re-estimated."]
        for r in self.by_k.itertuples():
            rng = (f"HR {r.hr_min:.3f} to {r.hr_max:.3f} (median {r.hr_median:.3f})"
                   if r.n_estimable else "not estimable")
            lines.append(f"  k = {r.k}, {r.method}: {rng}; {r.n_estimable} of {r.n_draws} "
                         f"estimable; CI excludes 1 in {r.n_ci_excludes_1}.")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _flip(frame, treated_vi, k, rng) -> tuple[pd.DataFrame, list]:
    data = frame.copy()
    rows_treated = np.flatnonzero(data["local_therapy"].to_numpy() == 1)
    vi = data["vascular_invasion"].to_numpy().copy()
    pool = rows_treated[vi[rows_treated] == (1 if k < treated_vi else 0)]
    chosen = np.sort(rng.choice(pool, size=abs(k - treated_vi), replace=False))
    vi[chosen] = 0 if k < treated_vi else 1
    data["vascular_invasion"] = vi
    return data, [str(data["patient_id"].iloc[i]) for i in chosen]


def vascular_invasion_sensitivity(cohort: Cohort, k_values=range(3, 9), *,
                                  n_draws: int = 10, covariates=None,
                                  seed: int = DEFAULT_SEED) -> VascularInvasionSensitivity:
    """Audit B6 what-if: how the default PSM and IPTW ATE HRs move with vascular invasion.

    Table 1 prints 5/17 for both multiple intrahepatic lesions and vascular invasion; a
    copy error cannot be excluded. On the bundled reconstruction, vascular invasion in the
    local therapy arm is set to each k by flipping randomly chosen treated patients (from 1
    to 0 when k is below the reconstructed count, from 0 to 1 above it), ``n_draws`` times
    per k; the PS is re-estimated and the default PSM (1:1, caliper 0.2 SD, largest first)
    and IPTW ATE (stabilised) HRs recomputed.

    Parameters
    ----------
    cohort : Cohort
        The bundled reconstructed cohort (``cohort.reconstructed``); real data record what
        they record, so this what-if is refused for them.
    k_values : sequence of int
        Treated patients with vascular invasion (default 3 to 8).
    n_draws : int
        Random draws of the flipped patients per k (one row at the reconstructed k).
    covariates : sequence of str, optional
        PS covariates (default ECOG, cCR, vascular invasion); must include vascular_invasion.
    seed : int
        One stream per k (``numpy.random.default_rng([seed, k])``): bit-for-bit
        reproducible, and a k's draws do not depend on the other k values asked for.

    Returns
    -------
    VascularInvasionSensitivity
    """
    if not cohort.reconstructed:
        raise ValueError("The vascular-invasion what-if (audit B6) is defined for the bundled "
                         "reconstructed cohort only; patient-level data record vascular "
                         "invasion as observed.")
    covariates = tuple(DEFAULT_CONFOUNDERS if covariates is None else covariates)
    if "vascular_invasion" not in covariates:
        raise ValueError("covariates must include 'vascular_invasion' for this what-if.")
    frame = cohort.data
    treated = frame["local_therapy"].to_numpy() == 1
    observed = int(frame.loc[treated, "vascular_invasion"].sum())
    k_values = [int(k) for k in k_values]
    bad = [k for k in k_values if not 0 <= k <= int(treated.sum())]
    if bad:
        raise ValueError(f"k values {bad} outside 0..{int(treated.sum())} treated patients.")
    specs = (Specification("matching", "default", 0.2, 1, False, "largest"),
             Specification("weighting", "default", estimand="ATE", stabilized=True))
    rows = []
    for k in k_values:
        rng = np.random.default_rng([seed, k])   # one stream per k, whatever else is asked
        for draw in range(1 if k == observed else n_draws):
            data, flipped = ((frame, []) if k == observed
                             else _flip(frame, observed, k, rng))
            for spec, row in zip(specs, evaluate_set(data, covariates, specs)):
                rows.append({"k": k, "draw": draw + 1, "flipped_ids": ", ".join(flipped),
                             "method": "psm" if spec.family == "matching" else "iptw",
                             **{c: row[c] for c in ("estimand", "hr", "ci_lower", "ci_upper",
                                                    "p_value", "n_treated", "n_control",
                                                    "events", "estimable", "reason")}})
    table = pd.DataFrame(rows)
    by_k = []
    for (k, method), part in table.groupby(["k", "method"], sort=False):
        ok = part[part["estimable"].astype(bool)]
        excl = (ok["ci_upper"] < 1) | (ok["ci_lower"] > 1)
        by_k.append({"k": k, "method": method, "n_draws": len(part), "n_estimable": len(ok),
                     "hr_min": ok["hr"].min(), "hr_median": ok["hr"].median(),
                     "hr_max": ok["hr"].max(), "n_ci_excludes_1": int(excl.sum())})
    notes = ("A what-if on the RECONSTRUCTED cohort, not on the study's patients: which "
             "treated patients had vascular invasion is itself reconstructed.",
             "Flipping changes only vascular_invasion; the other variables and the outcome "
             "stay as reconstructed.")
    return VascularInvasionSensitivity(cohort.label, observed, table, pd.DataFrame(by_k),
                                       n_draws, seed, notes)

