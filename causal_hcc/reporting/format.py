"""One number style for everything a person reads (the HTML and Markdown report).

- hazard ratios (and other ratios) to 2 decimals: ``0.36``;
- confidence intervals with an en dash: ``0.17–0.73`` (negative limits: ``-0.12 to 0.30``);
- P values as ``P = 0.005`` or ``P < 0.001``, never in scientific notation;
- percentages to 1 decimal: ``42.1%``;
- counts as integers, a sum of weights or an effective sample size to 1 decimal;
- no number is ever written in scientific notation (``format_number``).

CSV and JSON files keep full precision; only the report is formatted here.
"""

from __future__ import annotations

import math
import re

import numpy as np

DASH = "\u2013"          # en dash, between the limits of an interval
MINUS = "-"             # hyphen-minus for negative numbers (copy-pastes into any tool)


def _missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def ratio(value, digits: int = 2) -> str:
    """A hazard ratio (or any ratio): fixed decimals, '' when missing, 'inf' spelled out."""
    if _missing(value):
        return ""
    if math.isinf(value):
        return "infinite" if value > 0 else "-infinite"
    return f"{value:.{digits}f}"


def interval(lower, upper, digits: int = 2) -> str:
    """'0.17–0.73' (en dash); with a negative limit '-0.12 to 0.30'."""
    if _missing(lower) or _missing(upper):
        return ""
    lo, hi = ratio(lower, digits), ratio(upper, digits)
    return f"{lo} to {hi}" if lower < 0 or upper < 0 else f"{lo}{DASH}{hi}"


def hr_ci(hr, lower, upper) -> str:
    """'0.36 (0.17–0.73)'."""
    if _missing(hr):
        return ""
    ci = interval(lower, upper)
    return f"{ratio(hr)} ({ci})" if ci else ratio(hr)


def p_value(p, prefix: bool = True) -> str:
    """'P = 0.005', 'P < 0.001' (``prefix=False``: '0.005', '< 0.001'); 3 decimals, P values
    from 0.9995 up as 'P > 0.999'."""
    if _missing(p):
        return ""
    if p < 0.001:
        text = "< 0.001"
    elif p >= 0.9995:
        text = "> 0.999"
    else:
        text = f"= {p:.3f}"
    return f"P {text}" if prefix else text.removeprefix("= ")


def percent(share, digits: int = 1) -> str:
    """A share (0-1) as '42.1%'."""
    return "" if _missing(share) else f"{100 * share:.{digits}f}%"


def count(value) -> str:
    """An integer count; a non-integer (a sum of weights) to 1 decimal."""
    if _missing(value):
        return ""
    return f"{int(round(value))}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def smd(value) -> str:
    """A standardised mean difference, signed, 2 decimals (0 for |SMD| < 0.005)."""
    if _missing(value):
        return ""
    return "0.00" if abs(value) < 0.005 else f"{value:+.2f}".replace("+", "")


def time_point(value) -> str:
    """A time (12, 36.5): as few decimals as it has, up to 2; never scientific."""
    if _missing(value):
        return ""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def format_number(value) -> str:
    """Any float for a table cell: never scientific notation. |x| >= 100: 1 decimal;
    >= 1: 2 decimals; < 1: 3 decimals (0 when below 0.0005)."""
    if _missing(value):
        return ""
    if math.isinf(value):
        return "infinite" if value > 0 else "-infinite"
    a = abs(value)
    if a >= 100:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    if a < 0.0005:
        return "0"
    return f"{value:.3f}"


def cell(value) -> str:
    """One table cell: yes/NO for booleans, blank for missing, numbers by
    :func:`format_number`, text as is."""
    if _missing(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format_number(float(value))
    return str(value)


# ------------------------------------------------------------------ prose of other modules
_RANGE = re.compile(r"(?<![\w.\-])(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)(?![\w\-]|\.\d)")
_SCI = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([+-]?\d+)(?![\w.])")
# 'P 0.00473', 'P=0.0027', 'P = 0.127' (a space or '=' is required: 'P012' is an id)
_P_BARE = re.compile(r"\bP(?:\s*=\s*|\s+)(\d*\.?\d+(?:[eE][+-]?\d+)?)(?![\w.])")


def _p_sub(match) -> str:
    return p_value(float(match.group(1)))


def _sci_sub(match) -> str:
    return format_number(float(match.group(0)))


def tidy_text(text: str) -> str:
    """Prose written elsewhere (sensitivity sentences, notes, warnings) in the house style:
    number ranges with an en dash ('0.17-0.73' -> '0.17–0.73'), 'P 0.00473' -> 'P = 0.005',
    no scientific notation."""
    text = _P_BARE.sub(_p_sub, str(text))
    text = _SCI.sub(_sci_sub, text)
    return _RANGE.sub(lambda m: f"{m.group(1)}{DASH}{m.group(2)}", text)
