/* ddpm-edu: the live samplers' page (chapters 6, 8 and 10): their controls, their canvases, a run per press.
 *
 * mountToy: n points of the 2-D toy follow the trained MLP (or chapter 6's exact eps*) from N(0, I);
 * mountDigits: a 4 x 4 grid of digits denoised by the U-Net in onnxruntime-web; a conditional U-Net (chapter 10)
 * adds the digit to draw and the guidance weight w. The math is elsewhere:
 * sampler.js (the samplers), nets.js (the denoisers), metrics.js (energy distance), ort.js (the runtime).
 * Loaded like every file of js/: concatenated by ddpm_edu/web/views.py, or under node through require.
 */
var DDPMLive = (function (D, Sm, N, Mt, O) {
  "use strict";

  var el = D.el, show = D.show;

  var CSS =
    ".ddpml{font:13px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ddpm-ink);background:var(--ddpm-bg);" +
    "border:1px solid var(--ddpm-border);border-radius:6px;padding:10px 12px;max-width:760px;box-sizing:border-box}" +
    ".ddpml .dl-row{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin:3px 0}" +
    ".ddpml label{display:inline-flex;align-items:center;gap:4px;margin:0;font-weight:normal;color:inherit}" +
    ".ddpml input[type=radio],.ddpml input[type=checkbox]{margin:0;width:auto;accent-color:var(--ddpm-c0)}" +
    ".ddpml input[type=range]{width:130px;margin:0;accent-color:var(--ddpm-c0)}" +
    ".ddpml input[type=number]{width:64px;color:var(--ddpm-ink);background:var(--ddpm-bg);border:1px solid var(--ddpm-border)}" +
    ".ddpml select{font:inherit;padding:1px 2px;color:var(--ddpm-ink);background:var(--ddpm-bg);border:1px solid var(--ddpm-border)}" +
    ".ddpml .dl-v{min-width:34px;font-variant-numeric:tabular-nums}.ddpml [role=radiogroup] label{margin-left:8px}" +
    ".ddpml button{padding:3px 14px;border:1px solid var(--ddpm-axis);border-radius:4px;color:var(--ddpm-ink);" +
    "background:var(--ddpm-button);cursor:pointer}" +
    ".ddpml .dl-status{color:var(--ddpm-muted);font-variant-numeric:tabular-nums;margin:4px 0;min-height:1.4em}" +
    ".ddpml .dl-note{color:var(--ddpm-muted)}" +
    ".ddpml .dl-err{color:var(--ddpm-errline)}.ddpml canvas{max-width:none;border:1px solid var(--ddpm-border)}" +
    ".ddpml .dl-sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);border:0}";

  /** The sliders of both samplers, by name: [label, accessible name, min, max, step, decimals shown]. Each keyboard
   *  step moves the value by `step`, which the decimals shown resolve (tests/test_explorer.py checks it under node). */
  var SLIDERS = {
    steps: ["steps ", "steps of DDIM (network calls)", 10, 200, 1, 0],
    eta: ["η ", "η, DDIM's stochasticity (0: deterministic)", 0, 1, 0.05, 2],
    T: ["T ", "T, the number of diffusion steps", 10, 1000, 10, 0],
    w: ["guidance w ", "guidance weight w (0: the conditional model; larger pulls harder towards the digit)", 0, 4, 0.5, 1],
  };

  // ------------------------------------------------------------------ controls: each reads and writes st[name]

  /** A row of controls in box; c.changed(name) is called after a control changes st. */
  function controlRow(box, st) { return { box: box, st: st, row: el("div", { class: "dl-row" }, box), changed: function () {} }; }

  function newRow(c) { c.row = el("div", { class: "dl-row" }, c.box); }

  /** A named radio group: its title, then one labelled radio button per option [value, text]. */
  function radio(c, name, title, options) {
    var span = el("span", { "data-control": name, role: "radiogroup" }, c.row), group = D.uid("ddpml-" + name);
    var head = el("span", { text: title, id: D.uid("ddpml-title") }, span);
    span.setAttribute("aria-labelledby", head.id);
    options.forEach(function (o) {
      var lab = el("label", {}, span), r = D.control("input", { type: "radio", name: group, value: o[0] }, lab);
      lab.appendChild(document.createTextNode(o[1]));
      r.checked = c.st[name] === o[0];
      r.addEventListener("change", function () { if (r.checked) { c.st[name] = o[0]; c.changed(name); } });
    });
    return span;
  }

  /** The slider SLIDERS[name], its value beside it (and as aria-valuetext). */
  function slider(c, name) {
    var s = SLIDERS[name], text = function (v) { return v.toFixed(s[5]); }, lab = el("label", { "data-control": name }, c.row);
    lab.appendChild(document.createTextNode(s[0]));
    var inp = D.control("input", { type: "range", min: s[2], max: s[3], step: s[4], "data-name": name, "aria-label": s[1] }, lab);
    var v = el("span", { class: "dl-v", "aria-hidden": "true" }, lab);
    var say = function () { v.textContent = text(c.st[name]); inp.setAttribute("aria-valuetext", v.textContent); };
    inp.value = c.st[name];
    say();
    inp.addEventListener("input", function () { c.st[name] = parseFloat(inp.value); say(); c.changed(name); });
    return lab;
  }

  function checkbox(c, name, title) {
    var lab = el("label", { "data-control": name }, c.row), box = D.control("input", { type: "checkbox", "data-name": name }, lab);
    lab.appendChild(document.createTextNode(title));
    box.checked = !!c.st[name];
    box.addEventListener("change", function () { c.st[name] = box.checked; c.changed(name); });
    return lab;
  }

  function number(c, name, title) {
    var lab = el("label", { "data-control": name }, c.row);
    lab.appendChild(document.createTextNode(title));
    var inp = D.control("input", { type: "number", min: 0, step: 1, "data-name": name }, lab);
    inp.value = c.st[name];
    inp.addEventListener("change", function () { c.st[name] = Math.max(0, parseInt(inp.value, 10) || 0); c.changed(name); });
    return lab;
  }

  /** A labelled drop-down list of options [value, text]; st[name] holds the chosen value, a number where it is one. */
  function choice(c, name, title, options, ariaLabel) {
    var lab = el("label", { "data-control": name }, c.row);
    lab.appendChild(document.createTextNode(title));
    var sel = D.control("select", { "data-name": name, "aria-label": ariaLabel }, lab);
    options.forEach(function (o) { el("option", { value: String(o[0]), text: o[1] }, sel); });
    sel.value = String(c.st[name]);
    sel.addEventListener("change", function () {
      var v = sel.value, k = Number(v);
      c.st[name] = v !== "" && Number.isInteger(k) ? k : v;
      c.changed(name);
    });
    return lab;
  }

  // ------------------------------------------------------------------ what both samplers share

  /** Empty root and put the sampler's box, with its style, in it; box.announce(text) tells a screen reader (a
   *  polite live region, visually hidden: the visible status changes at every step and is not announced). */
  function frame(root, kind, title) {
    root.textContent = "";
    var box = el("div", { class: "ddpml " + kind, role: "group", "aria-label": title }, root);
    el("style", { text: D.themeCss("ddpml") + CSS }, box);
    var live = el("div", { class: "dl-sr", role: "status", "aria-live": "polite" }, box);
    box.announce = function (text) { live.textContent = text; };
    return box;
  }

  /** Run ids: newRun() starts a run and returns its stop(), true once a newer run has started. */
  function latestRun() {
    var last = 0;
    return function () { var id = ++last; return function () { return id !== last; }; };
  }

  /** Run go() when the button is pressed; a failure is shown in status, announced, and marks the root's data-state. */
  function onPress(root, box, button, status, go) {
    button.addEventListener("click", function () {
      box.announce("sampling…");
      go().catch(function (e) {
        var msg = String(e && e.message || e);
        status.textContent = "";
        el("span", { class: "dl-err", text: msg }, status);
        box.announce("The run failed: " + msg);
        root.setAttribute("data-state", "error");
      });
    });
  }

  /** Mark a finished run on the root for readers of the DOM (tests/browser/check_live.py): data-*, the samples;
   *  and announce it with `text`, what the visible status says at the end. */
  function finished(root, box, samples, attrs, text) {
    Object.keys(attrs).forEach(function (k) { root.setAttribute("data-" + k, String(attrs[k])); });
    root.__ddpmSamples = samples;
    root.setAttribute("data-state", "done");
    box.announce(text);
  }

  // ------------------------------------------------------------------ the 2-D toy

  var TOY_PX = 340, TOY_VIEW = 2.6; // the canvas's side in pixels; it shows [-2.6, 2.6]^2

  /** The toy's controls (sampler, sigma^2, steps, eta, T for the exact eps*, seed); returns the sample button. */
  function toyControls(box, st, cfg, exact) {
    var c = controlRow(box, st);
    radio(c, "sampler", "sampler:", [["ddpm", " DDPM"], ["ddim", " DDIM"]]);
    var variance = radio(c, "variance", "σ²:", [["beta_tilde", " β̃"], ["beta", " β"]]);
    newRow(c);
    var steps = slider(c, "steps"), eta = slider(c, "eta");
    newRow(c);
    if (exact) slider(c, "T");
    else el("span", { class: "dl-v", text: "T = " + cfg.schedule.T + " (the network's)" }, c.row);
    number(c, "seed", "seed ");
    c.changed = function () { var ddim = st.sampler === "ddim"; show(variance, !ddim); show(steps, ddim); show(eta, ddim); };
    c.changed();
    return D.control("button", { type: "button", text: "sample" }, c.row);
  }

  /** The data and the first n points of x (a flat (n, 2) array) on the square canvas, in the theme's colours;
   *  `what` describes the points for a screen reader. */
  function drawPoints(cv, data, x, n, what) {
    var ctx = cv.getContext("2d"), c = D.colours(cv), W = cv.width, px = function (v) { return (v + TOY_VIEW) / (2 * TOY_VIEW) * W; };
    ctx.clearRect(0, 0, W, W);
    ctx.fillStyle = c.data;
    for (var i = 0; i < data.length / 2; i++) ctx.fillRect(px(data[2 * i]) - 1, W - px(data[2 * i + 1]) - 1, 2, 2);
    ctx.fillStyle = c.c0;
    ctx.globalAlpha = 0.8;
    for (var j = 0; j < n; j++) ctx.fillRect(px(x[2 * j]) - 1.25, W - px(x[2 * j + 1]) - 1.25, 2.5, 2.5);
    ctx.globalAlpha = 1;
    D.describe(cv, "The plane from −" + TOY_VIEW + " to " + TOY_VIEW + " in x and y: " + data.length / 2 +
      " draws of the data in grey" + (what ? "; " + what : "") + ".");
  }

  /** What a toy run did, in words: its sampler and settings. */
  function toySettings(st, T) {
    return st.sampler === "ddim" ? "DDIM with " + Math.min(st.steps, T) + " steps, η = " + st.eta.toFixed(2) + ", T = " + T
      : "DDPM with T = " + T + " steps, σ² = " + (st.variance === "beta" ? "β" : "β̃");
  }

  /** One run of the toy: x_T ~ N(0, I) from seed * 2 + 1, the sampler's z from seed * 2; draws every step. */
  async function sampleToy(root, box, cfg, st, net, draw, status, stop) {
    var n = cfg.n, sc = Sm.schedule(net ? cfg.schedule : Object.assign({}, cfg.schedule, { T: st.T }));
    var model = net || N.mixtureEps(cfg.mix, sc), t0 = performance.now(), calls = 0, how = toySettings(st, sc.T);
    root.setAttribute("data-state", "running");
    var x = Sm.randn(2 * n, Sm.uniform(st.seed * 2 + 1)); // x_T ~ N(0, I)
    var out = await Sm.sample(model, x, n, sc, st, { seed: st.seed * 2, stop: stop, callback: async function (t, xt) {
      draw(xt, n, n + " points in blue at step t = " + t + " of a run of " + how);
      status.textContent = t > 0 ? "t = " + t + " · step " + (++calls) : "";
      await D.nextFrame();
    } });
    if (out === null) return; // a newer run took over
    var ms = performance.now() - t0, ed = Mt.energyDistance(out, Float64Array.from(cfg.data), 2);
    status.textContent = "done: " + calls + " steps in " + (ms / 1000).toFixed(1) + " s · energy distance to the data: " + ed.toFixed(4);
    draw(out, n, n + " samples in blue from " + how + ", energy distance to the data " + ed.toFixed(4));
    finished(root, box, out, { energy: ed, ms: ms }, "Sampling finished: " + status.textContent);
  }

  /** Mount the 2-D live sampler in `root`. cfg: {schedule: {kind, T, beta_1, beta_T}, mlp: mlp_weights() or null,
   *  mix: a mixture for the exact eps* (used when mlp is null), data: flat (n, 2) reference points, n, settings}.
   *  Returns a function that stops it watching the page's theme. */
  function mountToy(root, cfg) {
    var st = Object.assign({ sampler: "ddpm", variance: "beta_tilde", steps: 50, eta: 0, seed: 0, T: cfg.schedule.T }, cfg.settings);
    var exact = !cfg.mlp, data = Float64Array.from(cfg.data), net = exact ? null : N.mlpModel(N.decodeWeights(cfg.mlp.weights), cfg.mlp.sizes);
    var box = frame(root, "ddpml-toy", "live sampler of the 2-D toy"), button = toyControls(box, st, cfg, exact), newRun = latestRun();
    var cv = el("canvas", { width: TOY_PX, height: TOY_PX, "data-plot": "points" }, box), status = el("div", { class: "dl-status" }, box);
    var last = [new Float64Array(0), 0, ""];
    var draw = function (x, n, what) { last = [x, n, what]; drawPoints(cv, data, x, n, what); };
    onPress(root, box, button, status, function () { return sampleToy(root, box, cfg, st, net, draw, status, newRun()); });
    draw(new Float64Array(0), 0, "no samples yet");
    status.textContent = "Press sample: " + cfg.n + " points start from N(0, I)" + (exact ? " and follow the exact ε*." : " and follow the trained network.");
    root.setAttribute("data-state", "idle");
    return D.onTheme(function () { drawPoints(cv, data, last[0], last[1], last[2]); });
  }

  // ------------------------------------------------------------------ the digits

  /** A conditional model's controls (chapter 10): the digit ("any": no label, no guidance) and the guidance
   *  weight w of eq. (6), which "any" disables. Returns update(), which follows st.label. */
  function guidanceControls(c, st, K) {
    var digits = [["any", "any"]];
    for (var k = 0; k < K; k++) digits.push([k, String(k)]);
    choice(c, "label", "digit ", digits, "the digit to draw (any: no label, the unconditional model)");
    var inp = slider(c, "w").querySelector("input"), note = el("span", { class: "dl-note", text: "(w needs a digit)" }, c.row);
    return function () { inp.disabled = st.label === "any"; show(note, inp.disabled); };
  }

  /** The digits' controls (sampler, clipping, steps, eta, x_t or x0_hat, seed; with cfg.classes, the digit and
   *  the guidance weight); returns the sample button. */
  function digitsControls(box, st, cfg, onView) {
    var c = controlRow(box, st), guide = null;
    if (cfg.classes) { guide = guidanceControls(c, st, cfg.classes); newRow(c); }
    radio(c, "sampler", "sampler:", [["ddpm", " DDPM (T = " + cfg.schedule.T + ")"], ["ddim", " DDIM"]]);
    checkbox(c, "clip", " clip x̂₀ to [−1, 1]");
    newRow(c);
    var steps = slider(c, "steps"), eta = slider(c, "eta");
    newRow(c);
    radio(c, "view", "show:", [["xt", " x_t"], ["x0", " x̂₀"]]);
    number(c, "seed", "seed ");
    c.changed = function (name) {
      show(steps, st.sampler === "ddim"); show(eta, st.sampler === "ddim");
      if (guide) guide();
      if (name === "view") onView();
    };
    c.changed();
    return D.control("button", { type: "button", text: "sample" }, c.row);
  }

  /** The grid canvas of n = side^2 images of shape [1, H, W]; draw(x, what) paints the flat (n, H * W) batch x,
   *  image b at cell (b / side, b % side), pixels [-1, 1] -> grey 0..255, with one transparent pixel between
   *  them (the page's background shows there, light or dark); `what` describes them for a screen reader. */
  function digitGrid(n, shape) {
    var side = Math.round(Math.sqrt(n)), H = shape[1], W = shape[2], G = side * (W + 1) + 1;
    var cv = el("canvas", { width: G, height: G, "data-plot": "digits" });
    cv.style.width = cv.style.height = 8 * G + "px";
    cv.style.imageRendering = "pixelated";
    function draw(x, what) {
      var ctx = cv.getContext("2d"), img = ctx.createImageData(G, G);
      for (var b = 0; b < n; b++) for (var r = 0; r < H; r++) for (var q = 0; q < W; q++) {
        var v = Math.round((Math.max(-1, Math.min(1, x[b * H * W + r * W + q])) + 1) * 127.5);
        var o = 4 * ((Math.floor(b / side) * (H + 1) + 1 + r) * G + (b % side) * (W + 1) + 1 + q);
        img.data[o] = img.data[o + 1] = img.data[o + 2] = v;
        img.data[o + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      D.describe(cv, "A " + side + " by " + side + " grid of " + n + " digits of " + H + " by " + W + " pixels: " + what + ".");
    }
    return { canvas: cv, draw: draw };
  }

  /** The network a run samples with, and what it sees per call: the U-Net itself, or with cfg.classes
   *  the guided model of st.label and st.w (nets.js guidedModel: two passes in one call of 2n rows when guided). */
  function digitsNet(ort, session, cfg, st) {
    var net = N.onnxModel(ort, session, cfg.shape);
    if (!cfg.classes) return { net: net, perCall: cfg.n + " digits per call" };
    var y = st.label === "any" ? null : st.label, twice = y !== null && st.w > 0;
    return { net: N.guidedModel(net, y, st.w, cfg.classes),
             perCall: twice ? "2 × " + cfg.n + " digits per call: with the label and without" : cfg.n + " digits per call" };
  }

  /** What a digits run did, in words; with cfg.classes, the digit and w first. */
  function digitsSettings(st, T, classes) {
    var guide = !classes ? "" : st.label === "any" ? "any digit (no label, unguided), "
      : "digit " + st.label + " with guidance w = " + st.w.toFixed(1) + ", ";
    return guide + (st.sampler === "ddim" ? "DDIM with " + Math.min(st.steps, T) + " steps, η = " + st.eta.toFixed(2) : "DDPM with " + T + " steps") +
      (st.clip ? ", x̂₀ clipped to [−1, 1]" : "");
  }

  /** One run of the digits: the network loads once per page, then the chosen sampler runs, timed per network call. */
  async function sampleDigits(root, box, cfg, given, st, status, stop, onFrame) {
    root.setAttribute("data-state", "loading");
    status.textContent = "loading the network…";
    var ort = await O.loadOrt(cfg, given);
    if (!root.__ddpmSession) root.__ddpmSession = await ort.InferenceSession.create(N.bytes(cfg.model));
    var chosen = digitsNet(ort, root.__ddpmSession, cfg, st), net = chosen.net, sc = Sm.schedule(cfg.schedule), n = cfg.n;
    var calls = 0, tNet = 0, t0 = performance.now(), x = Sm.randn(n * cfg.shape[1] * cfg.shape[2], Sm.uniform(st.seed * 2 + 1));
    var timed = async function (xx, t, B) { var a = performance.now(), e = await net(xx, t, B); tNet += performance.now() - a; return e; };
    var how = digitsSettings(st, sc.T, cfg.classes);
    root.setAttribute("data-state", "running");
    var out = await Sm.sample(timed, x, n, sc, st, { clip: st.clip ? 1 : null, seed: st.seed * 2, stop: stop,
      callback: async function (t, xt, x0) {
        onFrame({ xt: xt, x0: x0, t: t, how: how });
        if (t > 0) status.textContent = "t = " + t + " · step " + (++calls) + " · " + (tNet / calls).toFixed(0) + " ms per step";
        await D.nextFrame();
      } });
    if (out === null) return; // a newer run took over
    var ms = performance.now() - t0;
    status.textContent = "done: " + calls + " steps in " + (ms / 1000).toFixed(2) + " s · " + (tNet / calls).toFixed(0) +
      " ms per step in the network (" + chosen.perCall + ")";
    var attrs = Object.assign({ ms: ms, "net-ms": tNet, steps: calls }, cfg.classes ? { label: st.label, w: st.w } : {});
    finished(root, box, out, attrs, "Sampling finished: " + status.textContent);
  }

  /** Mount the digits live sampler. cfg: {model: base64 ONNX, shape: [1, 8, 8], schedule, n: 16, assets, settings},
   *  and for a conditional U-Net classes: K, with settings.label ("any" or 0..K-1) and settings.w;
   *  given: a function that resolves to {js, wasm}, onnxruntime-web's module source and WASM bytes (a kernel's
   *  widget), else null: the book's _static folder. */
  function mountDigits(root, cfg, given) {
    var st = Object.assign({ sampler: "ddim", steps: 25, eta: 0, clip: true, view: "x0", seed: 0 }, cfg.settings);
    var kind = cfg.classes ? ["ddpml-digits ddpml-guided", "live guided sampler of the digits"] : ["ddpml-digits", "live sampler of the digits"];
    var box = frame(root, kind[0], kind[1]), grid = digitGrid(cfg.n, cfg.shape), last = null, newRun = latestRun();
    var paint = function (f) {
      last = f;
      grid.draw(st.view === "x0" ? f.x0 : f.xt, (st.view === "x0" ? "the denoised estimate x̂₀" : "x_t") + " at step t = " + f.t + " of " + f.how);
    };
    var button = digitsControls(box, st, cfg, function () { if (last) paint(last); });
    box.appendChild(grid.canvas);
    var status = el("div", { class: "dl-status" }, box);
    onPress(root, box, button, status, function () { return sampleDigits(root, box, cfg, given, st, status, newRun(), paint); });
    grid.draw(new Float64Array(cfg.n * cfg.shape[1] * cfg.shape[2]).fill(-1), "all black, before the first run");
    status.textContent = (cfg.classes ? "Choose a digit and the guidance w, then press sample: " : "Press sample: ") + cfg.n +
      " digits from N(0, I), denoised by the trained U-Net in your browser.";
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

  return { SLIDERS: SLIDERS, mountToy: mountToy, mountDigits: mountDigits, render: render };
})(typeof DDPMDom !== "undefined" ? DDPMDom : require("./dom.js"),
   typeof DDPMSampler !== "undefined" ? DDPMSampler : require("./sampler.js"),
   typeof DDPMNets !== "undefined" ? DDPMNets : require("./nets.js"),
   typeof DDPMMetrics !== "undefined" ? DDPMMetrics : require("./metrics.js"),
   typeof DDPMOrt !== "undefined" ? DDPMOrt : require("./ort.js"));

if (typeof module !== "undefined" && module.exports) module.exports = DDPMLive;
