/* ddpm-edu: how close the browser's samples come to the data (ddpm_edu.eval.metrics.energy_distance).
 *
 * The 2-D live sampler shows it when a run ends; tests/test_live.py holds it to the library.
 */
var DDPMMetrics = (function () {
  "use strict";

  /** The unbiased energy distance between point sets x (n, D) and y (m, D), flat arrays: E|X-Y| - E|X-X'|/2 - E|Y-Y'|/2. */
  function energyDistance(x, y, D) {
    function mean(a, b, same) {
      var na = a.length / D, nb = b.length / D, s = 0;
      for (var i = 0; i < na; i++) for (var j = 0; j < nb; j++) {
        var d2 = 0;
        for (var d = 0; d < D; d++) { var r = a[i * D + d] - b[j * D + d]; d2 += r * r; }
        s += Math.sqrt(d2);
      }
      return s / (same ? na * (na - 1) : na * nb); // the diagonal is 0: a mean over i != j
    }
    return mean(x, y, false) - 0.5 * mean(x, x, true) - 0.5 * mean(y, y, true);
  }

  return { energyDistance: energyDistance };
})();

if (typeof module !== "undefined" && module.exports) module.exports = DDPMMetrics;
