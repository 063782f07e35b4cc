"""ddpm_edu.progress: a live bar where someone watches; on a page the book's build executes, the final line only.

The end-to-end test executes a small notebook with nbclient, as Jupyter Book does, in a kernel
started from a process where the Sphinx hook ran, and reads the outputs that would go on the page.
The same notebook executed without the hook keeps tqdm's widget: that is the frozen "0%" bar the
hook exists to avoid, and shows that the test can fail.
"""

from __future__ import annotations

import io
import re

import nbformat
import pytest

from ddpm_edu import progress
from ddpm_edu.progress import BOOK_BUILD, FinalLine, progress_bar

WIDGET = "application/vnd.jupyter.widget-view+json"
# A finished text bar: "<desc>: 100%|##########| n/n [mm:ss<00:00, <rate><unit>/s...]"
FINAL = re.compile(r"^(?P<desc>[\w-]+): 100%\|#{10}\| (?P<n>\d+)/(?P=n) \[\d\d:\d\d<00:00, +[\d.]+(?P<unit>\w+)/s")


def test_final_line_passes_on_only_finished_lines():
    out = io.StringIO()
    f = FinalLine(out)
    f.write("\rstep 1")
    f.write("\rstep 2   \rstep 3")
    assert out.getvalue() == ""  # a redrawn line is never printed
    f.write("  \n")
    f.write("\r" + " " * 8 + "\r")  # what tqdm leaves of a bar closed with leave=False
    f.write("a\nb\n")
    assert out.getvalue() == "step 3\na\nb\n"


def test_outside_a_build_the_bar_is_tqdm_auto(monkeypatch):
    monkeypatch.delenv(BOOK_BUILD, raising=False)
    from tqdm.auto import tqdm

    bar = progress_bar(total=3, disable=True)
    assert type(bar) is tqdm and not progress.in_book_build()


def test_in_a_build_a_bar_prints_its_final_state_once(monkeypatch, capsys):
    monkeypatch.setenv(BOOK_BUILD, "1")
    for _ in progress_bar(range(40), desc="toy2d", unit="step", mininterval=0):
        pass
    with progress_bar(total=7, initial=3, desc="resumed", unit="step") as bar:  # the trainer's, resumed
        bar.update(4)
    for _ in progress_bar(range(5), desc="DDPM", leave=False):  # the samplers': no line, as the widget leaves none
        pass
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    first, second = (FINAL.match(line) for line in lines)
    assert first and first["desc"] == "toy2d" and first["n"] == "40" and first["unit"] == "step", lines[0]
    assert second and second["desc"] == "resumed" and second["n"] == "7", lines[1]
    assert "\r" not in "".join(lines)


def test_the_sphinx_hook_marks_the_build(monkeypatch):
    from ddpm_edu.web import sphinxext

    monkeypatch.setenv(BOOK_BUILD, "0")  # restored after the test

    class App:
        def connect(self, event, fn):
            pass

    assert not progress.in_book_build()
    sphinxext.setup(App())
    assert progress.in_book_build()


TRAIN_CELL = """\
from ddpm_edu.training.config import load_config
from ddpm_edu.training.train import train

cfg = load_config("toy2d", ["train.steps=12", "train.log_every=6", "train.ckpt_every=0", "train.warmup=2",
                            "data.toy_n=256", "data.batch_size=32", "model.hidden=16"])
result = train(cfg, {run!r}, samples=False)
print("finished at step", result.step)
"""


def _executed(tmp_path, hook: bool, monkeypatch) -> list[dict]:
    """The outputs of the training cell, executed by nbclient in a fresh kernel (with or without the Sphinx hook)."""
    from nbclient import NotebookClient

    from ddpm_edu.web import sphinxext

    monkeypatch.setenv(BOOK_BUILD, "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    if hook:
        sphinxext.setup(type("App", (), {"connect": lambda self, event, fn: None})())
    run = tmp_path / ("hooked" if hook else "plain")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(TRAIN_CELL.format(run=str(run)))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb.cells[0].outputs


@pytest.mark.multiprocess
@pytest.mark.slow
def test_a_built_page_shows_the_final_bar_and_no_widget(tmp_path, monkeypatch):
    outputs = _executed(tmp_path, hook=True, monkeypatch=monkeypatch)
    assert not [o for o in outputs if WIDGET in o.get("data", {})], outputs
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    bars = [line for line in text.splitlines() if "%|" in line]
    assert len(bars) == 1 and FINAL.match(bars[0]), text
    assert FINAL.match(bars[0])["n"] == "12" and "finished at step 12" in text


@pytest.mark.multiprocess
@pytest.mark.slow
def test_without_the_hook_the_kernel_draws_a_widget(tmp_path, monkeypatch):
    """The control: nbclient alone gets tqdm's widget, whose saved text is its first state, frozen at 0%."""
    outputs = _executed(tmp_path, hook=False, monkeypatch=monkeypatch)
    widgets = [o for o in outputs if WIDGET in o.get("data", {})]
    assert widgets and "0%" in widgets[0]["data"]["text/plain"], outputs
