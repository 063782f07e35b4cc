"""The presets shipped with the package: one YAML file per preset in this folder (no torch needed to list them)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_DIR", "preset_names"]

CONFIG_DIR = Path(__file__).parent


def preset_names() -> list[str]:
    """The preset names: the file names in ddpm_edu/training/configs/ without .yml."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yml"))
