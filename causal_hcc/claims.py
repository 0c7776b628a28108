"""Check a manuscript's published survival claims against data: the side-by-side table.

A claims file (JSON) lists what a paper reports: each claim names the quantity, the
subset and arm, the published value as printed and a tolerance (format in
:mod:`causal_hcc.studies.yang2025.paper_claims`). :func:`verify_claims` estimates every claim on a Cohort
with the package's own estimators (:mod:`causal_hcc.survival`, :mod:`causal_hcc.cox`) and
returns one row per claim: published, reproduced, difference, and a status:

- ``agrees``: within the claim's tolerance;
- ``differs``: outside it;
- ``paper inconsistent``: the printed value contradicts the paper itself (the claim's
  ``paper_issue`` says how); the reproduced value is shown, nothing is scored;
- ``not estimable``: the data cannot give the quantity (the reason is stated).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from causal_hcc._numeric import pearsonr, spearmanr
from causal_hcc.survival.cox import fit_cox
from causal_hcc.errors import CausalHccWarning, CohortError
from causal_hcc.survival.km import kaplan_meier, log_rank, median_follow_up

QUANTITIES = ("n", "deaths", "survival_pct", "median_months", "median_ci", "logrank_p",
              "median_follow_up", "follow_up_extreme", "cox_hr", "correlation")
STATUSES = ("agrees", "differs", "paper inconsistent", "not estimable")


@dataclass(frozen=True)
class ClaimCheck:
    """The side-by-side table of published vs reproduced values."""

    label: str
    manuscript: str
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def counts(self) -> dict:
        return {s: int((self.table["status"] == s).sum()) for s in STATUSES}

    def summary(self) -> str:
        c = self.counts
        lines = [self.label, f"Claims of {self.manuscript}: {len(self.table)} checked; "
                 f"{c['agrees']} agree, {c['differs']} differ beyond tolerance, "
                 f"{c['paper inconsistent']} contradict the paper itself, "
                 f"{c['not estimable']} not estimable."]
        for row in self.table.itertuples():
            if row.status != "agrees":
                lines.append(f"  [{row.status}] {row.description}: published {row.printed}, "
                             f"reproduced {row.reproduced_text}. {row.note}".rstrip())
        return "\n".join(lines)


def load_claims(path: str | Path) -> dict:
    """Read a claims file (JSON; a study profile ships its paper's, e.g.
    ``causal_hcc.studies.yang2025.claims_path()``)."""
    path = Path(path)
    if not path.exists():
        raise CohortError([f"Claims file {path}: not found."], header="Cannot read claims:")
    text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        claims = json.loads(text)
    except ValueError as exc:
        raise CohortError([f"Claims file {source}: not valid JSON ({exc})."],
                          header="Cannot read claims:") from exc
    _check_claims(claims, source)
    return claims


def _check_claims(claims: dict, source: str) -> None:
    problems = []
    if not isinstance(claims, dict) or not isinstance(claims.get("claims"), list):
        raise CohortError([f"{source}: expected an object with a 'claims' list."],
                          header="Invalid claims file:")
    for i, claim in enumerate(claims["claims"], start=1):
        cid = claim.get("id", f"#{i}")
        if claim.get("quantity") not in QUANTITIES:
            problems.append(f"claim {cid}: quantity {claim.get('quantity')!r}; use one of "
                            f"{list(QUANTITIES)}.")
        if claim.get("quantity") == "survival_pct" and not isinstance(
                claim.get("time"), (int, float)):
            problems.append(f"claim {cid}: survival_pct needs 'time' (months).")
        if claim.get("quantity") == "cox_hr":
            model = claim.get("model", "univariable")
            if model != "univariable" and model not in claims.get("models", {}):
                problems.append(f"claim {cid}: model {model!r} is not defined under 'models'.")
            if claim.get("term") not in claims.get("terms", {}):
                problems.append(f"claim {cid}: term {claim.get('term')!r} is not defined "
                                "under 'terms'.")
        tol = claim.get("tolerance")
        if not isinstance(tol, dict) or not ({"abs", "range", "log_ratio"} & set(tol)):
            problems.append(f"claim {cid}: tolerance must be {{'abs': x}}, "
                            "{'range': [lo, hi]} or {'log_ratio': x}.")
    if problems:
        raise CohortError(problems, header=f"Invalid claims file {source}:")


def term_column(data: pd.DataFrame, term: dict) -> np.ndarray:
    """The 0/1 indicator a Cox term defines (NaN where the row is neither level).

    ``{"column": c, "level": a, "reference": b}``: 1 where c == a, 0 where c == b;
    ``{"column": c, "above": x}``: 1 where c > x, 0 where c <= x.
    """
    col = data[term["column"]]
    if "above" in term:
        out = np.where(col > term["above"], 1.0, 0.0)
    else:
        out = np.where(col == term["level"], 1.0, np.where(col == term["reference"], 0.0,
                                                            np.nan))
    return np.where(col.isna().to_numpy(), np.nan, out)


def _subset(data: pd.DataFrame, claim: dict, r) -> pd.DataFrame:
    mask = np.ones(len(data), dtype=bool)
    for col, value in (claim.get("subset") or {}).items():
        if col not in data:
            raise _NotEstimable(f"column '{col}' (subset) is not in the data")
        mask &= (data[col] == value).to_numpy()
    if claim.get("arm") is not None:
        mask &= (data[r.treatment] == claim["arm"]).to_numpy()
    out = data.loc[mask]
    if out.empty:
        raise _NotEstimable("no patients in this subset")
    return out


class _NotEstimable(Exception):
    pass


def _num(x: float, digits: int = 1) -> str:
    """A number for the table; NA where a CI limit does not exist (curve never below 0.5)."""
    return f"{x:.{digits}f}" if np.isfinite(x) else "NA"


def _km(sub: pd.DataFrame, r, **kw):
    return kaplan_meier(sub[r.time], sub[r.event], **kw)


def _estimate(claim: dict, data: pd.DataFrame, claims: dict, r):
    """(reproduced value, text, note) for one claim."""
    q = claim["quantity"]
    sub = _subset(data, claim, r)
    if q == "n":
        return len(sub), str(len(sub)), ""
    if q == "deaths":
        d = int(sub[r.event].sum())
        return d, f"{d} ({100 * d / len(sub):.1f}%)", ""
    if q == "survival_pct":
        lm = _km(sub, r, landmarks=(claim["time"],)).landmarks[0]
        if not lm.estimable:
            raise _NotEstimable(lm.reason)
        ci = (f"95% CI {_num(100 * lm.lower)}-{_num(100 * lm.upper)}, log-log"
              if np.isfinite(lm.lower) else lm.reason or "no CI")
        return 100 * lm.surv, f"{100 * lm.surv:.1f}% ({ci}; {lm.n_risk} at risk)", ""
    if q in ("median_months", "median_ci"):
        m = _km(sub, r).median
        if not m.estimable:
            raise _NotEstimable(m.reason)
        if q == "median_months":
            return m.estimate, f"{m.estimate:.1f}", ""
        if not np.isfinite([m.lower_spss, m.upper_spss]).all():
            raise _NotEstimable("the SPSS-style median CI needs survival on both sides of "
                                "0.45-0.55")
        return ([m.lower_spss, m.upper_spss], f"{m.lower_spss:.1f}-{m.upper_spss:.1f} "
                f"(plain; Brookmeyer-Crowley {m.conf_type}"
                f" {_num(m.lower)}-{_num(m.upper)})", "")
    if q == "logrank_p":
        test = log_rank(sub[r.time], sub[r.event], sub[r.treatment])
        if not test.estimable:
            raise _NotEstimable(test.reason)
        return test.p, f"P={test.p:.4f} (chi-square {test.chisq:.2f}, df {test.df})", ""
    if q in ("median_follow_up", "follow_up_extreme"):
        fu = median_follow_up(sub[r.time], sub[r.event])
        if q == "follow_up_extreme":
            value = fu.observed_min if claim["which"] == "min" else fu.observed_max
            return value, f"{value:.1f}", ""
        rev = (f"; reverse KM {fu.reverse_km_median:.1f}" if fu.estimable else "")
        return fu.observed_median, f"{fu.observed_median:.1f} (median observed time{rev})", ""
    if q == "correlation":
        return _correlation(sub, claim)
    return _cox(claim, sub, claims, r)


def _correlation(sub, claim):
    for col in (claim["x"], claim["y"]):
        if col not in sub:
            raise _NotEstimable(f"column '{col}' is not in the data")
    pair = sub[[claim["x"], claim["y"]]].dropna()
    if len(pair) < 3:
        raise _NotEstimable(f"{len(pair)} complete pairs; a correlation needs 3")
    method = claim.get("method", "pearson")
    # scipy.stats' pearsonr / spearmanr, bit for bit, without its 1.2 s import.
    fn = spearmanr if method == "spearman" else pearsonr
    r, p = fn(pair.iloc[:, 0].to_numpy(float), pair.iloc[:, 1].to_numpy(float))
    if np.isnan(r):
        raise _NotEstimable(f"column '{claim['x']}' or '{claim['y']}' is constant in "
                            "this subset: no correlation")
    return float(r), f"r={r:.3f} ({method}, n={len(pair)}, P={p:.2g})", ""


def _cox(claim, sub, claims, r):
    terms = claims["terms"]
    model = claim.get("model", "univariable")
    keys = [claim["term"]] if model == "univariable" else list(claims["models"][model])
    for key in keys:
        if terms[key]["column"] not in sub:
            raise _NotEstimable(f"column '{terms[key]['column']}' is not in the data")
    x = np.column_stack([term_column(sub, terms[k]) for k in keys])
    ok = ~np.isnan(x).any(axis=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        fit = fit_cox(sub[r.time].to_numpy()[ok], sub[r.event].to_numpy()[ok], x[ok],
                      names=keys)
    j = keys.index(claim["term"])
    hr, lo, hi, p = fit.hr[j], fit.ci_lower[j], fit.ci_upper[j], fit.p[j]
    note = "; ".join(str(w.message).split("\n")[0] for w in caught)
    if (~ok).any():
        note = f"{int((~ok).sum())} rows without the term's levels left out. " + note
    return hr, f"{hr:.3f} ({lo:.3f}-{hi:.3f}), P={p:.3f}", note.strip()


def _judge(claim: dict, value) -> tuple[float | None, bool]:
    tol = claim["tolerance"]
    published = claim.get("published")
    if claim["quantity"] == "median_ci":
        diff = max(abs(a - b) for a, b in zip(value, published))
        return diff, diff <= tol["abs"]
    if "range" in tol:
        lo, hi = tol["range"]
        return value - published, lo <= value <= hi
    if "log_ratio" in tol:
        ratio = abs(math.log(value / published))
        inside = True
        if tol.get("inside_ci") and claim.get("published_ci"):
            lo, hi = claim["published_ci"]
            inside = lo <= value <= hi
        return value - published, ratio <= tol["log_ratio"] and inside
    diff = value - published
    return diff, abs(diff) <= tol["abs"] + 1e-9


def _tolerance_text(claim: dict) -> str:
    tol = claim["tolerance"]
    if "range" in tol:
        return f"within {tol['range'][0]:g}-{tol['range'][1]:g}"
    if "log_ratio" in tol:
        return (f"|log(HR ratio)| <= {tol['log_ratio']:g}"
                + (" and inside published CI" if tol.get("inside_ci") else ""))
    unit = {"survival_pct": " pts", "correlation": ""}.get(claim["quantity"], "")
    if claim["quantity"] in ("median_months", "median_ci", "median_follow_up",
                             "follow_up_extreme"):
        unit = " months"
    return "exact" if tol["abs"] == 0 else f"+/-{tol['abs']:g}{unit}"


def verify_claims(cohort, claims: dict) -> ClaimCheck:
    """Estimate every claim on ``cohort`` and compare with the published value.

    Parameters
    ----------
    cohort : Cohort
    claims : dict
        A loaded claims file (:func:`load_claims`). Arms (``arm`` 1/0) and the survival
        quantities refer to the cohort's treatment, time and event roles.

    Returns
    -------
    ClaimCheck
        One row per claim: id, source, description, printed, published, reproduced,
        reproduced_text, difference, tolerance, status, note.
    """
    data = cohort.data
    rows = []
    for claim in claims["claims"]:
        row = {"id": claim["id"], "source": claim.get("source", ""),
               "description": claim.get("description", claim["id"]),
               "printed": claim.get("printed", ""), "published": claim.get("published"),
               "reproduced": None, "reproduced_text": "", "difference": None,
               "tolerance": _tolerance_text(claim), "status": "", "note": ""}
        try:
            value, text, note = _estimate(claim, data, claims, cohort.roles)
        except _NotEstimable as exc:
            row.update(status="not estimable", note=str(exc), reproduced_text="not estimable")
            rows.append(row)
            continue
        row.update(reproduced=value, reproduced_text=text, note=note)
        if claim.get("paper_issue") or claim.get("published") is None:
            row.update(status="paper inconsistent",
                       note=(claim.get("paper_issue") or "no numeric published value") +
                       (f". {note}" if note else ""))
        else:
            diff, ok = _judge(claim, value)
            row.update(difference=diff, status="agrees" if ok else "differs")
        rows.append(row)
    table = pd.DataFrame(rows)
    return ClaimCheck(cohort.label, claims.get("manuscript", "the manuscript"), table)
