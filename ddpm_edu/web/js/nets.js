/* ddpm-edu: the denoisers that the live samplers run in the browser (chapters 6 and 8).
 *
 * - mixtureEps: the exact eps* of a Gaussian mixture (ddpm_edu.analytic.MixtureEps), chapter 6;
 * - mlpModel: the 2-D toy's MLPDenoiser in plain JavaScript, from the weights of
 *   ddpm_edu.web.export.mlp_weights;
 * - onnxModel: the digits U-Net exported to ONNX (export.onnx_bytes), run by onnxruntime-web;
 * - guidedModel: classifier-free guidance on a conditional network (ddpm_edu.guidance.guided_model), chapter 10.
 * Each is a model(x, t, B) -> eps_hat for sampler.js. tests/test_live.py holds them to PyTorch.
 */
var DDPMNets = (function () {
  "use strict";

  /** eps*(x_t, t) for data sum_k w_k N(mu_k, std_k^2 I) in D dimensions (analytic.MixtureEps): a model.
   *  mix = {weights: [K], means: [K][D], stds: [K]}; a single Gaussian is K = 1 (analytic.GaussianEps). */
  function mixtureEps(mix, sc) {
    var K = mix.weights.length, D = mix.means[0].length;
    return function (x, t, B) {
      var ab = sc.alphaBar[t], out = new Float64Array(B * D), logp = new Float64Array(K), v = new Float64Array(K);
      for (var c = 0; c < K; c++) v[c] = ab * mix.stds[c] * mix.stds[c] + 1 - ab; // variance of q(x_t | k)
      for (var b = 0; b < B; b++) {
        var mx = -Infinity, norm = 0, c2, d;
        for (c2 = 0; c2 < K; c2++) { // log w_k + log N(x_t; sqrt(ab) mu_k, v_k I), up to a constant
          var d2 = 0;
          for (d = 0; d < D; d++) { var r = x[b * D + d] - Math.sqrt(ab) * mix.means[c2][d]; d2 += r * r; }
          logp[c2] = Math.log(mix.weights[c2]) - 0.5 * D * Math.log(v[c2]) - 0.5 * d2 / v[c2];
          mx = Math.max(mx, logp[c2]);
        }
        for (c2 = 0; c2 < K; c2++) { logp[c2] = Math.exp(logp[c2] - mx); norm += logp[c2]; } // p(k | x_t), unnormalised
        for (d = 0; d < D; d++) {
          var s = 0;
          for (c2 = 0; c2 < K; c2++) s += logp[c2] / norm * (x[b * D + d] - Math.sqrt(ab) * mix.means[c2][d]) / v[c2];
          out[b * D + d] = Math.sqrt(1 - ab) * s; // sqrt(1 - ab) sum_k p(k | x_t) (x_t - sqrt(ab) mu_k) / v_k
        }
      }
      return out;
    };
  }

  /** unet.timestep_embedding in float32, as torch computes it: [sin(t w_i), cos(t w_i)], w_i = 10000^(-i / (h - 1)). */
  function timestepEmbedding(t, dim) {
    var f = Math.fround, half = Math.floor(dim / 2), emb = new Float64Array(dim);
    for (var i = 0; i < half; i++) {
      var w = f(Math.exp(f(f(-Math.log(10000) * i) / Math.max(half - 1, 1))));
      var arg = f(t * w);
      emb[i] = f(Math.sin(arg));
      emb[half + i] = f(Math.cos(arg));
    }
    return emb;
  }

  /** y = W x + b for one row x of length n_in; W: Float32Array (n_out, n_in) row-major, as nn.Linear. */
  function linear(W, bias, x, nOut, nIn, out) {
    for (var o = 0; o < nOut; o++) {
      var s = bias[o], row = o * nIn;
      for (var i = 0; i < nIn; i++) s += W[row + i] * x[i];
      out[o] = s;
    }
    return out;
  }

  function silu(v) { return v / (1 + Math.exp(-v)); }

  /** toy.MLPDenoiser in plain JS from its weights {name: Float32Array} and sizes {dim, hidden, layers, t_dim}:
   *  h = W_in x_t + MLP(emb(t)), then h + W SiLU(h) per layer, then W_out SiLU(h). */
  function mlpModel(w, sizes) {
    var H = sizes.hidden, D = sizes.dim, L = sizes.layers, td = sizes.t_dim;
    return function (x, t, B) {
      var e = timestepEmbedding(t, td), a = new Float64Array(H), th = new Float64Array(H); // the t branch: once per step
      linear(w["t_mlp.0.weight"], w["t_mlp.0.bias"], e, H, td, a);
      for (var j = 0; j < H; j++) a[j] = silu(a[j]);
      linear(w["t_mlp.2.weight"], w["t_mlp.2.bias"], a, H, H, th);
      var out = new Float64Array(B * D), h = new Float64Array(H), g = new Float64Array(H), y = new Float64Array(H);
      for (var b = 0; b < B; b++) {
        linear(w["inp.weight"], w["inp.bias"], x.subarray(b * D, b * D + D), H, D, h);
        for (j = 0; j < H; j++) h[j] += th[j]; // (hidden,)
        for (var l = 0; l < L; l++) {
          for (j = 0; j < H; j++) g[j] = silu(h[j]);
          linear(w["hidden." + l + ".weight"], w["hidden." + l + ".bias"], g, H, H, y);
          for (j = 0; j < H; j++) h[j] += y[j]; // h + W SiLU(h)
        }
        for (j = 0; j < H; j++) g[j] = silu(h[j]);
        linear(w["out.weight"], w["out.bias"], g, D, H, y);
        for (var d = 0; d < D; d++) out[b * D + d] = y[d]; // eps_hat, (dim,)
      }
      return out;
    };
  }

  /** Float32Arrays from {name: base64 of little-endian float32}. */
  function decodeWeights(b64) {
    var w = {};
    Object.keys(b64).forEach(function (name) { w[name] = new Float32Array(bytes(b64[name]).buffer); });
    return w;
  }

  function bytes(b64) {
    var s = typeof atob === "function" ? atob(b64) : Buffer.from(b64, "base64").toString("binary");
    var out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  // ------------------------------------------------------------------ the digits U-Net through onnxruntime-web

  /** A model that runs an ONNX network (inputs x: float32 (B, C, H, W), t: int64 (B,); output eps) with onnxruntime-web.
   *  ort: the onnxruntime-web module; session: an ort.InferenceSession. A conditional network (chapter 10) has a
   *  third input y, int64 (B,): the model then takes the labels as a fourth argument, an array of B integers. */
  function onnxModel(ort, session, shape) {
    return async function (x, t, B, y) {
      var feeds = { x: new ort.Tensor("float32", Float32Array.from(x), [B].concat(shape)),
                    t: new ort.Tensor("int64", new BigInt64Array(B).fill(BigInt(t)), [B]) };
      if (y !== undefined) feeds.y = new ort.Tensor("int64", BigInt64Array.from(y, BigInt), [B]);
      var res = await session.run(feeds);
      return Float64Array.from(res[session.outputNames[0]].data);
    };
  }

  // ------------------------------------------------------------------ classifier-free guidance (chapter 10)

  /** Ho & Salimans 2022, eq. (6): eps_tilde = (1 + w) eps(x_t, y) - w eps(x_t) (guidance.guided_eps). */
  function guidedEps(epsCond, epsUncond, w) {
    var out = new Float64Array(epsCond.length);
    for (var i = 0; i < out.length; i++) out[i] = (1 + w) * epsCond[i] - w * epsUncond[i]; // eq. (6)
    return out;
  }

  /** The guided model(x, t, B) of a conditional net(x, t, B, labels) with K classes (guidance.guided_model):
   *  y = null ("any") is the unconditional eps(x_t), label K; w = 0 is the conditional eps(x_t, y); otherwise
   *  one call on the doubled batch [x; x] with labels [y, ..., y, K, ..., K] gives both eps, then eq. (6). */
  function guidedModel(net, y, w, K) {
    var labels = function (v, B) { return new Array(B).fill(v); };
    return async function (x, t, B) {
      if (y === null) return net(x, t, B, labels(K, B)); // eps(x_t): the "no label" token
      if (w === 0) return net(x, t, B, labels(y, B)); // eps(x_t, y)
      var both = new Float64Array(2 * x.length);
      both.set(x);
      both.set(x, x.length); // (2B, C, H, W)
      var e = await net(both, t, 2 * B, labels(y, B).concat(labels(K, B)));
      return guidedEps(e.subarray(0, x.length), e.subarray(x.length), w); // Alg. 2 of Ho & Salimans, line 3
    };
  }

  return {
    mixtureEps: mixtureEps, timestepEmbedding: timestepEmbedding, mlpModel: mlpModel, decodeWeights: decodeWeights,
    bytes: bytes, onnxModel: onnxModel, guidedEps: guidedEps, guidedModel: guidedModel,
  };
})();

if (typeof module !== "undefined" && module.exports) module.exports = DDPMNets;
