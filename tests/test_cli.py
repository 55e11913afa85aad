"""The command line as a user runs it: ``python -m drumgen styles`` and ``generate``, and its error messages.

``generate`` runs against a tiny checkpoint trained in the session (conftest.py), pointed at with
``$DRUMGEN_CHECKPOINT``, and against the committed ``checkpoints/drumgen.pt`` when there is one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from drumgen.cli import main
from drumgen.midi_io import midi_to_pattern
from drumgen.model_loader import load_bundle, load_model, load_tokenizer
from drumgen.pattern import PPQ
from drumgen.resources import CHECKPOINT_ENV, REPO_ROOT, STYLES_DIR_ENV
from drumgen.styles import get_style
from drumgen.voices import GM_DRUM_CHANNEL, VOICE_PITCH

pytestmark = pytest.mark.usefixtures("torch_single_thread")

COMMITTED_CHECKPOINT = REPO_ROOT / "checkpoints" / "drumgen.pt"
NO_COMMITTED = "no committed checkpoint yet (checkpoints/drumgen.pt)"
PRODUCERS = ["j_dilla", "metro_boomin", "questlove"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CHECKPOINT_ENV, STYLES_DIR_ENV)}
    env["OMP_NUM_THREADS"] = "1"  # tiny model; keep clear of a busy CPU's thread pool
    env.update(extra)
    return env


def drumgen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drumgen", *args], cwd=REPO_ROOT, env=env or clean_env(),
                          capture_output=True, text=True, timeout=120)


# --- styles -------------------------------------------------------------------------------------
def test_styles_prints_the_presets_as_json_producers_first() -> None:
    run = drumgen("styles")
    assert run.returncode == 0, run.stderr
    styles = json.loads(run.stdout)
    assert len(styles) == 15
    assert [s["id"] for s in styles[:3]] == PRODUCERS
    assert [s["kind"] for s in styles] == ["producer"] * 3 + ["genre"] * 12
    by_id = {s["id"]: s for s in styles}
    assert by_id["j_dilla"]["name"] == "J Dilla" and by_id["j_dilla"]["humanize"]["swing"] == 62
    assert {"funk", "rock", "jazz", "hiphop", "afrocuban"} <= set(by_id)
    for s in styles:
        lo, hi = s["tempo_range"]
        assert lo <= s["default_tempo"] <= hi, s["id"]


# --- generate -----------------------------------------------------------------------------------
@pytest.fixture(params=["tiny-trained", "committed"])
def checkpoint_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for a CLI run against the session's tiny checkpoint or the committed one."""
    if request.param == "committed":
        if not COMMITTED_CHECKPOINT.is_file():
            pytest.skip(NO_COMMITTED)
        return clean_env()
    out, _ = request.getfixturevalue("tiny_checkpoint")
    return clean_env(**{CHECKPOINT_ENV: str(out / "drumgen.pt")})


GENERATE = ["generate", "--style", "funk", "--bars", "16", "--count", "3", "--seed", "1", "--no-audio"]


def test_generate_writes_loop_exact_midi_files_and_json_lines(checkpoint_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    tempo = get_style("funk").default_tempo
    first, second = tmp_path / "first", tmp_path / "second"
    run = drumgen(*GENERATE, "--out", str(first), env=checkpoint_env)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == 3
    files = sorted(first.iterdir())
    assert [f.suffix for f in files] == [".mid"] * 3, "--no-audio writes MIDI only"
    assert sorted(Path(line["midi"]) for line in lines) == files
    assert [line["seed"] for line in lines] == [1, 2, 3]
    for line in lines:
        path = Path(line["midi"])
        assert (line["style"], line["bars"], line["tempo"]) == ("funk", 16, tempo)
        pattern = midi_to_pattern(path)
        assert pattern.bars == 16 and pattern.tempo == tempo
        assert len(pattern.notes) == line["notes"] > 0
        mid = mido.MidiFile(path)
        assert mid.ticks_per_beat == PPQ
        assert mid.length == pytest.approx(16 * 4 * 60 / tempo, abs=1e-6)  # ends exactly on the 16th bar line
        tempos = [m.tempo for t in mid.tracks for m in t if m.type == "set_tempo"]
        assert tempos == [mido.bpm2tempo(tempo)]
        assert {m.channel for t in mid.tracks for m in t if m.type == "note_on"} == {GM_DRUM_CHANNEL}
    # the same command again gives the same bytes
    again = drumgen(*GENERATE, "--out", str(second), env=checkpoint_env)
    assert again.returncode == 0, again.stderr
    assert [f.name for f in sorted(second.iterdir())] == [f.name for f in files]
    for f in files:
        assert (second / f.name).read_bytes() == f.read_bytes(), f.name
    assert [{**json.loads(x), "midi": None} for x in again.stdout.splitlines()] == \
        [{**x, "midi": None} for x in lines]


# --- bad input ----------------------------------------------------------------------------------
BAD_INPUT = {
    "tempo-nan": (["--tempo", "nan"], "tempo"),
    "tempo-too-fast": (["--tempo", "900"], "tempo"),
    "bars-zero": (["--bars", "0"], "bars"),
    "bars-33": (["--bars", "33"], "bars"),
    "style-unknown": (["--style", "nope"], "style"),
    "seed-2**64": (["--seed", str(2**64)], "seed"),
    "seed-negative": (["--seed", "-1"], "seed"),
    "count-zero": (["--count", "0"], "count"),
    "top-p-2": (["--top-p", "2"], "top_p"),
    "kit-unknown": (["--kit", "cowbells"], "kit"),
    "fill-every-3": (["--fill-every", "3"], "fill_every"),
}


@pytest.mark.parametrize(("args", "field"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_error_line_naming_the_field(args: list[str], field: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "--style", "funk", "--no-audio", "--out", str(tmp_path / "out"), *args]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code != 0
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert field in err and "Traceback" not in err
    assert not (tmp_path / "out").exists(), "nothing is written for a bad request"


@pytest.mark.parametrize(("args", "field"), [BAD_INPUT["tempo-nan"], BAD_INPUT["seed-2**64"]],
                         ids=["tempo-nan", "seed-2**64"])
def test_bad_input_exit_status_in_a_real_process(args: list[str], field: str, tmp_path: Path) -> None:
    run = drumgen("generate", "--style", "funk", "--no-audio", "--out", str(tmp_path), *args)
    assert run.returncode != 0
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("problem", ["missing", "corrupt"])
def test_unusable_checkpoint_is_one_error_line(problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "drumgen.pt"
    if problem == "corrupt":
        path.write_bytes(b"\x00" * 100)
    monkeypatch.setenv(CHECKPOINT_ENV, str(path))
    load_model.cache_clear()
    load_tokenizer.cache_clear()
    code = main(["generate", "--style", "funk", "--seed", "1", "--no-audio", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert str(path) in err
    assert ("python -m drumgen train" if problem == "missing" else "corrupt") in err


# --- the committed checkpoint --------------------------------------------------------------------
def test_committed_checkpoint_plays_kick_and_snare() -> None:
    if not COMMITTED_CHECKPOINT.is_file():
        pytest.skip(NO_COMMITTED)
    model, tok, meta = load_bundle(str(COMMITTED_CHECKPOINT), device="cpu")
    assert meta["vocab_size"] == len(tok) == model.config.vocab_size
    from drumgen.generate import generate_pattern

    patterns = generate_pattern(model, tok, num_bars=4, genre="funk", tempo=100.0, seed=list(range(10)),
                                num_samples=10)
    kick, snare = VOICE_PITCH["kick"], VOICE_PITCH["snare"]
    both = 0
    for pattern in patterns:
        pattern.validate()
        assert pattern.bars == 4 and pattern.tempo == 100.0
        assert pattern.notes, "4 bars of funk without a single hit"
        pitches = {n.pitch for n in pattern.notes}
        both += kick in pitches and snare in pitches
    assert both >= 6, f"only {both} of 10 funk patterns have both kick and snare"


# --- bench --------------------------------------------------------------------------------------
def test_bench_reports_every_speed_figure_as_json() -> None:
    """``bench`` (one repeat) gives the model, request, audio and app figures a user reads in the README."""
    if not COMMITTED_CHECKPOINT.is_file():
        pytest.skip(NO_COMMITTED)
    run = subprocess.run([sys.executable, "-m", "drumgen", "bench", "--repeats", "1"], cwd=REPO_ROOT,
                         env=clean_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert set(report["generate_ms"]) == {"4_bars_x1", "4_bars_x4", "16_bars_x1", "16_bars_x4", "4_bars_x1_rock"}
    assert all(ms > 0 for ms in report["generate_ms"].values())
    assert report["decode_tokens_per_s"]["speedup"] > 1  # the KV cache beats recomputing
    assert report["api"]["request_ms"]["4_bars"] > 0 and report["api"]["app_rss_mb"] > 50
    assert 0 < report["api"]["startup_to_ready_s"] < 120


# --- bring your own MIDI ------------------------------------------------------------------------------
def upload_files(root: Path) -> dict[str, Path]:
    from upload_inputs import funk_groove, played, write_bass_file, write_groove_file

    return {"groove": write_groove_file(root / "my_funk.mid", funk_groove(4)),
            "played": write_groove_file(root / "played.mid", played(funk_groove(4), seed=2)),
            "bass": write_bass_file(root / "bass.mid", bars=4)}


MODE_RUNS = {  # mode: (input, extra arguments, bars of the result)
    "humanize": ("played", ["--quantize", "--amount", "0.8"], 4),
    "continue": ("groove", ["--bars", "2"], 6),
    "reroll": ("groove", ["--keep", "kick,snare"], 4),
    "drumify": ("bass", ["--drum-map", "ezdrummer_3", "--split-tracks"], 4),
}


@pytest.mark.parametrize("mode", MODE_RUNS)
def test_a_mode_writes_loop_exact_files_and_json_lines(checkpoint_env: dict[str, str], tmp_path: Path,
                                                       mode: str) -> None:
    """``python -m drumgen <mode> --input FILE ...``: one JSON line per file (with the reader's notices),
    loop-exact MIDI at the input's tempo, the same bytes from the same command."""
    inputs = upload_files(tmp_path)
    name, extra, bars = MODE_RUNS[mode]
    args = [mode, "--input", str(inputs[name]), "--style", "funk", "--seed", "3", "--count", "2", "--no-audio", *extra]
    run = drumgen(*args, "--out", str(tmp_path / "first"), env=checkpoint_env)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["seed"] for line in lines] == [3, 4]
    for line in lines:
        assert line["notices"] == [] and line["bars"] == bars and line["style"] == "funk"
        mid = mido.MidiFile(line["midi"])
        tempo = 92.0 if mode == "drumify" else 96.0
        # set_tempo holds whole microseconds: 92 BPM is 652174 us a beat, 1.4 us a bar off the exact tempo
        assert line["tempo"] == tempo and mid.length == pytest.approx(bars * 4 * 60 / tempo, abs=1e-5)
    if mode == "drumify":
        assert Path(lines[0]["midi"]).name == "drumify_funk_92bpm_4bars_seed3_ezdrummer_3.mid"
        assert len(mido.MidiFile(lines[0]["midi"]).tracks) > 2  # a track per kit piece
    again = drumgen(*args, "--out", str(tmp_path / "again"), env=checkpoint_env)
    assert again.returncode == 0, again.stderr
    for line in lines:
        assert (tmp_path / "again" / Path(line["midi"]).name).read_bytes() == Path(line["midi"]).read_bytes()


def test_a_mode_writes_audio_and_says_what_the_reader_did(tmp_path: Path) -> None:
    if not COMMITTED_CHECKPOINT.is_file():
        pytest.skip(NO_COMMITTED)
    import soundfile
    from bad_midi import NOTICES

    _, name, make, _, notice = next(n for n in NOTICES if n[0] == "tempo-change")
    path = tmp_path / name
    path.write_bytes(make())
    run = drumgen("humanize", "--input", str(path), "--style", "jazz", "--seed", "1", "--audio-format", "wav",
                  "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    line = json.loads(run.stdout)
    assert any(re.search(notice, n) for n in line["notices"]), line["notices"]
    data, rate = soundfile.read(line["audio"])
    assert rate == 44100 and len(data) > rate  # the groove and its ring-out


MODE_BAD_INPUT = {
    "keep-unknown": (["reroll", "--keep", "cowbell"], "keep"),
    "keep-everything": (["reroll", "--keep", "kick,snare,hat,open_hat,toms,crash,ride"], "keep"),
    "bars-0": (["continue", "--bars", "0"], "bars"),
    "bars-past-32": (["continue", "--bars", "30"], "bars"),
    "amount-2": (["humanize", "--amount", "2"], "humanize"),
    "style-unknown": (["drumify", "--style", "nope"], "style"),
    "drum-map-unknown": (["humanize", "--drum-map", "cowbell"], "drum_map"),
    "count-0": (["humanize", "--count", "0"], "count"),
    "no-input": (["humanize", "--input", ""], "only .mid or .midi"),
}


@pytest.mark.parametrize(("args", "field"), MODE_BAD_INPUT.values(), ids=MODE_BAD_INPUT.keys())
def test_a_bad_mode_option_is_one_error_line_naming_it(args: list[str], field: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    inputs = upload_files(tmp_path)
    mode, *rest = args
    argv = [mode, "--input", str(inputs["groove"]), "--style", "funk", "--no-audio", "--out", str(tmp_path / "out"),
            *rest]
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("error: ") and field in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()
