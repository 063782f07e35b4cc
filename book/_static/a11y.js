/* ddpm-edu: small accessibility repairs to markup that the book's theme and extensions write, not the book.
 *
 * axe-core (tests/browser/check_html.py) reports each of these as serious on every page; each repair below
 * names the markup it changes and why. Loaded on every page by _config.yml (html_js_files).
 */
(function () {
  "use strict";

  function repair() {
    // pydata-sphinx-theme's search buttons: aria-label "Search" hides the visible "Search Ctrl+K" from the
    // accessible name (axe: label-content-name-mismatch). Without it the name is the visible text.
    document.querySelectorAll(".search-button__button[aria-label]").forEach(function (b) { b.removeAttribute("aria-label"); });
    // Its light/dark button: Font Awesome turns each icon into an <svg role=img> with a <title> "Light", "Dark"
    // or "System Settings", text that is not in the button's name "Color mode". The icons only decorate it.
    document.querySelectorAll(".theme-switch-button i, .theme-switch-button svg").forEach(function (i) {
      i.removeAttribute("title");
      i.removeAttribute("role");
      i.removeAttribute("aria-labelledby");
      i.setAttribute("aria-hidden", "true");
      i.querySelectorAll("title").forEach(function (t) { t.remove(); });
    });
    // myst-nb's "Show code cell source" toggles: aria-label "Toggle hidden content" hides the visible words,
    // which say more (and change to "Hide ..." when open).
    document.querySelectorAll('summary[aria-label="Toggle hidden content"]').forEach(function (s) { s.removeAttribute("aria-label"); });
    // The sidebar's expand arrows (sphinx-book-theme): a <summary> with only an icon has no name (summary-name).
    document.querySelectorAll("li.has-children > details > summary").forEach(function (s) {
      if (s.textContent.trim() || s.hasAttribute("aria-label")) return;
      var a = s.parentElement.parentElement.querySelector(":scope > a");
      s.setAttribute("aria-label", "Sections of " + (a ? a.textContent.trim() : "this part"));
    });
    // Sphinx's bibliography: role=list whose items have role=doc-biblioentry, which a list may not hold
    // (aria-required-children). Each entry is a list item.
    document.querySelectorAll('.citation-list[role="list"] > [role="doc-biblioentry"]').forEach(function (c) {
      c.setAttribute("role", "listitem");
    });
  }

  // Font Awesome replaces its icons once the page has loaded: repair then, and once more a frame later.
  if (document.readyState === "complete") repair();
  else window.addEventListener("load", function () { repair(); requestAnimationFrame(repair); });
  document.addEventListener("DOMContentLoaded", repair);
})();
