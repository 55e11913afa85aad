"""Where the project's data lives: style presets, drum maps and the trained checkpoint.

In a checkout they are the top-level folders ``styles/``, ``drum_maps/`` and ``checkpoints/``.
After ``pip install .`` the same folders are installed inside the package as ``drumgen/data/*``
(copied there at build time), so the ``drumgen`` command works from any directory.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
INSTALLED_DATA = PACKAGE_DIR / "data"

STYLES_DIR_ENV = "DRUMGEN_STYLES_DIR"
CHECKPOINT_ENV = "DRUMGEN_CHECKPOINT"
CHECKPOINT_NAME = "drumgen.pt"


def data_dir(name: str) -> Path:
    """The folder ``name`` (``"styles"``, ``"drum_maps"``, ``"checkpoints"``): the checkout's when this
    package runs from one, else the copy installed inside the package."""
    checkout = REPO_ROOT / name
    if checkout.is_dir() and (REPO_ROOT / "pyproject.toml").is_file():
        return checkout
    return INSTALLED_DATA / name


STYLES_DIR = data_dir("styles")
DRUM_MAPS_DIR = data_dir("drum_maps")
CHECKPOINTS_DIR = data_dir("checkpoints")
DEFAULT_CHECKPOINT = CHECKPOINTS_DIR / CHECKPOINT_NAME
