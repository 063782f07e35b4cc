"""Checkpoints: atomic writes, weights_only loading that refuses pickled code, completeness, RNG round trips."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ddpm_edu.training import checkpoint as ck


def _state(step: int = 3, **extra) -> dict:
    rng = ck.get_rng_state()
    return {"format_version": ck.FORMAT_VERSION, "step": step, "model": {"w": torch.full((3,), float(step))},
            "ema": {"w": torch.zeros(3)}, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999)}]},
            "scaler": {}, "rng": rng, "data": {"epoch": 0, "pos": 4, "perm": torch.arange(5)},
            "trainer": {"acc": [0.0, 0.0, 0]}, "config": {"name": "x", "train": {"lr": 1e-3}}, **extra}


def test_round_trip(tmp_path):
    p = ck.save_checkpoint(_state(5), ck.checkpoint_path(tmp_path, 5))
    assert p.name == "step_00000005.pt"
    s = ck.load_checkpoint(p)
    assert s["step"] == 5 and torch.equal(s["model"]["w"], torch.full((3,), 5.0))
    assert s["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_rng_state_round_trip_through_a_file(tmp_path):
    state = ck.get_rng_state()
    p = ck.save_checkpoint(_state(rng=state), tmp_path / "step_00000001.pt")
    a = (torch.rand(3), np.random.rand(3), random.random())
    ck.set_rng_state(ck.load_checkpoint(p)["rng"])  # loaded with weights_only=True
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "step_00000001.pt"
    ck.save_checkpoint(_state(1), path)
    before = path.read_bytes()

    def torch_save_that_dies(obj, f):
        f.write(b"PARTIAL-CHECKPOINT" * 100)  # part of the file reaches the disk...
        raise OSError("disk full")  # ...then the write fails

    monkeypatch.setattr(ck.torch, "save", torch_save_that_dies)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(_state(2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert ck.load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000001.pt"]  # no temporary file left behind


def test_interrupted_save_of_new_file_leaves_nothing(tmp_path, monkeypatch):
    def dies(obj, f):
        f.write(b"x")
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(_state(2), tmp_path / "step_00000002.pt")
    assert list(tmp_path.iterdir()) == []
    assert ck.latest_checkpoint(tmp_path) is None


class Payload:
    """An object whose unpickling would create a file: the stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    p = tmp_path / "step_00000009.pt"
    torch.save(_state(9, evil=Payload(marker)), p)  # a plain torch.save can smuggle it in
    with pytest.raises(ck.CheckpointError, match="Refusing to load.*tensors and plain data"):
        ck.load_checkpoint(p)
    assert not marker.exists()


def test_incomplete_checkpoint_is_an_error(tmp_path):
    s = _state(4)
    del s["optimizer"]
    p = tmp_path / "step_00000004.pt"
    torch.save(s, p)
    with pytest.raises(ck.CheckpointError, match="lacks optimizer"):
        ck.load_checkpoint(p)
    with pytest.raises(ck.CheckpointError, match="refusing to save"):
        ck.save_checkpoint(s, tmp_path / "x.pt")


def test_missing_truncated_and_wrong_version(tmp_path):
    with pytest.raises(ck.CheckpointError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "nope.pt")
    p = ck.save_checkpoint(_state(1), tmp_path / "a.pt")
    (tmp_path / "b.pt").write_bytes(p.read_bytes()[:100])
    with pytest.raises(ck.CheckpointError, match="cannot be read"):
        ck.load_checkpoint(tmp_path / "b.pt")
    ck.save_checkpoint(_state(1, format_version=99), tmp_path / "c.pt")
    with pytest.raises(ck.CheckpointError, match="format version 99"):
        ck.load_checkpoint(tmp_path / "c.pt")


def test_listing_and_pruning(tmp_path):
    for step in (30, 4, 100, 7):
        ck.save_checkpoint(_state(step), ck.checkpoint_path(tmp_path, step))
    (tmp_path / ".step_00000200.pt.123.tmp").write_bytes(b"junk")  # a dead temporary file is not a checkpoint
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == [f"step_{s:08d}.pt" for s in (4, 7, 30, 100)]
    removed = ck.prune_checkpoints(tmp_path, keep_last=2)
    assert [p.name for p in removed] == ["step_00000004.pt", "step_00000007.pt"]
    assert ck.latest_checkpoint(tmp_path).name == "step_00000100.pt"


def test_safetensors_round_trip(tmp_path):
    t = {"a.weight": torch.randn(2, 3), "b": torch.arange(4)}
    p = ck.save_safetensors(t, tmp_path / "ema.safetensors", metadata={"step": "12"})
    back, meta = ck.load_safetensors(p)
    assert meta["step"] == "12" and all(torch.equal(t[k], back[k]) for k in t)
