"""The reviewer's report as one document: sections of text, tables and figures.

:func:`build_document` turns the results of every stage into a list of
:class:`Section` objects; :func:`render_html` makes one self-contained HTML file (figures
embedded as PNG data, no network needed, print-friendly) and :func:`render_markdown` the
same in Markdown with figures referenced as files. Every sentence of the plain-language
summary is generated from the numbers; it uses no adjective the numbers do not support.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc import __version__


@dataclass(frozen=True)
class Block:
    """One piece of a section: ``kind`` is "text", "table", "figure", "pre" or "banner"."""

    kind: str
    content: object
    caption: str = ""
    name: str = ""          # figure file stem


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple = field(default=())


def _fmt_hr(e) -> str:
    if not e.estimable:
        return f"not estimable ({e.reason})"
    return f"{e.hr:.2f} (95% CI {e.ci_lower:.2f}-{e.ci_upper:.2f}; P = {e.p_value:.3f})"


def _p(p: float) -> str:
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


def plain_summary(cohort, crude, effects, sensitivity=None) -> list[str]:
    """Sentences generated from the numbers: what survives adjustment, and how fragile."""
    est = {(e.method, e.estimand): e for e in effects.estimates}
    crude_hr = est[("crude", None)]
    lines = [f"Data: {cohort.label}. {cohort.n} patients ({cohort.n_treated} with local "
             f"therapy, {cohort.n_control} without), {cohort.events} deaths."]
    lines.append(f"Crude hazard ratio of death, local therapy vs none: {_fmt_hr(crude_hr)}; "
                 f"log-rank {_p(crude.arms.log_rank.p)}.")
    adjusted = [e for e in effects.estimates if e.method not in ("crude",) and e.estimable]
    excl = [e for e in adjusted if e.ci_upper < 1 or e.ci_lower > 1]
    below = [e for e in adjusted if e.hr < 1]
    lines.append(
        f"After adjustment for {', '.join(effects.covariates)}, {len(adjusted)} adjusted "
        f"estimates were computed; their hazard ratios range from "
        f"{min(e.hr for e in adjusted):.2f} to {max(e.hr for e in adjusted):.2f} "
        f"({len(below)} below 1), and the 95% CI excludes 1 in {len(excl)} of them.")
    m = effects.matched
    lines.append(f"Propensity-score matching (caliper {m.caliper_sd} SD of the logit PS) "
                 f"matched {m.n_matched_treated} of {m.n_treated} treated patients; the "
                 f"matched estimate refers to {m.estimand}. PSM HR "
                 f"{_fmt_hr(est[('psm', 'ATT')])}.")
    for estimand in ("ATE", "ATO"):
        e = est.get(("iptw", estimand))
        if e is not None:
            lines.append(f"IPTW ({estimand}) HR {_fmt_hr(e)}.")
    positivity = _positivity_sentence(effects)
    if positivity:
        lines.append(positivity)
    smd = effects.max_abs_smd()
    worst = max(smd.items(), key=lambda kv: kv[1]["ps_covariates"])
    lines.append(f"Largest |SMD| of a PS covariate after adjustment: {worst[1]['ps_covariates']:.2f} "
                 f"({worst[0]}); threshold 0.1.")
    if sensitivity is not None and hasattr(sensitivity, "plain_sentences"):
        lines += list(sensitivity.plain_sentences())
    return lines


def _positivity_sentence(effects) -> str:
    counts = getattr(effects.propensity, "pattern_counts", None)
    if counts is None or len(counts) == 0:
        return ""
    frame = pd.DataFrame(counts)
    cols = {c.lower(): c for c in frame.columns}
    t_col = next((cols[c] for c in cols if c in ("n_treated", "treated")), None)
    c_col = next((cols[c] for c in cols if c in ("n_control", "control")), None)
    if t_col is None or c_col is None:
        return ""
    only_t = int(frame.loc[frame[c_col] == 0, t_col].sum())
    only_c = int(frame.loc[frame[t_col] == 0, c_col].sum())
    if only_t == 0 and only_c == 0:
        return ""
    return (f"Positivity: {only_t} treated and {only_c} untreated patients have covariate "
            "patterns seen in one arm only; no weighting or matching can compare them, so "
            "ATE-type estimates extrapolate there.")


def checklist(effects, crude) -> pd.DataFrame:
    """Reporting checklist (estimand, time zero, PS model, caliper, balance, ESS, SE)."""
    m = effects.matched
    ess = {k: w.ess for k, w in effects.weights.items()}
    rows = [
        ("Time zero", "diagnosis of extrahepatic metastasis; local therapy starts later "
                      "(immortal time: see the sensitivity section)"),
        ("Outcome", "overall survival (months); death from any cause"),
        ("Comparison", "local therapy vs no local therapy (reference)"),
        ("Estimands", f"PSM: {m.estimand}; IPTW: ATE (stabilised), ATT, ATO (overlap)"),
        ("PS model", f"unpenalised logistic regression on {', '.join(effects.covariates)}; "
                     f"c-statistic {effects.propensity.c_statistic:.3f}; events per variable "
                     f"{effects.propensity.events_per_variable:.1f}"),
        ("Matching", f"greedy 1:{m.ratio} nearest neighbour on the logit PS, "
                     f"{'with' if m.replace else 'without'} replacement, order {m.order}, "
                     f"caliper {m.caliper_sd} SD (SD: {m.sd_denominator}, "
                     f"{m.sd_value:.3f}); matched {m.n_matched_treated}/{m.n_treated} treated"),
        ("Balance", "SMD with the unadjusted SD (treated SD for matching/ATT, pooled for "
                    "ATE/ATO); threshold 0.1"),
        ("Effective sample size", "; ".join(
            f"{k}: treated {v['treated']:.1f}, control {v['control']:.1f}"
            for k, v in ess.items())),
        ("Standard errors", "crude/multivariable: model; PSM: robust clustered on matched "
                            "set (stratified alternative: model); IPTW and doubly robust: "
                            "robust sandwich"),
        ("Bootstrap", f"{effects.settings['n_boot']} replicates, seed "
                      f"{effects.settings['seed']}, PS refitted each time, percentile CIs"),
        ("Cox ties", f"{crude.cox.ties}"),
        ("KM confidence intervals", f"{crude.conf_type} scale; median CI Brookmeyer-Crowley"),
    ]
    return pd.DataFrame(rows, columns=["item", "this analysis"])


def estimates_table(effects, evalues=None) -> pd.DataFrame:
    rows = []
    for e in effects.estimates:
        row = {"method": e.method, "estimand": e.estimand or "", "HR (95% CI)": _fmt_hr(e),
               "SE": e.variance, "bootstrap 95% CI": (
                   f"{e.boot_ci_lower:.2f}-{e.boot_ci_upper:.2f}"
                   if e.boot_ci_lower is not None else ""),
               "n treated / control": f"{e.n_treated} / {e.n_control}", "deaths": e.events}
        if evalues is not None:
            ev = evalues.get((e.method, e.estimand or ""))
            row["E-value (point / CI)"] = (f"{ev['evalue_point']:.2f} / {ev['evalue_ci']:.2f}"
                                           if ev else "")
        rows.append(row)
    return pd.DataFrame(rows)


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


# ----------------------------------------------------------------------------- render
CSS = """
body{font-family:Georgia,serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}
h1{font-size:1.7rem} h2{border-bottom:1px solid #999;margin-top:2.2rem}
table{border-collapse:collapse;font-size:.82rem;margin:.8rem 0;width:100%;
      overflow-wrap:anywhere}
th,td{border:1px solid #bbb;padding:.2rem .4rem;text-align:left;vertical-align:top}
th{background:#eee} figure{margin:1rem 0;page-break-inside:avoid}
img{max-width:100%} figcaption{font-size:.85rem;color:#333}
.banner{border:4px solid #000;padding:1rem;font-size:1.35rem;font-weight:bold;
        text-align:center;margin:1rem 0;background:#f3f3f3}
pre{font-size:.75rem;white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;
    padding:.6rem}
@media print{body{max-width:none} h2{page-break-before:auto} .banner{background:none}}
"""


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def render_html(title: str, sections, figures: dict) -> str:
    """One self-contained HTML page; ``figures`` maps block names to PNG bytes."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>causal_hcc {__version__}</p>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            parts.append(_html_block(block, figures))
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_block(block: Block, figures: dict) -> str:
    if block.kind == "banner":
        return f"<div class='banner'>{html.escape(block.content)}</div>"
    if block.kind == "text":
        return "".join(f"<p>{html.escape(p)}</p>" for p in np.atleast_1d(block.content))
    if block.kind == "pre":
        return f"<pre>{html.escape(block.content)}</pre>"
    if block.kind == "table":
        cap = f"<p><em>{html.escape(block.caption)}</em></p>" if block.caption else ""
        return cap + _html_table(block.content)
    data = base64.b64encode(figures[block.name]).decode("ascii")
    return (f"<figure><img alt='{html.escape(block.caption)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{html.escape(block.caption)}"
            "</figcaption></figure>")


def render_markdown(title: str, sections) -> str:
    from causal_hcc.report import frame_to_markdown
    out = [f"# {title}", "", f"causal_hcc {__version__}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if block.kind == "banner":
                out += [f"> **{block.content}**", ""]
            elif block.kind == "text":
                out += [*(str(p) for p in np.atleast_1d(block.content)), ""]
            elif block.kind == "pre":
                out += ["```", block.content, "```", ""]
            elif block.kind == "table":
                out += [frame_to_markdown(block.content, f"*{block.caption}*"
                                          if block.caption else ""), ""]
            else:
                out += [f"![{block.caption}]({block.name}.png)", "", f"*{block.caption}*", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- build
def build_document(cohort, crude, check, effects, figures: dict, *, sensitivity=None,
                   sensitivity_figures=(), input_notes=()) -> list[Section]:
    """Sections of the report, referring to figures by name (keys of ``figures``)."""
    sections = []
    prov = [Block("banner", cohort.label)] if cohort.reconstructed else []
    prov.append(Block("text", [
        f"Source: {cohort.source}" + (f" (SHA-256 {cohort.sha256})" if cohort.sha256 else ""),
        "The bundled data are a reconstruction from the paper's published aggregates; "
        "they reproduce its tables and survival curves but are not its patients. Numbers "
        "below are those of these pseudo-patients." if cohort.reconstructed else
        "Patient-level data supplied by the user."]))
    sections.append(Section("Data provenance", tuple(prov)))
    sections.append(Section("Plain-language summary",
                            (Block("text", plain_summary(cohort, crude, effects,
                                                         sensitivity)),)))
    sections.append(Section("What was checked in the input", (
        Block("pre", cohort.summary()),
        Block("text", list(input_notes) or ["No warnings were raised while reading the data."]),
    )))
    counts = check.counts
    sections.append(Section("Paper vs reproduced", (
        Block("text", f"{len(check.table)} published numbers checked: {counts['agrees']} "
                      f"agree within tolerance, {counts['differs']} differ, "
                      f"{counts['paper inconsistent']} contradict the paper itself, "
                      f"{counts['not estimable']} not estimable."),
        Block("table", check.to_frame()[["description", "source", "printed",
                                         "reproduced_text", "tolerance", "status", "note"]]
              .rename(columns={"printed": "published", "reproduced_text": "reproduced"})),
    )))
    km_blocks = [Block("figure", None, caption, name) for name, caption in (
        ("figure2a_km_overall", "Figure 2A: overall survival, whole cohort"),
        ("figure2b_km_by_arm", "Figure 2B: local therapy vs none"),
        ("figure3a_km_oligometastatic", "Figure 3A: oligometastatic patients"),
        ("figure3b_km_non_oligometastatic", "Figure 3B: non-oligometastatic patients"),
        ("figure5_ned_vs_os", "Figure 5: cumulative NED months vs OS")) if name in figures]
    km_blocks.append(Block("table", crude.cox.to_frame(),
                           "Cox models (Table 3), HR for level vs reference"))
    sections.append(Section("Crude survival analyses", tuple(km_blocks)))
    p = effects.propensity
    sections.append(Section("Propensity-score model and overlap", (
        Block("pre", p.summary()),
        Block("figure", None, "PS overlap before adjustment", "ps_overlap"),
        Block("figure", None, "PS overlap, matched sample", "ps_overlap_matched"),
        Block("figure", None, "Weight distribution per estimand", "weights"),
    )))
    bal_blocks = [Block("figure", None, "Love plot: |SMD| before and after each method",
                        "love_plot")]
    for name, table in effects.balance.items():
        bal_blocks.append(Block("table", table.table_one(), f"{name}: {table.adjustment}; SMD "
                                f"denominator: {table.denominator_description}"))
    sections.append(Section("Balance", tuple(bal_blocks)))
    evalues = None
    if sensitivity is not None:
        evalues = {(r["method"], r["estimand"] or ""): r
                   for r in sensitivity.to_dict().get("evalues", [])}
    sections.append(Section("Adjusted hazard ratios", (
        Block("figure", None, "HR of local therapy vs none by method (dashed: bootstrap CI)",
              "forest_plot"),
        Block("table", estimates_table(effects, evalues)),
    )))
    curve_blocks = [Block("figure", None, f"Adjusted Kaplan-Meier ({c.method}, {c.estimand})",
                          f"adjusted_km_{c.method}_{c.estimand.lower()}")
                    for c in effects.curves]
    for c in effects.curves:
        curve_blocks.append(Block("table", c.table, f"{c.method} ({c.estimand}): landmark "
                                  "survival and RMST (months) per arm, difference "
                                  "treated - control, bootstrap 95% CI"))
    sections.append(Section("Adjusted survival curves", tuple(curve_blocks)))
    if sensitivity is not None:
        blocks = [Block("pre", sensitivity.summary())]
        blocks += [Block("figure", None, caption, name) for name, caption in sensitivity_figures]
        sections.append(Section("Sensitivity analyses", tuple(blocks)))
    sections.append(Section("Reporting checklist", (Block("table", checklist(effects, crude)),)))
    return sections
