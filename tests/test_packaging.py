"""Packaging: the locks agree with the pins, and the wheel carries the code, the data folders and the
``drumgen`` command, which then works outside the checkout."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA_FOLDERS = ("styles", "drum_maps", "checkpoints")
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "requirements.txt")
_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s|\\|$)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` lines of a requirements or lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        m = _PIN_RE.match(line)
        if m:
            pins[_canonical(m[1])] = m[2]
    return pins


def _lock_entries(path: Path) -> dict[str, str]:
    """``{pin line: its text up to the next pin}`` of a pip-compile lock (a pin and its hash lines)."""
    entries: dict[str, str] = {}
    current = None
    for line in path.read_text().splitlines():
        if _PIN_RE.match(line):
            current = line
            entries[current] = ""
        elif current is not None:
            entries[current] += line + "\n"
    return entries


def _data_files(folder: Path) -> dict[str, str]:
    """``{path relative to folder: sha256}`` of the folder's files, without hidden files and caches."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            out[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# --- the locks ------------------------------------------------------------------------------------


def test_runtime_lock_has_every_pin_but_torch() -> None:
    direct = _pins(ROOT / "requirements.txt")
    locked = _pins(ROOT / "requirements.lock")
    assert "torch" in direct and "torch" not in locked, "torch is pinned in requirements.txt and installed apart"
    stale = {n: (v, locked.get(n)) for n, v in direct.items() if n != "torch" and locked.get(n) != v}
    assert not stale, f"requirements.lock disagrees with requirements.txt (run scripts/lock.sh): {stale}"


def test_dev_lock_is_the_runtime_lock_plus_the_test_tools() -> None:
    runtime = _pins(ROOT / "requirements.lock")
    dev = _pins(ROOT / "requirements-dev.lock")
    differ = {n: (v, dev.get(n)) for n, v in runtime.items() if dev.get(n) != v}
    assert not differ, f"requirements-dev.lock changes runtime versions (run scripts/lock.sh): {differ}"
    tools = {n: v for n, v in _pins(ROOT / "requirements-dev.txt").items() if dev.get(n) != v}
    assert not tools, f"requirements-dev.lock lacks these pins of requirements-dev.txt: {tools}"


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_every_locked_package_has_hashes(lock: str) -> None:
    entries = _lock_entries(ROOT / lock)
    assert len(entries) > 20
    bare = [pin for pin, rest in entries.items() if "--hash=sha256:" not in rest]
    assert not bare, f"{lock}: pins without hashes (pip --require-hashes would refuse them): {bare}"


# --- the wheel ------------------------------------------------------------------------------------


def _setuptools_problem() -> str | None:
    try:
        import setuptools
    except ImportError:
        return "setuptools is not installed (it is in requirements.lock)"
    major = int(setuptools.__version__.split(".")[0])
    return None if major >= 77 else f"setuptools {setuptools.__version__} is older than 77 (pyproject.toml's license)"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel from a copy of its sources (an in-tree build would leave build/ and
    drumgen.egg-info/ in the checkout), offline: no build isolation, the installed setuptools."""
    problem = _setuptools_problem()
    if problem:
        pytest.skip(f"cannot build the wheel: {problem}")
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    for name in ("drumgen", *DATA_FOLDERS):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
    # as gradio leaves beside a custom component's module when the app has run in the checkout
    (src / "drumgen" / "web" / "ui.pyi").write_text("class FieldSlider: ...\n")
    out = tmp_path_factory.mktemp("dist")
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          str(src), "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"pip wheel failed:\n{run.stdout}\n{run.stderr}"
    wheels = list(out.glob("drumgen-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as z:
        return {n: z.read(n) for n in z.namelist() if not n.endswith("/")}


def test_wheel_has_the_code_and_nothing_else(wheel: Path) -> None:
    files = _wheel_files(wheel)
    tops = {n.split("/")[0] for n in files}
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"  # drumgen-0.1.0.dist-info
    assert tops == {"drumgen", dist_info}, f"the wheel holds more than the package: {sorted(tops)}"
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "drumgen").rglob("*.py")}
    assert modules <= set(files), f"modules missing from the wheel: {sorted(modules - set(files))}"
    stubs = [n for n in files if n.endswith(".pyi")]
    assert not stubs, f"gradio's generated stubs went into the wheel: {stubs}"


@pytest.mark.parametrize("folder", DATA_FOLDERS)
def test_wheel_has_the_data_folders(wheel: Path, folder: str) -> None:
    files = _wheel_files(wheel)
    packaged = {n.removeprefix(f"drumgen/data/{folder}/"): hashlib.sha256(b).hexdigest()
                for n, b in files.items() if n.startswith(f"drumgen/data/{folder}/")}
    if not (ROOT / folder).is_dir():
        assert folder == "drum_maps", f"the checkout has no {folder}/"
        assert not packaged
        return
    assert packaged == _data_files(ROOT / folder), f"drumgen/data/{folder}/ in the wheel differs from {folder}/"
    assert packaged, f"{folder}/ is empty"


def test_wheel_declares_the_command_and_the_pins(wheel: Path) -> None:
    files = _wheel_files(wheel)
    dist_info = next(n.split("/")[0] for n in files if n.endswith(".dist-info/METADATA"))
    entry_points = files[f"{dist_info}/entry_points.txt"].decode()
    assert re.search(r"^\[console_scripts\]\s*\ndrumgen\s*=\s*drumgen\.cli:main\s*$", entry_points, re.M), entry_points
    metadata = files[f"{dist_info}/METADATA"].decode()
    requires = {_canonical(m[1]): m[2] for m in re.finditer(r"^Requires-Dist: (\S+)==(\S+)\s*$", metadata, re.M)}
    assert requires == _pins(ROOT / "requirements.txt")


@pytest.mark.slow
def test_installed_command_works_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """The wheel installed into a folder of its own (its dependencies are this environment's), then the
    ``drumgen`` script run from a directory outside the checkout: it must find the packaged data."""
    target = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                          str(wheel)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"pip install failed:\n{run.stdout}\n{run.stderr}"
    script = target / "bin" / "drumgen"
    assert script.is_file(), "pip did not write the drumgen console script"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRUMGEN_")}
    env["PYTHONPATH"] = str(target)
    work = tmp_path / "elsewhere"
    work.mkdir()

    where = subprocess.run([sys.executable, "-c", "import drumgen.resources as r; print(r.STYLES_DIR)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()) == target / "drumgen" / "data" / "styles"

    styles = subprocess.run([str(script), "styles"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert styles.returncode == 0, styles.stderr
    ids = {s["id"] for s in json.loads(styles.stdout)}
    assert ids == {p.stem for p in (ROOT / "styles").glob("*.toml")}

    gen = subprocess.run([str(script), "generate", "--style", "funk", "--bars", "4", "--seed", "1", "--out", "out"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    line = json.loads(gen.stdout.splitlines()[-1])
    assert (line["style"], line["bars"], line["seed"]) == ("funk", 4, 1)
    midi = work / line["midi"]
    assert midi.is_file() and midi.read_bytes()[:4] == b"MThd"
