"""A small MLP denoiser eps_theta(x_t, t) for 2-D points: the model that trains in seconds (chapters 7-8)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ddpm_edu.nets.unet import timestep_embedding

__all__ = ["MLPDenoiser"]


class MLPDenoiser(nn.Module):
    """eps_theta(x_t, t) for low-dimensional data: an MLP on x_t plus an embedding of t.

    h = W_in x_t + MLP(emb(t)), then ``layers`` residual blocks h + W SiLU(h), then W_out SiLU(h).
    emb is the sinusoidal embedding of :func:`ddpm_edu.nets.unet.timestep_embedding`. The output layer
    starts at zero, so the untrained model predicts eps_hat = 0 (L_simple = 1).
    """

    def __init__(
        self,
        *,
        dim: int = 2,  # data dimension
        hidden: int = 128,  # width of the hidden layers
        layers: int = 3,  # number of hidden residual layers
        t_dim: int = 64,  # size of the sinusoidal time embedding
    ):
        super().__init__()
        self.t_dim = t_dim
        self.t_mlp = nn.Sequential(nn.Linear(t_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(dim, hidden)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x: (B, dim) = x_t; t: (B,) in 1..T. Returns eps_hat, (B, dim)."""
        h = self.inp(x) + self.t_mlp(timestep_embedding(t, self.t_dim).to(x.device, x.dtype))  # (B, hidden)
        for lin in self.hidden:
            h = h + lin(F.silu(h))  # (B, hidden)
        return self.out(F.silu(h))  # (B, dim)
