"""ddpm_edu.lab.successors: chapter 11's list of successors cites real references and real chapters."""

import re
from pathlib import Path

from ddpm_edu.lab.successors import CHAPTERS, SUCCESSORS, successor_rows

ROOT = Path(__file__).resolve().parents[1]


def test_every_successor_cites_a_key_of_references_bib():
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "references.bib").read_text(), re.MULTILINE))
    assert {s.cite for s in SUCCESSORS} <= keys


def test_every_chapter_named_exists_in_the_book_with_that_number():
    for s in SUCCESSORS:
        assert s.chapters and set(s.chapters) <= set(CHAPTERS), s
    for number in CHAPTERS:
        assert len(list((ROOT / "book").glob(f"{number:02d}_*.ipynb"))) == 1, number


def test_rows_follow_the_list_in_order():
    rows = successor_rows()
    assert [r["successor"] for r in rows] == [f"{s.name} ({s.year})" for s in SUCCESSORS]
    assert [r["builds on chapters"] for r in rows] == [", ".join(map(str, s.chapters)) for s in SUCCESSORS]
    assert [s.year for s in SUCCESSORS] == sorted(s.year for s in SUCCESSORS)
