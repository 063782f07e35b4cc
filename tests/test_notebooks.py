"""Repository hygiene for the book: chapters are committed without outputs, all listed in the TOC, and every
figure a chapter draws has alt text."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*(ROOT / "book").glob("*.ipynb"), *(ROOT / "book" / "using").glob("*.ipynb")])


def toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]}
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []) or []:
            files.add(ch["file"])
    return files


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_no_outputs(nb):
    data = json.loads(nb.read_text())
    dirty = [
        i for i, c in enumerate(data["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{nb.name}: cells {dirty} carry outputs or execution counts; clear them before committing"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_first_cell_is_hidden_setup(nb):
    first = json.loads(nb.read_text())["cells"][0]
    assert first["cell_type"] == "code" and "remove-cell" in first.get("metadata", {}).get("tags", []), (
        f"{nb.name}: the first cell must be the install cell, tagged remove-cell (in the notebook, not on the page)"
    )


def _plot_functions() -> set[str]:
    """The plotting functions a chapter may call: those of ddpm_edu.lab.plots that draw a figure."""
    from ddpm_edu.lab import plots

    return {name for name in plots.__all__ if name.startswith("plot_")}


def draws_a_figure(source: str, plot_functions: set[str]) -> bool:
    """Whether a code cell shows a picture: it calls a plot function, displays an image, or returns a figure."""
    code = "\n".join(line.split("#", 1)[0].rstrip() for line in source.splitlines())
    calls = set(re.findall(r"\b(\w+)\(", code))
    lines = [line for line in code.splitlines() if line.strip()]
    return bool(calls & (plot_functions | {"Image"})) or bool(lines) and lines[-1].strip() == "fig"


def alt_text(cell: dict) -> str:
    """The alt text that myst-nb gives the cell's images (cell metadata mystnb.image.alt), or ""."""
    return str(cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt", "")).strip()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_figure_has_alt_text(nb):
    """A cell that draws a figure says what it shows, for readers who cannot see it: myst-nb writes the cell's
    mystnb.image.alt on each of its images (without it Sphinx writes the file name). Alt text is read aloud, so
    no LaTeX; and a cell that draws nothing carries none (it would be stale)."""
    plot_functions = _plot_functions()
    for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        draws, alt = draws_a_figure("".join(cell["source"]), plot_functions), alt_text(cell)
        where = f"{nb.name}, cell {i} ({cell.get('id')})"
        assert draws or not alt, f"{where} draws no figure but has alt text {alt!r}"
        if draws:
            assert len(alt) >= 40, f"{where} draws a figure: give it metadata mystnb.image.alt that says what it shows"
            assert not re.search(r"[$\\]", alt), f"{where}: alt text is read aloud; write words, not LaTeX: {alt!r}"


def test_a_figure_without_alt_text_would_be_caught(tmp_path):
    cells = [{"cell_type": "code", "id": "a", "metadata": {}, "outputs": [], "source": "plot_images(x, 4)"},
             {"cell_type": "code", "id": "b", "metadata": {}, "outputs": [], "source": "fig = new_figure()\nfig"},
             {"cell_type": "code", "id": "c", "metadata": {"mystnb": {"image": {"alt": "x" * 50}}}, "outputs": [],
              "source": "print(1)"}]
    for cell, problem in zip(cells, ["mystnb.image.alt", "mystnb.image.alt", "draws no figure"]):
        p = tmp_path / "x.ipynb"
        p.write_text(json.dumps({"cells": [cell]}))
        with pytest.raises(AssertionError, match=problem):
            test_every_figure_has_alt_text(p)
    plots = _plot_functions()
    assert "plot_images" in plots and not draws_a_figure("from ddpm_edu.lab.plots import plot_images", plots)
    assert draws_a_figure("display(Image(filename=g, width=256))", plots)


def test_every_chapter_is_in_the_toc():
    listed = toc_files()
    missing = [p.name for p in NOTEBOOKS if p.relative_to(ROOT).with_suffix("").as_posix() not in listed]
    assert not missing, f"chapters missing from _toc.yml: {missing}"
    for f in listed:
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")), f"_toc.yml lists {f}, which does not exist"


def test_dirty_notebook_would_be_caught(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "1", "metadata": {}, "outputs": [{"output_type": "stream"}], "execution_count": 3}]}
    p = tmp_path / "x.ipynb"
    p.write_text(json.dumps(nb))
    with pytest.raises(AssertionError, match="outputs"):
        test_notebook_has_no_outputs(p)


def test_the_book_ships_its_own_mathjax():
    """Equations must render with no network: MathJax comes from the build's _static, not a CDN."""
    import importlib
    from importlib.resources import files

    sphinx = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]
    ext = "sphinx-mathjax-offline"
    assert ext in sphinx.get("extra_extensions", []), f"_config.yml must load {ext}"
    path = sphinx["config"]["mathjax_path"]
    assert "://" not in path and not path.startswith("//"), f"mathjax_path {path!r} points off the site"
    importlib.import_module(ext)  # installed by requirements.txt
    shipped = files(ext).joinpath("static", "mathjax", path.removeprefix("mathjax/"))
    assert shipped.is_file(), f"{ext} does not ship {path}"


def _set_repository_module():
    from conftest import load_script

    return load_script(ROOT / "tools" / "set_repository.py")


def _copy_for_set_repository(sr, tmp_path):
    import shutil

    (tmp_path / "book" / "using").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", tmp_path)
    for nb in NOTEBOOKS:
        shutil.copy(nb, tmp_path / nb.relative_to(ROOT))
    for page in sr.LINK_PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / page, tmp_path / page)


def test_install_cells_name_the_configured_repository():
    sr = _set_repository_module()
    assert sr.mismatches() == [], "run: python tools/set_repository.py OWNER/NAME"


def test_set_repository_rewrites_config_and_every_install_cell(tmp_path):
    sr = _set_repository_module()
    _copy_for_set_repository(sr, tmp_path)
    before = {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}

    for bad in ("no-slash", "a b/c", "https://github.com/x/y", "-x/y"):
        with pytest.raises(ValueError, match="OWNER/NAME"):
            sr.set_repository(bad, tmp_path)
    assert {p: p.read_text() for p in before} == before  # a refused name changes nothing

    changed = sr.set_repository("A-Fork/ddpm.edu", tmp_path)
    assert sr.configured(tmp_path) == "A-Fork/ddpm.edu" and sr.mismatches(tmp_path) == []
    readme, index = (tmp_path / "README.md").read_text(), (tmp_path / "book" / "index.md").read_text()
    assert "https://a-fork.github.io/ddpm.edu/" in readme  # the published book; GitHub lower-cases the owner
    for text in (readme, index):  # the Colab links follow the repository
        assert "colab.research.google.com/github/A-Fork/ddpm.edu/" in text
        assert "ddpm-edu/ddpm-edu" not in text and "ddpm-edu.github.io" not in text
    changed = sr.set_repository("a-fork/ddpm.edu", tmp_path)
    assert len(changed) == len(NOTEBOOKS) + 1 + len(sr.LINK_PAGES)
    assert sr.configured(tmp_path) == "a-fork/ddpm.edu" and sr.mismatches(tmp_path) == []
    assert yaml.safe_load((tmp_path / "_config.yml").read_text())["repository"]["url"] == "https://github.com/a-fork/ddpm.edu"
    for nb in sr.notebooks(tmp_path):
        setup = json.loads(nb.read_text())["cells"][0]["source"]
        assert "git+https://github.com/a-fork/ddpm.edu" in "".join(setup)

    one = tmp_path / NOTEBOOKS[-1].relative_to(ROOT)
    one.write_text(one.read_text().replace("a-fork/ddpm.edu", "someone/else"))
    assert [m.split(":")[0] for m in sr.mismatches(tmp_path)] == [one.relative_to(tmp_path).as_posix()]


def _install_requirements(nb: Path) -> list[str]:
    """The pip requirement strings of a chapter's install cell (the quoted 'ddpm-edu @ ...' arguments)."""
    import re

    setup = "".join(json.loads(nb.read_text())["cells"][0]["source"])
    return re.findall(r'"(ddpm-edu @ [^"]+)"', setup)


def test_set_repository_pins_the_install_cells_to_the_published_commit(tmp_path):
    """--ref writes OWNER/NAME@REF into every install cell and nothing else; --check accepts pinned and unpinned."""
    from packaging.requirements import Requirement

    sr = _set_repository_module()
    _copy_for_set_repository(sr, tmp_path)
    pages = {page: (tmp_path / page).read_text() for page in sr.LINK_PAGES}
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert sr.main(["--check", "--root", str(tmp_path)]) == 0  # as committed: no ref

    assert sr.main(["a-fork/ddpm.edu", "--ref", sha, "--root", str(tmp_path)]) == 0
    for nb in sr.notebooks(tmp_path):
        (req,) = _install_requirements(nb)
        assert Requirement(req).url == f"git+https://github.com/a-fork/ddpm.edu@{sha}", nb.name  # what pip reads
    assert sr.install_refs(tmp_path) == {nb.relative_to(ROOT).as_posix(): {sha} for nb in NOTEBOOKS}
    assert sr.mismatches(tmp_path) == [] and sr.main(["--check", "--root", str(tmp_path)]) == 0
    for page, text in pages.items():  # the README's and the install page's pip commands stay unpinned
        assert "@" + sha not in (tmp_path / page).read_text()
        assert (tmp_path / page).read_text() == text.replace("ddpm-edu/ddpm-edu", "a-fork/ddpm.edu").replace(
            "ddpm-edu.github.io/ddpm-edu", "a-fork.github.io/ddpm.edu")

    assert sr.set_repository("a-fork/ddpm.edu", tmp_path, ref="v0.2") != []  # a new ref replaces the old one
    assert set().union(*sr.install_refs(tmp_path).values()) == {"v0.2"}
    sr.set_repository("a-fork/ddpm.edu", tmp_path)  # no ref: back to the default branch
    for nb in sr.notebooks(tmp_path):
        assert Requirement(_install_requirements(nb)[0]).url == "git+https://github.com/a-fork/ddpm.edu"

    one = tmp_path / "book" / NOTEBOOKS[0].name
    one.write_text(one.read_text().replace("a-fork/ddpm.edu", f"a-fork/ddpm.edu@{sha}"))
    bad = sr.mismatches(tmp_path)
    assert len(bad) == 1 and bad[0].startswith("the install cells name different refs") and sha in bad[0]
    assert sr.main(["--check", "--root", str(tmp_path)]) == 1
    for ref in ("a..b", "-x", "a b", ""):
        with pytest.raises(ValueError, match="for the ref"):
            sr.set_repository("a-fork/ddpm.edu", tmp_path, ref=ref)


def test_committed_install_cells_name_no_ref():
    """A checkout installs the default branch, or nothing where the library is installed: only the publish
    workflow pins the cells, to the commit it checked out ($GITHUB_SHA). A pinned cell committed by
    mistake would have every later reader install that old library."""
    import os

    allowed = {"", os.environ.get("GITHUB_SHA", "")}
    refs = _set_repository_module().install_refs()
    assert all(r <= allowed for r in refs.values()), f"install cells name a ref: {refs}"
