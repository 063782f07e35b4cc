"""The trainer loop: warmup, the run folder, exact resume in a new process, NaN stops, signals, GPU paths."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import cli_command, no_host_reads, subprocess_env, tiny_unet_overrides
from conftest import tiny_config as tiny

from ddpm_edu.data.stream import BatchIterator
from ddpm_edu.training import checkpoint as ck
from ddpm_edu.training import train as T
from ddpm_edu.training.build import resolve_precision
from ddpm_edu.training.config import load_config
from ddpm_edu.training.guard import NonFiniteError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_lr_warmup_is_linear():
    assert [T.lr_at(s, 1e-3, 4) for s in (1, 2, 4, 9)] == [2.5e-4, 5e-4, 1e-3, 1e-3]
    assert T.lr_at(1, 1e-3, 0) == 1e-3


def test_run_writes_everything_and_stops_exactly(tmp_path):
    cfg = tiny("train.ckpt_every=4", "train.sample_every=5", "train.log_every=2", "train.keep_last=2", steps=10)
    r = T.train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert r.step == 10 and r.interrupted == 0 and math.isfinite(r.last_loss)
    assert [p.name for p in ck.list_checkpoints(run / "checkpoints")] == ["step_00000008.pt", "step_00000010.pt"]
    assert ck.load_checkpoint(r.checkpoint)["step"] == 10
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in recs] == [2, 4, 6, 8, 10]
    assert set(recs[0]) >= {"loss", "lr", "grad_norm", "steps_per_s"}
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_00000005.gif", "step_00000005.png", "step_00000010.gif", "step_00000010.png"]
    for name in ("config.yml", "loss.png", "ema.safetensors"):
        assert (run / name).is_file(), name
    assert load_config(str(run / "config.yml")) == cfg
    tensors, meta = ck.load_safetensors(run / "ema.safetensors")
    assert meta["step"] == "10"
    final = ck.load_checkpoint(r.checkpoint)
    assert all(torch.equal(tensors[k], final["ema"][k]) for k in tensors)


def test_training_restores_the_callers_rng(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    T.train(tiny(steps=2), tmp_path / "run")
    assert torch.equal(torch.rand(3), expected)


def _run_cli(args: list[str], tmp_path: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command() + args, env=subprocess_env(tmp_path), capture_output=True, text=True,
                          timeout=600, **kw)


def _sets(cfg_overrides: list[str]) -> list[str]:
    out = []
    for o in cfg_overrides:
        out += ["--set", o]
    return out


@pytest.mark.multiprocess
def test_exact_resume_in_a_new_process(tmp_path):
    N, K = 10, 4
    base = tiny_unet_overrides() + ["data.batch_size=16", "train.log_every=1", "train.ckpt_every=0",
                                    "train.sample_every=0", "train.warmup=6"]
    straight = _run_cli(["train", "-c", "digits", *_sets(base + [f"train.steps={N}"]), "--run-dir", str(tmp_path / "a")], tmp_path)
    assert straight.returncode == 0, straight.stderr
    first = _run_cli(["train", "-c", "digits", *_sets(base + [f"train.steps={K}"]), "--run-dir", str(tmp_path / "b")], tmp_path)
    assert first.returncode == 0, first.stderr
    second = _run_cli(["train", "-c", "digits", *_sets(base + [f"train.steps={N}"]), "--run-dir", str(tmp_path / "b")], tmp_path)
    assert second.returncode == 0, second.stderr

    a = ck.load_checkpoint(tmp_path / "a" / "checkpoints" / f"step_{N:08d}.pt")
    b = ck.load_checkpoint(tmp_path / "b" / "checkpoints" / f"step_{N:08d}.pt")
    losses = [[json.loads(line)["loss"] for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in "ab"]
    assert len(losses[0]) == N and losses[0] == losses[1]  # identical loss history, step by step
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), f"{key}.{k} differs"
    for p, sa in a["optimizer"]["state"].items():
        for k, v in sa.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["optimizer"]["state"][p][k])), f"optimizer {p}.{k}"
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    assert a["data"]["epoch"] == b["data"]["epoch"] and a["data"]["pos"] == b["data"]["pos"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def _poison_step(monkeypatch, bad_call: int, where: str) -> None:
    """Make training step ``bad_call`` non-finite: its loss (``where="loss"``), or only its gradients."""
    calls = {"n": 0}
    real = T.l_simple

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        if calls["n"] != bad_call:
            return loss
        if where == "loss":
            return loss * float("nan")
        return loss + torch.sqrt(loss * 0)  # the same finite loss; its gradient is 1 + 0 / (2 sqrt 0) = NaN

    monkeypatch.setattr(T, "l_simple", poisoned)


def test_nan_loss_stops_without_a_nan_checkpoint(tmp_path, monkeypatch):
    _poison_step(monkeypatch, 5, "loss")
    run = tmp_path / "run"
    with pytest.raises(NonFiniteError, match="loss became nan at step 5.*step_00000004.pt"):
        T.train(tiny("train.ckpt_every=2", steps=8), run)
    assert [p.name for p in ck.list_checkpoints(run / "checkpoints")] == ["step_00000002.pt", "step_00000004.pt"]
    for p in ck.list_checkpoints(run / "checkpoints"):
        s = ck.load_checkpoint(p)
        assert all(torch.isfinite(v).all() for part in ("model", "ema") for v in s[part].values())
    ema, meta = ck.load_safetensors(run / "ema.safetensors")
    assert meta["step"] == "4" and all(torch.isfinite(v).all() for v in ema.values())


@pytest.mark.parametrize("where,what", [("loss", "loss became nan"), ("grad", "gradient norm became nan")])
def test_a_non_finite_step_is_skipped_on_the_device_and_stops_the_run(tmp_path, monkeypatch, where, what):
    """log_every is larger than the run: the bad step 5 is only read back before the checkpoint at step 6.
    It must not have been applied (the fused optimiser counts 5 steps after 6), and no checkpoint follows."""
    _poison_step(monkeypatch, 5, where)
    trainer = T.Trainer(tiny("train.ckpt_every=2", "train.log_every=100", steps=8), tmp_path / "run")
    assert trainer.cfg.train.log_every > trainer.cfg.train.steps
    with pytest.raises(NonFiniteError, match=f"{what} at step 5.*stopped at step 6.*step_00000004.pt"):
        trainer.fit()
    assert trainer.opt.defaults["fused"]
    assert [p.name for p in ck.list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_00000002.pt", "step_00000004.pt"]
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert all(torch.isfinite(p).all() for p in trainer.ema.model.parameters())
    steps = {int(st["step"]) for st in trainer.opt.state.values()}
    assert steps == {5}  # six steps taken, the fifth skipped



def test_training_steps_do_not_read_values_back(tmp_path, monkeypatch):
    """On CPU, the stand-in for the CUDA test below: a step of the loop reads nothing back to the host,
    so on a GPU it queues work without waiting; values come back at log and checkpoint boundaries only."""
    tr = T.Trainer(tiny("train.log_every=1000", steps=20), tmp_path / "run")
    tr.setup()
    tr.train_step(1)
    with monkeypatch.context() as m:
        reads = no_host_reads(m)
        for k in range(2, 6):
            tr.train_step(k)
            next(tr.data)
    assert reads == []
    tr.check_finite()  # and the boundary does read (this would raise had the patch leaked)
    assert {int(st["step"]) for st in tr.opt.state.values()} == {5}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision,labels,accumulate",
                         [("bf16", "false", 1), ("fp16", "false", 1), ("bf16", "true", 1), ("bf16", "false", 2),
                          ("fp16", "true", 2)])
def test_cuda_training_steps_never_wait_for_the_gpu(tmp_path, precision, labels, accumulate):
    """Between boundaries the loop must not synchronise with the GPU: torch's sync debug mode turns
    any wait (a value read back, a blocking copy) into an error. Label dropout and micro-batches included."""
    tr = T.Trainer(tiny("train.device=cuda", f"train.precision={precision}", "train.channels_last=true",
                        "train.log_every=1000", f"data.labels={labels}", f"train.accumulate={accumulate}",
                        steps=50), tmp_path / "run")
    tr.setup()
    for k in (1, 2):  # lazy set-up (optimizer state, library handles) may wait once
        tr.train_step(k)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for k in range(3, 13):
            tr.train_step(k)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    tr.check_finite()
    assert {int(st["step"]) for st in tr.opt.state.values()} == {12}


# --------------------------------------------------------------------------- labels (chapter 10)
LABELLED = ("data.labels=true", "train.p_uncond=0.5")  # half the labels dropped: dropout shows in every step


def test_exact_resume_with_label_dropout(tmp_path):
    """A run with labels stopped at step 3 and resumed to 8 is the run that went to 8 at once, bit for bit: the
    label coins come from the trainer's generator, whose state the checkpoint carries."""
    straight = T.train(tiny(*LABELLED, steps=8), tmp_path / "a")
    T.train(tiny(*LABELLED, steps=3), tmp_path / "b")
    resumed = T.train(tiny(*LABELLED, steps=8), tmp_path / "b")
    a, b = ck.load_checkpoint(straight.checkpoint), ck.load_checkpoint(resumed.checkpoint)
    losses = [[json.loads(line)["loss"] for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
              for d in "ab"]
    assert len(losses[0]) == 8 and losses[0] == losses[1]
    for key in ("model", "ema"):
        assert "label_emb.weight" in a[key]
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert torch.equal(a["rng"]["generator"], b["rng"]["generator"])


def test_labels_are_dropped_with_the_trainers_generator(tmp_path):
    tr = T.Trainer(tiny(*LABELLED, steps=4), tmp_path / "run")
    tr.setup()
    y = torch.arange(16) % 10
    saved = tr.gen.get_state()
    got = tr.dropped_labels(y)
    coins = torch.rand(16, generator=torch.Generator().set_state(saved))
    assert torch.equal(got, torch.where(coins < 0.5, 10, y))  # "no label" is index K = 10
    assert 0 < int((got == 10).sum()) < 16
    before = tr.gen.get_state()
    assert tr.dropped_labels(None) is None and torch.equal(tr.gen.get_state(), before)  # no labels: no draw


def test_labelled_training_steps_do_not_read_values_back(tmp_path, monkeypatch):
    tr = T.Trainer(tiny(*LABELLED, "train.log_every=1000", steps=20), tmp_path / "run")
    tr.setup()
    tr.train_step(1)
    with monkeypatch.context() as m:
        reads = no_host_reads(m)
        for k in range(2, 5):
            tr.train_step(k)
    assert reads == []


def test_checkpoints_record_the_classes_and_resume_refuses_a_change_of_labels(tmp_path):
    r = T.train(tiny(*LABELLED, steps=2), tmp_path / "run")
    assert ck.load_checkpoint(r.checkpoint)["num_classes"] == 10
    assert ck.load_safetensors(tmp_path / "run" / "ema.safetensors")[1]["num_classes"] == "10"
    with pytest.raises(ck.CheckpointError, match="data.labels: checkpoint True, config False"):
        T.train(tiny(steps=4), tmp_path / "run")
    plain = T.train(tiny(steps=2), tmp_path / "plain")
    assert ck.load_checkpoint(plain.checkpoint)["num_classes"] is None
    assert "num_classes" not in ck.load_safetensors(tmp_path / "plain" / "ema.safetensors")[1]


class Float64Batches(BatchIterator):
    """The digits stream in float64."""

    def __next__(self) -> torch.Tensor:
        return super().__next__().double()


def test_accumulated_micro_batches_make_the_step_of_the_whole_batch_in_float64(tmp_path, monkeypatch):
    """train.accumulate = k: the gradient, the loss and the weights after one Adam step equal those of the
    whole batch to float64 rounding, because the micro-batches use the whole batch's rows of t and eps.
    Without clipping, a missing 1/k would scale the gradients k times; Adam's first step hides that, the
    gradient does not."""
    from ddpm_edu.data.digits import load_digits
    from ddpm_edu.nets import unet

    build, embed = T.build_model, unet.timestep_embedding
    monkeypatch.setattr(T, "build_model", lambda cfg: build(cfg).double())
    monkeypatch.setattr(unet, "timestep_embedding", lambda t, dim: embed(t, dim).double())
    seen = {}
    for k in (1, 4, 16):
        cfg = tiny("model.dropout=0.0", "train.grad_clip=null", f"train.accumulate={k}", steps=1)
        tr = T.Trainer(cfg, tmp_path / f"k{k}", data=Float64Batches(load_digits(), 16, seed=1))
        tr.setup()
        tr.train_step(1)
        assert {int(st["step"]) for st in tr.opt.state.values()} == {1}  # one optimiser step
        assert tr.window.sums[3].item() == 1  # and one logged step
        seen[k] = ([p.grad for p in tr.model.parameters()], list(tr.model.parameters()), tr.window.sums[0].item())
    grads, params, loss = seen[1]
    assert all(p.dtype == torch.float64 for p in params)
    for k in (4, 16):
        assert seen[k][2] == pytest.approx(loss, rel=2e-7, abs=0)  # the log window holds the loss in float32
        assert max((a - b).abs().max().item() for a, b in zip(seen[k][0], grads)) < 1e-12
        assert max((a - b).abs().max().item() for a, b in zip(seen[k][1], params)) < 1e-12
    assert max(g.abs().max().item() for g in grads) > 0.1  # gradients far above the tolerance


def test_resume_never_refuses_a_used_folder(tmp_path):
    T.train(tiny(steps=2), tmp_path / "run")
    with pytest.raises(ck.CheckpointError, match="resume=never"):
        T.train(tiny("train.resume=never", steps=4), tmp_path / "run")


def test_incomplete_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    run = tmp_path / "run"
    r = T.train(tiny(steps=2), run)
    s = torch.load(r.checkpoint, weights_only=True)
    del s["rng"]["generator"]  # a piece deep inside is missing
    torch.save(s, r.checkpoint)
    with pytest.raises(ck.CheckpointError, match="cannot be resumed exactly"):
        T.train(tiny(steps=4), run)
    del s["optimizer"]
    torch.save(s, r.checkpoint)
    with pytest.raises(ck.CheckpointError, match="lacks optimizer"):
        T.train(tiny(steps=4), run)
    assert [p.name for p in ck.list_checkpoints(run / "checkpoints")] == ["step_00000002.pt"]


def test_resume_with_another_model_is_refused(tmp_path):
    T.train(tiny(steps=2), tmp_path / "run")
    with pytest.raises(ck.CheckpointError, match="model.ch"):
        T.train(tiny("model.ch=8", steps=4), tmp_path / "run")


def test_explicit_resume_path(tmp_path):
    r = T.train(tiny(steps=3), tmp_path / "a")
    r2 = T.train(tiny(f"train.resume={r.checkpoint}", steps=5), tmp_path / "b")
    assert r2.step == 5
    with pytest.raises(ck.CheckpointError, match="no such checkpoint"):
        T.train(tiny(f"train.resume={tmp_path / 'missing.pt'}", steps=5), tmp_path / "c")
    assert not (tmp_path / "c").exists()


@pytest.mark.multiprocess
def test_sigterm_writes_a_checkpoint_that_resumes(tmp_path):
    run = tmp_path / "run"
    args = ["train", "-c", "digits", *_sets(tiny_unet_overrides() + ["data.batch_size=16", "train.log_every=1",
                                                                    "train.steps=100000", "train.sample_every=0"]),
            "--run-dir", str(run)]
    proc = subprocess.Popen(cli_command() + args, env=subprocess_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):  # wait until it is really training
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "timeout"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "SIGTERM" in err
    latest = ck.latest_checkpoint(run / "checkpoints")
    step = ck.load_checkpoint(latest)["step"]
    assert 3 <= step < 100000
    r = T.train(tiny(steps=step + 2), run)  # same model config; resume=auto picks the SIGTERM checkpoint up
    assert r.step == step + 2


def test_toy2d_trains(tmp_path):
    cfg = load_config("toy2d", ["train.steps=20", "train.progress=false", "sample.num_samples=50", "sample.frames=4"])
    r = T.train(cfg, tmp_path / "run")
    assert r.step == 20
    assert (tmp_path / "run" / "samples" / "step_00000020.png").is_file()
    from PIL import Image

    assert Image.open(tmp_path / "run" / "samples" / "step_00000020.gif").n_frames == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["auto", "fp16", "bf16"])
def test_cuda_paths(tmp_path, precision):
    """On a GPU: device-resident data, autocast (bf16, or fp16 with a GradScaler), channels_last, resume."""
    cfg = tiny("train.device=cuda", f"train.precision={precision}", "train.channels_last=true", steps=6)
    r = T.train(cfg, tmp_path / "run")
    assert r.step == 6 and math.isfinite(r.last_loss)
    s = ck.load_checkpoint(r.checkpoint)
    fp16 = resolve_precision(precision, torch.device("cuda"))[1]
    assert (s["scaler"]["scale"] != 1.0) == fp16  # dynamic loss scaling under fp16 only
    assert T.train(tiny("train.device=cuda", f"train.precision={precision}", "train.channels_last=true", steps=8),
                   tmp_path / "run").step == 8
