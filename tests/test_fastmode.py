"""ddpm_edu.lab.fastmode: the one switch, DDPM_EDU_FAST, and the sizes it picks."""

import pytest

from ddpm_edu.lab import fastmode


def test_eval_samples_shrinks_in_fast_mode(monkeypatch):
    monkeypatch.setenv("DDPM_EDU_FAST", "1")
    small = fastmode.eval_samples("digits"), fastmode.eval_samples("toy2d")
    monkeypatch.setenv("DDPM_EDU_FAST", "0")
    full = fastmode.eval_samples("digits"), fastmode.eval_samples("toy2d")
    assert all(a < b for a, b in zip(small, full))
    with pytest.raises(ValueError, match="dataset"):
        fastmode.eval_samples("cifar10")


def test_nll_examples_shrinks_in_fast_mode(monkeypatch):
    monkeypatch.setenv("DDPM_EDU_FAST", "1")
    small = fastmode.nll_examples()
    monkeypatch.setenv("DDPM_EDU_FAST", "0")
    assert 0 < small < fastmode.nll_examples()
