"""The built book as one PDF: each page printed by Chromium, in the table of contents' order, then merged.

    .venv/bin/python tools/book_pdf.py _build/html                 # writes _build/html/ddpm-edu.pdf
    make pdf [HTML=_build/html]                                     # the same

Every page of ``_toc.yml`` is served on 127.0.0.1 with the rest of the network blocked (as
``make check-html`` does, with the helpers of ``tests/browser/browser.py``), printed with Playwright's
``page.pdf`` once MathJax has typeset it and its images have loaded, and the pages are merged with
pypdf, with one bookmark per page. Before a page is printed, what a sheet of paper cannot do is made
into something it can:

- the sidebars, the header with its launch buttons and the footer's navigation are hidden;
- each GIF becomes a strip of frames of the animation, evenly spaced from the first to the last;
- the folded boxes open (the derivations of the tolerances, and the answers of "Predict, then
  check"); hidden code stays hidden, and the install cell with it;
- the schedule explorers and live samplers show their first state, with a line that names the
  page of the online book where they run;
- links to other pages point to the online book (``https://OWNER.github.io/NAME/``, from
  ``_config.yml``'s repository, or ``--site``).

A page that fails to load, leaves TeX untypeset or reaches off the local server fails the run.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
from pathlib import Path

import yaml
from PIL import Image, ImageSequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from browser import keep_local, launch, serve  # noqa: E402  (tests/browser/browser.py)

PDF_NAME = "ddpm-edu.pdf"
STRIP_FRAMES, STRIP_COLUMNS = 8, 4  # a GIF prints as 8 of its frames, 4 to a row

# Paper: A4 with these margins leaves a column of 182 mm, which Chromium lays out as PAPER_PX CSS pixels.
MARGIN_MM = {"top": 16, "bottom": 18, "left": 14, "right": 14}
PAPER_PX = round((210 - MARGIN_MM["left"] - MARGIN_MM["right"]) / 25.4 * 96)

# Print styles on top of the theme's own (@media print, emulated; the theme prints the page's title,
# then a list of its sections, then the article): no chrome around the article; hidden code hidden,
# summaries of opened boxes gone; wide code wrapped, not cut; nothing half-way through a fade.
PRINT_CSS = """
.bd-header, .bd-header-article, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .bd-footer-article,
.prev-next-area, .header-article-items, .skip-link, .sidebar-toggle, #pst-back-to-top,
.tag_hide-input > details, details.hide > summary, .sd-summary-state-marker { display: none !important; }
#jb-print-docs-body > h1 { text-align: left !important; font-size: 2.4em !important; }
.bd-main .bd-content, .bd-main .bd-content .bd-article-container, .bd-container__inner, .bd-page-width
  { max-width: none !important; margin-left: 0 !important; padding-left: 0 !important; }
.pst-scrollable-table-container, .table-wrapper, .cell_output, .output { overflow: visible !important; }
pre { white-space: pre-wrap !important; word-break: break-word; font-size: 12px !important; }
img, figure, canvas, tr, h1, h2, h3, h4, .cell_input, .cell_output .output { break-inside: avoid; }
.ddpm-print-note { font-style: italic; font-size: 0.9em; margin: 0.4em 0 1em; }
*, *::before, *::after { animation: none !important; transition: none !important; }  /* myst-nb fades opened cells in */
"""

# Open the folded boxes, point links to other pages at the online book, and add a line under every
# explorer and live sampler. Called as page.evaluate(PREPARE, {base, site}): the local server's root
# URL and the online book's, both ending in "/".
PREPARE = r"""({base, site}) => {
  const here = location.href.split("#")[0], online = site + here.slice(base.length);
  const title = document.querySelector(".bd-article h1"), printed = document.querySelector("#jb-print-docs-body > h1");
  if (title && printed) printed.textContent = title.textContent.replace(/#$/, "");  // with the chapter's number
  document.querySelectorAll("details").forEach(d => { if (!d.closest(".tag_hide-input")) d.open = true; });
  document.querySelectorAll(".bd-article a[href]").forEach(a => {
    const target = new URL(a.getAttribute("href"), here).href;
    if (target.startsWith(base) && target.split("#")[0] !== here) a.href = site + target.slice(base.length);
  });
  const column = (document.querySelector(".bd-article") || document.body).clientWidth;
  document.querySelectorAll(".bd-article table").forEach(t => {  // a table wider than the paper shrinks to fit
    if (t.scrollWidth > column) t.style.zoom = column / t.scrollWidth;
  });
  const notes = Array.from(document.querySelectorAll(".ddpm-explorer, .ddpm-live"));
  notes.forEach(e => {
    const p = document.createElement("p"), a = document.createElement("a");
    p.className = "ddpm-print-note";
    a.href = a.textContent = online;
    p.append(e.classList.contains("ddpm-live") ? "This sampler runs, in your browser, on the online book's page: "
                                               : "These sliders move on the online book's page: ", a);
    e.after(p);
  });
  return notes.length;
}"""

# Wait until the page is ready to print: MathJax has typeset, fonts and every image have loaded.
# Returns what is left raw or broken, for the caller to report.
READY = r"""async () => {
  const later = (ms) => new Promise(r => setTimeout(() => r("timeout"), ms));
  const mj = window.MathJax && MathJax.startup && MathJax.startup.promise;
  const waited = mj ? await Promise.race([mj.then(() => "done"), later(30000)]) : "none";
  await document.fonts.ready;
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = "eager"; });
  await Promise.race([Promise.all(imgs.map(i => i.decode().catch(() => null))), later(20000)]);
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), raw = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest(skip) && /\\\(|\\\[|\$\$/.test(n.textContent)) raw.push(n.textContent.trim().slice(0, 80));
  }
  return {mathjax: waited, raw: raw, broken: imgs.filter(i => !i.naturalWidth).map(i => (i.getAttribute("src") || "").slice(0, 80)),
          title: (document.querySelector(".bd-article h1") || document.querySelector("h1") || {textContent: document.title})
                 .textContent.replace(/#$/, "").trim()};
}"""

# Every GIF of the page: its index among the page's images and its URL (a file, or a data: URL).
GIFS = r"""() => Array.from(document.images).map((i, k) => ({k: k, src: i.currentSrc || i.src}))
  .filter(g => /^data:image\/gif/.test(g.src) || /\.gif([?#].*)?$/i.test(g.src))"""

# Replace image k by a PNG strip of `columns` frames to a row, each as wide as the GIF was shown, or
# narrower, so that the strip fits the column.
SWAP = r"""([k, url, columns]) => {
  const img = document.images[k], shown = img.getBoundingClientRect().width || img.naturalWidth;
  const column = (img.closest(".bd-article") || document.body).clientWidth;
  img.removeAttribute("srcset");
  img.style.width = Math.min(columns * shown, column) + "px";
  img.style.height = "auto";
  img.src = url;
  return img.decode().then(() => true, () => false);
}"""


def toc_pages(toc: Path) -> list[str]:
    """The files of ``_toc.yml`` (Jupyter Book 1.x), in reading order: the root, then every part's
    chapters, each followed by its sections (e.g. ``["book/index", "book/01_goal", ...]``)."""
    data = yaml.safe_load(toc.read_text())
    if not isinstance(data, dict) or "root" not in data:
        raise SystemExit(f"{toc}: not a Jupyter Book table of contents (no `root:`)")

    def walk(entries: list[dict]) -> list[str]:
        out = []
        for e in entries or []:
            if "file" in e:
                out.append(str(e["file"]))
            out += walk(e.get("sections", []))
        return out

    return [str(data["root"])] + walk(data.get("chapters", [])) + [
        f for part in data.get("parts", []) for f in walk(part.get("chapters", []))]


def gif_strip(gif: bytes, frames: int = STRIP_FRAMES, columns: int = STRIP_COLUMNS) -> bytes:
    """A PNG of ``frames`` frames of an animated GIF, evenly spaced from the first to the last, in rows
    of ``columns`` with a white gap between them (a GIF of fewer frames gives all of them)."""
    with Image.open(io.BytesIO(gif)) as im:
        all_frames = [f.convert("RGB") for f in ImageSequence.Iterator(im)]
    n, m = len(all_frames), min(frames, len(all_frames))
    picks = [round(k * (n - 1) / max(m - 1, 1)) for k in range(m)]  # the first, ..., the last
    w, h = all_frames[0].size
    gap, cols = max(2, w // 32), min(columns, len(picks))
    rows = -(-len(picks) // cols)
    sheet = Image.new("RGB", (cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap), "white")
    for j, k in enumerate(picks):
        sheet.paste(all_frames[k], ((j % cols) * (w + gap), (j // cols) * (h + gap)))
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def gif_bytes(src: str, base: str, html: Path) -> bytes:
    """The bytes of a GIF that the page shows: from its data: URL, or its file under the served folder."""
    if src.startswith("data:"):
        return base64.b64decode(src.split(",", 1)[1])
    if not src.startswith(base):
        raise ValueError(f"a GIF from outside the book: {src[:120]}")
    return (html / src[len(base):].split("#")[0].split("?")[0]).read_bytes()


def site_url(config: Path) -> str:
    """The online book's address, https://OWNER.github.io/NAME/, from ``repository.url`` in ``_config.yml``."""
    sys.path.insert(0, str(ROOT / "tools"))
    import set_repository

    return f"https://{set_repository.pages_site(set_repository.configured(config.parent))}/"


def prepare(page, base: str, site: str, html: Path) -> dict:
    """Wait for the page to be ready, then make it printable (strips, open boxes, notes, links)."""
    ready = page.evaluate(READY)
    for g in page.evaluate(GIFS):
        strip = base64.b64encode(gif_strip(gif_bytes(g["src"], base, html))).decode()
        if not page.evaluate(SWAP, [g["k"], "data:image/png;base64," + strip, STRIP_COLUMNS]):
            ready["broken"].append(f"the strip of {g['src'][:60]}")
    page.add_style_tag(content=PRINT_CSS)
    ready["notes"] = page.evaluate(PREPARE, {"base": base, "site": site})
    return ready


def print_page(page, rel: str, base: str, site: str, html: Path, out: Path) -> tuple[str, list[str]]:
    """Load one page, make it printable and print it to ``out``; returns (its title, its problems)."""
    response = page.goto(base + rel, wait_until="load")
    problems = [] if response is None or response.ok else [f"{rel}: HTTP {response.status}"]
    try:
        page.wait_for_load_state("networkidle", timeout=10_000)
    except Exception:
        pass  # a page that keeps polling still prints
    ready = prepare(page, base, site, html)
    problems += [f"{rel}: raw TeX left: {r!r}" for r in ready["raw"]]
    problems += [f"{rel}: broken image {b!r}" for b in ready["broken"]]
    if ready["mathjax"] == "timeout":
        problems.append(f"{rel}: MathJax had not finished after 30 s")
    margin = {side: f"{mm}mm" for side, mm in MARGIN_MM.items()}
    page.pdf(path=str(out), format="A4", margin=margin, print_background=True)
    print(f"{rel}: {ready['title']!r}" + (f", {ready['notes']} interactive figure(s)" if ready["notes"] else ""))
    return ready["title"], problems


def print_book(html: Path, files: list[str], site: str, workdir: Path) -> tuple[list[Path], list[str], Path, list[str]]:
    """Print each page of ``files`` (relative to ``html``, without .html) into ``workdir``, then the
    page numbers for all of them; returns (the PDFs, their titles, the numbers' PDF, the problems)."""
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader

    server, base = serve(html)
    pdfs, titles, problems, blocked = [], [], [], []
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": PAPER_PX, "height": 1200})  # as wide as the paper's column
            page.emulate_media(media="print")
            keep_local(page, base, blocked)
            for k, f in enumerate(files):
                rel = f + ".html"
                if not (html / rel).is_file():
                    problems.append(f"{rel}: listed in the table of contents, but not built")
                    continue
                title, found = print_page(page, rel, base, site, html, workdir / f"{k:03d}.pdf")
                problems += found + [f"{rel}: a request left the local server: {u}" for u in blocked]
                blocked.clear()
                pdfs.append(workdir / f"{k:03d}.pdf")
                titles.append(title)
            n = sum(len(PdfReader(p).pages) for p in pdfs)
            numbers = page_numbers(page, n, workdir / "numbers.pdf")
            browser.close()
    finally:
        server.shutdown()
    return pdfs, titles, numbers, problems


# One A4 sheet per page number, the number centred in the bottom margin: stamped onto the merged pages.
NUMBERS = """<!doctype html><meta charset=utf-8><style>
@page { size: A4; margin: 0; } body { margin: 0; }
div { height: 297mm; position: relative; break-after: page; }
span { position: absolute; bottom: 7mm; width: 100%; text-align: center; font: 9pt sans-serif; color: #555; }
</style>"""


def page_numbers(page, n: int, out: Path) -> Path:
    """A PDF of ``n`` A4 pages that carry only their number, printed by ``page``'s Chromium."""
    page.set_content(NUMBERS + "".join(f"<div><span>{k}</span></div>" for k in range(1, n + 1)))
    page.pdf(path=str(out), format="A4", margin={"top": "0", "bottom": "0", "left": "0", "right": "0"})
    return out


def merge(pdfs: list[Path], titles: list[str], out: Path, title: str, numbers: Path | None = None) -> int:
    """Merge the page PDFs into ``out``, with a bookmark at the start of each page and, from ``numbers``,
    a page number on each sheet; returns the page count."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for pdf, name in zip(pdfs, titles):
        start = len(writer.pages)
        writer.append(str(pdf))
        writer.add_outline_item(title=name, page_number=start)
    if numbers is not None:
        for sheet, number in zip(writer.pages, PdfReader(numbers).pages):
            sheet.merge_page(number)
    writer.add_metadata({"/Title": title})
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fh:
        writer.write(fh)
    return len(writer.pages)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path, help="the built book's HTML folder, e.g. _build/html")
    ap.add_argument("--out", type=Path, help=f"the PDF to write (default: HTML/{PDF_NAME})")
    ap.add_argument("--toc", type=Path, default=ROOT / "_toc.yml", help="the table of contents (default: _toc.yml)")
    ap.add_argument("--site", help="the online book's URL, for links and interactive figures (default: from _config.yml)")
    args = ap.parse_args(argv)
    if not args.html.is_dir():
        print(f"{args.html}: no such folder; build the book first (make book)", file=sys.stderr)
        return 2
    config = args.toc.with_name("_config.yml")
    site = (args.site or site_url(config)).rstrip("/") + "/"
    out = args.out or args.html / PDF_NAME
    with tempfile.TemporaryDirectory() as tmp:
        pdfs, titles, numbers, problems = print_book(args.html.resolve(), toc_pages(args.toc), site, Path(tmp))
        for p in problems:
            print("PROBLEM:", p)
        if problems:
            print(f"FAILED: {len(problems)} problem(s); no PDF written", file=sys.stderr)
            return 1
        book_title = yaml.safe_load(config.read_text()).get("title", "") if config.is_file() else ""
        n = merge(pdfs, titles, out, book_title, numbers)
    print(f"{out}: {n} pages from {len(pdfs)} pages of the book")
    return 0


if __name__ == "__main__":
    sys.exit(main())
