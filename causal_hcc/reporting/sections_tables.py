"""Tables a person reads: the cobalt-style balance table, the weights (ESS) table, the
Cox table rebuilt, the published-vs-reproduced table, the PH tests and the adjusted-curve
tables. Every cell is formatted by :mod:`causal_hcc.reporting.format`; the CSV files keep
full precision.
"""

from __future__ import annotations

import pandas as pd

from causal_hcc.reporting import format as fmt
from causal_hcc.reporting.content import Table

#: Balance methods shown as column groups (the others are in balance.csv).
BALANCE_METHODS = ("Unadjusted", "PSM (ATT)", "IPTW (ATE)", "IPTW (ATT)", "IPTW (ATC)",
                   "IPTW (ATO)")


def _classes(frame, text=(), num=None) -> pd.DataFrame:
    classes = pd.DataFrame("num" if num is None else "", index=frame.index,
                           columns=frame.columns)
    for col in text:
        classes[col] = "text"
    return classes


# ----------------------------------------------------------------------------- balance
def balance_table(summary: pd.DataFrame, threshold: float = 0.1) -> Table:
    """One row per covariate row, a column group (SMD, variance ratio) per method; |SMD|
    above the threshold highlighted; a tally row; missing values; the PS-model marker."""
    methods = [m for m in BALANCE_METHODS if m in set(summary["method"])]
    base = summary[summary["method"] == methods[0]].reset_index(drop=True)
    frame = pd.DataFrame({"Covariate": base["label"],
                          "PS model": base["in_model"].map({True: "\u2713", False: ""}),
                          "Missing": base["n_missing"].map(fmt.count)})
    classes = _classes(frame, text=("Covariate",))
    groups = [("", 3)]
    tally = {"Covariate": f"Balanced (|SMD| \u2264 {threshold:g})", "PS model": "",
             "Missing": ""}
    for m in methods:
        rows = summary[summary["method"] == m].reset_index(drop=True)
        smd_col, vr_col = f"{m} SMD", f"{m} VR"
        frame[smd_col] = rows["smd"].map(fmt.smd)
        frame[vr_col] = rows["variance_ratio"].map(fmt.ratio)
        classes[smd_col] = ["num imb" if x else "num" for x in rows["imbalanced"]]
        classes[vr_col] = "num"
        groups.append((f"{m}\n{rows['smd_denominator'].iloc[0]}", 2))
        ok = int((~rows["imbalanced"]).sum())
        tally[smd_col] = f"{ok} of {len(rows)}"
        tally[vr_col] = ""
    frame = pd.concat([frame, pd.DataFrame([tally])], ignore_index=True)
    classes = pd.concat([classes, pd.DataFrame([{c: "num" for c in frame.columns}])],
                        ignore_index=True)
    classes.loc[len(frame) - 1, "Covariate"] = "text"
    frame.columns = ["Covariate", "PS model", "Missing",
                     *[c.rsplit(" ", 1)[1] for c in frame.columns[3:]]]
    classes.columns = frame.columns
    row_classes = tuple([""] * (len(frame) - 1) + ["tally"])
    return Table(frame, classes=classes, row_classes=row_classes, header_groups=tuple(groups))


def ks_table(summary: pd.DataFrame) -> Table | None:
    """Kolmogorov-Smirnov statistic of each continuous covariate per method."""
    cont = summary[summary["kind"] == "continuous"]
    if cont.empty:
        return None
    methods = [m for m in BALANCE_METHODS if m in set(cont["method"])]
    wide = cont.pivot_table(index="label", columns="method", values="ks", sort=False)
    frame = pd.DataFrame({"Continuous covariate": wide.index})
    for m in methods:
        frame[m] = wide[m].map(fmt.ratio).to_numpy()
    return Table(frame, classes=_classes(frame, text=("Continuous covariate",)))


def weights_table(weights: pd.DataFrame, labels) -> Table:
    """Patients used, ESS, the sum of weights (labelled as such) and the extreme weights,
    per arm and adjustment."""
    t, c = labels.treated, labels.control
    frame = pd.DataFrame({
        "Adjustment": weights["method"],
        "Patients used T / C": [f"{a} / {b}" for a, b in zip(weights["n_treated"],
                                                            weights["n_control"])],
        "ESS T / C": [f"{a:.1f} / {b:.1f}" for a, b in zip(weights["ess_treated"],
                                                          weights["ess_control"])],
        "Sum of weights T / C": [f"{a:.1f} / {b:.1f}" for a, b in
                                 zip(weights["sum_weights_treated"],
                                     weights["sum_weights_control"])],
        f"Weights {t}, min\u2013max": [fmt.interval(a, b) for a, b in
                                       zip(weights["min_weight_treated"],
                                           weights["max_weight_treated"])],
        f"Weights {c}, min\u2013max": [fmt.interval(a, b) for a, b in
                                       zip(weights["min_weight_control"],
                                           weights["max_weight_control"])]})
    classes = _classes(frame, text=("Adjustment",))
    low = (weights[["ess_treated", "ess_control"]].to_numpy()
           < 0.5 * weights[["n_treated", "n_control"]].to_numpy()).any(axis=1)
    classes.loc[low, "ESS T / C"] = "num imb"
    return Table(frame, classes=classes)


# ----------------------------------------------------------------------------- Cox
def _variable_text(row) -> str:
    text = str(row.get("comparison") or row.get("variable"))
    return text.split(" (reference")[0]


def cox_table(crude, study) -> Table:
    """The crude Cox table as a journal prints it: one row per variable (level), the
    univariable and multivariable HR (95% CI) and P side by side; with a study's
    ``cox_columns``, the same reproduced HR in the paper's direction beside it."""
    frame = crude.cox.to_frame()
    frame["key"] = frame.apply(_variable_text, axis=1)
    out = []
    for key, rows in frame.groupby("key", sort=False):
        entry = {"Variable": key}
        for model, label in (("univariable", "Univariable"),
                             ("multivariable", "Multivariable")):
            r = rows[rows["model"] == model]
            if r.empty:
                entry[f"{label} HR (95% CI)"] = entry[f"{label} P"] = ""
                continue
            r = r.iloc[0]
            if not r["estimable"]:
                entry[f"{label} HR (95% CI)"] = f"not estimable ({r['reason']})"
                entry[f"{label} P"] = ""
                continue
            entry[f"{label} HR (95% CI)"] = fmt.hr_ci(r["hr"], r["ci_lower"], r["ci_upper"])
            entry[f"{label} P"] = fmt.p_value(r["p"], prefix=False)
        if "hr_paper" in study.cox_columns and "hr_paper" in rows:
            r = rows.iloc[0]
            entry["Paper's direction"] = str(r.get("paper_comparison", ""))
            entry["Reproduced HR in the paper's direction"] = fmt.hr_ci(
                r["hr_paper"], r["ci_lower_paper"], r["ci_upper_paper"])
        out.append(entry)
    table = pd.DataFrame(out)
    return Table(table, classes=_classes(table, text=("Variable", "Paper's direction")))


# ----------------------------------------------------------------------------- claims
STATUS_ORDER = ("differs", "paper inconsistent", "not estimable", "agrees")


def claims_table(check) -> Table:
    """Published vs reproduced: "differs" and "paper inconsistent" first, status coloured,
    the agreements folded."""
    frame = check.to_frame()
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    frame = frame.assign(_r=frame["status"].map(lambda s: rank.get(s, len(rank))))
    frame = frame.sort_values("_r", kind="stable").reset_index(drop=True)
    cells = pd.DataFrame({"Status": frame["status"], "What": frame["description"],
                          "Source": frame["source"], "Published": frame["printed"],
                          "Reproduced": frame["reproduced_text"].map(fmt.tidy_text),
                          "Tolerance": frame["tolerance"].map(fmt.tidy_text),
                          "Note": frame["note"].map(fmt.tidy_text)})
    classes = _classes(cells, text=("What", "Source", "Reproduced", "Tolerance", "Note"),
                       num="")
    classes["Published"] = "quote"          # verbatim, as printed: not restyled
    # CSS classes name the status without the word "paper" (a report on other data must
    # not contain it): differs, inconsistent, not-estimable, agrees
    row_classes = tuple("status-" + str(s).replace("paper ", "").replace(" ", "-")
                        for s in frame["status"])
    folded = tuple(bool(s == "agrees") for s in frame["status"])
    n_agree = sum(folded)
    return Table(cells, classes=classes, row_classes=row_classes, folded=folded,
                 fold_summary=f"{n_agree} published numbers agree within tolerance (show)")


# ----------------------------------------------------------------------------- PH
def ph_table(frame: pd.DataFrame) -> Table:
    cells = pd.DataFrame({
        "Model": frame["model"],
        "Treatment term: chi-square": frame["chisq"].map(fmt.format_number),
        "P": frame["p"].map(lambda p: fmt.p_value(p, prefix=False)),
        "Global: chi-square (df)": [f"{fmt.format_number(c)} ({d})" for c, d in
                                    zip(frame["global_chisq"], frame["global_df"])],
        "Global P": frame["global_p"].map(lambda p: fmt.p_value(p, prefix=False)),
        "Proportional hazards": frame["violated"].map({True: "rejected (P < 0.05)",
                                                       False: "not rejected"})})
    classes = _classes(cells, text=("Model", "Proportional hazards"))
    classes.loc[frame["violated"].to_numpy(bool), "Proportional hazards"] = "text warn"
    return Table(cells, classes=classes)


# ----------------------------------------------------------------------------- curves
def curves_table(curves, time_unit: str, labels) -> Table:
    """Landmark survival (%) and RMST per arm with the difference (treated - control) and
    its bootstrap percentile CI."""
    t = curves.table
    time_col = time_unit if time_unit in t.columns else t.columns[1]
    out = []
    for r in t.to_dict("records"):
        pct = r.get("quantity") == "survival"
        value = fmt.percent if pct else fmt.format_number
        lo, hi = r.get("boot_ci_lower"), r.get("boot_ci_upper")
        has_ci = lo is not None and lo == lo and hi == hi
        out.append({"Measure": "Survival" if pct else f"RMST ({time_unit})",
                    f"At ({time_unit})": fmt.time_point(r[time_col]),
                    labels.treated: value(r.get("treated")),
                    labels.control: value(r.get("control")),
                    "Difference": value(r.get("difference")),
                    "Bootstrap 95% CI": (f"{value(lo)} to {value(hi)}" if has_ci else "")})
    frame = pd.DataFrame(out)
    return Table(frame, classes=_classes(frame, text=("Measure",)))
