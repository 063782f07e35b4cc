"""ddpm_edu.lab.tables: rows of values as a Markdown table."""

import math

import pytest

from ddpm_edu.lab.tables import markdown_table


def parse(md: str) -> list[list[str]]:
    """The cells of each line of a Markdown table, '|' escapes undone."""
    lines = md.splitlines()
    cells = []
    for line in lines:
        parts = line.strip().strip("|").replace("\\|", "\x00").split("|")
        cells.append([p.strip().replace("\x00", "|") for p in parts])
    return cells


def test_columns_rows_and_formats():
    rows = [{"t": 1, "ratio": 0.0, "name": "a|b"}, {"t": 400, "ratio": 0.99898, "extra": math.nan}]
    table = parse(markdown_table(rows, formats={"ratio": ".3f"}))
    assert table[0] == ["t", "ratio", "name", "extra"]
    assert table[1] == ["---:", "---:", "---", "---:"]  # numbers right-aligned, text left
    assert table[2] == ["1", "0.000", "a|b", ""]  # a missing key leaves the cell empty
    assert table[3] == ["400", "0.999", "", "-"]  # NaN shows as a dash
    assert len(table) == 4


def test_default_float_format_keeps_four_significant_digits_and_percent_specs_work():
    table = parse(markdown_table([{"x": 1234567.0, "p": 0.779}], formats={"p": ".1%"}))
    assert table[2] == ["1.235e+06", "77.9%"]


def test_an_empty_table_is_refused():
    with pytest.raises(ValueError, match="at least one row"):
        markdown_table([])
