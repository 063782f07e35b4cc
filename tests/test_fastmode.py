"""ddpm_edu.lab.fastmode: the one switch, DDPM_EDU_FAST, and the sizes it picks."""

import pytest

from ddpm_edu.lab import fastmode


NAMES = ("digits", "toy2d", "gaussian", "mixture")


def test_eval_samples_shrinks_in_fast_mode(monkeypatch):
    monkeypatch.setenv("DDPM_EDU_FAST", "1")
    small = [fastmode.eval_samples(name) for name in NAMES]
    monkeypatch.setenv("DDPM_EDU_FAST", "0")
    full = [fastmode.eval_samples(name) for name in NAMES]
    assert all(a < b for a, b in zip(small, full))
    assert full[0] >= 512  # chapter 8's comparison table: at least 512 samples per row at full size
    with pytest.raises(ValueError, match="dataset"):
        fastmode.eval_samples("cifar10")


def test_nll_examples_shrinks_in_fast_mode(monkeypatch):
    monkeypatch.setenv("DDPM_EDU_FAST", "1")
    small = fastmode.nll_examples()
    monkeypatch.setenv("DDPM_EDU_FAST", "0")
    assert 0 < small < fastmode.nll_examples()


def test_guidance_samples_shrink_in_fast_mode_and_keep_512_digits_per_weight(monkeypatch):
    kinds = ("digits_per_class", "mixture")
    monkeypatch.setenv("DDPM_EDU_FAST", "1")
    small = [fastmode.guidance_samples(k) for k in kinds]
    monkeypatch.setenv("DDPM_EDU_FAST", "0")
    full = [fastmode.guidance_samples(k) for k in kinds]
    assert all(3 <= a < b for a, b in zip(small, full))
    assert 10 * full[0] >= 512  # chapter 10: at least 512 digits per guidance weight, over ten classes
    with pytest.raises(ValueError, match="kind"):
        fastmode.guidance_samples("cifar10")


def test_folder_example_steps_shrink_in_fast_mode(monkeypatch):
    monkeypatch.setenv("DDPM_EDU_FAST", "1")
    small = fastmode.folder_example_steps()
    monkeypatch.setenv("DDPM_EDU_FAST", "0")
    assert 0 < small < fastmode.folder_example_steps()
