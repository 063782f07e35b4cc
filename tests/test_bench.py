"""bench/train_throughput.py runs, in both modes, and its FLOP count obeys the cost of backpropagation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from ddpm_edu.unet import PRESETS, UNet

pytestmark = pytest.mark.usefixtures("one_thread")

_PATH = Path(__file__).resolve().parents[1] / "bench" / "train_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_throughput", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


@pytest.mark.parametrize("mode", [[], ["--trainer"]])
def test_a_run_prints_and_records_one_row(bench, tmp_path, monkeypatch, mode):
    results = tmp_path / "RESULTS.md"
    monkeypatch.setattr(bench, "RESULTS", results)
    row = bench.main(["--preset", "digits", "--batch", "4", "--steps", "2", "--warmup", "1", "--device", "cpu",
                      "--record", *mode])
    cells = _cells(row)
    assert len(cells) == len(_cells(bench.HEADER.splitlines()[0])) == 15
    assert cells[3] == ("digits (Trainer, 2-step window)" if mode else "digits") and cells[4] == "4"
    ms, steps_per_s = float(cells[9]), float(cells[10])
    assert ms > 0 and abs(steps_per_s - 1e3 / ms) <= 0.01 * steps_per_s + 0.01
    text = results.read_text()
    assert text.count("| date |") == 1 and text.rstrip().endswith(row)


def test_trainer_mode_refuses_the_diffusers_comparison(bench):
    with pytest.raises(SystemExit) as e:
        bench.main(["--trainer", "--compare-diffusers"])
    assert e.value.code == 2


@pytest.mark.parametrize("preset", ["digits", "cifar10-small"])
def test_flop_count_is_three_forwards_less_the_unneeded_input_gradients(bench, preset):
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
    assert bench.train_flops(preset, 1) == 3 * fwd - skipped
    assert bench.train_flops(preset, 8) == 8 * bench.train_flops(preset, 1)
