"""The schedule explorer's JavaScript under node: schedule.js, text.js, plots.js and explorer.js against ddpm_edu.

The browser computes every schedule the reader sees with schedule.js, so it must give the library's
numbers: beta_t, alpha_bar_t and SNR_t to a relative 1e-9 for every kind over a grid of settings, and
the library's words for settings it refuses (js/messages.json, formatted by text.js as Python would).
plots.js's noised image must be ddpm_edu's x_t, and explorer.js's readouts must flag what summarize flags.
The tests load each module with ``require``, as the page's bundle does (ddpm_edu/web/views.py), and
need Node.js (``node``); without it they fail, they do not skip.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from ddpm_edu.data.images import to_uint8
from ddpm_edu.forward import q_sample
from ddpm_edu.schedules import FINISHED, KINDS, NOISED, Schedule, schedule_problems, summarize
from ddpm_edu.web import explorer

pytestmark = pytest.mark.node

JS = Path(explorer.__file__).parent / "js"  # ddpm_edu/web/js: one module per file
DEFAULTS = {"s": 0.008, "beta_1": 1e-4, "beta_T": 0.02, "noised": NOISED, "finished": FINISHED}


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail(
            "these tests run the JavaScript of ddpm_edu/web/js under Node.js, and `node` is not on PATH; "
            "install Node.js (e.g. `apt-get install nodejs`) and run them again"
        )
    return path


def run_node(script: str, data: object) -> object:
    """Run `script` under node with ``J(name)`` requiring ddpm_edu/web/js/<name> and ``input`` parsed from
    ``data`` (sent as JSON on stdin); the script prints JSON, which is returned. An async script may await."""
    prelude = (
        'const J = name => require(require("path").join(process.argv[1], name));\n'
        'const input = JSON.parse(require("fs").readFileSync(0, "utf8"));\n'
        "const out = value => process.stdout.write(JSON.stringify(value));\n"
    )
    code = prelude + "(async () => {\n" + script + "\n})().catch(e => { console.error(e); process.exit(1); });"
    res = subprocess.run([node(), "-e", code, str(JS)], input=json.dumps(data), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


# For each settings dict: what schedule.js computes (or the problems it finds).
SCHEDULES = r"""
const S = J("schedule.js"), num = v => (v === Infinity ? "inf" : v), a = x => Array.from(x).map(num);
out(input.map(c => {
  const p = S.problems(c);
  if (Object.keys(p).length) return { problems: p };
  const s = S.schedule(c.kind, c.T, c.beta_1, c.beta_T, c.s);
  return { betas: a(s.betas), alpha_bar: a(s.alphaBar), snr: a(s.snr), summary: S.summary(s, c.noised, c.finished) };
}));
"""


def run_js(cases: list[dict]) -> list[dict]:
    return run_node(SCHEDULES, [{**DEFAULTS, **c} for c in cases])


def python_schedule(c: dict) -> Schedule:
    c = {**DEFAULTS, **c}
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
    # Every field of ScheduleSummary, so a field added in Python and not in schedule.js fails here.
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


def test_js_kinds_are_the_library_s():
    assert run_node('out(J("schedule.js").KINDS);', None) == list(KINDS)


# Settings the library refuses; the reader's page must say what Python says, word for word.
REFUSED = [
    dict(kind="linear", T=1000, beta_1=0.05, beta_T=0.01),  # beta_1 > beta_T
    dict(kind="linear", T=3, beta_1=1e-05, beta_T=1e-06),  # the same, in exponent notation
    dict(kind="quadratic", T=10, beta_1=0.0, beta_T=0.01),
    dict(kind="sigmoid", T=10, beta_1=1e-4, beta_T=1.0),
    dict(kind="linear", T=10, beta_1="abc", beta_T=0.5),  # not a number
    dict(kind="linear", T=0),
    dict(kind="sigmoid", T=0, beta_1=2.5e-07, beta_T=2.5),  # two problems: both, joined as Python joins them
    dict(kind="linear", T=1.5),
    dict(kind="cosine", T=10, s=-0.1),
    dict(kind="cosine", T=0),
    dict(kind="nope", T=10),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: json.dumps(c))
def test_js_refuses_what_the_library_refuses_in_its_words(case):
    js = run_js([case])[0]
    assert "problems" in js, case
    with pytest.raises(ValueError) as raised:
        python_schedule(case)
    assert "; ".join(js["problems"].values()) == str(raised.value)  # explorer.js shows them joined so
    if case["kind"] not in ("cosine", "nope"):  # the same settings are named
        c = {**DEFAULTS, **case}
        assert set(js["problems"]) == set(schedule_problems(c["T"], c["beta_1"], c["beta_T"]))


def test_python_s_explorer_and_the_page_show_one_message():
    ex = explorer.schedule_explorer(beta_1=0.05, beta_T=0.01, T=200)
    page = run_node('out(J("explorer.js").evaluate(input, {noised: 0.01, finished: 1e-4}).bad);', ex.settings())
    assert list(page.values()) == [ex.error]


# Floats whose repr takes every branch: exponent forms, fixed forms, whole numbers, the extremes.
FLOATS = [0.0, -0.0, 1.0, -2.0, 0.5, 0.1 + 0.2, 1e-4, 1e-5, 9.999e-5, 123.456, 1e15, 1e16, 1.5e16, 2.5e-7, -3.25e-12,
          123456789012345678.0, 1.7976931348623157e308, 5e-324, math.pi, -math.e * 1e20, 12345.0, 0.001]
FLOATS += [float(v) for v in np.random.default_rng(0).lognormal(0, 20, 200) * np.random.default_rng(1).choice([-1, 1], 200)]


def test_text_writes_floats_as_python_s_repr():
    got = run_node('const X = J("text.js"); out(input.map(v => X.pyRepr(v, true)));', FLOATS)
    assert got == [repr(v) for v in FLOATS]
    assert run_node('const X = J("text.js"); out(input.map(v => X.pyRepr(v)));', [3, -7, "ddim", "it's", None, True]) == [
        repr(v) for v in (3, -7, "ddim", "it's", None, True)]


def test_every_message_is_used_and_every_use_has_a_message():
    table = json.loads((JS / "messages.json").read_text())
    used = {m for f in JS.glob("*.js") for m in re.findall(r'say\("([\w.]+)"', f.read_text())}
    assert used == {k for k in table if not k.startswith("_")}
    for key, template in table.items():  # str.format could fill each one, with the placeholders text.js knows
        if not key.startswith("_"):
            assert re.fullmatch(r"([^{}]|\{\w+(!r)?\})*", template), key


def test_a_missing_value_is_an_error_not_a_silent_gap():
    script = 'try { J("text.js").say("sampler.eta", {}); out("no error"); } catch (e) { out(e.message); }'
    assert "needs a value for eta" in run_node(script, None)


def test_the_noised_image_is_ddpm_edu_s_x_t():
    """plots.js's x_t, as the canvas's bytes, against q_sample and to_uint8 (within 1 of 255: rounding ties)."""
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(3, 5, 7, generator=g, dtype=torch.float64) * 2 - 1, torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    s = Schedule.cosine(100)
    hwc = lambda x: x.permute(1, 2, 0).flatten().tolist()  # noqa: E731  (H, W, 3) row-major, as the canvas stores it
    cases = [dict(t=t, ab=float(s.alpha_bar[t])) for t in (0, 1, 30, 100)]
    script = 'const P = J("plots.js"); out(input.cases.map(c => Array.from(P.rgba(P.noised(input.x0, input.eps, c.ab)))));'
    got = run_node(script, dict(x0=hwc(x0), eps=hwc(eps), cases=cases))
    for c, rgba in zip(cases, got):
        want = to_uint8(q_sample(x0[None], c["t"], eps[None], s)[0]).astype(int)  # (H, W, 3)
        rgba = np.array(rgba).reshape(5, 7, 4)
        assert np.abs(rgba[..., :3] - want).max() <= 1 and (rgba[..., 3] == 255).all()


def test_the_histogram_is_a_density_over_its_bins():
    x = np.random.default_rng(2).normal(size=5000)
    got = run_node('const P = J("plots.js"); out({d: Array.from(P.density(input)), h: P.HIST});', x.tolist())
    h = got["h"]
    want, _ = np.histogram(x, bins=h["bins"], range=(h["lo"], h["hi"]))
    np.testing.assert_allclose(got["d"], want / (x.size * (h["hi"] - h["lo"]) / h["bins"]), rtol=1e-12)


def test_the_readouts_flag_a_schedule_that_does_not_finish():
    cases = [dict(kind="linear", T=1000, t=250, beta_1=1e-4, beta_T=0.02),  # finishes
             dict(kind="quadratic", T=1000, t=250, beta_1=1e-4, beta_T=0.02)]  # does not
    script = """const E = J("explorer.js"), cfg = {noised: 0.01, finished: 1e-4};
out(input.map(st => { const now = E.evaluate(st, cfg);
  return {warning: E.warning(now.sm, cfg), rows: E.readouts(st.t, st.T, now.sc, now.sm, cfg), caption: E.caption(st, false)}; }));"""
    for c, js in zip(cases, run_node(script, [{**DEFAULTS, **c} for c in cases])):
        finishes = summarize(python_schedule(c)).finishes
        noised = next(r for r in js["rows"] if r[0].startswith("steps with"))  # the share of near-noise steps
        assert (js["warning"] == "") == finishes
        assert noised[0].endswith(f"< {NOISED}") and (noised[1] == "not comparable") == (not finishes)
        assert noised[2] == (not finishes)  # dimmed
        assert js["caption"].startswith(c["kind"] + " schedule") and js["caption"].endswith("t = 250")


def test_settings_come_back_from_their_slider_positions():
    script = """const E = J("explorer.js");
out(input.map(c => E.fromSlider(E.SLIDERS[c[0]], E.toSlider(E.SLIDERS[c[0]], c[1]))));"""
    cases = [("beta_1", 1e-4), ("beta_T", 0.02), ("beta", 0.001), ("T", 1000), ("T", 37), ("s", 0.008), ("t", 250)]
    assert run_node(script, cases) == [v for _, v in cases]


def test_log_sliders_offer_every_round_number_once():
    """A log slider's positions are the numbers with two significant digits in its range, in order, as Python
    reads them (0.3 is Python's 0.3), so every value a reader can set prints as they see it."""
    got = run_node('const E = J("explorer.js"); out({b: E.SLIDERS.beta_T.values, T: E.SLIDERS.T.values});', None)
    assert got["b"] == sorted(v for e in range(-6, 0) for m in range(10, 100) if 1e-6 <= (v := float(f"{m / 10:.1f}e{e}")) <= 0.5)
    assert got["T"] == [v for v in range(1, 4001) if len(str(v).rstrip("0")) <= 2]  # whole numbers, two digits at most
    assert 1e-4 in got["b"] and 0.02 in got["b"] and 1000 in got["T"]  # DDPM's settings are on the sliders


# One keyboard step (ArrowRight / ArrowLeft), as the browser takes it: the position moves by `step`, clamped to
# [min, max]; the explorer then writes the position of the new value back (syncControls).
KEYBOARD = r"""
const E = J("explorer.js"), L = J("live.js"), out_ = [];
const key = (r, pos, dir) => Math.min(r.max, Math.max(r.min, Number((pos + dir * r.step).toFixed(10))));
for (const name of Object.keys(E.SLIDERS)) {
  const spec = E.SLIDERS[name], r = E.range(spec), text = v => E.valueTexts({beta_1: v, beta_T: v, s: v, T: v, t: v})[name];
  let stuck = [], snapped = [], silent = [], n = 0;
  for (let pos = r.min; pos <= r.max + 1e-9; pos = Number((pos + r.step).toFixed(10))) {
    const v = E.fromSlider(spec, pos);
    if (E.toSlider(spec, v) !== pos) snapped.push([pos, v]);   // written back elsewhere: the step would be undone
    for (const dir of [1, -1]) {
      const to = key(r, pos, dir);
      if (to === pos) continue;                                 // at the end of the range
      n++;
      const w = E.fromSlider(spec, to);
      if (w === v) stuck.push([pos, dir, v]);
      else if (text(w) === text(v)) silent.push([pos, dir, text(v)]);
    }
  }
  out_.push({name, n, stuck: stuck.slice(0, 5), snapped: snapped.slice(0, 5), silent: silent.slice(0, 5)});
}
for (const name of Object.keys(L.SLIDERS)) {  // linear: the value is the position; what it reads must change too
  const [, , min, max, step, digits] = L.SLIDERS[name], r = {min, max, step}, text = v => v.toFixed(digits);
  let silent = [], n = 0;
  for (let pos = min; pos <= max + 1e-9; pos = Number((pos + step).toFixed(10))) {
    for (const dir of [1, -1]) {
      const to = key(r, pos, dir);
      if (to !== pos && (n++, text(to) === text(pos))) silent.push([pos, dir, text(pos)]);
    }
  }
  out_.push({name: "live " + name, n, stuck: [], snapped: [], silent: silent.slice(0, 5)});
}
out(out_);
"""


def test_every_keyboard_step_moves_every_slider():
    """Issue 24: ArrowRight left beta_1, beta_T and T where they were (the value was rounded and written back).
    From every position of every slider, one step either way changes the value and what it reads, and the
    position written back for the new value is the one the key left."""
    results = run_node(KEYBOARD, None)
    assert {r["name"] for r in results} >= {"beta_1", "beta_T", "beta", "s", "T", "t", "live steps", "live eta", "live T"}
    for r in results:
        assert r["n"] > 10, r
        assert r["stuck"] == [] and r["snapped"] == [] and r["silent"] == [], r


# A stand-in for anywidget's model (a Backbone model): set() fires "change:<name>" at once, inside the call.
FAKE_MODEL = r"""
function fakeModel(values) {
  const handlers = {}, log = [];
  return {
    log, saved: 0,
    get: k => values[k],
    set(k, v) { if (values[k] === v) return; values[k] = v; log.push([k, v]); (handlers["change:" + k] || []).forEach(f => f()); },
    save_changes() { this.saved++; },
    on: (ev, f) => { (handlers[ev] = handlers[ev] || []).push(f); },
    off: (ev, f) => { handlers[ev] = (handlers[ev] || []).filter(g => g !== f); },
  };
}
"""


def test_changing_T_keeps_t_s_place_in_the_widget():
    """Issue 24: in JupyterLab, T 1000 -> 200 gave t = 200 (the model's change event reloaded the old t before
    the new one was written); t must keep its place, t / T."""
    script = FAKE_MODEL + r"""
const E = J("explorer.js"), m = fakeModel(Object.assign({}, input)), views = [];
const c = E.connect(m, changed => views.push(changed));
c.change("T", 200);
const after = {t: m.get("t"), T: m.get("T"), st: Object.assign({}, c.st), saved: m.saved, views: views.slice()};
c.change("T", 1000);
const back = {t: m.get("t"), st_t: c.st.t};
m.set("beta_T", 0.01);            // a change made in Python: the page follows it
const fromPython = {beta_T: c.st.beta_T, views: views.length};
m.set("T", 20);                   // Python shrinks T below t: t is clamped, and the kernel is told
const shrunk = {t: m.get("t"), st_t: c.st.t};
c.dispose();
m.set("beta_T", 0.03);
out({after, back, fromPython, shrunk, disposed: c.st.beta_T});
"""
    got = run_node(script, {"kind": "linear", "beta_1": 1e-4, "beta_T": 0.02, "s": 0.008, "T": 1000, "t": 250, "config": {}})
    assert got["after"]["t"] == 50 and got["after"]["T"] == 200 and got["after"]["st"]["t"] == 50
    assert got["after"]["saved"] == 1 and got["after"]["views"] == [True]
    assert got["back"] == {"t": 250, "st_t": 250}
    assert got["fromPython"] == {"beta_T": 0.01, "views": 3}
    assert got["shrunk"] == {"t": 20, "st_t": 20}
    assert got["disposed"] == 0.01  # no longer listening


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
