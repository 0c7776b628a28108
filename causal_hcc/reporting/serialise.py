"""Files from result objects: JSON, CSV, Markdown, figures, and the whole report.

With ``data/io.py`` and ``cli.py``, the only code that writes to disk. Every CSV starts
with a ``data_provenance`` column and every JSON carries the cohort's provenance line
(for the bundled cohort: RECONSTRUCTED PSEUDO-DATA). Figure formats are ``png``, ``svg``,
``pdf`` (comma-separated) or ``none``; SVG and PDF files are reproducible byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from causal_hcc._numeric import to_jsonable
from causal_hcc.reporting import html, narrative
from causal_hcc.effects.ph import ph_checks, ph_frame
from causal_hcc.reporting.content import NO_STUDY
from causal_hcc.reporting.document import build_document
from causal_hcc.reporting.figures import (adjust_figures, crude_figures, ph_figures,
                                          sensitivity_figures)
from causal_hcc.reporting.style import parse_formats
from causal_hcc.reporting.tables import frame_to_markdown

#: Tables of sensitivity.json also written as CSV (when they are lists of records).
SENSITIVITY_TABLES = ("evalues", "specification_grid", "landmark", "time_varying",
                      "subgroups", "benchmarks")


def write_json(obj, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(obj), indent=2) + "\n", encoding="utf-8")
    return path


def write_csv(frame: pd.DataFrame, path: str | Path, *,
              parquet_above_bytes: int | None = None) -> Path:
    """``frame`` as CSV, or as ``.parquet`` when the CSV would exceed about 100 MB; returns
    the path written (:func:`causal_hcc.reporting.tabular.write_csv`)."""
    from causal_hcc.reporting.tabular import write_csv as write_table
    return write_table(frame, path, parquet_above_bytes=parquet_above_bytes)


def write_markdown(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def with_provenance(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Every CSV says where its numbers come from (first column)."""
    if "data_provenance" in frame.columns or not frame.columns.is_unique:
        return frame.assign(data_provenance=label)[["data_provenance", *frame.columns]]
    # a shallow copy with the column put first: no copy of a registry-sized table's cells
    out = frame.copy(deep=False)
    out.insert(0, "data_provenance", label)
    return out


def write_exclusions(cohort, out_dir: str | Path) -> Path:
    """``exclusions.csv``: row, patient_id and reason of every row left out of the
    analysis. Always written, with the header only when no row was excluded, so the
    directory shows that none was."""
    return write_csv(with_provenance(cohort.exclusions_frame(), cohort.label),
                     Path(out_dir) / "exclusions.csv")


def _save_all(figs: dict, out_dir: Path, formats, workers: int | None = None
              ) -> tuple[list[Path], list]:
    """Build and save ``{stem: (builder, caption)}`` in the ``formats`` asked for (none:
    nothing is built), in worker processes where it pays; returns the paths and
    [(stem, caption)]. See :func:`causal_hcc.reporting.render.render_figures`."""
    from causal_hcc.reporting.render import render_figures
    return render_figures(figs, out_dir, formats, workers=workers)


def write_claims_table(check, out_dir: str | Path) -> list[Path]:
    """``paper_vs_reproduced.csv`` and ``.md`` from a ClaimCheck."""
    out_dir = Path(out_dir)
    table = check.to_frame()
    table["reproduced"] = table["reproduced"].map(
        lambda v: "; ".join(f"{x:.4g}" for x in v) if isinstance(v, list) else v)
    csv = write_csv(with_provenance(table, check.label), out_dir / "paper_vs_reproduced.csv")
    md = write_markdown(f"# Published vs reproduced\n\n**{check.label}**\n\n"
                        f"{narrative.claims_sentence(check)}\n\n"
                        + frame_to_markdown(narrative.claims_table(check)),
                        out_dir / "paper_vs_reproduced.md")
    return [csv, md]


def write_crude(crude, check, cohort, out_dir: str | Path, *, formats="png",
                warnings_seen=(), ci_bands: bool = False, study=None) -> list[Path]:
    """crude.json, km_summary.csv, the Cox table, km_curves.csv, the KM figures, and with a
    claims ``check`` (may be None) the published-vs-reproduced tables.

    ``study`` (a StudyExtras) renames figures after its paper, adds its own figures and
    names the Cox table file (e.g. ``cox_table3.csv``).
    """
    return _crude_files(crude, check, cohort, out_dir, formats=formats,
                        warnings_seen=warnings_seen, ci_bands=ci_bands, study=study)[0]


def _crude_files(crude, check, cohort, out_dir, *, formats, warnings_seen, ci_bands=False,
                 study=None) -> tuple[list[Path], list]:
    study = study or NO_STUDY
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = crude.to_dict()
    payload["warnings"] = list(dict.fromkeys(warnings_seen))
    if check is not None:
        payload["paper_vs_reproduced"] = check.to_frame().to_dict(orient="records")
    label = crude.label
    written = [write_json(payload, out_dir / "crude.json"),
               write_csv(with_provenance(crude.to_frame(), label), out_dir / "km_summary.csv"),
               write_csv(with_provenance(crude.cox.to_frame(), label),
                         out_dir / f"{study.cox_table_stem}.csv")]
    curves = [km.to_frame().assign(comparison=g.description)
              for g in (crude.arms, *crude.subgroups) for km in (*g.curves, g.overall)]
    written.append(write_csv(with_provenance(pd.concat(curves, ignore_index=True), label),
                             out_dir / "km_curves.csv"))
    written.append(write_exclusions(cohort, out_dir))
    if check is not None:
        written += write_claims_table(check, out_dir)
    captions = []
    if parse_formats(formats):
        paths, captions = _save_all(crude_figures(crude, cohort, ci=ci_bands, study=study),
                                    out_dir, formats)
        written += paths
    return written, captions


def propensity_frame(result) -> pd.DataFrame:
    """``propensity.csv``: id, arm, PS, logit PS, every weight, matched-set id."""
    p = result.propensity
    m = result.matched.to_frame()
    treated = pd.Series(p.treated).astype(int)
    frame = pd.DataFrame({"patient_id": p.patient_id, "treated": treated,
                          "arm": treated.map({1: result.arm_labels[0], 0: result.arm_labels[1]}),
                          "ps": p.ps, "logit_ps": p.logit_ps,
                          "matched_set": m["subclass"], "weight_matching": m["weight"]})
    for estimand, w in result.weights.items():
        frame[f"weight_{estimand.lower()}{'_stabilised' if w.stabilized else ''}"] = w.weights
    return frame


def _effects_context(result, warnings_seen) -> dict:
    p, m = result.propensity, result.matched
    return {"label": result.label, "comparison": result.comparison,
            "arm_labels": list(result.arm_labels), "time_unit": result.time_unit,
            "n_excluded": result.n_excluded, "settings": result.settings,
            "covariates": result.covariates,
            "estimates": [e.to_dict() for e in result.estimates],
            "max_abs_smd": result.max_abs_smd(), "notes": list(result.notes),
            "primary": getattr(result, "primary", None),
            "primary_reason": getattr(result, "primary_reason", ""),
            "identification": [v.to_dict() for v in getattr(result, "identification", ())],
            "residual_imbalance": result.residual_imbalance().to_dict("records")
            if hasattr(result, "residual_imbalance") else [],
            "warnings": list(dict.fromkeys(warnings_seen)),
            "propensity": {"c_statistic": p.c_statistic,
                           "events_per_variable": p.events_per_variable,
                           "separation": p.separation, "coefficients": p.coefficients},
            "matching": {"n_matched_treated": m.n_matched_treated,
                         "n_matched_control": m.n_matched_control,
                         "unmatched_treated": list(m.unmatched_treated_ids),
                         "estimand": m.estimand, "caliper_sd": m.caliper_sd,
                         "caliper_logit": m.caliper, "sd_denominator": m.sd_denominator}}


def write_adjust(result, cohort, out_dir: str | Path, *, formats="png",
                 warnings_seen=(), study=None) -> list[Path]:
    """effects.json, effects_context.json, balance.csv, table_one.csv, propensity.csv,
    matched_pairs.csv, adjusted_curves.csv and the figures (love plot, overlap, weights,
    forest, curves)."""
    return _adjust_files(result, cohort, out_dir, formats=formats,
                         warnings_seen=warnings_seen, study=study)[0]


def _adjust_files(result, cohort, out_dir, *, formats, warnings_seen,
                  study=None) -> tuple[list[Path], list]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    label = result.label
    # effects.json is the list of estimate records the CLI documents; the context
    # (label, settings, balance) travels in effects_context.json beside it.
    written = [write_json([dict(e.to_dict(), data_provenance=label, comparison=result.comparison,
                                n_excluded=result.n_excluded)
                           for e in result.estimates], out_dir / "effects.json"),
               write_json(_effects_context(result, warnings_seen),
                          out_dir / "effects_context.json"),
               write_exclusions(cohort, out_dir)]
    balance = pd.concat([t.to_frame().assign(method=name, smd_denominator_used=
                                             t.denominator_description)
                         for name, t in result.balance.items()], ignore_index=True)
    table_one = pd.concat([t.table_one().assign(method=name)
                           for name, t in result.balance.items()], ignore_index=True)
    curves = result.curves_frame()
    for frame, name in ((balance, "balance"), (table_one, "table_one"),
                        (propensity_frame(result), "propensity"),
                        _matched_table(result.matched),
                        (curves, "adjusted_curves")):
        written.append(write_csv(with_provenance(frame, label), out_dir / f"{name}.csv"))
    captions = []
    if parse_formats(formats):
        paths, captions = _save_all(adjust_figures(result, cohort, study=study or NO_STUDY),
                                    out_dir, formats)
        written += paths
    return written, captions


#: Above this many pairs, the matched sets are written a row per patient
#: (``matched_sets``) instead of a row per pair: with order-free ties a tied set of k
#: focal patients and m partners makes k x m pairs (quadratic: registry cohorts with
#: discrete covariates have tied sets of thousands).
MAX_PAIR_ROWS = 2_000_000


def _matched_table(matched) -> tuple[pd.DataFrame, str]:
    """(frame, stem): ``matched_pairs`` a row per pair, or ``matched_sets`` a row per
    patient when the pairs would exceed :data:`MAX_PAIR_ROWS` (said in a warning)."""
    n_pairs = matched.n_pairs
    if n_pairs <= MAX_PAIR_ROWS:
        return matched.pairs_frame(), "matched_pairs"
    import warnings

    from causal_hcc.errors import CausalHccWarning
    warnings.warn(f"matched_sets.csv lists the matched sets a row per patient instead of "
                  f"matched_pairs.csv: the tied sets make {n_pairs:,} treated-control pairs "
                  f"(more than {MAX_PAIR_ROWS:,}).", CausalHccWarning, stacklevel=3)
    return matched.sets_frame(), "matched_sets"


def write_sensitivity(sensitivity, out_dir: str | Path, *, formats="png", cohort=None,
                      warnings_seen=()):
    """sensitivity.json, its CSV tables and figures; returns (paths, [(stem, caption)]).

    With the ``cohort``, ``sensitivity.json`` records ``n_excluded`` and
    ``exclusions.csv`` is written beside it; ``warnings_seen`` go into the JSON.
    """
    out_dir = Path(out_dir)
    payload = sensitivity.to_dict()
    if cohort is not None:
        payload["n_excluded"] = cohort.n_excluded
    payload["warnings"] = list(dict.fromkeys(warnings_seen))
    written = [write_json(payload, out_dir / "sensitivity.json")]
    if cohort is not None:
        written.append(write_exclusions(cohort, out_dir))
    label = payload.get("label", "")
    for key in SENSITIVITY_TABLES:
        rows = payload.get(key)
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            written.append(write_csv(with_provenance(pd.DataFrame(rows), label),
                                     out_dir / f"sensitivity_{key}.csv"))
    captions = []
    if parse_formats(formats):
        paths, captions = _save_all(sensitivity_figures(sensitivity), out_dir, formats)
        written += paths
    return written, captions


def _ph_files(cohort, effects, out_dir: Path, formats: str, checks=None):
    """``ph_tests.csv`` (cox.zph of every model) and the Schoenfeld-residual figure;
    returns (the PH checks, the paths written). ``checks``: ph_checks(cohort, effects),
    when already computed."""
    checks = ph_checks(cohort, effects) if checks is None else checks
    written = [write_csv(with_provenance(ph_frame(checks), effects.label),
                         out_dir / "ph_tests.csv")] if checks else []
    if checks:
        paths, _ = _save_all(ph_figures(checks, cohort.labels.time_axis, effects.label),
                             out_dir, formats)
        written += paths
    return checks, written


def write_report(cohort, crude, check, effects, out_dir: str | Path, *, sensitivity=None,
                 formats="png", warnings_seen=(), run_info: dict | None = None,
                 input_notes=(), study=None, ph=None) -> list[Path]:
    """The whole analysis: every table and figure, report.html, report.md, run.json.

    Besides the stages' files: ``ph_tests.csv`` (proportional-hazards tests of every model)
    and its figure ``ph_schoenfeld``.

    Parameters
    ----------
    check : ClaimCheck or None
        A claims comparison (a study's, or a claims file the user passed); without one the
        report has no published-vs-reproduced section.
    formats : str or sequence of str
        Figure files to write besides the PNGs the HTML embeds; ``"none"`` writes no
        figures at all (and the report shows none).
    study : StudyExtras, optional
        A study profile's additions (see :class:`causal_hcc.reporting.StudyExtras`).
    ph : tuple of PHCheck, optional
        ``causal_hcc.effects.ph.ph_checks(cohort, effects)``, when already computed.

    Notes
    -----
    ``report.html`` is one self-contained file (figures embedded as PNG data). ``run.json``
    records what ``run_info`` holds (package version, the data file's SHA-256, options,
    seeds, time taken), so the run can be repeated exactly.
    """
    out_dir = Path(out_dir)
    fmts = parse_formats(formats)
    if fmts:
        fmts = list(dict.fromkeys(["png", *fmts]))  # the HTML embeds the PNGs
    fmt = ",".join(fmts) or "none"
    written, crude_caps = _crude_files(crude, check, cohort, out_dir, formats=fmt,
                                       warnings_seen=warnings_seen, study=study)
    adjust_written, adjust_caps = _adjust_files(effects, cohort, out_dir, formats=fmt,
                                                warnings_seen=warnings_seen, study=study)
    written += adjust_written
    sens_caps = []
    if sensitivity is not None:
        sens_written, sens_caps = write_sensitivity(sensitivity, out_dir, formats=fmt,
                                                    cohort=cohort, warnings_seen=warnings_seen)
        written += sens_written
    ph, ph_written = _ph_files(cohort, effects, out_dir, fmt, ph)
    written += ph_written
    figures = {p.stem: p.read_bytes() for p in written if p.suffix == ".png"}
    sections = build_document(cohort, crude, check, effects, figures,
                              captions={"crude": crude_caps, "adjust": adjust_caps,
                                        "sensitivity": sens_caps},
                              sensitivity=sensitivity, input_notes=input_notes,
                              warnings_seen=warnings_seen, study=study, ph=ph)
    title = narrative.report_title(cohort)
    written.append(write_markdown(html.render_html(title, sections, figures,
                                                   narrative.SUBTITLE),
                                  out_dir / "report.html"))
    written.append(write_markdown(html.render_markdown(title, sections, figures,
                                                       narrative.SUBTITLE),
                                  out_dir / "report.md"))
    written.append(write_json(run_info or {}, out_dir / "run.json"))
    return list(dict.fromkeys(written))
