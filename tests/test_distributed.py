"""Several processes: the World's collectives, DDP equivalence, resume across world sizes, sharded sampling, faults.

The multi-process tests start 2 processes themselves, joined by gloo on the CPU, each with torchrun's
environment (RANK, WORLD_SIZE, ...): :func:`run_ranks` forks them from the test process (torch is
already imported, so they start at once) and kills them at a deadline, so a hang fails the test
instead of blocking it. One test goes through the real ``torchrun`` and the command line.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import pytest
import torch
from conftest import subprocess_env, tiny_unet_overrides

from ddpm_edu.cli import main
from ddpm_edu.training import checkpoint as ck
from ddpm_edu.training import train as T
from ddpm_edu.training.distributed import SINGLE, DistributedError, World, initialized

pytestmark = pytest.mark.usefixtures("one_thread")
TIMEOUT_S = 120  # a hang fails the test after this long


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory):
    """Import what training loads lazily (scikit-learn, torch's compiler stack, matplotlib) before forking,
    so that each forked rank does not import it again."""
    T.train(_cfg(1), tmp_path_factory.mktemp("warm"), samples=False)


# --------------------------------------------------------------------------- spawning ranks
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, size: int, port: int, fn: Callable, args: tuple) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(size), LOCAL_WORLD_SIZE=str(size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    code = 1
    try:
        code = fn(*args) or 0
    except BaseException:  # noqa: BLE001 - report any failure as the exit status
        traceback.print_exc()
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)  # skip the test process's atexit handlers


def start_ranks(fn: Callable, *args, size: int = 2) -> list[multiprocessing.Process]:
    """Fork ``size`` processes that run ``fn(*args)`` with torchrun's environment; exit status: its return value."""
    ctx, port = multiprocessing.get_context("fork"), free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, size, port, fn, args)) for r in range(size)]
    for p in procs:
        p.start()
    return procs


def wait_ranks(procs: list[multiprocessing.Process], timeout: float = TIMEOUT_S) -> list[int]:
    """The exit statuses; processes still running at the deadline are killed and the test fails."""
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    assert not hung, f"{len(hung)} process(es) still running after {timeout} s"
    return [p.exitcode for p in procs]


def run_ranks(fn: Callable, *args, size: int = 2, timeout: float = TIMEOUT_S) -> list[int]:
    return wait_ranks(start_ranks(fn, *args, size=size), timeout)


def cli(argv: list[str]) -> int:
    """``ddpm-edu ...`` in a rank: what ``torchrun -m ddpm_edu ...`` runs."""
    return main(argv)


def sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


# --------------------------------------------------------------------------- one process
def test_rows_split_a_global_batch_evenly():
    for W in (1, 2, 3, 4):
        rows = [World(rank=r, size=W).rows(12) for r in range(W)]
        assert sum((list(range(12))[sl] for sl in rows), []) == list(range(12))
        assert {sl.stop - sl.start for sl in rows} == {12 // W}
    with pytest.raises(DistributedError, match="data.batch_size = 10 .* 4 processes.*multiple of 4, e.g. 8"):
        World(rank=0, size=4).rows(10)


def test_micro_batches_split_each_process_rows_evenly():
    assert World(rank=1, size=2).micro_rows(16, 4) == 2 and SINGLE.micro_rows(16, 16) == 1
    with pytest.raises(DistributedError, match="train.accumulate = 3 .* 16 over 2 processes is 8 rows .* multiple of 6"):
        World(rank=0, size=2).micro_rows(16, 3)


def test_one_process_is_a_world_of_one():
    with initialized({}) as w:
        assert w is SINGLE and w.is_main and w.rows(7) == slice(0, 7)
    x = torch.arange(3.0)
    assert SINGLE.max_int(5) == 5 and SINGLE.main_says(True) and SINGLE.mean_(x) is x
    assert torch.equal(SINGLE.gather(x), x[None])
    SINGLE.barrier()
    SINGLE.check_same(3, "anything")
    assert SINGLE.data_parallel(m := torch.nn.Linear(2, 2)) is m
    with SINGLE.no_sync(m, sync=False):  # nothing to keep from other processes
        pass


# --------------------------------------------------------------------------- collectives
def _collectives(out: str) -> int:
    with initialized() as w:
        r = w.rank
        res = {"max": w.max_int(10 + r), "main_says": w.main_says(r == 0),
               "mean": w.mean_(torch.tensor([float(r), 2.0 * r])).tolist(),
               "gather": w.gather(torch.tensor([r, -r])).tolist()}
        try:
            w.check_same(r, "the rank")
        except DistributedError as e:
            res["check_same"] = str(e)
        w.barrier()
    Path(out, f"{r}.json").write_text(json.dumps(res))
    return 0


@pytest.mark.multiprocess
def test_collectives_agree_on_every_rank(tmp_path):
    assert run_ranks(_collectives, str(tmp_path)) == [0, 0]
    res = [json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1)]
    assert res[0] == res[1]
    assert res[0]["max"] == 11 and res[0]["main_says"] is True and res[0]["mean"] == [0.5, 1.0]
    assert res[0]["gather"] == [[0, 0], [1, -1]] and "disagree on the rank: [0, 1]" in res[0]["check_same"]


# --------------------------------------------------------------------------- training
N = 3  # steps before the switch of world size; runs go to 2N


def _train_overrides(steps: int, *extra: str) -> list[str]:
    """A tiny digits U-Net without dropout (dropout masks are per process), a checkpoint after every step."""
    return tiny_unet_overrides() + ["model.dropout=0.0", "data.batch_size=16", f"train.steps={steps}",
                                    "train.log_every=1", "train.ckpt_every=1", "train.keep_last=100",
                                    "train.sample_every=0", *extra]


def _ckpt(run: Path, step: int) -> dict:
    return ck.load_checkpoint(ck.checkpoint_path(run / "checkpoints", step))


def _eps_hat(state: dict, part: str) -> torch.Tensor:
    """The network of a checkpoint (its ``part``: model or ema) on a fixed batch of x_t and t."""
    from ddpm_edu.training.build import build_model
    from ddpm_edu.training.config import config_from_dict

    net = build_model(config_from_dict(state["config"])).eval()
    net.load_state_dict(state[part])
    g = torch.Generator().manual_seed(0)
    xt, t = torch.randn(8, 1, 8, 8, generator=g), torch.randint(1, 51, (8,), generator=g)
    with torch.no_grad():
        return net(xt, t)


def _assert_same_run(a: dict, b: dict, atol: float = 1e-4) -> None:
    """Same step, global data order and t/eps generator (exactly); the same network to float tolerance.

    Parameters are compared with ``atol``: a bias just before a GroupNorm with one channel per group
    has a zero gradient in exact arithmetic, and Adam normalises the rounding noise that stands in for
    it into steps of up to lr, so such biases drift apart (1e-5 after 6 steps here) in a way that the
    network cannot see. Its output on a fixed batch is compared tightly.
    """
    assert a["step"] == b["step"]
    for k in ("epoch", "pos", "n"):
        assert a["data"][k] == b["data"][k], k
    for k in ("perm", "flips", "generator"):
        assert torch.equal(a["data"][k], b["data"][k]), k
    assert torch.equal(a["rng"]["generator"], b["rng"]["generator"])  # the t and eps draws
    for part in ("model", "ema"):
        for k in a[part]:
            assert torch.allclose(a[part][k], b[part][k], rtol=1e-4, atol=atol), f"{part}.{k}"
        assert torch.allclose(_eps_hat(a, part), _eps_hat(b, part), rtol=1e-4, atol=1e-5), part


@pytest.mark.multiprocess
def test_two_ranks_train_as_one_process_and_resume_across_world_sizes(tmp_path):
    """2 ranks, global batch B: step 1 is one process's step 1 on batch B; a 2-rank checkpoint at N resumes
    on 1 process to 2N like the uninterrupted 2-rank run, and a 1-process checkpoint at N resumes on 2."""
    two, one = tmp_path / "two", tmp_path / "one"
    # 1 process: 2N steps straight (its step-N checkpoint is the start of the 1 -> 2 resume below)
    T.train(_cfg(2 * N), one, samples=False)
    procs = start_ranks(cli, ["train", "-c", "digits", *sets(_train_overrides(2 * N)), "--run-dir", str(two)])
    assert wait_ranks(procs) == [0, 0]
    # step 1: two ranks on B/2 each == one process on B; a step moves the weights far more than the tolerance
    _assert_same_run(_ckpt(two, 1), _ckpt(one, 1), atol=1e-7)
    moved = max((a - b).abs().max().item() for a, b in zip(_ckpt(two, 1)["model"].values(), _ckpt(two, 2)["model"].values()))
    assert moved > 1e-4
    # 2 -> 1: resume the 2-rank checkpoint at N in one process, up to 2N
    resume = f"train.resume={ck.checkpoint_path(two / 'checkpoints', N)}"
    r = T.train(_cfg(2 * N, resume), tmp_path / "two-one", samples=False)
    assert r.step == 2 * N
    _assert_same_run(_ckpt(tmp_path / "two-one", 2 * N), _ckpt(two, 2 * N))
    # 1 -> 2: resume the 1-process checkpoint at N on two ranks, up to 2N
    resume = f"train.resume={ck.checkpoint_path(one / 'checkpoints', N)}"
    procs = start_ranks(cli, ["train", "-c", "digits", *sets(_train_overrides(2 * N, resume)),
                              "--run-dir", str(tmp_path / "one-two")])
    assert wait_ranks(procs) == [0, 0]
    _assert_same_run(_ckpt(tmp_path / "one-two", 2 * N), _ckpt(one, 2 * N))
    logged = [json.loads(line)["step"] for line in (two / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 2 * N + 1))  # rank 0 alone writes the log: one line per step


@pytest.mark.multiprocess
def test_two_ranks_drop_the_labels_that_one_process_drops(tmp_path):
    """With labels and label dropout (chapter 10), 2 ranks on B/2 each still take one process's steps on B: each
    rank keeps its rows of the one global draw of label coins, as it does with t and eps."""
    labelled = ("data.labels=true", "train.p_uncond=0.5")
    T.train(_cfg(2, *labelled), tmp_path / "one", samples=False)
    procs = start_ranks(cli, ["train", "-c", "digits", *sets(_train_overrides(2, *labelled)), "--run-dir",
                              str(tmp_path / "two")])
    assert wait_ranks(procs) == [0, 0]
    _assert_same_run(_ckpt(tmp_path / "two", 1), _ckpt(tmp_path / "one", 1), atol=1e-7)
    _assert_same_run(_ckpt(tmp_path / "two", 2), _ckpt(tmp_path / "one", 2))  # Adam's rounding noise: see above
    assert "label_emb.weight" in _ckpt(tmp_path / "two", 2)["model"]


def _cfg(steps: int, *extra: str):
    from ddpm_edu.training.config import load_config

    return load_config("digits", _train_overrides(steps, *extra))


def _count_allreduces(out: str) -> None:
    """A rank: the gradient all-reduces (DDP buckets) of one step with train.accumulate = 1 and = 2, to rank<r>.json."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    counts = {}
    with initialized() as world:
        for k in (1, 2):
            tr = T.Trainer(_cfg(1, f"train.accumulate={k}"), Path(out) / f"k{k}", samples=False, world=world)
            tr.setup()
            calls: list[int] = []
            tr.ddp.register_comm_hook(None, lambda group, bucket: calls.append(1) or allreduce_hook(group, bucket))
            tr.train_step(1)
            tr.log.close()
            counts[k] = len(calls)
    (Path(out) / f"rank{world.rank}.json").write_text(json.dumps(counts))


@pytest.mark.multiprocess
def test_two_ranks_accumulating_micro_batches_train_as_one_process_on_the_whole_batch(tmp_path):
    """train.accumulate = 2 on 2 ranks (4 rows per micro-batch) is one process's step on the batch of 16,
    and the gradients cross between the ranks once per step, not once per micro-batch (DDP's no_sync)."""
    one, two = tmp_path / "one", tmp_path / "two"
    T.train(_cfg(2), one, samples=False)
    procs = start_ranks(cli, ["train", "-c", "digits", *sets(_train_overrides(2, "train.accumulate=2")),
                              "--run-dir", str(two)])
    assert wait_ranks(procs) == [0, 0]
    _assert_same_run(_ckpt(two, 1), _ckpt(one, 1), atol=1e-7)
    _assert_same_run(_ckpt(two, 2), _ckpt(one, 2))
    assert run_ranks(_count_allreduces, str(tmp_path)) == [0, 0]
    counts = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert counts[0] == counts[1] and counts[0]["1"] == counts[0]["2"] > 0, counts


def _poisoned_cli(bad_rank: int, bad_step: int, argv: list[str]) -> int:
    """The command line in a rank whose loss becomes NaN at ``bad_step`` on rank ``bad_rank`` only."""
    if int(os.environ["RANK"]) == bad_rank:
        real, calls = T.l_simple, []

        def poisoned(*a, **k):
            calls.append(1)
            loss = real(*a, **k)
            return loss * float("nan") if len(calls) == bad_step else loss

        T.l_simple = poisoned
    return main(argv)


@pytest.mark.multiprocess
def test_a_non_finite_loss_on_one_rank_stops_every_rank_at_the_same_step(tmp_path, capfd):
    run = tmp_path / "run"
    argv = ["train", "-c", "digits", *sets(_train_overrides(6, "train.log_every=100", "train.ckpt_every=2")),
            "--run-dir", str(run)]
    assert run_ranks(_poisoned_cli, 1, 3, argv) == [1, 1]
    err = capfd.readouterr().err
    assert err.count("stopped: The loss became nan at step 3") == 2, err  # both ranks name rank 1's loss
    assert [p.name for p in ck.list_checkpoints(run / "checkpoints")] == ["step_00000002.pt"]


@pytest.mark.multiprocess
def test_a_batch_that_does_not_split_is_refused_by_every_rank(tmp_path, capfd):
    argv = ["train", "-c", "digits", *sets(_train_overrides(2, "data.batch_size=15")), "--run-dir", str(tmp_path / "r")]
    assert run_ranks(cli, argv) == [2, 2]
    assert capfd.readouterr().err.count("must split evenly over the 2 processes") == 2
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- faults
@pytest.mark.multiprocess
def test_a_killed_rank_ends_the_job_and_leaves_a_loadable_checkpoint(tmp_path):
    """SIGKILL one rank mid-run: the other fails within seconds (gloo sees its peer gone), never hangs,
    and the newest checkpoint is complete (torchrun would stop the other rank too)."""
    run = tmp_path / "run"
    argv = ["train", "-c", "digits", *sets(_train_overrides(100_000, "train.ckpt_every=2", "train.keep_last=2")),
            "--run-dir", str(run)]
    procs = start_ranks(cli, argv)
    deadline = time.monotonic() + TIMEOUT_S
    while len(ck.list_checkpoints(run / "checkpoints")) < 2:
        assert all(p.is_alive() for p in procs) and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(procs[1].pid, signal.SIGKILL)
    t0 = time.monotonic()
    codes = wait_ranks(procs, timeout=60)
    assert codes[1] == -signal.SIGKILL and codes[0] != 0
    assert time.monotonic() - t0 < 60
    s = ck.load_checkpoint(ck.latest_checkpoint(run / "checkpoints"))
    assert s["step"] >= 4 and s["step"] % 2 == 0


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc/N/stat; ones that end meanwhile are skipped)."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(d.name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def _rank_of(pid: int) -> int | None:
    try:
        env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
    except OSError:
        return None
    return int(env["RANK"]) if "RANK" in env else None


@pytest.mark.multiprocess
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds torchrun's workers through /proc (Linux)")
def test_sigterm_to_one_rank_under_torchrun_stops_the_job_with_a_checkpoint(tmp_path):
    """The real thing: torchrun -m ddpm_edu train (toy2d) on 2 CPU processes; SIGTERM to rank 1 alone. Every
    rank stops at the same step, rank 0 writes the checkpoint, the job ends, and the run resumes in one process."""
    run = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    toy = ["train.steps=100000", "train.log_every=1", "train.ckpt_every=0", "train.progress=false", "model.hidden=32",
           "data.toy_n=512", "data.batch_size=32"]
    cmd = [str(torchrun), "--nproc_per_node=2", f"--master-port={free_port()}", "-m", "ddpm_edu", "train", "-c",
           "toy2d", *sets(toy), "--run-dir", str(run)]
    env = {**subprocess_env(tmp_path), "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                                                  os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, metrics = time.monotonic() + TIMEOUT_S, run / "metrics.jsonl"
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):  # training for real
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.1)
        while not (rank1 := [c for c in _children(proc.pid) if _rank_of(c) == 1]):
            assert time.monotonic() < deadline, [(c, _rank_of(c)) for c in _children(proc.pid)]
            time.sleep(0.1)
        assert len(rank1) == 1
        os.kill(rank1[0], signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        for pid in _children(proc.pid):  # on a failure, leave no worker behind
            os.kill(pid, signal.SIGKILL)
        proc.kill()
    assert proc.returncode != 0  # torchrun reports the workers' status, 128 + 15, as a failure
    assert "ddpm-edu train: stopped by SIGTERM" in err, err[-3000:]
    assert "ddpm_edu" not in err.split("stopped by SIGTERM")[1].split("ChildFailedError")[0]  # no worker traceback
    s = ck.load_checkpoint(ck.latest_checkpoint(run / "checkpoints"))
    assert 3 <= s["step"] < 100_000
    from ddpm_edu.training.config import load_config

    cfg = load_config("toy2d", [*toy[1:], f"train.steps={s['step'] + 1}"])
    assert T.train(cfg, run, samples=False).step == s["step"] + 1


# --------------------------------------------------------------------------- sharded sampling
def _sampling_cli(out_json: str, argv: list[str]) -> int:
    """The command line in a rank, recording which sample files this rank wrote."""
    from ddpm_edu.training import generate

    real = generate.write_sample_files

    def recorded(*a, **k):
        mine = real(*a, **k)
        Path(out_json, f"{os.environ['RANK']}.json").write_text(json.dumps(mine))
        return mine

    generate.write_sample_files = recorded
    return main(argv)


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


@pytest.mark.multiprocess
def test_two_ranks_write_disjoint_complete_sample_files_and_a_rerun_fills_the_gaps(tmp_path, capsys):
    weights = T.train(_cfg(1), tmp_path / "run", samples=False).run_dir / "ema.safetensors"
    out, log = tmp_path / "fid", tmp_path / "log"
    log.mkdir()
    argv = ["sample", "--checkpoint", str(weights), "--sampler", "ddim", "--steps", "3", "--num-samples", "10",
            "--batch-size", "3", "--format", "npz", "--out", str(out)]

    assert run_ranks(_sampling_cli, str(log), argv) == [0, 0]
    mine = [set(json.loads((log / f"{r}.json").read_text())) for r in (0, 1)]
    assert mine[0] and mine[1] and not mine[0] & mine[1] and mine[0] | mine[1] == set(range(10))
    first = _files(out)
    assert list(first) == [f"{i:06d}.png" for i in range(10)]
    import imageio.v3 as iio
    import numpy as np

    arr = np.load(out / "samples.npz")["arr_0"]
    assert arr.shape == (10, 8, 8, 1) and arr.dtype == np.uint8
    assert all(np.array_equal(arr[i, ..., 0], iio.imread(out / f"{i:06d}.png")) for i in range(10))

    assert main([*argv[:-1], str(tmp_path / "one")]) == 0  # one process draws the same samples
    assert _files(tmp_path / "one") == first

    gone = [1, 4, 9]
    for i in gone:
        (out / f"{i:06d}.png").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert run_ranks(_sampling_cli, str(log), argv) == [0, 0]
    again = [set(json.loads((log / f"{r}.json").read_text())) for r in (0, 1)]
    assert again[0] | again[1] == set(gone) and not again[0] & again[1]  # exactly the missing ones
    assert _files(out) == first  # the same images as before
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept  # the others untouched

    capsys.readouterr()
    assert main([*argv, "--seed", "7"]) == 2  # other settings are not mixed into the folder
    assert "other settings (seed differ" in capsys.readouterr().err


@pytest.mark.multiprocess
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (NCCL)")
def test_torchrun_on_two_gpus_trains_and_resumes_on_one(tmp_path):
    run = tmp_path / "run"
    toy = ["train.device=cuda", "train.log_every=5", "train.ckpt_every=10", "train.progress=false", "data.batch_size=64"]
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node=2", f"--master-port={free_port()}",
           "-m", "ddpm_edu", "train", "-c", "toy2d", *sets([*toy, "train.steps=20"]), "--run-dir", str(run)]
    r = subprocess.run(cmd, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, r.stderr[-3000:]
    from ddpm_edu.training.config import load_config

    assert T.train(load_config("toy2d", [*toy, "train.steps=30"]), run, samples=False).step == 30
