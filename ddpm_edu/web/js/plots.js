/* ddpm-edu: the schedule explorer's pictures (chapters 3-5), on plain canvases.
 *
 * Three curves against t/T on fixed axes (beta_t, alpha_bar_t, SNR_t, with DDPM's schedule in grey),
 * the photograph noised by the closed form x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps,
 * and the histogram of its pixels. noised, rgba and density are pure (tests/test_explorer.py runs them
 * under node against ddpm_edu.forward.q_sample); the paint functions only draw, in the colours of the
 * page's theme (dom.js's colours(), read from the canvas at each paint), and describe what they drew.
 */
var DDPMPlots = (function (X, D) {
  "use strict";

  var PW = 208, PH = 160, M = { l: 42, r: 14, t: 20, b: 30 }; // plot size and margins in CSS pixels: three fit a 660-px column
  var HIST = { lo: -3.5, hi: 3.5, bins: 70 }; // the pixel histogram's range and bins

  /** The three curves, in the order they are drawn: what they show (title on the canvas, text for a screen reader),
   *  on which fixed axes, from which t. */
  var CURVES = [
    { plot: "beta", key: "betas", title: "βₜ, the noise added at step t", text: "The noise βₜ added at each step", log: true, y: [1e-6, 1], ticks: [1e-6, 1e-4, 1e-2, 1], from: 1 },
    { plot: "alpha_bar", key: "alphaBar", title: "ᾱₜ, the share of x₀ left", text: "The share ᾱₜ of x₀ left in xₜ", log: false, y: [0, 1], ticks: [0, 0.5, 1], from: 0, shade: true },
    { plot: "snr", key: "snr", title: "SNRₜ = ᾱₜ / (1 − ᾱₜ)", text: "The signal-to-noise ratio SNRₜ = ᾱₜ / (1 − ᾱₜ)", log: true, y: [1e-10, 1e8], ticks: [1e-8, 1e-4, 1, 1e4, 1e8], from: 1, one: true },
  ];

  // ------------------------------------------------------------------ axes and lines

  /** A plot box mapping u = t / T in [0, 1] and v to pixels; y is log or linear over the FIXED range [y0, y1]. */
  function axes(ctx, c, title, log, y0, y1, yticks, xlabels) {
    var w = PW - M.l - M.r, h = PH - M.t - M.b, f = log ? Math.log10 : function (v) { return v; };
    var ax = {
      x: function (u) { return M.l + u * w; },
      y: function (v) {
        var q = (f(v) - f(y0)) / (f(y1) - f(y0));
        return M.t + h * (1 - Math.max(-0.05, Math.min(1.05, isNaN(q) ? -1 : q))); // NaN: the log of 0
      },
      w: w, h: h,
    };
    frame(ctx, c, title);
    ctx.strokeStyle = c.grid;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    yticks.forEach(function (v) {
      var y = Math.round(ax.y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + w, y); ctx.stroke();
      ctx.fillText(log ? X.pow10(Math.round(Math.log10(v))) : String(v), M.l - 4, y);
    });
    xticks(ctx, xlabels.map(function (lab) { return [ax.x(lab[0]), lab[1]]; }), "t", h);
    box(ctx, c, w, h);
    return ax;
  }

  /** Clear the canvas and write the title; c: the theme's colours (dom.js's colours()). */
  function frame(ctx, c, title) {
    ctx.clearRect(0, 0, PW, PH);
    ctx.font = "11px sans-serif";
    ctx.fillStyle = c.ink;
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    ctx.fillText(title, M.l, 13);
  }

  /** The plot's box, w x h inside the margins. */
  function box(ctx, c, w, h) {
    ctx.strokeStyle = c.axis;
    ctx.lineWidth = 1;
    ctx.strokeRect(M.l + 0.5, M.t + 0.5, w, h);
  }

  /** Labels [x pixel, text] under the box, and the axis name below them. */
  function xticks(ctx, labels, name, h) {
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    labels.forEach(function (lab) { ctx.fillText(lab[1], lab[0], M.t + h + 4); });
    if (name) ctx.fillText(name, M.l + (PW - M.l - M.r) / 2, M.t + h + 16);
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
  }

  /** arr[from..T] against t / T. */
  function curve(ctx, ax, arr, T, colour, from) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (var t = from; t <= T; t++) {
      if (t === from) ctx.moveTo(ax.x(t / T), ax.y(arr[t])); else ctx.lineTo(ax.x(t / T), ax.y(arr[t]));
    }
    ctx.stroke();
  }

  /** The step t: a vertical line at u = t / T, and a red dot at v when it is drawable. */
  function marker(ctx, c, ax, u, v) {
    ctx.strokeStyle = c.line;
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(ax.x(u), M.t); ctx.lineTo(ax.x(u), M.t + ax.h); ctx.stroke();
    if (isFinite(v) && v >= 0) {
      ctx.fillStyle = c.mark;
      ctx.beginPath(); ctx.arc(ax.x(u), ax.y(v), 3.5, 0, 2 * Math.PI); ctx.fill();
    }
  }

  /** Shade the steps with alpha_bar_t < noised (almost pure noise), one rectangle per run of them. */
  function shadeNoised(ctx, c, ax, sc, noised) {
    ctx.fillStyle = c.shade;
    for (var s = 1, run = 0; s <= sc.T + 1; s++) {
      if (s <= sc.T && sc.alphaBar[s] < noised) { if (!run) run = s; }
      else if (run) { ctx.fillRect(ax.x((run - 1) / sc.T), M.t, ax.x((s - 1) / sc.T) - ax.x((run - 1) / sc.T), ax.h); run = 0; }
    }
  }

  /** One of CURVES on its canvas: DDPM's curve (ref) in grey, this schedule's (sc, or null) in blue, step t marked. */
  function paintCurve(cv, spec, sc, ref, T, t, noised) {
    var ctx = cv.getContext("2d"), c = D.colours(cv), xl = [[0, "0"], [0.5, String(Math.round(T / 2))], [1, String(T)]];
    var ax = axes(ctx, c, spec.title, spec.log, spec.y[0], spec.y[1], spec.ticks, xl);
    ctx.save();
    ctx.beginPath(); ctx.rect(M.l, M.t, ax.w, ax.h); ctx.clip(); // nothing leaves the box
    if (spec.shade && sc) shadeNoised(ctx, c, ax, sc, noised);
    if (spec.one) { // SNR_t = 1: as much signal as noise
      var y = Math.round(ax.y(1)) + 0.5;
      ctx.strokeStyle = c.line; ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + ax.w, y); ctx.stroke();
      ctx.setLineDash([]);
    }
    curve(ctx, ax, ref[spec.key], ref.T, c.ref, spec.from);
    if (sc) { curve(ctx, ax, sc[spec.key], T, c.c0, spec.from); marker(ctx, c, ax, T ? t / T : 0, t >= spec.from ? sc[spec.key][t] : NaN); }
    ctx.restore();
    D.describe(cv, curveText(spec, sc, T, t));
  }

  /** What a curve's canvas shows, in words: the curve, its range over t, and its value at step t. */
  function curveText(spec, sc, T, t) {
    var what = spec.text + " against t from 0 to T = " + T + (spec.log ? ", on a log scale" : "") + "; DDPM's schedule in grey";
    if (!sc) return what + "; no valid schedule to draw.";
    var arr = sc[spec.key], v = function (k) { return X.fmt(arr[k]); };
    return what + ". This schedule goes from " + v(spec.from) + " at t = " + spec.from + " to " + v(T) + " at t = " + T +
      (t >= spec.from ? "; at the marked step t = " + t + " it is " + v(t) + "." : "; the marked step is t = " + t + ".");
  }

  // ------------------------------------------------------------------ the noised image and its histogram

  /** x_t = sqrt(ab) x0 + sqrt(1 - ab) eps, element by element (ab = alpha_bar_t); x0 itself when ab is NaN. */
  function noised(x0, eps, ab) {
    var a = Math.sqrt(ab), b = Math.sqrt(1 - ab), out = new Float64Array(x0.length);
    for (var i = 0; i < x0.length; i++) out[i] = isNaN(ab) ? x0[i] : a * x0[i] + b * eps[i];
    return out;
  }

  /** RGBA bytes of an image given as RGB values in [-1, 1] (H * W * 3, row-major), as images.to_uint8 maps them. */
  function rgba(x) {
    var n = x.length / 3, out = new Uint8ClampedArray(4 * n);
    for (var i = 0; i < x.length; i++) out[4 * Math.floor(i / 3) + (i % 3)] = Math.round((Math.max(-1, Math.min(1, x[i])) + 1) * 127.5);
    for (var j = 0; j < n; j++) out[4 * j + 3] = 255;
    return out;
  }

  /** The histogram of values over HIST's bins, as a density (bin counts / (n * bin width)). */
  function density(values) {
    var bw = (HIST.hi - HIST.lo) / HIST.bins, out = new Float64Array(HIST.bins);
    for (var i = 0; i < values.length; i++) {
      var k = Math.floor((values[i] - HIST.lo) / bw);
      if (k >= 0 && k < HIST.bins) out[k]++;
    }
    for (k = 0; k < HIST.bins; k++) out[k] /= values.length * bw;
    return out;
  }

  /** Draw the RGB values x in [-1, 1] on the image canvas (its size is the image's). */
  function paintImage(cv, x) {
    var ctx = cv.getContext("2d"), im = ctx.createImageData(cv.width, cv.height);
    im.data.set(rgba(x));
    ctx.putImageData(im, 0, 0);
  }

  /** The histogram plot: x0's density in grey bars, N(0, 1) dashed, and x_t's density (or null) as a blue step line. */
  function paintHistogram(cv, x0Density, xtDensity, top) {
    var ctx = cv.getContext("2d"), c = D.colours(cv), w = PW - M.l - M.r, h = PH - M.t - M.b, bw = (HIST.hi - HIST.lo) / HIST.bins;
    var hx = function (v) { return M.l + (v - HIST.lo) / (HIST.hi - HIST.lo) * w; };
    var hy = function (d) { return M.t + h * (1 - Math.min(1.05, d / top)); };
    frame(ctx, c, "pixel values of xₜ (and x₀, grey)");
    xticks(ctx, [-3, -2, -1, 0, 1, 2, 3].map(function (v) { return [hx(v), String(v)]; }), null, h);
    box(ctx, c, w, h);
    if (!x0Density) return; // x0 and eps are still decoding
    ctx.fillStyle = c.bar;
    x0Density.forEach(function (d, k) { if (d > 0) ctx.fillRect(hx(HIST.lo + k * bw), hy(d), w / HIST.bins + 0.3, M.t + h - hy(d)); });
    ctx.strokeStyle = c.line;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    for (var k = 0; k <= 140; k++) {
      var z = HIST.lo + k * (HIST.hi - HIST.lo) / 140, y = hy(Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI));
      if (k) ctx.lineTo(hx(z), y); else ctx.moveTo(hx(z), y);
    }
    ctx.stroke();
    ctx.setLineDash([]);
    if (!xtDensity) return;
    ctx.strokeStyle = c.c0;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    xtDensity.forEach(function (d, j) {
      if (j) ctx.lineTo(hx(HIST.lo + j * bw), hy(d)); else ctx.moveTo(hx(HIST.lo), hy(d));
      ctx.lineTo(hx(HIST.lo + (j + 1) * bw), hy(d));
    });
    ctx.stroke();
  }

  /** Decode a PNG data URI to a Float32Array of its RGB bytes mapped by f; calls back with (values, w, h). */
  function decode(uri, f, done) {
    var img = new Image();
    img.onload = function () {
      var cv = D.el("canvas", { width: img.naturalWidth, height: img.naturalHeight }), ctx = cv.getContext("2d");
      ctx.drawImage(img, 0, 0);
      var px = ctx.getImageData(0, 0, cv.width, cv.height).data, n = cv.width * cv.height, out = new Float32Array(3 * n);
      for (var i = 0; i < n; i++) for (var c = 0; c < 3; c++) out[3 * i + c] = f(px[4 * i + c]);
      done(out, cv.width, cv.height);
    };
    img.src = uri;
  }

  return {
    PW: PW, PH: PH, HIST: HIST, CURVES: CURVES, paintCurve: paintCurve, noised: noised, rgba: rgba,
    density: density, paintImage: paintImage, paintHistogram: paintHistogram, decode: decode,
  };
})(typeof DDPMText !== "undefined" ? DDPMText : require("./text.js"),
   typeof DDPMDom !== "undefined" ? DDPMDom : require("./dom.js"));

if (typeof module !== "undefined" && module.exports) module.exports = DDPMPlots;
