"""What a report is made of: sections of blocks, and what a study profile may add.

The engine knows no study. A study profile (``causal_hcc.studies.<name>``) describes
its additions in a :class:`StudyExtras` (the paper's figure names, its Cox table, the
reconstruction notes, further figures and sections such as an audit or what-ifs), and the
CLI passes it to :func:`causal_hcc.reporting.write_report` as ``study=``. Without one, a
report speaks only of the data it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Block:
    """One piece of a section: ``kind`` is "text", "table", "figure", "pre", "banner",
    "verdict" (the one-sentence answer) or "note" (small print under a table).

    ``content`` is a string or list of paragraphs (text), a DataFrame (table), a string
    (pre, banner); a figure block refers to its file stem in ``name``.
    """

    kind: str
    content: object
    caption: str = ""
    name: str = ""


@dataclass(frozen=True)
class Section:
    """A titled part of the report; ``anchor`` is its id in the HTML (default: from the
    title) and ``lead`` marks the first screen."""

    title: str
    blocks: tuple = field(default=())
    anchor: str = ""


@dataclass(frozen=True)
class Table:
    """A table as a reader sees it: every cell already formatted text.

    Attributes
    ----------
    frame : pandas.DataFrame
        The cells (strings); the header is the column names.
    classes : pandas.DataFrame, optional
        A CSS class per cell ("num", "text", "imb" for |SMD| above the threshold, "warn",
        "good"...); "" for none.
    row_classes : tuple of str
        A CSS class per row (e.g. "primary", "status-differs").
    header_groups : tuple of (label, span)
        A first header row spanning columns (e.g. one group per method).
    folded : tuple of bool
        Rows shown in a folded ``<details>`` continuation (e.g. agreements); their
        ``fold_summary`` is the line that unfolds them.
    """

    frame: object
    classes: object = None
    row_classes: tuple = ()
    header_groups: tuple = ()
    folded: tuple = ()
    fold_summary: str = ""


@dataclass(frozen=True)
class StudyExtras:
    """A study profile's additions to the report (all optional).

    Attributes
    ----------
    name : str
        The study, as cited (author, year).
    figure_names : mapping
        Generic figure stem -> (file stem, caption), e.g. ``"km_by_arm"`` ->
        ``("figure2b_km_by_arm", "Figure 2B: ...")`` to use the paper's numbering.
    figures : mapping
        Further figures of the crude analysis: file stem -> (matplotlib Figure, caption),
        computed by the profile (the report computes nothing).
    cox_table_stem : str
        File stem of the crude Cox table (default ``cox_table``).
    cox_caption : str
        Caption of the crude Cox table (default: generic).
    cox_columns : tuple of str
        Further columns of the Cox table to show in the report (e.g. the published HRs).
    provenance_notes : tuple of str
        Paragraphs for the provenance section (e.g. how the data were reconstructed).
    sections : tuple of Section
        Sections placed before the checklist (e.g. the paper's audit, the what-ifs).
    published_hr : (label, hr, lower, upper), optional
        A published HR drawn as the first row of the forest plot.
    covariate_rationale : str
        Why the default PS covariates were chosen (the reporting checklist).
    """

    name: str = ""
    figure_names: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    cox_table_stem: str = "cox_table"
    cox_caption: str = ""
    cox_columns: tuple = ()
    provenance_notes: tuple = ()
    sections: tuple = ()
    published_hr: tuple | None = None
    covariate_rationale: str = ""

    def __post_init__(self):
        object.__setattr__(self, "figure_names", MappingProxyType(dict(self.figure_names)))
        object.__setattr__(self, "figures", MappingProxyType(dict(self.figures)))
        object.__setattr__(self, "provenance_notes", tuple(self.provenance_notes))
        object.__setattr__(self, "sections", tuple(self.sections))


NO_STUDY = StudyExtras()
