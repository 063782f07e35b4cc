"""tests/browser/check_html.py, the reader's check of the built book, can fail: it finds each kind of problem.

A page with a broken image, an image without alt text, raw TeX, a console error, a traceback, a request
to another host, an explorer that never mounted, a slider that changes nothing, a slider that the
arrow keys do not move, a button without a name (axe-core), text that is readable only in the light
theme and a progress bar frozen at 0% must be reported on each count; a plain page with an image, a
finished progress bar, a live slider and a real schedule explorer must pass, in both themes, with a
screenshot of each. A guided live sampler (chapter 10) is set to a digit and a guidance weight and run to
its end; one whose run fails is reported. The checker runs as
``make check-html`` runs it, as a subprocess, in headless Chromium. Without Chromium this test
fails (it does not skip): ``make check-html`` installs Debian's ``chromium`` package, or set
CHROMIUM=/path/to/chrome.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script
from PIL import Image

pytestmark = pytest.mark.browser

BROWSER = Path(__file__).parent / "browser"
CHECKER = BROWSER / "check_html.py"

BAD = r"""<!doctype html><meta charset=utf-8><title>bad</title><body>
<p>An equation that nobody typeset: \(x_t\).</p>
<img src="missing.png" alt="a figure that is not there">
<img src="dot.png">
<img src="dot.png?named" alt="../_images/dot.png">
<button></button>
<style>html[data-theme=dark] .night { color: #333; background: #222; }</style><p class="night">Dark text on a dark ground.</p>
<div class="cell_output docutils container"><div class="output traceback highlight-ipythontb notranslate"><pre>
Traceback (most recent call last):
  File "cell", line 1, in &lt;module&gt;
ZeroDivisionError: division by zero</pre></div></div>
<div id="ddpm-explorer-unmounted" class="ddpm-explorer">The schedule explorer needs JavaScript.</div>
<div id="ddpm-live-unmounted" class="ddpm-live">The live sampler needs JavaScript.</div>
<div class="cell_output"><input type="range" min="0" max="10" value="5"><canvas width="20" height="20"></canvas></div>
<div class="cell_output keyless"><input type="range" min="0" max="10" value="5" onkeydown="event.preventDefault()">
<canvas width="20" height="20"></canvas></div>
<div class="cell_output docutils container"><div class="output text_plain highlight-myst-ansi notranslate"><pre>
cifar10-small:   0%|          | 0/2 [00:00&lt;?, ?step/s]</pre></div></div>
<script>
const k = document.querySelector(".keyless input"), kc = document.querySelector(".keyless canvas").getContext("2d");
k.addEventListener("input", () => { kc.fillStyle = `rgb(0, ${25 * k.value}, 0)`; kc.fillRect(0, 0, 20, 20); });
console.error("boom: an error of the page");
fetch("https://example.com/data.json").catch(() => null);
</script>
"""

GOOD = """<!doctype html><html lang="en"><meta charset=utf-8><title>good</title><body>
<p>Plain text, and a figure:</p><img src="dot.png" alt="a figure">
<div class="cell_output"><div class="output stream"><pre>toy2d: 100%|##########| 3000/3000 [01:10&lt;00:00, 42.5step/s, loss=0.3127]
finished</pre></div></div>
<div class="cell_output"><label>k <input type="range" min="0" max="10" value="5"></label><canvas width="20" height="20"></canvas></div>
<script>
const inp = document.querySelector("input"), ctx = document.querySelector("canvas").getContext("2d");
const draw = () => { ctx.fillStyle = `rgb(${25 * inp.value}, 0, 0)`; ctx.fillRect(0, 0, 20, 20); };
inp.addEventListener("input", draw); draw();
</script>
"""


def guided_samplers() -> tuple[str, str]:
    """Chapter 10's live guided sampler on a small conditional U-Net (untrained: the checker looks at the page,
    tests/test_live.py at the numbers), and a broken one: a page that offers guidance to an unconditional
    network, whose ONNX graph has no label input, so that its run fails."""
    import torch

    from ddpm_edu.nets.unet import UNet, unet_kwargs
    from ddpm_edu.web.live import live_digits

    torch.manual_seed(0)
    good = live_digits(model=UNet(**unet_kwargs("digits", ch=8, num_classes=10)).eval())
    bad = live_digits(model=UNet(**unet_kwargs("digits", ch=8)).eval())
    bad.config = {**bad.config, "classes": 10, "settings": {**bad.config["settings"], "label": "any", "w": 2.0}}
    return good.to_html(), bad.to_html()


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> tuple[dict[str, list[str]], str]:
    """({page: [problems]}, what it printed) from one run of the checker over a three-page site."""
    chromium = load_script(BROWSER / "browser.py").find_chromium()
    if chromium is None:
        pytest.fail("no Chromium to drive: `make check-html` installs Debian's chromium package; or set CHROMIUM=/path/to/chrome")
    from ddpm_edu.web.explorer import schedule_explorer
    from ddpm_edu.web.ort import ORT_FILES, ort_dist

    site = tmp_path_factory.mktemp("site")
    guided, broken = guided_samplers()
    (site / "bad.html").write_text(BAD)
    (site / "broken_guided.html").write_text('<!doctype html><html lang="en"><meta charset=utf-8><title>broken guidance</title>'
                                             f'<body><div class="cell_output">{broken}</div>')
    explorer = schedule_explorer(controls=["beta_T", "t"]).to_html()
    (site / "good.html").write_text(GOOD + f'<div class="cell_output">{explorer}</div><div class="cell_output">{guided}</div>')
    Image.fromarray(np.full((4, 6, 3), 200, dtype=np.uint8)).save(site / "dot.png")
    (site / "_static/ddpm_live").mkdir(parents=True)  # onnxruntime-web where the book's build puts it
    for f in ORT_FILES:
        shutil.copyfile(ort_dist() / f, site / "_static/ddpm_live" / f)
    out = site.parent / "report.json"
    run = subprocess.run([sys.executable, str(CHECKER), str(site), "--report", str(out), "--chromium", chromium,
                          "--shots", str(site.parent / "shots")], capture_output=True, text=True, timeout=300)
    print(run.stdout, run.stderr)
    assert run.returncode == 1, f"the checker should fail on bad.html (exit {run.returncode})"
    for shot in ("good", "good_dark", "bad", "bad_dark", "broken_guided"):
        assert (site.parent / "shots" / f"{shot}.png").is_file(), shot
    return json.loads(out.read_text()), run.stdout


@pytest.fixture(scope="module")
def report(checked) -> dict[str, list[str]]:
    return checked[0]


def test_a_good_page_passes(report):
    assert report["good.html"] == []


def test_the_guided_sampler_is_set_and_run(checked):
    """On the good page the guided sampler was found, set to a digit and w from the keyboard, and ran to the end."""
    good = checked[1].split("good.html", 1)[1]
    assert "live guided sampler" in good and "(state done)" in good, good


def test_a_guided_run_that_fails_is_reported(report):
    """The broken guided sampler's run fails on the label input its network lacks; that is the page's one problem."""
    problems = report["broken_guided.html"]
    assert len(problems) == 1 and problems[0].startswith("live sampler ddpm-live-"), problems
    assert ": the run failed: " in problems[0] and "invalid input 'y'" in problems[0], problems


@pytest.mark.parametrize("what, found", [
    ("broken image", "broken image (natural width 0): http://127.0.0.1"),
    ("missing file", "failed request: HTTP 404"),
    ("raw TeX", r"raw TeX left in the text: 'An equation that nobody typeset: \\(x_t\\).'"),
    ("console error", "console error: boom: an error of the page"),
    ("traceback", "traceback shown: 'Traceback (most recent call last)"),
    ("off-site request", "request left the local server: https://example.com/data.json"),
    ("unmounted explorer", "schedule explorer ddpm-explorer-unmounted did not mount its sliders"),
    ("unmounted live sampler", "live sampler ddpm-live-unmounted did not mount"),
    ("dead slider", "slider 'range' in 'cell_output' changes nothing"),
    ("no figure change", "no slider in 'cell_output' changes the figure"),
    ("no alt text", "image without alt text: http://127.0.0.1:"),
    ("keyboard", "slider 'range' in 'cell_output keyless': an arrow key does not move it"),
    ("axe-core", "axe (light): button-name (critical) at button"),
    ("dark theme", "axe (dark): color-contrast (serious) at .night"),
    ("frozen progress bar", "a progress bar frozen short of its end: '0%|          | 0/2 [00:00<?"),
])
def test_each_problem_is_reported(report, what, found):
    problems = report["bad.html"]
    assert any(p.startswith(found) for p in problems), f"{what}: no problem starts with {found!r} in {problems}"


def test_an_image_whose_alt_text_is_its_file_name_has_none(report):
    """Sphinx writes an image's URI as its alt when a notebook cell gives no alt text: that describes nothing."""
    problems = [p for p in report["bad.html"] if p.startswith("image without alt text:")]
    assert any(p.endswith("/dot.png") for p in problems) and any(p.endswith("/dot.png?named") for p in problems), problems
