"""ddpm_edu.cost: FLOP counts checked against backpropagation's arithmetic, and the estimates against their formula."""

from __future__ import annotations

import pytest
import torch

from ddpm_edu.config import load_config
from ddpm_edu.cost import (ACCELERATORS, PAPER_STEPS_PER_S, PAPER_TPU_PEAK, cost_table, estimate_hours,
                           paper_utilisation, train_flops)
from ddpm_edu.unet import PRESETS, UNet


@pytest.mark.parametrize("preset", ["digits", "cifar10-small"])
def test_flop_count_is_three_forwards_less_the_unneeded_input_gradients(preset):
    """Backpropagation through a convolution or a matrix product costs two of its forward passes (the
    gradient of its input and of its weight). The two layers that read inputs needing no gradient, the
    image's first convolution and the time embedding's first linear layer, cost one pass less."""
    from torch.utils.flop_counter import FlopCounterMode

    kw = PRESETS[preset]
    model, r = UNet(**kw), kw["image_size"]
    with torch.no_grad(), FlopCounterMode(display=False) as c:
        model(torch.zeros(1, kw["in_ch"], r, r), torch.ones(1, dtype=torch.long))
    fwd = c.get_total_flops()
    conv, lin = model.conv_in, model.temb[0]
    skipped = 2 * conv.in_channels * conv.out_channels * 9 * r * r + 2 * lin.in_features * lin.out_features
    assert train_flops(kw, 1) == 3 * fwd - skipped
    assert train_flops(kw, 8) == 8 * train_flops(kw, 1)


def test_a_config_is_counted_as_its_model_at_its_batch():
    cfg = load_config("digits", ["model.ch=16"])
    kw = dict(PRESETS["digits"], ch=16)
    assert train_flops(cfg) == train_flops(kw, cfg.data.batch_size)
    with pytest.raises(ValueError, match="batch"):
        train_flops(kw)


def test_estimates_follow_their_formula_and_the_paper_row_is_its_measurement():
    small, paper = load_config("cifar10-small", ["model.ch=16"]), load_config("cifar10", ["model.ch=16"])
    rows = cost_table([small], paper)
    f_paper, f_small = train_flops(paper), train_flops(small)
    u = PAPER_STEPS_PER_S * f_paper / PAPER_TPU_PEAK
    assert paper_utilisation(f_paper) == pytest.approx(u)
    first = rows[0]
    assert first.basis.startswith("measured") and first.hours_low == pytest.approx(paper.train.steps / 21 / 3600)
    assert [r.accelerator for r in rows[1:]] == [a.name for a in ACCELERATORS]
    for row, acc in zip(rows[1:], ACCELERATORS):
        assert row.basis.startswith("estimated")
        hours = small.train.steps * f_small / (u * acc.peak) / 3600
        assert row.hours_low == pytest.approx(hours) and row.hours_high == pytest.approx(2 * hours)
    # A faster accelerator is never estimated slower.
    assert rows[1].hours_low > rows[2].hours_low > rows[3].hours_low
    assert estimate_hours(3.6e12, 1000, 1e12, 1.0) == pytest.approx(1.0)
