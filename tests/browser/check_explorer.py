"""Drive the schedule explorers of a page in headless Chromium with the network blocked (issue 10).

The deeper companion of ``check_html.py`` (which ``make check-html`` runs over every page): not part
of ``make test``. It needs Chromium (found as ``make check-html`` finds it, see browser.py) and
Playwright, which requirements.txt installs into .venv:

    .venv/bin/python tests/browser/check_explorer.py --shots /tmp/explorer_shots
    .venv/bin/python tests/browser/check_explorer.py --page _build/html/book/04_schedules.html --root _build/html

Without ``--page`` it writes a page with three explorers (the settings of chapters 3, 4 and 5). It
serves the page's folder on 127.0.0.1 and blocks every other request. For every explorer on the
page it moves every slider and every kind button (one slider by a real mouse drag, the others by
input events, as a drag sends them) and checks that the curves, the readouts and the noised image
change, that the image equals ddpm_edu's x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps
pixel for pixel (within 1 of 255), that beta_1 > beta_T shows a message and recovers, and that a
schedule which does not finish noising is flagged, and that one arrow key moves each slider.
Exits 1 on the first failure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from browser import NOT_OURS, Failed, check, keep_local, launch, serve  # tests/browser/browser.py, beside this file
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]

WRITE_PAGE = """
import sys
from ddpm_edu.web.explorer import schedule_explorer
parts = [
    "<h2>chapter 3: a constant step</h2>", schedule_explorer(constant=True, beta_T=0.01, controls=["beta_T", "t"]).to_html(),
    "<h2>chapter 4: the schedules</h2>", schedule_explorer().to_html(),
    "<h2>chapter 5: the closed form</h2>", schedule_explorer(controls=["t"]).to_html(),
]
open(sys.argv[1], "w").write("<!doctype html><meta charset=utf-8><title>explorers</title><body>" + "".join(parts))
"""

# Reads [{config, settings, pixels}] on stdin; prints the largest |browser - ddpm_edu| pixel difference of each.
VERIFY_PIXELS = """
import json, sys
import numpy as np
from ddpm_edu.forward import q_sample
from ddpm_edu.data.images import to_uint8
from ddpm_edu.web.explorer import ScheduleExplorer
out = []
for item in json.load(sys.stdin):
    ex = ScheduleExplorer(config=item["config"], **item["settings"])
    x0, eps = ex.embedded()
    want = to_uint8(q_sample(x0[None], ex.t, eps[None], ex.schedule())[0]).astype(int)   # (H, W, 3)
    got = np.array(item["pixels"], dtype=int).reshape(want.shape[0], want.shape[1], 4)[..., :3]
    out.append(int(np.abs(got - want).max()))
print(json.dumps(out))
"""

SNAPSHOT = """(box) => {
  const cv = (name) => box.querySelector(`canvas[data-plot=${name}]`);
  const vis = (e) => e.style.display !== "none";
  const [msg, warn] = [box.querySelector(".dx-err"), box.querySelector(".dx-warn")];
  return {
    plots: ["beta", "alpha_bar", "snr"].map((n) => cv(n).toDataURL()), image: cv("image").toDataURL(), hist: cv("hist").toDataURL(),
    table: box.querySelector("table").innerText, msg: vis(msg) ? msg.textContent : "", warn: vis(warn) ? warn.textContent : "",
    settings: JSON.parse(box.getAttribute("data-settings")),
  };
}"""

PIXELS = """(box) => { const c = box.querySelector("canvas[data-plot=image]");
  return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data); }"""

# Move a slider the way a drag does: several input events, then a change event.
SET_SLIDER = """(box, [name, to]) => {
  const inp = box.querySelector(`input[data-name="${name}"]`);
  const from = parseFloat(inp.value);
  for (let k = 1; k <= 5; k++) { inp.value = from + (to - from) * k / 5; inp.dispatchEvent(new Event("input", {bubbles: true})); }
  inp.dispatchEvent(new Event("change", {bubbles: true}));
}"""


def beta_rung(v: float) -> int:
    """The position of beta = v on a beta slider: its index among the numbers with two significant digits from
    1e-6 up, 90 per decade (explorer.js's ladder)."""
    m, e = f"{v:.1e}".split("e")
    return (int(e) + 6) * 90 + round(float(m) * 10) - 10


def wait_painted(page: Page) -> None:
    page.wait_for_timeout(150)  # two animation frames


def configs_on(page: Page) -> dict[str, dict]:
    """Each explorer's embedded config, by root id, read from its inline script."""
    scripts = page.eval_on_selector_all("script", "ss => ss.map(s => s.textContent)")
    out = {}
    for text in scripts:
        if "DDPMExplorer.staticModel(" not in text:
            continue
        root = text.rsplit('document.getElementById("', 1)[1].split('"', 1)[0]
        out[root] = json.loads(text.rsplit("DDPMExplorer.staticModel(", 1)[1].rsplit("));", 1)[0].replace("<\\/", "</"))["config"]
    return out


def exercise(page: Page, i: int, box, config: dict, pixel_checks: list, real_drag: bool) -> None:
    snap = lambda: box.evaluate(SNAPSHOT)  # noqa: E731
    names = box.locator("input[type=range]").evaluate_all("xs => xs.map(x => x.dataset.name)")
    kinds = box.locator("input[type=radio]").evaluate_all("xs => xs.map(x => x.value)")
    print(f"explorer {i}: sliders {names}, kinds {kinds}")
    before = snap()
    check(all(p.startswith("data:image/png") for p in before["plots"]) and "ᾱ_T" in before["table"], "curves and readouts drawn")
    pixel_checks.append({"config": config, "settings": before["settings"], "pixels": box.evaluate(PIXELS)})

    def moved(name: str, action) -> None:
        old = snap()
        action()
        wait_painted(page)
        new = snap()
        check(new["settings"] != old["settings"], f"{name}: the settings change ({old['settings']} -> {new['settings']})")
        check(all(a != b for a, b in zip(new["plots"], old["plots"])), f"{name}: all three curves (or their t marker) redraw")
        check(new["table"] != old["table"], f"{name}: the readouts change")
        check(new["image"] != old["image"] and new["hist"] != old["hist"], f"{name}: the noised image and its histogram change")
        pixel_checks.append({"config": config, "settings": new["settings"], "pixels": box.evaluate(PIXELS)})

    for name in names:
        if name == "s":
            continue  # shown with the cosine kind, below
        if real_drag and name in ("beta_T", "beta"):
            handle = box.locator(f'input[data-name="{name}"]')
            handle.scroll_into_view_if_needed()  # on a long page (a built chapter) the mouse only reaches what is in view
            bb = handle.bounding_box()
            def drag(bb=bb):
                thumb = float(handle.evaluate("i => (i.value - i.min) / (i.max - i.min)"))
                page.mouse.move(bb["x"] + bb["width"] * thumb, bb["y"] + bb["height"] / 2)
                page.mouse.down()
                step = 0.01 if name == "beta_T" else -0.01  # beta_T up, so it stays above beta_1; a constant beta down
                for k in range(1, 11):
                    page.mouse.move(bb["x"] + bb["width"] * min(0.97, thumb + step * k), bb["y"] + bb["height"] / 2)
                page.mouse.up()
            moved(f"{name} (mouse drag)", drag)
        else:
            lo, hi = (float(box.locator(f'input[data-name="{name}"]').get_attribute(a)) for a in ("min", "max"))
            to = lo + {"beta_1": 0.45, "beta_T": 0.75, "T": 0.6}.get(name, 0.3) * (hi - lo)  # keeps beta_1 < beta_T
            moved(name, lambda name=name, to=to: box.evaluate(SET_SLIDER, [name, to]))
    for kind in kinds:
        if kind != snap()["settings"]["kind"]:
            moved(f"kind {kind}", lambda kind=kind: box.locator(f'input[type=radio][value="{kind}"]').check())
        if kind == "cosine" and "s" in names:
            moved("s", lambda: box.evaluate(SET_SLIDER, ["s", 0.05]))
    if kinds:
        box.locator('input[type=radio][value="quadratic"]').check()
    if "beta_1" in names and "beta_T" in names:
        box.evaluate(SET_SLIDER, ["beta_1", beta_rung(1e-4)])
        box.evaluate(SET_SLIDER, ["beta_T", beta_rung(0.02)])
        wait_painted(page)
        flagged = snap()
        check("does not finish noising" in flagged["warn"], "quadratic 1e-4 -> 0.02 is flagged as not finishing")
        check("not comparable" in flagged["table"], "and its share of near-noise steps reads 'not comparable'")
        box.evaluate(SET_SLIDER, ["beta_1", beta_rung(0.1)])  # > beta_T
        wait_painted(page)
        bad = snap()
        check("needs beta_1 <= beta_T" in bad["msg"] and "—" in bad["table"], f"beta_1 > beta_T shows a message: {bad['msg']!r}")
        box.evaluate(SET_SLIDER, ["beta_1", beta_rung(1e-4)])
        wait_painted(page)
        check(snap()["msg"] == "", "and the message goes once beta_1 <= beta_T again")
        box.locator('input[type=radio][value="linear"]').check()
    if "beta" in names:  # chapter 3's constant step: too slow, then too fast
        box.evaluate(SET_SLIDER, ["beta", beta_rung(1e-4)])
        wait_painted(page)
        check("does not finish noising" in snap()["warn"], "a constant beta = 1e-4 (sigma = 0.01) is flagged as not finishing")
        box.evaluate(SET_SLIDER, ["beta", beta_rung(0.01)])
        wait_painted(page)
        check(snap()["warn"] == "", "a constant beta = 0.01 (sigma = 0.1) finishes")
    for name in names:  # the keyboard alone: one arrow key moves each visible slider, and what it reads
        inp = box.locator(f'input[data-name="{name}"]')
        if not inp.is_visible():
            continue
        old, said = snap()["settings"], inp.get_attribute("aria-valuetext")
        inp.focus()
        page.keyboard.press("ArrowRight")
        wait_painted(page)
        check(snap()["settings"] != old and inp.get_attribute("aria-valuetext") != said,
              f"{name}: one ArrowRight moves it ({said} -> {inp.get_attribute('aria-valuetext')})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="a Python with ddpm_edu")
    ap.add_argument("--page", type=Path, help="an HTML page to check (default: write one with three explorers)")
    ap.add_argument("--root", type=Path, help="the folder to serve, which holds --page (default: the page's folder); "
                    "give a built book's _build/html so that the page gets its theme")
    ap.add_argument("--shots", type=Path, help="save screenshots here")
    ap.add_argument("--chromium", help="the Chromium to drive (default: $CHROMIUM, /usr/bin/chromium, or one on PATH)")
    args = ap.parse_args()
    env_cwd = dict(cwd=ROOT, capture_output=True, text=True, timeout=600)

    with tempfile.TemporaryDirectory() as tmp:
        page_path = args.page.resolve() if args.page else Path(tmp) / "explorers.html"
        if not args.page:
            subprocess.run([args.python, "-c", WRITE_PAGE, str(page_path)], check=True, **env_cwd)
        folder = args.root.resolve() if args.root else page_path.parent
        server, base = serve(folder)
        blocked: list[str] = []
        pixel_checks: list[dict] = []
        with sync_playwright() as pw:
            browser = launch(pw, args.chromium)
            page = browser.new_page(viewport={"width": 900, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            keep_local(page, base, blocked)
            page.goto(base + page_path.relative_to(folder).as_posix())
            page.wait_for_selector(".ddpmx")
            page.wait_for_timeout(500)  # the embedded PNGs decode
            boxes = page.locator(".ddpmx")
            n = boxes.count()
            try:
                check(n > 0, f"{n} explorer(s) on the page")
                configs = configs_on(page)
                check(len(configs) == n, "each explorer has its own element id and inline script")
                for i, root in enumerate(configs):
                    box = page.locator(f"#{root} .ddpmx")
                    if args.shots:
                        args.shots.mkdir(parents=True, exist_ok=True)
                        box.screenshot(path=str(args.shots / f"explorer{i}_initial.png"))
                    exercise(page, i, box, configs[root], pixel_checks, real_drag=(i == 0 or n == 1))
                    if args.shots:
                        box.screenshot(path=str(args.shots / f"explorer{i}_after.png"))
                diffs = json.loads(subprocess.run([args.python, "-c", VERIFY_PIXELS], input=json.dumps(pixel_checks), check=True, **env_cwd).stdout)
                check(max(diffs) <= 1, f"the image is ddpm_edu's x_t at all {len(diffs)} settings (largest pixel difference {max(diffs)})")
                theirs = [e for e in errors if any(n in e for n in NOT_OURS)]
                if theirs:
                    print("  note: errors of the page itself, not of the explorers:", theirs)
                check(len(errors) == len(theirs), f"no JavaScript errors {[e for e in errors if e not in theirs]}")
                check(not blocked, f"no request left the page's server (blocked: {blocked})")
            except Failed as e:
                print("FAILED:", e)
                return 1
            finally:
                browser.close()
                server.shutdown()
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
