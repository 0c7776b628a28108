"""The "What cannot be estimated" section: everything the data cannot answer, in one place.

- estimands not identified (part of the target population has no counterpart) and
  estimates that could not be computed, with the reason;
- specifications of the grid that are not estimable, counted by reason;
- subgroups too small to say anything (their HRs are withheld, as the JSON flags them);
- covariate levels present in one arm only;
- the patients left unmatched;
- sensitivity analyses that could not run.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from causal_hcc.reporting import format as fmt
from causal_hcc.reporting.content import Block, Table
from causal_hcc.reporting.sections_answer import estimate_name

#: Subgroup rules of :mod:`causal_hcc.sensitivity.subgroups` when its settings lack them.
MIN_EVENTS, MIN_ARM = 10, 5


def one_arm_levels(effects, labels=None) -> pd.DataFrame:
    """Levels of binary and categorical variables seen in one arm only (before adjustment):
    variable, level, n_treated, n_control."""
    table = next(iter(effects.balance.values()), None)
    if table is None:
        return pd.DataFrame(columns=["variable", "level", "n_treated", "n_control"])
    rows = table.rows
    n1, n0 = table.n_before["treated"], table.n_before["control"]
    out = []
    for r in rows.itertuples():
        if r.kind == "continuous":
            continue
        t, c = round(r.n_treated_before), round(r.n_control_before)
        levels = [(r.level, t, c)] if r.kind != "binary" else [("1", t, c),
                                                                 ("0", n1 - t, n0 - c)]
        out += [{"variable": r.variable, "level": lv, "n_treated": a, "n_control": b}
                for lv, a, b in levels if (a == 0) != (b == 0)]
    return pd.DataFrame(out, columns=["variable", "level", "n_treated", "n_control"])


def small_subgroup_rows(sensitivity) -> list[dict]:
    """Subgroup estimates too small to say anything (fewer than ``min_events`` events or
    ``min_arm`` patients in an arm, the rule of the subgroup analysis)."""
    if sensitivity is None:
        return []
    d = sensitivity.to_dict()
    analyses = d.get("subgroup_analyses") or ([d["subgroups"]] if d.get("subgroups") else [])
    out = []
    for sg in analyses:
        settings = sg.get("settings") or {}
        min_events = settings.get("min_events", MIN_EVENTS)
        min_arm = settings.get("min_arm", MIN_ARM)
        for e in sg.get("estimates") or []:
            if is_small(e, min_events, min_arm):
                out.append(e)
    return out


def is_small(e: dict, min_events: int = MIN_EVENTS, min_arm: int = MIN_ARM) -> bool:
    """A subgroup estimate the analysis calls uninformative (or not estimable)."""
    if not e.get("estimable", True):
        return True
    return (e.get("events", 0) < min_events
            or min(e.get("n_treated", 0), e.get("n_control", 0)) < min_arm)


def _unmatched(effects, labels) -> list[tuple[str, int, str]]:
    out = []
    m = effects.matched
    ids = tuple(getattr(m, "unmatched_focal_ids", ()) or m.unmatched_treated_ids)
    if ids:
        shown = ", ".join(map(str, ids[:12])) + (f" and {len(ids) - 12} more"
                                                  if len(ids) > 12 else "")
        out.append((f"PSM ({m.estimand.split(' ')[0]}): focal patients left unmatched",
                    len(ids), f"no partner within the caliper: {shown}; the matched "
                              f"estimate refers to {m.estimand}"))
    treated = effects.propensity.treated.astype(bool)
    for (method, head), (w, _s) in (getattr(effects, "matching_weights", None) or {}).items():
        focal = ~treated if head == "ATC" else treated if head == "ATT" else None
        if focal is None:
            continue
        n = int(((w == 0) & focal).sum())
        if n:
            arm = labels.control if head == "ATC" else labels.treated
            out.append((f"{method.upper() if method != 'subclass' else 'Subclass'} "
                        f"({head}): focal patients left out", n,
                        f"{arm} patients with no counterpart in their matched set or "
                        "stratum"))
    return out


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def gaps(cohort, effects, sensitivity=None) -> tuple[pd.DataFrame, list[str], list[dict]]:
    """(table rows: what, count, reason), short phrases for the verdict, small subgroups."""
    rows, phrases = [], []
    lab = cohort.labels
    unid = [e for e in effects.estimates if e.identified is False and e.estimable]
    for e in unid:
        rows.append((f"{estimate_name(e)}: estimand not identified", "",
                     e.identification_note))
    if unid:
        phrases.append(", ".join(estimate_name(e) for e in unid) + " not identified")
    for e in effects.estimates:
        if not e.estimable:
            rows.append((f"{estimate_name(e)}: not estimable", "", e.reason))
    d = sensitivity.to_dict() if sensitivity is not None else {}
    summary = d.get("specification_grid_summary") or {}
    counts = summary.get("counts") or {}
    n_specs, n_ok = counts.get("n_specifications", 0), counts.get("n_estimable", 0)
    if n_specs and n_specs > n_ok:
        reasons: dict = {}
        for by in summary.get("by_estimand") or []:
            for reason, k in (by.get("not_estimable_reasons") or {}).items():
                reasons[reason] = reasons.get(reason, 0) + k
        for reason, k in sorted(reasons.items(), key=lambda kv: -kv[1]):
            rows.append(("Specification grid: specifications not estimable", k, reason))
        phrases.append(f"{n_specs - n_ok} of {n_specs} specifications ("
                       + "; ".join(reasons) + ")")
    small = small_subgroup_rows(sensitivity)
    for e in small:
        name = estimate_name(SimpleNamespace(method=e.get("method"),
                                             estimand=e.get("estimand")))
        rows.append((f"Subgroup {e.get('subgroup')}, {name}: too small, HR not shown", "",
                     f"{e.get('events', 0)} events, {e.get('n_treated', 0)} "
                     f"{lab.treated} / {e.get('n_control', 0)} {lab.control}"
                     + (f"; {e['reason']}" if e.get("reason") else "")))
    if small:
        phrases.append(f"{_n(len(small), 'subgroup estimate')} too small to inform")
    levels = one_arm_levels(effects)
    for r in levels.itertuples():
        rows.append((f"{lab.variable(r.variable)} = {r.level}: in one arm only", "",
                     f"{r.n_treated} {lab.treated}, {r.n_control} {lab.control}"))
    if len(levels):
        phrases.append(f"{_n(len(levels), 'covariate level')} seen in one arm only")
    for what, n, why in _unmatched(effects, lab):
        rows.append((what, n, why))
    for stage, reason in (d.get("unavailable") or {}).items():
        rows.append((f"Sensitivity analysis '{stage}' not run", "", reason))
    frame = pd.DataFrame(rows, columns=["What", "Count", "Reason or detail"])
    return frame, phrases, small


def gaps_blocks(frame: pd.DataFrame) -> tuple:
    if frame.empty:
        return (Block("text", "Every planned estimate, specification and subgroup could be "
                              "computed; every covariate level occurs in both arms."),)
    cells = frame.assign(Count=frame["Count"].map(fmt.cell),
                         **{"Reason or detail": frame["Reason or detail"].map(fmt.tidy_text)})
    classes = pd.DataFrame("", index=cells.index, columns=cells.columns)
    classes["What"] = "text"
    classes["Reason or detail"] = "text"
    classes["Count"] = "num"
    return (Block("text", "Numbers the data cannot give, collected from the analyses (the "
                          "JSON and CSV files hold the same, per row)."),
            Block("table", Table(cells, classes=classes)))
