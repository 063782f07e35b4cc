/* ddpm-edu: the few DOM helpers that the explorer and the live samplers share.
 *
 * Nothing here knows about diffusion: elements, crisp canvases, showing and hiding, frames, and the
 * page's theme: the colours the widgets use (CSS variables that follow the book's light and dark modes,
 * JupyterLab's and VS Code's themes), read back when a canvas is drawn, and a watch on theme changes.
 */
var DDPMDom = (function () {
  "use strict";

  /** A new element: el("span", {class: "x", text: "hi"}, parent); "text" sets textContent, the rest are attributes. */
  function el(tag, attrs, parent) {
    var e = document.createElement(tag);
    for (var k in attrs) if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  /** A control that takes focus (<input>, <button>), kept out of JupyterLab's notebook shortcuts: in command
   *  mode the notebook cancels the arrow keys on a focused element unless that element itself carries
   *  data-lm-suppress-shortcuts (on a container it is not looked for). */
  function control(tag, attrs, parent) {
    var e = el(tag, attrs, parent);
    e.setAttribute("data-lm-suppress-shortcuts", "true");
    return e;
  }

  /** A canvas of w x h CSS pixels, drawn at the screen's resolution (its context is scaled to CSS pixels). */
  function canvas(w, h) {
    var cv = document.createElement("canvas"), r = window.devicePixelRatio || 1;
    cv.width = Math.round(w * r);
    cv.height = Math.round(h * r);
    cv.style.width = w + "px";
    cv.style.height = h + "px";
    cv.getContext("2d").setTransform(r, 0, 0, r, 0, 0);
    return cv;
  }

  /** A canvas as a picture for assistive technology: role="img", described by `text` (what it shows now). */
  function describe(cv, text) {
    cv.setAttribute("role", "img");
    cv.setAttribute("aria-label", text);
  }

  /** Show or hide an element. */
  function show(node, on) { node.style.display = on ? "" : "none"; }

  /** A name no other widget on the page uses (radio groups, ids). */
  function uid(prefix) { return prefix + "-" + Math.random().toString(36).slice(2); }

  /** Call f at the next animation frame (or after 16 ms where there are no frames). */
  function requestFrame(f) {
    if (typeof requestAnimationFrame === "function") return requestAnimationFrame(f);
    return setTimeout(f, 16);
  }

  /** A Promise that resolves at the next frame: `await nextFrame()` lets the page draw. */
  function nextFrame() { return new Promise(requestFrame); }

  // ------------------------------------------------------------------ the theme

  /** The widgets' colours, light and dark: [light, dark] by name, each --ddpm-<name> in CSS. Text and background
   *  come from the host's own variables where there are some (pydata-sphinx-theme's --pst-color-*, JupyterLab's
   *  --jp-*), so a widget sits on the page's colours; the rest are the plots' own. Light text colours have at
   *  least 4.5:1 contrast on white, dark ones on the book's dark background (#14181e). */
  var COLOURS = {
    bg: ["var(--pst-color-background, var(--jp-layout-color0, #fff))", "var(--pst-color-background, var(--jp-layout-color0, #14181e))"],
    ink: ["var(--pst-color-text-base, var(--jp-content-font-color1, #222))", "var(--pst-color-text-base, var(--jp-content-font-color1, #ced6dd))"],
    muted: ["#555", "#a9b1ba"], // secondary text: captions, readout names
    border: ["var(--pst-color-border, var(--jp-border-color1, #ccc))", "var(--pst-color-border, var(--jp-border-color1, #48566b))"],
    focus: ["var(--pst-color-primary, var(--jp-brand-color1, #0a58ca))", "var(--pst-color-primary, var(--jp-brand-color1, #66a3ff))"],
    grid: ["#e6e6e6", "#2c333d"], // grid lines
    axis: ["#999", "#6c7683"], // the plot's box
    c0: ["#1f77b4", "#4ea3e0"], // this schedule; the sampled points
    ref: ["#b8b8b8", "#707a86"], // DDPM's schedule, for reference
    mark: ["#d62728", "#ff6b6b"], // step t
    line: ["#777", "#8e97a3"], // dashed reference lines (SNR = 1, N(0, 1))
    bar: ["#ddd", "#3a414b"], // x0's histogram
    shade: ["rgba(244,162,97,0.25)", "rgba(244,162,97,0.22)"], // the steps that are almost pure noise
    data: ["#c4c4c4", "#5a6470"], // the toy's data points
    err: ["#fdecea", "#3d1f1f"], // the background of an error
    errline: ["#b3261e", "#f28b82"],
    warn: ["#fff4e0", "#3b2e17"], // the background of a warning, and of a flagged readout
    warnline: ["#d9822b", "#e6a35c"],
    button: ["#f4f4f4", "#262c35"],
  };

  /** Where a host says that it is dark: the book's theme (pydata-sphinx-theme sets data-theme on <html>, "auto"
   *  resolved), JupyterLab (data-jp-theme-light on <body>), VS Code (class vscode-dark on <body>). */
  var DARK = ["html[data-theme=dark]", "body[data-jp-theme-light=false]", "body.vscode-dark"];

  /** CSS that defines the --ddpm-* colours on elements of class `cls`, light by default, dark where the host is. */
  function themeCss(cls) {
    var light = [], dark = [];
    Object.keys(COLOURS).forEach(function (k) {
      light.push("--ddpm-" + k + ":" + COLOURS[k][0]);
      dark.push("--ddpm-" + k + ":" + COLOURS[k][1]);
    });
    var sel = DARK.map(function (d) { return d + " ." + cls; }).join(",");
    return "." + cls + "{" + light.join(";") + "}" + sel + "{" + dark.join(";") + "}" +
      "." + cls + " :focus-visible{outline:2px solid var(--ddpm-focus);outline-offset:2px}" +
      // The book's dark theme puts HTML outputs on a light panel, meant for figures drawn on white; a widget
      // that follows the theme sits on the page itself.
      "html[data-theme=dark] .bd-content div.cell_output .output.text_html:has(." + cls + "){background-color:transparent;padding:0}";
  }

  /** The colours by name as the element `node` (inside a themed widget) sees them now: {ink: "rgb(...)", ...}.
   *  Read at draw time, so that a canvas follows the theme; the light values where nothing is styled. */
  function colours(node) {
    var cs = typeof getComputedStyle === "function" && node ? getComputedStyle(node) : null, out = {};
    Object.keys(COLOURS).forEach(function (k) {
      var v = cs ? cs.getPropertyValue("--ddpm-" + k).trim() : "";
      out[k] = v || COLOURS[k][0].replace(/^var\(.*, (#[0-9a-f]+)\)+$/, "$1");
    });
    return out;
  }

  /** Call f whenever the host switches between light and dark (an attribute of <html> or <body> changes);
   *  returns a function that stops watching. */
  function onTheme(f) {
    if (typeof MutationObserver !== "function") return function () {};
    var last = themeKey(), obs = new MutationObserver(function () {
      var now = themeKey();
      if (now !== last) { last = now; f(); }
    });
    var opts = { attributes: true, attributeFilter: ["data-theme", "data-jp-theme-light", "class"] };
    obs.observe(document.documentElement, opts);
    if (document.body) obs.observe(document.body, opts);
    return function () { obs.disconnect(); };
  }

  function themeKey() {
    var b = document.body;
    return [document.documentElement.getAttribute("data-theme"), b && b.getAttribute("data-jp-theme-light"),
            b && b.classList.contains("vscode-dark")].join("|");
  }

  return {
    el: el, control: control, canvas: canvas, describe: describe, show: show, uid: uid, requestFrame: requestFrame,
    nextFrame: nextFrame, COLOURS: COLOURS, themeCss: themeCss, colours: colours, onTheme: onTheme,
  };
})();

if (typeof module !== "undefined" && module.exports) module.exports = DDPMDom;
