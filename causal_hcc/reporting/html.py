"""The reviewer's report as one document: sections of text, tables and figures.

:func:`build_document` turns the results of every stage into a list of
:class:`~causal_hcc.reporting.content.Section`; :func:`render_html` makes one self-contained
HTML file (figures embedded as PNG data, no network needed, print-friendly) and
:func:`render_markdown` the same in Markdown with figures referenced as files. Sections
that belong to a publication (published vs reproduced, a study's own sections) appear only
when their inputs are given: a claims check, a :class:`StudyExtras`.
"""

from __future__ import annotations

import base64
import html

import numpy as np

from causal_hcc.version import __version__
from causal_hcc.reporting import narrative
from causal_hcc.reporting.content import NO_STUDY, Block, Section
from causal_hcc.reporting.tables import format_value, frame_to_markdown

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


# ----------------------------------------------------------------------------- render
def _html_table(frame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row)
                   + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(title: str, sections, figures: dict, subtitle: str = "") -> str:
    """One self-contained HTML page; ``figures`` maps figure names to PNG bytes (a figure
    block whose name is missing is left out)."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if subtitle:
        parts.append(f"<p><em>{html.escape(subtitle)}</em></p>")
    parts.append(f"<p>causal_hcc {__version__}</p>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [_html_block(block, figures) for block in section.blocks]
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _html_block(block: Block, figures: dict) -> str:
    if block.kind == "banner":
        return f"<div class='banner'>{html.escape(block.content)}</div>"
    if block.kind == "text":
        return "".join(f"<p>{html.escape(str(p))}</p>" for p in np.atleast_1d(block.content))
    if block.kind == "pre":
        return f"<pre>{html.escape(block.content)}</pre>"
    if block.kind == "table":
        cap = f"<p><em>{html.escape(block.caption)}</em></p>" if block.caption else ""
        return cap + _html_table(block.content)
    if block.name not in figures:
        return ""
    data = base64.b64encode(figures[block.name]).decode("ascii")
    return (f"<figure><img alt='{html.escape(block.caption)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{html.escape(block.caption)}"
            "</figcaption></figure>")


def render_markdown(title: str, sections, figures=None, subtitle: str = "") -> str:
    """The same document in Markdown; figures are referenced as ``<name>.png`` files (only
    those in ``figures`` when it is given)."""
    out = [f"# {title}", ""] + ([f"*{subtitle}*", ""] if subtitle else [])
    out += [f"causal_hcc {__version__}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            out += _markdown_block(block, figures)
    return "\n".join(out)


def _markdown_block(block: Block, figures) -> list[str]:
    if block.kind == "banner":
        return [f"> **{block.content}**", ""]
    if block.kind == "text":
        return [*(str(p) for p in np.atleast_1d(block.content)), ""]
    if block.kind == "pre":
        return ["```", block.content, "```", ""]
    if block.kind == "table":
        return [frame_to_markdown(block.content, f"*{block.caption}*"
                                  if block.caption else ""), ""]
    if figures is not None and block.name not in figures:
        return []
    return [f"![{block.caption}]({block.name}.png)", "", f"*{block.caption}*", ""]


# ----------------------------------------------------------------------------- build
def _figure_blocks(captions) -> list[Block]:
    return [Block("figure", None, caption, stem) for stem, caption in captions]


def build_document(cohort, crude, check, effects, figures=None, *, captions=None,
                   sensitivity=None, input_notes=(), warnings_seen=(), study=None) -> list:
    """Sections of the report, referring to figures by file stem.

    Parameters
    ----------
    cohort, crude, effects
        The Cohort, CrudeResults and EffectsReport.
    check : ClaimCheck or None
        A claims comparison; its section appears only when given.
    figures : dict, optional
        Unused here (kept for the renderers, which leave out missing figures).
    captions : dict, optional
        Stage ("crude", "adjust", "sensitivity") -> sequence of (stem, caption), in order.
    sensitivity : SensitivityReport, optional
    input_notes : sequence of str
        Warnings raised while reading the data.
    warnings_seen : sequence of str
        Warnings raised by the analyses, each tagged with its stage and estimand
        (e.g. ``"[adjust, IPTW ATT] Extreme propensity-score weights: ..."``).
    study : StudyExtras, optional
        A study profile's additions (provenance notes, Cox caption, further sections).
    """
    study = study or NO_STUDY
    captions = captions or {}
    lab = cohort.labels
    prov = [Block("banner", cohort.label)] if cohort.reconstructed else []
    prov.append(Block("text", narrative.provenance_paragraphs(cohort, study)))
    sections = [Section("Data provenance", tuple(prov)),
                Section("Plain-language summary", (Block("text", narrative.plain_summary(
                    cohort, crude, effects, sensitivity)),)),
                Section("What was checked in the input", (
                    Block("pre", cohort.summary()),
                    Block("text", list(input_notes)
                          or ["No warnings were raised while reading the data."]))),
                Section("Warnings raised by the analyses", (
                    Block("text", list(dict.fromkeys(warnings_seen))
                          or ["No warnings were raised by the analyses."]),))]
    if check is not None:
        sections.append(Section("Published vs reproduced", (
            Block("text", narrative.claims_sentence(check)),
            Block("table", narrative.claims_table(check)))))
    sections.append(Section("Crude survival analyses", (
        *_figure_blocks(captions.get("crude", ())),
        Block("table", narrative.cox_display(crude, study), narrative.cox_caption(crude, study)))))
    adjust_caps = dict(captions.get("adjust", ()))
    sections.append(Section("Propensity-score model and overlap", (
        Block("pre", effects.propensity.summary()),
        *_figure_blocks((s, adjust_caps[s]) for s in ("ps_overlap", "ps_overlap_matched",
                                                      "weights") if s in adjust_caps))))
    bal = _figure_blocks((s, adjust_caps[s]) for s in ("love_plot",) if s in adjust_caps)
    bal += [Block("table", t.table_one(), narrative.balance_caption(name, t))
            for name, t in effects.balance.items()]
    sections.append(Section("Balance", tuple(bal)))
    evalues = None
    if sensitivity is not None:
        evalues = {(r.get("method"), r.get("estimand") or ""): r
                   for r in sensitivity.to_dict().get("evalues", []) or []}
    sections.append(Section(f"Adjusted hazard ratios: {lab.comparison}", (
        *_figure_blocks((s, adjust_caps[s]) for s in ("forest_plot",) if s in adjust_caps),
        Block("table", narrative.estimates_table(effects, evalues)))))
    curve_blocks = _figure_blocks((s, c) for s, c in adjust_caps.items()
                                  if s.startswith("adjusted_km_"))
    curve_blocks += [Block("table", c.table, narrative.curves_caption(c, lab.time_unit))
                     for c in effects.curves]
    sections.append(Section("Adjusted survival curves", tuple(curve_blocks)))
    if sensitivity is not None:
        sections.append(Section("Sensitivity analyses", (
            Block("pre", sensitivity.summary()),
            *_figure_blocks(captions.get("sensitivity", ())))))
    sections += list(study.sections)
    sections.append(Section("Reporting checklist", (
        Block("table", narrative.checklist(cohort, crude, effects)),)))
    return sections
