"""ddpm_edu.lab.tables: rows rendered as a Markdown table (chapter 7)."""

import pytest

from ddpm_edu.lab.tables import markdown_table


def test_a_table_has_a_header_a_rule_and_one_line_per_row_with_formats_applied():
    rows = [{"t": 1, "Var[eps | x_t]": 0.000123456, "note": "a|b"}, {"t": 400, "Var[eps | x_t]": 0.5, "note": "c"}]
    lines = markdown_table(rows, {"Var[eps | x_t]": ".3g"}).split("\n")
    assert lines == ["| t | Var[eps \\| x_t] | note |", "|---|---|---|", "| 1 | 0.000123 | a\\|b |",
                     "| 400 | 0.5 | c |"]
    cells = [line.strip("|").split(" | ") for line in lines[:1] + lines[2:]]
    assert all(len(c) == 3 for c in cells)  # an escaped pipe splits no heading and no cell


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="at least one row"):
        markdown_table([])
    with pytest.raises(ValueError, match="row 1 has the columns"):
        markdown_table([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="formats name columns"):
        markdown_table([{"a": 1}], {"b": ".2f"})
