"""The report's first screen: a one-sentence verdict and the estimand table.

The verdict says how much of the crude benefit survives adjustment (the share of the crude
log HR kept by the primary estimate), how fragile it is (E-value, the specification grid)
and what cannot be estimated. The estimand table has one row per method: HR (95% CI),
bootstrap CI, patients and effective sample size per arm, the worst |SMD| over every
covariate, the identification verdict and the share of the crude log HR that survives;
the primary row is marked with its reason. Nothing here names a study.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from causal_hcc.balance import balance_summary, method_display, weight_summary
from causal_hcc.reporting import format as fmt
from causal_hcc.reporting.content import Table

#: Methods on the first screen; other matching designs (exact, CEM, subclassification)
#: are folded under them.
FIRST_SCREEN = ("crude", "multivariable", "psm", "psm_stratified", "iptw",
                "weighted_cox_adjusted")
_NAMES = {"crude": "Crude Cox", "multivariable": "Multivariable Cox",
          "psm_stratified": "PSM, stratified on matched set",
          "weighted_cox_adjusted": "IPTW (ATE) + covariates"}


def estimate_name(e) -> str:
    """'IPTW (ATE)', 'PSM (ATT)', 'Crude Cox'... of an EffectEstimate; a matched
    estimand restricted to the matched focal patients says so ('PSM (ATT, matched)')."""
    if e.method in _NAMES:
        name = _NAMES[e.method]
    else:
        name = method_display(e.method, e.estimand)
    if "among matched" in (e.estimand or "") and e.method != "psm_stratified":
        name = name[:-1] + ", matched)"
    elif "in strata holding both arms" in (e.estimand or ""):
        name = name[:-1] + ", common strata)"
    return name


def share_surviving(e, crude) -> float:
    """log HR of ``e`` over the crude log HR (1 = all of the crude effect survives, 0 =
    none, negative = reversed); NaN when either is missing or the crude HR is 1."""
    if crude is None or not (e.estimable and crude.estimable) or crude.hr == 1:
        return float("nan")
    return math.log(e.hr) / math.log(crude.hr)


def _verdict_word(e) -> str:
    return {True: "identified", False: "NOT identified",
            None: "conditional HR"}[e.identified]


def worst_smd(balance: pd.DataFrame) -> dict:
    """Largest |SMD| over every covariate row, by balance method display name."""
    return balance.assign(a=balance["smd"].abs()).groupby("method", sort=False)["a"].max() \
        .to_dict()


def _balance_key(e) -> str | None:
    if e.method == "crude":
        return "Unadjusted"
    if e.method in ("psm", "psm_stratified", "iptw", "exact", "cem", "subclass"):
        return method_display(e.method, e.estimand)
    return None


def _weights_key(e) -> str | None:
    if e.method == "psm_stratified":
        return method_display("psm", e.estimand)
    if e.method == "weighted_cox_adjusted":
        return "IPTW (ATE)"
    return _balance_key(e) if e.method != "crude" else None


def estimand_rows(effects, balance: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """One row per estimate, numbers unformatted (what the table shows)."""
    crude = next((e for e in effects.estimates if e.method == "crude"), None)
    primary = tuple(effects.primary) if effects.primary is not None else None
    worst = worst_smd(balance)
    wt = weights.set_index("method")
    rows = []
    for e in effects.estimates:
        wkey = _weights_key(e)
        used = wt.loc[wkey] if wkey in wt.index else None
        rows.append({
            "estimate": e, "name": estimate_name(e), "estimand": e.estimand or "",
            "primary": primary is not None and (e.method, e.estimand) == primary,
            "first_screen": e.method in FIRST_SCREEN,
            "ess_treated": e.ess_treated if e.ess_treated is not None
            else (None if used is None else used["ess_treated"]),
            "ess_control": e.ess_control if e.ess_control is not None
            else (None if used is None else used["ess_control"]),
            "weighted": e.ess_treated is not None,
            "worst_smd": worst.get(_balance_key(e) or "", float("nan")),
            "share": share_surviving(e, crude) if e.method != "crude" else 1.0})
    return pd.DataFrame(rows)


def _ess(row) -> str:
    if not row["weighted"]:
        return "unweighted"
    return f"{row['ess_treated']:.1f} / {row['ess_control']:.1f}"


def _cells(row) -> dict:
    e = row["estimate"]
    name = row["name"] + (" \u2605 primary" if row["primary"] else "")
    if not e.estimable:
        return {"Method": name,
                "HR (95% CI)": "not estimable", "Bootstrap 95% CI": "", "P": "",
                "Patients T / C": f"{e.n_treated} / {e.n_control}", "ESS T / C": "",
                "Worst |SMD|": "", "Identification": e.reason, "Crude log HR kept": ""}
    boot = (fmt.interval(e.boot_ci_lower, e.boot_ci_upper)
            if e.boot_ci_lower is not None else "")
    return {"Method": name, "HR (95% CI)": fmt.hr_ci(e.hr, e.ci_lower, e.ci_upper),
            "Bootstrap 95% CI": boot, "P": fmt.p_value(e.p_value, prefix=False),
            "Patients T / C": f"{e.n_treated} / {e.n_control}", "ESS T / C": _ess(row),
            "Worst |SMD|": fmt.ratio(row["worst_smd"]),
            "Identification": _verdict_word(e),
            "Crude log HR kept": fmt.percent(row["share"])}


def estimand_table(rows: pd.DataFrame, first_screen: bool = True, threshold: float = 0.1
                   ) -> Table:
    """The estimand table (first-screen methods, or the other matching designs)."""
    sel = rows[rows["first_screen"] == first_screen]
    frame = pd.DataFrame([_cells(r) for _, r in sel.iterrows()])
    classes = pd.DataFrame("num", index=frame.index, columns=frame.columns)
    if len(frame):
        classes[["Method", "Identification"]] = ""
    if len(frame):
        bad = sel["worst_smd"].to_numpy(float) > threshold
        classes.loc[bad, "Worst |SMD|"] = "num imb"
        notid = [r["estimate"].identified is False for _, r in sel.iterrows()]
        classes.loc[notid, "Identification"] = "warn"
    row_classes = tuple("primary" if p else "" for p in sel["primary"])
    return Table(frame, classes=classes, row_classes=row_classes)


def _fragility(effects, sensitivity, primary) -> str:
    parts = []
    if sensitivity is None:
        return ""
    d = sensitivity.to_dict()
    ev = next((r for r in d.get("evalues") or [] if primary is not None
               and r.get("method") == primary.method
               and (r.get("estimand") or None) == primary.estimand
               and r.get("evalue_point") is not None), None)
    if ev is not None:
        parts.append(f"E-value {fmt.ratio(ev['evalue_point'])} for the point estimate and "
                     f"{fmt.ratio(ev['evalue_ci'])} for the CI")
    counts = (d.get("specification_grid_summary") or {}).get("counts") or {}
    if counts.get("n_estimable"):
        parts.append(f"the 95% CI excludes 1 in {counts['n_ci_excludes_1']} of "
                     f"{counts['n_estimable']} estimable specifications "
                     f"({fmt.percent(counts['n_ci_excludes_1'] / counts['n_estimable'])})")
    return "; ".join(parts)


def verdict(effects, cannot: list[str], sensitivity=None) -> str:
    """One sentence: the share of the crude log HR the primary estimate keeps, its
    fragility and what cannot be estimated."""
    crude = next((e for e in effects.estimates if e.method == "crude"), None)
    primary = effects.primary_estimate()
    if crude is None or not crude.estimable:
        head = "The crude hazard ratio cannot be estimated"
    else:
        head = f"Crude HR {_hr_words(crude)}"
    if primary is None or not primary.estimable:
        body = ("; no adjusted estimand is identified, so no adjusted number can stand as "
                "the answer")
    else:
        share = share_surviving(primary, crude)
        kept = ("" if np.isnan(share) else
                f"keeps {fmt.percent(share)} of the crude log HR" if share >= 0 else
                "reverses the direction of the crude HR")
        body = (f"; the primary analysis, {estimate_name(primary)}, "
                f"{_verdict_word(primary)}, {kept}: HR {_hr_words(primary)}")
    fragile = _fragility(effects, sensitivity, primary)
    tail = f"; fragility: {fragile}" if fragile else ""
    gaps = (f"; cannot be estimated: {'; '.join(cannot)}" if cannot
            else "; every planned estimate could be computed")
    return head + body + tail + gaps + "."


def _hr_words(e) -> str:
    """'0.36 (95% CI 0.17–0.73, excludes 1)'."""
    side = "excludes 1" if e.ci_upper < 1 or e.ci_lower > 1 else "includes 1"
    return f"{fmt.ratio(e.hr)} (95% CI {fmt.interval(e.ci_lower, e.ci_upper)}, {side})"


def first_screen_frames(effects, cohort):
    """(balance summary, weight summary, estimand rows) shared by the report's sections."""
    balance = balance_summary(effects, cohort)
    weights = weight_summary(effects)
    return balance, weights, estimand_rows(effects, balance, weights)
