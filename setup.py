"""Build hook: puts the checkout's data folders inside the package, where :mod:`drumgen.resources`
looks for them after ``pip install .``: ``styles/``, ``drum_maps/`` (when present) and ``checkpoints/``
become ``drumgen/data/<name>/`` in the wheel. Everything else is declared in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("styles", "drum_maps", "checkpoints")
REQUIRED = ("styles", "checkpoints")  # drum_maps/ is optional


def _data_files(folder: Path) -> list[Path]:
    """The folder's files, without hidden files and Python caches."""
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts))


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install runs from the checkout, which has the folders
            return
        target = Path(self.build_lib) / "drumgen" / "data"
        shutil.rmtree(target, ignore_errors=True)  # no stale files from an earlier build
        for name in DATA_FOLDERS:
            src = ROOT / name
            if not src.is_dir():
                if name in REQUIRED:
                    raise FileNotFoundError(f"cannot build drumgen: data folder {src} is missing")
                continue
            for f in _data_files(src):
                dest = target / name / f.relative_to(src)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest)


setup(cmdclass={"build_py": BuildWithData})
