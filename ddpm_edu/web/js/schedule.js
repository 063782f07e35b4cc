/* ddpm-edu: beta schedules in the browser (chapters 3-5), as ddpm_edu/schedules.py computes them.
 *
 * betaSteps and schedule mirror the library formula by formula (tests/test_explorer.py holds them
 * to 1e-9 under node); problems words what is wrong with a setting as the library does (messages.json);
 * summary gives the readouts of schedules.summarize. No DOM: the explorer (explorer.js) draws.
 */
var DDPMSchedule = (function (X) {
  "use strict";

  var KINDS = ["linear", "cosine", "quadratic", "sigmoid"]; // schedules.KINDS, in its order
  var COSINE_MAX_BETA = 0.999; // Schedule.cosine clips beta_t here
  var REFERENCE = { kind: "linear", T: 1000, beta_1: 1e-4, beta_T: 0.02, s: 0.008 }; // DDPM, Ho et al. 2020

  /** torch.linspace(a, b, n) in float64: the first half counts up from a, the second down from b. */
  function linspace(a, b, n) {
    var out = new Float64Array(n);
    if (n === 1) { out[0] = a; return out; }
    var step = (b - a) / (n - 1), half = Math.floor(n / 2);
    for (var i = 0; i < n; i++) out[i] = i < half ? a + step * i : b - step * (n - 1 - i);
    return out;
  }

  /** beta_1 .. beta_T (length T) of one kind: Schedule.linear / quadratic / sigmoid / cosine. */
  function betaSteps(kind, T, beta1, betaT, s) {
    var i, out;
    if (kind === "linear") return linspace(beta1, betaT, T);
    if (kind === "quadratic") { // sqrt(beta_t) rises linearly
      out = linspace(Math.sqrt(beta1), Math.sqrt(betaT), T);
      for (i = 0; i < T; i++) out[i] = out[i] * out[i];
      return out;
    }
    if (kind === "sigmoid") { // a logistic curve over [-6, 6], rescaled to [beta_1, beta_T]
      out = linspace(-6, 6, T);
      var lo = Infinity, hi = -Infinity;
      for (i = 0; i < T; i++) { out[i] = 1 / (1 + Math.exp(-out[i])); lo = Math.min(lo, out[i]); hi = Math.max(hi, out[i]); }
      for (i = 0; i < T; i++) out[i] = beta1 + (betaT - beta1) * (T > 1 ? (out[i] - lo) / (hi - lo) : 1);
      return out;
    }
    if (kind === "cosine") { // Nichol & Dhariwal 2021, eq. (17): alpha_bar_t = f(t) / f(0)
      var f = new Float64Array(T + 1), ab = new Float64Array(T + 1);
      for (i = 0; i <= T; i++) f[i] = Math.pow(Math.cos((i / T + s) / (1 + s) * Math.PI / 2), 2);
      for (i = 0; i <= T; i++) ab[i] = f[i] / f[0];
      out = new Float64Array(T);
      for (i = 1; i <= T; i++) out[i - 1] = Math.min(1 - ab[i] / ab[i - 1], COSINE_MAX_BETA);
      return out;
    }
    throw new Error(X.say("schedule.kind", { kind: kind, kinds: KINDS.join(", ") }));
  }

  /** Per-t arrays of length T + 1 indexed by t itself (entry 0 is the clean data), as Schedule.from_betas. */
  function schedule(kind, T, beta1, betaT, s) {
    var steps = betaSteps(kind, T, beta1, betaT, s);
    var betas = new Float64Array(T + 1), alphaBar = new Float64Array(T + 1), snr = new Float64Array(T + 1);
    alphaBar[0] = 1;
    snr[0] = Infinity;
    for (var t = 1; t <= T; t++) {
      betas[t] = steps[t - 1];
      alphaBar[t] = alphaBar[t - 1] * (1 - betas[t]); // alpha_bar_t = prod_{s<=t} (1 - beta_s)
      var rest = 1 - alphaBar[t];
      snr[t] = rest > 0 ? alphaBar[t] / rest : Infinity; // SNR_t = alpha_bar_t / (1 - alpha_bar_t)
    }
    return { T: T, betas: betas, alphaBar: alphaBar, snr: snr };
  }

  /** schedule() of a spec {kind, T, beta_1, beta_T, s}, with the REFERENCE values for what it leaves out. */
  function fromSpec(spec) {
    var v = function (k) { return spec[k] === undefined || spec[k] === null ? REFERENCE[k] : spec[k]; };
    return schedule(v("kind"), v("T"), v("beta_1"), v("beta_T"), v("s"));
  }

  /** What is wrong with settings {kind, T, beta_1, beta_T, s}, by name ({} when nothing is): schedule_problems'
   *  rules and wording, in its order (T, beta_1, beta_T), and Schedule.cosine's for s. */
  function problems(st) {
    var p = {}, isNum = function (v) { return typeof v === "number"; };
    if (KINDS.indexOf(st.kind) < 0) p.kind = X.say("schedule.kind", { kind: st.kind, kinds: KINDS.join(", ") });
    if (!(isNum(st.T) && Number.isInteger(st.T) && st.T >= 1)) p.T = X.say("schedule.T", { T: st.T });
    if (st.kind === "cosine") {
      if (!(isNum(st.s) && isFinite(st.s) && st.s >= 0)) p.s = X.say("schedule.s", { s: st.s });
      return p;
    }
    ["beta_1", "beta_T"].forEach(function (name) {
      var v = st[name];
      if (!(isNum(v) && isFinite(v))) p[name] = X.say("schedule.beta_finite", { name: name, value: v });
      else if (!(v > 0 && v < 1)) p[name] = X.say("schedule.beta_range", { name: name, value: v });
    });
    if (!p.beta_1 && !p.beta_T && st.beta_1 > st.beta_T)
      p.beta_1 = X.say("schedule.beta_order", { beta_1: st.beta_1, beta_T: st.beta_T });
    return p;
  }

  /** The readouts; mirrors ddpm_edu.schedules.summarize field by field (noised = NOISED, finished = FINISHED).
   *  share_noised is null for a schedule that does not finish: never reaching noise must not look like a virtue. */
  function summary(sc, noised, finished) {
    var T = sc.T, sum = 0, n = 0, tSnr1 = null;
    for (var t = 1; t <= T; t++) {
      sum += sc.betas[t];
      if (sc.alphaBar[t] < noised) n++;
      if (tSnr1 === null && sc.snr[t] <= 1) tSnr1 = t;
    }
    var abT = sc.alphaBar[T], finishes = abT <= finished;
    return { sum_beta: sum, alpha_bar_1: sc.alphaBar[1], alpha_bar_T: abT, sqrt_alpha_bar_T: Math.sqrt(abT),
             finishes: finishes, t_snr_1: tSnr1, share_noised: finishes ? n / T : null };
  }

  return {
    KINDS: KINDS, COSINE_MAX_BETA: COSINE_MAX_BETA, REFERENCE: REFERENCE, linspace: linspace, betaSteps: betaSteps,
    schedule: schedule, fromSpec: fromSpec, problems: problems, summary: summary,
  };
})(typeof DDPMText !== "undefined" ? DDPMText : require("./text.js"));

if (typeof module !== "undefined" && module.exports) module.exports = DDPMSchedule;
