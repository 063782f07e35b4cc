"""Configs: presets load and build, YAML floats, and one error that lists every problem."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from ddpm_edu.config import (
    Config,
    ConfigError,
    YamlLoader,
    config_from_dict,
    config_hash,
    config_to_dict,
    dump_config,
    load_config,
    preset_names,
)
from ddpm_edu.unet import UNet, count_params

PRESETS = ["cifar10", "cifar10-small", "digits", "toy2d"]


def test_all_presets_are_shipped():
    assert set(PRESETS) <= set(preset_names())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_validates_and_builds(name):
    from ddpm_edu.train import build_model

    cfg = load_config(name)
    assert cfg.name == name
    assert cfg.train.resume == "auto"  # the seed shipped resume switched on for a fresh run; auto starts fresh
    if cfg.model.kind == "mlp":
        pytest.importorskip("ddpm_edu.toy")
    model = build_model(cfg)
    assert count_params(model) > 0
    if isinstance(model, UNet):
        assert model.conv_in.in_channels == (3 if cfg.data.dataset == "cifar10" else 1)


def test_cifar10_preset_is_the_paper():
    c = load_config("cifar10")
    assert (c.diffusion.schedule, c.diffusion.T, c.diffusion.beta_1, c.diffusion.beta_T) == ("linear", 1000, 1e-4, 0.02)
    assert (c.train.lr, c.train.optimizer, c.train.warmup, c.train.grad_clip, c.train.ema_decay) == (2e-4, "adam", 5000, 1.0, 0.9999)
    assert (c.data.batch_size, c.train.steps, c.model.dropout, c.data.hflip) == (128, 800_000, 0.1, True)
    from ddpm_edu.train import build_model

    assert count_params(build_model(c)) == 35_746_307  # Ho et al. 2020, CIFAR10 model


def test_exponent_floats_are_floats():
    # Plain YAML 1.1 reads "1e-4" as a string; our loader must not.
    assert isinstance(yaml.safe_load("x: 1e-4")["x"], str)
    out = yaml.load("a: 1e-4\nb: 2E5\nc: -3.5e-2\nd: 7\ne: .5\nf: name", Loader=YamlLoader)
    assert out == {"a": 1e-4, "b": 2e5, "c": -3.5e-2, "d": 7, "e": 0.5, "f": "name"}
    assert isinstance(out["d"], int)


def test_overrides_apply_and_parse_yaml():
    c = load_config("digits", ["train.steps=2000", "model.ch=64", "model.ch_mult=[1,2]", "train.lr=3e-4",
                               "train.grad_clip=null", "name=mine"])
    assert (c.train.steps, c.model.ch, c.model.ch_mult, c.train.lr, c.train.grad_clip, c.name) == (
        2000, 64, (1, 2), 3e-4, None, "mine")


def test_dump_round_trips(tmp_path):
    c = load_config("cifar10-small", ["train.steps=7"])
    p = tmp_path / "c.yml"
    p.write_text(dump_config(c))
    assert load_config(str(p)) == c


def _error(raw=None, overrides=(), preset="digits") -> str:
    with pytest.raises(ConfigError) as e:
        if raw is None:
            load_config(preset, list(overrides))
        else:
            config_from_dict(raw, source="test.yml")
    return str(e.value)


def test_unknown_key_suggests_nearest():
    msg = _error(overrides=["train.stpes=10"])
    assert "digits.yml" in msg and "train.stpes" in msg and "did you mean 'train.steps'" in msg


def test_unknown_section_suggests_nearest():
    msg = _error({"trian": {"steps": 3}})
    assert "trian" in msg and "did you mean 'train'" in msg and "test.yml" in msg


@pytest.mark.parametrize(
    "override, key, words",
    [
        ("data.batch_size=abc", "data.batch_size", "integer"),
        ("train.compile=3", "train.compile", "true or false"),
        ("diffusion.beta_T=1.5", "diffusion.beta_T", "(0, 1)"),
        ("diffusion.beta_1=0", "diffusion.beta_1", "(0, 1)"),
        ("diffusion.beta_1=0.5", "diffusion.beta_1", "beta_T"),  # beta_1 > beta_T (0.02)
        ("diffusion.T=0", "diffusion.T", ">= 1"),
        ("train.lr=-1e-4", "train.lr", "positive"),
        ("train.precision=fp8", "train.precision", "one of"),
        ("sample.frames=1", "sample.frames", ">= 2"),
    ],
)
def test_each_bad_value_is_named(override, key, words):
    msg = _error(overrides=[override])
    assert key in msg and words in msg
    assert "1 problem" in msg


def test_all_problems_reported_together():
    msg = _error(overrides=["train.lr=-1", "diffusion.T=0", "data.batchsize=3", "train.steps=many", "diffusion.beta_T=2"])
    assert "5 problems" in msg
    for key in ("train.lr", "diffusion.T", "data.batchsize", "train.steps", "diffusion.beta_T"):
        assert key in msg


def test_bad_override_syntax_and_missing_preset():
    assert "KEY=VALUE" in _error(overrides=["train.steps"])
    with pytest.raises(ConfigError, match="neither a file nor a preset.*digits"):
        load_config("digitz")


def test_dataset_and_model_must_match():
    assert "model.kind" in _error(overrides=["data.dataset=toy2d"])


def test_frozen_and_defaults():
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.seed = 3  # type: ignore[misc]
    assert config_from_dict(config_to_dict(c)) == c


def test_hash_ignores_bookkeeping_but_not_training():
    c = load_config("digits")
    same = load_config("digits", ["train.run_root=/elsewhere", "train.log_every=7", "name=other", "sample.frames=9"])
    other = load_config("digits", ["train.lr=5e-4"])
    assert config_hash(c) == config_hash(same)
    assert config_hash(c) != config_hash(other)
