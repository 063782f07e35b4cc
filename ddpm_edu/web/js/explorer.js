/* ddpm-edu: the live beta-schedule explorer of chapters 3, 4 and 5: its controls, readouts and layout.
 *
 * The numbers come from schedule.js (the schedules, their problems and readouts), the pictures from
 * plots.js; this file builds the controls, keeps the settings in step with the model (anywidget's, synced
 * with Python, or staticModel's on a page without a kernel) and repaints. Loaded like every file of js/:
 * concatenated by ddpm_edu/web/views.py into an inline script or anywidget's ES module.
 */
var DDPMExplorer = (function (X, D, S, P) {
  "use strict";

  var el = D.el, fmt = X.fmt, pct = X.pct;

  var CSS =
    ".ddpmx{font:13px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ddpm-ink);background:var(--ddpm-bg);" +
    "border:1px solid var(--ddpm-border);border-radius:6px;padding:10px 12px;max-width:760px;box-sizing:border-box}" +
    ".ddpmx .dx-row{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin:2px 0}" +
    ".ddpmx label{display:inline-flex;align-items:center;margin:0;font-weight:normal;color:inherit}" + // themes style labels: undo
    ".ddpmx label.dx-sl{display:flex;gap:6px}" +
    ".ddpmx .dx-top{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:flex-start}" +
    ".ddpmx canvas{max-width:none}" +
    ".ddpmx input[type=radio]{margin:0 4px 0 0;width:auto}" +
    ".ddpmx label.dx-sl span.dx-n{width:86px;text-align:right;white-space:nowrap}" +
    ".ddpmx label.dx-sl span.dx-v{width:120px;font-variant-numeric:tabular-nums;white-space:nowrap}" +
    ".ddpmx input[type=range]{width:170px;margin:0;accent-color:var(--ddpm-c0)}" +
    ".ddpmx .dx-kinds label{margin-right:8px;cursor:pointer}" +
    ".ddpmx .dx-caption{color:var(--ddpm-muted);margin:4px 0}" +
    ".ddpmx .dx-msg{border-left:4px solid;padding:5px 9px;margin:6px 0;max-width:380px}" +
    ".ddpmx .dx-warn{max-width:none}" +
    ".ddpmx .dx-err{background:var(--ddpm-err);border-color:var(--ddpm-errline)}" +
    ".ddpmx .dx-warn{background:var(--ddpm-warn);border-color:var(--ddpm-warnline)}" +
    ".ddpmx .dx-legend{font-size:12px;color:var(--ddpm-muted);margin:2px 0}" +
    ".ddpmx .dx-sw{display:inline-block;width:22px;height:3px;vertical-align:middle;margin-right:4px}" +
    ".ddpmx .dx-dot{display:inline-block;width:8px;height:8px;border-radius:50%;vertical-align:middle;margin-right:4px}" +
    ".ddpmx .dx-box{display:inline-block;width:18px;height:10px;vertical-align:middle;margin-right:4px}" +
    ".ddpmx .dx-figs{display:flex;flex-wrap:wrap;gap:4px}" +
    ".ddpmx table{border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums;width:300px;margin:4px 0 0 0}" +
    ".ddpmx td,.ddpmx th{padding:1px 6px;vertical-align:top;border:none;background:none;color:inherit}" +
    ".ddpmx th.dx-k{color:var(--ddpm-muted);text-align:right;white-space:nowrap;font-weight:normal}" +
    ".ddpmx th.dx-head{color:var(--ddpm-ink);text-align:left;font-weight:600}" +
    ".ddpmx tr.dx-flag{background:var(--ddpm-warn)}" +
    ".ddpmx td.dx-dim{color:var(--ddpm-muted);font-style:italic}" +
    ".ddpmx .dx-img{display:flex;flex-direction:column;align-items:center;gap:2px;font-size:12px}";

  var SETTINGS = ["kind", "beta_1", "beta_T", "s", "T", "t"];

  /** Every number with two significant digits from lo to hi, in order (1.0, 1.1, ..., 9.9 in each decade); with
   *  ints, the whole ones only. Written as decimal strings and parsed, so 0.3 is the double that Python's 0.3 is. */
  function ladder(lo, hi, ints) {
    var out = [];
    for (var e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (var m = 10; m < 100; m++) {
        var v = Number((m / 10).toFixed(1) + "e" + e);
        if (v >= lo && v <= hi && (!ints || Number.isInteger(v))) out.push(v);
      }
    }
    return out;
  }

  var BETAS = ladder(1e-6, 0.5), STEPS = ladder(1, 4000, true);

  /** The sliders. A log slider (beta, T) has `values`, a ladder of round numbers, and its position is an index into
   *  them: one keyboard step is one rung, so every step moves the value (a log position rounded to two digits and
   *  written back would snap back to where it was). The others have min, max and step. `label` is shown, `name` is
   *  the accessible name (it starts with the label). */
  var SLIDERS = {
    beta_1: { label: "β₁", name: "β₁, the noise of the first step", values: BETAS },
    beta_T: { label: "β_T", name: "β_T, the noise of the last step", values: BETAS },
    beta: { label: "β (every t)", name: "β (every t), the noise of each step", values: BETAS },
    s: { label: "offset δ", name: "offset δ of the cosine schedule", min: 0, max: 0.1, step: 0.001 },
    T: { label: "T (steps)", name: "T (steps), the number of steps", values: STEPS },
    t: { label: "t", name: "t, the step shown", min: 0, max: 1000, step: 1, int: true },
  };

  /** The <input type=range> attributes of a slider: {min, max, step}. */
  function range(spec) {
    return spec.values ? { min: 0, max: spec.values.length - 1, step: 1 } : { min: spec.min, max: spec.max, step: spec.step };
  }

  /** The setting at slider position pos. */
  function fromSlider(spec, pos) {
    if (spec.values) return spec.values[Math.max(0, Math.min(spec.values.length - 1, Math.round(pos)))];
    return spec.int ? Math.round(pos) : Number(pos.toFixed(4));
  }

  /** The slider position of setting v: for a log slider, the rung nearest to v (in ratio). */
  function toSlider(spec, v) {
    if (!spec.values) return v;
    var best = 0, gap = function (i) { return Math.abs(Math.log(spec.values[i] / v)); };
    for (var i = 1; i < spec.values.length; i++) if (gap(i) < gap(best)) best = i;
    return best;
  }

  // ------------------------------------------------------------------ what the explorer shows (no DOM)

  /** The schedule of settings st and its readouts: {bad: problems by name, sc: schedule or null, sm: summary or null}. */
  function evaluate(st, cfg) {
    var bad = S.problems(st), ok = Object.keys(bad).length === 0;
    var sc = ok ? S.schedule(st.kind, st.T, st.beta_1, st.beta_T, st.s) : null;
    return { bad: bad, sc: sc, sm: ok ? S.summary(sc, cfg.noised, cfg.finished) : null };
  }

  /** The line under the sliders that names the settings, e.g. "cosine schedule, δ = 0.008, T = 1000, t = 250". */
  function caption(st, constant) {
    var what = constant ? "constant β = " + fmt(st.beta_T) + " (ν = " + fmt(Math.sqrt(st.beta_T)) + ")"
      : st.kind === "cosine" ? "cosine schedule, δ = " + fmt(st.s)
      : st.kind + " schedule, β₁ = " + fmt(st.beta_1) + ", β_T = " + fmt(st.beta_T);
    return what + ", T = " + st.T + ", t = " + st.t;
  }

  /** Why a schedule that does not finish noising is flagged; "" when it finishes or there is none (sm null). */
  function warning(sm, cfg) {
    if (!sm || sm.finishes) return "";
    return "This schedule does not finish noising: ᾱ_T = " + fmt(sm.alpha_bar_T) + ", so x_T still holds " +
      pct(sm.sqrt_alpha_bar_T) + " of the image (√ᾱ_T). The explorer asks for ᾱ_T ≤ " + fmt(cfg.finished) +
      ", at most " + pct(Math.sqrt(cfg.finished)) + " of the image.";
  }

  /** The readouts as rows [name, value, dimmed, flagged]: at step t, then the whole schedule (value "": a heading). */
  function readouts(t, T, sc, sm, cfg) {
    if (!sc) return [["", "—"]];
    return [
      ["at t = " + t, ""],
      ["βₜ", t ? fmt(sc.betas[t]) : "0 (clean data)"],
      ["ᾱₜ", fmt(sc.alphaBar[t], 4)],
      ["SNRₜ", fmt(sc.snr[t])],
      ["whole schedule", ""],
      ["ᾱ_T", fmt(sm.alpha_bar_T)],
      ["√ᾱ_T (x₀ left in x_T)", fmt(sm.sqrt_alpha_bar_T)],
      ["Σβₜ", fmt(sm.sum_beta, 3)],
      ["steps with ᾱₜ < " + cfg.noised, sm.finishes ? pct(sm.share_noised) : "not comparable", !sm.finishes],
      ["SNRₜ = 1 at t =", sm.t_snr_1 === null ? "never" : sm.t_snr_1 + " (" + pct(sm.t_snr_1 / T) + " of T)"],
      ["finishes (ᾱ_T ≤ " + fmt(cfg.finished) + ")", sm.finishes ? "yes" : "no: see below", false, !sm.finishes],
    ];
  }

  // ------------------------------------------------------------------ building the page

  /** The kind buttons, a named radio group; ui.inputs["kind:" + k] is each one. */
  function kindButtons(row, st, ui, change) {
    var title = el("span", { text: "schedule:", id: D.uid("ddpmx-kinds") }, row), group = D.uid("ddpmx-kind");
    row.setAttribute("role", "radiogroup");
    row.setAttribute("aria-labelledby", title.id);
    S.KINDS.forEach(function (k) {
      var lab = el("label", {}, row), r = D.control("input", { type: "radio", name: group, value: k }, lab);
      lab.appendChild(document.createTextNode(" " + k));
      r.checked = st.kind === k;
      r.addEventListener("change", function () { if (r.checked) change("kind", k); });
      ui.inputs["kind:" + k] = r;
    });
  }

  /** The slider of SLIDERS[name], labelled, with its value beside it; "beta" (a constant step) moves beta_1 and beta_T. */
  function slider(row, name, ui, change) {
    var spec = SLIDERS[name], r = range(spec), lab = el("label", { class: "dx-sl" }, row);
    el("span", { class: "dx-n", text: spec.label }, lab);
    var inp = D.control("input", { type: "range", min: r.min, max: r.max, step: r.step, "data-name": name, "aria-label": spec.name }, lab);
    ui.values[name] = el("span", { class: "dx-v", "aria-hidden": "true" }, lab); // the slider's aria-valuetext says it
    ui.inputs[name] = inp;
    ui.labels[name] = lab;
    inp.addEventListener("input", function () {
      var v = fromSlider(spec, parseFloat(inp.value));
      if (name === "beta") { change("beta_1", v, true); change("beta_T", v); } else change(name, v);
    });
  }

  /** The explorer's elements in root, by name (nothing drawn yet): the controls shown (cfg.controls), the readouts
   *  under them, the figures, and the messages. change(name, value, quiet) is called when a control moves. */
  function build(root, st, cfg, change) {
    var shown = {}, ui = { inputs: {}, values: {}, labels: {}, constant: !!cfg.constant };
    (cfg.controls || SETTINGS).forEach(function (k) { shown[k] = true; });
    root.textContent = "";
    var box = ui.box = el("div", { class: "ddpmx", role: "group", "aria-label": "schedule explorer" }, root);
    el("style", { text: D.themeCss("ddpmx") + CSS }, box);
    var kindRow = el("div", { class: "dx-row dx-kinds" }, box);
    if (shown.kind && !ui.constant) kindButtons(kindRow, st, ui, change);
    var top = el("div", { class: "dx-top" }, box), column = el("div", {}, top), sliders = el("div", {}, column);
    var names = ui.constant ? (shown.beta_1 || shown.beta_T ? ["beta"] : []) : ["beta_1", "beta_T", "s"];
    names.concat(["T", "t"]).forEach(function (k) { if (shown[k] || k === "beta") slider(sliders, k, ui, change); });
    ui.caption = el("div", { class: "dx-caption" }, column);
    ui.msg = el("div", { class: "dx-msg dx-err", role: "alert" }, column); // invalid settings: in place of the readouts
    ui.table = el("table", { "aria-label": "readouts of this schedule" }, column); // under the sliders
    figures(box, top, cfg, ui);
    ui.warn = el("div", { class: "dx-msg dx-warn", "aria-live": "polite" }, box); // last, so that it never moves the plots
    return ui;
  }

  /** The legend and the three curves' canvases in box; beside the sliders (in top), the noised image and its histogram. */
  function figures(box, top, cfg, ui) {
    var imgBox = el("div", { class: "dx-img" }, top), legend = el("div", { class: "dx-legend" }, box);
    legend.innerHTML = '<span class="dx-sw" style="background:var(--ddpm-c0)"></span>this schedule &nbsp; ' +
      '<span class="dx-sw" style="background:var(--ddpm-ref)"></span>DDPM (linear, β from 10⁻⁴ to 0.02, T = 1000)' +
      '<span class="dx-tt"></span> &nbsp; <span class="dx-dot" style="background:var(--ddpm-mark)"></span>t &nbsp; ' +
      '<span class="dx-box" style="background:var(--ddpm-shade)"></span>steps with ᾱₜ < ' + cfg.noised;
    ui.legendT = legend.querySelector(".dx-tt");
    var figs = el("div", { class: "dx-figs" }, box);
    ui.curves = P.CURVES.map(function (spec) {
      var cv = figs.appendChild(D.canvas(P.PW, P.PH));
      cv.setAttribute("data-plot", spec.plot);
      return cv;
    });
    var H = cfg.size[0], W = cfg.size[1], big = Math.max(H, W), side = 2 * big > 200 ? big : 2 * big; // small images at 2x
    ui.image = el("canvas", { width: W, height: H, "data-plot": "image" }, imgBox);
    ui.image.style.width = Math.round(side * W / big) + "px";
    ui.image.style.height = Math.round(side * H / big) + "px";
    ui.image.style.imageRendering = "pixelated";
    ui.imageCaption = el("div", { "aria-hidden": "true" }, imgBox); // the image's description says it
    ui.hist = imgBox.appendChild(D.canvas(P.PW, P.PH));
    ui.hist.setAttribute("data-plot", "hist");
  }

  // ------------------------------------------------------------------ keeping the page in step

  /** What each slider's value reads, beside it and as its aria-valuetext. */
  function valueTexts(st) {
    return { beta: fmt(st.beta_T) + "  (ν = " + fmt(Math.sqrt(st.beta_T)) + ")", beta_1: fmt(st.beta_1), beta_T: fmt(st.beta_T),
             s: fmt(st.s, 2), T: String(st.T), t: st.t + " of " + st.T };
  }

  /** Put the settings st into the controls, their values (shown, and as aria-valuetext), the caption and the legend. */
  function syncControls(ui, st) {
    var inputs = ui.inputs, cos = st.kind === "cosine";
    if (inputs.beta) inputs.beta.value = toSlider(SLIDERS.beta, st.beta_T);
    ["beta_1", "beta_T", "s", "T"].forEach(function (k) { if (inputs[k]) inputs[k].value = toSlider(SLIDERS[k], st[k]); });
    if (inputs.t) { inputs.t.max = Math.max(1, st.T); inputs.t.value = st.t; }
    S.KINDS.forEach(function (k) { if (inputs["kind:" + k]) inputs["kind:" + k].checked = st.kind === k; });
    ["beta_1", "beta_T"].forEach(function (k) { if (ui.labels[k]) D.show(ui.labels[k], !cos); });
    if (ui.labels.s) D.show(ui.labels.s, cos);
    var text = valueTexts(st);
    Object.keys(ui.values).forEach(function (k) {
      ui.values[k].textContent = text[k];
      inputs[k].setAttribute("aria-valuetext", text[k]);
    });
    ui.caption.textContent = caption(st, ui.constant);
    ui.legendT.textContent = st.T === S.REFERENCE.T ? "" : ", drawn against t/T";
    ui.box.setAttribute("data-settings", JSON.stringify(st)); // for readers of the DOM: tests/browser/check_explorer.py
  }

  /** The problems (in the library's wording, joined as its ValueError joins them) or the warning, each shown if any. */
  function showMessages(ui, now, cfg) {
    var texts = Object.keys(now.bad).map(function (k) { return now.bad[k]; });
    ui.msg.textContent = texts.join("; ");
    D.show(ui.msg, texts.length > 0);
    ui.warn.textContent = warning(now.sm, cfg);
    D.show(ui.warn, ui.warn.textContent !== "");
  }

  /** Repaint the curves, the noised image, its histogram and the readouts; images: loadImages' result, or null. */
  function paint(ui, st, now, ref, cfg, images) {
    P.CURVES.forEach(function (spec, i) { P.paintCurve(ui.curves[i], spec, now.sc, ref, st.T, st.t, cfg.noised); });
    var ab = now.sc ? now.sc.alphaBar[st.t] : NaN, form = "xₜ = " + Math.sqrt(ab).toFixed(3) + " x₀ + " + Math.sqrt(1 - ab).toFixed(3) + " ε";
    ui.image.style.opacity = now.sc ? "1" : "0.25";
    ui.imageCaption.textContent = now.sc ? form + ",  t = " + st.t : "no valid schedule";
    D.describe(ui.image, now.sc ? "The photograph noised to step t = " + st.t + ": " + form + "." : "The photograph; no valid schedule to noise it.");
    if (images) {
      var xt = P.noised(images.x0, images.eps, ab); // x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps
      P.paintImage(ui.image, xt);
      P.paintHistogram(ui.hist, images.x0Density, now.sc ? P.density(xt) : null, images.top);
      D.describe(ui.hist, histText(now.sc ? xt : null, st.t));
    } else {
      P.paintHistogram(ui.hist, null, null, 1);
      D.describe(ui.hist, "Histogram of the pixel values of xₜ; the image is still loading.");
    }
    paintTable(ui.table, readouts(st.t, st.T, now.sc, now.sm, cfg));
  }

  /** The histogram's description: what is drawn, and the mean and standard deviation of x_t's pixels (null: none). */
  function histText(xt, t) {
    var what = "Histogram of the pixel values of xₜ (blue line), of x₀ (grey bars) and the standard normal density (dashed)";
    if (!xt) return what + "; no valid schedule.";
    var m = 0, v = 0, i;
    for (i = 0; i < xt.length; i++) m += xt[i];
    m /= xt.length;
    for (i = 0; i < xt.length; i++) v += (xt[i] - m) * (xt[i] - m);
    return what + ". At t = " + t + " the pixels have mean " + m.toFixed(2) + " and standard deviation " + Math.sqrt(v / xt.length).toFixed(2) + ".";
  }

  function paintTable(table, rows) {
    table.textContent = "";
    rows.forEach(function (r) {
      var tr = el("tr", {}, table), head = r[1] === "";
      if (head) { el("th", { class: "dx-head", colspan: 2, scope: "colgroup", text: r[0] }, tr); return; }
      el("th", { class: "dx-k", scope: "row", text: r[0] }, tr);
      el("td", { text: r[1], class: r[2] ? "dx-dim" : "", "data-readout": r[0] }, tr);
      if (r[3]) tr.className = "dx-flag";
    });
  }

  /** Decode the embedded x0 and eps (PNG data URIs); done({x0, eps, x0Density, top}) once both are in. */
  function loadImages(cfg, done) {
    var got = {};
    function ready() {
      if (!got.x0 || !got.eps) return;
      var d = P.density(got.x0), top = 0.45;
      d.forEach(function (v) { top = Math.max(top, v); });
      done({ x0: got.x0, eps: got.eps, x0Density: d, top: 1.1 * top }); // fixed: the axes never rescale while a slider moves
    }
    P.decode(cfg.x0, function (u) { return u / 127.5 - 1; }, function (v) { got.x0 = v; ready(); });
    P.decode(cfg.eps, function (u) { return (u - 128) / cfg.eps_scale; }, function (v) { got.eps = v; ready(); });
  }

  /** The settings, kept in step with `model` (anywidget's, synced with Python, or staticModel's): {st, change, dispose}.
   *  change(name, value, quiet) is a control moving: the settings, then the model (saved unless quiet), then
   *  view(settingsChanged). A change made elsewhere (in Python, ex.beta_T = 0.01, or by another view of the same
   *  widget) updates st and calls view(true). Changing T keeps t's place in the process (t / T). anywidget fires
   *  the model's change events inside set(), so while we write, our own listener must not run: it would read
   *  back a setting not yet written (the old t, while T is already new). */
  function connect(model, view) {
    var st = {}, writing = false;
    SETTINGS.forEach(function (k) { st[k] = model.get(k); });
    function write(name, v) {
      writing = true;
      try { model.set(name, v); } finally { writing = false; }
    }
    function change(name, v, quiet) {
      if (name === "T" && st.T >= 1) st.t = Math.min(v, Math.round(st.t / st.T * v)); // keep the place in the process
      st[name] = v;
      write(name, v);
      if (name === "T") write("t", st.t);
      if (quiet) return;
      model.save_changes();
      view(name !== "t");
    }
    function onModel() {
      if (writing) return;
      var changed = false;
      SETTINGS.forEach(function (k) { var v = model.get(k); if (v !== st[k]) { st[k] = v; changed = true; } });
      if (st.T >= 1 && st.t > st.T) { st.t = st.T; write("t", st.t); model.save_changes(); } // T shrank below t
      if (changed) view(true);
    }
    SETTINGS.forEach(function (k) { model.on("change:" + k, onModel); });
    return { st: st, change: change, dispose: function () { SETTINGS.forEach(function (k) { model.off("change:" + k, onModel); }); } };
  }

  /** Build the explorer inside `root` and keep it in step with model: anywidget's, or staticModel(...) on a page.
   *  Its canvases are redrawn in the new colours when the page switches between light and dark. */
  function mount(root, model) {
    var cfg = model.get("config"), now = null, images = null, frame = 0, ref = S.fromSpec(S.REFERENCE);
    var state = connect(model, redraw), st = state.st, ui = build(root, st, cfg, state.change);
    function redraw(settingsChanged) {
      if (settingsChanged) now = evaluate(st, cfg);
      st.t = Math.max(0, Math.min(st.T, st.t));
      syncControls(ui, st);
      showMessages(ui, now, cfg);
      if (!frame) frame = D.requestFrame(function () { frame = 0; paint(ui, st, now, ref, cfg, images); });
    }
    redraw(true);
    loadImages(cfg, function (loaded) { images = loaded; redraw(false); });
    var stopTheme = D.onTheme(function () { redraw(false); });
    return function () { state.dispose(); stopTheme(); };
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
    SETTINGS: SETTINGS, SLIDERS: SLIDERS, ladder: ladder, range: range, fromSlider: fromSlider, toSlider: toSlider, valueTexts: valueTexts,
    evaluate: evaluate, caption: caption, warning: warning, readouts: readouts, connect: connect, mount: mount,
    staticModel: staticModel, render: render,
  };
})(typeof DDPMText !== "undefined" ? DDPMText : require("./text.js"),
   typeof DDPMDom !== "undefined" ? DDPMDom : require("./dom.js"),
   typeof DDPMSchedule !== "undefined" ? DDPMSchedule : require("./schedule.js"),
   typeof DDPMPlots !== "undefined" ? DDPMPlots : require("./plots.js"));

if (typeof module !== "undefined" && module.exports) module.exports = DDPMExplorer;
