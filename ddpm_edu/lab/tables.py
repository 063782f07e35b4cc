"""Tables in a chapter: rows of values rendered as one Markdown table (chapter 7).

A notebook that returns ``IPython.display.Markdown(markdown_table(rows))`` shows a rendered table in the
book (its Markdown outputs are parsed as MyST), not monospace text.
"""

from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["markdown_table"]


def markdown_table(rows: Sequence[Mapping[str, object]], formats: Mapping[str, str] | None = None) -> str:
    """A Markdown table with one row per mapping; the first row's keys, in order, are the columns.

    ``formats`` maps a column to a format spec, e.g. ``{"SE": ".2g"}``; other values are shown with str().
    Every row must have exactly the first row's keys. A "|" in a heading or a cell is escaped, so
    that it shows instead of ending the cell.
    """
    if not rows:
        raise ValueError("a table needs at least one row")
    columns, formats = list(rows[0]), dict(formats or {})
    for i, row in enumerate(rows):
        if list(row) != columns:
            raise ValueError(f"row {i} has the columns {list(row)}, the first row {columns}")
    unknown = set(formats) - set(columns)
    if unknown:
        raise ValueError(f"formats name columns the table does not have: {sorted(unknown)}")

    def cell(column: str, value: object) -> str:
        text = format(value, formats[column]) if column in formats else str(value)
        return _escape(text)

    lines = ["| " + " | ".join(_escape(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _escape(text: str) -> str:
    """``text`` with each "|" escaped, for a cell of a Markdown table."""
    return text.replace("|", "\\|")
