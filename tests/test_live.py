"""The live samplers' JavaScript under node, and their Python face (chapters 6 and 8).

The reader's page samples with sampler.js, nets.js and metrics.js (ddpm_edu/web/js), so they must do
what the library does:
- one DDPM step and one DDIM step, fed the same x_t, eps_hat and z, give the x_{t-1} of
  ddpm_edu.sampling to 1e-5 (the JS works in float64, so the agreement is much closer);
- a full seeded run driven by the exact eps* of a Gaussian returns that Gaussian, the test the
  Python samplers pass (tests/test_sampling.py), with the same tolerance from the sample size;
- the toy MLP in plain JS and the digits U-Net exported to ONNX and run by onnxruntime-web give
  PyTorch's eps_hat to 1e-4 on fixed inputs;
- one guided step of chapter 10 (nets.js guidedModel on the conditional U-Net in onnxruntime-web, then a
  DDPM or DDIM step) gives ddpm_edu.guidance.guided_model's with ddpm_step/ddim_step to 1e-5, and "any"
  gives the unconditional eps;
- settings the samplers refuse are refused in Python's words (js/messages.json).
The Python face is ddpm_edu.web.live (LiveSampler, live_toy, live_digits), ddpm_edu.web.ort (finding
onnxruntime-web) and ddpm_edu.web.sphinxext. These tests need Node.js, and some the npm package
onnxruntime-web (``npm ci``); without them they fail, they do not skip.
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from test_explorer import node, run_node

from ddpm_edu.analytic import MixtureEps
from ddpm_edu.data.toy import MIXTURE
from ddpm_edu.eval.metrics import energy_distance
from ddpm_edu.guidance import guided_model
from ddpm_edu.nets.mlp import MLPDenoiser
from ddpm_edu.nets.unet import UNet, unet_kwargs
from ddpm_edu.sampling import ddim_sample, ddim_step, ddim_timesteps, ddpm_step
from ddpm_edu.schedules import Schedule
from ddpm_edu.web import export, live, ort
from ddpm_edu.web.ort import ORT_FILES, ort_dist

pytestmark = pytest.mark.node

# Reads {op, ...} tasks and prints a list of results.
DRIVER = r"""
const Sm = J("sampler.js"), N = J("nets.js"), Mt = J("metrics.js");
const f64 = a => Float64Array.from(a);
const out_ = [];
for (const c of input) {
  const sc = c.kind ? Sm.schedule(c) : null;
  if (c.op === "ddpm_step") {
    const k = Sm.ddpmCoefs(sc, c.variance)[c.t];
    out_.push(Array.from(Sm.ddpmStep(f64(c.xt), f64(c.eps), c.z && f64(c.z), k, c.clip)));
  } else if (c.op === "ddim_step") {
    const k = Sm.ddimCoefs(sc.alphaBar[c.t], sc.alphaBar[c.t_prev], c.eta);
    out_.push(Array.from(Sm.ddimStep(f64(c.xt), f64(c.eps), c.z && f64(c.z), k, c.clip)));
  } else if (c.op === "timesteps") {
    out_.push(Sm.ddimTimesteps(c.T, c.steps));
  } else if (c.op === "gaussian_run") {
    const model = N.mixtureEps({ weights: [1], means: [[c.mu]], stds: [c.sd] }, sc);
    const x = Sm.randn(c.n, Sm.uniform(c.seed + 1000));
    const opts = { variance: c.variance, seed: c.seed };
    const x0 = c.sampler === "ddpm" ? await Sm.ddpmSample(model, x, c.n, sc, opts) : await Sm.ddimSample(model, x, c.n, sc, c.steps, c.eta, opts);
    out_.push(Array.from(x0));
  } else if (c.op === "chosen_run") {  // Sm.sample: the settings pick the sampler
    const model = N.mixtureEps({ weights: [1], means: [[c.mu]], stds: [c.sd] }, sc);
    out_.push(Array.from(await Sm.sample(model, Sm.randn(c.n, Sm.uniform(c.seed + 1000)), c.n, sc, c.st, { seed: c.seed })));
  } else if (c.op === "mixture_eps") {
    out_.push(Array.from(N.mixtureEps(c.mix, sc)(f64(c.x), c.t, c.x.length / 2)));
  } else if (c.op === "mlp") {
    const m = N.mlpModel(N.decodeWeights(c.w.weights), c.w.sizes);
    out_.push(Array.from(m(f64(c.x), c.t, c.x.length / c.w.sizes.dim)));
  } else if (c.op === "energy") {
    out_.push(Mt.energyDistance(f64(c.x), f64(c.y), 2));
  } else if (c.op === "onnx") {
    const ort = await import(c.ort + "/ort.wasm.bundle.min.mjs");
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmBinary = require("fs").readFileSync(c.ort + "/ort-wasm-simd-threaded.wasm");
    const session = await ort.InferenceSession.create(Buffer.from(c.model, "base64"));
    const model = N.onnxModel(ort, session, c.shape);
    if (c.y) {  // a conditional U-Net: the label is a third input, int64 (B,)
      const res = await session.run({ x: new ort.Tensor("float32", Float32Array.from(c.x), [c.B].concat(c.shape)),
                                      t: new ort.Tensor("int64", new BigInt64Array(c.B).fill(BigInt(c.t)), [c.B]),
                                      y: new ort.Tensor("int64", BigInt64Array.from(c.y.map(BigInt)), [c.B]) });
      out_.push(Array.from(res[session.outputNames[0]].data));
    } else if (c.steps) out_.push(Array.from(await Sm.ddimSample(model, f64(c.x), c.B, Sm.schedule(c.sched), c.steps, 0, { clip: 1 })));
    else out_.push(Array.from(await model(f64(c.x), c.t, c.B)));
  } else throw new Error("unknown op " + c.op);
}
out(out_);
"""

SCHED = dict(kind="linear", T=1000, beta_1=1e-4, beta_T=0.02)
COSINE = dict(kind="cosine", T=400)


def run_js(tasks: list[dict]) -> list:
    return run_node(DRIVER, tasks)


def schedule(c: dict) -> Schedule:
    return Schedule.make(c["kind"], c["T"], c.get("beta_1", 1e-4), c.get("beta_T", 0.02))


def draws(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


STEPS = [(sc, t, clip) for sc in (SCHED, COSINE) for t in (1, 2, 37, sc["T"]) for clip in (None, 1.0)]


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_one_ddpm_step_matches_the_library(variance):
    tasks, want = [], []
    for i, (c, t, clip) in enumerate(STEPS):
        xt, eps, z = draws(i, 3, 64) * 1.5, draws(100 + i, 3, 64), draws(200 + i, 3, 64)
        tasks.append(dict(op="ddpm_step", **c, t=t, variance=variance, clip=clip, xt=xt.flatten().tolist(),
                          eps=eps.flatten().tolist(), z=z.flatten().tolist()))
        want.append(ddpm_step(xt, t, eps, schedule(c), z, variance=variance, clip_x0=clip))
    for task, got, w in zip(tasks, run_js(tasks), want):
        np.testing.assert_allclose(np.array(got), w.flatten().numpy(), rtol=0, atol=1e-5, err_msg=str(task["t"]))


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_one_ddim_step_matches_the_library(eta):
    tasks, want = [], []
    for i, (c, t, clip) in enumerate(STEPS):
        for t_prev in sorted({0, t - 1, t // 3}):
            xt, eps, z = draws(i, 3, 64) * 1.5, draws(100 + i, 3, 64), draws(200 + i, 3, 64)
            tasks.append(dict(op="ddim_step", **c, t=t, t_prev=t_prev, eta=eta, clip=clip, xt=xt.flatten().tolist(),
                              eps=eps.flatten().tolist(), z=z.flatten().tolist()))
            want.append(ddim_step(xt, t, eps, schedule(c), z, t_prev=t_prev, eta=eta, clip_x0=clip))
    for got, w in zip(run_js(tasks), want):
        np.testing.assert_allclose(np.array(got), w.flatten().numpy(), rtol=0, atol=1e-5)


def test_ddim_timesteps_match_the_library():
    cases = [(T, steps) for T in (1, 10, 200, 400, 1000) for steps in (1, 2, 3, 7, 10, 25, 50, 200) if steps <= T]
    got = run_js([dict(op="timesteps", T=T, steps=steps) for T, steps in cases])
    assert got == [ddim_timesteps(T, steps) for T, steps in cases]


# The Gaussian test of tests/test_sampling.py, with its data and tolerance: 5 standard errors of n draws.
MU, SD, N = 0.5, 0.3, 4000


def assert_gaussian(x: np.ndarray, mu: float, sd: float) -> None:
    n = x.size
    assert abs(x.mean() - mu) < 5 * sd / math.sqrt(n), x.mean()
    assert abs(x.std(ddof=1) - sd) < 5 * sd / math.sqrt(2 * n), x.std(ddof=1)


@pytest.mark.parametrize("run", [dict(sampler="ddpm", variance="beta_tilde"), dict(sampler="ddpm", variance="beta"),
                                 dict(sampler="ddim", steps=1000, eta=0.0), dict(sampler="ddim", steps=1000, eta=1.0)])
def test_a_seeded_run_with_the_exact_eps_returns_the_gaussian(run):
    x = np.array(run_js([dict(op="gaussian_run", **SCHED, mu=MU, sd=SD, n=N, seed=3, **run)])[0])
    assert x.shape == (N,)
    assert_gaussian(x, MU, SD)


def test_a_seeded_run_is_reproducible_and_the_seed_matters():
    task = dict(op="gaussian_run", kind="linear", T=50, mu=MU, sd=SD, n=10, sampler="ddpm", variance="beta_tilde")
    a, b, c = run_js([{**task, "seed": 1}, {**task, "seed": 1}, {**task, "seed": 2}])
    assert a == b and a != c


def test_the_exact_mixture_eps_matches_the_library():
    x, tasks = draws(7, 50, 2), []
    for t in (1, 20, 200):
        tasks.append(dict(op="mixture_eps", kind="linear", T=200, beta_1=1e-4, beta_T=0.1, t=t, mix=MIXTURE,
                          x=x.flatten().tolist()))
    s = Schedule.linear(200, 1e-4, 0.1)
    for task, got in zip(tasks, run_js(tasks)):
        want = MixtureEps(**MIXTURE, s=s)(x, torch.full((50,), task["t"]))
        np.testing.assert_allclose(np.array(got), want.flatten().numpy(), rtol=0, atol=1e-9)


def test_the_mlp_in_js_gives_pytorchs_eps_hat():
    torch.manual_seed(0)  # a test asks for global seeds: every weight, including the zero-initialised output layer
    model = MLPDenoiser(hidden=32, layers=2, t_dim=16).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn_like(p))
    x = draws(9, 40, 2).float()
    tasks = [dict(op="mlp", w=export.mlp_weights(model), x=x.flatten().tolist(), t=t) for t in (1, 57, 200)]
    for task, got in zip(tasks, run_js(tasks)):
        with torch.no_grad():
            want = model(x, torch.full((40,), task["t"]))
        assert np.abs(np.array(got) - want.flatten().numpy()).max() < 1e-4


def test_energy_distance_matches_the_library():
    x, y = draws(1, 60, 2), draws(2, 45, 2) + 0.3
    assert run_js([dict(op="energy", x=x.flatten().tolist(), y=y.flatten().tolist())])[0] == pytest.approx(
        energy_distance(x, y), abs=1e-12)


def test_the_onnx_unet_in_onnxruntime_web_gives_pytorchs_eps_hat():
    torch.manual_seed(0)
    model = UNet(**unet_kwargs("digits", in_ch=1, image_size=8)).eval()
    with torch.no_grad():  # every weight non-zero, so the test sees the whole network
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = draws(4, 5, 1, 8, 8).float()
    onnx = export.onnx_bytes(model, (1, 8, 8))

    tasks = [dict(op="onnx", ort=str(ort_dist()), model=base64.b64encode(onnx).decode(), shape=[1, 8, 8], B=5, t=t,
                  x=x.flatten().tolist()) for t in (1, 150, 400)]
    for task, got in zip(tasks, run_js(tasks)):
        with torch.no_grad():
            want = model(x, torch.full((5,), task["t"]))
        assert float(want.abs().max()) > 0.1  # a network that does something
        assert np.abs(np.array(got) - want.flatten().numpy()).max() < 1e-4

    # and a whole DDIM run through it, from the same x_T: what the reader's page computes, end to end
    task = {**tasks[0], "steps": 10, "sched": COSINE}
    want = ddim_sample(model, (5, 1, 8, 8), schedule(COSINE), 10, 0.0, clip_x0=1.0, x_T=x)
    np.testing.assert_allclose(np.array(run_js([task])[0]), want.flatten().numpy(), rtol=0, atol=1e-4)


def test_the_conditional_onnx_unet_takes_the_label_and_gives_pytorchs_eps_hat():
    """Chapter 10's in-page sampler: the U-Net with 10 classes exported with the label y as an int64 input, run
    by onnxruntime-web; every class and "no label" (10) give PyTorch's eps_hat to 1e-5."""
    torch.manual_seed(0)
    model = UNet(**unet_kwargs("digits", num_classes=10)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = draws(5, 1, 1, 8, 8).float().repeat(11, 1, 1, 1)  # one image, so the rows differ by their label alone
    y = torch.arange(11)  # the ten classes and "no label"
    onnx = export.onnx_bytes(model, (1, 8, 8))
    tasks = [dict(op="onnx", ort=str(ort_dist()), model=base64.b64encode(onnx).decode(), shape=[1, 8, 8], B=11, t=t,
                  x=x.flatten().tolist(), y=y.tolist()) for t in (1, 150, 400)]
    for task, got in zip(tasks, run_js(tasks)):
        with torch.no_grad():
            want = model(x, torch.full((11,), task["t"]), y)
        assert float(want.abs().max()) > 0.1 and not torch.allclose(want[:1], want[1:])  # the label matters
        np.testing.assert_allclose(np.array(got), want.flatten().numpy(), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- guidance in the page (chapter 10)
# Runs nets.js's guidedModel on the conditional ONNX U-Net for each case {y, w, t, ...}: one step (its eps and
# x_{t-1}) or, with "steps", a whole DDIM run from input.x.
GUIDED = r"""
const Sm = J("sampler.js"), N = J("nets.js"), f64 = a => Float64Array.from(a);
const ort = await import(input.ort + "/ort.wasm.bundle.min.mjs");
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmBinary = require("fs").readFileSync(input.ort + "/ort-wasm-simd-threaded.wasm");
const session = await ort.InferenceSession.create(Buffer.from(input.model, "base64"));
const net = N.onnxModel(ort, session, [1, 8, 8]), sc = Sm.schedule(input.sched), B = input.B, res = [];
for (const c of input.cases) {
  const model = N.guidedModel(net, c.y, c.w, input.K), x = f64(input.x);
  if (c.steps) { res.push(Array.from(await Sm.ddimSample(model, x, B, sc, c.steps, 0, { clip: 1 }))); continue; }
  const eps = await model(x, c.t, B), ddpm = c.sampler === "ddpm";
  const k = ddpm ? Sm.ddpmCoefs(sc, "beta_tilde")[c.t] : Sm.ddimCoefs(sc.alphaBar[c.t], sc.alphaBar[c.t_prev], c.eta);
  res.push({ eps: Array.from(eps), x: Array.from((ddpm ? Sm.ddpmStep : Sm.ddimStep)(x, eps, f64(input.z), k, c.clip)) });
}
out(res);
"""


def tiny_conditional_unet() -> UNet:
    """The digits preset's conditional U-Net (ch = 32) with every weight perturbed. Not narrower: at ch = 8 or 16
    each GroupNorm group holds one channel, which cancels the per-channel bias that carries t and y, so the
    label would change nothing and the guided and unguided eps would agree."""
    torch.manual_seed(0)
    model = UNet(**unet_kwargs("digits", num_classes=10)).eval()
    with torch.no_grad():  # every weight non-zero, the zero-initialised output conv too
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def run_guided(model: UNet, x: torch.Tensor, z: torch.Tensor, cases: list[dict]) -> list:
    onnx = base64.b64encode(export.onnx_bytes(model, (1, 8, 8))).decode()
    return run_node(GUIDED, dict(ort=str(ort_dist()), model=onnx, K=10, B=x.shape[0], sched=COSINE, cases=cases,
                                 x=x.flatten().tolist(), z=z.flatten().tolist()))


def test_one_guided_step_in_the_page_is_the_library_s():
    """eps_tilde = (1 + w) eps(x_t, y) - w eps(x_t) (Ho & Salimans eq. 6) from one call on the doubled batch,
    then DDPM's or DDIM's step: guided_model and ddpm_step/ddim_step with the same x_t, t and z, to 1e-5."""
    model, s = tiny_conditional_unet(), schedule(COSINE)
    x, z = draws(11, 4, 1, 8, 8).float(), draws(12, 4, 1, 8, 8)
    cases = [dict(y=y, w=w, t=t, sampler=smp, t_prev=t // 2, eta=0.5, clip=clip)
             for y, w in ((7, 0.0), (7, 2.0), (2, 2.0), (None, 2.0))
             for t, smp, clip in ((150, "ddim", None), (37, "ddpm", 1.0), (1, "ddpm", None))]
    got = run_guided(model, x, z, cases)
    for c, g in zip(cases, got):
        t = torch.full((4,), c["t"])
        with torch.no_grad():  # "any" (y = None) is the "no label" token: the unconditional eps(x_t)
            eps = (model(x, t, None) if c["y"] is None else guided_model(model, c["y"], c["w"])(x, t)).double()
        if c["sampler"] == "ddpm":
            want = ddpm_step(x.double(), c["t"], eps, s, z, clip_x0=c["clip"])
        else:
            want = ddim_step(x.double(), c["t"], eps, s, z, t_prev=c["t_prev"], eta=c["eta"], clip_x0=c["clip"])
        np.testing.assert_allclose(np.array(g["eps"]), eps.flatten().numpy(), rtol=0, atol=1e-5, err_msg=str(c))
        np.testing.assert_allclose(np.array(g["x"]), want.flatten().numpy(), rtol=0, atol=1e-5, err_msg=str(c))
    eps = {(c["y"], c["w"], c["t"]): np.array(g["eps"]) for c, g in zip(cases, got)}
    with torch.no_grad():  # w = 0 is the conditional model itself, and the label and w both matter
        cond = model(x, torch.full((4,), 150), torch.full((4,), 7)).flatten().numpy()
    np.testing.assert_allclose(eps[7, 0.0, 150], cond, rtol=0, atol=1e-5)
    for a, b in (((7, 0.0), (7, 2.0)), ((7, 2.0), (2, 2.0)), ((7, 2.0), (None, 2.0))):
        assert np.abs(eps[(*a, 150)] - eps[(*b, 150)]).max() > 1e-2, (a, b)


def test_a_guided_ddim_run_in_the_page_is_the_library_s():
    """What the reader's page computes for "digit 3, w = 2", end to end: 10 DDIM steps from the same x_T."""
    model, x = tiny_conditional_unet(), draws(13, 4, 1, 8, 8).float()
    got = run_guided(model, x, x, [dict(y=3, w=2.0, steps=10)])[0]
    with torch.no_grad():
        want = ddim_sample(guided_model(model, 3, 2.0), (4, 1, 8, 8), schedule(COSINE), 10, 0.0, clip_x0=1.0, x_T=x)
    np.testing.assert_allclose(np.array(got), want.flatten().numpy(), rtol=0, atol=1e-4)


def test_the_guided_page_weighs_about_what_chapter_8_s_does():
    """The conditional digits U-Net adds a (K + 1, 4 ch) label embedding: its page is chapter 8's plus a little."""
    from ddpm_edu.training.config import load_config

    plain = UNet(**unet_kwargs("digits")).eval()
    torch.manual_seed(0)
    cond = UNet(**unet_kwargs("digits", num_classes=10)).eval()
    a = len(live.live_digits(model=plain).to_html())
    b = len(live.live_digits(load_config("digits-guided"), model=cond).to_html())
    extra = 4 * 11 * cond.label_emb.weight.shape[1] * 4 / 3  # the embedding's float32 bytes, in base64
    assert a < b < 1.5 * a and b - a < 2 * extra + 20_000, (a, b)


# --------------------------------------------------------------------------- settings the samplers refuse
# settings, and the names of those that are wrong
REFUSED = [(dict(sampler="euler"), ["sampler"]), (dict(eta=-0.5), ["eta"]), (dict(variance="sigma"), ["variance"]),
           (dict(sampler="ddpm", eta=-1.0, variance="x"), ["eta", "variance"])]


@pytest.mark.parametrize("bad, names", REFUSED, ids=lambda b: json.dumps(b))
def test_the_page_refuses_a_sampler_s_settings_in_python_s_words(bad, names):
    """What live_toy raises and what the page would show (sampler.js), for the same settings, word for word."""
    st = {"sampler": "ddpm", "steps": 10, "eta": 0.0, "variance": "beta_tilde", **bad}
    with pytest.raises(ValueError) as raised:
        small_toy_widget(**st)
    script = 'out(J("sampler.js").samplerProblems(input.sampler, input.steps, input.eta, input.variance, 50));'
    page = run_node(script, st)
    assert list(page) == names
    assert str(raised.value) == "; ".join(page.values())  # check_sampler's one message lists them all


def test_ddim_s_steps_are_refused_in_the_library_s_words():
    for steps in (0, 51, -3):
        with pytest.raises(ValueError) as raised:
            ddim_timesteps(50, steps)
        script = 'try { J("sampler.js").ddimTimesteps(50, input); out(null); } catch (e) { out(e.message); }'
        assert run_node(script, steps) == str(raised.value)


def test_the_chosen_sampler_runs_and_refuses_as_the_settings_say():
    """sampler.js's sample(): DDIM with more steps than T takes T of them; bad settings fail before any step."""
    task = dict(op="chosen_run", kind="linear", T=50, mu=MU, sd=SD, n=8, seed=1)
    ddim_all = dict(sampler="ddim", steps=500, eta=0.0)
    a, b = run_js([{**task, "st": ddim_all}, {**task, "st": {**ddim_all, "steps": 50}}])
    assert a == b
    script = """const Sm = J("sampler.js"), sc = Sm.schedule({kind: "linear", T: 50}); let calls = 0;
try { await Sm.sample(() => { calls++; return new Float64Array(2); }, new Float64Array(2), 2, sc,
                      {sampler: "ddim", steps: 10, eta: -1}, {}); out(null); }
catch (e) { out({message: e.message, calls: calls}); }"""
    assert run_node(script, None) == {"message": "eta must be a finite number >= 0 (DDIM's stochasticity), got -1.0", "calls": 0}


# --------------------------------------------------------------------------- the Python face (ddpm_edu.web.live)
def small_toy_widget(**kw):
    from ddpm_edu.training.config import load_config

    return live.live_toy(load_config("toy2d"), model=MLPDenoiser(hidden=8, layers=1, t_dim=4), n=50, **kw)


def test_the_inline_scripts_parse_and_carry_the_config(tmp_path):
    model = UNet(**unet_kwargs("digits", in_ch=1, image_size=8, ch=8)).eval()
    guided = live.live_digits(model=tiny_conditional_unet(), label=7)
    for w in (small_toy_widget(), live.live_toy(exact=True), live.live_digits(model=model), guided):
        html = w.to_html()
        script = html.split("<script>", 1)[1].rsplit("</script>", 1)[0]
        (tmp_path / "inline.js").write_text(script)
        out = subprocess.run([node(), "--check", str(tmp_path / "inline.js")], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert ("mountToy" if w.config["kind"] == "toy" else "mountDigits") in script
    assert live.live_toy(exact=True).config["mlp"] is None and len(small_toy_widget().config["data"]) == 2000


def test_the_anywidget_module_imports_as_an_es_module(tmp_path):
    esm = tmp_path / "live.mjs"
    esm.write_text(live.LiveSampler._esm)
    check = f'import("{esm.as_uri()}").then(m => process.exit(typeof m.default.render === "function" ? 0 : 3))'
    out = subprocess.run([node(), "-e", check], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="sampler"):
        small_toy_widget(sampler="euler")
    with pytest.raises(ValueError, match="eta"):
        small_toy_widget(eta=-1)


def test_a_conditional_model_brings_the_digit_and_w_and_only_it():
    """Chapter 10's page starts at the digit and w given (any and 2.0 by default); chapter 8's is as before."""
    small = UNet(**unet_kwargs("digits", ch=8)).eval()
    plain = live.live_digits(model=small).config
    assert "classes" not in plain and set(plain["settings"]) == {"sampler", "steps", "eta", "clip", "view", "seed"}
    cond = tiny_conditional_unet()
    c = live.live_digits(model=cond).config
    assert c["classes"] == 10 and (c["settings"]["label"], c["settings"]["w"]) == ("any", 2.0)
    c = live.live_digits(model=cond, label=0, w=4).config
    assert (c["settings"]["label"], c["settings"]["w"]) == (0, 4.0)
    for bad, words in ((dict(label=10), r"label 10 is not one of the model's classes 0\.\.9"),
                       (dict(label=True), "label True"), (dict(w=-0.5), r"w must be a number in \[0, 4.0\] in steps of 0.5"),
                       (dict(w=4.5), "w must"), (dict(w=float("nan")), "w must"), (dict(w=1.3), "w must"),
                       (dict(label=-1, w=9), "label -1 .*; w must")):
        with pytest.raises(ValueError, match=words):
            live.live_digits(model=cond, **bad)
    for bad in (dict(label=3), dict(w=1.0)):
        with pytest.raises(ValueError, match="unconditional .* no digit or guidance"):
            live.live_digits(model=small, **bad)
    w = run_node('out(J("live.js").SLIDERS.w);', None)  # the page's slider is the range Python checks
    assert w[2:5] == [0, live.W_MAX, live.W_STEP], w


def test_the_sphinx_extension_ships_onnxruntime_web(tmp_path):
    from types import SimpleNamespace

    from ddpm_edu.web import sphinxext

    app = SimpleNamespace(builder=SimpleNamespace(format="html"), outdir=str(tmp_path))
    sphinxext.copy_runtime(app, None)
    for name in ORT_FILES:
        assert (tmp_path / sphinxext.FOLDER / name).read_bytes() == (ort_dist() / name).read_bytes()


# --------------------------------------------------------------------------- finding onnxruntime-web (ddpm_edu.web.ort)
def test_the_pinned_runtime_version_is_package_json_s():
    pinned = json.loads((Path(__file__).resolve().parents[1] / "package.json").read_text())["dependencies"]["onnxruntime-web"]
    assert pinned == ort.ORT_VERSION


def test_the_page_loads_the_files_python_ships():
    assert run_node('out(J("ort.js").FILES);', None) == list(ORT_FILES)


def test_the_checkout_s_runtime_is_the_repository_s_node_modules():
    assert ort.CHECKOUT_ORT == Path(__file__).resolve().parents[1] / "node_modules/onnxruntime-web/dist"


def test_an_installed_package_gets_the_runtime_from_npm_once(tmp_path, monkeypatch):
    """Without a checkout's node_modules (Colab), npm installs the pinned runtime into the cache, once."""
    log = tmp_path / "npm.log"
    npm = tmp_path / "bin" / "npm"
    npm.parent.mkdir()
    npm.write_text(  # a stand-in npm: records its arguments and lays out what `npm install --prefix P pkg` would
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        'while [ "$1" != "--prefix" ]; do shift; done\n'
        'd="$2/node_modules/onnxruntime-web/dist"; mkdir -p "$d"\n'
        + "".join(f'echo x > "$d/{f}"\n' for f in ORT_FILES))
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{npm.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("DDPM_EDU_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DDPM_EDU_ORT", raising=False)
    monkeypatch.setattr(ort, "CHECKOUT_ORT", tmp_path / "no-checkout")
    first = ort.ort_dist()
    assert first == tmp_path / "cache" / f"onnxruntime-web-{ort.ORT_VERSION}" / "node_modules/onnxruntime-web/dist"
    assert ort.ort_dist() == first
    calls = log.read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("install") and calls[0].endswith(f"onnxruntime-web@{ort.ORT_VERSION}")


def test_without_the_runtime_or_npm_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm here
    monkeypatch.setenv("DDPM_EDU_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DDPM_EDU_ORT", raising=False)
    monkeypatch.setattr(ort, "CHECKOUT_ORT", tmp_path / "no-checkout")
    with pytest.raises(FileNotFoundError, match=r"npm is not on PATH.*npm ci.*\$DDPM_EDU_ORT"):
        ort.ort_dist()
    monkeypatch.setenv("DDPM_EDU_ORT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="DDPM_EDU_ORT must name"):
        ort.ort_dist()


def test_the_widget_view_is_sent_the_runtime_by_the_kernel(monkeypatch):
    """In Jupyter and Colab the digits widget asks the kernel for onnxruntime-web over the comm: its module as
    text and its WASM as a binary buffer, byte for byte; when the runtime cannot be had, the reason instead."""
    from ddpm_edu.training.config import load_config

    cfg = load_config("digits")
    widget = live.live_digits(cfg, model=UNet(**unet_kwargs(cfg.model.preset, **cfg.model.unet_overrides())).eval())
    sent = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: sent.append((content, buffers)))
    widget._send_runtime(widget, {"want": "something else"}, [])
    assert sent == []
    widget._send_runtime(widget, {"want": "ort"}, [])
    (content, buffers), folder = sent[0], ort_dist()
    assert content["ort_js"] == (folder / ORT_FILES[0]).read_text(encoding="utf-8")
    assert bytes(buffers[0]) == (folder / ORT_FILES[1]).read_bytes()

    def missing():
        raise FileNotFoundError("no runtime here")

    monkeypatch.setattr(live, "ort_dist", missing)
    widget._send_runtime(widget, {"want": "ort"}, [])
    assert sent[1] == ({"error": "no runtime here"}, None)
