"""What the browser checks share: finding Chromium, serving a folder on 127.0.0.1, blocking the rest.

A reader of the published book may have no network, so a page must work from its own server
alone. Both checkers (``check_explorer.py``, ``check_html.py``) serve the HTML folder as GitHub
Pages would and abort every request that leaves it, recording the URL.

Playwright's own browser download is not used: the checkers drive an installed Chromium, found by
:func:`find_chromium`. ``python tests/browser/browser.py`` prints the one it finds (exit 1 if none),
which is how ``make check-html`` decides whether to install Debian's ``chromium`` package.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path

# $CHROMIUM first; then Debian's package; then a Chromium or Chrome on PATH (GitHub's ubuntu runners
# ship google-chrome; Ubuntu's own apt `chromium-browser` is a snap stub that fails there, so it is not tried).
CANDIDATES = ("/usr/bin/chromium", "chromium", "google-chrome", "google-chrome-stable")

# Errors of the theme's own scripts around our content, not of it: reported, not failed. Matched as substrings.
NOT_OURS = (
    # Jupyter Book 1.x emits sphinx-thebe's config script twice on every chapter page; the second copy
    # fails to redeclare the constant. Thebe is not used by the book (launch buttons go to Colab).
    "Identifier 'THEBE_JS_URL' has already been declared",
    # pydata-sphinx-theme, on a reader's first page (nothing in localStorage yet): the page's default mode is "".
    "Got invalid theme mode: . Resetting to auto.",
)


def find_chromium() -> str | None:
    """The Chromium to drive: $CHROMIUM if set (it must exist), else the first of CANDIDATES found."""
    override = os.environ.get("CHROMIUM", "").strip()
    if override:
        found = shutil.which(override)
        if found is None:
            raise SystemExit(f"CHROMIUM={override!r} is neither an executable file nor a command on PATH")
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def launch(pw, chromium: str | None = None):
    """A headless Chromium from Playwright (``pw = sync_playwright().start()``), never a downloaded one."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium found: install Debian's `chromium` package, or set CHROMIUM=/path/to/chrome")
    return pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``folder`` on 127.0.0.1 at a free port, in a daemon thread; returns (server, base URL ending in /)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        # As GitHub Pages serves them: a browser compiles WASM streamed only under its own MIME type.
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                          ".mjs": "text/javascript"}

        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def keep_local(page, base: str, blocked: list[str]) -> None:
    """Let ``page`` reach only URLs under ``base``; every other request is aborted and its URL appended to ``blocked``."""

    def route(r) -> None:
        if r.request.url.startswith(base):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)


# Move a range input the way a drag does: several input events, then a change event.
# Called as element.evaluate(SET_RANGE, to) on the <input type=range> itself.
SET_RANGE = """(inp, to) => {
  const from = parseFloat(inp.value);
  for (let k = 1; k <= 5; k++) { inp.value = from + (to - from) * k / 5; inp.dispatchEvent(new Event("input", {bubbles: true})); }
  inp.dispatchEvent(new Event("change", {bubbles: true}));
}"""



def set_guidance(box, label: str, w: float) -> list[str]:
    """Set a guided live sampler (chapter 10) in ``box`` as a reader would, from the keyboard; returns what went
    wrong. "any" must disable the guidance slider w (no label, no guidance) and a digit enable it; the arrow keys
    must take the digit choice to ``label`` and the slider, by its steps, to ``w``."""
    choice, slider = box.locator('select[data-name="label"]'), box.locator('input[type=range][data-name="w"]')
    if not (choice.count() and slider.count()):
        return [f"a guided sampler without its digit choice ({choice.count()}) or its slider w ({slider.count()})"]
    problems = []
    choice.select_option("any")
    if slider.is_enabled():
        problems.append("with the digit 'any' the guidance slider w is still enabled")
    choice.focus()
    for _ in range(12):  # down the list from "any" to the digit: a focused <select> moves by arrow keys
        if choice.input_value() == label:
            break
        choice.press("ArrowDown")
    if choice.input_value() != label:
        problems.append(f"the arrow keys do not reach the digit {label} in the digit choice")
        choice.select_option(label)
    if not slider.is_enabled():
        return problems + [f"with the digit {label} the guidance slider w is disabled"]
    slider.focus()
    for _ in range(16):  # the slider's steps, up or down to w
        v = float(slider.input_value())
        if v == w:
            break
        slider.press("ArrowRight" if v < w else "ArrowLeft")
    if float(slider.input_value()) != w:
        problems.append(f"the arrow keys do not take the guidance slider w to {w} (it reads {slider.input_value()})")
    return problems


if __name__ == "__main__":
    path = find_chromium()
    if path is None:
        print("no Chromium found (tried $CHROMIUM, " + ", ".join(CANDIDATES) + ")", file=sys.stderr)
        sys.exit(1)
    print(path)


class Failed(Exception):
    """A check of a browser script that did not hold; the scripts print it and exit with 1."""


def check(cond: bool, what: str) -> None:
    """Print ``what`` as passed, or raise :class:`Failed` with it."""
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        raise Failed(what)
