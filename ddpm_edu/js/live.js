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

  return {
    uniform: uniform, randn: randn, schedule: schedule, predictX0: predictX0,
    ddpmCoefs: ddpmCoefs, ddpmStep: ddpmStep, ddpmSample: ddpmSample,
    roundHalfEven: roundHalfEven, ddimTimesteps: ddimTimesteps, ddimCoefs: ddimCoefs, ddimStep: ddimStep, ddimSample: ddimSample,
    run: run, mixtureEps: mixtureEps, timestepEmbedding: timestepEmbedding, mlpModel: mlpModel,
    decodeWeights: decodeWeights, bytes: bytes, onnxModel: onnxModel, energyDistance: energyDistance,
  };
})(typeof DDPMExplorer !== "undefined" ? DDPMExplorer : require("./explorer.js"));

if (typeof module !== "undefined" && module.exports) module.exports = DDPMLive;
