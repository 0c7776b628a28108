"""The reviewer's report rendered: one self-contained HTML file, and the same in Markdown.

:func:`render_html` makes one self-contained HTML page (figures embedded as PNG data, no
network needed): a linked table of contents, a readable type scale, tables whose numbers
never wrap (|SMD| above 0.1 and the primary estimate highlighted, agreements folded in
``<details>``), and print CSS (A4, no table or figure split across pages, figures two to a
row) so that a browser's PDF stays short. :func:`render_markdown` writes the same document
with figures referenced as files. The sections come from
:func:`causal_hcc.reporting.document.build_document`.
"""

from __future__ import annotations

import base64
import html
import re

import numpy as np
import pandas as pd

from causal_hcc.version import __version__
from causal_hcc.reporting.content import Block, Table
from causal_hcc.reporting.document import build_document  # noqa: F401  (public name)
from causal_hcc.reporting.format import cell
from causal_hcc.reporting.tables import frame_to_markdown

CSS = """
:root{--ink:#111;--muted:#555;--rule:#c8c8c8;--imb:#f9d7d3;--warn:#fde9c8;--good:#e1f1dc;
      --primary:#dde8fb}
html{font-size:16px}
body{font-family:Georgia,'Times New Roman',serif;line-height:1.45;max-width:70rem;
     margin:1.5rem auto;padding:0 1.2rem;color:var(--ink)}
h1{font-size:1.75rem;line-height:1.2;margin:.4rem 0} h2{font-size:1.35rem;
   border-bottom:1px solid #999;margin:2rem 0 .6rem} h3{font-size:1.1rem}
p{margin:.45rem 0} .muted{color:var(--muted);font-size:.85rem}
nav.toc{font-size:.85rem;border-top:1px solid var(--rule);border-bottom:1px solid var(--rule);
        padding:.3rem 0;margin:.6rem 0}
nav.toc ol{margin:0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:.2rem 1.1rem}
nav.toc a{color:#114;text-decoration:none} nav.toc a:hover{text-decoration:underline}
.banner{border:3px solid #000;padding:.35rem .7rem;font-size:.95rem;font-weight:bold;
        margin:.6rem 0;background:#f3f3f3}
.verdict{font-size:1.08rem;border-left:6px solid #222;background:#f5f5f5;
         padding:.6rem .9rem;margin:.6rem 0}
.tw{overflow-x:auto;margin:.5rem 0 .9rem}
table{border-collapse:collapse;font-size:.8rem;font-family:'Helvetica Neue',Arial,sans-serif;
      font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--rule);padding:.18rem .4rem;vertical-align:top;
      white-space:nowrap;text-align:left}
th{background:#eee;font-weight:600}
thead tr.groups th{text-align:center;white-space:normal;font-weight:normal}
td.num{text-align:right} td.text{white-space:normal;min-width:9rem;max-width:34rem}
td.quote{white-space:normal;font-style:italic}
td.imb{background:var(--imb);font-weight:bold} td.warn{background:var(--warn)}
tr.primary td{background:var(--primary);font-weight:600} tr.tally td{border-top:2px solid #666}
tr.status-differs td:first-child{background:var(--imb)}
tr.status-inconsistent td:first-child{background:var(--warn)}
tr.status-agrees td:first-child{background:var(--good)}
tr.status-not-estimable td:first-child{background:#e6e6e6}
caption,.caption{caption-side:top;text-align:left;font-size:.85rem;color:#333;
                 font-style:italic;padding:.2rem 0;white-space:normal}
details{margin:.3rem 0 .9rem} summary{cursor:pointer;font-size:.85rem;color:#114}
figure{margin:.8rem 0;break-inside:avoid} img{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#333}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(24rem,1fr));gap:.6rem 1rem}
.figs.one{grid-template-columns:1fr} .figs.one img{max-width:46rem}
pre{font-size:.75rem;white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;
    padding:.6rem}
@media print{
  @page{size:A4;margin:12mm 11mm}
  html{font-size:9pt} body{max-width:none;margin:0;padding:0;line-height:1.3}
  h2{break-after:avoid;margin-top:1.1rem} h1{font-size:1.5rem}
  table,figure,.verdict,tr{break-inside:avoid} .tw{overflow:visible}
  table{font-size:7pt;max-width:100%} td.text{max-width:none;min-width:5rem}
  th,td{padding:.1rem .3rem} p{margin:.25rem 0}
  nav.toc a{color:inherit} .banner,.verdict{background:none}
  .figs{grid-template-columns:1fr 1fr} .figs.one{grid-template-columns:1fr}
  .figs img{max-height:7.2cm;width:auto;margin:0 auto;display:block}
  .figs.one img{max-height:8.5cm} figure{margin:.3rem 0}
  details:not([open]) > :not(summary){display:none}
}
"""


_SLUG = re.compile(r"[^a-z0-9]+")


def anchor_of(section) -> str:
    """The id of a section in the HTML: its ``anchor``, else its title as a slug."""
    return section.anchor or _SLUG.sub("-", section.title.lower()).strip("-")


# ----------------------------------------------------------------------------- render
def _cells_row(values, classes=None, tag="td") -> str:
    out = []
    for i, v in enumerate(values):
        cls = "" if classes is None else str(classes[i] or "")
        attr = f" class='{html.escape(cls)}'" if cls else ""
        out.append(f"<{tag}{attr}>{html.escape(cell(v))}</{tag}>")
    return "".join(out)


def _table_html(table: Table, caption: str = "") -> str:
    frame = table.frame
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    groups = ""
    if table.header_groups:
        groups = "<tr class='groups'>" + "".join(
            f"<th colspan='{span}'>{html.escape(label).replace(chr(10), '<br>')}</th>"
            for label, span in table.header_groups) + "</tr>"
    head = f"<thead>{groups}<tr>" + "".join(f"<th>{html.escape(str(c))}</th>"
                                            for c in frame.columns) + "</tr></thead>"
    classes = None if table.classes is None else table.classes.to_numpy()
    folded = table.folded or (False,) * len(frame)
    main, rest = [], []
    for i, row in enumerate(frame.itertuples(index=False)):
        rc = table.row_classes[i] if i < len(table.row_classes) else ""
        tr = (f"<tr class='{html.escape(rc)}'>" if rc else "<tr>") + _cells_row(
            list(row), None if classes is None else classes[i]) + "</tr>"
        (rest if folded[i] else main).append(tr)
    out = f"<div class='tw'><table>{cap}{head}<tbody>{''.join(main)}</tbody></table></div>"
    if rest:
        out += (f"<details><summary>{html.escape(table.fold_summary or 'More rows')}"
                f"</summary><div class='tw'><table>{head}<tbody>{''.join(rest)}</tbody>"
                "</table></div></details>")
    return out


def _plain_table(frame) -> Table:
    return Table(frame, classes=pd.DataFrame(
        [["num" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
          else "text" if isinstance(v, str) and len(v) > 40 else "" for v in row]
         for row in frame.itertuples(index=False)], columns=frame.columns, index=frame.index))


def render_html(title: str, sections, figures: dict, subtitle: str = "") -> str:
    """One self-contained HTML page; ``figures`` maps figure names to PNG bytes (a figure
    block whose name is missing is left out). A linked table of contents follows the
    title; the first section is the answer."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<header><h1>{html.escape(title)}</h1>"]
    if subtitle:
        parts.append(f"<p><em>{html.escape(subtitle)}</em></p>")
    parts.append(f"<p class='muted'>causal_hcc {__version__}</p></header>")
    parts.append("<nav class='toc' aria-label='Contents'><ol>" + "".join(
        f"<li><a href='#{anchor_of(s)}'>{i}. {html.escape(s.title)}</a></li>"
        for i, s in enumerate(sections, 1)) + "</ol></nav>")
    for section in sections:
        parts.append(f"<section id='{anchor_of(section)}'><h2>{html.escape(section.title)}"
                     "</h2>")
        parts += _html_blocks(section.blocks, figures)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _html_blocks(blocks, figures) -> list[str]:
    """Blocks in order; consecutive figures share one grid (two to a row in print)."""
    out, run = [], []

    def flush():
        if run:
            cls = "figs one" if len(run) == 1 else "figs"
            out.append(f"<div class='{cls}'>" + "".join(run) + "</div>")
            run.clear()

    for block in blocks:
        if block.kind == "figure":
            if block.name in figures:
                run.append(_figure_html(block, figures))
            continue
        flush()
        out.append(_html_block(block))
    flush()
    return out


def _figure_html(block: Block, figures: dict) -> str:
    data = base64.b64encode(figures[block.name]).decode("ascii")
    return (f"<figure id='fig-{html.escape(block.name)}'><img alt='{html.escape(block.caption)}'"
            f" src='data:image/png;base64,{data}'><figcaption>{html.escape(block.caption)}"
            "</figcaption></figure>")


def _html_block(block: Block) -> str:
    if block.kind == "banner":
        return f"<div class='banner'>{html.escape(block.content)}</div>"
    if block.kind == "verdict":
        return f"<p class='verdict'>{html.escape(block.content)}</p>"
    if block.kind == "note":
        return f"<p class='muted'>{html.escape(block.content)}</p>"
    if block.kind == "text":
        return "".join(f"<p>{html.escape(str(p))}</p>" for p in np.atleast_1d(block.content))
    if block.kind == "pre":
        return f"<pre>{html.escape(block.content)}</pre>"
    if block.kind == "table":
        table = block.content if isinstance(block.content, Table) else _plain_table(
            block.content)
        return _table_html(table, block.caption)
    return ""


def render_markdown(title: str, sections, figures=None, subtitle: str = "") -> str:
    """The same document in Markdown; figures are referenced as ``<name>.png`` files (only
    those in ``figures`` when it is given)."""
    out = [f"# {title}", ""] + ([f"*{subtitle}*", ""] if subtitle else [])
    out += [f"causal_hcc {__version__}", ""]
    # GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens
    out += [f"{i}. [{s.title}](#{re.sub(r'[^a-z0-9 -]', '', s.title.lower()).replace(' ', '-')})"
            for i, s in enumerate(sections, 1)] + [""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            out += _markdown_block(block, figures)
    return "\n".join(out)


def _markdown_block(block: Block, figures) -> list[str]:
    if block.kind == "banner":
        return [f"> **{block.content}**", ""]
    if block.kind == "verdict":
        return [f"**{block.content}**", ""]
    if block.kind == "note":
        return [f"*{block.content}*", ""]
    if block.kind == "text":
        return [*(str(p) for p in np.atleast_1d(block.content)), ""]
    if block.kind == "pre":
        return ["```", block.content, "```", ""]
    if block.kind == "table":
        frame = block.content.frame if isinstance(block.content, Table) else block.content
        return [frame_to_markdown(frame, f"*{block.caption}*" if block.caption else ""), ""]
    if figures is not None and block.name not in figures:
        return []
    return [f"![{block.caption}]({block.name}.png)", "", f"*{block.caption}*", ""]
