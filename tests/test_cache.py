"""The book's model cache: trained once, loaded afterwards, retrained when stale; fast mode shrinks it."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config, tiny_unet_overrides

from ddpm_edu.lab import modelcache as C
from ddpm_edu.training import checkpoint as ck
from ddpm_edu.training.config import load_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_load_or_train_caches(tmp_path, cache_dir, monkeypatch):
    cfg = tiny_config(steps=3)
    m1 = C.load_or_train(cfg)
    assert not m1.training and not any(p.requires_grad for p in m1.parameters())
    runs = list(cache_dir.iterdir())
    assert len(runs) == 1 and (runs[0] / "ema.safetensors").is_file()
    monkeypatch.setattr(C, "train", lambda *a, **k: pytest.fail("a cached model was retrained"))
    m2 = C.load_or_train(load_config("digits", tiny_unet_overrides() + [
        "train.steps=3", "data.batch_size=16", "train.run_root=/nowhere", "train.log_every=50"]))  # bookkeeping differs only
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_load_or_train_retrains_a_stale_cache_entry(tmp_path, cache_dir):
    """A cached model whose weights no longer fit the code's model (e.g. after a rename) is retrained."""
    cfg = tiny_config(steps=3)
    C.load_or_train(cfg)
    (run,) = list(cache_dir.iterdir())
    tensors, meta = ck.load_safetensors(run / "ema.safetensors")
    stale = {f"old.{k}": v for k, v in tensors.items()}  # the same weights under names the model lacks
    ck.save_safetensors(stale, run / "ema.safetensors", meta)
    with pytest.warns(UserWarning, match="retraining"):
        model = C.load_or_train(cfg)
    assert set(model.state_dict()) == set(tensors)
    assert set(ck.load_safetensors(run / "ema.safetensors")[0]) == set(tensors)


def test_fast_mode_shrinks_load_or_train(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setenv("DDPM_EDU_FAST", "1")
    seen = {}
    real = C.train

    def spy(cfg, *a, **k):
        seen["steps"] = cfg.train.steps
        return real(cfg, *a, **k)

    monkeypatch.setattr(C, "train", spy)
    C.load_or_train(tiny_config(steps=10_000))
    assert seen["steps"] == 30


def test_load_or_train_says_what_it_did_and_where(tmp_path, cache_dir, capsys):
    cfg = tiny_config(steps=3)
    C.load_or_train(cfg)
    first = capsys.readouterr().out
    run = C.cached_run(cfg)
    assert run.parent == cache_dir and (run / "metrics.jsonl").is_file()
    assert "trained 3 steps in" in first and str(run) in first
    C.load_or_train(cfg)
    assert "loaded from the cache" in capsys.readouterr().out


def test_paths_under_home_are_shown_from_the_tilde(tmp_path, cache_dir, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert C.shown_path(tmp_path / ".cache" / "ddpm_edu" / "abc") == "~/.cache/ddpm_edu/abc"
    assert C.shown_path(tmp_path.parent / "elsewhere") == str(tmp_path.parent / "elsewhere")
    cfg = tiny_config(steps=3)
    C.load_or_train(cfg)
    C.load_or_train(cfg)
    out = capsys.readouterr().out
    shown = C.shown_path(C.cached_run(cfg))
    assert out.count(shown) == 2  # trained, then loaded: both lines name the run the same way
    assert shown.startswith("~/") and str(tmp_path) not in out  # the cache lies under this HOME


def test_cached_metrics_is_the_training_log_of_the_cached_run(tmp_path, cache_dir):
    cfg = tiny_config("train.log_every=2", steps=4)
    assert C.cached_metrics(cfg) == []  # never trained
    C.load_or_train(cfg)
    log = C.cached_metrics(cfg)
    assert [r["step"] for r in log] == [2, 4]
    assert all(math.isfinite(r["loss"]) and r["time_s"] > 0 for r in log)
