"""Audio rendering with real FluidSynth: length, loudness, every kit, both SoundFonts, files, caching."""

from __future__ import annotations

import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

try:  # pytest.importorskip does not catch the OSError a missing libfluidsynth can raise
    import fluidsynth  # noqa: F401
except (ImportError, OSError) as exc:
    pytest.skip(f"libfluidsynth / pyfluidsynth cannot be loaded ({exc}); audio tests skipped",
                allow_module_level=True)

import soundfile

from drumgen import audio
from drumgen.audio import (
    DEFAULT_TAIL,
    KIT_PROGRAMS,
    SOUNDFONT_ENV,
    AudioUnavailableError,
    audio_available,
    find_soundfont,
    kit_program,
    load_count,
    render_audio,
    render_to_file,
    rendered_length,
    write_audio,
)
from drumgen.pattern import Note, Pattern

MIN_RMS = 1e-3  # a drum bar rendered at normal velocities is far louder than this
BUNDLED = audio.bundled_soundfont()
NO_FLUIDR3 = f"{audio.SYSTEM_SOUNDFONT} not installed (Debian: fluid-soundfont-gm)"
SOUNDFONTS = [
    pytest.param(BUNDLED, id="TimGM6mb",
                 marks=pytest.mark.skipif(BUNDLED is None, reason="pretty_midi's TimGM6mb.sf2 not found")),
    pytest.param(audio.SYSTEM_SOUNDFONT, id="FluidR3_GM",
                 marks=pytest.mark.skipif(not audio.SYSTEM_SOUNDFONT.is_file(),
                                          reason=NO_FLUIDR3)),
]


def one_bar(tempo: float = 120.0) -> Pattern:
    """Kick, snare, 8th hats, a ghost note and a crash: one 4/4 bar."""
    notes = [Note(i * 240, 42, 70 + 10 * (i % 2 == 0)) for i in range(8)]
    notes += [Note(0, 36, 110), Note(960, 36, 100), Note(480, 38, 115), Note(1440, 38, 115),
              Note(1320, 38, 30), Note(0, 49, 100)]
    return Pattern(notes=sorted(notes), tempo=tempo, bars=1).validate()


def rms(waveform: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))


@pytest.fixture(scope="module")
def soundfont() -> Path:
    return BUNDLED if BUNDLED is not None else find_soundfont()


@pytest.mark.parametrize("kit", list(KIT_PROGRAMS))
@pytest.mark.parametrize("font", SOUNDFONTS)
def test_every_kit_renders_non_silent(font: Path, kit: str) -> None:
    pattern = one_bar()
    waveform = render_audio(pattern, kit=kit, soundfont=font)
    assert waveform.dtype == np.float32
    assert waveform.shape == (rendered_length(pattern, 44100, DEFAULT_TAIL), 2)
    assert rms(waveform) > MIN_RMS
    assert np.abs(waveform).max() <= 1.0


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000], ids=lambda r: f"{r}Hz")
def test_length_is_duration_plus_tail(soundfont: Path, sample_rate: int) -> None:
    pattern = one_bar(tempo=97.0)
    waveform = render_audio(pattern, sample_rate=sample_rate, soundfont=soundfont)
    assert len(waveform) == round((pattern.duration_seconds + DEFAULT_TAIL) * sample_rate)
    assert rms(waveform) > MIN_RMS
    short = render_audio(pattern, sample_rate=sample_rate, soundfont=soundfont, tail_seconds=0.0)
    assert len(short) == round(pattern.duration_seconds * sample_rate)


def test_tail_rings_out_and_nothing_leaks_into_the_next_render(soundfont: Path) -> None:
    late_crash = Pattern(notes=[Note(1800, 49, 127), Note(1820, 36, 127)], bars=1)
    waveform = render_audio(late_crash, soundfont=soundfont)
    tail = waveform[round(late_crash.duration_seconds * 44100):]
    assert rms(tail) > MIN_RMS  # the crash keeps sounding after the last bar line
    silent = render_audio(Pattern(bars=1), soundfont=soundfont)
    assert not np.any(silent)


def test_soundfont_loaded_once_and_synth_reused(soundfont: Path) -> None:
    audio.clear_synth_cache()
    before = load_count()
    first = render_audio(one_bar(), soundfont=soundfont)
    handle = audio._get_synth(soundfont, 44100)
    second = render_audio(one_bar(), kit="jazz", soundfont=soundfont)
    assert load_count() == before + 1
    assert audio._get_synth(soundfont, 44100) is handle
    assert first.shape == second.shape
    render_audio(one_bar(), sample_rate=22050, soundfont=soundfont)  # another rate: its own synth
    assert load_count() == before + 2


def test_concurrent_renders(soundfont: Path) -> None:
    pattern = one_bar()
    kits = ["standard", "tr808", "brush", "room"] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda kit: render_audio(pattern, kit=kit, soundfont=soundfont), kits))
    for waveform in results:
        assert waveform.shape == (rendered_length(pattern), 2)
        assert rms(waveform) > MIN_RMS


@pytest.mark.parametrize("ext", ["wav", "ogg"])
def test_write_and_read_back(tmp_path: Path, soundfont: Path, ext: str) -> None:
    pattern = one_bar()
    waveform = render_audio(pattern, soundfont=soundfont, sample_rate=22050)
    path = write_audio(waveform, tmp_path / "out" / f"groove.{ext}", 22050)
    data, rate = soundfile.read(path, dtype="float32")
    info = soundfile.info(path)
    assert rate == 22050
    assert data.shape == waveform.shape
    if ext == "wav":
        assert info.subtype == "PCM_16"
        np.testing.assert_allclose(data, waveform, atol=2 / 32768)
    else:
        assert info.format == "OGG" and info.subtype == "VORBIS"
        assert rms(data) == pytest.approx(rms(waveform), rel=0.1)


def test_render_to_file_and_explicit_format(tmp_path: Path, soundfont: Path) -> None:
    path = render_to_file(one_bar(), tmp_path / "a.wav", kit="tr808", sample_rate=22050, soundfont=soundfont)
    assert soundfile.info(path).frames == rendered_length(one_bar(), 22050)
    odd = write_audio(np.zeros((100, 2), np.float32), tmp_path / "noext", 22050, format="ogg")
    assert soundfile.info(odd).format == "OGG"
    with pytest.raises(ValueError, match="unsupported audio format"):
        write_audio(np.zeros((100, 2), np.float32), tmp_path / "a.mp3", 22050)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"sample_rate": 7999}, "sample_rate", id="rate-low"),
        pytest.param({"sample_rate": 96001}, "sample_rate", id="rate-high"),
        pytest.param({"sample_rate": 44100.5}, "sample_rate", id="rate-fraction"),
        pytest.param({"sample_rate": 16000}, "22050, 32000, 44100, 48000", id="rate-not-offered"),
        pytest.param({"kit": "cowbell"}, "standard, room", id="kit-unknown"),
        pytest.param({"kit": 128}, "0-127", id="kit-number"),
        pytest.param({"tail_seconds": -1.0}, "tail_seconds", id="tail-negative"),
    ],
)
def test_bad_arguments(soundfont: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_audio(one_bar(), soundfont=soundfont, **kwargs)


@pytest.mark.parametrize(
    ("kit", "program"),
    [("standard", 0), ("Room", 8), ("TR-808", 25), ("tr808", 25), ("brush", 40), ("orchestra", 48), (32, 32)],
    ids=str,
)
def test_kit_program(kit: str | int, program: int) -> None:
    assert kit_program(kit) == program


def test_kit_missing_from_soundfont_falls_back_to_standard(soundfont: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    waveform = render_audio(one_bar(), kit=99, soundfont=soundfont)
    assert rms(waveform) > MIN_RMS
    assert "using the standard kit" in caplog.text


def test_soundfont_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, soundfont: Path) -> None:
    monkeypatch.setenv(SOUNDFONT_ENV, str(tmp_path / "missing.sf2"))
    with pytest.raises(FileNotFoundError, match=SOUNDFONT_ENV):
        find_soundfont()
    with pytest.raises(FileNotFoundError, match=SOUNDFONT_ENV):
        render_audio(one_bar())
    monkeypatch.setenv(SOUNDFONT_ENV, str(soundfont))
    assert find_soundfont() == soundfont
    with pytest.raises(FileNotFoundError, match="does not exist"):
        render_audio(one_bar(), soundfont=tmp_path / "nope.sf2")


def test_soundfont_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(SOUNDFONT_ENV, raising=False)
    if audio.SYSTEM_SOUNDFONT.is_file():
        assert find_soundfont() == audio.SYSTEM_SOUNDFONT
    monkeypatch.setattr(audio, "SYSTEM_SOUNDFONT", tmp_path / "absent.sf2")
    if BUNDLED is None:
        pytest.skip("pretty_midi's TimGM6mb.sf2 not found")
    assert find_soundfont() == BUNDLED
    assert BUNDLED.name == "TimGM6mb.sf2"


def test_missing_libfluidsynth_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # makes `import fluidsynth` raise ImportError
    assert not audio_available()
    with pytest.raises(AudioUnavailableError) as info:
        render_audio(one_bar())
    message = str(info.value)
    assert "libfluidsynth" in message
    assert "apt-get install libfluidsynth3" in message
    assert "brew install fluid-synth" in message
    assert "pip install pyfluidsynth" in message
    assert isinstance(info.value, RuntimeError)


def test_int16_fallback_writer_scales_to_unit_range() -> None:
    write = audio._float_writer(types.SimpleNamespace())  # a fluidsynth without cfunc

    class FakeSynth:
        def get_samples(self, n: int) -> np.ndarray:
            return np.tile(np.array([-32768, 16384], dtype=np.int16), n)

    out = np.zeros((5, 2), np.float32)
    write(FakeSynth(), out)
    assert np.all(out == np.array([-1.0, 0.5], np.float32))
