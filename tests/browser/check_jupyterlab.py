"""The schedule explorer's widget view in a real JupyterLab, driven from the keyboard (issue 24).

Not part of ``make test``: it needs JupyterLab with anywidget's front end, which the project does not
install. Put them in a virtual environment of their own and point ``--lab`` at it:

    python3 -m venv /tmp/jlab && /tmp/jlab/bin/pip install "jupyterlab>=4.6,<5" anywidget ipywidgets
    .venv/bin/python tests/browser/check_jupyterlab.py --lab /tmp/jlab/bin/jupyter-lab --shots /tmp/jlab_shots

It writes a notebook that shows ``schedule_explorer()``, starts JupyterLab on 127.0.0.1 with a kernel
that runs ``--python`` on this checkout, runs the notebook in headless Chromium and then, with the
notebook in command mode (where JupyterLab binds the arrow keys), focuses each slider and presses an
arrow key five times. Each slider must move (the three bugs found in JupyterLab 4.6: the notebook ate the
arrow keys, the log sliders snapped back, and a new T reloaded the old t), t must keep its place when T
changes, and the kernel's ``ex.settings()`` must then equal what the page shows. Exits 1 on the first
failure. Screenshots of the widget before and after go to ``--shots``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from browser import Failed, check, launch  # tests/browser/browser.py, beside this file
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ddpm-edu-check"


def notebook(kernel: str) -> dict:
    """The notebook: the explorer, then a cell that prints its settings as JSON (run later)."""
    cell = lambda i, src: {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,  # noqa: E731
                           "outputs": [], "source": src}
    return {"nbformat": 4, "nbformat_minor": 5, "cells": [
        cell(0, "from ddpm_edu.web.explorer import schedule_explorer\nex = schedule_explorer()\nex"),
        cell(1, "import json\nprint(json.dumps(ex.settings()))")],
        "metadata": {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(lab: str, folder: Path, python: str) -> tuple[subprocess.Popen, str]:
    """JupyterLab serving `folder`, with a kernel "ddpm" that runs `python` on this checkout; (process, base URL)."""
    spec = folder / "jupyter" / "kernels" / "ddpm"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "ddpm",
        "language": "python", "env": {"PYTHONPATH": str(ROOT)}}))
    port = free_port()
    env = {**os.environ, "JUPYTER_PATH": str(folder / "jupyter"), "JUPYTER_CONFIG_DIR": str(folder / "config"),
           "JUPYTER_RUNTIME_DIR": str(folder / "runtime")}
    root = ["--allow-root"] if os.geteuid() == 0 else []  # containers and CI runners often run as root
    proc = subprocess.Popen(
        [lab, "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={folder}", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", *root],
        env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "lab.log", "w"))
    base = f"http://127.0.0.1:{port}/"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}api/status?token={TOKEN}", timeout=2)
            return proc, base
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"JupyterLab exited: {(folder / 'lab.log').read_text()[-2000:]}")
            time.sleep(1)
    proc.terminate()
    raise SystemExit("JupyterLab did not answer within 2 minutes")


SETTINGS = "() => JSON.parse(document.querySelector('.ddpmx').getAttribute('data-settings'))"


def run_cell(page: Page, index: int) -> None:
    page.evaluate("""async (i) => { const nb = window.jupyterapp.shell.currentWidget;
      nb.content.activeCellIndex = i; await window.jupyterapp.commands.execute("notebook:run-cell"); }""", index)


def press(page: Page, name: str, key: str, times: int) -> tuple[dict, dict]:
    """Focus slider `name` with the notebook in command mode, press `key` `times` times; (settings before, after)."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:enter-command-mode')")
    before = page.evaluate(SETTINGS)
    slider = page.locator(f'.ddpmx input[data-name="{name}"]')
    slider.focus()
    for _ in range(times):
        page.keyboard.press(key)
    page.wait_for_timeout(300)
    mode = page.evaluate("() => document.querySelector('.jp-Notebook').classList.contains('jp-mod-commandMode')")
    check(mode, f"{name}: the notebook is in command mode while the slider has the focus")
    return before, page.evaluate(SETTINGS)


def exercise(page: Page) -> None:
    before, after = press(page, "t", "ArrowRight", 5)
    check(after["t"] == before["t"] + 5, f"t: five ArrowRight move it {before['t']} -> {after['t']}")
    for name in ("beta_T", "beta_1"):
        before, after = press(page, name, "ArrowRight", 5)
        check(after[name] > before[name], f"{name}: five ArrowRight move it {before[name]} -> {after[name]}")
    before, after = press(page, "T", "ArrowRight", 5)
    rungs, want = [1000, 1100, 1200, 1300, 1400, 1500], before["t"]  # T's slider from 1000 up: two significant digits
    for old, new in zip(rungs, rungs[1:]):
        want = math.floor(want / old * new + 0.5)  # explorer.js: Math.round(t / T * new T) at each step
    check(before["T"] == 1000 and after["T"] == 1500, f"T: five ArrowRight move it {before['T']} -> {after['T']}")
    check(after["t"] == want, f"t keeps its place when T changes: {before['t']} of {before['T']} -> {after['t']} of {after['T']}")
    run_cell(page, 1)
    page.wait_for_function("() => document.querySelectorAll('.jp-OutputArea-output').length >= 2", timeout=60_000)
    text = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output").inner_text()
    kernel, shown = json.loads(text), page.evaluate(SETTINGS)
    check(kernel == shown, f"the kernel's ex.settings() is what the page shows: {kernel}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lab", required=True, help="jupyter-lab of an environment with JupyterLab 4 and anywidget")
    ap.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="the kernel's Python, with ddpm_edu's dependencies")
    ap.add_argument("--shots", type=Path, help="save screenshots of the widget here")
    ap.add_argument("--chromium", help="the Chromium to drive (default: $CHROMIUM, /usr/bin/chromium, or one on PATH)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "explorer.ipynb").write_text(json.dumps(notebook("ddpm")))
        proc, base = start_lab(args.lab, folder, args.python)
        try:
            with sync_playwright() as pw:
                browser = launch(pw, args.chromium)
                page = browser.new_page(viewport={"width": 1300, "height": 1000})
                page.goto(f"{base}lab/tree/explorer.ipynb?token={TOKEN}")
                page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                       " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=120_000)
                page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.ready")
                run_cell(page, 0)
                page.wait_for_selector(".ddpmx canvas", timeout=120_000)
                page.wait_for_timeout(1000)
                if args.shots:
                    args.shots.mkdir(parents=True, exist_ok=True)
                    page.locator(".ddpmx").screenshot(path=str(args.shots / "jupyterlab_before.png"))
                exercise(page)
                if args.shots:
                    page.locator(".ddpmx").screenshot(path=str(args.shots / "jupyterlab_after.png"))
                browser.close()
        except Failed as e:
            print("FAILED:", e)
            return 1
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
