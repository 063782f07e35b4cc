"""Tables for the page: rows of values as a Markdown table that Jupyter Book renders.

Chapter 8 shows its measurements this way (a table, not printed text); a notebook displays the
result with ``IPython.display.Markdown``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

__all__ = ["markdown_table"]


def markdown_table(rows: Sequence[Mapping[str, Any]], formats: Mapping[str, str] | None = None) -> str:
    """The rows as a Markdown table: one column per key (in order of first appearance), one line per row.

    ``formats`` maps a column to a format spec (e.g. ``".3f"``, ``".1%"``); other real numbers are written
    with 4 significant digits and integers as they are. A missing key or None leaves the cell empty and a
    NaN shows as a dash. Numeric columns are right-aligned. A ``|`` inside a value is escaped.
    """
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    formats = formats or {}
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(col: str, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if isinstance(value, float) and math.isnan(value):
                return "-"
            spec = formats.get(col, "d" if isinstance(value, numbers.Integral) else ".4g")
            return format(value, spec)
        return str(value).replace("|", "\\|")

    def numeric(col: str) -> bool:
        vals = [row[col] for row in rows if row.get(col) is not None]
        return bool(vals) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in vals)

    head = "| " + " | ".join(c.replace("|", "\\|") for c in columns) + " |"
    rule = "|" + "|".join("---:" if numeric(c) else "---" for c in columns) + "|"
    body = ["| " + " | ".join(cell(c, row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])
