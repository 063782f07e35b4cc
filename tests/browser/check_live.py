"""Press *sample* on the live samplers in headless Chromium with the network blocked (issue 13).

Not part of ``make test`` (it needs Chromium and Playwright; tests/test_live.py holds the JS to the
library under node). Run it with a Python that has Playwright, and ``--python`` one with ddpm_edu:

    /tmp/pw/bin/python tests/browser/check_live.py --python .venv/bin/python --shots /tmp/live_shots
    /tmp/pw/bin/python tests/browser/check_live.py --python .venv/bin/python \
        --page _build/html/book/08_sampling.html --root _build/html

Without ``--page`` it writes a page with the four samplers of the book (the trained 2-D toy, the
exact eps* of chapter 6, the digits, chapter 10's guided digits) next to onnxruntime-web's files in
``_static/ddpm_live/``, as the book build lays them out; a page given with ``--page`` needs at least one
of them. It serves the folder on 127.0.0.1 and aborts every other request. On each sampler it presses
*sample*, takes a screenshot mid-run and at the end, and checks that the run finished. On the digits it
runs DDIM with 25 steps for 16 digits with ``--seeds`` seeds, reads the grid back from the canvas, scores
those digits with ``ddpm_edu.eval.metrics.digits_score`` and compares with the Python sampler (same
model, same settings, as many digits); it prints the time per run. On the guided digits it does the same
for the digit ``--label`` with the guidance weight ``--w``, chosen in the page, and compares the fraction
that ``ddpm_edu.eval.metrics.class_score`` assigns to that digit with the Python sampler's
(``ddpm_edu.guidance.guided_model``). Exits 1 on the first failure. Uses the trained models of the cache
(not fast mode) unless DDPM_EDU_FAST=1 is set.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from browser import NOT_OURS, Failed, check, keep_local, serve, set_guidance  # tests/browser/browser.py, beside this file
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
FAST = os.environ.get("DDPM_EDU_FAST", "").strip().lower() in ("1", "true", "yes", "on")  # as ddpm_edu.lab.fastmode.fast()

WRITE_PAGE = """
import shutil, sys
from pathlib import Path
from ddpm_edu.training.config import load_config
from ddpm_edu.web.live import live_digits, live_toy
from ddpm_edu.web.ort import ORT_FILES, ort_dist
out = Path(sys.argv[1])
parts = ["<h2>the 2-D toy, trained MLP</h2>", live_toy().to_html(),
         "<h2>chapter 6: the exact eps*</h2>", live_toy(exact=True).to_html(),
         "<h2>the digits</h2>", live_digits().to_html(),
         "<h2>chapter 10: the guided digits</h2>", live_digits(load_config("digits-guided")).to_html()]
(out / "live.html").write_text("<!doctype html><meta charset=utf-8><title>live</title><body>" + "".join(parts))
(out / "_static/ddpm_live").mkdir(parents=True, exist_ok=True)
for f in ORT_FILES:
    shutil.copyfile(ort_dist() / f, out / "_static/ddpm_live" / f)
"""

# Reads {"digits": [[64 floats], ...], "n": n, "seed": s} and prints the browser's and Python's scores.
SCORE = """
import json, sys, torch
from ddpm_edu.training.build import build_schedule
from ddpm_edu.lab.modelcache import load_or_train
from ddpm_edu.training.config import load_config
from ddpm_edu.eval.metrics import digits_score
from ddpm_edu.sampling import ddim_sample
item = json.load(sys.stdin)
browser = digits_score(torch.tensor(item["digits"]).view(-1, 1, 8, 8))
cfg = load_config("digits")
model, s = load_or_train(cfg), build_schedule(cfg)
x = ddim_sample(model, (len(item["digits"]), 1, 8, 8), s, 25, 0.0, clip_x0=1.0, generator=torch.Generator().manual_seed(item["seed"]))
py = digits_score(x)
print(json.dumps({k: dict(confident=v.confident, se=v.confident_se, classes=v.classes_present, hist=v.histogram)
                  for k, v in (("browser", browser), ("python", py))}))
"""

# Reads {"digits": [[64 floats], ...], "label": y, "w": w, "seed": s} and prints the fraction of the browser's
# guided digits and of Python's (as many, same settings) that the classifier assigns to y.
GUIDED_SCORE = """
import json, sys, torch
from ddpm_edu.eval.metrics import class_score
from ddpm_edu.guidance import guided_model
from ddpm_edu.lab.modelcache import load_or_train
from ddpm_edu.sampling import ddim_sample
from ddpm_edu.training.build import build_schedule
from ddpm_edu.training.config import load_config
item = json.load(sys.stdin)
y, n = item["label"], len(item["digits"])
browser = class_score(torch.tensor(item["digits"]).view(-1, 1, 8, 8), y)
cfg = load_config("digits-guided")
model, s = load_or_train(cfg), build_schedule(cfg)
x = ddim_sample(guided_model(model, y, item["w"]), (n, 1, 8, 8), s, 25, 0.0, clip_x0=1.0,
                generator=torch.Generator().manual_seed(item["seed"]))
py = class_score(x, y)
print(json.dumps({k: dict(on_class=v.on_class, se=v.on_class_se) for k, v in (("browser", browser), ("python", py))}))
"""

# The digits on the grid canvas, read back: (n, 64) floats in [-1, 1] (one pixel of gap around each 8 x 8 cell).
READ_GRID = """(root) => {
  const c = root.querySelector("canvas[data-plot=digits]"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const side = 4, out = [];
  for (let b = 0; b < 16; b++) { const img = [];
    for (let r = 0; r < 8; r++) for (let q = 0; q < 8; q++) {
      const o = 4 * ((Math.floor(b / side) * 9 + 1 + r) * c.width + (b % side) * 9 + 1 + q); img.push(d[o] / 127.5 - 1); }
    out.push(img); }
  return out; }"""




MID_RUN = """([r, k]) => r.getAttribute('data-state') === 'error' ||
  parseInt((r.querySelector('.dl-status').textContent.match(/step (\\d+)/) || [0, 0])[1], 10) >= k"""


def press_and_wait(page: Page, root, shot: Path | None, mid_step: int, timeout_s: float = 120) -> dict:
    """Press *sample*, screenshot once the status passes step ``mid_step``, wait for the end; returns the root's data-*."""
    root.locator("button").click()
    if shot:
        page.wait_for_function(MID_RUN, arg=[root.element_handle(), mid_step], timeout=timeout_s * 1000, polling="raf")
        root.screenshot(path=str(shot.with_name(shot.stem + "_mid.png")))
    page.wait_for_function("r => ['done', 'error'].includes(r.getAttribute('data-state'))", arg=root.element_handle(),
                           timeout=timeout_s * 1000, polling=100)
    if shot:
        root.screenshot(path=str(shot.with_name(shot.stem + "_end.png")))
    return root.evaluate("r => Object.fromEntries(Array.from(r.attributes).map(a => [a.name, a.value]))") | {
        "status": root.locator(".dl-status").inner_text()}


def run_seeds(page: Page, box, seeds: int, what: str) -> tuple[list, list]:
    """DDIM-25 runs with seeds 0..seeds-1 on a digits sampler set up beforehand: the digits read back from the
    grid, and (wall, network) milliseconds per run."""
    box.locator('input[type=radio][value="ddim"]').check()
    grids, times = [], []
    for seed in range(seeds):
        box.locator('input[data-name="seed"]').fill(str(seed))
        box.locator('input[data-name="seed"]').dispatch_event("change")
        r = press_and_wait(page, box, None, 0)
        check(r["data-state"] == "done", f"{what} seed {seed}: DDIM-25 finished ({r['status']})")
        times.append((float(r["data-ms"]), float(r["data-net-ms"])))
        grids += box.evaluate(READ_GRID)
    print(f"  {what}, DDIM-25, 16 digits: wall {[round(t[0]) for t in times]} ms, in the network {[round(t[1]) for t in times]} ms")
    return grids, times


def scored(args, script: str, item: dict) -> dict:
    """Run a scoring script with ``args.python``; its last line, as JSON."""
    t0 = time.time()
    out = subprocess.run([args.python, "-c", script], input=json.dumps(item), check=True, cwd=ROOT, capture_output=True,
                         text=True, timeout=900).stdout
    scores = json.loads(out.strip().splitlines()[-1])  # load_or_train prints a line first
    print(f"  scores ({time.time() - t0:.0f} s): {json.dumps(scores)}")
    return scores


def check_toy(page: Page, box, i: int, shot: Path | None) -> None:
    r = press_and_wait(page, box, shot, 60)
    check(r["data-state"] == "done", f"toy {i}: DDPM run finished ({r['status']})")
    energy = float(r["data-energy"])
    if FAST:  # a model trained for a few dozen steps: only that the run ends with a number
        check(math.isfinite(energy), f"toy {i}: energy distance {energy:.4f} (fast-mode model)")
    else:
        check(energy < 0.05, f"toy {i}: energy distance {energy:.4f} < 0.05")


def check_digits(page: Page, box, args, shots: Path | None) -> None:
    """Chapter 8's sampler: a DDPM run, both views, then DDIM-25 runs scored against Python's."""
    box.locator('input[type=radio][value="ddpm"]').check()
    r = press_and_wait(page, box, shots / "digits_ddpm.png" if shots else None, 150, timeout_s=300)
    check(r["data-state"] == "done", f"digits: DDPM (T = 400) finished ({r['status']})")
    box.locator('input[type=radio][value="xt"]').check()
    if shots:
        box.screenshot(path=str(shots / "digits_ddpm_end_xt.png"))
    box.locator('input[type=radio][value="x0"]').check()
    grids, times = run_seeds(page, box, args.seeds, "digits")
    if shots:
        box.screenshot(path=str(shots / "digits_ddim25_end.png"))
        (shots / "digits.json").write_text(json.dumps({"digits": grids, "times_ms": times}))
    scores = scored(args, SCORE, {"digits": grids, "seed": 0})
    b, p = scores["browser"]["confident"], scores["python"]["confident"]
    tol = 3 * (scores["browser"]["se"] ** 2 + scores["python"]["se"] ** 2) ** 0.5 + 0.03
    check(abs(b - p) <= tol, f"browser's confident fraction {b:.3f} vs Python's {p:.3f} (within {tol:.3f})")


def check_guided(page: Page, box, args, shots: Path | None) -> None:
    """Chapter 10's sampler: "any" disables w; the digit --label and the weight --w are set from the keyboard, and
    DDIM-25 runs draw that digit as often as Python's guided sampler does."""
    wrong = set_guidance(box, str(args.label), args.w)
    check(not wrong, f'guided: "any" disables w, the keyboard sets digit {args.label} and w = {args.w} {wrong}')
    grids, times = run_seeds(page, box, args.seeds, f"guided digit {args.label}, w = {args.w}")
    r = box.evaluate("r => [r.getAttribute('data-label'), parseFloat(r.getAttribute('data-w'))]")
    check(r == [str(args.label), args.w], f"guided: the runs drew digit {r[0]} with w = {r[1]}, as chosen")
    if shots:
        box.screenshot(path=str(shots / f"guided_{args.label}_w{args.w}_end.png"))
        (shots / "guided.json").write_text(json.dumps({"digits": grids, "times_ms": times}))
    scores = scored(args, GUIDED_SCORE, {"digits": grids, "label": args.label, "w": args.w, "seed": 0})
    b, p = scores["browser"]["on_class"], scores["python"]["on_class"]
    tol = 3 * (scores["browser"]["se"] ** 2 + scores["python"]["se"] ** 2) ** 0.5 + 0.03
    check(abs(b - p) <= tol, f"digit {args.label}: the browser's on-class fraction {b:.3f} vs Python's {p:.3f} (within {tol:.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="a Python with ddpm_edu")
    ap.add_argument("--page", type=Path, help="an HTML page to check (default: write one with the four samplers)")
    ap.add_argument("--root", type=Path, help="the folder to serve, which holds --page (default: the page's folder)")
    ap.add_argument("--shots", type=Path, help="save screenshots here")
    ap.add_argument("--seeds", type=int, default=4, help="digit runs of 16 to score (default 4: 64 digits)")
    ap.add_argument("--label", type=int, default=7, help="the digit the guided sampler draws (default 7)")
    ap.add_argument("--w", type=float, default=2.0, help="its guidance weight, a step of its slider (default 2)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    shot = (lambda name: args.shots / f"{name}.png") if args.shots else (lambda name: None)

    with tempfile.TemporaryDirectory() as tmp:
        if args.page:
            page_path = args.page.resolve()
        else:
            out = subprocess.run([args.python, "-c", WRITE_PAGE, tmp], cwd=ROOT, capture_output=True, text=True, timeout=900)
            if out.returncode:
                print(out.stderr[-3000:])
                return 1
            page_path = Path(tmp) / "live.html"
        folder = args.root.resolve() if args.root else page_path.parent
        weight = {p.relative_to(folder).as_posix(): p.stat().st_size for p in [page_path, *folder.glob("_static/ddpm_live/*")]}
        server, base = serve(folder)
        blocked: list[str] = []
        errors: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            keep_local(page, base, blocked)
            try:
                page.goto(base + page_path.relative_to(folder).as_posix())
                page.wait_for_selector(".ddpml")
                kinds = {"toy": page.locator(".ddpm-live:has(.ddpml-toy)"),
                         "digits": page.locator(".ddpm-live:has(.ddpml-digits:not(.ddpml-guided))"),
                         "guided": page.locator(".ddpm-live:has(.ddpml-guided)")}
                found = {k: v.count() for k, v in kinds.items()}
                enough = any(found.values()) if args.page else all(found.values())
                check(enough, f"samplers on the page: {found}" + ("" if args.page else " (each kind at least once)"))
                for i in range(found["toy"]):
                    kinds["toy"].nth(i).scroll_into_view_if_needed()
                    check_toy(page, kinds["toy"].nth(i), i, shot(f"toy{i}"))
                for name, run in (("digits", check_digits), ("guided", check_guided)):
                    if found[name]:
                        kinds[name].nth(0).scroll_into_view_if_needed()
                        run(page, kinds[name].nth(0), args, args.shots)
                ours = [e for e in errors if not any(n in e for n in NOT_OURS)]
                check(not ours, f"no JavaScript errors of ours {ours} (the page's own: {len(errors) - len(ours)})")
                check(not blocked, f"no request left the page's server (blocked: {blocked})")
                print("  page weight (bytes): " + json.dumps(weight))
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
