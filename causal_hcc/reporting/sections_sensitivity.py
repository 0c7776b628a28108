"""The sensitivity section as tables (no monospace text block): what it says about the
claim, E-values, the specification grid by estimand, benchmarks of unmeasured
confounding, time zero and immortal time (restriction, landmarks, time-varying
treatment), subgroups (too-small ones withheld) and the interaction tests.

Everything is read from ``SensitivityReport.to_dict()`` (the same records as
``sensitivity.json``).
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from causal_hcc.reporting import format as fmt
from causal_hcc.reporting.content import Block, Table
from causal_hcc.reporting.sections_answer import estimate_name
from causal_hcc.reporting.sections_gaps import is_small


def _table(rows: list[dict], text=()) -> Table | None:
    """Formatted rows as a Table; rows with ``_fold`` true go into a folded part."""
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    folded = tuple(bool(x) for x in frame.pop("_fold")) if "_fold" in frame else ()
    if folded:
        order = sorted(range(len(frame)), key=lambda i: folded[i])   # stable: shown first
        frame = frame.iloc[order].reset_index(drop=True)
        folded = tuple(folded[i] for i in order)
    classes = pd.DataFrame("num", index=frame.index, columns=frame.columns)
    for col in text:
        if col in classes:
            classes[col] = "text"
    return Table(frame, classes=classes, folded=folded,
                 fold_summary=f"{sum(folded)} more rows (other matching designs)")


def _name(r: dict) -> str:
    """An estimate's name as in the estimand table ('PSM (ATT, matched)', 'IPTW (ATE)')."""
    if r.get("method"):
        return estimate_name(SimpleNamespace(method=r["method"], estimand=r.get("estimand")))
    return str(r.get("model") or "")


def _hr(r: dict, p_key: str = "p_value") -> dict:
    if not r.get("estimable", True) or r.get("hr") is None:
        return {"HR (95% CI)": "not estimable" + (f": {r['reason']}" if r.get("reason")
                                                  else ""), "P": ""}
    return {"HR (95% CI)": fmt.hr_ci(r["hr"], r.get("ci_lower"), r.get("ci_upper")),
            "P": fmt.p_value(r.get(p_key, r.get("p")), prefix=False)}


#: E-values of these methods are on the first screen's rows; the others are folded.
MAIN_METHODS = ("crude", "multivariable", "psm", "psm_stratified", "iptw",
                "weighted_cox_adjusted")


def evalue_rows(d: dict) -> list[dict]:
    out = []
    for r in d.get("evalues") or []:
        if r.get("measure", "HR") != "HR":
            continue
        out.append({"Estimate": _name(r),
                    "HR (95% CI)": fmt.hr_ci(r.get("estimate"), r.get("ci_lower"),
                                             r.get("ci_upper")),
                    "E-value, point": fmt.ratio(r.get("evalue_point")),
                    "E-value, CI limit": fmt.ratio(r.get("evalue_ci")),
                    "E-value, bootstrap CI": fmt.ratio(r.get("evalue_ci_boot")),
                    "Outcome": r.get("outcome_conversion") or "",
                    "_fold": (r.get("method") not in MAIN_METHODS
                              or (r.get("method") == "psm" and r.get("estimand") == "ATC"))})
    return out


def grid_rows(d: dict) -> list[dict]:
    summary = d.get("specification_grid_summary") or {}
    out = []
    for r in summary.get("by_estimand") or []:
        reasons = "; ".join(f"{k} x {v}" for k, v in
                            (r.get("not_estimable_reasons") or {}).items())
        out.append({"Estimand": r.get("estimand"),
                    "Estimable": f"{r.get('n_estimable')} of {r.get('n_specifications')}",
                    "HR median (range)": (f"{fmt.ratio(r.get('hr_median'))} "
                                          f"({fmt.interval(r.get('hr_min'), r.get('hr_max'))})"
                                          if r.get("n_estimable") else ""),
                    "95% CI excludes 1": str(r.get("n_ci_excludes_1", "")),
                    "HR < 1": str(r.get("n_hr_below_1", "")),
                    "Not estimable, why": reasons})
    return out


def benchmark_rows(d: dict) -> list[dict]:
    out = []
    for which, b in (d.get("benchmarks") or {}).items():
        for r in (b or {}).get("table") or []:
            if not r.get("estimable", True):
                continue
            out.append({"Adjusted estimate": which,
                        "Confounder like": f"{r.get('confounder')} ({r.get('imbalance')})",
                        "HR of confounder": fmt.ratio(r.get("hr_u")),
                        "Prevalence T / C": f"{fmt.percent(r.get('p1'))} / "
                                            f"{fmt.percent(r.get('p0'))}",
                        "Corrected HR (95% CI)": fmt.hr_ci(r.get("hr_corrected"),
                                                           r.get("ci_lower_corrected"),
                                                           r.get("ci_upper_corrected")),
                        "CI includes 1": "yes" if r.get("ci_includes_1") else "no"})
    return out


def time_zero_rows(d: dict) -> list[dict]:
    out = []
    for restricted in (d.get("time_zero") or {}).get("restricted") or []:
        for r in restricted.get("estimates") or []:
            out.append({"Analysis": f"restricted to {restricted.get('variable')} = "
                                    f"{restricted.get('level')}",
                        "Model": r.get("description") or r.get("method"),
                        **_hr(r), "Patients": str(restricted.get("n", "")),
                        "Events": str(r.get("events", ""))})
    for key, label in (("landmark", "landmark"), ("time_varying", "time-varying treatment")):
        for r in d.get(key) or []:
            at = r.get("landmark_months")
            out.append({"Analysis": label + (f" at {fmt.time_point(at)}"
                                             if at is not None else ""),
                        "Model": str(r.get("model")), **_hr(r, "p"),
                        "Patients": str(r.get("n", "")), "Events": str(r.get("events", ""))})
    return out


def subgroup_rows(d: dict) -> tuple[list[dict], list[dict]]:
    analyses = d.get("subgroup_analyses") or ([d["subgroups"]] if d.get("subgroups") else [])
    rows, inter = [], []
    for sg in analyses:
        settings = sg.get("settings") or {}
        args = (settings.get("min_events", 10), settings.get("min_arm", 5))
        for r in sg.get("estimates") or []:
            small = is_small(r, *args)
            rows.append({"Subgroup": r.get("subgroup"), "Method": _name(r),
                         **({"HR (95% CI)": "too small to inform (HR withheld)", "P": ""}
                            if small else _hr(r)),
                         "Events": str(r.get("events", "")),
                         "Patients T / C": f"{r.get('n_treated', '')} / "
                                           f"{r.get('n_control', '')}",
                         "ESS T / C": (f"{r['ess_treated']:.1f} / {r['ess_control']:.1f}"
                                       if r.get("ess_treated") is not None
                                       and r.get("ess_control") is not None
                                       else "unweighted")})
        for r in sg.get("interactions") or []:
            inter.append({"Variable": sg.get("variable"), "Model": r.get("model"),
                          "Ratio of HRs (95% CI)": fmt.hr_ci(r.get("ratio_of_hrs"),
                                                             r.get("ci_lower"),
                                                             r.get("ci_upper")),
                          "Interaction P": fmt.p_value(r.get("p_value"), prefix=False)})
    return rows, inter


def sensitivity_blocks(sensitivity, figure_blocks) -> tuple:
    """Blocks of the sensitivity section: the claim in sentences, then the tables, with
    the sensitivity figures placed after the table they illustrate."""
    d = sensitivity.to_dict()
    figs = {b.name: b for b in figure_blocks}
    blocks = []
    sentences = getattr(sensitivity, "plain_sentences", None)
    if callable(sentences):
        # Subgroup HRs are in the table below, where too-small ones are withheld; the
        # sentence would print them as if informative.
        blocks.append(Block("text", [fmt.tidy_text(s) for s in sentences()
                                     if not str(s).startswith("Subgroups by")]))
    summary = d.get("specification_grid_summary") or {}
    parts = [
        ("E-values (VanderWeele & Ding 2017): how strong an unmeasured confounder would "
         "have to be to explain each HR away", evalue_rows(d), ("Estimate", "Outcome"), ()),
        ("Specification grid by estimand. " + fmt.tidy_text(summary.get("denominator", "")),
         grid_rows(d), ("Estimand", "Not estimable, why"), ("specification_curve",)),
        ("Unmeasured confounding benchmarked on observed covariates: the HR corrected for a "
         "binary confounder as strong and as imbalanced as each one",
         benchmark_rows(d), ("Adjusted estimate", "Confounder like"), ("tipping_point",)),
        ("Time zero and immortal time: restriction, landmarks, treatment as time-varying",
         time_zero_rows(d), ("Analysis", "Model"), ()),
    ]
    sub, inter = subgroup_rows(d)
    parts += [("Subgroups (estimates with fewer than 10 events or 5 patients in an arm are "
               "withheld: too small to inform)", sub, ("Subgroup", "Method"), ()),
              ("Interaction tests: whether the effect differs between subgroups", inter,
               ("Variable", "Model"), ("subgroups",))]
    placed = set()
    for caption, rows, text, stems in parts:
        table = _table(rows, text)
        if table is not None:
            blocks.append(Block("table", table, caption))
        for stem in stems:
            if stem in figs:
                blocks.append(figs[stem])
                placed.add(stem)
    blocks += [b for name, b in figs.items() if name not in placed]
    return tuple(blocks)
