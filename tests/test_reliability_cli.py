"""Bad input through the CLI door: ``python -m drumgen generate``. A bad value exits non-zero with one
line ``error: ...`` naming the field (no traceback); boundary values write grooves of the asked
length; a path as a style never touches the file system; output names are sanitized.

Every case runs through :func:`drumgen.cli.main` (the entry point, in this process: fast), and the
cases in ``SUBPROCESS`` (one per kind of failure, plus good ones) also as a real
``python -m drumgen`` subprocess, a few at a time; the tests check the outcomes of both.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, use_checkpoint

from drumgen.constants import MAX_SEED
from drumgen.midi_io import midi_to_pattern

TIMEOUT_S = 120  # a hung command fails the test
WORKERS = 3
SUBPROCESS = {"bars-2.5", "tempo-nan", "style-path", "seed-2^63", "audio_format-mp3", "with-audio",
              "seed-2^63-1-two-variations"}
SAFE_NAME = re.compile(r"^[a-z0-9_]+\.(mid|ogg|wav)$")

BAD = [  # (id, arguments, the field the one-line error must name: a regex, as the limits or argparse spell it)
    ("bars-0", ["--bars", "0"], "bars"),
    ("bars-33", ["--bars", "33"], "bars"),
    ("bars-2.5", ["--bars", "2.5"], "bars"),
    ("bars-text", ["--bars", "four"], "bars"),
    ("tempo-39", ["--tempo", "39"], "tempo"),
    ("tempo-nan", ["--tempo", "nan"], "tempo"),
    ("tempo-inf", ["--tempo", "inf"], "tempo"),
    ("tempo-text", ["--tempo", "fast"], "tempo"),
    ("style-empty", ["--style", ""], "style"),
    ("style-unknown", ["--style", "no_such_style"], "style"),
    ("style-path", ["--style", "../../etc/passwd"], "style"),
    ("seed-negative", ["--seed", "-1"], "seed"),
    ("seed-2^63", ["--seed", str(2**63)], "seed"),
    ("seed-1.5", ["--seed", "1.5"], "seed"),
    ("temperature-negative", ["--temperature", "-1"], "temperature"),
    ("temperature-nan", ["--temperature", "nan"], "temperature"),
    ("top_k-negative", ["--top-k", "-1"], "top[_-]k"),
    ("top_k-huge", ["--top-k", "10001"], "top[_-]k"),
    ("top_p-1.5", ["--top-p", "1.5"], "top[_-]p"),
    ("top_p-inf", ["--top-p", "inf"], "top[_-]p"),
    ("humanize-1.5", ["--humanize", "1.5"], "humanize"),
    ("variation-1.5", ["--variation", "1.5"], "variation"),
    ("variation-negative", ["--variation", "-0.1"], "variation"),
    ("swing-90", ["--swing", "90"], "swing"),
    ("kit-path", ["--kit", "../../etc/passwd"], "kit"),
    ("fill_every-3", ["--fill-every", "3"], "fill[_-]every"),
    ("count-0", ["--count", "0"], "count"),
    ("sample_rate-100", ["--sample-rate", "100"], "sample[_-]rate"),
    ("audio_format-mp3", ["--audio-format", "mp3"], "audio-format"),
]

GOOD = [  # (id, arguments, bars, tempo or None): boundary values that must give grooves
    ("temperature-0", ["--temperature", "0"], 1, None),
    ("top_p-0", ["--top-p", "0"], 1, None),
    ("top_p-1", ["--top-p", "1"], 1, None),
    ("top_k-0", ["--top-k", "0"], 1, None),
    ("top_k-above-vocabulary", ["--top-k", "500"], 1, None),
    ("variation-0", ["--variation", "0", "--bars", "4"], 4, None),
    ("32bars-300bpm", ["--bars", "32", "--tempo", "300"], 32, 300),
    ("1bar-40bpm", ["--bars", "1", "--tempo", "40"], 1, 40),
    ("seed-2^63-1-two-variations", ["--seed", str(MAX_SEED), "--count", "2"], 1, None),
    ("with-audio", ["--audio-format", "wav", "--tempo", "120"], 1, 120),
]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    out: Path


def cli_args(args: list[str], out: Path) -> list[str]:
    base = ["--style", "funk", "--bars", "1", "--seed", "1", "--no-audio", "--out", str(out)]
    if "--audio-format" in args:
        base.remove("--no-audio")
    return ["generate", *base, *args]


def run_subprocess(args: list[str], out: Path, env: dict[str, str]) -> Outcome:
    proc = subprocess.run([sys.executable, "-m", "drumgen", *cli_args(args, out)], cwd=out.parent, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, out)


def run_main(args: list[str], out: Path) -> Outcome:
    from drumgen.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(cli_args(args, out))
        except SystemExit as exc:  # argparse
            code = exc.code
    return Outcome(code, stdout.getvalue(), stderr.getvalue(), out)


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case's outcome, by ``"<id>-main"`` and (for ``SUBPROCESS``) ``"<id>-subprocess"``; each case
    writes into its own folder."""
    cases = {i: a for i, a, _ in BAD} | {i: a for i, a, _, _ in GOOD}
    root = tmp_path_factory.mktemp("cli")
    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for i in cases:
            for door in ("main", "subprocess"):
                (root / f"{i}-{door}").mkdir()
        with ThreadPoolExecutor(WORKERS) as pool:
            futures = {f"{i}-subprocess": pool.submit(run_subprocess, cases[i], root / f"{i}-subprocess" / "out", env)
                       for i in SUBPROCESS}
            results = {f"{i}-main": run_main(a, root / f"{i}-main" / "out") for i, a in cases.items()}
            return results | {k: f.result() for k, f in futures.items()}


def doors(cases: list[tuple]) -> list:
    return [pytest.param(c, door, id=f"{c[0]}-{door}") for c in cases
            for door in ("main", "subprocess") if door == "main" or c[0] in SUBPROCESS]


@pytest.mark.parametrize(("case", "door"), doors(BAD))
def test_bad_value_exits_with_one_line_naming_the_field(outcomes: dict[str, Outcome], case: tuple, door: str) -> None:
    case_id, _, field = case
    result = outcomes[f"{case_id}-{door}"]
    assert result.code != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(field, lines[0]), lines[0]
    assert result.stdout == ""
    assert not result.out.exists() or not any(result.out.iterdir())  # nothing written


@pytest.mark.parametrize(("case", "door"), doors(GOOD))
def test_boundary_value_writes_grooves(outcomes: dict[str, Outcome], case: tuple, door: str) -> None:
    case_id, args, bars, tempo = case
    result = outcomes[f"{case_id}-{door}"]
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == (2 if "--count" in args else 1)
    for line in lines:
        midi = Path(line["midi"])
        assert midi.parent == result.out and SAFE_NAME.match(midi.name)
        pattern = midi_to_pattern(midi.read_bytes())
        assert pattern.bars == bars == line["bars"] and pattern.notes
        if tempo is not None:
            assert pattern.tempo == pytest.approx(tempo, abs=0.01)
        if "--audio-format" in args:
            assert Path(line["audio"]).stat().st_size > 0 and SAFE_NAME.match(Path(line["audio"]).name)
    assert {p.name for p in result.out.iterdir()} == {Path(v).name for line in lines
                                                      for k, v in line.items() if k in ("midi", "audio")}


@pytest.mark.parametrize("door", ["main", "subprocess"])
def test_a_path_as_style_touches_no_files(outcomes: dict[str, Outcome], door: str) -> None:
    result = outcomes[f"style-path-{door}"]
    assert "unknown style '../../etc/passwd'" in result.stderr
    assert not result.out.exists()  # not even the output folder was made
