"""ddpm_edu.lab.cost: FLOP counts checked against backpropagation's arithmetic, and the estimates against their formula."""

from __future__ import annotations

import pytest
import torch

from ddpm_edu.lab.cost import (
    ACCELERATORS,
    MEASURED,
    PAPER_STEPS_PER_S,
    PAPER_TPU_PEAK,
    cost_table,
    estimate_hours,
    measured_utilisation,
    paper_utilisation,
    train_flops,
    utilisation_range,
)
from ddpm_edu.nets.unet import PRESETS, UNet
from ddpm_edu.training.config import load_config


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
    u_hi, u_lo = utilisation_range(paper)
    assert u_hi == pytest.approx(u) and u_lo <= u / 2
    first = rows[0]
    assert first.basis.startswith("measured") and first.hours_low == pytest.approx(paper.train.steps / 21 / 3600)
    assert [r.accelerator for r in rows[1:]] == [a.name for a in ACCELERATORS]
    for row, acc in zip(rows[1:], ACCELERATORS):
        assert row.basis.startswith("estimated")  # a modified preset: no measurement stands for it
        hours = small.train.steps * f_small / (u * acc.peak) / 3600
        assert row.hours_low == pytest.approx(hours) and row.hours_high == pytest.approx(hours * u / u_lo)
    # A faster accelerator is never estimated slower.
    assert rows[1].hours_low > rows[2].hours_low > rows[3].hours_low
    assert estimate_hours(3.6e12, 1000, 1e12, 1.0) == pytest.approx(1.0)


def test_a_measured_run_replaces_its_estimate_and_bounds_the_others():
    """Each measurement gives its preset's row as steps / (steps/s), and the pessimistic utilisation of every
    estimate is at most the lowest measured one."""
    assert MEASURED, "no GPU measurement is recorded"
    paper = load_config("cifar10")
    f = train_flops(paper)
    _, u_lo = utilisation_range(paper)
    by_name = {a.name: a for a in ACCELERATORS}
    for m in MEASURED:
        cfg = load_config(m.preset)
        assert measured_utilisation(m) == pytest.approx(m.steps_per_s * train_flops(cfg) / by_name[m.accelerator].peak)
        assert u_lo <= measured_utilisation(m)
        rows = cost_table([cfg], paper)
        measured = [r for r in rows[1:] if r.basis.startswith("measured")]
        assert len(measured) == 1 and m.device in measured[0].accelerator
        assert measured[0].hours_low == measured[0].hours_high == pytest.approx(cfg.train.steps / m.steps_per_s / 3600)
        # The same preset trained for fewer steps is no longer the measured run: estimated again.
        shorter = load_config(m.preset, ["train.steps=1000"])
        assert all(r.basis.startswith("estimated") for r in cost_table([shorter], paper)[1:])
    # The estimate for the measured chip brackets its measurement.
    m = MEASURED[0]
    h = estimate_hours(f, paper.train.steps, by_name[m.accelerator].peak, u_lo)
    assert h >= paper.train.steps / m.steps_per_s / 3600 * (1 - 1e-9)
