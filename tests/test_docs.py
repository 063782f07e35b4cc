"""The README and the book's "Using the library" pages stay true: what they show runs, what they list exists.

- The README is a front door: short, with no history (dates, line counts), an example that runs and
  prints what it says, and costs that are ``ddpm_edu.lab.cost``'s own.
- ``_toc.yml`` lists pages that exist, and every page of ``book/using/``.
- The API reference documents every module of the package, and nothing that is gone.
- Every ``ddpm-edu`` command shown in a code block parses, and its config overrides are valid keys.
- The presets table of the command-line page agrees with the preset files.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
USING = ROOT / "book" / "using"
MAX_README_LINES = 150


def fenced(text: str, lang: str) -> list[str]:
    """The bodies of the code blocks fenced with ```lang in ``text``."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


# --------------------------------------------------------------------------- the README
def front_door_problems(text: str) -> list[str]:
    """What makes a README a changelog instead of a front door: length, dates, load averages, line counts."""
    problems = []
    n = len(text.splitlines())
    if n > MAX_README_LINES:
        problems.append(f"{n} lines, more than {MAX_README_LINES}: move reference material into book/using/")
    for date in sorted(set(re.findall(r"\b20\d\d-\d\d-\d\d\b", text))):
        problems.append(f"a dated measurement ({date}): measurements live in bench/RESULTS.md")
    if re.search(r"load average", text, re.I):
        problems.append("a load average: measurements live in bench/RESULTS.md")
    for header in re.findall(r"^\|.*\|\s*$", text, flags=re.M):
        if re.search(r"\blines?\b", header, re.I) and re.search(r"before|after|count", header, re.I):
            problems.append(f"a table of line counts ({header.strip()}): history lives in git")
    return problems


def test_readme_is_a_front_door():
    assert front_door_problems(README.read_text()) == []


def test_a_changelog_readme_would_be_caught():
    history = "\n".join(["# x", "| module | lines before | after |", "|---|---|---|", "| a.py | 3 | 4 |",
                         "make test: 13 min 56 s (2026-11-30, load average 5)"] + ["more"] * MAX_README_LINES)
    problems = front_door_problems(history)
    assert len(problems) == 4, problems  # length, the date, the load average, the table


def test_readme_example_runs_and_prints_what_it_says():
    """The example samples N(0, 0.5^2) with the exact noise predictor; its printed std is 0.5 up to sampling error."""
    (example,) = fenced(README.read_text().split("## A first example", 1)[1], "python")[:1]
    assert len(example.splitlines()) <= 16, "the README's example should stay about ten lines"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), {})
    std = float(out.getvalue().split()[-1])
    se = 0.5 / (2 * 4096) ** 0.5  # standard error of a sample std of 4096 normal draws
    assert abs(std - 0.5) < 5 * se, f"the README's example printed {std}, not about 0.5"


def test_readme_costs_are_those_of_the_cost_module():
    """The README quotes chapter 9's cost table (ddpm_edu.lab.cost) for the CIFAR-10 presets; they must agree."""
    from ddpm_edu.lab.cost import cost_markdown, cost_table
    from ddpm_edu.training.config import load_config

    paper = load_config("cifar10")
    table = cost_markdown(cost_table([load_config("cifar10-small"), paper], paper))
    times = {(cells[0].strip("`"), cells[1]): cells[4]
             for cells in ([c.strip() for c in row.strip("|").split("|")] for row in table.splitlines()[2:])}
    quoted = {("cifar10-small", "T4 (free Colab)"), ("cifar10", "A100"), ("cifar10", "H200 (this project)")}
    readme = README.read_text()
    for key in quoted:
        assert times[key] in readme, f"README: {key} costs {times[key]} according to ddpm_edu.lab.cost"


# --------------------------------------------------------------------------- the table of contents
def toc_entries(node: dict) -> list[str]:
    """Every ``file`` of a Jupyter Book table of contents, at any depth (parts, chapters, sections)."""
    files = [node["file"]] if "file" in node else []
    for key in ("parts", "chapters", "sections"):
        for child in node.get(key) or []:
            files += toc_entries(child)
    return files


def test_every_page_in_the_toc_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = [toc["root"], *toc_entries(toc)]
    missing = [f for f in listed if not any((ROOT / f"{f}{ext}").is_file() for ext in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"
    assert len(listed) == len(set(listed)), "_toc.yml lists a page twice"
    unlisted = [p.name for p in USING.glob("*.md") if f"book/using/{p.stem}" not in listed]
    assert not unlisted, f"book/using/ pages missing from _toc.yml: {unlisted}"


def test_nested_toc_entries_are_found():
    toc = {"root": "r", "parts": [{"chapters": [{"file": "a", "sections": [{"file": "b"}]}, {"file": "c"}]}]}
    assert toc_entries(toc) == ["a", "b", "c"]


# --------------------------------------------------------------------------- the API reference
def package_modules() -> set[str]:
    """Every module of ddpm_edu, as a dotted name (packages by their own name), except ``__main__``."""
    pkg = ROOT / "ddpm_edu"
    names = set()
    for path in pkg.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] != "__main__":
            names.add(".".join(parts))
    return names


def documented_modules() -> set[str]:
    """The modules that an ``automodule`` directive of a book/using/ page documents."""
    found = set()
    for page in USING.glob("*.md"):
        found |= set(re.findall(r"^\.\. automodule:: (\S+)$", page.read_text(), flags=re.M))
    return found


def test_the_api_reference_documents_every_module():
    modules, documented = package_modules(), documented_modules()
    assert not modules - documented, (f"modules missing from the API reference: {sorted(modules - documented)}; "
                                      f"add an automodule directive to the book/using/api_*.md page of their layer")
    assert not documented - modules, f"the API reference documents modules that do not exist: {sorted(documented - modules)}"
    every = [m for page in USING.glob("*.md") for m in re.findall(r"^\.\. automodule:: (\S+)$", page.read_text(), flags=re.M)]
    assert len(every) == len(set(every)), f"documented twice: {sorted({m for m in every if every.count(m) > 1})}"


# --------------------------------------------------------------------------- the commands shown
def shown_commands() -> list[tuple[str, list[str]]]:
    """(page, arguments after the command) for every ddpm-edu command in a bash block of the README or book/using/."""
    commands = []
    for page in [README, *sorted(USING.glob("*.md"))]:
        for block in fenced(page.read_text(), "bash"):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words and words[0] in ("ddpm-edu", "!ddpm-edu"):
                    commands.append((page.name, words[1:]))
                elif "-m" in words and words[words.index("-m") + 1:][:1] == ["ddpm_edu"]:
                    commands.append((page.name, words[words.index("-m") + 2:]))
    return commands


def test_commands_shown_in_the_docs_parse_and_their_configs_are_valid():
    from ddpm_edu.cli import build_parser
    from ddpm_edu.training.config import ConfigError, load_config, preset_names

    commands = shown_commands()
    assert {args[0] for _, args in commands} >= {"train", "sample", "fid", "figs"}
    for page, args in commands:
        try:
            ns = build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"{page}: `ddpm-edu {' '.join(args)}` does not parse")
        if getattr(ns, "config", None) in preset_names():
            try:
                load_config(ns.config, ns.overrides)
            except ConfigError as e:
                pytest.fail(f"{page}: `ddpm-edu {' '.join(args)}`: {e}")


# --------------------------------------------------------------------------- the presets table
def test_the_presets_table_agrees_with_the_preset_files():
    from ddpm_edu.nets.unet import count_params
    from ddpm_edu.training.build import build_model
    from ddpm_edu.training.config import load_config, preset_names

    page = (USING / "command_line.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w-]+)` \|.*$", page, flags=re.M)}
    assert set(rows) == set(preset_names()), f"the presets table lists {sorted(rows)}"
    needs = {"folder": ["data.root=~/my_photos"]}  # a preset that cannot run without being told where
    for name, row in rows.items():
        cfg = load_config(name, needs.get(name, []))
        params = f"({count_params(build_model(cfg)):,} parameters)"
        assert params in row, f"{name}: the table should say {params}"
        assert f"T = {cfg.diffusion.T}" in row, f"{name}: T = {cfg.diffusion.T}"
        steps = f"{cfg.train.steps:,} steps of batch {cfg.data.batch_size}"
        assert steps in row, f"{name}: the table should say {steps}"


def test_references_bib_parses_with_unique_keys():
    """The book's citations: a syntax error or a key added twice (two branches citing one paper) fails the build."""
    import re

    import pybtex.database

    text = (ROOT / "references.bib").read_text()
    keys = re.findall(r"^@\w+\{([^,\s]+),", text, flags=re.M)
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    assert set(pybtex.database.parse_string(text, "bibtex").entries) == set(keys)
