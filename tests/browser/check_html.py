"""A reader's check of the built book: every page in headless Chromium, with the network blocked (issue 11).

    .venv/bin/python tests/browser/check_html.py _build/fast/_build/html --shots _build/screenshots
    make check-html [HTML=_build/html]      # the same, finding (or installing) Chromium first

It serves the HTML folder on 127.0.0.1, as GitHub Pages would, aborts every other request, and on
every page (each *.html outside the folders whose name starts with "_") checks that

- the page loads with no console error, no uncaught exception and no failed request;
- nothing is requested from outside the local server;
- every <img> (PNGs and GIFs alike) decodes to a non-zero natural width, and every one inside the page's
  content (<main>) has alt text: not empty, and not a file name (Sphinx's alt when a cell gives none);
- every equation is typeset: MathJax's startup promise resolves, each span.math/div.math holds an
  mjx-container, no MathJax error is shown, and no raw \\( \\[ $$ is left in the text outside code;
- no traceback or error output appears (a cell's traceback, stderr naming an error, a Sphinx
  system message);
- no progress bar is shown short of its end: a tqdm widget that the build left as its first state
  ("0%|          | 0/3000 [00:00<?, ?step/s]") fails; a finished bar (n/n, with its speed) passes;
- every live sampler (chapters 6, 8 and 10) mounts, and pressing its *sample* button starts a run
  that changes its canvas, with no error; a guided one (chapter 10) is first set from the keyboard to
  a digit and a guidance weight w ("any" must disable w), and its run must finish and report them;
- the kernel-free sliders are there and work: no widget is left that needs a kernel, each
  schedule explorer has mounted its sliders, and in every group of sliders (one explorer, or
  one output) each visible slider changes something, and one press of an arrow key on it
  changes its value and what it reads; at least one slider changes the figure (canvas pixels,
  an image or an SVG);
- axe-core (``node_modules/axe-core``, pinned in package.json, injected from disk) finds no
  serious or critical accessibility violation, in the light theme, nor a colour contrast one in
  the dark theme; each is printed with its rule, impact and the elements it names. The few that
  come from the theme's own markup are listed in AXE_THEIRS, each with the reason.

It saves two full-page screenshots of each page, in the light and in the dark theme, set as the
theme's switch sets it (taken before the sliders move), and prints one line per problem; with
``--report`` it also writes them as JSON ({page: [problems]}). Exits 1 if any page has a problem.
``check_explorer.py`` goes deeper on the explorers (pixels against ddpm_edu).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from browser import NOT_OURS, SET_RANGE, keep_local, launch, serve, set_guidance  # tests/browser/browser.py, beside this file
from playwright.sync_api import Page, sync_playwright

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"  # `npm ci` installs it

VIEWPORT = {"width": 1280, "height": 900}
RAW_MATH = re.compile(r"\\\(|\\\[|\$\$")  # what dollarmath and amsmath leave for MathJax to typeset
ERROR_LINE = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception):", re.MULTILINE)
# A tqdm bar as text: "desc:  50%|#####     | 2/4 [00:00<?, ?step/s]"; groups n, total and the [...] part.
BAR = re.compile(r"\d+%\|[^|\n]*\| *(\d+)/(\d+) (\[[^\]\n]*\])")

# Equations: wait for MathJax to typeset, then count what it rendered and what it left raw.
MATH = """async () => {
  const later = (ms) => new Promise(r => setTimeout(() => r("timeout"), ms));
  const waited = (window.MathJax && MathJax.startup && MathJax.startup.promise)
    ? await Promise.race([MathJax.startup.promise.then(() => "done"), later(30000)]) : "none";
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest(skip) && /\\\\\\(|\\\\\\[|\\$\\$/.test(n.textContent)) raw.push(n.textContent.trim().slice(0, 80));
  }
  const math = Array.from(document.querySelectorAll("span.math, div.math"));
  return {
    mathjax: !!(window.MathJax && MathJax.startup), timeout: waited === "timeout", rendered: document.querySelectorAll("mjx-container").length,
    math: math.length, untypeset: math.filter(m => !m.querySelector("mjx-container")).map(m => m.textContent.trim().slice(0, 80)),
    errors: Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]")).map(e => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 80)),
    raw: raw,
  };
}"""

# Images: wait until each has loaded or failed (eagerly, so lazy ones count too), then read their sizes.
IMAGES = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = "eager"; });
  const later = new Promise(r => setTimeout(r, 20000));  // an image still loading by then counts as broken
  await Promise.race([Promise.all(imgs.map(i => i.decode().catch(() => null))), later]);
  const content = document.querySelector("main") || document.body;
  return imgs.map(i => ({src: i.currentSrc || i.getAttribute("src") || "", width: i.naturalWidth,
                         content: content.contains(i), alt: (i.getAttribute("alt") || "").trim()}));
}"""

# Error output: a cell's traceback, stderr that names an error, any output that prints a traceback,
# Sphinx's system messages; and widgets that need a kernel, or explorers that never mounted.
ERRORS = """() => {
  const text = (e) => e.textContent.trim().replace(/\\s+/g, " ").slice(0, 120);
  return {
    traceback: Array.from(document.querySelectorAll(".output.traceback, .traceback")).map(text),
    stderr: Array.from(document.querySelectorAll(".output.stderr")).map(e => e.textContent),
    outputs: Array.from(document.querySelectorAll(".cell_output, .output"))
      .filter(e => !e.querySelector(".output"))  // the innermost only, so that each output counts once
      .filter(e => !e.matches(".traceback") && !e.querySelector(".traceback")).map(e => e.textContent),  // counted above
    system: Array.from(document.querySelectorAll(".system-message, .problematic")).map(text),
    kernel_widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    explorers: Array.from(document.querySelectorAll(".ddpm-explorer")).map(e => ({
      id: e.id, mounted: !!e.querySelector(".ddpmx"), sliders: e.querySelectorAll("input[type=range]").length})),
  };
}"""

# Group the page's sliders by the explorer (or else the output, or else the parent) that holds them;
# tag each group so that Python can find it again.
GROUPS = """() => {
  const groups = new Map();
  document.querySelectorAll("input[type=range]").forEach(inp => {
    if (inp.closest(".ddpm-live")) return;  // a live sampler's sliders set up its next run: check_live
    const g = inp.closest(".ddpm-explorer, .cell_output, .output") || inp.parentElement;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(inp);
  });
  return Array.from(groups.entries()).map(([g, inps], i) => {
    g.setAttribute("data-check-html", i);
    return {group: i, label: g.id || g.className || g.tagName,
            sliders: inps.map(x => x.dataset.name || x.name || x.id || "range")};
  });
}"""

# What a group shows: the figure (canvas pixels, images, SVGs) and, apart, its text.
SNAPSHOT = """(g) => ({
  figure: [...Array.from(g.querySelectorAll("canvas")).map(c => c.toDataURL()),
           ...Array.from(g.querySelectorAll("img")).map(i => i.currentSrc + "#" + i.naturalWidth),
           ...Array.from(g.querySelectorAll("svg")).map(s => s.outerHTML)].join("|"),
  text: g.innerText,
})"""

PAINTED = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def pages(root: Path) -> list[Path]:
    """Every built page: *.html under ``root``, outside folders whose name starts with "_" (_static, _sources...)."""
    return sorted(p for p in root.rglob("*.html") if not any(part.startswith("_") for part in p.relative_to(root).parts[:-1]))


def check_math(page: Page) -> list[str]:
    m = page.evaluate(MATH)
    problems = [f"raw TeX left in the text: {r!r}" for r in m["raw"]]
    problems += [f"equation not typeset: {t!r}" for t in m["untypeset"]]
    problems += [f"MathJax error: {e!r}" for e in m["errors"]]
    if m["timeout"]:
        problems.append("MathJax had not finished typesetting after 30 s")
    if m["math"] and not m["mathjax"]:
        problems.append(f"{m['math']} equations but MathJax did not load")
    print(f"  {m['rendered']} equations typeset")
    return problems


def check_images(page: Page) -> list[str]:
    imgs = page.evaluate(IMAGES)
    print(f"  {len(imgs)} images")
    problems = [f"broken image (natural width 0): {i['src'][:120]}" for i in imgs if i["width"] == 0]
    return problems + [f"image without alt text: {i['src'][:120]}" for i in imgs if i["content"] and not says_what(i)]


def says_what(img: dict) -> bool:
    """Whether an image's alt text describes it: not empty, and not its file name, which is what Sphinx writes
    (alt = the image's URI) when a notebook cell gives none."""
    alt, src = img["alt"], img["src"]
    return bool(alt) and not FILE_NAME.search(alt) and alt.rsplit("/", 1)[-1] != src.rsplit("/", 1)[-1]


FILE_NAME = re.compile(r"^\S+\.(png|jpe?g|gif|svg|webp)$", re.IGNORECASE)  # an alt text that is a file name


def check_errors(page: Page) -> list[str]:
    e = page.evaluate(ERRORS)
    problems = [f"traceback shown: {t!r}" for t in e["traceback"]]
    problems += [f"error on stderr: {s.strip()[:120]!r}" for s in e["stderr"] if ERROR_LINE.search(s)]
    problems += [f"an output prints a traceback: {o.strip()[:120]!r}" for o in e["outputs"] if "Traceback (most recent call last)" in o]
    problems += [f"Sphinx system message: {t!r}" for t in e["system"]]
    problems += [f"a progress bar frozen short of its end: {b!r}" for o in e["outputs"] for b in frozen_bars(o)]
    if e["kernel_widgets"]:
        problems.append(f"{e['kernel_widgets']} widget(s) that need a kernel (no kernel-free view)")
    for x in e["explorers"]:
        if not x["mounted"] or not x["sliders"]:
            problems.append(f"schedule explorer {x['id']} did not mount its sliders")
    if e["explorers"]:
        print(f"  {len(e['explorers'])} schedule explorer(s)")
    return problems


def frozen_bars(text: str) -> list[str]:
    """The tqdm bars in ``text`` that did not finish (n < total) or never measured a speed ("?")."""
    return [m.group(0) for m in BAR.finditer(text) if m.group(1) != m.group(2) or "?" in m.group(3)]


def check_sliders(page: Page) -> list[str]:
    """Move each slider of each group away and back: each must change something, one the figure. Then one arrow key
    on each: its value must move, and what the group shows (or the slider's aria-valuetext) must change."""
    problems = []
    for g in page.evaluate(GROUPS):
        box = page.locator(f'[data-check-html="{g["group"]}"]')
        sliders = box.locator("input[type=range]")
        moved_figure, dead, hidden, stuck, unread = [], [], [], [], []
        for k, name in enumerate(g["sliders"]):
            inp = sliders.nth(k)
            if not inp.is_visible():  # e.g. the cosine offset s, shown only with the cosine schedule
                hidden.append(name)
                continue
            lo, hi, v = (float(inp.evaluate(f"i => i.{a}")) for a in ("min", "max", "value"))
            to = lo + (0.25 if (v - lo) > 0.5 * (hi - lo) else 0.75) * (hi - lo)
            before = box.evaluate(SNAPSHOT)
            inp.evaluate(SET_RANGE, to)
            page.evaluate(PAINTED)
            after = box.evaluate(SNAPSHOT)
            if after["figure"] != before["figure"]:
                moved_figure.append(name)
            elif after["text"] == before["text"]:
                dead.append(name)
            inp.evaluate(SET_RANGE, v)  # back, so that the next slider starts from the page's settings
            page.evaluate(PAINTED)
            key, back = ("ArrowLeft", "ArrowRight") if v >= hi else ("ArrowRight", "ArrowLeft")
            was, before = inp.evaluate(READ_SLIDER), box.evaluate(SNAPSHOT)
            inp.focus()
            page.keyboard.press(key)
            page.evaluate(PAINTED)
            now, after = inp.evaluate(READ_SLIDER), box.evaluate(SNAPSHOT)
            if now["value"] == was["value"]:
                stuck.append(name)
            elif after == before and now["text"] == was["text"]:
                unread.append(name)
            if now["value"] != was["value"]:
                page.keyboard.press(back)
                page.evaluate(PAINTED)
        print(f"  sliders {g['sliders']} in {g['label'][:40]!r}: {moved_figure} change the figure"
              + (f", {hidden} hidden" if hidden else ""))
        problems += [f"slider {n!r} in {g['label']!r} changes nothing" for n in dead]
        problems += [f"slider {n!r} in {g['label']!r}: an arrow key does not move it" for n in stuck]
        problems += [f"slider {n!r} in {g['label']!r}: an arrow key moves it, but nothing it shows changes" for n in unread if n not in dead]
        if not moved_figure:
            problems.append(f"no slider in {g['label']!r} changes the figure ({g['sliders']})")
    return problems


# A slider's value, and what it reads to a screen reader.
READ_SLIDER = """(inp) => ({value: inp.value, text: inp.getAttribute("aria-valuetext")})"""

# axe-core's serious and critical violations, one per element: {id, impact, help, target}. opts: axe.run's options.
AXE_RUN = """async (opts) => {
  const r = await axe.run(document, Object.assign({resultTypes: ["violations"]}, opts));
  const out = [];
  r.violations.forEach(v => v.nodes.forEach(n => {
    const impact = n.impact || v.impact;
    if (impact === "serious" || impact === "critical") out.push({id: v.id, impact: impact, help: v.help, target: n.target.join(" ")});
  }));
  return out;
}"""

# Violations in markup that the theme (pydata-sphinx-theme, sphinx-book-theme) writes and the book does not own:
# (rule, the element's selector as axe names it) -> why it is not fixed here. Everything else fails the page.
AXE_THEIRS: dict[tuple[str, str], str] = {}


def check_axe(page: Page, theme: str, rules: list[str] | None = None) -> list[str]:
    """Run axe-core on the page as it is (the theme set); the violations that count, as problems."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(AXE_RUN, {"runOnly": {"type": "rule", "values": rules}} if rules else {})
    theirs = [f for f in found if (f["id"], f["target"]) in AXE_THEIRS]
    if theirs:
        print(f"  note: {len(theirs)} axe violation(s) of the theme's own markup ({theme}), not failed: "
              f"{sorted({f['id'] + ' ' + f['target'] for f in theirs})}")
    print(f"  axe-core ({theme}{', ' + ', '.join(rules) if rules else ''}): {len(found) - len(theirs)} serious or critical violation(s)")
    return [f"axe ({theme}): {f['id']} ({f['impact']}) at {f['target']}: {f['help']}" for f in found if f not in theirs]


# Switch the page's theme as pydata-sphinx-theme's button does: the mode in localStorage, data-mode and
# data-theme on <html> (what its CSS and our widgets follow).
SET_THEME = """(mode) => {
  localStorage.setItem("mode", mode);
  localStorage.setItem("theme", mode);
  document.documentElement.dataset.mode = mode;
  document.documentElement.dataset.theme = mode;
}"""


def check_dark(page: Page, shot: Path | None) -> list[str]:
    """The dark theme: a screenshot (beside the light one), and axe's colour contrast there; then back to light."""
    page.evaluate(SET_THEME, "dark")
    page.evaluate(PAINTED)
    page.wait_for_timeout(200)  # the widgets redraw their canvases at the next frame
    if shot is not None:
        page.screenshot(path=str(shot.with_name(shot.stem + "_dark.png")), full_page=True)
    problems = check_axe(page, "dark", ["color-contrast"])
    page.evaluate(SET_THEME, "light")
    page.evaluate(PAINTED)
    return problems


# The live samplers (chapters 6, 8 and 10): each is tagged so that Python can find it again.
LIVE = """() => Array.from(document.querySelectorAll(".ddpm-live")).map((e, i) => {
  e.setAttribute("data-check-live", i);
  const c = e.querySelector("canvas");
  e.__before = c ? c.toDataURL() : null;
  return {id: e.id, canvas: !!c, button: Array.from(e.querySelectorAll("button")).some(b => b.textContent.trim() === "sample")};
})"""

# True once the live sampler's canvas differs from before its run, or the run failed.
LIVE_MOVED = """(i) => {
  const e = document.querySelector('[data-check-live="' + i + '"]');
  return e.getAttribute("data-state") === "error" || e.querySelector("canvas").toDataURL() !== e.__before;
}"""


def check_live(page: Page, timeout_ms: int = 30_000) -> list[str]:
    """Press *sample* on every live sampler: its canvas must start to change, with no error. A guided one
    (chapter 10) first gets a digit and a guidance weight (browser.set_guidance), and its run must finish with them."""
    problems = []
    for i, x in enumerate(page.evaluate(LIVE)):
        if not (x["canvas"] and x["button"]):
            problems.append(f"live sampler {x['id']} did not mount (canvas {x['canvas']}, sample button {x['button']})")
            continue
        box = page.locator(f'[data-check-live="{i}"]')
        guided = box.locator(".ddpml-guided").count() > 0
        if guided:
            problems += [f"live sampler {x['id']}: {p}" for p in set_guidance(box, *GUIDE)]
        box.get_by_role("button", name="sample", exact=True).click()
        try:
            page.wait_for_function(LIVE_MOVED, arg=i, timeout=timeout_ms)
            if guided:  # the run must end, and say that it drew the digit chosen with the w chosen
                page.wait_for_function(LIVE_ENDED, arg=i, timeout=timeout_ms)
        except Exception:
            problems.append(f"live sampler {x['id']}: pressing sample changed nothing within {timeout_ms / 1000:.0f} s")
            continue
        state = box.get_attribute("data-state")
        print(f"  live {'guided ' if guided else ''}sampler {x['id'][:24]}: sample pressed, the canvas moves (state {state})")
        if state == "error":
            problems.append(f"live sampler {x['id']}: the run failed: {box.inner_text()[-200:]!r}")
        elif guided and (box.get_attribute("data-label"), float(box.get_attribute("data-w") or "nan")) != GUIDE:
            problems.append(f"live sampler {x['id']}: digit {GUIDE[0]} and w = {GUIDE[1]} were chosen, but the run drew digit "
                            f"{box.get_attribute('data-label')} with w = {box.get_attribute('data-w')}")
    return problems


# True once a live sampler's run has ended, done or failed.
LIVE_ENDED = """(i) => ["done", "error"].includes(document.querySelector('[data-check-live="' + i + '"]').getAttribute("data-state"))"""

GUIDE = ("3", 3.0)  # the digit and the guidance weight w that a guided sampler is set to


REFRESH = re.compile(r"""<meta\s+http-equiv=["']?refresh""", re.IGNORECASE)


def check_redirect(page: Page, url: str) -> list[str]:
    """A page that only redirects (Jupyter Book's root index.html): it must arrive at a local page that loads."""
    page.goto(url, wait_until="load")
    try:
        page.wait_for_url(lambda u: u != url, timeout=5_000)
        page.wait_for_load_state("load")
    except Exception:
        return ["a redirect page that does not redirect within 5 s"]
    print(f"  redirects to {page.url}")
    return []


def check_page(page: Page, url: str, shot: Path | None) -> list[str]:
    """Load one page and run every check on it; returns its problems (console errors are collected by the caller)."""
    response = page.goto(url, wait_until="load")
    problems = [] if response is None or response.ok else [f"HTTP {response.status} for the page itself"]
    try:
        page.wait_for_load_state("networkidle", timeout=10_000)
    except Exception:  # a page that keeps polling: the checks below still run
        problems.append("the network never went idle (10 s)")
    problems += check_math(page)
    problems += check_images(page)
    problems += check_errors(page)
    if shot is not None:
        page.screenshot(path=str(shot), full_page=True)
    problems += check_axe(page, "light")
    problems += check_dark(page, shot)
    problems += check_sliders(page)
    problems += check_live(page)
    return problems


def check_site(root: Path, shots: Path | None, chromium: str | None = None) -> dict[str, list[str]]:
    """Check every page under ``root``; returns {page: [problems]} for all pages (empty lists when fine)."""
    if not AXE.is_file():
        raise SystemExit(f"{AXE} is missing: run `npm ci` in the repository root (package.json pins axe-core)")
    server, base = serve(root)
    report: dict[str, list[str]] = {}
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = launch(pw, chromium)
            context = browser.new_context(viewport=VIEWPORT)
            for path in pages(root):
                rel = path.relative_to(root).as_posix()
                print(rel)
                page = context.new_page()
                errors, blocked, failed = [], [], []
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("response", lambda r, failed=failed: failed.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
                keep_local(page, base, blocked)
                shot = shots / (rel.removesuffix(".html").replace("/", "_") + ".png") if shots is not None else None
                try:
                    if REFRESH.search(path.read_text(errors="replace")[:2000]):
                        problems = check_redirect(page, base + rel)  # the page it leads to is checked as itself
                    else:
                        problems = check_page(page, base + rel, shot)
                except Exception as e:  # a check that cannot run is a problem of the page, not a crash of the checker
                    problems = [f"could not check the page: {type(e).__name__}: {str(e).splitlines()[0]}"]
                theirs = [e for e in errors if any(n in e for n in NOT_OURS)]
                if theirs:
                    print(f"  note: {len(theirs)} known error(s) of Jupyter Book's own scripts, not failed: {sorted(set(theirs))}")
                problems += [f"console error: {e[:200]}" for e in errors if e not in theirs]
                problems += [f"request left the local server: {u}" for u in blocked]
                problems += [f"failed request: {f}" for f in failed]
                for p in problems:
                    print("  PROBLEM:", p)
                report[rel] = problems
                page.close()
            browser.close()
    finally:
        server.shutdown()
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path, help="the built book's HTML folder, e.g. _build/fast/_build/html")
    ap.add_argument("--shots", type=Path, help="save a full-page screenshot of each page here")
    ap.add_argument("--report", type=Path, help="write {page: [problems]} here as JSON")
    ap.add_argument("--chromium", help="the Chromium to drive (default: $CHROMIUM, /usr/bin/chromium, or one on PATH)")
    args = ap.parse_args()
    if not (args.html / "index.html").is_file() and not pages(args.html):
        print(f"{args.html}: no HTML pages here; build the book first (make book-fast)", file=sys.stderr)
        return 2
    report = check_site(args.html.resolve(), args.shots, args.chromium)
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))
    bad = {p: v for p, v in report.items() if v}
    where = f"; screenshots in {args.shots}" if args.shots else ""
    if bad:
        print(f"FAILED: {sum(map(len, bad.values()))} problem(s) on {len(bad)} of {len(report)} pages{where}")
        return 1
    print(f"all {len(report)} pages passed{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
