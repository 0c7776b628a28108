"""The specification grid summarised per estimand, non-estimable specifications counted and
explained.

Different estimands answer different questions (the effect among all patients, the
treated, the untreated, the overlap population), so pooling their HRs into one range mixes
them. :func:`grid_by_estimand` gives, per estimand as the grid row states it, the number
of specifications, how many are estimable, the reasons of the others (counted), and the
HR median / range and CI counts of the estimable ones.
"""

from __future__ import annotations

import pandas as pd


def short_reason(reason: str) -> str:
    """The reason up to its first colon or full stop (how the grid's summary groups them)."""
    return str(reason).split(":")[0].split(".")[0].strip() or "no reason given"


def grid_by_estimand(rows: pd.DataFrame) -> list[dict]:
    """One record per estimand of a specification grid's rows.

    Keys: ``estimand``, ``families``, ``n_specifications``, ``n_estimable``,
    ``n_not_estimable``, ``not_estimable_reasons`` ({reason: count}), ``hr_min``,
    ``hr_median``, ``hr_max``, ``n_ci_excludes_1`` (of the estimable), ``n_hr_below_1``.
    """
    out = []
    estimands = rows["estimand"].fillna("none").astype(str)
    for estimand, part in rows.groupby(estimands, sort=True):
        ok = part[part["estimable"].astype(bool)]
        failed = part[~part["estimable"].astype(bool)]
        reasons = failed["reason"].map(short_reason).value_counts()
        excludes = (ok["ci_upper"] < 1) | (ok["ci_lower"] > 1)
        nan = float("nan")
        out.append({"estimand": estimand,
                    "families": sorted(set(part["family"].astype(str))),
                    "n_specifications": int(len(part)), "n_estimable": int(len(ok)),
                    "n_not_estimable": int(len(failed)),
                    "not_estimable_reasons": {str(k): int(v) for k, v in reasons.items()},
                    "hr_min": float(ok["hr"].min()) if len(ok) else nan,
                    "hr_median": float(ok["hr"].median()) if len(ok) else nan,
                    "hr_max": float(ok["hr"].max()) if len(ok) else nan,
                    "n_ci_excludes_1": int(excludes.sum()),
                    "n_hr_below_1": int((ok["hr"] < 1).sum())})
    return out


def grid_by_estimand_lines(rows: pd.DataFrame) -> list[str]:
    """The per-estimand summary as sentences (SensitivityReport.summary)."""
    lines = ["Specification grid by estimand:"]
    for rec in grid_by_estimand(rows):
        text = (f"  {rec['estimand']}: {rec['n_estimable']} of {rec['n_specifications']} "
                "estimable")
        if rec["n_estimable"]:
            text += (f"; HR median {rec['hr_median']:.2f} (range {rec['hr_min']:.2f}-"
                     f"{rec['hr_max']:.2f}); 95% CI excludes 1 in {rec['n_ci_excludes_1']}")
        if rec["n_not_estimable"]:
            text += "; not estimable: " + "; ".join(
                f"{n} x {reason}" for reason, n in rec["not_estimable_reasons"].items())
        lines.append(text + ".")
    return lines
