"""Configs: presets load and build, YAML floats, validation on every path, and one error that lists every problem."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from ddpm_edu.data.toy import TOY_DATASETS
from ddpm_edu.lab.modelcache import config_hash
from ddpm_edu.losses import TARGETS
from ddpm_edu.nets.unet import PRESETS as UNET_PRESETS
from ddpm_edu.nets.unet import UNet, count_params
from ddpm_edu.sampling import VARIANCES, check_sampler
from ddpm_edu.schedules import KINDS, Schedule
from ddpm_edu.training.config import (
    Config,
    ConfigError,
    DiffusionConfig,
    ModelConfig,
    SampleConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    preset_names,
)

PRESETS = ["cifar10", "cifar10-small", "digits", "digits-guided", "toy2d"]


def test_all_presets_are_shipped():
    assert set(PRESETS) <= set(preset_names())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_validates_and_builds(name):
    from ddpm_edu.training.build import build_model

    cfg = load_config(name)
    assert cfg.name == name
    assert cfg.train.resume == "auto"  # the seed shipped resume switched on for a fresh run; auto starts fresh
    model = build_model(cfg)
    assert count_params(model) > 0
    if isinstance(model, UNet):
        assert model.conv_in.in_channels == (3 if cfg.data.dataset == "cifar10" else 1)


def test_cifar10_preset_is_the_paper():
    c = load_config("cifar10")
    assert (c.diffusion.schedule, c.diffusion.T, c.diffusion.beta_1, c.diffusion.beta_T) == ("linear", 1000, 1e-4, 0.02)
    assert (c.train.lr, c.train.optimizer, c.train.warmup, c.train.grad_clip, c.train.ema_decay) == (2e-4, "adam", 5000, 1.0, 0.9999)
    assert (c.data.batch_size, c.train.steps, c.model.dropout, c.data.hflip) == (128, 800_000, 0.1, True)
    from ddpm_edu.training.build import build_model

    assert count_params(build_model(c)) == 35_746_307  # Ho et al. 2020, CIFAR10 model


def test_exponent_floats_are_floats(tmp_path):
    # Plain YAML 1.1 reads "1e-4" as a string; float fields must still read it as a number.
    assert isinstance(yaml.safe_load("x: 1e-4")["x"], str)
    p = tmp_path / "c.yml"
    p.write_text("train:\n  lr: 1e-4\n  weight_decay: 2E-5\n  grad_clip: .5\n"
                 "diffusion:\n  beta_1: 1e-5\n  beta_T: 2e-2\nsample:\n  fps: 7\n")
    c = load_config(str(p))
    assert (c.train.lr, c.train.weight_decay, c.train.grad_clip, c.diffusion.beta_1, c.diffusion.beta_T) == (
        1e-4, 2e-5, 0.5, 1e-5, 2e-2)
    assert all(type(v) is float for v in (c.train.lr, c.train.weight_decay, c.diffusion.beta_1, c.sample.fps))
    assert load_config(str(p), ["train.lr=3E-6"]).train.lr == 3e-6
    p.write_text(dump_config(c))  # small floats are dumped as 1.0e-05, which reads back the same
    assert load_config(str(p)) == c


def test_integers_may_be_written_with_an_exponent_but_not_as_booleans():
    c = load_config("digits", ["train.steps=8e5", "model.ch=6.4e1"])
    assert (c.train.steps, c.model.ch) == (800_000, 64) and type(c.train.steps) is int
    msg = _error(overrides=["train.steps=true", "train.warmup=2.5", "model.ch=yes", "train.compile=1",
                            "data.hflip=0"])
    assert "5 problems" in msg
    for key in ("train.steps", "train.warmup", "model.ch", "train.compile", "data.hflip"):
        assert key in msg


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
        ("data.batch_size=abc", "data.batch_size", "valid integer"),
        ("train.compile=3", "train.compile", "valid boolean"),
        ("diffusion.beta_T=1.5", "diffusion.beta_T", "(0, 1)"),
        ("diffusion.beta_1=0", "diffusion.beta_1", "(0, 1)"),
        ("diffusion.beta_1=0.5", "diffusion.beta_1", "beta_1 <= beta_T"),  # beta_1 > beta_T (0.02)
        ("diffusion.T=0", "diffusion.T", ">= 1"),
        ("train.lr=-1e-4", "train.lr", "greater than 0"),
        ("train.lr=.nan", "train.lr", "finite"),
        ("train.precision=fp8", "train.precision", "'auto', 'fp32', 'bf16' or 'fp16'"),
        ("sample.frames=1", "sample.frames", "greater than or equal to 2"),
        ("model.ch=0", "model.ch", ">= 1"),
        ("model.dropout=1", "model.dropout", "[0, 1)"),
        ("model.ch_mult=[1,2,2,2,2]", "model.ch_mult", "divisible"),  # digits are 8x8: at most 4 levels
        ("model.preset=imagenet", "model.preset", "'cifar10'"),
        ("name=a/b", "name", "without '/'"),
        ("train.accumulate=0", "train.accumulate", "greater than or equal to 1"),
        ("train.accumulate=3", "train.accumulate", "must split data.batch_size = 128 evenly"),
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


def test_every_problem_in_a_file_is_named_with_file_and_key(tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text("name: ok\nseeed: 1\ndata:\n  batch_size: 0\nmodel:\n  preset: digits\n  dropout: 2\n"
                 "diffusion:\n  T: 0\n  betaT: 0.1\ntrain:\n  lr: fast\nsample: 5\nwandb:\n")  # an empty section is fine
    with pytest.raises(ConfigError) as e:
        load_config(str(p))
    msg = str(e.value)
    assert f"Invalid config {p}: 7 problems:" in msg
    lines = msg.splitlines()[1:]
    assert len(lines) == 7 and all(line.startswith("  - ") for line in lines)
    for key in ("seeed", "data.batch_size", "model.dropout", "diffusion.T", "diffusion.betaT", "train.lr", "sample"):
        assert any(line.startswith(f"  - {key}: ") for line in lines), key
    assert "did you mean 'seed'?" in msg and "did you mean 'diffusion.beta_T'?" in msg
    assert e.value.problems == [line[4:] for line in lines]


def test_schedule_and_unet_problems_come_from_their_modules():
    with pytest.raises(ValueError) as lib:
        Schedule.linear(1000, 0.5, 0.02)
    assert f"diffusion.beta_1: {lib.value}" in _error(overrides=["diffusion.schedule=linear", "diffusion.beta_1=0.5"])
    with pytest.raises(ValueError) as lib:
        Schedule.linear(0)
    assert f"diffusion.T: {lib.value}" in _error(overrides=["diffusion.T=0"])
    with pytest.raises(ValueError) as lib:
        UNet(num_res_blocks=0)
    why = str(lib.value).partition(": ")[2]  # after "bad UNet arguments: "
    assert "num_res_blocks" in why and f"model.num_res_blocks: {why}" in _error(overrides=["model.num_res_blocks=0"])


def test_sample_settings_are_checked_as_the_samplers_check_them():
    """Each bad setting gets the library's own message under its key, all in one error."""
    overrides = ["sample.sampler=ddim", "sample.steps=0", "sample.eta=-0.5", "sample.variance=learned"]
    with pytest.raises(ValueError) as lib:
        check_sampler("ddim", 0, -0.5, "learned", T=1000)
    msgs = str(lib.value).split("; ")
    assert len(msgs) == 3
    err = _error(overrides=overrides)
    for key, msg in zip(("steps", "eta", "variance"), msgs):
        assert f"sample.{key}: {msg}" in err, err
    assert "sample.sampler: sampler must be one of ('ddpm', 'ddim'), got 'dpm'" in _error(overrides=["sample.sampler=dpm"])
    with pytest.raises(ValueError) as lib:
        check_sampler("ddim", 401, 0.0, "beta", T=400)  # digits: T = 400
    assert f"sample.steps: {lib.value}" in _error(overrides=["sample.sampler=ddim", "sample.steps=401"])
    assert load_config("digits", ["sample.sampler=ddpm", "sample.steps=401"]).sample.steps == 401  # DDPM takes T


def test_valid_names_come_from_their_modules():
    for key, names in [("diffusion.schedule", KINDS), ("diffusion.target", TARGETS), ("sample.variance", VARIANCES),
                       ("data.toy", TOY_DATASETS)]:
        for name in names:
            c = load_config("toy2d", [f"{key}={name}"])
            section, _, field = key.partition(".")
            assert getattr(getattr(c, section), field) == name
        assert key in _error(overrides=[f"{key}=nonesuch"], preset="toy2d")
    for name in UNET_PRESETS:
        assert load_config("digits", [f"model.preset={name}"]).model.preset == name


def test_every_way_of_making_a_config_validates():
    cfg = load_config("digits")
    with pytest.raises(ConfigError, match=r"train\.lr: .*greater than 0"):
        cfg.replace(train=dataclasses.replace(cfg.train, lr=-1))
    with pytest.raises(ConfigError, match=r"train\.lr: .*greater than 0"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match=r"train\.stpes: unknown key; did you mean 'train\.steps'"):
        TrainConfig(stpes=3)
    with pytest.raises(ConfigError, match=r"diffusion\.beta_1: .*beta_1 <= beta_T"):
        DiffusionConfig(beta_1=0.5)
    with pytest.raises(ConfigError, match=r"model\.ch: "):
        ModelConfig(ch=0)
    with pytest.raises(ConfigError, match=r"seed: .*greater than or equal to 0"):
        dataclasses.replace(cfg, seed=-1)
    with pytest.raises(ConfigError, match="model.kind"):  # checks across sections run too
        cfg.replace(model=ModelConfig(kind="mlp"))
    with pytest.raises(ConfigError, match=r"sample\.steps: .*1\.\.T"):  # DDIM takes at most T steps
        cfg.replace(sample=SampleConfig(sampler="ddim", steps=cfg.diffusion.T + 1))
    assert cfg.replace(train=dataclasses.replace(cfg.train, lr="1e-3")).train.lr == 1e-3  # parsed, as in YAML


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


def test_fields_added_later_hash_as_before_while_off():
    """The book's cached models are keyed by config_hash: a field added later (labels, folders, accumulation) is
    left out of the hash at its default, so a preset's key does not change, and counts once it is set."""
    from ddpm_edu.lab.modelcache import _ADDED_OFF

    defaults = config_to_dict(Config())
    for (section, key), off in _ADDED_OFF.items():
        assert defaults[section][key] == off, (section, key)  # the default is the "off" value
    c = load_config("digits")
    for setting in ("train.accumulate=2", "data.labels=true"):
        assert config_hash(load_config("digits", [setting])) != config_hash(c), setting


# --------------------------------------------------------------------------- labels (chapter 10)
def test_digits_guided_is_digits_plus_labels():
    from ddpm_edu.training.build import build_model, label_dropout

    plain, guided = config_to_dict(load_config("digits")), config_to_dict(load_config("digits-guided"))
    assert guided["data"]["labels"] is True and guided["train"]["p_uncond"] == 0.1 and guided["name"] == "digits-guided"
    for d in (plain, guided):
        d["data"].pop("labels"), d["train"].pop("p_uncond"), d.pop("name")
    assert plain == guided  # nothing else differs
    assert build_model(load_config("digits-guided")).num_classes == 10
    assert build_model(load_config("digits")).num_classes is None
    assert label_dropout(load_config("digits-guided")) == 0.1 and label_dropout(load_config("digits")) is None


def test_label_dropout_defaults_to_p_uncond_when_labels_are_on():
    from ddpm_edu.training.build import P_UNCOND, label_dropout

    assert label_dropout(load_config("digits", ["data.labels=true"])) == P_UNCOND == 0.1
    assert label_dropout(load_config("digits", ["data.labels=true", "train.p_uncond=0.25"])) == 0.25
    assert label_dropout(load_config("digits", ["data.labels=true", "train.p_uncond=0"])) == 0.0


@pytest.mark.parametrize("overrides,key,words", [
    (["data.dataset=toy2d", "model.kind=mlp", "data.labels=true"], "data.labels", "toy2d has no labels"),
    (["train.p_uncond=0.1"], "train.p_uncond", "needs data.labels=true"),
    (["data.labels=true", "train.p_uncond=1"], "train.p_uncond", "less than 1"),
    (["data.labels=true", "train.p_uncond=-0.1"], "train.p_uncond", "greater than or equal to 0"),
    (["data.labels=1"], "data.labels", "valid boolean"),
])
def test_bad_label_settings_are_named(overrides, key, words):
    err = _error(overrides=overrides)
    assert key in err and words in err, err


def test_labels_change_the_cache_key_and_the_unlabelled_key_is_as_before():
    """config_hash leaves fields added later (labels, p_uncond, the folder's fields, accumulate) out while they
    are off, so models cached before they existed keep their keys: the digest is that of the other fields, as
    it was computed then."""
    import hashlib
    import json

    c = load_config("digits")
    d = config_to_dict(c)
    for sec, keys in {"data": ("root", "download", "verify_md5", "device_resident", "labels", "image_size",
                               "channels", "skip_bad"),
                      "train": ("device", "log_every", "sample_every", "ckpt_every", "keep_last", "resume",
                                "run_root", "progress", "compile", "p_uncond", "accumulate")}.items():
        for k in keys:
            d[sec].pop(k)
    for sec in ("name", "sample", "wandb"):
        d.pop(sec)
    assert config_hash(c) == hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
    labelled = load_config("digits", ["data.labels=true"])
    assert len({config_hash(c), config_hash(labelled), config_hash(load_config("digits", ["data.labels=true",
                                                                                          "train.p_uncond=0.2"]))}) == 3
