/* ddpm-edu: the samplers of ddpm_edu/sampling.py in the browser (chapters 6 and 8), line by line.
 *
 * DDPM (Ho et al. 2020, Algorithm 2, with sigma_t^2 = beta_tilde_t or beta_t) and DDIM (Song et al.
 * 2021, eqs. 12 and 16), both with optional x0_hat clipping and a callback that sees every step.
 * tests/test_live.py holds one step of each, and whole seeded runs, to the library under node.
 *
 * Arrays: a batch of B points of dimension D is one flat Float64Array of B * D numbers, row-major,
 * like a (B, D) tensor; an image batch (B, 1, 8, 8) is B * 64 numbers. A model is
 * model(x, t, B) -> eps_hat (same layout; a Promise is fine), with one t for the whole batch.
 */
var DDPMSampler = (function (X, S) {
  "use strict";

  var SAMPLERS = ["ddpm", "ddim"], VARIANCES = ["beta_tilde", "beta"];

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

  // ------------------------------------------------------------------ the settings and the schedule

  /** What is wrong with a sampler's settings, by name ({} when nothing is): ddpm_edu.sampling.sampler_problems. */
  function samplerProblems(sampler, steps, eta, variance, T) {
    var p = {};
    if (SAMPLERS.indexOf(sampler) < 0) p.sampler = X.say("sampler.sampler", { sampler: sampler });
    if (!(Number.isInteger(steps) && steps >= 1)) p.steps = X.say("sampler.steps", { steps: steps });
    else if (sampler === "ddim" && T !== undefined && steps > T) p.steps = X.say("sampler.steps_ddim", { T: T, steps: steps });
    if (!(eta >= 0 && Number.isFinite(eta))) p.eta = X.say("sampler.eta", { eta: eta });
    if (VARIANCES.indexOf(variance) < 0) p.variance = X.say("sampler.variance", { variance: variance });
    return p;
  }

  /** Throw one Error that lists every problem of samplerProblems. */
  function checkSampler(sampler, steps, eta, variance, T) {
    var p = samplerProblems(sampler, steps, eta, variance, T), names = Object.keys(p);
    if (names.length) throw new Error(names.map(function (k) { return p[k]; }).join("; "));
  }

  /** DDPMSchedule.fromSpec plus what the samplers read, as Schedule.from_betas: all indexed by t, length T + 1. */
  function schedule(spec) {
    var sc = S.fromSpec(spec), n = sc.T + 1, ab = sc.alphaBar;
    sc.alphas = new Float64Array(n); sc.betaTilde = new Float64Array(n);
    sc.coefX0 = new Float64Array(n); sc.coefXt = new Float64Array(n);
    for (var t = 0; t <= sc.T; t++) {
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

  /** The coefficients of every DDPM step, k[t] for t = 1..T: posterior.py's mean_from_eps, x0_from_eps and reverse_variance
   *  read at t once per run. variance: "beta_tilde" or "beta". */
  function ddpmCoefs(sc, variance) {
    if (VARIANCES.indexOf(variance) < 0) throw new Error(X.say("sampler.variance", { variance: variance }));
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

  /** DDPM ancestral sampling from x = x_T (Alg. 2). opts: variance, clip, callback, seed, stop. Resolves to x_0. */
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
    var bad = samplerProblems("ddim", steps, 0, "beta_tilde", T).steps; // sampling.ddim_timesteps checks the same way
    if (bad) throw new Error(bad);
    var taus = Array.from(S.linspace(1, T, steps), roundHalfEven);
    return taus.filter(function (v, i) { return i === 0 || v !== taus[i - 1]; });
  }

  /** The coefficients of one DDIM step t -> t_prev from ab_t and ab_prev (sampling.ddim_step, eqs. 12 and 16). */
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

  /** DDIM with `steps` model calls and stochasticity eta (0: deterministic). opts: clip, callback, seed, stop. Resolves to x_0. */
  function ddimSample(model, x, B, sc, steps, eta, opts) {
    if (!(eta >= 0 && Number.isFinite(eta))) throw new Error(X.say("sampler.eta", { eta: eta }));
    var taus = ddimTimesteps(sc.T, steps).reverse(), times = [], k = {}; // tau_S = T > ... > tau_1
    for (var i = 0; i < taus.length; i++) {
      var t = taus[i], tPrev = i + 1 < taus.length ? taus[i + 1] : 0;
      times.push([t, tPrev]);
      k[t] = ddimCoefs(sc.alphaBar[t], sc.alphaBar[tPrev], eta);
    }
    return run(model, x, B, times, ddimStep, k, eta > 0, opts);
  }

  // ------------------------------------------------------------------ the loop both samplers share (sampling.sample and ddim_sample)

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

  /** The sampler that settings st = {sampler, steps, eta, variance} choose: DDPM over all T steps, or DDIM over
   *  min(st.steps, T); the settings are checked first (checkSampler). Returns a Promise of x_0. */
  function sample(model, x, B, sc, st, opts) {
    var ddim = st.sampler === "ddim", steps = ddim ? Math.min(st.steps, sc.T) : sc.T, variance = st.variance || "beta_tilde";
    checkSampler(st.sampler, steps, st.eta, variance, sc.T);
    return ddim ? ddimSample(model, x, B, sc, steps, st.eta, opts) : ddpmSample(model, x, B, sc, Object.assign({ variance: variance }, opts));
  }

  return {
    SAMPLERS: SAMPLERS, VARIANCES: VARIANCES, uniform: uniform, randn: randn, samplerProblems: samplerProblems,
    checkSampler: checkSampler, schedule: schedule, predictX0: predictX0,
    ddpmCoefs: ddpmCoefs, ddpmStep: ddpmStep, ddpmSample: ddpmSample,
    roundHalfEven: roundHalfEven, ddimTimesteps: ddimTimesteps, ddimCoefs: ddimCoefs, ddimStep: ddimStep, ddimSample: ddimSample,
    run: run, sample: sample,
  };
})(typeof DDPMText !== "undefined" ? DDPMText : require("./text.js"),
   typeof DDPMSchedule !== "undefined" ? DDPMSchedule : require("./schedule.js"));

if (typeof module !== "undefined" && module.exports) module.exports = DDPMSampler;
