/* ddpm-edu: live sampling in the reader's browser (chapters 6 and 8).
 *
 * The samplers of ddpm_edu/sampling.py, line by line: DDPM (Ho et al. 2020, Algorithm 2, with
 * sigma_t^2 = beta_tilde_t or beta_t) and DDIM (Song et al. 2021, eqs. 12 and 16), both with optional
 * x0_hat clipping and a callback that sees every step. The schedule comes from explorer.js
 * (DDPMExplorer.schedule), which must be loaded first: the two files travel together.
 *
 * Loaded three ways, like explorer.js: inline in a text/html output (ddpm_edu/widgets.py wraps
 * explorer.js + this file in one function), as anywidget's ES module, and under node by
 * tests/test_live.py, through the module.exports line at the end. Its tests hold it to ddpm_edu.
 *
 * Arrays: a batch of B points of dimension D is one flat Float64Array of B * D numbers, row-major,
 * like a (B, D) tensor; an image batch (B, 1, 8, 8) is B * 64 numbers. A model is
 * model(x, t, B) -> eps_hat (same layout; a Promise is fine), with one t for the whole batch.
 */
var DDPMLive = (function (E) {
  "use strict";

  // ------------------------------------------------------------------ randomness (explicit, seeded)

  /** A seeded uniform generator on [0, 1) (mulberry32): the same seed gives the same stream. */
  function uniform(seed) {
    var a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      var r = Math.imul(a ^ (a >>> 15), 1 | a);
      r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
      return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** n draws of N(0, 1) from the uniform generator u (Box-Muller). */
  function randn(n, u) {
    var out = new Float64Array(n);
    for (var i = 0; i < n; i += 2) {
      var r = Math.sqrt(-2 * Math.log(1 - u())), phi = 2 * Math.PI * u();
      out[i] = r * Math.cos(phi);
      if (i + 1 < n) out[i + 1] = r * Math.sin(phi);
    }
    return out;
  }

  // ------------------------------------------------------------------ the schedule's per-t coefficients

  /** DDPMExplorer.schedule plus what the samplers read, as Schedule.from_betas: all indexed by t, length T + 1. */
  function schedule(kind, T, beta1, betaT, s) {
    var sc = E.schedule(kind, T, beta1 === undefined ? 1e-4 : beta1, betaT === undefined ? 0.02 : betaT,
                        s === undefined ? 0.008 : s);
    var n = T + 1, ab = sc.alphaBar;
    sc.alphas = new Float64Array(n); sc.betaTilde = new Float64Array(n);
    sc.coefX0 = new Float64Array(n); sc.coefXt = new Float64Array(n);
    for (var t = 0; t <= T; t++) {
      var abPrev = t > 0 ? ab[t - 1] : 1, rest = 1 - ab[t];
      sc.alphas[t] = 1 - sc.betas[t];
      sc.betaTilde[t] = rest > 0 ? (1 - abPrev) / rest * sc.betas[t] : 0; // (1 - ab_{t-1}) / (1 - ab_t) beta_t
      sc.coefX0[t] = rest > 0 ? Math.sqrt(abPrev) * sc.betas[t] / rest : 1; // eq. (7), weight on x0
      sc.coefXt[t] = rest > 0 ? Math.sqrt(sc.alphas[t]) * (1 - abPrev) / rest : 0; // eq. (7), weight on x_t
    }
    return sc;
  }

  /** x0_hat = (x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t), clamped to [-c, c] when clip = c (not null). */
  function predictX0(xt, epsHat, sqrtAb, sqrt1mAb, clip) {
    var x0 = new Float64Array(xt.length);
    for (var i = 0; i < xt.length; i++) {
      var v = (xt[i] - sqrt1mAb * epsHat[i]) / sqrtAb;
      x0[i] = clip == null ? v : Math.max(-clip, Math.min(clip, v));
    }
    return x0;
  }

  // ------------------------------------------------------------------ DDPM (Algorithm 2)

  /** The coefficients of every DDPM step, k[t] for t = 1..T (sampling.DDPMCoefs). variance: "beta_tilde" or "beta". */
  function ddpmCoefs(sc, variance) {
    if (variance !== "beta_tilde" && variance !== "beta") throw new Error("variance must be beta_tilde or beta, got " + variance);
    var k = [null];
    for (var t = 1; t <= sc.T; t++) {
      var ab = sc.alphaBar[t];
      k.push({
        sqrtAb: Math.sqrt(ab), sqrt1mAb: Math.sqrt(1 - ab),
        epsCoef: sc.betas[t] / Math.sqrt(Math.max(1 - ab, 1e-300)), // beta_t / sqrt(1 - ab_t), eq. (11)
        sqrtAlpha: Math.sqrt(sc.alphas[t]), coefX0: sc.coefX0[t], coefXt: sc.coefXt[t],
        sigma: t > 1 ? Math.sqrt(variance === "beta" ? sc.betas[t] : sc.betaTilde[t]) : 0, // Alg. 2, line 3: no noise at t = 1
      });
    }
    return k;
  }

  /** One reverse step x_t -> x_{t-1} (sampling.ddpm_step); z = null adds no noise. */
  function ddpmStep(xt, epsHat, z, k, clip) {
    var mean;
    if (clip == null) {
      mean = new Float64Array(xt.length);
      for (var i = 0; i < xt.length; i++) mean[i] = (xt[i] - k.epsCoef * epsHat[i]) / k.sqrtAlpha; // eq. (11)
    } else {
      mean = predictX0(xt, epsHat, k.sqrtAb, k.sqrt1mAb, clip);
      for (var j = 0; j < xt.length; j++) mean[j] = k.coefX0 * mean[j] + k.coefXt * xt[j]; // eq. (7) at the clipped x0_hat
    }
    if (z) for (var m = 0; m < xt.length; m++) mean[m] += k.sigma * z[m]; // Alg. 2, line 4
    return mean;
  }

  /** DDPM ancestral sampling from x = x_T (Alg. 2). opts: variance, clip, callback, seed. Resolves to x_0. */
  function ddpmSample(model, x, B, sc, opts) {
    var k = ddpmCoefs(sc, opts.variance || "beta_tilde"), times = [];
    for (var t = sc.T; t >= 1; t--) times.push([t, t - 1]); // Alg. 2, line 2: t = T, ..., 1
    return run(model, x, B, times, ddpmStep, k, true, opts);
  }

  // ------------------------------------------------------------------ DDIM

  /** torch.round: halves go to the even neighbour. */
  function roundHalfEven(v) {
    var r = Math.round(v);
    return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  /** The DDIM sub-sequence tau (sampling.ddim_timesteps): `steps` evenly spaced, distinct steps in 1..T, ending at T. */
  function ddimTimesteps(T, steps) {
    if (!(Number.isInteger(steps) && steps >= 1 && steps <= T)) throw new Error("steps must lie in 1..T (T = " + T + "), got " + steps);
    var taus = Array.from(E.linspace(1, T, steps), roundHalfEven);
    return taus.filter(function (v, i) { return i === 0 || v !== taus[i - 1]; });
  }

  /** The coefficients of one DDIM step t -> t_prev from ab_t and ab_prev (sampling.DDIMCoefs.at). */
  function ddimCoefs(abT, abPrev, eta) {
    var sigma = eta * Math.sqrt((1 - abPrev) / (1 - abT) * (1 - abT / abPrev)); // eq. (16)
    return { sqrtAb: Math.sqrt(abT), sqrt1mAb: Math.sqrt(1 - abT), sqrtAbPrev: Math.sqrt(abPrev),
             direction: Math.sqrt(Math.max(1 - abPrev - sigma * sigma, 0)), sigma: sigma }; // eq. (12): "direction pointing to x_t"
  }

  /** One DDIM update x_t -> x_{t_prev} (sampling.ddim_step); z = null adds no noise. */
  function ddimStep(xt, epsHat, z, k, clip) {
    var x0 = predictX0(xt, epsHat, k.sqrtAb, k.sqrt1mAb, clip), out = new Float64Array(xt.length); // eq. (12), "predicted x0"
    for (var i = 0; i < xt.length; i++) {
      var e = clip == null ? epsHat[i] : (xt[i] - k.sqrtAb * x0[i]) / k.sqrt1mAb; // the eps that goes with the clipped x0_hat
      out[i] = k.sqrtAbPrev * x0[i] + k.direction * e + (z ? k.sigma * z[i] : 0); // eq. (12)
    }
    return out;
  }

  /** DDIM with `steps` model calls and stochasticity eta (0: deterministic). opts: clip, callback, seed. Resolves to x_0. */
  function ddimSample(model, x, B, sc, steps, eta, opts) {
    if (!(eta >= 0)) throw new Error("eta must be >= 0, got " + eta);
    var taus = ddimTimesteps(sc.T, steps).reverse(), times = [], k = {}; // tau_S = T > ... > tau_1
    for (var i = 0; i < taus.length; i++) {
      var t = taus[i], tPrev = i + 1 < taus.length ? taus[i + 1] : 0;
      times.push([t, tPrev]);
      k[t] = ddimCoefs(sc.alphaBar[t], sc.alphaBar[tPrev], eta);
    }
    return run(model, x, B, times, ddimStep, k, eta > 0, opts);
  }

  // ------------------------------------------------------------------ the shared loop (sampling._run)

  /** x_t -> x_{t_prev} for each [t, t_prev] of `times`: eps_hat = model(x, t, B), callback(t, x, x0_hat), then
   *  step(x, eps_hat, z, k[t], clip) with z ~ N(0, I) from opts.seed when `noisy` and t_prev > 0. The callback
   *  may return a Promise (to let the page draw) and is called once more with t = 0 and the final x_0.
   *  opts.stop() returning true ends the run early (resolves to null). */
  async function run(model, x, B, times, step, k, noisy, opts) {
    var clip = opts.clip == null ? null : opts.clip, cb = opts.callback, u = uniform(opts.seed || 0);
    for (var i = 0; i < times.length; i++) { // Alg. 2, line 2
      var t = times[i][0], tPrev = times[i][1];
      if (opts.stop && opts.stop()) return null;
      var epsHat = await model(x, t, B);
      if (cb) await cb(t, x, predictX0(x, epsHat, k[t].sqrtAb, k[t].sqrt1mAb, clip));
      var z = noisy && tPrev > 0 ? randn(x.length, u) : null; // line 3
      x = step(x, epsHat, z, k[t], clip); // line 4
    }
    if (cb) await cb(0, x, x);
    return x; // line 6
  }

  // ------------------------------------------------------------------ models that run in plain JS

  /** eps*(x_t, t) for data sum_k w_k N(mu_k, std_k^2 I) in D dimensions (analytic.MixtureEps): a model.
   *  mix = {weights: [K], means: [K][D], stds: [K]}; a single Gaussian is K = 1 (analytic.GaussianEps). */
  function mixtureEps(mix, sc) {
    var K = mix.weights.length, D = mix.means[0].length;
    return function (x, t, B) {
      var ab = sc.alphaBar[t], out = new Float64Array(B * D), logp = new Float64Array(K), v = new Float64Array(K);
      for (var c = 0; c < K; c++) v[c] = ab * mix.stds[c] * mix.stds[c] + 1 - ab; // variance of q(x_t | k)
      for (var b = 0; b < B; b++) {
        var mx = -Infinity, norm = 0, c2, d;
        for (c2 = 0; c2 < K; c2++) { // log w_k + log N(x_t; sqrt(ab) mu_k, v_k I), up to a constant
          var d2 = 0;
          for (d = 0; d < D; d++) { var r = x[b * D + d] - Math.sqrt(ab) * mix.means[c2][d]; d2 += r * r; }
          logp[c2] = Math.log(mix.weights[c2]) - 0.5 * D * Math.log(v[c2]) - 0.5 * d2 / v[c2];
          mx = Math.max(mx, logp[c2]);
        }
        for (c2 = 0; c2 < K; c2++) { logp[c2] = Math.exp(logp[c2] - mx); norm += logp[c2]; } // p(k | x_t), unnormalised
        for (d = 0; d < D; d++) {
          var s = 0;
          for (c2 = 0; c2 < K; c2++) s += logp[c2] / norm * (x[b * D + d] - Math.sqrt(ab) * mix.means[c2][d]) / v[c2];
          out[b * D + d] = Math.sqrt(1 - ab) * s; // sqrt(1 - ab) sum_k p(k | x_t) (x_t - sqrt(ab) mu_k) / v_k
        }
      }
      return out;
    };
  }

  /** unet.timestep_embedding in float32, as torch computes it: [sin(t w_i), cos(t w_i)], w_i = 10000^(-i / (h - 1)). */
  function timestepEmbedding(t, dim) {
    var f = Math.fround, half = Math.floor(dim / 2), emb = new Float64Array(dim);
    for (var i = 0; i < half; i++) {
      var w = f(Math.exp(f(f(-Math.log(10000) * i) / Math.max(half - 1, 1))));
      var arg = f(t * w);
      emb[i] = f(Math.sin(arg));
      emb[half + i] = f(Math.cos(arg));
    }
    return emb;
  }

  /** y = W x + b for one row x of length n_in; W: Float32Array (n_out, n_in) row-major, as nn.Linear. */
  function linear(W, bias, x, nOut, nIn, out) {
    for (var o = 0; o < nOut; o++) {
      var s = bias[o], row = o * nIn;
      for (var i = 0; i < nIn; i++) s += W[row + i] * x[i];
      out[o] = s;
    }
    return out;
  }

  function silu(v) { return v / (1 + Math.exp(-v)); }

  /** toy.MLPDenoiser in plain JS from its weights {name: Float32Array} and sizes {dim, hidden, layers, t_dim}:
   *  h = W_in x_t + MLP(emb(t)), then h + W SiLU(h) per layer, then W_out SiLU(h). */
  function mlpModel(w, sizes) {
    var H = sizes.hidden, D = sizes.dim, L = sizes.layers, td = sizes.t_dim;
    return function (x, t, B) {
      var e = timestepEmbedding(t, td), a = new Float64Array(H), th = new Float64Array(H); // the t branch: once per step
      linear(w["t_mlp.0.weight"], w["t_mlp.0.bias"], e, H, td, a);
      for (var j = 0; j < H; j++) a[j] = silu(a[j]);
      linear(w["t_mlp.2.weight"], w["t_mlp.2.bias"], a, H, H, th);
      var out = new Float64Array(B * D), h = new Float64Array(H), g = new Float64Array(H), y = new Float64Array(H);
      for (var b = 0; b < B; b++) {
        linear(w["inp.weight"], w["inp.bias"], x.subarray(b * D, b * D + D), H, D, h);
        for (j = 0; j < H; j++) h[j] += th[j]; // (hidden,)
        for (var l = 0; l < L; l++) {
          for (j = 0; j < H; j++) g[j] = silu(h[j]);
          linear(w["hidden." + l + ".weight"], w["hidden." + l + ".bias"], g, H, H, y);
          for (j = 0; j < H; j++) h[j] += y[j]; // h + W SiLU(h)
        }
        for (j = 0; j < H; j++) g[j] = silu(h[j]);
        linear(w["out.weight"], w["out.bias"], g, D, H, y);
        for (var d = 0; d < D; d++) out[b * D + d] = y[d]; // eps_hat, (dim,)
      }
      return out;
    };
  }

  /** Float32Arrays from {name: base64 of little-endian float32}. */
  function decodeWeights(b64) {
    var w = {};
    Object.keys(b64).forEach(function (name) { w[name] = new Float32Array(bytes(b64[name]).buffer); });
    return w;
  }

  function bytes(b64) {
    var s = typeof atob === "function" ? atob(b64) : Buffer.from(b64, "base64").toString("binary");
    var out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  // ------------------------------------------------------------------ the digits U-Net through onnxruntime-web

  /** A model that runs an ONNX network (inputs x: float32 (B, C, H, W), t: int64 (B,); output eps) with onnxruntime-web.
   *  ort: the onnxruntime-web module; session: an ort.InferenceSession. */
  function onnxModel(ort, session, shape) {
    return async function (x, t, B) {
      var tt = new BigInt64Array(B).fill(BigInt(t));
      var res = await session.run({ x: new ort.Tensor("float32", Float32Array.from(x), [B].concat(shape)),
                                    t: new ort.Tensor("int64", tt, [B]) });
      return Float64Array.from(res[session.outputNames[0]].data);
    };
  }

  // ------------------------------------------------------------------ sample quality (metrics.energy_distance)

  /** The unbiased energy distance between point sets x (n, D) and y (m, D), flat arrays: E|X-Y| - E|X-X'|/2 - E|Y-Y'|/2. */
  function energyDistance(x, y, D) {
    function mean(a, b, same) {
      var na = a.length / D, nb = b.length / D, s = 0;
      for (var i = 0; i < na; i++) for (var j = 0; j < nb; j++) {
        var d2 = 0;
        for (var d = 0; d < D; d++) { var r = a[i * D + d] - b[j * D + d]; d2 += r * r; }
        s += Math.sqrt(d2);
      }
      return s / (same ? na * (na - 1) : na * nb); // the diagonal is 0: a mean over i != j
    }
    return mean(x, y, false) - 0.5 * mean(x, x, true) - 0.5 * mean(y, y, true);
  }

  // ------------------------------------------------------------------ the widgets: shared pieces

  function el(tag, attrs, parent) {
    var e = document.createElement(tag);
    for (var k in attrs) if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  var CSS =
    ".ddpml{font:13px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;background:#fff;border:1px solid #ddd;" +
    "border-radius:6px;padding:10px 12px;max-width:760px;box-sizing:border-box}" +
    ".ddpml .dl-row{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin:3px 0}" +
    ".ddpml label{display:inline-flex;align-items:center;gap:4px;margin:0;font-weight:normal}" +
    ".ddpml input[type=radio],.ddpml input[type=checkbox]{margin:0;width:auto}" +
    ".ddpml input[type=range]{width:130px;margin:0}.ddpml input[type=number]{width:64px}" +
    ".ddpml .dl-v{min-width:34px;font-variant-numeric:tabular-nums}" +
    ".ddpml button{padding:3px 14px;border:1px solid #888;border-radius:4px;background:#f4f4f4;cursor:pointer}" +
    ".ddpml .dl-status{color:#444;font-variant-numeric:tabular-nums;margin:4px 0;min-height:1.4em}" +
    ".ddpml .dl-err{color:#b3261e}.ddpml canvas{max-width:none;border:1px solid #eee}";

  /** A control row builder; every control reads and writes st[name] and calls changed(). */
  function controls(box, st, changed) {
    var row = el("div", { class: "dl-row" }, box), api = { row: row, inputs: {} };
    api.newRow = function () { row = el("div", { class: "dl-row" }, box); api.row = row; return row; };
    api.radio = function (name, title, options) {
      var span = el("span", { "data-control": name }, row), group = "ddpml-" + name + "-" + Math.random().toString(36).slice(2);
      el("span", { text: title }, span);
      options.forEach(function (o) {
        var lab = el("label", {}, span), r = el("input", { type: "radio", name: group, value: o[0] }, lab);
        lab.appendChild(document.createTextNode(o[1]));
        r.checked = st[name] === o[0];
        r.addEventListener("change", function () { if (r.checked) { st[name] = o[0]; changed(name); } });
      });
      return span;
    };
    api.slider = function (name, title, min, max, step, show) {
      var lab = el("label", { "data-control": name }, row);
      lab.appendChild(document.createTextNode(title));
      var inp = el("input", { type: "range", min: min, max: max, step: step, "data-name": name }, lab), v = el("span", { class: "dl-v" }, lab);
      inp.value = st[name];
      v.textContent = show(st[name]);
      inp.addEventListener("input", function () { st[name] = parseFloat(inp.value); v.textContent = show(st[name]); changed(name); });
      api.inputs[name] = inp;
      return lab;
    };
    api.check = function (name, title) {
      var lab = el("label", { "data-control": name }, row), c = el("input", { type: "checkbox", "data-name": name }, lab);
      lab.appendChild(document.createTextNode(title));
      c.checked = !!st[name];
      c.addEventListener("change", function () { st[name] = c.checked; changed(name); });
      return lab;
    };
    api.number = function (name, title) {
      var lab = el("label", { "data-control": name }, row);
      lab.appendChild(document.createTextNode(title));
      var inp = el("input", { type: "number", min: 0, step: 1, "data-name": name }, lab);
      inp.value = st[name];
      inp.addEventListener("change", function () { st[name] = Math.max(0, parseInt(inp.value, 10) || 0); changed(name); });
      return lab;
    };
    return api;
  }

  /** The sampler chosen in st: DDPM over all T steps, or DDIM over st.steps; returns a Promise of x_0. */
  function chosenSampler(model, x, B, sc, st, opts) {
    return st.sampler === "ddpm" ? ddpmSample(model, x, B, sc, opts)
      : ddimSample(model, x, B, sc, Math.min(st.steps, sc.T), st.eta, opts);
  }

  function nextFrame() { return new Promise(function (r) { (typeof requestAnimationFrame === "function" ? requestAnimationFrame : setTimeout)(r); }); }

  function show(node, on) { node.style.display = on ? "" : "none"; }

  // ------------------------------------------------------------------ the 2-D toy

  /** Mount the 2-D live sampler in `root`. cfg: {schedule: {kind, T, beta_1, beta_T}, mlp: mlp_weights() or null,
   *  mix: a mixture for the exact eps* (used when mlp is null), data: flat (n, 2) reference points, n, settings}. */
  function mountToy(root, cfg) {
    var st = Object.assign({ sampler: "ddpm", variance: "beta_tilde", steps: 50, eta: 0, seed: 0, T: cfg.schedule.T }, cfg.settings);
    var exact = !cfg.mlp, weights = exact ? null : decodeWeights(cfg.mlp.weights), data = Float64Array.from(cfg.data);
    root.textContent = "";
    var box = el("div", { class: "ddpml ddpml-toy" }, root), runId = 0;
    el("style", { text: CSS }, box);
    var c = controls(box, st, update);
    c.radio("sampler", "sampler:", [["ddpm", " DDPM"], ["ddim", " DDIM"]]);
    var variance = c.radio("variance", "σ²:", [["beta_tilde", " β̃"], ["beta", " β"]]);
    c.newRow();
    var steps = c.slider("steps", "steps ", 10, 200, 1, String);
    var eta = c.slider("eta", "η ", 0, 1, 0.05, function (v) { return v.toFixed(2); });
    c.newRow();
    var tCtl = exact ? c.slider("T", "T ", 10, 1000, 10, String) : el("span", { class: "dl-v", text: "T = " + cfg.schedule.T + " (the network's)" }, c.row);
    c.number("seed", "seed ");
    var button = el("button", { type: "button", text: "sample" }, c.row);
    var W = 340, view = 2.6, cv = el("canvas", { width: W, height: W, "data-plot": "points" }, box), ctx = cv.getContext("2d");
    var status = el("div", { class: "dl-status" }, box);
    function update() {
      show(variance, st.sampler === "ddpm"); show(steps, st.sampler === "ddim"); show(eta, st.sampler === "ddim");
    }
    function draw(x, n) {
      var px = function (v) { return (v + view) / (2 * view) * W; };
      ctx.clearRect(0, 0, W, W);
      ctx.fillStyle = "#d0d0d0";
      for (var i = 0; i < data.length / 2; i++) ctx.fillRect(px(data[2 * i]) - 1, W - px(data[2 * i + 1]) - 1, 2, 2);
      ctx.fillStyle = "rgba(31,119,180,0.75)";
      for (var j = 0; j < n; j++) ctx.fillRect(px(x[2 * j]) - 1.25, W - px(x[2 * j + 1]) - 1.25, 2.5, 2.5);
    }
    async function sample() {
      var id = ++runId, n = cfg.n, sc = schedule(cfg.schedule.kind, exact ? st.T : cfg.schedule.T, cfg.schedule.beta_1, cfg.schedule.beta_T);
      var model = exact ? mixtureEps(cfg.mix, sc) : mlpModel(weights, cfg.mlp.sizes), t0 = performance.now(), calls = 0;
      root.setAttribute("data-state", "running");
      var x = randn(2 * n, uniform(st.seed * 2 + 1)); // x_T ~ N(0, I); the sampler's z come from seed * 2
      var out = await chosenSampler(model, x, n, sc, st, {
        variance: st.variance, seed: st.seed * 2, stop: function () { return id !== runId; },
        callback: async function (t, xt) {
          draw(xt, n);
          status.textContent = t > 0 ? "t = " + t + " · step " + (++calls) : "";
          await nextFrame();
        },
      });
      if (out === null) return; // a newer run took over
      var ms = performance.now() - t0, ed = energyDistance(out, data, 2);
      status.textContent = "done: " + calls + " steps in " + (ms / 1000).toFixed(1) + " s · energy distance to the data: " + ed.toFixed(4);
      root.setAttribute("data-energy", String(ed));
      root.setAttribute("data-ms", String(ms));
      root.setAttribute("data-state", "done");
      root.__ddpmSamples = out;
    }
    button.addEventListener("click", function () { sample().catch(function (e) { status.textContent = String(e); root.setAttribute("data-state", "error"); }); });
    update();
    draw(new Float64Array(0), 0);
    status.textContent = "Press sample: " + cfg.n + " points start from N(0, I)" + (exact ? " and follow the exact ε*." : " and follow the trained network.");
    root.setAttribute("data-state", "idle");
  }

  // ------------------------------------------------------------------ the digits

  /** Where the book keeps onnxruntime-web: <content root>/_static/ddpm_live/ (Sphinx writes the root on <html>). */
  function assetsURL(cfg) {
    if (cfg.assets) return new URL(cfg.assets, document.baseURI).href;
    var root = document.documentElement.getAttribute("data-content_root");
    if (root === null) {
      var s = document.querySelector("script[src*='_static/']");
      root = s ? s.getAttribute("src").split("_static/")[0] : "./";
    }
    return new URL(root + "_static/ddpm_live/", document.baseURI).href;
  }

  /** onnxruntime-web, loaded once per page: from the module source and WASM bytes given (a kernel's widget),
   *  or from the book's _static folder. Nothing is fetched from anywhere else. */
  function loadOrt(cfg, given) {
    var g = typeof window !== "undefined" ? window : {};
    if (g.__ddpmOrt) return g.__ddpmOrt;
    g.__ddpmOrt = (async function () {
      var mod, wasm;
      if (given) {
        var got = await given();
        mod = URL.createObjectURL(new Blob([got.js], { type: "text/javascript" }));
        wasm = got.wasm;
      } else {
        var base = assetsURL(cfg);
        mod = base + "ort.wasm.bundle.min.mjs";
        var res = await fetch(base + "ort-wasm-simd-threaded.wasm");
        if (!res.ok) throw new Error("the ONNX runtime is not at " + base + " (HTTP " + res.status + ")");
        wasm = await res.arrayBuffer();
      }
      var ort = await import(mod);
      ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no threads
      ort.env.wasm.wasmBinary = wasm;
      return ort;
    })();
    g.__ddpmOrt.catch(function () { g.__ddpmOrt = null; });
    return g.__ddpmOrt;
  }

  /** Mount the digits live sampler. cfg: {model: base64 ONNX, shape: [1, 8, 8], schedule, n: 16, assets, settings};
   *  given: a function that resolves to {js, wasm}, onnxruntime-web's module source and WASM bytes (a kernel's
   *  widget), else null: the book's _static folder. */
  function mountDigits(root, cfg, given) {
    var st = Object.assign({ sampler: "ddim", steps: 25, eta: 0, clip: true, view: "x0", seed: 0 }, cfg.settings);
    var n = cfg.n, side = Math.round(Math.sqrt(n)), H = cfg.shape[1], Wd = cfg.shape[2], P = H * Wd, runId = 0, frame = null;
    root.textContent = "";
    var box = el("div", { class: "ddpml ddpml-digits" }, root);
    el("style", { text: CSS }, box);
    var c = controls(box, st, update);
    c.radio("sampler", "sampler:", [["ddpm", " DDPM (T = " + cfg.schedule.T + ")"], ["ddim", " DDIM"]]);
    c.check("clip", " clip x̂₀ to [−1, 1]");
    c.newRow();
    var steps = c.slider("steps", "steps ", 10, 200, 1, String);
    var eta = c.slider("eta", "η ", 0, 1, 0.05, function (v) { return v.toFixed(2); });
    c.newRow();
    c.radio("view", "show:", [["xt", " x_t"], ["x0", " x̂₀"]]);
    c.number("seed", "seed ");
    var button = el("button", { type: "button", text: "sample" }, c.row);
    var G = side * (Wd + 1) + 1, cv = el("canvas", { width: G, height: G, "data-plot": "digits" }, box);
    cv.style.width = cv.style.height = 8 * G + "px";
    cv.style.imageRendering = "pixelated";
    var ctx = cv.getContext("2d"), status = el("div", { class: "dl-status" }, box);
    function update(name) {
      show(steps, st.sampler === "ddim"); show(eta, st.sampler === "ddim");
      if (name === "view" && frame) draw(frame);
    }
    /** The grid: image b at cell (b / side, b % side), pixels [-1, 1] -> grey 0..255, one pixel of gap. */
    function draw(f) {
      var img = ctx.createImageData(G, G), x = st.view === "x0" ? f.x0 : f.xt;
      for (var i = 0; i < img.data.length; i++) img.data[i] = 255;
      for (var b = 0; b < n; b++) for (var r = 0; r < H; r++) for (var q = 0; q < Wd; q++) {
        var v = Math.round((Math.max(-1, Math.min(1, x[b * P + r * Wd + q])) + 1) * 127.5);
        var o = 4 * ((Math.floor(b / side) * (H + 1) + 1 + r) * G + (b % side) * (Wd + 1) + 1 + q);
        img.data[o] = img.data[o + 1] = img.data[o + 2] = v;
      }
      ctx.putImageData(img, 0, 0);
    }
    async function sample() {
      var id = ++runId;
      root.setAttribute("data-state", "loading");
      status.textContent = "loading the network…";
      var ort = await loadOrt(cfg, given);
      if (!root.__ddpmSession) root.__ddpmSession = await ort.InferenceSession.create(bytes(cfg.model));
      var model = onnxModel(ort, root.__ddpmSession, cfg.shape), sc = schedule(cfg.schedule.kind, cfg.schedule.T, cfg.schedule.beta_1, cfg.schedule.beta_T);
      var calls = 0, x = randn(n * P, uniform(st.seed * 2 + 1)), t0 = performance.now(), tNet = 0;
      root.setAttribute("data-state", "running");
      var timed = async function (xx, t, B) { var a = performance.now(), e = await model(xx, t, B); tNet += performance.now() - a; return e; };
      var out = await chosenSampler(timed, x, n, sc, st, {
        clip: st.clip ? 1 : null, seed: st.seed * 2, stop: function () { return id !== runId; },
        callback: async function (t, xt, x0) {
          frame = { xt: xt, x0: x0 };
          draw(frame);
          if (t > 0) status.textContent = "t = " + t + " · step " + (++calls) + " · " + (tNet / calls).toFixed(0) + " ms per step";
          await nextFrame();
        },
      });
      if (out === null) return;
      var ms = performance.now() - t0;
      status.textContent = "done: " + calls + " steps in " + (ms / 1000).toFixed(2) + " s · " + (tNet / calls).toFixed(0) +
        " ms per step in the network (" + n + " digits per call)";
      root.setAttribute("data-ms", String(ms));
      root.setAttribute("data-net-ms", String(tNet));
      root.setAttribute("data-steps", String(calls));
      root.setAttribute("data-state", "done");
      root.__ddpmSamples = out;
    }
    button.addEventListener("click", function () {
      sample().catch(function (e) { status.innerHTML = ""; el("span", { class: "dl-err", text: String(e && e.message || e) }, status); root.setAttribute("data-state", "error"); });
    });
    update();
    draw({ xt: new Float64Array(n * P).fill(-1), x0: new Float64Array(n * P).fill(-1) });
    status.textContent = "Press sample: " + n + " digits from N(0, I), denoised by the trained U-Net in your browser.";
    root.setAttribute("data-state", "idle");
  }

  /** anywidget's entry point. The digits ask the kernel for onnxruntime-web when *sample* is first pressed: it
   *  answers with the module's source and the WASM as a binary buffer (never part of the saved widget state). */
  function render(ctx) {
    var cfg = ctx.model.get("config");
    if (cfg.kind === "toy") return mountToy(ctx.el, cfg);
    return mountDigits(ctx.el, cfg, function () {
      return new Promise(function (resolve, reject) {
        ctx.model.on("msg:custom", function (msg, buffers) {
          if (msg.error) reject(new Error(msg.error));
          else if (msg.ort_js) resolve({ js: msg.ort_js, wasm: buffers[0].buffer.slice(buffers[0].byteOffset, buffers[0].byteOffset + buffers[0].byteLength) });
        });
        ctx.model.send({ want: "ort" });
      });
    });
  }

  return {
    uniform: uniform, randn: randn, schedule: schedule, predictX0: predictX0,
    ddpmCoefs: ddpmCoefs, ddpmStep: ddpmStep, ddpmSample: ddpmSample,
    roundHalfEven: roundHalfEven, ddimTimesteps: ddimTimesteps, ddimCoefs: ddimCoefs, ddimStep: ddimStep, ddimSample: ddimSample,
    run: run, mixtureEps: mixtureEps, timestepEmbedding: timestepEmbedding, mlpModel: mlpModel,
    decodeWeights: decodeWeights, bytes: bytes, onnxModel: onnxModel, energyDistance: energyDistance,
    mountToy: mountToy, mountDigits: mountDigits, render: render,
  };
})(typeof DDPMExplorer !== "undefined" ? DDPMExplorer : require("./explorer.js"));

if (typeof module !== "undefined" && module.exports) module.exports = DDPMLive;
