"""The EMA of the weights follows theta_ema <- decay theta_ema + (1 - decay) theta."""

from __future__ import annotations

import torch

from ddpm_edu.training.ema import EMA


def test_ema_update_matches_the_formula():
    m = torch.nn.Linear(3, 2)
    ema = EMA(m, decay=0.9)
    old = [p.detach().clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    ema.update(m)
    for e, o, p in zip(ema.model.parameters(), old, m.parameters()):
        torch.testing.assert_close(e, 0.9 * o + 0.1 * p)
    assert not any(p.requires_grad for p in ema.model.parameters()) and not ema.model.training


def test_ema_of_a_constant_model_converges_geometrically():
    """With theta fixed, theta_ema - theta shrinks by exactly ``decay`` per update."""
    m = torch.nn.Linear(3, 2)
    ema = EMA(m, decay=0.5)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    for _ in range(4):
        ema.update(m)
    for e, p in zip(ema.model.parameters(), m.parameters()):
        torch.testing.assert_close(p - e, torch.full_like(p, 0.5**4))


def test_buffers_are_copied_not_averaged():
    m = torch.nn.BatchNorm1d(2)
    ema = EMA(m, decay=0.9)
    m.running_mean.fill_(3.0)
    ema.update(m)
    assert torch.equal(ema.model.running_mean, m.running_mean)
