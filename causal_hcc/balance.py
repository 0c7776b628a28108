"""Covariate balance before and after matching or weighting -> BalanceTable.

For every propensity-score covariate and every other baseline variable of the cohort
(``cohort.roles.balance_variables``: outcome covariates, candidates, subgroups, a study's
Table 1 variables): the
(weighted) mean or proportion per arm (each category level its own row), the standardised
mean difference, the variance ratio and the (weighted) Kolmogorov-Smirnov statistic. The SMD
denominator comes from the unadjusted sample and is the same before and after adjustment:
the treated arm's SD for matching and ATT weights (MatchIt's ``summary()``), the control
arm's SD for the ATC (controls are the target population), the pooled
sqrt((s1^2 + s0^2) / 2) for ATE and overlap weights (cobalt's default). Binary variables use
the variance p(1 - p), continuous ones the unbiased (weighted) variance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc.balance_stats import (  # noqa: F401  (re-exported)
    Prepared, row_stats, variable_rows, weighted_ks, weighted_mean, weighted_variance)
from causal_hcc.data.cohort import Cohort
from causal_hcc.errors import CohortError
from causal_hcc.matching import MatchedSample
from causal_hcc.weighting import Weights, effective_sample_size

THRESHOLD = 0.1
DENOMINATORS = {
    "treated": "SD of the treated arm in the unadjusted sample (MatchIt summary(); "
               "matching and ATT)",
    "control": "SD of the control arm in the unadjusted sample (MatchIt summary() with "
               "estimand = 'ATC'; ATC matching and weights)",
    "pooled": "pooled SD sqrt((s1^2 + s0^2) / 2) of the unadjusted sample (cobalt default; "
              "ATE and overlap weights)",
}


@dataclass(frozen=True)
class BalanceTable:
    """Balance of each covariate (level) before and after adjustment.

    Attributes
    ----------
    rows : pandas.DataFrame
        One row per variable (per level for categories): variable, level, kind,
        ps_covariate, n_missing, mean/sd per arm before and after, smd_before, smd_after,
        variance_ratio_before/after (continuous), ks_before/after, sd_denominator (the SD
        dividing the difference), imbalanced_before/after (|SMD| > threshold).
    adjustment : str
        "unadjusted", or how the matched sample / weights were made.
    smd_denominator : {"treated", "control", "pooled"}
    n_before, n_after, ess_after : dict
        Patients per arm; weighted n (sum of weights) and effective sample size after.
    """

    label: str
    adjustment: str
    estimand: str | None
    smd_denominator: str
    threshold: float
    rows: pd.DataFrame
    n_before: dict
    n_after: dict
    ess_after: dict
    adjusted: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def denominator_description(self) -> str:
        return DENOMINATORS[self.smd_denominator]

    @property
    def max_abs_smd(self) -> float:
        """Largest |SMD| after adjustment (before, when unadjusted)."""
        col = "smd_after" if self.adjusted else "smd_before"
        return float(np.nanmax(np.abs(self.rows[col]))) if len(self.rows) else np.nan

    @property
    def max_abs_smd_before(self) -> float:
        return float(np.nanmax(np.abs(self.rows["smd_before"]))) if len(self.rows) else np.nan

    @property
    def imbalanced(self) -> tuple[str, ...]:
        """Variables (levels) with |SMD| above the threshold after adjustment."""
        col = "imbalanced_after" if self.adjusted else "imbalanced_before"
        hit = self.rows[self.rows[col]]
        return tuple(_row_name(r.variable, r.level) for r in hit.itertuples())

    def to_frame(self) -> pd.DataFrame:
        return self.rows.copy()

    def summary(self) -> str:
        lines = [self.label, f"Covariate balance: {self.adjustment}"
                 + (f" (estimand {self.estimand})" if self.estimand else "") + ".",
                 f"SMD denominator: {self.denominator_description}; binary variables "
                 "p(1 - p), continuous the unbiased variance. Threshold |SMD| > "
                 f"{self.threshold:g}.",
                 f"n before: {self.n_before['treated']} treated, {self.n_before['control']} "
                 "control."]
        if self.adjusted:
            lines.append(f"Weighted n after: {self.n_after['treated']:.1f} treated, "
                         f"{self.n_after['control']:.1f} control (ESS "
                         f"{self.ess_after['treated']:.1f} / {self.ess_after['control']:.1f}).")
        lines.append(f"Max |SMD|: {self.max_abs_smd_before:.3f} before"
                     + (f", {self.max_abs_smd:.3f} after" if self.adjusted else "") + ".")
        lines.append(f"{'variable':<40} {'SMD before':>10} {'SMD after':>10} {'VR after':>9} "
                     f"{'KS after':>9}")
        for r in self.rows.itertuples():
            flag = " *" if (r.imbalanced_after if self.adjusted else r.imbalanced_before) else ""
            lines.append(f"{_row_name(r.variable, r.level):<40} {r.smd_before:>10.3f} "
                         f"{r.smd_after:>10.3f} {r.variance_ratio_after:>9.3f} "
                         f"{r.ks_after:>9.3f}{flag}")
        if self.imbalanced:
            lines.append(f"* |SMD| > {self.threshold:g}: {', '.join(self.imbalanced)}.")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def table_one(self) -> pd.DataFrame:
        """Journal Table 1: mean ± SD or n (%) per arm, before and after, with SMDs."""
        # After adjustment "n" is a sum of weights, not a head count: say so, and give
        # the effective sample size beside it.
        out = [{"variable": "n", "level": "",
                "statistic": "n (after: sum of weights)" if self.adjusted else "n",
                "treated_before": str(self.n_before["treated"]),
                "control_before": str(self.n_before["control"]), "smd_before": "",
                "treated_after": _count(self.n_after["treated"]) if self.adjusted else "",
                "control_after": _count(self.n_after["control"]) if self.adjusted else "",
                "smd_after": ""}]
        if self.adjusted:
            out.append({"variable": "ESS", "level": "",
                        "statistic": "effective sample size (sum w)^2 / sum w^2",
                        "treated_before": str(self.n_before["treated"]),
                        "control_before": str(self.n_before["control"]), "smd_before": "",
                        "treated_after": f"{self.ess_after['treated']:.1f}",
                        "control_after": f"{self.ess_after['control']:.1f}",
                        "smd_after": ""})
        for r in self.rows.itertuples():
            entry = {"variable": r.variable, "level": r.level,
                     "statistic": {"continuous": "mean ± SD", "binary": "n (%) with value 1"}
                     .get(r.kind, "n (%)")}
            for when in ("before", "after"):
                for arm in ("treated", "control"):
                    mean = getattr(r, f"mean_{arm}_{when}")
                    if when == "after" and not self.adjusted:
                        entry[f"{arm}_{when}"] = ""
                    elif r.kind == "continuous":
                        sd = getattr(r, f"sd_{arm}_{when}")
                        entry[f"{arm}_{when}"] = f"{mean:.2f} ± {sd:.2f}"
                    else:
                        entry[f"{arm}_{when}"] = (f"{_count(getattr(r, f'n_{arm}_{when}'))} "
                                                  f"({100 * mean:.1f}%)")
                smd = getattr(r, f"smd_{when}")
                entry[f"smd_{when}"] = "" if np.isnan(smd) else f"{smd:.3f}"
            out.append(entry)
        return pd.DataFrame(out)


def _row_name(variable, level) -> str:
    return f"{variable} = {level}" if level != "" else variable


def _count(x: float) -> str:
    return f"{int(round(x))}" if abs(x - round(x)) < 1e-9 else f"{x:.1f}"


_COLUMNS = ["variable", "level", "kind", "ps_covariate", "n_missing",
            "mean_treated_before", "mean_control_before", "sd_treated_before",
            "sd_control_before", "n_treated_before", "n_control_before", "smd_before",
            "variance_ratio_before", "ks_before", "mean_treated_after", "mean_control_after",
            "sd_treated_after", "sd_control_after", "n_treated_after", "n_control_after",
            "smd_after", "variance_ratio_after", "ks_after", "sd_denominator",
            "imbalanced_before", "imbalanced_after"]


def balance_frame(frame: pd.DataFrame, treated, covariates, *, weights=None,
                  smd_denominator: str = "pooled", ps_covariates=(), threshold: float = THRESHOLD,
                  levels: dict | None = None, kinds: dict | None = None,
                  adjustment: str | None = None,
                  estimand: str | None = None, label: str = "") -> BalanceTable:
    """Balance table for any data frame and weights (the core of :func:`balance_table`).

    Parameters
    ----------
    frame : pandas.DataFrame
        Not modified.
    treated : array (n,) of 0/1
    covariates : sequence of str
        Columns; data-dictionary variables use their kind, others are categorical when not
        numeric, binary when 0/1, else continuous.
    weights : array (n,), optional
        Matching or propensity weights (0 = not in the adjusted sample); None: unadjusted.
    smd_denominator : {"pooled", "treated", "control"}
    ps_covariates : sequence of str
        Marked as such in the table.
    threshold : float
        |SMD| above it is flagged (0.1).
    kinds : dict, optional
        ``binary``/``numeric``/``categorical`` by covariate (a Cohort's ``kinds``).
    levels : dict, optional
        Level order of categorical covariates not in the data dictionary.
    adjustment, estimand, label : audit trail.

    Returns
    -------
    BalanceTable

    Notes
    -----
    Agrees with MatchIt ``summary(m, un = TRUE)`` (means, SMD, variance ratio, eCDF max)
    for matched samples, and with the hand formula plus ``survey::svymean`` for weights
    (tests/reference/matching.R).

    References
    ----------
    Austin PC (2011). Multivariate Behav Res 46:399-424.
    Austin PC, Stuart EA (2015). Stat Med 34:3661-3679.
    """
    return _balance(Prepared(frame, treated, levels, kinds), covariates, weights=weights,
                    smd_denominator=smd_denominator, ps_covariates=ps_covariates,
                    threshold=threshold, adjustment=adjustment, estimand=estimand,
                    label=label)


def _balance(prepared: Prepared, covariates, **spec) -> BalanceTable:
    """:func:`balance_frame` on a preparation (see :func:`_tables`)."""
    return _tables(prepared, {"table": dict(spec, covariates=covariates)})["table"]


def _check(frame, spec: dict) -> None:
    if spec["smd_denominator"] not in DENOMINATORS:
        raise ValueError(f"smd_denominator must be one of {sorted(DENOMINATORS)}, not "
                         f"{spec['smd_denominator']!r}")
    absent = [c for c in spec["covariates"] if c not in frame]
    if absent:
        raise CohortError([f"Column '{c}': not found; cannot show its balance."
                           for c in absent], header="Cannot build the balance table:")


def _tables(prepared: Prepared, specs: dict) -> dict:
    """BalanceTables of several adjustments: ``specs`` holds, by name, the covariates,
    weights, smd_denominator, ps_covariates, threshold, adjustment, estimand and label of
    each (:func:`balance_frame`'s arguments).

    One variable at a time: its weight-free rows are prepared once, give their numbers
    under every adjustment, and are let go (one variable's arrays in memory at a time).
    """
    for spec in specs.values():
        _check(prepared.frame, spec)
    treated = prepared.treated
    weights = {key: np.ones(len(treated)) if spec["weights"] is None
               else np.asarray(spec["weights"], dtype=float) for key, spec in specs.items()}
    stats: dict = {}
    names = dict.fromkeys(c for spec in specs.values() for c in spec["covariates"])
    for name in names:
        rows = prepared.rows(name)
        for key, spec in specs.items():
            if name in spec["covariates"]:
                stats[key, name] = [(row.level, row.kind,
                                     row_stats(row, weights[key], spec["smd_denominator"]))
                                    for row in rows]
        del rows
    return {key: _table(spec, weights[key], treated,
                        [(name, *numbers) for name in dict.fromkeys(spec["covariates"])
                         for numbers in stats[key, name]])
            for key, spec in specs.items()}


def _table(spec: dict, w: np.ndarray, treated: np.ndarray, computed) -> BalanceTable:
    """One BalanceTable from its rows' numbers ``computed``: (variable, level, kind,
    stats)."""
    adjusted = spec["weights"] is not None
    rows = []
    notes = []
    for name, level, kind, stats in computed:
        rows.append({"variable": name, "level": level, "kind": kind,
                     "ps_covariate": name in spec["ps_covariates"], **stats})
        if stats["n_missing"] and not any(n.startswith(f"'{name}'") for n in notes):
            notes.append(f"'{name}': {stats['n_missing']} missing values left out of "
                         "its rows.")
    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(columns=_COLUMNS)
    for when in ("before", "after"):
        table[f"imbalanced_{when}"] = (np.abs(table[f"smd_{when}"].astype(float))
                                       > spec["threshold"])
    if not adjusted:
        after = [c for c in table.columns if c.endswith("_after") and c != "imbalanced_after"]
        table[after] = np.nan
        table["imbalanced_after"] = False
    sums = {a: float(w[treated == v].sum()) for a, v in (("treated", 1), ("control", 0))}
    ess = {a: effective_sample_size(w[treated == v]) for a, v in (("treated", 1),
                                                                  ("control", 0))}
    return BalanceTable(label=spec["label"], adjustment=spec["adjustment"] or "unadjusted",
                        estimand=spec["estimand"], smd_denominator=spec["smd_denominator"],
                        threshold=spec["threshold"],
                        rows=table[_COLUMNS].reset_index(drop=True),
                        n_before={"treated": int((treated == 1).sum()),
                                  "control": int((treated == 0).sum())},
                        n_after=sums if adjusted else {}, ess_after=ess if adjusted else {},
                        adjusted=adjusted, notes=tuple(notes))


def focal_denominator(estimand: str | None, matching: bool = False) -> str:
    """SMD denominator of an estimand: the target arm's SD (treated for ATT and for
    matching, control for ATC), pooled for ATE and overlap weights."""
    head = (estimand or "").split(" ")[0]
    if head == "ATC":
        return "control"
    if head == "ATT" or (matching and head != "ATE"):
        return "treated"
    return "pooled"


def _describe(adjustment) -> tuple[str, str | None, str, np.ndarray | None]:
    """(description, estimand, default SMD denominator, weights) of an adjustment."""
    if adjustment is None:
        return "unadjusted", None, "pooled", None
    if isinstance(adjustment, MatchedSample):
        cal = ("no caliper" if adjustment.caliper is None else
               f"caliper {adjustment.caliper_sd:g} SD of the logit PS")
        return (f"matching ({adjustment.method} 1:{adjustment.ratio}, "
                f"{'with' if adjustment.replace else 'without'} replacement, {cal}; "
                "MatchIt weights)", adjustment.estimand,
                focal_denominator(adjustment.estimand, matching=True),
                np.asarray(adjustment.weights))
    if isinstance(adjustment, Weights):
        extra = [x for x, on in (("stabilised", adjustment.stabilized),
                                 (f"trimmed to PS {adjustment.trim}", adjustment.trim),
                                 (f"truncated at percentiles {adjustment.truncate}",
                                  adjustment.truncate)) if on]
        return (f"weighting ({adjustment.estimand}" + "".join(f", {e}" for e in extra) + ")",
                adjustment.estimand, focal_denominator(adjustment.estimand),
                np.asarray(adjustment.weights))
    raise TypeError("adjustment must be a MatchedSample, a Weights object or None, not "
                    f"{type(adjustment).__name__}")


def balance_table(cohort: Cohort, adjustment: MatchedSample | Weights | None = None, *,
                  covariates=None, ps_covariates=None, smd_denominator: str | None = None,
                  threshold: float = THRESHOLD) -> BalanceTable:
    """Balance of the PS covariates and all other Table 1 variables, before and after.

    Parameters
    ----------
    cohort : Cohort
    adjustment : MatchedSample, Weights or None
        Matching (its MatchIt weights) or weighting; None for the unadjusted table only.
    covariates : sequence of str, optional
        Default: the PS covariates, then every other balance variable of the cohort
        (``cohort.roles.balance_variables``) present in its data.
    ps_covariates : sequence of str, optional
        Default: those of the adjustment, else the cohort's PS covariates.
    smd_denominator : {"treated", "control", "pooled"}, optional
        Default: "treated" for matching and ATT weights, "control" for ATC matching and
        weights, "pooled" otherwise (ATE, ATO).
    threshold : float
        |SMD| above it is flagged (0.1).

    Returns
    -------
    BalanceTable

    Notes
    -----
    For a matched sample this reproduces MatchIt ``summary(m, un = TRUE)``; for weights,
    cobalt-style SMDs (checked against the formula in R and ``survey::svymean``).

    References
    ----------
    Austin PC (2011). Multivariate Behav Res 46:399-424.
    Austin PC, Stuart EA (2015). Stat Med 34:3661-3679.
    """
    return balance_tables(cohort, {"table": adjustment}, covariates=covariates,
                          ps_covariates=ps_covariates, smd_denominator=smd_denominator,
                          threshold=threshold)["table"]


def balance_tables(cohort: Cohort, adjustments: dict, *, covariates=None, ps_covariates=None,
                   smd_denominator: str | None = None,
                   threshold: float = THRESHOLD) -> dict:
    """:func:`balance_table` of each adjustment, computed together.

    Parameters
    ----------
    cohort : Cohort
    adjustments : dict
        ``{name: MatchedSample, Weights or None}``, e.g. ``{"psm": matched, "iptw_ATE":
        weights, ...}``.
    covariates, ps_covariates, smd_denominator, threshold
        As :func:`balance_table`, for every adjustment.

    Returns
    -------
    dict
        ``{name: BalanceTable}``, each equal to ``balance_table(cohort, adjustment)``.

    Notes
    -----
    What does not depend on the weights (the rows' values, the arms before adjustment,
    the sort order of each continuous variable) is worked out once for all the tables
    (:mod:`causal_hcc.balance_stats`): five tables cost little more than one.
    """
    prepared = Prepared(cohort.data, cohort.treated, dict(cohort.levels), dict(cohort.kinds))
    ids = None
    specs = {}
    for name, adjustment in adjustments.items():
        description, estimand, default_denominator, weights = _describe(adjustment)
        if adjustment is not None:
            ids = cohort.ids if ids is None else ids
            if len(ids) != len(adjustment.patient_id) or np.any(ids != adjustment.patient_id):
                raise CohortError(["The matched sample / weights belong to other patients "
                                   "(or another row order) than this cohort."],
                                  header="Cannot build the balance table:")
        ps = ps_covariates
        if ps is None:
            ps = (adjustment.covariates if adjustment is not None
                  and adjustment.covariates else cohort.roles.covariates)
        shown = covariates
        if shown is None:
            shown = tuple(ps) + tuple(v for v in cohort.roles.balance_variables
                                      if v in cohort.data and v not in ps)
        specs[name] = {"covariates": tuple(shown), "weights": weights,
                       "smd_denominator": smd_denominator or default_denominator,
                       "ps_covariates": tuple(ps), "threshold": threshold,
                       "adjustment": description, "estimand": estimand,
                       "label": cohort.label}
        _check(cohort.data, specs[name])     # each adjustment's errors in turn, as before
    return _tables(prepared, specs)


RESIDUAL_COLUMNS = ["method", "estimand", "variable", "level", "ps_covariate", "smd_before",
                    "smd_after", "sd_denominator_used"]


def residual_imbalance(tables: dict, threshold: float | None = None) -> pd.DataFrame:
    """Every variable (level) still above |SMD| ``threshold`` after each adjustment.

    Parameters
    ----------
    tables : dict
        ``{method name: BalanceTable}`` (e.g. ``EffectsReport.balance``); each table covers
        the PS covariates and every other balance variable of the cohort.
    threshold : float, optional
        Default: each table's own (0.1).

    Returns
    -------
    pandas.DataFrame
        One row per method and variable (level) with |SMD after| > threshold, largest
        first within each method: method, estimand, variable, level, ps_covariate,
        smd_before, smd_after, sd_denominator_used.
    """
    frames = []
    for name, table in tables.items():
        if not table.adjusted:
            continue
        cut = table.threshold if threshold is None else threshold
        rows = table.rows[np.abs(table.rows["smd_after"].astype(float)) > cut]
        rows = rows.iloc[np.argsort(-np.abs(rows["smd_after"].to_numpy(float)),
                                    kind="stable")]
        frames.append(rows.assign(method=name, estimand=table.estimand,
                                  sd_denominator_used=table.smd_denominator)
                      [RESIDUAL_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=RESIDUAL_COLUMNS)
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- cobalt bal.tab, long
#: Columns of :func:`balance_summary`, in order.
SUMMARY_COLUMNS = ["variable", "label", "level", "kind", "in_model", "method", "estimand",
                   "smd", "smd_denominator", "variance_ratio", "ks", "n_missing",
                   "imbalanced", "smd_unadjusted", "mean_treated", "mean_control"]
_DENOMINATOR_WORDS = {"treated": "treated SD", "control": "control SD", "pooled": "pooled SD"}
_METHOD_WORDS = {"psm": "PSM", "iptw": "IPTW", "exact": "Exact", "cem": "CEM",
                 "subclass": "Subclass"}


def method_display(key: str, estimand: str | None) -> str:
    """'PSM (ATT)', 'IPTW (ATE)', 'CEM (ATC)'... from a balance key (``psm``,
    ``iptw_ATE``) or an estimate's method, and its estimand (first word)."""
    base = key.split("_")[0]
    head = (estimand or "").split(" ")[0]
    name = _METHOD_WORDS.get(base, key)
    return f"{name} ({head})" if head else name


def readable(name: str, labels=None) -> str:
    """A column's readable name: the labels' (a Labels or a dict), else the column name
    with spaces for underscores and a capital first letter."""
    mapping = getattr(labels, "variables", labels) or {}
    if name in mapping:
        return str(mapping[name])
    text = str(name).replace("_", " ")
    return text[:1].upper() + text[1:]


def _one_row_per_binary(rows: pd.DataFrame) -> pd.DataFrame:
    """Drop the reference level of every two-level category (its SMD is minus the other
    level's: p(1 - p) is symmetric), so a binary variable is one row, as in cobalt."""
    cat = rows["kind"].eq("category")
    n_levels = rows.loc[cat].groupby("variable", sort=False)["level"].transform("size")
    two = pd.Series(False, index=rows.index)
    two.loc[cat] = n_levels.eq(2)
    first = rows.loc[two].groupby("variable", sort=False).cumcount().eq(0)
    drop = pd.Series(False, index=rows.index)
    drop.loc[first.index] = first
    out = rows.loc[~drop].copy()
    collapsed = two.loc[~drop]
    out["shown_level"] = out["level"]
    out.loc[collapsed, "kind"] = "binary"
    out["kind"] = out["kind"].replace({"category": "categorical"})
    return out


def _long(rows: pd.DataFrame, when: str, method: str, estimand, denominator: str,
          threshold: float, labels) -> pd.DataFrame:
    binary = ~rows["kind"].eq("continuous").to_numpy()
    smd = rows[f"smd_{when}"].to_numpy(float)
    single = rows["kind"].isin(["binary", "continuous"])
    label = rows["variable"].map(lambda v: readable(v, labels))
    shown = rows["shown_level"].astype(str)
    label = label.where(~(rows["kind"].eq("binary") & shown.ne("")), label + ": " + shown)
    label = label.where(single, label + ": " + shown)
    return pd.DataFrame({
        "variable": rows["variable"].to_numpy(), "label": label.to_numpy(),
        "level": np.where(single, None, rows["level"].to_numpy(object)),
        "kind": rows["kind"].to_numpy(), "in_model": rows["ps_covariate"].to_numpy(bool),
        "method": method, "estimand": estimand,
        "smd": smd, "smd_denominator": _DENOMINATOR_WORDS[denominator],
        "variance_ratio": np.where(binary, np.nan,
                                   rows[f"variance_ratio_{when}"].to_numpy(float)),
        "ks": np.where(binary, np.nan, rows[f"ks_{when}"].to_numpy(float)),
        "n_missing": rows["n_missing"].to_numpy(int),
        "imbalanced": np.abs(smd) > threshold,
        "smd_unadjusted": rows["smd_before"].to_numpy(float),
        "mean_treated": rows[f"mean_treated_{when}"].to_numpy(float),
        "mean_control": rows[f"mean_control_{when}"].to_numpy(float)})


def _more_tables(effects, cohort) -> dict:
    """BalanceTables of the matching rows beyond ``effects.balance`` (PSM ATC, exact, CEM,
    subclassification), from their weights; empty without the cohort (the data)."""
    extra = getattr(effects, "matching_weights", None) or {}
    if cohort is None or not extra:
        return {}
    covariates = tuple(effects.covariates) + tuple(
        v for v in cohort.roles.balance_variables if v in cohort.data
        and v not in effects.covariates)
    prepared = Prepared(cohort.data, cohort.treated, dict(cohort.levels), dict(cohort.kinds))
    return _tables(prepared, {
        f"{method}_{head}": {"covariates": covariates, "weights": w,
                             "ps_covariates": tuple(effects.covariates),
                             "smd_denominator": focal_denominator(head, matching=True),
                             "estimand": head, "adjustment": method, "label": cohort.label,
                             "threshold": THRESHOLD}
        for (method, head), (w, _strata) in extra.items()})


def balance_summary(effects, cohort=None, labels=None,
                    threshold: float = THRESHOLD) -> pd.DataFrame:
    """Balance of every covariate under every method, long format (cobalt ``bal.tab``).

    Parameters
    ----------
    effects : EffectsReport
        Its ``balance`` tables (``{"psm": ..., "iptw_ATE": ...}``) give the rows.
    cohort : Cohort, optional
        When given, the further matching rows of ``effects.matching_weights`` (PSM ATC,
        exact, CEM, subclassification) are added from their weights, and the readable
        names default to ``cohort.labels``.
    labels : Labels or dict, optional
        Readable names of columns (default: the cohort's, else the column names).
    threshold : float
        |SMD| above it is ``imbalanced`` (0.1).

    Returns
    -------
    pandas.DataFrame
        One row per (covariate row, method), methods in a stable order with
        ``"Unadjusted"`` first, then ``effects.balance`` in its order ("PSM (ATT)",
        "IPTW (ATE)", "IPTW (ATT)", "IPTW (ATC)", "IPTW (ATO)"), then the further matching
        rows. Columns ``SUMMARY_COLUMNS``: ``variable`` (column), ``label``, ``level``
        (None for a binary or continuous variable, which is one row; the level of a
        categorical with more than two levels), ``kind`` ("binary", "continuous",
        "categorical"), ``in_model`` (a PS covariate), ``method``, ``estimand``, ``smd``
        (signed, treated - control), ``smd_denominator`` ("treated SD", "control SD",
        "pooled SD", all of the unadjusted sample), ``variance_ratio`` and ``ks`` (NaN for
        binary rows and category levels), ``n_missing``, ``imbalanced`` (|smd| >
        threshold), ``smd_unadjusted`` (the SMD before adjustment on this method's
        denominator: what a love plot with one denominator draws as "before"),
        ``mean_treated`` / ``mean_control`` (weighted means or proportions).

    Notes
    -----
    "Unadjusted" uses the pooled SD sqrt((s1^2 + s0^2) / 2) (cobalt's default) and is taken
    from a pooled-denominator table when there is one (IPTW ATE), so its SMDs are those of
    ``balance.csv`` exactly. A two-level category becomes one row, its second (non-
    reference) level, named in ``label`` ("Sex: female"): the first level's SMD is its
    negative. Built with whole-column operations, one pass per method.
    """
    tables = dict(effects.balance)
    tables.update(_more_tables(effects, cohort))
    if labels is None and cohort is not None:
        labels = cohort.labels
    if not tables:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    pooled = next((t for t in tables.values() if t.smd_denominator == "pooled"), None)
    if pooled is None:
        first = next(iter(tables.values()))
        rows = first.rows.copy()
        sd = np.sqrt((rows["sd_treated_before"] ** 2 + rows["sd_control_before"] ** 2) / 2)
        rows["smd_before"] = (rows["mean_treated_before"] - rows["mean_control_before"]) / sd
        pooled = BalanceTable(first.label, "unadjusted", None, "pooled", first.threshold, rows,
                              first.n_before, {}, {}, False)
    frames = [_long(_one_row_per_binary(pooled.rows), "before", "Unadjusted", None, "pooled",
                    threshold, labels)]
    for key, table in tables.items():
        if not table.adjusted:
            continue
        frames.append(_long(_one_row_per_binary(table.rows), "after",
                            method_display(key, table.estimand), table.estimand,
                            table.smd_denominator, threshold, labels))
    return pd.concat(frames, ignore_index=True)[SUMMARY_COLUMNS]


#: Columns of :func:`weight_summary`.
WEIGHT_COLUMNS = ["method", "estimand", "n_treated", "n_control", "ess_treated",
                  "ess_control", "sum_weights_treated", "sum_weights_control",
                  "min_weight_treated", "max_weight_treated", "min_weight_control",
                  "max_weight_control"]


def _weight_row(method, estimand, w, treated) -> dict:
    row = {"method": method, "estimand": estimand}
    for arm, sel in (("treated", treated == 1), ("control", treated == 0)):
        wa = w[sel & (w > 0)]
        row[f"n_{arm}"] = int(wa.size)
        row[f"ess_{arm}"] = effective_sample_size(wa)
        row[f"sum_weights_{arm}"] = float(wa.sum())
        row[f"min_weight_{arm}"] = float(wa.min()) if wa.size else np.nan
        row[f"max_weight_{arm}"] = float(wa.max()) if wa.size else np.nan
    return row


def weight_summary(effects) -> pd.DataFrame:
    """Patients used, effective sample size and weights per arm, one row per adjustment.

    Returns
    -------
    pandas.DataFrame
        ``WEIGHT_COLUMNS``: ``method`` (display name, as :func:`balance_summary`),
        ``estimand``; per arm ``n_*`` (patients with weight > 0), ``ess_*`` (Kish,
        (sum w)^2 / sum w^2), ``sum_weights_*`` (a sum of weights, not a head count),
        ``min_weight_*`` / ``max_weight_*`` (over patients with weight > 0). Rows: the
        matched sample, each IPTW estimand, then the further matching rows.
    """
    treated = np.asarray(effects.propensity.treated).astype(int)
    m = effects.matched
    rows = [_weight_row(method_display("psm", m.estimand), m.estimand,
                        np.asarray(m.weights, float), treated)]
    rows += [_weight_row(method_display("iptw", k), k, np.asarray(w.weights, float), treated)
             for k, w in effects.weights.items()]
    rows += [_weight_row(method_display(method, head), head, np.asarray(w, float), treated)
             for (method, head), (w, _s) in (getattr(effects, "matching_weights", None)
                                              or {}).items()]
    return pd.DataFrame(rows, columns=WEIGHT_COLUMNS)
