"""bench/train_throughput.py runs, in both modes, and its FLOP count obeys the cost of backpropagation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import load_script

pytestmark = pytest.mark.usefixtures("one_thread")

_PATH = Path(__file__).resolve().parents[1] / "bench" / "train_throughput.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(_PATH)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


@pytest.mark.parametrize("mode", [[], ["--trainer"]])
def test_a_run_prints_and_records_one_row(bench, tmp_path, monkeypatch, mode):
    results = tmp_path / "RESULTS.md"
    monkeypatch.setattr(bench, "RESULTS", results)
    row = bench.main(["--preset", "digits", "--batch", "4", "--steps", "2", "--warmup", "1", "--device", "cpu",
                      "--record", *mode])
    cells = _cells(row)
    assert len(cells) == len(_cells(bench.HEADER.splitlines()[0])) == 15
    assert cells[3] == ("digits (Trainer, 2-step window)" if mode else "digits") and cells[4] == "4"
    ms, steps_per_s = float(cells[9]), float(cells[10])
    assert ms > 0 and abs(steps_per_s - 1e3 / ms) <= 0.01 * steps_per_s + 0.01
    text = results.read_text()
    assert text.count("| date |") == 1 and text.rstrip().endswith(row)


def test_trainer_mode_refuses_the_diffusers_comparison(bench):
    with pytest.raises(SystemExit) as e:
        bench.main(["--trainer", "--compare-diffusers"])
    assert e.value.code == 2


# --------------------------------------------------------------------------- bench/sample_throughput.py
_SAMPLE_PATH = _PATH.parent / "sample_throughput.py"


@pytest.fixture(scope="module")
def sampling_bench():
    return load_script(_SAMPLE_PATH)


def _header_cells(header: str) -> list[str]:
    return _cells(header.splitlines()[0])


def test_sampling_dry_run_rows_are_well_formed_and_the_three_loops_agree(sampling_bench, tmp_path, monkeypatch):
    """ours, diffusers and the bare loop of precomputed floats compute the same x_0; every row is complete."""
    b = sampling_bench
    monkeypatch.setattr(b, "RESULTS", tmp_path / "RESULTS.md")
    rows = b.main(["--dry-run", "--record"])
    over = [r for r in rows if r["kind"] == "overhead"]
    assert [r["loop"] for r in over] == ["DDPM, 20 steps", "DDIM eta=0, 5 steps"]
    for r in over:
        cells = _cells(r["md"])
        assert len(cells) == len(_header_cells(b.OVERHEAD_HEADER)) and "-" not in cells  # diffusers ran
        assert r["agree"] and max(r["diff_ours"], r["diff_diffusers"]) <= b.TOLERANCE
        assert min(r["ours_ms"], r["diffusers_ms"], r["bare_ms"], r["ours_bare"], r["ours_diffusers"]) > 0
    thr = [r for r in rows if r["kind"] == "throughput"]
    assert [(r["sampler"], r["calls"]) for r in thr] == [("DDIM eta=0", 5), ("DDPM", 10)]
    for r in thr:
        cells = _cells(r["md"])
        assert len(cells) == len(_header_cells(b.THROUGHPUT_HEADER)) and cells[5] == "digits" and cells[8] == "4"
        assert r["img_per_s"] == pytest.approx(4 / r["s_per_run"]) and float(cells[12]) > 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.count("| date |") == 2 and all(r["md"] in text for r in rows)


def test_sampling_dry_run_without_diffusers_times_ours_against_the_bare_loop(sampling_bench):
    rows = sampling_bench.main(["--dry-run", "--no-diffusers", "--part", "overhead"])
    assert len(rows) == 2
    for r in rows:
        assert r["agree"] and r["diff_ours"] <= sampling_bench.TOLERANCE and r["diffusers_ms"] is None
        assert len(_cells(r["md"])) == len(_header_cells(sampling_bench.OVERHEAD_HEADER))


def test_sampling_agreement_check_catches_a_different_computation(sampling_bench):
    """Unclipped DDPM is not the clipped bare loop: the check must say so."""
    from ddpm_edu.sampling import sample
    from ddpm_edu.schedules import Schedule

    b, s = sampling_bench, Schedule.linear(20)
    unclipped = lambda x_T, g: sample(b.trivial_eps, x_T.shape, s, generator=g, x_T=x_T)  # noqa: E731
    x_T, cpu = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.device("cpu")
    assert b.agreement({"ours": b.ours_loops(s, 5)["ddpm"]}, (b.bare_ddpm(s), None), x_T, cpu)["ours"] <= b.TOLERANCE
    assert b.agreement({"ours": unclipped}, (b.bare_ddpm(s), None), x_T, cpu)["ours"] > b.TOLERANCE


# --------------------------------------------------------------------------- bench/digits_variants.py
def test_digits_variants_trains_each_run_in_its_own_process_and_tabulates_them(tmp_path, capsys):
    import json

    dv = load_script(_PATH.parent / "digits_variants.py")
    rc = dv.main(["--variants", "preset", "v", "--jobs", "2", "--out", str(tmp_path), "--num-samples", "8",
                  "--set", "train.steps=2", "train.warmup=1"])
    assert rc == 0
    rows = [json.loads(line) for line in (tmp_path / "variants.jsonl").read_text().splitlines()]
    assert sorted(r["variant"] for r in rows) == ["preset", "v"]
    for r in rows:
        assert r["steps"] == 2 and r["n"] == 8 and sum(r["histogram"]) == 8
        assert r["confident"] * 8 == round(r["confident"] * 8) and r["classes"] == sum(c > 0 for c in r["histogram"])
    assert next(r for r in rows if r["variant"] == "v")["overrides"] == ["diffusion.target=v"]
    table = capsys.readouterr().out
    assert table.count("| preset | 0 | 2 |") == 1 and table.count("| v | 0 | 2 |") == 1


def test_digits_variants_names_an_unknown_variant():
    dv = load_script(_PATH.parent / "digits_variants.py")
    with pytest.raises(SystemExit) as e:
        dv.main(["--variants", "preset", "nonsense"])
    assert e.value.code == 2


# --------------------------------------------------------------------------- bench/digits_classifier.py
def test_digits_classifier_candidates_include_the_librarys_own_classifier():
    """The comparison is only meaningful with metrics' own classifier as one of its rows."""
    from ddpm_edu.eval.metrics import digits_classifier

    dc = load_script(_PATH.parent / "digits_classifier.py")
    ours = digits_classifier().get_params()
    assert any(type(make()) is type(digits_classifier()) and {k: v for k, v in make().get_params().items()
                                                              if k != "max_iter"} ==
               {k: v for k, v in ours.items() if k != "max_iter"} for make in dc.CANDIDATES.values())
