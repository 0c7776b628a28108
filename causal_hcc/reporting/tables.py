"""Data frames as text: a plain-text table for the terminal and a Markdown table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def format_value(value) -> str:
    """One table cell: 4 significant digits, yes/NO for booleans, blank for missing."""
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
    cells += [[format_value(v)[:max_width] for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(frame.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def frame_to_markdown(frame: pd.DataFrame, caption: str = "") -> str:
    """GitHub-flavoured Markdown table, with an optional caption line above it."""
    head = "| " + " | ".join(str(c).replace("|", "\\|") for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    # the report's number style (never scientific notation), as in the HTML
    from causal_hcc.reporting.format import cell
    rows = ["| " + " | ".join(cell(v).replace("|", "/") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    text = "\n".join([head, rule, *rows])
    return f"{caption}\n\n{text}\n" if caption else text + "\n"
