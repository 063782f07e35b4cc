"""What a run records: exact window means on the device, metrics.jsonl after a resume, and W&B that never breaks a run."""

from __future__ import annotations

import json
import math
import sys
import types
import warnings

import pytest
import torch
from conftest import tiny_config

from ddpm_edu.training.runlog import LogWindow, RunLog, read_metrics
from ddpm_edu.training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_window_means_skip_non_finite_values():
    w = LogWindow(torch.device("cpu"))
    steps = [(0.5, 2.0), (0.25, math.inf), (1.0, 4.0)]
    for loss, norm in steps:
        w.add(torch.tensor(loss), torch.tensor(norm))
    assert w.means() == {"loss": 1.75 / 3, "grad_norm": 3.0}  # the infinite norm is left out
    assert w.last_loss.item() == 1.0
    w.add(torch.tensor(2.0), torch.tensor(1.0))
    assert w.means() == {"loss": 2.0, "grad_norm": 1.0}  # a new window


def test_window_state_round_trip_is_exact():
    a, b = LogWindow(torch.device("cpu")), LogWindow(torch.device("cpu"))
    for v in (0.1, 0.2, 0.3):
        a.add(torch.tensor(v), torch.tensor(v))
    b.load_state_dict(a.state_dict())
    assert b.means() == a.means()


def test_metrics_after_the_resume_step_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (2, 4, 6)))
    log = RunLog(tmp_path, tiny_config(), upto=4)
    assert [r["step"] for r in log.records] == [2, 4]
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [2, 4]
    log.record({"step": 5, "loss": 0.5, "time_s": 1.0})
    log.plot_loss()
    assert (tmp_path / "loss.png").is_file() and len(path.read_text().splitlines()) == 3


def test_read_metrics_returns_what_was_recorded_in_order(tmp_path):
    assert read_metrics(tmp_path) == []
    log = RunLog(tmp_path, tiny_config(), upto=0)
    recs = [{"step": s, "loss": 1.0 / s, "time_s": 0.1 * s} for s in (1, 2, 3)]
    for r in recs:
        log.record(dict(r))
    assert read_metrics(tmp_path) == recs


class FakeWandb(types.ModuleType):
    """A stand-in for the wandb package whose log() fails on the second call."""

    def __init__(self):
        super().__init__("wandb")
        self.logged, self.inits = [], []
        fake = self

        class Run:
            def log(self, data, step=None):
                fake.logged.append((step, data))
                if len(fake.logged) == 2:
                    raise ConnectionError("wandb server unreachable")

            def finish(self):
                pass

        self._run = Run

    def init(self, **kw):
        self.inits.append(kw)
        return self._run()

    Image = Video = staticmethod(lambda *a, **k: object())


def test_wandb_logs_and_never_breaks_training(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = train(tiny_config("wandb.enabled=true", steps=4), tmp_path / "run")
    assert r.step == 4
    assert fake.inits[0]["project"] == "from-env" and fake.inits[0]["resume"] == "allow"
    assert len(fake.logged) == 2 and "loss" in fake.logged[0][1]  # switched off after the failure
    assert any("Weights & Biases logging failed" in str(x.message) for x in w)


def test_wandb_disabled_by_env(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    train(tiny_config("wandb.enabled=true", steps=2), tmp_path / "run")
    assert fake.inits == []
