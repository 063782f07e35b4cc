/* ddpm-edu: how the page writes numbers and problems.
 *
 * - say(key, values): a problem in the wording of messages.json, the one table of messages that
 *   the explorer and the samplers share with Python (tests/test_explorer.py holds them equal).
 * - pyRepr(v, isFloat): Python's repr of a value, so that "got 1e-05" reads the same in both.
 * - fmt, pow10, pct: numbers for a reader (0.02, 4.0×10⁻⁵, 12%), in readouts and on axes.
 *
 * Loaded like every file of js/: concatenated into one script by ddpm_edu/web/views.py (which
 * puts messages.json first, as DDPMMessageTable), or under node through require.
 */
var DDPMText = (function (MESSAGES) {
  "use strict";

  // ------------------------------------------------------------------ Python's repr

  /** repr(float(v)) as Python writes it: shortest digits, exponent form below 1e-4 and from 1e16. */
  function pyFloat(v) {
    if (v !== v) return "nan";
    if (!isFinite(v)) return v > 0 ? "inf" : "-inf";
    if (v === 0) return 1 / v < 0 ? "-0.0" : "0.0";
    var parts = Math.abs(v).toExponential().split("e"), e = parseInt(parts[1], 10);
    var d = parts[0].replace(".", ""), sign = v < 0 ? "-" : ""; // the shortest digits that read back as v
    if (e < -4 || e >= 16) {
      var exp = (e < 0 ? "-" : "+") + (Math.abs(e) < 10 ? "0" : "") + Math.abs(e);
      return sign + d[0] + (d.length > 1 ? "." + d.slice(1) : "") + "e" + exp;
    }
    if (e < 0) return sign + "0." + "0".repeat(-e - 1) + d;
    if (d.length <= e + 1) return sign + d + "0".repeat(e + 1 - d.length) + ".0";
    return sign + d.slice(0, e + 1) + "." + d.slice(e + 1);
  }

  /** repr(v) for what a setting can hold: a number (a float when isFloat or not whole), a string, a bool, null. */
  function pyRepr(v, isFloat) {
    if (v === null || v === undefined) return "None";
    if (typeof v === "boolean") return v ? "True" : "False";
    if (typeof v === "number") return isFloat || !Number.isInteger(v) ? pyFloat(v) : String(v);
    if (typeof v === "string") return v.indexOf("'") >= 0 && v.indexOf('"') < 0 ? '"' + v + '"' : "'" + v.replace(/'/g, "\\'") + "'";
    return String(v);
  }

  /** The message `key` of messages.json with its {name} and {name!r} placeholders filled from `values`. */
  function say(key, values) {
    var template = MESSAGES[key], floats = MESSAGES._floats;
    if (template === undefined) throw new Error("no message " + key + " in messages.json");
    return template.replace(/\{(\w+)(!r)?\}/g, function (_, name, r) {
      var v = values[name], isFloat = floats.indexOf(name) >= 0;
      if (!(name in values)) throw new Error("message " + key + " needs a value for " + name);
      return r ? pyRepr(v, isFloat) : typeof v === "number" ? pyRepr(v, isFloat) : String(v);
    });
  }

  // ------------------------------------------------------------------ numbers for a reader

  var SUP = { "-": "⁻", "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸", "9": "⁹" };

  function superscript(s) { return s.split("").map(function (c) { return SUP[c]; }).join(""); }

  /** A number for a reader: 0.02, 0.9999, 4.0×10⁻⁵, 1.2×10⁶, with `digits` significant digits (default 2). */
  function fmt(x, digits) {
    digits = digits || 2;
    if (x === Infinity) return "∞";
    if (typeof x !== "number" || !isFinite(x)) return String(x);
    if (x === 0) return "0";
    var a = Math.abs(x);
    if (a >= 1e-3 && a < 1e4) return String(Number(x.toPrecision(Math.max(digits, a < 1 ? 1 : Math.floor(Math.log10(a)) + 1))));
    var e = x.toExponential(digits - 1).split("e");
    var p = "10" + superscript(e[1].replace("+", ""));
    return /^1(\.0*)?$/.test(e[0]) ? p : e[0] + "×" + p;
  }

  /** 10^k as a tick label: 1, 10⁻⁴, 10⁸. */
  function pow10(k) { return k === 0 ? "1" : "10" + superscript(String(k)); }

  /** A share as a percentage: 0%, <0.1%, 2.5%, 40%. */
  function pct(x) { return x === 0 ? "0%" : x < 0.001 ? "<0.1%" : (100 * x).toFixed(x < 0.1 ? 1 : 0) + "%"; }

  return { pyFloat: pyFloat, pyRepr: pyRepr, say: say, fmt: fmt, pow10: pow10, pct: pct };
})(typeof DDPMMessageTable !== "undefined" ? DDPMMessageTable : require("./messages.json"));

if (typeof module !== "undefined" && module.exports) module.exports = DDPMText;
