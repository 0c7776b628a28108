"""Report stage: tables (CSV/JSON/Markdown), figures (PNG/SVG/PDF) and one HTML report.

Modules: :mod:`.narrative` (all prose), :mod:`.serialise` (files; what the CLI calls),
:mod:`.html` (the document and its HTML/Markdown rendering), :mod:`.plots` and
:mod:`.sensitivity_plots` (figures), :mod:`.figures` (which figures each stage makes),
:mod:`.content` (sections, and :class:`StudyExtras`: what a study profile may add),
:mod:`.tables` (frames as text), :mod:`.style` (shared figure style, reproducible saving),
:mod:`.output` (output directories written atomically, one run at a time).
Dependencies point one way: serialise -> html, figures -> narrative, plots -> style.

Names are resolved lazily (PEP 562): ``import causal_hcc.reporting`` loads nothing, so a
run writing no figures (``--formats none``) need not load the figure modules (matplotlib).
"""

from causal_hcc._lazy import lazy_names

_LAZY = {
    "Block": "content", "Section": "content", "StudyExtras": "content",
    "build_document": "html", "render_html": "html", "render_markdown": "html",
    "checklist": "narrative", "estimates_table": "narrative", "plain_summary": "narrative",
    "MANIFEST": "output", "OutputDir": "output", "OutputError": "output",
    "propensity_frame": "serialise", "with_provenance": "serialise",
    "write_adjust": "serialise", "write_claims_table": "serialise",
    "write_crude": "serialise", "write_csv": "serialise", "write_exclusions": "serialise",
    "write_json": "serialise", "write_markdown": "serialise", "write_report": "serialise",
    "write_sensitivity": "serialise",
    "parse_formats": "style", "save_figure": "style",
    "frame_to_markdown": "tables", "frame_to_text": "tables",
}

__all__ = [
    "MANIFEST",
    "Block",
    "OutputDir",
    "OutputError",
    "Section",
    "StudyExtras",
    "build_document",
    "checklist",
    "estimates_table",
    "frame_to_markdown",
    "frame_to_text",
    "parse_formats",
    "plain_summary",
    "propensity_frame",
    "render_html",
    "render_markdown",
    "save_figure",
    "with_provenance",
    "write_adjust",
    "write_claims_table",
    "write_crude",
    "write_csv",
    "write_exclusions",
    "write_json",
    "write_markdown",
    "write_report",
    "write_sensitivity",
]


__getattr__, __dir__ = lazy_names('causal_hcc.reporting', _LAZY, globals())
