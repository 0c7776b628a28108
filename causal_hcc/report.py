"""Tables and files from result objects: text, Markdown, CSV and JSON.

With ``data/io.py`` and ``cli.py``, the only module that writes to disk. Every file
written from the bundled cohort carries the reconstructed-pseudo-data label.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from causal_hcc._numeric import to_jsonable


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def frame_to_text(frame: pd.DataFrame, max_width: int = 48) -> str:
    """Plain-text table for the terminal (cells clipped to ``max_width`` characters)."""
    cells = [[str(c) for c in frame.columns]]
    cells += [[_fmt(v)[:max_width] for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(frame.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def frame_to_markdown(frame: pd.DataFrame, caption: str = "") -> str:
    """GitHub-flavoured Markdown table, with an optional caption line above it."""
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v).replace("|", "/") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    text = "\n".join([head, rule, *rows])
    return f"{caption}\n\n{text}\n" if caption else text + "\n"


def write_json(obj, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(obj), indent=2) + "\n", encoding="utf-8")
    return path


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def write_markdown(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _with_provenance(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Every CSV says where its numbers come from (first column)."""
    return frame.assign(data_provenance=label)[["data_provenance", *frame.columns]]


def write_claims_table(check, out_dir: str | Path) -> list[Path]:
    """``paper_vs_reproduced.csv`` and ``.md`` from a ClaimCheck."""
    out_dir = Path(out_dir)
    table = check.to_frame()
    table["reproduced"] = table["reproduced"].map(
        lambda v: "; ".join(f"{x:.4g}" for x in v) if isinstance(v, list) else v)
    csv = write_csv(_with_provenance(table, check.label), out_dir / "paper_vs_reproduced.csv")
    shown = table[["description", "source", "printed", "reproduced_text", "tolerance",
                   "status", "note"]].rename(columns={"printed": "published",
                                                      "reproduced_text": "reproduced"})
    counts = ", ".join(f"{v} {k}" for k, v in check.counts.items())
    md = write_markdown(f"# Paper vs reproduced\n\n**{check.label}**\n\n"
                        f"Claims of {check.manuscript}: {counts}.\n\n"
                        + frame_to_markdown(shown), out_dir / "paper_vs_reproduced.md")
    return [csv, md]


def _save_figure(fig, stem: Path, formats) -> list[Path]:
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150)
        paths.append(path)
    return paths


def crude_figures(crude, cohort, *, ci: bool = False) -> dict:
    """The paper's Figures 2A, 2B, 3A, 3B and 5, redrawn from the crude results.

    ``ci`` shades the pointwise 95% CI bands of each curve.
    """
    from causal_hcc import plots
    figs = {
        "figure2a_km_overall": plots.plot_km([crude.arms.overall], provenance=crude.label,
                                             ci=ci, title="Figure 2A: overall survival, "
                                                          "whole cohort"),
        "figure2b_km_by_arm": plots.plot_km(crude.arms.curves, log_rank=crude.arms.log_rank,
                                            provenance=crude.label, ci=ci,
                                            title="Figure 2B: local therapy vs none"),
    }
    names = {1: ("figure3a_km_oligometastatic", "Figure 3A: oligometastatic patients"),
             0: ("figure3b_km_non_oligometastatic", "Figure 3B: non-oligometastatic patients")}
    for group in crude.subgroups:
        level = 1 if group.description.startswith("oligometastatic = 1") else 0
        stem, title = names[level]
        figs[stem] = plots.plot_km(group.curves, log_rank=group.log_rank, ci=ci,
                                   provenance=crude.label, title=title)
    data = cohort.data
    if {"ned_cumulative_months", "ned_achieved"} <= set(data):
        ned = data[(data["local_therapy"] == 1) & (data["ned_achieved"] == 1)]
        ned = ned.dropna(subset=["ned_cumulative_months"])
        if len(ned) >= 3:
            from scipy import stats
            r, p = stats.pearsonr(ned["ned_cumulative_months"], ned["os_months"])
            figs["figure5_ned_vs_os"] = plots.plot_scatter(
                ned["ned_cumulative_months"], ned["os_months"], r=float(r), p_value=float(p),
                xlabel="Cumulative NED duration (months)", ylabel="Overall survival (months)",
                title="Figure 5: cumulative NED vs OS, treated patients with NED",
                published="r = 0.851, P < 0.001 (n and method not stated)",
                provenance=crude.label)
    return figs


def write_crude(crude, check, cohort, out_dir: str | Path, *, formats="png,svg",
                warnings_seen=(), ci_bands: bool = False) -> list[Path]:
    """Write crude.json, the CSV tables, the side-by-side table and the figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = crude.to_dict()
    payload["warnings"] = list(dict.fromkeys(warnings_seen))
    payload["paper_vs_reproduced"] = check.to_frame().to_dict(orient="records")
    written = [write_json(payload, out_dir / "crude.json")]
    written.append(write_csv(_with_provenance(crude.to_frame(), crude.label),
                             out_dir / "km_summary.csv"))
    written.append(write_csv(_with_provenance(crude.cox.to_frame(), crude.label),
                             out_dir / "cox_table3.csv"))
    curves = [km.to_frame().assign(comparison=g.description)
              for g in (crude.arms, *crude.subgroups) for km in (*g.curves, g.overall)]
    written.append(write_csv(_with_provenance(pd.concat(curves, ignore_index=True),
                                              crude.label), out_dir / "km_curves.csv"))
    written += write_claims_table(check, out_dir)
    formats = [f.strip() for f in str(formats).split(",") if f.strip()]
    for stem, fig in crude_figures(crude, cohort, ci=ci_bands).items():
        written += _save_figure(fig, out_dir / stem, formats)
    return written


def propensity_frame(result) -> pd.DataFrame:
    """``propensity.csv``: id, arm, PS, logit PS, every weight, matched-set id."""
    p = result.propensity
    m = result.matched.to_frame()
    frame = pd.DataFrame({"patient_id": p.patient_id, "local_therapy": p.treated,
                          "ps": p.ps, "logit_ps": p.logit_ps,
                          "matched_set": m["subclass"], "weight_matching": m["weight"]})
    for estimand, w in result.weights.items():
        frame[f"weight_{estimand.lower()}{'_stabilised' if w.stabilized else ''}"] = w.weights
    return frame


def adjust_figures(result) -> dict:
    """Love plot, PS overlap (before, matched), weights, forest plot, adjusted KM curves."""
    from causal_hcc import plots
    label = result.label
    figs = {
        "love_plot": plots.plot_love(result.balance, provenance=label),
        "ps_overlap": plots.plot_overlap(result.propensity, provenance=label),
        "ps_overlap_matched": plots.plot_overlap(result.propensity, weights=result.matched,
                                                 provenance=label,
                                                 title="Propensity score overlap, matched"),
        "weights": plots.plot_weights(result.weights, provenance=label),
        "forest_plot": plots.plot_forest(result.estimates, provenance=label),
    }
    for c in result.curves:
        figs[f"adjusted_km_{c.method}_{c.estimand.lower()}"] = plots.plot_km(
            [c.treated, c.control], provenance=label,
            title=f"Adjusted Kaplan-Meier ({c.method}, {c.estimand})")
    return figs


def write_adjust(result, cohort, out_dir: str | Path, *, formats="png,svg",
                 warnings_seen=()) -> list[Path]:
    """effects.json, balance.csv, table_one.csv, propensity.csv, matched_pairs.csv,
    adjusted_curves.csv and the figures (love plot, overlap, weights, forest, curves)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    label = result.label
    payload = {"label": label, "settings": result.settings, "covariates": result.covariates,
               "estimates": [e.to_dict() for e in result.estimates],
               "max_abs_smd": result.max_abs_smd(), "notes": list(result.notes),
               "warnings": list(dict.fromkeys(warnings_seen)),
               "propensity": {"c_statistic": result.propensity.c_statistic,
                              "events_per_variable": result.propensity.events_per_variable,
                              "separation": result.propensity.separation,
                              "coefficients": result.propensity.coefficients},
               "matching": {"n_matched_treated": result.matched.n_matched_treated,
                            "n_matched_control": result.matched.n_matched_control,
                            "unmatched_treated": list(result.matched.unmatched_treated_ids),
                            "estimand": result.matched.estimand,
                            "caliper_sd": result.matched.caliper_sd,
                            "caliper_logit": result.matched.caliper,
                            "sd_denominator": result.matched.sd_denominator}}
    # effects.json is the list of estimate records the CLI documents; the context
    # (label, settings, balance) travels in effects_context.json beside it.
    written = [write_json([dict(e.to_dict(), data_provenance=label)
                           for e in result.estimates], out_dir / "effects.json"),
               write_json(payload, out_dir / "effects_context.json")]
    balance = pd.concat([t.to_frame().assign(method=name, smd_denominator_used=
                                             t.denominator_description)
                         for name, t in result.balance.items()], ignore_index=True)
    written.append(write_csv(_with_provenance(balance, label), out_dir / "balance.csv"))
    table_one = pd.concat([t.table_one().assign(method=name)
                           for name, t in result.balance.items()], ignore_index=True)
    written.append(write_csv(_with_provenance(table_one, label), out_dir / "table_one.csv"))
    written.append(write_csv(_with_provenance(propensity_frame(result), label),
                             out_dir / "propensity.csv"))
    written.append(write_csv(_with_provenance(result.matched.pairs_frame(), label),
                             out_dir / "matched_pairs.csv"))
    curves = pd.concat([c.table.assign(method=c.method, estimand=c.estimand)
                        for c in result.curves], ignore_index=True)
    written.append(write_csv(_with_provenance(curves, label), out_dir / "adjusted_curves.csv"))
    formats = [f.strip() for f in str(formats).split(",") if f.strip()]
    figs = adjust_figures(result)
    for stem, fig in figs.items():
        written += _save_figure(fig, out_dir / stem, formats)
    return written


def write_report(cohort, crude, check, effects, out_dir: str | Path, *, sensitivity=None,
                 formats=("png", "svg"), warnings_seen=(), run_info: dict | None = None,
                 input_notes=()) -> list[Path]:
    """The whole re-analysis: every table and figure, report.html, report.md, run.json.

    ``report.html`` is one self-contained file (figures embedded as PNG data). ``run.json``
    records the package version, the data file's SHA-256, the options, the seeds and the
    time taken, so the run can be repeated exactly.
    """
    from causal_hcc import document
    out_dir = Path(out_dir)
    formats = list(dict.fromkeys(["png", *formats]))  # the HTML embeds the PNGs
    fmt = ",".join(formats)
    written = write_crude(crude, check, cohort, out_dir, formats=fmt,
                          warnings_seen=warnings_seen)
    written += write_adjust(effects, cohort, out_dir, formats=fmt, warnings_seen=warnings_seen)
    sens_figures = ()
    if sensitivity is not None:
        sens_written, sens_figures = write_sensitivity(sensitivity, out_dir, formats=fmt)
        written += sens_written
    figures = {p.stem: p.read_bytes() for p in written if p.suffix == ".png"}
    sections = document.build_document(cohort, crude, check, effects, figures,
                                       sensitivity=sensitivity,
                                       sensitivity_figures=sens_figures,
                                       input_notes=input_notes)
    title = "Re-analysis of Yang et al. 2025: how much of the survival benefit survives adjustment"
    if cohort.reconstructed:
        title += " (RECONSTRUCTED PSEUDO-DATA)"
    written.append(write_markdown(document.render_html(title, sections, figures),
                                  out_dir / "report.html"))
    written.append(write_markdown(document.render_markdown(title, sections),
                                  out_dir / "report.md"))
    written.append(write_json(run_info or {}, out_dir / "run.json"))
    return written


def write_sensitivity(sensitivity, out_dir: str | Path, *, formats="png,svg"):
    """sensitivity.json, its CSV tables and figures; returns (paths, [(stem, caption)])."""
    from causal_hcc import plots
    out_dir = Path(out_dir)
    payload = sensitivity.to_dict()
    written = [write_json(payload, out_dir / "sensitivity.json")]
    label = payload.get("label", "")
    for key in ("evalues", "specification_grid", "landmark", "time_varying", "subgroups",
                "benchmarks"):
        rows = payload.get(key)
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            written.append(write_csv(_with_provenance(pd.DataFrame(rows), label),
                                     out_dir / f"sensitivity_{key}.csv"))
    formats = [f.strip() for f in str(formats).split(",") if f.strip()]
    captions = []
    for stem, (fig, caption) in sensitivity_figures(sensitivity, plots).items():
        written += _save_figure(fig, out_dir / stem, formats)
        captions.append((stem, caption))
    return written, captions


def sensitivity_figures(sensitivity, plots) -> dict:
    """Figures of the sensitivity analyses that the plotting module provides."""
    figs = {}
    grid = getattr(sensitivity, "grid", None)
    if grid is not None and hasattr(plots, "plot_specification_curve"):
        figs["specification_curve"] = (plots.plot_specification_curve(
            grid, provenance=sensitivity.label), "Specification curve: HR of local therapy "
            "across analytic choices (sorted), with the choices marked below")
    contour = getattr(sensitivity, "tipping_contour", None)
    if contour is not None and hasattr(plots, "plot_tipping_point"):
        figs["tipping_point"] = (plots.plot_tipping_point(
            contour, benchmarks=getattr(sensitivity, "benchmarks", None),
            provenance=sensitivity.label), "Unmeasured-confounder tipping points, with the "
            "observed confounders for comparison")
    return figs
