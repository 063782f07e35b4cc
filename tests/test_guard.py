"""The non-finite guard: a bad step is skipped on the device, named at the next check, and costs no wait."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from conftest import no_host_reads
from torch import nn

from ddpm_edu.training.guard import NonFiniteError, NonFiniteGuard

CPU = torch.device("cpu")


def _parts(fp16: bool = False):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    return model, opt, NonFiniteGuard(CPU, fp16=fp16)


def _step(model, opt, guard, k: int, poison: str | None = None, clip: float | None = 1.0) -> None:
    """One training step k on a fixed batch; ``poison`` makes its loss NaN, its gradient NaN, or huge."""
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(k))
    loss = model(x).pow(2).mean()
    if poison == "loss":
        loss = loss * math.nan
    elif poison == "grad":
        loss = loss + torch.sqrt(loss * 0)  # the same finite loss; its gradient is NaN (1 / sqrt(0) * 0)
    elif poison == "huge":
        loss = loss * 1e34  # finite, but times a loss scale of 2^16 it overflows float32
    opt.zero_grad(set_to_none=True)
    guard.backward(loss)
    guard.step(opt, k, loss, guard.clip(opt, model.parameters(), clip))


def _snapshot(model, opt) -> list[torch.Tensor]:
    state = [v for st in opt.state.values() for v in st.values()]
    return [t.detach().clone() for t in [*model.parameters(), *state]]


@pytest.mark.parametrize("poison,what", [("loss", "loss became nan"), ("grad", "gradient norm became nan")])
def test_a_non_finite_step_changes_nothing_and_is_named(poison, what):
    model, opt, guard = _parts()
    for k in (1, 2):
        _step(model, opt, guard, k)
    guard.check(2, None)  # nothing to report yet
    before = _snapshot(model, opt)
    _step(model, opt, guard, 3, poison)
    after = _snapshot(model, opt)
    assert all(torch.equal(a, b) for a, b in zip(before, after))  # weights, moments and step count untouched
    _step(model, opt, guard, 4)
    assert not torch.equal(model.weight, before[0])  # a good step is applied again
    assert {int(st["step"]) for st in opt.state.values()} == {3}  # four steps, the third skipped
    with pytest.raises(NonFiniteError, match=f"{what} at step 3.*stopped at step 4.*after step 2.*step_7.pt"):
        guard.check(4, Path("step_7.pt"))


def test_the_first_bad_step_is_named():
    model, opt, guard = _parts()
    for k, poison in enumerate([None, "grad", None, "loss", "loss"], start=1):
        _step(model, opt, guard, k, poison)
    with pytest.raises(NonFiniteError, match="gradient norm became nan at step 2"):
        guard.check(5, None)


def test_merge_adopts_the_earliest_bad_step_of_each_kind():
    """One row per process: process 1 saw a bad loss at step 7, process 2 a bad loss at 5 and a bad norm at 9."""
    _, _, guard = _parts()
    steps = torch.tensor([[0, 0], [7, 0], [5, 9]])
    values = torch.tensor([[0.0, 0.0], [math.inf, 0.0], [math.nan, -math.inf]])
    guard.merge(steps, values)
    assert guard.bad_step.tolist() == [5, 9]
    assert math.isnan(guard.bad_value[0]) and guard.bad_value[1] == -math.inf
    with pytest.raises(NonFiniteError, match="loss became nan at step 5"):
        guard.check(10, None)
    clean = _parts()[2]
    clean.merge(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2))
    clean.check(10, None)  # nothing bad anywhere: no error


def test_a_scale_of_one_changes_no_number():
    """Without fp16 the guard's scaler multiplies by 1: training is bit-for-bit plain Adam."""
    model, opt, guard = _parts()
    twin = nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    twin_opt = torch.optim.Adam(twin.parameters(), lr=0.1, fused=True)
    for k in range(1, 6):
        _step(model, opt, guard, k, clip=None)
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(k))
        twin_opt.zero_grad(set_to_none=True)
        twin(x).pow(2).mean().backward()
        twin_opt.step()
    assert torch.equal(model.weight, twin.weight) and torch.equal(model.bias, twin.bias)
    assert guard.state_dict()["scale"] == 1.0


def test_fp16_overflow_is_skipped_and_only_a_bad_loss_is_an_error():
    model, opt, guard = _parts(fp16=True)
    _step(model, opt, guard, 1)
    scale = guard.state_dict()["scale"]
    before = _snapshot(model, opt)
    _step(model, opt, guard, 2, "huge")  # the scaled gradient overflows: skipped, the scale halves
    assert all(torch.equal(a, b) for a, b in zip(before, _snapshot(model, opt)))
    assert guard.state_dict()["scale"] == scale / 2
    guard.check(2, None)  # an overflow under fp16 is routine, not an error
    _step(model, opt, guard, 3, "loss")
    with pytest.raises(NonFiniteError, match="loss became nan at step 3"):
        guard.check(3, None)


def test_state_round_trip():
    model, opt, guard = _parts(fp16=True)
    for k, poison in ((1, None), (2, "huge")):
        _step(model, opt, guard, k, poison)
    other = NonFiniteGuard(CPU, fp16=True)
    other.load_state_dict(guard.state_dict())
    assert other.state_dict() == guard.state_dict()


def test_steps_read_nothing_back(monkeypatch):
    """On a GPU any read of a value waits for the device; between checks, the guard reads none."""
    model, opt, guard = _parts()
    _step(model, opt, guard, 1)  # lazy set-up (the scale tensor, optimizer state) happens here
    with monkeypatch.context() as m:
        reads = no_host_reads(m)
        for k in range(2, 6):
            _step(model, opt, guard, k, "loss" if k == 4 else None)
    assert reads == []
    with pytest.raises(NonFiniteError, match="step 4"):
        guard.check(5, None)


def test_no_private_torch_attribute_outside_two_modules():
    """torch's private names change without notice: the library may touch them in two places only, the guard
    and the schedules' device-side check of t (``torch._assert_async``, which has no public equivalent)."""
    private = re.compile(r"\btorch(?:\.[a-z]\w*)*\._[a-z]\w*|\.(?:found_inf|grad_scale|_step_supports_amp_scaling)\b")
    package = Path(__file__).resolve().parents[1] / "ddpm_edu"
    users = {str(p.relative_to(package)) for p in package.rglob("*.py") if private.search(p.read_text())}
    assert users <= {"training/guard.py", "schedules.py"}, f"private torch attributes used in {sorted(users)}"
