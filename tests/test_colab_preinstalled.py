"""tools/colab_preinstalled.py: a fresh venv sees torch as Colab's runtime does, and nothing else of .venv."""

from __future__ import annotations

import subprocess
import venv

import pytest
from pathlib import Path

from conftest import load_script

pytestmark = pytest.mark.multiprocess

ROOT = Path(__file__).resolve().parents[1]


def test_a_fresh_venv_gets_torch_and_its_dependencies_but_not_ddpm_edu(tmp_path):
    cp = load_script(ROOT / "tools" / "colab_preinstalled.py")
    names = {d.metadata["Name"].lower() for d in cp.closure(cp.PREINSTALLED)}
    assert {"torch", "torchvision", "numpy", "pillow", "matplotlib", "ipykernel"} <= names
    assert not {"ddpm-edu", "anywidget", "onnx"} & names  # Colab lacks these: the install cell must bring them

    venv.create(tmp_path / "venv", with_pip=False)
    assert cp.main([str(tmp_path / "venv")]) == 0
    py = tmp_path / "venv" / "bin" / "python"
    probe = ("import importlib.util as u, torch, numpy; print(torch.__file__); "
             "print(u.find_spec('ddpm_edu'), u.find_spec('anywidget'))")
    out = subprocess.run([py, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path).stdout.split("\n")
    assert out[0].startswith(str((tmp_path / "venv" / "colab-preinstalled").resolve()))
    assert out[1] == "None None"  # the package and its other dependencies are left for pip to install


def test_it_refuses_a_folder_that_is_not_a_venv(tmp_path, capsys):
    cp = load_script(ROOT / "tools" / "colab_preinstalled.py")
    assert cp.main([str(tmp_path)]) == 2
    assert "is not a venv" in capsys.readouterr().err
