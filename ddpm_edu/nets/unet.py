"""The noise-prediction network eps_theta(x_t, t): the DDPM U-Net.

Ho et al. 2020, appendix B; chapter 9. This follows the original TensorFlow model
(``diffusion_tf/models/unet.py``) layer for layer, so the ``cifar10`` preset has exactly the
paper's 35,746,307 parameters:

* t -> sinusoidal embedding (dim ``ch``) -> Linear -> SiLU -> Linear, giving temb (dim 4 ch).
* ``conv_in`` 3x3, then per resolution level ``num_res_blocks`` residual blocks (each adds a
  projection of temb), self-attention after each block at the ``attn_resolutions``, and a
  strided 3x3 conv to halve the resolution (not after the last level).
* middle: residual block, attention, residual block.
* per level on the way up: ``num_res_blocks + 1`` residual blocks, each fed the previous output
  concatenated with one skip tensor saved on the way down, attention as on the way down, and
  nearest-neighbour 2x upsampling followed by a 3x3 conv (not after the first level).
* GroupNorm -> SiLU -> 3x3 conv to ``out_ch``.

With ``num_classes = K`` the network is class-conditional, eps_theta(x_t, t, y) (chapter 10; Ho & Salimans
2022): an embedding of the label y (``nn.Embedding(K + 1, 4 ch)``) is added to the time embedding before
its SiLU, so every residual block sees it. Index K is the "no label" token that label dropout trains, and
that ``y=None`` stands for, so one network gives both eps(x_t, t, y) and eps(x_t, t). With
``num_classes=None`` (the default) the network is the unconditional one above, parameter for parameter.

Normalisation is GroupNorm with 32 groups (the paper's choice). When the channel count is not
divisible by 32 it uses the largest divisor of the channel count below 32 (see
:func:`num_groups`). The last conv of every residual block, the attention output projection
and ``conv_out`` start at zero, as in the original, so every block starts as the identity.

Works with ``channels_last`` weights and inputs, ``torch.autocast`` and ``torch.compile``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "timestep_embedding",
    "num_groups",
    "ResBlock",
    "AttnBlock",
    "Downsample",
    "Upsample",
    "Block",
    "UNet",
    "PRESETS",
    "unet_kwargs",
    "unet_problems",
    "count_params",
    "BlockRow",
    "unet_summary",
    "summary_markdown",
]

MAX_GROUPS = 32  # Ho et al. use GroupNorm(32) everywhere


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of the time step (Vaswani et al. 2017, sec. 3.5; Ho et al. appendix B).

    emb(t) = [sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ..., cos(t w_{h-1})] with h = dim // 2
    and w_i = max_period^(-i / (h - 1)), so frequencies run from 1 down to 1 / max_period
    (the DDPM code's convention). An odd ``dim`` gets one trailing zero.
    t: (B,) integer or float; returns (B, dim) float32.
    """
    half = dim // 2
    i = torch.arange(half, device=t.device, dtype=torch.float32)
    w = torch.exp(-math.log(max_period) * i / max(half - 1, 1))  # (h,)
    arg = t.float()[:, None] * w[None, :]  # (B, h)
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)  # (B, 2h)
    return F.pad(emb, (0, dim % 2))


def num_groups(channels: int) -> int:
    """GroupNorm group count: 32, or the largest divisor of ``channels`` below 32 when 32 does not divide it."""
    return max(g for g in range(1, min(MAX_GROUPS, channels) + 1) if channels % g == 0)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups(channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    """Residual block: x + conv(drop(SiLU(GN(conv(SiLU(GN(x))) + W temb)))).

    Ho et al. appendix B ("Wide ResNet" blocks with the time embedding added after the first conv).
    A 1x1 conv matches channels on the skip path when in_ch != out_ch.
    """

    def __init__(self, in_ch: int, out_ch: int, temb_ch: int, dropout: float):
        super().__init__()
        self.norm1 = _norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.temb_proj = nn.Linear(temb_ch, out_ch)
        self.norm2 = _norm(out_ch)
        self.dropout = dropout
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)  # zero-initialised
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        """x: (B, in_ch, H, W); temb: (B, temb_ch), already through SiLU. Returns (B, out_ch, H, W)."""
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out_ch, H, W)
        h = h + self.temb_proj(temb)[:, :, None, None]  # broadcast over H, W
        h = F.dropout(F.silu(self.norm2(h)), self.dropout, self.training)
        return self.skip(x) + self.conv2(h)


class AttnBlock(nn.Module):
    """Self-attention over the H*W positions: x + proj(SDPA(q, k, v)), q, k, v = 1x1 convs of GN(x).

    Ho et al. appendix B ("self-attention at the 16x16 resolution"), with the original code's
    separate q, k, v and output projections (1x1 convs, i.e. per-pixel linear maps).
    """

    def __init__(self, channels: int, num_heads: int = 1):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide the channel count {channels}")
        self.num_heads = num_heads
        self.norm = _norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)  # zero-initialised

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, C, H, W). With channels_last and one head, no tensor is copied."""
        B, C, H, W = x.shape
        h = self.norm(x)

        def heads(z: Tensor) -> Tensor:  # (B, C, H, W) -> (B, nh, HW, d)
            return z.reshape(B, self.num_heads, C // self.num_heads, H * W).transpose(-1, -2)

        h = F.scaled_dot_product_attention(heads(self.q(h)), heads(self.k(h)), heads(self.v(h)))  # (B, nh, HW, d)
        h = h.transpose(-1, -2).reshape(B, C, H, W)  # softmax(q k^T / sqrt(d)) v, back on the grid
        return x + self.proj(h)


class Downsample(nn.Module):
    """Halve H and W with a 3x3 conv of stride 2 (the DDPM code's ``with_conv=True``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)  # (B, C, H/2, W/2)


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour upsampling, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # (B, C, 2H, 2W)


class Block(nn.Module):
    """One residual block, followed by self-attention at the resolutions that have it."""

    def __init__(self, in_ch: int, out_ch: int, temb_ch: int, dropout: float, attn: bool, num_heads: int):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, temb_ch, dropout)
        self.attn = AttnBlock(out_ch, num_heads) if attn else None

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.res(x, temb)
        return self.attn(h) if self.attn is not None else h


class UNet(nn.Module):
    """The DDPM noise predictor eps_theta(x_t, t) (Ho et al. 2020, appendix B)."""

    def __init__(
        self,
        *,
        in_ch: int = 3,  # image channels
        out_ch: int | None = None,  # output channels; None means in_ch (eps has the image's shape)
        ch: int = 128,  # base channel count; level i has ch * ch_mult[i] channels
        ch_mult: tuple[int, ...] = (1, 2, 2, 2),  # one multiplier per resolution level
        num_res_blocks: int = 2,  # residual blocks per level going down (one more going up)
        attn_resolutions: tuple[int, ...] = (16,),  # feature-map sizes that get self-attention
        dropout: float = 0.1,  # dropout inside residual blocks
        image_size: int = 32,  # input height = width; fixes where attention goes
        num_heads: int = 1,  # attention heads (the paper uses one)
        num_classes: int | None = None,  # class labels 0..K-1 for a conditional net (chapter 10); None: unconditional
    ):
        super().__init__()
        _check(unet_problems(ch=ch, ch_mult=ch_mult, num_res_blocks=num_res_blocks, dropout=dropout,
                             image_size=image_size, num_heads=num_heads, num_classes=num_classes))
        out_ch = in_ch if out_ch is None else out_ch
        self.ch, temb_ch = ch, 4 * ch
        self.num_classes = num_classes  # K; the label K means "no label"
        self.label_emb: nn.Embedding | None = None  # built last (below), so the other weights draw as without it
        self.temb = nn.Sequential(nn.Linear(ch, temb_ch), nn.SiLU(), nn.Linear(temb_ch, temb_ch))
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)

        def block(cin: int, cout: int, res: int) -> Block:
            return Block(cin, cout, temb_ch, dropout, res in attn_resolutions, num_heads)

        # Down: every module appends one skip tensor; skip_chs records their channel counts.
        self.down, skip_chs, c, res = nn.ModuleList(), [ch], ch, image_size
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(block(c, ch * mult, res))
                c = ch * mult
                skip_chs.append(c)
            if level != len(ch_mult) - 1:
                self.down.append(Downsample(c))
                res //= 2
                skip_chs.append(c)

        self.mid1 = ResBlock(c, c, temb_ch, dropout)
        self.mid_attn = AttnBlock(c, num_heads)
        self.mid2 = ResBlock(c, c, temb_ch, dropout)

        # Up: each Block takes the running tensor concatenated with one skip tensor.
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(block(c + skip_chs.pop(), ch * mult, res))
                c = ch * mult
            if level != 0:
                self.up.append(Upsample(c))
                res *= 2

        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, out_ch, 3, padding=1)
        self.reset_parameters()
        if num_classes is not None:  # after the init above: the shared weights are those of the unconditional net
            self.label_emb = nn.Embedding(num_classes + 1, temb_ch)  # row K: "no label"; N(0, 1) init

    def reset_parameters(self) -> None:
        """DDPM init: Xavier-uniform weights, zero biases; zero for each residual branch's last layer.

        The label embedding, if any, is redrawn from N(0, 1), nn.Embedding's own init.
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            last = m.conv2 if isinstance(m, ResBlock) else m.proj if isinstance(m, AttnBlock) else None
            if last is not None:
                nn.init.zeros_(last.weight)
        nn.init.zeros_(self.conv_out.weight)
        if self.label_emb is not None:
            nn.init.normal_(self.label_emb.weight)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """x: (B, in_ch, H, W) in [-1, 1]; t: (B,) time steps in 1..T. Returns eps_hat (B, out_ch, H, W).

        y (conditional nets only): (B,) int64 labels in 0..K-1, or K for "no label" (what label dropout
        trains); None gives "no label" to every row. See :meth:`labels` for the checks.
        """
        temb = self.temb(timestep_embedding(t, self.ch).to(x.device))  # (B, 4 ch)
        if self.label_emb is not None:
            temb = temb + self.label_emb(self.labels(y, x.shape[0], x.device))  # (B, 4 ch)
        elif y is not None:
            raise ValueError("this U-Net is unconditional (num_classes=None): it takes no label y; "
                             "build it with num_classes=K to condition on K classes")
        temb = F.silu(temb)  # every residual block applies SiLU before its projection
        hs = [self.conv_in(x)]  # skip tensors, (B, ch, H, W) first
        for m in self.down:
            hs.append(m(hs[-1], temb) if isinstance(m, Block) else m(hs[-1]))
        h = self.mid2(self.mid_attn(self.mid1(hs[-1], temb)), temb)  # (B, C_last, H/2^L, W/2^L)
        for m in self.up:
            h = m(torch.cat([h, hs.pop()], dim=1), temb) if isinstance(m, Block) else m(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, out_ch, H, W)

    def labels(self, y: Tensor | None, batch: int, device: torch.device) -> Tensor:
        """The (B,) int64 label indices of a conditional net: ``y``, or K ("no label") everywhere for None.

        A ``y`` of another shape, or one that is not an integer tensor, is a ValueError. In eval mode the
        values are checked too (a ValueError names the first one outside 0..K); in training mode they are
        not, because reading them back would make every training step wait for the accelerator: the
        trainer's labels lie in range by construction.
        """
        K = self.num_classes
        if y is None:
            return torch.full((batch,), K, dtype=torch.long, device=device)
        if not isinstance(y, Tensor) or y.shape != (batch,) or y.dtype.is_floating_point or y.dtype.is_complex \
                or y.dtype == torch.bool:
            got = f"shape {tuple(y.shape)}, {y.dtype}" if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"y must be a ({batch},) integer tensor of labels, one per row, got {got}")
        if not self.training and not torch.jit.is_tracing():
            bad = y[(y < 0) | (y > K)]
            if bad.numel():
                raise ValueError(f"label {int(bad[0])} is outside this model's classes 0..{K - 1} "
                                 f"({K} means no label)")
        return y.to(device=device, dtype=torch.long)


PRESETS: dict[str, dict] = {
    # Ho et al. 2020, CIFAR10 model: 35,746,307 parameters.
    "cifar10": dict(in_ch=3, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,),
                    dropout=0.1, image_size=32),
    # Half the paper's width (a quarter of its parameters) for a free Colab T4 in fp16.
    "cifar10-small": dict(in_ch=3, ch=64, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,),
                          dropout=0.1, image_size=32),
    # 8x8 grey digits (scikit-learn), trainable on 2 CPU cores in minutes.
    "digits": dict(in_ch=1, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                   dropout=0.0, image_size=8),
}


def unet_kwargs(preset: str | None = None, **overrides: Any) -> dict[str, Any]:
    """UNet's keyword arguments: its defaults, then ``PRESETS[preset]``, then the overrides that are not None.

    ``UNet(**unet_kwargs("digits", dropout=0.1))`` is the digits U-Net with dropout. Raises
    ValueError naming every problem :func:`unet_problems` finds.
    """
    _check(unet_problems(preset, **overrides))
    return _merge(preset, overrides)


def unet_problems(preset: str | None = None, **overrides: Any) -> dict[str, str]:
    """What is wrong with the arguments :func:`unet_kwargs` would give, by argument name ({} when nothing is)."""
    if preset is not None and preset not in PRESETS:
        return {"preset": f"unknown UNet preset {preset!r}; valid names: {', '.join(PRESETS)}"}
    a = _merge(preset, overrides)
    ch, ch_mult, size = a["ch"], a["ch_mult"], a["image_size"]
    p = {}
    if ch < 1:
        p["ch"] = f"ch must be >= 1, got {ch}"
    if not ch_mult or any(m < 1 for m in ch_mult):
        p["ch_mult"] = f"ch_mult must be a non-empty tuple of positive ints, got {ch_mult}"
    if a["num_res_blocks"] < 1:
        p["num_res_blocks"] = f"num_res_blocks must be >= 1, got {a['num_res_blocks']}"
    if not 0.0 <= a["dropout"] < 1.0:
        p["dropout"] = f"dropout must lie in [0, 1), got {a['dropout']}"
    if a["num_heads"] < 1:
        p["num_heads"] = f"num_heads must be >= 1, got {a['num_heads']}"
    if ch_mult and size % 2 ** (len(ch_mult) - 1):
        p["image_size"] = f"image_size={size} must be divisible by 2^{len(ch_mult) - 1} for {len(ch_mult)} levels"
    k = a["num_classes"]
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        p["num_classes"] = f"num_classes must be None (unconditional) or an integer >= 1, got {k!r}"
    return p


def _merge(preset: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """UNet's defaults, then the preset's arguments, then the overrides that are not None."""
    defaults = {k: v.default for k, v in inspect.signature(UNet).parameters.items()}
    return {**defaults, **PRESETS.get(preset, {}), **{k: v for k, v in overrides.items() if v is not None}}


def _check(problems: dict[str, str]) -> None:
    """Raise ValueError naming every problem, if there is one."""
    if problems:
        raise ValueError("bad UNet arguments: " + "; ".join(problems.values()))


def count_params(model: nn.Module) -> int:
    """The number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- anatomy (chapter 7)
@dataclass(frozen=True)
class BlockRow:
    """One row of :func:`unet_summary`: a top-level block, the shape it returned and its parameter count."""

    name: str  # attribute path in the model, e.g. "down.1" or "mid_attn"
    kind: str  # class name, e.g. "Block" or "Conv2d"
    shape: tuple[int, ...]  # output shape in the forward pass, (B, C, H, W) for image blocks
    params: int  # scalar parameters held by the block


@torch.no_grad()
def unet_summary(model: nn.Module, x: Tensor, t: Tensor) -> list[BlockRow]:
    """The model's top-level blocks in the order they run in ``model(x, t)``, read from the model object.

    Chapter 7's anatomy table. The blocks are the model's children, with containers (ModuleList,
    ModuleDict) replaced by their members, so every parameter of a model that keeps none of its
    own belongs to exactly one row. A forward hook on each block records the shape of its output
    during one forward pass (the first call, if a block runs twice). Works for any network called
    as ``model(x, t)`` (the U-Net, the toy MLP); raises if a block never runs.
    """
    blocks: list[tuple[str, nn.Module]] = []
    for name, m in model.named_children():
        if isinstance(m, (nn.ModuleList, nn.ModuleDict)):
            blocks += [(f"{name}.{k}", c) for k, c in m.named_children()]
        else:
            blocks.append((name, m))
    shapes: dict[str, tuple[int, ...]] = {}
    order: list[str] = []

    def hook(name: str):
        def record(_m: nn.Module, _inp: Any, out: Tensor) -> None:
            if name not in shapes:
                shapes[name] = tuple(out.shape)
                order.append(name)
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in blocks]
    try:
        model(x, t)
    finally:
        for h in handles:
            h.remove()
    missing = [name for name, _ in blocks if name not in shapes]
    if missing:
        raise ValueError(f"blocks that did not run in the forward pass: {', '.join(missing)}")
    by_name = dict(blocks)
    return [BlockRow(n, _kind(by_name[n]), shapes[n], count_params(by_name[n])) for n in order]


def _kind(m: nn.Module) -> str:
    """The class name; a :class:`Block` also says whether it carries attention."""
    if isinstance(m, Block):
        return "Block (ResBlock + AttnBlock)" if m.attn is not None else "Block (ResBlock)"
    return type(m).__name__


def summary_markdown(rows: list[BlockRow]) -> str:
    """:func:`unet_summary`'s rows as a Markdown table, with a total row (chapter 7)."""
    lines = ["| block | type | output shape | parameters |", "|---|---|---|---:|"]
    lines += [f"| `{r.name}` | {r.kind} | {tuple(r.shape)} | {r.params:,} |" for r in rows]
    lines.append(f"| **total** | | | **{sum(r.params for r in rows):,}** |")
    return "\n".join(lines)
