"""ddpm_edu/web/js/explorer.js under node: its schedules, readouts and checks against ddpm_edu.schedules.

The browser computes every schedule the reader sees with this file, so it must give the library's
numbers: beta_t, alpha_bar_t and SNR_t to a relative 1e-9 for every kind over a grid of settings.
These tests need Node.js (``node``); without it they fail, they do not skip.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ddpm_edu.schedules import FINISHED, KINDS, NOISED, Schedule, schedule_problems, summarize
from ddpm_edu.web import explorer

JS = Path(explorer.__file__).parent / "js" / "explorer.js"

# Reads a JSON list of settings on stdin and prints, for each, what explorer.js computes.
DRIVER = r"""
const E = require(process.argv[1]);
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
const num = v => (v === Infinity ? "inf" : v);
process.stdout.write(JSON.stringify(cases.map(c => {
  const p = E.problems(c);
  if (Object.keys(p).length) return { problems: p };
  const s = E.schedule(c.kind, c.T, c.beta_1, c.beta_T, c.s);
  const a = x => Array.from(x).map(num);
  return { betas: a(s.betas), alpha_bar: a(s.alphaBar), snr: a(s.snr), summary: E.summary(s, c.noised, c.finished) };
})));
"""


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail(
            "these tests run ddpm_edu/web/js/explorer.js under Node.js, and `node` is not on PATH; "
            "install Node.js (e.g. `apt-get install nodejs`) and run them again"
        )
    return path


def run_js(cases: list[dict]) -> list[dict]:
    cases = [{"s": 0.008, "beta_1": 1e-4, "beta_T": 0.02, "noised": NOISED, "finished": FINISHED, **c} for c in cases]
    out = subprocess.run([node(), "-e", DRIVER, str(JS)], input=json.dumps(cases), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def python_schedule(c: dict) -> Schedule:
    if c["kind"] == "cosine":
        return Schedule.cosine(c["T"], c["s"])
    return Schedule.make(c["kind"], c["T"], c["beta_1"], c["beta_T"])


def as_array(values: list) -> np.ndarray:
    return np.array([math.inf if v == "inf" else v for v in values], dtype=np.float64)


TS = (1, 2, 3, 10, 100, 1000, 4000)
BETAS = ((1e-4, 0.02), (1e-6, 0.5), (0.01, 0.01), (1e-5, 1e-3), (0.3, 0.9))
GRID = [dict(kind=k, T=T, beta_1=b1, beta_T=bT) for k in KINDS if k != "cosine" for T in TS for b1, bT in BETAS]
GRID += [dict(kind="cosine", T=T, s=s) for T in TS for s in (0.0, 0.008, 0.1, 1.0)]


def test_js_schedules_match_the_library():
    results = run_js(GRID)
    assert len(results) == len(GRID)
    for c, js in zip(GRID, results):
        py = python_schedule(c)
        for name, tensor in (("betas", py.betas), ("alpha_bar", py.alpha_bar), ("snr", py.snr)):
            want, got = tensor.numpy(), as_array(js[name])
            assert got.shape == want.shape, (c, name)
            # relative 1e-9; the floor only matters where both have underflowed towards 0
            with np.errstate(invalid="ignore"):  # inf - inf at t = 0 of the SNR; equal there
                ok = (got == want) | (np.abs(got - want) <= 1e-9 * np.abs(want) + 1e-300)
            assert ok.all(), (c, name, int(np.argmin(ok)), got[~ok][:3], want[~ok][:3])


def test_js_readouts_match_summarize():
    # Every field of ScheduleSummary, so a field added in Python and not in explorer.js fails here.
    cases = [c for c in GRID if c["T"] in (1, 10, 1000)]
    results = run_js(cases)
    assert {r["summary"]["finishes"] for r in results} == {True, False}  # both sides of the flag are compared
    for c, js in zip(cases, results):
        want, got = summarize(python_schedule(c)), js["summary"]
        assert set(got) == {f.name for f in dataclasses.fields(want)}, c
        for k, v in dataclasses.asdict(want).items():
            if isinstance(v, float):
                assert math.isclose(got[k], v, rel_tol=1e-9, abs_tol=1e-300), (c, k)
            else:  # finishes, t_snr_1, and share_noised = None (JSON null) when the schedule does not finish
                assert got[k] == v, (c, k, got[k], v)


@pytest.mark.parametrize(
    "case",
    [
        dict(kind="linear", T=1000, beta_1=0.05, beta_T=0.01),  # beta_1 > beta_T
        dict(kind="quadratic", T=10, beta_1=0.0, beta_T=0.01),
        dict(kind="sigmoid", T=10, beta_1=1e-4, beta_T=1.0),
        dict(kind="linear", T=0),
        dict(kind="cosine", T=10, s=-0.1),
    ],
)
def test_js_rejects_what_the_library_rejects(case):
    js = run_js([case])[0]
    assert "problems" in js, case
    with pytest.raises(ValueError):
        python_schedule({"s": 0.008, "beta_1": 1e-4, "beta_T": 0.02, **case})
    if case["kind"] != "cosine":  # the same settings are named
        assert set(js["problems"]) == set(schedule_problems(case["T"], case.get("beta_1", 1e-4), case.get("beta_T", 0.02)))


def test_js_message_for_beta_1_above_beta_T_is_for_a_reader():
    msg = run_js([dict(kind="linear", T=1000, beta_1=0.05, beta_T=0.01)])[0]["problems"]["beta_1"]
    assert "β₁ = 0.05 is larger than β_T = 0.01" in msg and "β₁ ≤ β_T" in msg


def test_the_anywidget_module_imports_as_an_es_module(tmp_path):
    esm = tmp_path / "explorer.mjs"
    esm.write_text(explorer.ScheduleExplorer._esm)
    check = f'import("{esm.as_uri()}").then(m => process.exit(typeof m.default.render === "function" ? 0 : 3))'
    out = subprocess.run([node(), "-e", check], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_inline_script_parses(tmp_path):
    html = explorer.schedule_explorer(T=20).to_html()
    script = html.split("<script>", 1)[1].rsplit("</script>", 1)[0]
    (tmp_path / "inline.js").write_text(script)
    out = subprocess.run([node(), "--check", str(tmp_path / "inline.js")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
