/* ddpm-edu: the few DOM helpers that the explorer and the live samplers share.
 *
 * Nothing here knows about diffusion: elements, crisp canvases, showing and hiding, frames.
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

  /** Show or hide an element. */
  function show(node, on) { node.style.display = on ? "" : "none"; }

  /** A name no other widget on the page uses (radio groups). */
  function uid(prefix) { return prefix + "-" + Math.random().toString(36).slice(2); }

  /** Call f at the next animation frame (or after 16 ms where there are no frames). */
  function requestFrame(f) {
    if (typeof requestAnimationFrame === "function") return requestAnimationFrame(f);
    return setTimeout(f, 16);
  }

  /** A Promise that resolves at the next frame: `await nextFrame()` lets the page draw. */
  function nextFrame() { return new Promise(requestFrame); }

  return { el: el, canvas: canvas, show: show, uid: uid, requestFrame: requestFrame, nextFrame: nextFrame };
})();

if (typeof module !== "undefined" && module.exports) module.exports = DDPMDom;
