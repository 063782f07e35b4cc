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


def test_sampling_dry_run_rows_are_well_formed(sampling_bench, tmp_path, monkeypatch):
    """Both parts run; the old and new loops sample from the same x_T and noise; every row is complete."""
    import statistics

    b = sampling_bench
    monkeypatch.setattr(b, "RESULTS", tmp_path / "RESULTS.md")
    rows = b.main(["--dry-run", "--base", "HEAD", "--variants", "fp32,fp32+cl", "--record"])
    loops = [r for r in rows if r["kind"] == "loops"]
    assert [(r["sampler"], r["calls"]) for r in loops] == [("DDIM eta=0", 5), ("DDPM", 10)]
    for r in loops:
        cells = _cells(r["md"])
        assert len(cells) == len(_header_cells(b.LOOPS_HEADER)) and cells[5] == "digits" and cells[9] == "HEAD"
        assert r["ratio"] == statistics.median(r["ratios"]) and min(r["ratios"]) > 0
        assert 0 <= r["diff"] < 1e-3  # HEAD's loop, run on the same x_T and noise: the same samples
    thr = [r for r in rows if r["kind"] == "throughput"]
    assert [(r["sampler"], r["variant"]) for r in thr] == [
        ("DDIM eta=0", "fp32"), ("DDIM eta=0", "fp32+cl"), ("DDPM", "fp32"), ("DDPM", "fp32+cl")]
    for r in thr:
        cells = _cells(r["md"])
        assert len(cells) == len(_header_cells(b.THROUGHPUT_HEADER)) and cells[5] == "digits" and cells[8] == "4"
        assert r["img_per_s"] == pytest.approx(4 / r["s_per_run"]) and float(cells[12]) > 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.count("| date |") == 2 and all(r["md"] in text for r in rows)


def test_sampling_old_loop_comes_from_git(sampling_bench):
    """--base loads that revision's sampling.py as a module of its own; a revision without it is named."""
    import ddpm_edu.sampling

    old = sampling_bench.base_sampling("HEAD")
    assert old is not ddpm_edu.sampling and callable(old.sample) and callable(old.ddim_sample)
    with pytest.raises(SystemExit, match="--base no-such-revision"):
        sampling_bench.base_sampling("no-such-revision")


# --------------------------------------------------------------------------- bench/digits_variants.py
@pytest.mark.multiprocess
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
