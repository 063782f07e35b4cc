"""Give a fresh venv the packages that Colab preinstalls, from this environment, without copying them.

Colab's runtime comes with torch, torchvision and the scientific Python stack (numpy, scipy, scikit-learn,
matplotlib, pillow, pyyaml, tqdm, pydantic, ipywidgets, ipykernel, imageio, safetensors); a chapter's install
cell then installs ddpm_edu and whatever else it needs (anywidget, onnx, ...). ``make colab`` imitates that: it makes a fresh venv, runs this script with the
project's Python, and only then installs the package. The script links those and every
distribution they depend on (the CUDA wheels, ...), as found in the running environment,
into ``VENV/colab-preinstalled/`` and names that folder in a ``.pth`` file of the venv. pip in the venv
then sees them as installed, and installs everything else the package declares from the index, so a
dependency missing from ``pyproject.toml`` still fails the check. Linking saves installing (and, on a
machine whose package index sends no cache headers, downloading) about 3 GB of wheels per run.

    .venv/bin/python tools/colab_preinstalled.py _build/colab/venv
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

# What Colab's runtime has before the install cell runs (of what ddpm_edu and the check need).
PREINSTALLED = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "matplotlib", "pillow", "pyyaml", "tqdm",
                "pydantic", "ipywidgets", "ipykernel", "imageio", "safetensors")


def closure(names: tuple[str, ...]) -> list[metadata.Distribution]:
    """The distributions ``names`` and everything they require (extras and unmet markers left out)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        key = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if key in seen:
            continue
        dist = metadata.distribution(key)
        seen[key] = dist
        for req in dist.requires or []:
            name, _, marker = req.partition(";")
            if "extra" in marker or (marker.strip() and not _marker_ok(marker)):
                continue
            todo.append(re.split(r"[\s<>=!~\[(]", name.strip(), maxsplit=1)[0])
    return list(seen.values())


def _marker_ok(marker: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate()


def top_level(dist: metadata.Distribution) -> set[Path]:
    """The entries a distribution puts directly into site-packages (packages, modules, its dist-info)."""
    site = Path(dist.locate_file(""))
    out = set()
    for f in dist.files or []:
        parts = Path(f).parts
        if parts and parts[0] != ".." and not parts[0].endswith(".pth"):
            out.add(site / parts[0])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("venv", type=Path, help="the fresh venv")
    args = ap.parse_args(argv)
    site = next(args.venv.glob("lib/python*/site-packages"), None)
    if site is None:
        print(f"error: {args.venv} is not a venv (no lib/python*/site-packages)", file=sys.stderr)
        return 2
    shelf = (args.venv / "colab-preinstalled").resolve()
    shelf.mkdir(exist_ok=True)
    dists = closure(PREINSTALLED)
    for entry in sorted(set().union(*(top_level(d) for d in dists))):
        link = shelf / entry.name
        if not link.exists() and entry.exists():
            link.symlink_to(entry)
    (site / "colab_preinstalled.pth").write_text(f"{shelf}\n")
    print(f"colab: linked {len(dists)} preinstalled distributions into {shelf}: "
          + ", ".join(sorted(d.metadata["Name"] for d in dists)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
