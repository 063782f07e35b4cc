"""tools/book_pdf.py, ``make pdf``: the built book printed by Chromium into one PDF.

The unit tests check the table of contents' order and the strips that replace GIFs against what
they are made from. The end-to-end test builds a small Jupyter Book (the real theme, MathJax
shipped offline, a GIF, a stand-in explorer, a link between pages), runs the tool on it as
``make pdf`` does, and reads the PDF back with pypdf: a page or more per page of the book, each
title in the text, no TeX left raw, the explorer's line with its page's online address, the GIF
printed as a strip, and no link left pointing at the local server.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import load_script
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "book_pdf.py"


@pytest.fixture(scope="module")
def book_pdf():
    return load_script(TOOL)


def test_toc_pages_follow_the_table_of_contents(book_pdf):
    files = book_pdf.toc_pages(ROOT / "_toc.yml")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = re.findall(r"^\s*- file: (\S+)$", (ROOT / "_toc.yml").read_text(), re.MULTILINE)
    assert files == [toc["root"]] + listed  # the root, then every entry in the order the file lists them
    assert files.index("book/using/api") + 1 == files.index("book/using/api_derivation")  # sections follow their chapter


def test_toc_pages_refuses_what_is_not_a_table_of_contents(book_pdf, tmp_path):
    bad = tmp_path / "_toc.yml"
    bad.write_text("- just: a list\n")
    with pytest.raises(SystemExit, match="no `root:`"):
        book_pdf.toc_pages(bad)


def _gif(n: int, size: tuple[int, int] = (12, 10)) -> bytes:
    """An animated GIF whose frame k is one flat grey level, 10 k + 5."""
    frames = [Image.fromarray(np.full(size[::-1], 10 * k + 5, dtype=np.uint8)) for k in range(n)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


@pytest.mark.parametrize("n, rows, cols", [(20, 2, 4), (3, 1, 3), (1, 1, 1)])
def test_a_gif_prints_as_evenly_spaced_frames(book_pdf, n, rows, cols):
    w, h = 12, 10
    strip = np.asarray(Image.open(io.BytesIO(book_pdf.gif_strip(_gif(n), frames=8, columns=4))).convert("L"))
    gap = max(2, w // 32)
    assert strip.shape == (rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap)
    k = min(8, n)
    expected = [round(j * (n - 1) / max(k - 1, 1)) for j in range(k)]  # first to last, evenly spaced
    shown = [int(strip[(j // cols) * (h + gap) + h // 2, (j % cols) * (w + gap) + w // 2]) for j in range(k)]
    assert [(v - 5) / 10 for v in shown] == pytest.approx(expected, abs=0.2)  # GIF's palette rounds a little
    if cols > 1:
        assert (strip[:, w:w + gap] == 255).all()  # a white gap between frames


def test_a_gif_comes_from_its_data_url_or_its_file(book_pdf, tmp_path):
    import base64

    data = _gif(2)
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.gif").write_bytes(data)
    base = "http://127.0.0.1:8000/"
    assert book_pdf.gif_bytes("data:image/gif;base64," + base64.b64encode(data).decode(), base, tmp_path) == data
    assert book_pdf.gif_bytes(base + "_images/a.gif?v=1", base, tmp_path) == data
    with pytest.raises(ValueError, match="outside the book"):
        book_pdf.gif_bytes("https://example.org/a.gif", base, tmp_path)


def test_the_site_publishes_the_pdf_and_the_landing_page_links_to_it(book_pdf):
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    made, uploaded = workflow.find("make pdf HTML=_build/html"), workflow.find("actions/upload-pages-artifact")
    assert 0 <= made < uploaded, "the workflow must print the PDF into _build/html before it uploads the site"
    assert f'href="../{book_pdf.PDF_NAME}"' in (ROOT / "book" / "index.md").read_text()  # book/index.html -> site root


# --------------------------------------------------------------------------- a small book, printed
CONFIG = """\
title: A tiny book
only_build_toc_files: true
execute: {execute_notebooks: "off"}
parse: {myst_enable_extensions: [dollarmath, amsmath]}
repository:
  url: https://github.com/Some-One/tiny-book
sphinx:
  extra_extensions: [sphinx-mathjax-offline]
  config: {mathjax_path: mathjax/tex-chtml.js}
"""
TOC = """\
format: jb-book
root: index
parts:
  - caption: First
    numbered: true
    chapters:
      - file: ch1
      - file: ch2
        sections:
          - file: sec
          - file: nb
"""
PAGES = {
    "index.md": "# The tiny book\n\nAlso <a href=\"book.pdf\">as a PDF</a>, linked as book/index.md links it. An animation:\n\n```{figure} anim.gif\n:alt: grey levels\n\nA GIF.\n```\n",
    "ch1.md": "# Inline and display math\n\nThe state $x_t$ and the rule\n\n$$\nx_t = \\sqrt{\\bar\\alpha_t}\\,x_0\n$$\n\n"
              + "Filler text, enough for a page. " * 200 + "\n",
    "ch2.md": "# A page with an explorer\n\n<div class=\"ddpm-explorer\" id=\"ex1\"><canvas width=40 height=20></canvas></div>\n\n"
              "Back to [the math](ch1.md).\n",
    "sec.md": "# A section of chapter two\n\n```{dropdown} A folded box\nFolded text that paper shows.\n```\n",
}
TITLES = ["The tiny book", "Inline and display math", "A page with an explorer", "A section of chapter two",
          "A notebook"]


def _notebook() -> str:
    """A chapter with stored outputs: a hidden install cell (hide-input) and an answer (hide-cell)."""
    import nbformat

    install = nbformat.v4.new_code_cell("install_marker = 1", metadata={"tags": ["hide-input"]})
    answer = nbformat.v4.new_code_cell("print('the answer is', 6 * 7)", metadata={"tags": ["hide-cell"]})
    answer.outputs = [nbformat.v4.new_output("stream", name="stdout", text="the answer is 42\n")]
    nb = nbformat.v4.new_notebook(cells=[install, nbformat.v4.new_markdown_cell("# A notebook"), answer])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb)


@pytest.fixture(scope="module")
def printed(tmp_path_factory, book_pdf):
    """(PDF reader, the tool's output) for the small book, built by Jupyter Book and printed by the tool."""
    chromium = load_script(ROOT / "tests" / "browser" / "browser.py").find_chromium()
    if chromium is None:
        pytest.fail("no Chromium to drive: `make check-html` installs Debian's chromium package; or set CHROMIUM=/path/to/chrome")
    src = tmp_path_factory.mktemp("tiny")
    (src / "_config.yml").write_text(CONFIG)
    (src / "_toc.yml").write_text(TOC)
    for name, text in PAGES.items():
        (src / name).write_text(text)
    (src / "nb.ipynb").write_text(_notebook())
    (src / "anim.gif").write_bytes(_gif(20, size=(40, 30)))
    jb = Path(sys.executable).with_name("jupyter-book")
    build = subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html, out = src / "_build" / "html", src / "book.pdf"
    run = subprocess.run([sys.executable, str(TOOL), str(html), "--toc", str(src / "_toc.yml"), "--out", str(out)],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "CHROMIUM": chromium})
    assert run.returncode == 0, run.stdout + run.stderr
    from pypdf import PdfReader

    return PdfReader(out), run.stdout


def _text(reader) -> str:
    return "\n".join(p.extract_text() for p in reader.pages)


@pytest.mark.browser
@pytest.mark.multiprocess
@pytest.mark.slow
def test_every_page_is_printed_in_order_with_its_title(printed):
    reader, log = printed
    assert len(reader.pages) >= len(TITLES) + 1  # chapter 1 fills more than one sheet
    text = re.sub(r"\s+", " ", _text(reader))
    where = [text.find(t) for t in TITLES]
    assert -1 not in where and where == sorted(where), (where, text[:500])
    outline = [item.title for item in reader.outline]
    assert outline[0] == "The tiny book" and any("Inline and display math" in t for t in outline), outline


@pytest.mark.browser
@pytest.mark.multiprocess
@pytest.mark.slow
def test_math_is_typeset_and_the_pages_are_numbered(printed):
    reader, _ = printed
    text = _text(reader)
    assert "\\(" not in text and "\\[" not in text and "$$" not in text and "\\sqrt" not in text
    for k, page in enumerate(reader.pages, start=1):
        assert str(k) in page.extract_text().split(), f"sheet {k} carries no page number"


@pytest.mark.browser
@pytest.mark.multiprocess
@pytest.mark.slow
def test_folded_boxes_open_and_hidden_code_stays_hidden(printed):
    text = _text(printed[0])
    assert "Folded text that paper shows." in text and "the answer is 42" in text and "6 * 7" in text
    assert "install_marker" not in text and "Show code cell" not in text


@pytest.mark.browser
@pytest.mark.multiprocess
@pytest.mark.slow
def test_explorers_say_where_they_run_and_links_leave_no_local_address(printed):
    reader, _ = printed
    site = "https://some-one.github.io/tiny-book/"  # from the small book's repository, as set_repository derives it
    text = re.sub(r"\s+", "", _text(reader))
    assert re.sub(r"\s+", "", f"These sliders move on the online book's page: {site}ch2.html") in text
    uris = [a.get_object()["/A"]["/URI"] for p in reader.pages for a in p.get("/Annots", [])
            if "/A" in a.get_object() and "/URI" in a.get_object()["/A"]]
    assert f"{site}ch1.html" in uris and f"{site}ch2.html" in uris, uris
    assert not [u for u in uris if "127.0.0.1" in u or "localhost" in u], uris


@pytest.mark.browser
@pytest.mark.multiprocess
@pytest.mark.slow
def test_the_gif_is_printed_as_a_strip_of_frames(printed, book_pdf):
    reader, _ = printed
    w, h = 40, 30
    gap = max(2, w // 32)
    sizes = {(img.image.width, img.image.height) for img in reader.pages[0].images}
    assert (4 * w + 3 * gap, 2 * h + gap) in sizes, sizes  # 8 frames, 4 to a row
