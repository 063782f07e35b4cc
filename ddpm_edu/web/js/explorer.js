/* ddpm-edu: the live beta-schedule explorer of chapters 3, 4 and 5.
 *
 * One file, loaded three ways:
 *  - inline in a text/html output, wrapped in a function by ddpm_edu/widgets.py (a static page, no kernel);
 *  - as anywidget's ES module (widgets.py appends `export default {render: DDPMExplorer.render}`);
 *  - under node, by tests/test_explorer.py, through the module.exports line at the end.
 * The schedule functions mirror ddpm_edu/schedules.py formula by formula; the tests hold them to 1e-9.
 * It draws on plain canvases and loads nothing.
 */
var DDPMExplorer = (function () {
  "use strict";

  var KINDS = ["linear", "quadratic", "sigmoid", "cosine"];
  var COSINE_MAX_BETA = 0.999; // Schedule.cosine clips beta_t here
  var REFERENCE = { kind: "linear", T: 1000, beta_1: 1e-4, beta_T: 0.02, s: 0.008 }; // DDPM, Ho et al. 2020

  // ------------------------------------------------------------------ schedules (ddpm_edu/schedules.py)

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
    throw new Error("unknown schedule kind " + kind);
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

  /** What is wrong with a setting, by name ({} when nothing is); the rules of schedule_problems. */
  function problems(st) {
    var p = {};
    if (KINDS.indexOf(st.kind) < 0) p.kind = "unknown schedule kind " + st.kind + "; choose one of " + KINDS.join(", ");
    if (typeof st.T !== "number" || !Number.isInteger(st.T) || st.T < 1)
      p.T = "T must be a whole number of steps, at least 1 (got " + st.T + ").";
    if (st.kind === "cosine") {
      if (!(typeof st.s === "number" && isFinite(st.s) && st.s >= 0)) p.s = "The cosine offset s must be a number ≥ 0 (got " + st.s + ").";
      return p;
    }
    [["beta_1", "β₁"], ["beta_T", "β_T"]].forEach(function (nv) {
      var v = st[nv[0]];
      if (!(typeof v === "number" && isFinite(v) && v > 0 && v < 1))
        p[nv[0]] = nv[1] + " must lie strictly between 0 and 1 (got " + v + ").";
    });
    if (!p.beta_1 && !p.beta_T && st.beta_1 > st.beta_T)
      p.beta_1 = "β₁ = " + fmt(st.beta_1) + " is larger than β_T = " + fmt(st.beta_T) +
        ". A schedule needs β₁ ≤ β_T: the noise per step grows with t.";
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

  // ------------------------------------------------------------------ number formatting

  var SUP = { "-": "⁻", "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸", "9": "⁹" };

  /** A number for a reader: 0.02, 0.9999, 4.0×10⁻⁵, 1.2×10⁶. */
  function fmt(x, digits) {
    digits = digits || 2;
    if (x === Infinity) return "∞";
    if (typeof x !== "number" || !isFinite(x)) return String(x);
    if (x === 0) return "0";
    var a = Math.abs(x);
    if (a >= 1e-3 && a < 1e4) return String(Number(x.toPrecision(Math.max(digits, a < 1 ? 1 : Math.floor(Math.log10(a)) + 1))));
    var e = x.toExponential(digits - 1).split("e");
    var p = "10" + e[1].replace("+", "").split("").map(function (c) { return SUP[c]; }).join("");
    return /^1(\.0*)?$/.test(e[0]) ? p : e[0] + "×" + p;
  }

  function pow10(k) { return k === 0 ? "1" : "10" + String(k).split("").map(function (c) { return SUP[c]; }).join(""); }

  function pct(x) { return x === 0 ? "0%" : x < 0.001 ? "<0.1%" : (100 * x).toFixed(x < 0.1 ? 1 : 0) + "%"; }

  // ------------------------------------------------------------------ drawing

  var C0 = "#1f77b4", REF = "#b8b8b8", NOISE = "#f4a261", GRID = "#e6e6e6", INK = "#333";
  var PW = 208, PH = 160, M = { l: 42, r: 14, t: 20, b: 30 }; // three plots fit a 660-px book column // plot size and margins, CSS pixels

  function canvas(w, h) {
    var cv = document.createElement("canvas"), r = window.devicePixelRatio || 1;
    cv.width = Math.round(w * r);
    cv.height = Math.round(h * r);
    cv.style.width = w + "px";
    cv.style.height = h + "px";
    cv.getContext("2d").setTransform(r, 0, 0, r, 0, 0);
    return cv;
  }

  /** An axis box mapping data to pixels; y is "log" or "lin" over the FIXED range [y0, y1]. */
  function axes(ctx, title, log, y0, y1, yticks, xlabels) {
    var w = PW - M.l - M.r, h = PH - M.t - M.b;
    var f = log ? function (v) { return Math.log10(v); } : function (v) { return v; };
    var ax = {
      x: function (u) { return M.l + u * w; }, // u = t / T in [0, 1]
      y: function (v) {
        var q = (f(v) - f(y0)) / (f(y1) - f(y0));
        if (isNaN(q)) q = -1; // log of 0
        return M.t + h * (1 - Math.max(-0.05, Math.min(1.05, q)));
      },
      inside: function (v) { return v >= y0 && v <= y1; },
      w: w, h: h,
    };
    ctx.clearRect(0, 0, PW, PH);
    ctx.font = "11px sans-serif";
    ctx.fillStyle = INK;
    ctx.textAlign = "left";
    ctx.fillText(title, M.l, 13);
    ctx.strokeStyle = GRID;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    yticks.forEach(function (v) {
      var y = Math.round(ax.y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + w, y); ctx.stroke();
      ctx.fillText(log ? pow10(Math.round(Math.log10(v))) : String(v), M.l - 4, y);
    });
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    xlabels.forEach(function (lab) { ctx.fillText(lab[1], ax.x(lab[0]), M.t + h + 4); });
    ctx.fillText("t", M.l + w / 2, M.t + h + 16);
    ctx.textBaseline = "alphabetic";
    ctx.strokeStyle = "#999";
    ctx.strokeRect(M.l + 0.5, M.t + 0.5, w, h);
    return ax;
  }

  function clip(ctx, ax) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(M.l, M.t, ax.w, ax.h);
    ctx.clip();
  }

  function curve(ctx, ax, arr, T, colour, width, from) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.beginPath();
    for (var t = from; t <= T; t++) {
      var x = ax.x(t / T), y = ax.y(arr[t]);
      if (t === from) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
  }

  function hline(ctx, ax, v, colour) {
    var y = Math.round(ax.y(v)) + 0.5;
    ctx.strokeStyle = colour;
    ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + ax.w, y); ctx.stroke();
    ctx.setLineDash([]);
  }

  function marker(ctx, ax, u, v) {
    ctx.strokeStyle = "#555";
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(ax.x(u), M.t); ctx.lineTo(ax.x(u), M.t + ax.h); ctx.stroke();
    if (isFinite(v) && v > 0 || v === 0) {
      ctx.fillStyle = "#d62728";
      ctx.beginPath(); ctx.arc(ax.x(u), ax.y(v), 3.5, 0, 2 * Math.PI); ctx.fill();
    }
  }

  // ------------------------------------------------------------------ images (x0 and eps, embedded PNGs)

  /** Decode a PNG data URI to a Float32Array of its RGB bytes mapped by f; calls back with (values, w, h). */
  function decode(uri, f, done) {
    var img = new Image();
    img.onload = function () {
      var cv = document.createElement("canvas");
      cv.width = img.naturalWidth;
      cv.height = img.naturalHeight;
      var ctx = cv.getContext("2d");
      ctx.drawImage(img, 0, 0);
      var rgba = ctx.getImageData(0, 0, cv.width, cv.height).data, n = cv.width * cv.height;
      var out = new Float32Array(3 * n);
      for (var i = 0; i < n; i++) for (var c = 0; c < 3; c++) out[3 * i + c] = f(rgba[4 * i + c]);
      done(out, cv.width, cv.height);
    };
    img.src = uri;
  }

  // ------------------------------------------------------------------ the explorer

  var CSS =
    ".ddpmx{font:13px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;background:#fff;border:1px solid #ddd;" +
    "border-radius:6px;padding:10px 12px;max-width:760px;box-sizing:border-box}" +
    ".ddpmx .dx-row{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin:2px 0}" +
    ".ddpmx label{display:inline-flex;align-items:center;margin:0;font-weight:normal}" + // themes style labels: undo
    ".ddpmx label.dx-sl{display:flex;gap:6px}" +
    ".ddpmx .dx-top{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:flex-start}" +
    ".ddpmx canvas{max-width:none}" +
    ".ddpmx input[type=radio]{margin:0 4px 0 0;width:auto}" +
    ".ddpmx label.dx-sl span.dx-n{width:86px;text-align:right;white-space:nowrap}" +
    ".ddpmx label.dx-sl span.dx-v{width:120px;font-variant-numeric:tabular-nums;white-space:nowrap}" +
    ".ddpmx input[type=range]{width:170px;margin:0}" +
    ".ddpmx .dx-kinds label{margin-right:8px;cursor:pointer}" +
    ".ddpmx .dx-caption{color:#555;margin:4px 0}" +
    ".ddpmx .dx-msg{border-left:4px solid;padding:5px 9px;margin:6px 0;max-width:380px}" +
    ".ddpmx .dx-warn{max-width:none}" +
    ".ddpmx .dx-err{background:#fdecea;border-color:#b3261e}" +
    ".ddpmx .dx-warn{background:#fff4e0;border-color:#d9822b}" +
    ".ddpmx .dx-legend{font-size:12px;color:#444;margin:2px 0}" +
    ".ddpmx .dx-figs{display:flex;flex-wrap:wrap;gap:4px}" +
    ".ddpmx table{border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums;width:300px;margin:4px 0 0 0}" +
    ".ddpmx td{padding:1px 6px;vertical-align:top;border:none;background:none}" +
    ".ddpmx td.dx-k{color:#555;text-align:right;white-space:nowrap}" +
    ".ddpmx td.dx-dim{color:#999}" +
    ".ddpmx .dx-img{display:flex;flex-direction:column;align-items:center;gap:2px;font-size:12px}";

  function el(tag, attrs, parent) {
    var e = document.createElement(tag);
    for (var k in attrs) if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  var SETTINGS = ["kind", "beta_1", "beta_T", "s", "T", "t"];

  /** A slider's position <-> value: log sliders for beta and T, rounded to two significant digits. */
  var SLIDERS = {
    beta_1: { label: "β₁", min: -6, max: -0.3, step: 0.01, log: true },
    beta_T: { label: "β_T", min: -6, max: -0.3, step: 0.01, log: true },
    beta: { label: "β (every t)", min: -6, max: -0.3, step: 0.01, log: true },
    s: { label: "offset s", min: 0, max: 0.1, step: 0.001, log: false },
    T: { label: "T (steps)", min: 0, max: 3.6, step: 0.005, log: true, int: true },
    t: { label: "t", min: 0, max: 1000, step: 1, log: false, int: true },
  };

  function fromSlider(spec, pos) {
    var v = spec.log ? Math.pow(10, pos) : pos;
    if (spec.int) return Math.max(spec.log ? 1 : 0, Math.round(spec.log ? Number(v.toPrecision(2)) : v));
    return spec.log ? Number(v.toPrecision(2)) : Number(v.toFixed(4));
  }

  function toSlider(spec, v) { return spec.log ? Math.log10(v) : v; }

  /** Build the explorer inside `root`. model: anywidget's model, or staticModel(...) on a page. */
  function mount(root, model) {
    var cfg = model.get("config");
    var st = {};
    SETTINGS.forEach(function (k) { st[k] = model.get(k); });
    var shown = {};
    (cfg.controls || SETTINGS).forEach(function (k) { shown[k] = true; });
    var constant = !!cfg.constant;
    var ref = schedule(REFERENCE.kind, REFERENCE.T, REFERENCE.beta_1, REFERENCE.beta_T, REFERENCE.s);

    root.textContent = "";
    var box = el("div", { class: "ddpmx" }, root);
    el("style", { text: CSS }, box);

    // --- controls
    var inputs = {}, values = {};
    var kindRow = el("div", { class: "dx-row dx-kinds" }, box);
    if (shown.kind && !constant) {
      el("span", { text: "schedule:" }, kindRow);
      var group = "ddpmx-kind-" + Math.random().toString(36).slice(2); // one radio group per explorer
      KINDS.forEach(function (k) {
        var lab = el("label", {}, kindRow);
        var r = el("input", { type: "radio", name: group, value: k }, lab);
        lab.appendChild(document.createTextNode(" " + k));
        r.checked = st.kind === k;
        r.addEventListener("change", function () { if (r.checked) change("kind", k); });
        inputs["kind:" + k] = r;
      });
    }
    var top = el("div", { class: "dx-top" }, box); // the sliders, and beside them the image they change
    var controlCol = el("div", {}, top);
    var sliderRow = el("div", {}, controlCol);
    function slider(name) {
      var spec = SLIDERS[name];
      var lab = el("label", { class: "dx-sl" }, sliderRow);
      el("span", { class: "dx-n", text: spec.label }, lab);
      var inp = el("input", { type: "range", min: spec.min, max: spec.max, step: spec.step }, lab);
      inp.setAttribute("data-name", name);
      values[name] = el("span", { class: "dx-v" }, lab);
      inputs[name] = inp;
      inp.addEventListener("input", function () {
        var v = fromSlider(spec, parseFloat(inp.value));
        if (name === "beta") { change("beta_1", v, true); change("beta_T", v); } else change(name, v);
      });
      return lab;
    }
    var labels = {};
    if (constant) { if (shown.beta_1 || shown.beta_T) labels.beta = slider("beta"); }
    else ["beta_1", "beta_T", "s"].forEach(function (k) { if (shown[k]) labels[k] = slider(k); });
    ["T", "t"].forEach(function (k) { if (shown[k]) labels[k] = slider(k); });

    var caption = el("div", { class: "dx-caption" }, controlCol);
    var imgBox = el("div", { class: "dx-img" }, top);
    var msg = el("div", { class: "dx-msg dx-err" }, controlCol); // invalid settings: in place of the readouts
    var legend = el("div", { class: "dx-legend" }, box);
    var legendHTML = '<span style="color:' + C0 + '">━━</span> this schedule &nbsp; <span style="color:' + REF +
      '">━━</span> DDPM (linear, β from 10⁻⁴ to 0.02, T = 1000)<span class="dx-tt"></span> &nbsp; <span style="color:#d62728">●</span> t' +
      ' &nbsp; <span style="background:rgba(244,162,97,0.35)">&nbsp;&nbsp;&nbsp;</span> steps with ᾱₜ < ' + cfg.noised;
    legend.innerHTML = legendHTML;
    var legendT = legend.querySelector(".dx-tt");

    // --- figures
    var figs = el("div", { class: "dx-figs" }, box);
    var cvBeta = canvas(PW, PH), cvAb = canvas(PW, PH), cvSnr = canvas(PW, PH);
    [cvBeta, cvAb, cvSnr].forEach(function (c) { figs.appendChild(c); });
    [[cvBeta, "beta"], [cvAb, "alpha_bar"], [cvSnr, "snr"]].forEach(function (cr) { cr[0].setAttribute("data-plot", cr[1]); });
    var H0 = cfg.size[0], W0 = cfg.size[1], side = 2 * Math.max(H0, W0) > 200 ? Math.max(H0, W0) : 2 * Math.max(H0, W0);
    var cvImg = el("canvas", { width: W0, height: H0 }, imgBox);
    cvImg.style.width = Math.round(side * W0 / Math.max(H0, W0)) + "px";
    cvImg.style.height = Math.round(side * H0 / Math.max(H0, W0)) + "px";
    cvImg.style.imageRendering = "pixelated";
    var imgCaption = el("div", {}, imgBox);
    var cvHist = canvas(PW, PH);
    imgBox.appendChild(cvHist);
    cvImg.setAttribute("data-plot", "image");
    cvHist.setAttribute("data-plot", "hist");
    var table = el("table", {}, controlCol); // the readouts, under the sliders
    var warn = el("div", { class: "dx-msg dx-warn" }, box); // last, so that it never moves the plots

    // --- state
    var sc = null, sm = null, bad = {}, x0 = null, eps = null, frame = 0, x0hist = null, histTop = 1;

    function change(name, v, quiet) {
      if (name === "T") st.t = Math.round(st.t / st.T * v); // keep the place in the process
      st[name] = v;
      model.set(name, v);
      if (name === "T") model.set("t", st.t);
      if (quiet) return;
      model.save_changes();
      if (name === "t") redraw(false); else redraw(true);
    }

    function syncControls() {
      if (constant) { if (inputs.beta) inputs.beta.value = toSlider(SLIDERS.beta, st.beta_T); }
      ["beta_1", "beta_T", "s", "T"].forEach(function (k) { if (inputs[k]) inputs[k].value = toSlider(SLIDERS[k], st[k]); });
      if (inputs.t) { inputs.t.max = Math.max(1, st.T); inputs.t.value = st.t; }
      KINDS.forEach(function (k) { if (inputs["kind:" + k]) inputs["kind:" + k].checked = st.kind === k; });
      var cos = st.kind === "cosine";
      if (labels.beta_1) labels.beta_1.style.display = cos ? "none" : "";
      if (labels.beta_T) labels.beta_T.style.display = cos ? "none" : "";
      if (labels.s) labels.s.style.display = cos ? "" : "none";
      if (values.beta) values.beta.textContent = fmt(st.beta_T) + "  (σ = " + fmt(Math.sqrt(st.beta_T)) + ")";
      if (values.beta_1) values.beta_1.textContent = fmt(st.beta_1);
      if (values.beta_T) values.beta_T.textContent = fmt(st.beta_T);
      if (values.s) values.s.textContent = fmt(st.s, 2);
      if (values.T) values.T.textContent = String(st.T);
      if (values.t) values.t.textContent = st.t + " of " + st.T;
      var what = constant ? "constant β = " + fmt(st.beta_T) + " (σ = " + fmt(Math.sqrt(st.beta_T)) + ")"
        : st.kind === "cosine" ? "cosine schedule, s = " + fmt(st.s)
        : st.kind + " schedule, β₁ = " + fmt(st.beta_1) + ", β_T = " + fmt(st.beta_T);
      caption.textContent = what + ", T = " + st.T + ", t = " + st.t;
      legendT.textContent = st.T === REFERENCE.T ? "" : ", drawn against t/T";
      box.setAttribute("data-settings", JSON.stringify(st)); // for readers of the DOM: tests/browser/check_explorer.py
    }

    function redraw(all) {
      if (all) {
        bad = problems(st);
        var ok = Object.keys(bad).length === 0;
        sc = ok ? schedule(st.kind, st.T, st.beta_1, st.beta_T, st.s) : null;
        sm = ok ? summary(sc, cfg.noised, cfg.finished) : null;
      }
      st.t = Math.max(0, Math.min(st.T, st.t));
      syncControls();
      var texts = Object.keys(bad).map(function (k) { return bad[k]; });
      msg.textContent = texts.join(" ");
      msg.style.display = texts.length ? "" : "none";
      warn.style.display = sm && !sm.finishes ? "" : "none";
      if (sm && !sm.finishes)
        warn.textContent = "This schedule does not finish noising: ᾱ_T = " + fmt(sm.alpha_bar_T) + ", so x_T still holds " +
          pct(sm.sqrt_alpha_bar_T) + " of the image (√ᾱ_T). The explorer asks for ᾱ_T ≤ " + fmt(cfg.finished) +
          ", at most " + pct(Math.sqrt(cfg.finished)) + " of the image.";
      if (!frame) frame = requestFrame(function () { frame = 0; paint(); });
    }

    function requestFrame(f) { return (window.requestAnimationFrame || function (g) { return setTimeout(g, 16); })(f); }

    function paint() {
      var T = st.T, t = st.t, u = T ? t / T : 0;
      var xl = [[0, "0"], [0.5, String(Math.round(T / 2))], [1, String(T)]];
      // beta_t
      var ctx = cvBeta.getContext("2d");
      var ax = axes(ctx, "βₜ, the noise added at step t", true, 1e-6, 1, [1e-6, 1e-4, 1e-2, 1], xl);
      clip(ctx, ax);
      curve(ctx, ax, ref.betas, ref.T, REF, 2, 1);
      if (sc) { curve(ctx, ax, sc.betas, T, C0, 2, 1); marker(ctx, ax, u, t > 0 ? sc.betas[t] : NaN); }
      ctx.restore();
      // alpha_bar_t, with the steps below NOISED shaded
      ctx = cvAb.getContext("2d");
      ax = axes(ctx, "ᾱₜ, the share of x₀ left", false, 0, 1, [0, 0.5, 1], xl);
      clip(ctx, ax);
      if (sc) { // shade the steps that are almost pure noise, one rectangle per run of them
        ctx.fillStyle = "rgba(244,162,97,0.25)";
        for (var s = 1, run = 0; s <= T + 1; s++) {
          if (s <= T && sc.alphaBar[s] < cfg.noised) { if (!run) run = s; }
          else if (run) { ctx.fillRect(ax.x((run - 1) / T), M.t, ax.x((s - 1) / T) - ax.x((run - 1) / T), ax.h); run = 0; }
        }
      }
      curve(ctx, ax, ref.alphaBar, ref.T, REF, 2, 0);
      if (sc) { curve(ctx, ax, sc.alphaBar, T, C0, 2, 0); marker(ctx, ax, u, sc.alphaBar[t]); }
      ctx.restore();
      // SNR_t
      ctx = cvSnr.getContext("2d");
      ax = axes(ctx, "SNRₜ = ᾱₜ / (1 − ᾱₜ)", true, 1e-10, 1e8, [1e-8, 1e-4, 1, 1e4, 1e8], xl);
      clip(ctx, ax);
      hline(ctx, ax, 1, "#888");
      curve(ctx, ax, ref.snr, ref.T, REF, 2, 1);
      if (sc) { curve(ctx, ax, sc.snr, T, C0, 2, 1); marker(ctx, ax, u, t > 0 ? sc.snr[t] : NaN); }
      ctx.restore();
      paintImage();
      paintTable();
    }

    function paintImage() {
      var ab = sc ? sc.alphaBar[st.t] : NaN, a = Math.sqrt(ab), b = Math.sqrt(1 - ab);
      cvImg.style.opacity = sc ? "1" : "0.25";
      imgCaption.textContent = sc ? "xₜ = " + a.toFixed(3) + " x₀ + " + b.toFixed(3) + " ε,  t = " + st.t : "no valid schedule";
      var hctx = cvHist.getContext("2d");
      var w = PW - M.l - M.r, h = PH - M.t - M.b, lo = -3.5, hi = 3.5, nb = 70;
      var hx = function (v) { return M.l + (v - lo) / (hi - lo) * w; };
      var hy = function (d) { return M.t + h * (1 - Math.min(1.05, d / histTop)); };
      hctx.clearRect(0, 0, PW, PH);
      hctx.font = "11px sans-serif";
      hctx.fillStyle = INK;
      hctx.fillText("pixel values of xₜ (and x₀, grey)", M.l, 13);
      hctx.textAlign = "center";
      hctx.textBaseline = "top";
      [-3, -2, -1, 0, 1, 2, 3].forEach(function (v) { hctx.fillText(String(v), hx(v), M.t + h + 4); });
      hctx.textBaseline = "alphabetic";
      hctx.textAlign = "left";
      hctx.strokeStyle = "#999";
      hctx.strokeRect(M.l + 0.5, M.t + 0.5, w, h);
      if (!x0hist) return; // x0 and eps are still decoding
      var n = x0.length, H = cvImg.height, W = cvImg.width;
      var ictx = cvImg.getContext("2d"), im = ictx.createImageData(W, H), d = im.data;
      var counts = new Float64Array(nb), bw = (hi - lo) / nb;
      for (var i = 0; i < n; i++) {
        var v = sc ? a * x0[i] + b * eps[i] : x0[i]; // x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps
        var k = Math.floor((v - lo) / bw);
        if (k >= 0 && k < nb) counts[k]++;
        d[4 * Math.floor(i / 3) + (i % 3)] = Math.round((Math.max(-1, Math.min(1, v)) + 1) * 127.5); // as images.to_uint8
      }
      for (i = 0; i < n / 3; i++) d[4 * i + 3] = 255;
      ictx.putImageData(im, 0, 0);
      // x0's histogram (grey), the standard normal (dashed) and x_t's (blue)
      hctx.fillStyle = "#ddd";
      for (k = 0; k < nb; k++) if (x0hist[k] > 0) { var y = hy(x0hist[k]); hctx.fillRect(hx(lo + k * bw), y, w / nb + 0.3, M.t + h - y); }
      hctx.strokeStyle = "#777";
      hctx.setLineDash([3, 3]);
      hctx.beginPath();
      for (k = 0; k <= 140; k++) { var z = lo + k * (hi - lo) / 140, yy = hy(Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI)); if (k) hctx.lineTo(hx(z), yy); else hctx.moveTo(hx(z), yy); }
      hctx.stroke();
      hctx.setLineDash([]);
      if (!sc) return;
      hctx.strokeStyle = C0;
      hctx.lineWidth = 1.5;
      hctx.beginPath();
      for (k = 0; k < nb; k++) {
        var yk = hy(counts[k] / (n * bw));
        if (k) hctx.lineTo(hx(lo + k * bw), yk); else hctx.moveTo(hx(lo), yk);
        hctx.lineTo(hx(lo + (k + 1) * bw), yk);
      }
      hctx.stroke();
    }

    function paintTable() {
      var t = st.t, rows;
      if (!sc) rows = [["", "—"]];
      else {
        var noisedText = sm.finishes ? pct(sm.share_noised) : "not comparable";
        rows = [
          ["at t = " + t, ""],
          ["βₜ", t ? fmt(sc.betas[t]) : "0 (clean data)"],
          ["ᾱₜ", fmt(sc.alphaBar[t], 4)],
          ["SNRₜ", fmt(sc.snr[t])],
          ["whole schedule", ""],
          ["ᾱ_T", fmt(sm.alpha_bar_T)],
          ["√ᾱ_T (x₀ left in x_T)", fmt(sm.sqrt_alpha_bar_T)],
          ["Σβₜ", fmt(sm.sum_beta, 3)],
          ["steps with ᾱₜ < " + cfg.noised, noisedText, !sm.finishes],
          ["SNRₜ = 1 at t =", sm.t_snr_1 === null ? "never" : sm.t_snr_1 + " (" + pct(sm.t_snr_1 / st.T) + " of T)"],
          ["finishes (ᾱ_T ≤ " + fmt(cfg.finished) + ")", sm.finishes ? "yes" : "no: see below", false, !sm.finishes],
        ];
      }
      table.textContent = "";
      rows.forEach(function (r) {
        var tr = el("tr", {}, table);
        var head = r[1] === "";
        el("td", { class: "dx-k", text: r[0], style: head ? "font-weight:600;color:#222;text-align:left" : "" }, tr);
        el("td", { text: r[1], class: r[2] ? "dx-dim" : "", "data-readout": r[0] }, tr);
        if (r[3]) tr.style.background = "#fff4e0";
      });
    }

    function onModel() { // a change made in Python (ex.beta_T = 0.01) or by another view of the same widget
      var changed = false;
      SETTINGS.forEach(function (k) { var v = model.get(k); if (v !== st[k]) { st[k] = v; changed = true; } });
      if (changed) redraw(true);
    }
    SETTINGS.forEach(function (k) { model.on("change:" + k, onModel); });

    var pending = 2;
    function ready() {
      if (--pending) return;
      x0hist = new Float64Array(70);
      var bw = 7 / 70;
      for (var i = 0; i < x0.length; i++) { var k = Math.floor((x0[i] + 3.5) / bw); if (k >= 0 && k < 70) x0hist[k]++; }
      var top = 0.45;
      for (k = 0; k < 70; k++) { x0hist[k] /= x0.length * bw; top = Math.max(top, x0hist[k]); }
      histTop = 1.1 * top; // fixed for this explorer: the axes never rescale while a slider moves
      redraw(false);
    }
    decode(cfg.x0, function (u) { return u / 127.5 - 1; }, function (v) { x0 = v; ready(); });
    decode(cfg.eps, function (u) { return (u - 128) / cfg.eps_scale; }, function (v) { eps = v; ready(); });
    redraw(true);
    return function () { SETTINGS.forEach(function (k) { model.off("change:" + k, onModel); }); };
  }

  /** The model of a static page: the settings live here; nothing listens. */
  function staticModel(values) {
    return {
      get: function (k) { return values[k]; },
      set: function (k, v) { values[k] = v; },
      save_changes: function () {},
      on: function () {},
      off: function () {},
    };
  }

  /** anywidget's entry point. */
  function render(ctx) { return mount(ctx.el, ctx.model); }

  return {
    KINDS: KINDS, REFERENCE: REFERENCE, linspace: linspace, betaSteps: betaSteps, schedule: schedule,
    problems: problems, summary: summary, fmt: fmt, mount: mount, staticModel: staticModel, render: render,
  };
})();

if (typeof module !== "undefined" && module.exports) module.exports = DDPMExplorer;
