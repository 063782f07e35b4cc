"""The ddpm-edu command end to end: train on the CIFAR-10 fixture, sample, usage errors, figs."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import types

import pytest
import torch
from conftest import cli_command, subprocess_env, tiny_unet_overrides
from PIL import Image

from ddpm_edu.cli import main
from ddpm_edu.training import checkpoint as ck


def run(args, tmp_path, timeout=600):
    return subprocess.run(cli_command() + args, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=timeout)


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


@pytest.mark.multiprocess
def test_train_then_sample_on_cifar_fixture(fake_cifar, tmp_path, capsys):
    root, _ = fake_cifar
    overrides = tiny_unet_overrides() + [
        f"data.root={root}", "data.verify_md5=false", "data.batch_size=8", "model.attn_resolutions=[16]",
        "train.steps=24", "train.log_every=4", "train.ckpt_every=12", "train.sample_every=12", "train.keep_last=5",
        f"train.run_root={tmp_path / 'runs'}", "name=tiny-cifar"]
    r = run(["train", "--config", "cifar10", *sets(overrides)], tmp_path)
    assert r.returncode == 0, r.stderr
    rd = tmp_path / "runs" / "tiny-cifar"
    for name in ("config.yml", "metrics.jsonl", "loss.png", "ema.safetensors"):
        assert (rd / name).is_file(), name
    assert [p.name for p in ck.list_checkpoints(rd / "checkpoints")] == ["step_00000012.pt", "step_00000024.pt"]
    assert sorted(p.name for p in (rd / "samples").iterdir()) == [
        "step_00000012.gif", "step_00000012.png", "step_00000024.gif", "step_00000024.png"]
    steps = [json.loads(line)["step"] for line in (rd / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 8, 12, 16, 20, 24]
    grid = Image.open(rd / "samples" / "step_00000024.png")
    assert grid.mode == "RGB"

    out = tmp_path / "out"
    r = run(["sample", "--config", str(rd / "config.yml"), "--checkpoint", str(rd / "checkpoints" / "step_00000024.pt"),
             "--sampler", "ddim", "--steps", "10", "--eta", "0.5", "--num-samples", "4", "--frames", "7", "--fps", "4",
             "--seed", "1", "--out", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert Image.open(out / "samples.png").size[0] > 32
    gif = Image.open(out / "trajectory.gif")
    assert gif.n_frames == 7
    assert gif.info["duration"] == 250 and gif.info.get("loop") == 0  # a real frame delay, and it loops

    # The stored config is enough on its own, and safetensors weights work too.
    r = run(["sample", "--checkpoint", str(rd / "ema.safetensors"), "--num-samples", "2", "--sampler", "ddpm",
             "--out", str(tmp_path / "out2")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "out2" / "trajectory.gif").n_frames == 5  # sample.frames from the stored config

    # Bad sample options and overrides of the stored config: one message, exit 2, nothing written.
    bad = tmp_path / "out3"
    for opts, needles in [(["--frames", "1"], ["with sample options", "sample.frames", "greater than or equal to 2"]),
                          (["--sampler", "ddim", "--steps", "51"], ["sample.steps", "1..T (T = 50)"]),
                          (["--sampler", "dpm", "--eta", "-1"], ["sample.sampler", "'dpm'", "sample.eta", ">= 0"]),
                          (["--set", "sample.fsp=3"], ["(stored config)", "did you mean 'sample.fps'"])]:
        assert main(["sample", "--checkpoint", str(rd / "ema.safetensors"), "--out", str(bad), *opts]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ddpm-edu sample: error: Invalid config") and all(n in err for n in needles), err
    assert not bad.exists()


def _usage_error(args, tmp_path, *needles):
    r = run(args, tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr, n
    return r


@pytest.mark.multiprocess
@pytest.mark.parametrize(
    "override, needles",
    [
        ("train.stepz=3", ["train.stepz", "did you mean 'train.steps'"]),
        ("train.lr=-0.1", ["train.lr", "greater than 0"]),
        ("diffusion.beta_T=3", ["diffusion.beta_T", "(0, 1)"]),
        ("diffusion.T=0", ["diffusion.T", ">= 1"]),
        ("data.batch_size=big", ["data.batch_size", "integer"]),
    ],
)
def test_bad_config_exits_2_and_creates_nothing(tmp_path, override, needles):
    runs = tmp_path / "runs"
    _usage_error(["train", "-c", "digits", "--set", override, "--set", f"train.run_root={runs}"], tmp_path,
                 "digits.yml", *needles)
    assert not runs.exists()


@pytest.mark.multiprocess
def test_several_problems_in_one_message(tmp_path):
    r = _usage_error(["train", "-c", "digits", "--set", "train.lr=-1", "--set", "diffusion.T=0",
                      "--run-dir", str(tmp_path / "r")], tmp_path, "2 problems", "train.lr", "diffusion.T")
    assert not (tmp_path / "r").exists()
    assert r.stdout == ""


@pytest.mark.multiprocess
def test_missing_cifar_exits_2_with_instructions(tmp_path):
    _usage_error(["train", "-c", "cifar10", "--set", f"data.root={tmp_path / 'nodata'}", "--set", "data.download=false",
                  "--run-dir", str(tmp_path / "r")], tmp_path, "cifar-10-batches-py", "data_batch_1", "--config digits")
    assert not (tmp_path / "r").exists()


@pytest.mark.multiprocess
def test_missing_checkpoint_exits_2(tmp_path):
    _usage_error(["sample", "-c", "digits", "--checkpoint", str(tmp_path / "nope.pt")], tmp_path, "does not exist")


@pytest.mark.multiprocess
def test_unknown_preset_exits_2(tmp_path):
    _usage_error(["train", "-c", "cifar100"], tmp_path, "neither a file nor a preset", "cifar10")


@pytest.mark.multiprocess
def test_python_dash_m_is_the_same_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ddpm_edu", "train", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "examples:" in r.stdout and "--set" in r.stdout and "digits" in r.stdout
    r = subprocess.run([sys.executable, "-m", "ddpm_edu", "sample", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "trajectory.gif" in r.stdout


def test_figs_calls_make_all(tmp_path, monkeypatch, capsys):
    made = []
    fake = types.ModuleType("ddpm_edu.lab.figs")
    fake.make_all = lambda out: made.append(out) or [tmp_path / "a.png"]
    monkeypatch.setitem(sys.modules, "ddpm_edu.lab.figs", fake)
    assert main(["figs", "--out", str(tmp_path)]) == 0
    assert made == [str(tmp_path)] and "a.png" in capsys.readouterr().out


def test_in_process_errors_return_2(tmp_path, capsys):
    assert main(["train", "-c", "digits", "--set", "train.lr=-1", "--run-dir", str(tmp_path / "r")]) == 2
    assert "train.lr" in capsys.readouterr().err


def test_fid_passes_its_options_to_eval_fid(tmp_path, monkeypatch, capsys):
    from ddpm_edu.eval import fid

    calls = []
    monkeypatch.setattr(fid, "fid", lambda samples, **kw: calls.append((samples, kw)) or 12.345)
    assert main(["fid", "--samples", str(tmp_path / "s"), "--data-root", str(tmp_path / "d"), "--weights", "w.pth",
                 "--no-verify-md5", "--no-download", "--device", "cpu", "--batch-size", "8"]) == 0
    assert calls == [(str(tmp_path / "s"), dict(reference_root=str(tmp_path / "d"), weights="w.pth", verify_md5=False,
                                                download=False, device="cpu", batch_size=8))]
    out = capsys.readouterr().out
    assert "FID 12.35" in out and "3.17" in out and "50,000" in out
    assert main(["fid", "--samples", "s"]) == 0  # defaults: data.root's default, md5 checked, downloads allowed
    assert calls[-1][1] == dict(reference_root="~/.cache/ddpm_edu/data", weights=None, verify_md5=True, download=True,
                                device="auto", batch_size=64)


def test_fid_usage_errors_exit_2_in_one_paragraph(tmp_path, monkeypatch, capsys):
    from ddpm_edu.eval import fid

    monkeypatch.delenv(fid.FID_WEIGHTS_ENV, raising=False)
    cases = [(["--samples", str(tmp_path / "none")], ["none is neither a folder"]),
             (["--samples", str(tmp_path / "pngs"), "--data-root", str(tmp_path / "nodata"), "--no-download"],
              ["cifar-10-batches-py", "data.download is false"])]
    (tmp_path / "pngs").mkdir()
    for i in range(2):
        Image.new("RGB", (32, 32)).save(tmp_path / "pngs" / f"{i}.png")
    for args, needles in cases:
        assert main(["fid", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ddpm-edu fid: error: ") and err.count("\n") == 1, err
        assert all(n in err for n in needles), err
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # the extra is missing
    assert main(["fid", "--samples", str(tmp_path / "pngs")]) == 2
    assert 'pip install "ddpm-edu[fid]"' in capsys.readouterr().err


# --------------------------------------------------------------------------- labels and guidance (chapter 10)
@pytest.mark.multiprocess
def test_train_digits_guided_then_sample_one_class_with_guidance(tmp_path, capsys, monkeypatch):
    import numpy as np

    from ddpm_edu.data.images import to_uint8
    from ddpm_edu.training.build import load_ema_model
    from ddpm_edu.training.generate import chunk_seed, generate

    overrides = tiny_unet_overrides() + ["data.batch_size=16", "train.steps=4", "train.log_every=2",
                                         "train.ckpt_every=0", "train.sample_every=0",
                                         f"train.run_root={tmp_path / 'runs'}", "name=tiny-guided"]
    r = run(["train", "--config", "digits-guided", *sets(overrides)], tmp_path)
    assert r.returncode == 0, r.stderr
    ema = tmp_path / "runs" / "tiny-guided" / "ema.safetensors"
    out = tmp_path / "sevens"
    r = run(["sample", "--checkpoint", str(ema), "--label", "7", "--guidance", "2.0", "--sampler", "ddim",
             "--steps", "5", "--num-samples", "6", "--format", "npz", "--batch-size", "4", "--seed", "11",
             "--out", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr
    images = np.load(out / "samples.npz")["arr_0"]
    assert images.shape == (6, 8, 8, 1) and images.dtype == np.uint8
    settings = json.loads((out / "sampling.json").read_text())
    assert settings["label"] == 7 and settings["guidance"] == 2.0

    # The files are the library's guided samples of class 7: chunk 0 (4 samples) redrawn in this process.
    model, cfg = load_ema_model(None, ema)
    cfg = cfg.replace(sample=dataclasses.replace(cfg.sample, sampler="ddim", steps=5))
    x, _ = generate(model, cfg, num_samples=4, seed=chunk_seed(11, 0), frames=2, label=7, guidance=2.0)
    assert np.array_equal(images[:4, ..., 0], np.stack([to_uint8(xi) for xi in x]))

    # Another label in the same folder is refused; a grid with a label alone (w = 0) works.
    assert main(["sample", "--checkpoint", str(ema), "--label", "3", "--guidance", "2.0", "--sampler", "ddim",
                 "--steps", "5", "--num-samples", "6", "--format", "npz", "--batch-size", "4", "--seed", "11",
                 "--out", str(out)]) == 2
    assert "label" in capsys.readouterr().err
    from ddpm_edu.nets.unet import UNet

    seen, forward = [], UNet.forward
    monkeypatch.setattr(UNet, "forward", lambda self, x, t, y=None: seen.append(y) or forward(self, x, t, y))
    assert main(["sample", "--checkpoint", str(ema), "--label", "0", "--num-samples", "2", "--sampler", "ddim",
                 "--steps", "3", "--out", str(tmp_path / "grid")]) == 0
    assert (tmp_path / "grid" / "samples.png").is_file()
    assert len(seen) == 3 and all(torch.equal(y, torch.zeros(2, dtype=torch.long)) for y in seen)  # w = 0: one pass
    seen.clear()
    assert main(["sample", "--checkpoint", str(ema), "--label", "4", "--guidance", "1.5", "--num-samples", "2",
                 "--sampler", "ddim", "--steps", "3", "--out", str(tmp_path / "grid")]) == 0
    assert len(seen) == 6 and all(torch.equal(y, torch.full((2,), 4)) for y in seen[::2]) and seen[1::2] == [None] * 3
    monkeypatch.undo()
    capsys.readouterr()  # the progress bars of the runs above

    # Bad requests: one message naming the option, exit 2, nothing written.
    plain = tmp_path / "plain"
    from conftest import tiny_config

    from ddpm_edu.training.train import train
    train(tiny_config(steps=1), plain)
    bad = tmp_path / "bad"
    for ck_path, opts, needles in [
        (ema, ["--guidance", "2"], ["--guidance: guidance needs a label"]),
        (ema, ["--label", "10"], ["--label: label 10 is not one of the model's classes 0..9"]),
        (ema, ["--label", "-1", "--guidance", "-1"], ["--label:", "--guidance: the guidance weight w must be a finite"]),
        (plain / "ema.safetensors", ["--label", "3"], ["--label: this model is unconditional"]),
        (plain / "ema.safetensors", ["--guidance", "1"], ["unconditional", "digits-guided"]),
        (ema, ["--config", "digits", "--label", "3"], ["conditioned on 10 classes", "without labels"]),
    ]:
        assert main(["sample", "--checkpoint", str(ck_path), "--out", str(bad), *opts]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ddpm-edu sample: error:") and all(n in err for n in needles), err
    assert not bad.exists()
