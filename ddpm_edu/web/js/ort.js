/* ddpm-edu: onnxruntime-web in the reader's page, for the digits samplers (chapters 8 and 10).
 *
 * The runtime comes from one of two places and never from a CDN: the book's _static/ddpm_live/ folder
 * (ddpm_edu/web/sphinxext.py copies it there), or, in a kernel, the widget's comm (ddpm_edu/web/ort.py
 * finds it and ddpm_edu/web/live.py sends it). It is loaded once per page.
 */
var DDPMOrt = (function () {
  "use strict";

  var FILES = ["ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"]; // ddpm_edu.web.ort.ORT_FILES: the module, the WASM

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
        mod = base + FILES[0];
        var res = await fetch(base + FILES[1]);
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

  return { FILES: FILES, assetsURL: assetsURL, loadOrt: loadOrt };
})();

if (typeof module !== "undefined" && module.exports) module.exports = DDPMOrt;
