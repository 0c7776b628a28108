"""Report stage: tables (CSV/JSON/Markdown), figures (PNG/SVG/PDF) and one HTML report.

Modules: :mod:`.narrative` (all prose), :mod:`.serialise` (files; what the CLI calls),
:mod:`.html` (the document and its HTML/Markdown rendering), :mod:`.plots` and
:mod:`.sensitivity_plots` (figures), :mod:`.figures` (which figures each stage makes),
:mod:`.content` (sections, and :class:`StudyExtras`: what a study profile may add),
:mod:`.tables` (frames as text), :mod:`.style` (shared figure style, reproducible saving),
:mod:`.output` (output directories written atomically, one run at a time).
Dependencies point one way: serialise -> html, figures -> narrative, plots -> style.
"""

from causal_hcc.reporting.content import Block, Section, StudyExtras
from causal_hcc.reporting.html import build_document, render_html, render_markdown
from causal_hcc.reporting.narrative import checklist, estimates_table, plain_summary
from causal_hcc.reporting.output import MANIFEST, OutputDir, OutputError
from causal_hcc.reporting.serialise import (
                                         propensity_frame,
                                         with_provenance,
                                         write_adjust,
                                         write_claims_table,
                                         write_crude,
                                         write_csv,
                                         write_exclusions,
                                         write_json,
                                         write_markdown,
                                         write_report,
                                         write_sensitivity,
)
from causal_hcc.reporting.style import parse_formats, save_figure
from causal_hcc.reporting.tables import frame_to_markdown, frame_to_text

__all__ = ["MANIFEST", "OutputDir", "OutputError", "Block", "Section", "StudyExtras", "build_document", "checklist",
           "estimates_table", "frame_to_markdown", "frame_to_text", "parse_formats",
           "plain_summary", "propensity_frame", "render_html", "render_markdown",
           "save_figure", "with_provenance", "write_adjust", "write_claims_table",
           "write_crude", "write_csv", "write_exclusions", "write_json", "write_markdown", "write_report",
           "write_sensitivity"]
