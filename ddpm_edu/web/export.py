"""Trained networks for the reader's browser: the toy MLP as raw weights, the digits U-Net as ONNX.

Chapter 8 (live sampling) and chapter 6 (its reprise with the exact eps*). The page samples with
``ddpm_edu/web/js/``: the MLP runs in plain JavaScript (``nets.js``, a few matrix-vector products per point),
the U-Net in onnxruntime-web (ONNX Runtime compiled to WebAssembly). :mod:`ddpm_edu.web.live` embeds
what these functions return in the page; the tests hold the browser's eps_hat to PyTorch's.
"""

from __future__ import annotations

import base64
import io
import warnings

import torch
from torch import nn

from ddpm_edu.nets.mlp import MLPDenoiser

__all__ = ["b64_floats", "mlp_weights", "onnx_bytes"]


def b64_floats(t: torch.Tensor) -> str:
    """A tensor as base64 of its little-endian float32 values, row-major (JS: ``new Float32Array(bytes)``)."""
    return base64.b64encode(t.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes()).decode("ascii")


def mlp_weights(model: MLPDenoiser) -> dict:
    """What nets.js's ``mlpModel`` needs: ``{"sizes": {dim, hidden, layers, t_dim}, "weights": {name: base64}}``.

    The names are the model's ``state_dict`` keys; a Linear weight is (out, in), row-major.
    """
    sizes = dict(dim=model.inp.in_features, hidden=model.inp.out_features, layers=len(model.hidden), t_dim=model.t_dim)
    return {"sizes": sizes, "weights": {k: b64_floats(v) for k, v in model.state_dict().items()}}


def onnx_bytes(model: nn.Module, shape: tuple[int, ...]) -> bytes:
    """``model(x, t) -> eps`` as an ONNX graph (opset 17): inputs ``x`` float32 ``(B, *shape)`` and ``t`` int64 (B,),
    output ``eps``; B is dynamic. Exported with torch.onnx's TorchScript exporter (``dynamo=False``), which
    needs only the ``onnx`` package.

    A conditional network (a U-Net with ``num_classes`` K, chapter 10) gets a third input ``y``, int64 (B,):
    the class 0..K-1 of each row, or K for "no label". A guided step runs the graph twice, with y and with
    K, and combines the two eps as :func:`ddpm_edu.guidance.guided_eps` does. The graph does not check y.
    """
    x, t = torch.zeros(2, *shape), torch.ones(2, dtype=torch.long)
    K = getattr(model, "num_classes", None)
    args, names = ((x, t), ["x", "t"]) if K is None else ((x, t, torch.full((2,), K, dtype=torch.long)), ["x", "t", "y"])
    buf = io.BytesIO()
    with warnings.catch_warnings():  # its deprecation notice, a tracer note on GroupNorm's batch check, constant folding
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), args, buf, dynamo=False, opset_version=17, input_names=names,
                          output_names=["eps"], dynamic_axes={**{n: {0: "B"} for n in names}, "eps": {0: "B"}})
    return buf.getvalue()
