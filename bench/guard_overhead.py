"""The cost of the non-finite guard on the CPU: the step after the backward pass, new guard against the old hand-made one.

Times, for the 35.7M-parameter ``cifar10`` U-Net with fixed gradients, everything after the backward
pass: unscale + the non-finite check (GradScaler at scale 1), clipping, the fused Adam step and the
EMA update (ddpm_edu.training.guard.NonFiniteGuard), against the same step as the trainer did it before
(no scaler; the skip flag handed to the fused kernel by hand). Interleaved, median of 12 pairs.

    python bench/guard_overhead.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
import statistics
import time

import torch
from torch import nn

from ddpm_edu.nets.unet import PRESETS, UNet
from ddpm_edu.training.ema import EMA
from ddpm_edu.training.guard import NonFiniteGuard

torch.manual_seed(0)
def parts():
    m = UNet(**PRESETS["cifar10"]); opt = torch.optim.Adam(m.parameters(), lr=1e-4, fused=True); return m, opt, EMA(m, 0.9999)
(m1, o1, e1), (m2, o2, e2) = parts(), parts()
guard = NonFiniteGuard(torch.device("cpu"))
def set_grads(m):
    for p in m.parameters(): p.grad = torch.full_like(p, 1e-3)
def new_tail(k):
    loss = (m1.conv_in.bias.sum() * 0 + 1.0)
    o1.zero_grad(set_to_none=True); guard.backward(loss); set_grads(m1)
    gn = guard.clip(o1, m1.parameters(), 1.0); guard.step(o1, k, loss, gn); e1.update(m1)
def old_tail(k):
    loss = (m2.conv_in.bias.sum() * 0 + 1.0)
    o2.zero_grad(set_to_none=True); loss.backward(); set_grads(m2)
    gn = nn.utils.clip_grad_norm_(m2.parameters(), 1.0)
    vals = torch.stack([loss.detach().float(), gn.detach().float()]); finite = torch.isfinite(vals)
    o2.found_inf = (~finite).any().float(); o2.step()  # the old protocol, kept here only as the baseline
    torch._foreach_lerp_(list(e2.model.parameters()), [p.detach() for p in m2.parameters()], 1e-4)
tn, to = [], []
for k in range(1, 16):
    for f, acc in ((new_tail, tn), (old_tail, to))[:: 1 if k % 2 else -1]:
        t0 = time.perf_counter(); f(k); acc.append(time.perf_counter() - t0)
print("new tail ms", round(statistics.median(tn[3:])*1e3,1), " old tail ms", round(statistics.median(to[3:])*1e3,1))
