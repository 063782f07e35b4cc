"""ddpm_edu.lab.plan: the run chosen for each kind of device, and honest labels on the short CPU run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ddpm_edu.data.cifar10 import load_cifar10
from ddpm_edu.lab import plan as P


def fake_gpu(monkeypatch, name: str, gib: float, capability: tuple[int, int]) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: SimpleNamespace(name=name, total_memory=gib * 2**30))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d: capability)


@pytest.mark.parametrize("name, gib, cap, preset, precision", [
    ("Tesla T4", 15, (7, 5), "cifar10-small", "fp16"),
    ("NVIDIA A10G", 24, (8, 6), "cifar10-small", "bf16"),
    ("NVIDIA A100-SXM4-40GB", 40, (8, 0), "cifar10", "bf16"),
    ("NVIDIA H200", 141, (9, 0), "cifar10", "bf16"),
])
def test_a_gpu_gets_the_preset_and_precision_it_can_hold(monkeypatch, tmp_path, name, gib, cap, preset, precision):
    fake_gpu(monkeypatch, name, gib, cap)
    p = P.plan_run(run_root=str(tmp_path / "runs"), data_root=tmp_path / "data", device="cuda")
    assert (p.preset, p.precision, p.short_run, p.device_name) == (preset, precision, False, name)
    cfg = p.config()
    assert cfg.train.steps == {"cifar10": 800_000, "cifar10-small": 40_000}[preset]  # the preset's own run
    assert cfg.train.run_root == str(tmp_path / "runs") and cfg.data.download  # downloads on first use
    assert "downloaded on first use" in p.data
    assert not (tmp_path / "runs").exists()  # planning writes nothing on a GPU


def test_without_a_gpu_or_cifar10_the_short_run_trains_on_labelled_stand_ins(tmp_path):
    p = P.plan_run(run_root=str(tmp_path / "runs"), data_root=tmp_path / "nothing-here", device="cpu")
    assert p.short_run and p.data.startswith("stand-in") and p.precision == "fp32"
    cfg = p.config()
    assert cfg.data.root == str(tmp_path / "runs" / "standin-data") and not cfg.data.verify_md5
    assert not cfg.data.download  # the short run never reaches for the network
    assert load_cifar10(cfg.data.root, download=False, verify_md5=False).shape[1:] == (3, 32, 32)
    page = p._repr_html_()
    assert "not a CIFAR-10 result" in page and 'class="admonition warning"' in page
    assert all(o in p.command() for o in p.overrides) and p.command().startswith("ddpm-edu train --config cifar10-small")


def test_a_short_run_uses_cifar10_when_its_files_are_on_disk_and_checks_them(fake_cifar, tmp_path):
    root, _ = fake_cifar
    p = P.plan_run(run_root=str(tmp_path / "runs"), data_root=root, device="cpu")
    assert p.data == "CIFAR-10" and p.config().data.verify_md5  # real files are checked against their md5
    assert not (tmp_path / "runs" / "standin-data").exists()


def test_a_trained_checkpoint_is_named_by_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(P.CKPT_ENV, str(tmp_path / "ema.safetensors"))
    p = P.plan_run(run_root=str(tmp_path / "runs"), data_root=tmp_path, device="cpu")
    assert p.checkpoint == tmp_path / "ema.safetensors" and str(p.checkpoint) in p._repr_html_()
    monkeypatch.delenv(P.CKPT_ENV)
    assert P.plan_run(run_root=str(tmp_path / "runs"), data_root=tmp_path, device="cpu").checkpoint is None


def test_runs_go_to_drive_in_colab_and_to_one_emptied_folder_for_a_cpu_run(monkeypatch, tmp_path):
    monkeypatch.setenv("DDPM_EDU_CACHE", str(tmp_path))
    assert P.default_run_root(torch.device("cuda")) == "runs"
    first = Path(P.default_run_root(torch.device("cpu")))
    assert first.parent == tmp_path and first.is_dir() and not any(first.iterdir())
    (first / "cifar10-short").mkdir()  # a previous build's run
    again = Path(P.default_run_root(torch.device("cpu")))
    assert again == first and not any(again.iterdir()), "a new plan must start from an empty folder"
    assert [p.name for p in tmp_path.iterdir()] == [P.SHORT_RUN_FOLDER]  # nothing else is left behind
    monkeypatch.setitem(__import__("sys").modules, "google.colab", SimpleNamespace())
    assert P.default_run_root(torch.device("cuda")) == P.DRIVE_RUN_ROOT


def test_the_page_writes_the_home_folder_as_a_tilde(monkeypatch, tmp_path):
    """No build-machine path on the page: folders under the home folder show as ~/..., and the config
    expands them back to the same folders."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(P.CKPT_ENV, str(tmp_path / "runs" / "ema.safetensors"))
    p = P.plan_run(run_root=str(tmp_path / "runs"), data_root=tmp_path / "nothing-here", device="cpu")
    page = p._repr_html_()
    assert str(tmp_path) not in page and "train.run_root=~/runs" in page and "~/runs/ema.safetensors" in page
    assert str(tmp_path) in p.command()  # the command itself keeps the real folders
    shown = P.load_config(p.preset, [o.strip() for o in p.command(shown=True).split("--set ")[1:]])
    assert Path(shown.train.run_root).expanduser() == tmp_path / "runs"
    assert Path(shown.data.root).expanduser() == Path(p.config().data.root)

