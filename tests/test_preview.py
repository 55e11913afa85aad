"""The browser preview: folding the tail into a seamless loop, loudness and peak normalization,
MP3 / Ogg encoding (size, length, determinism) on synthetic signals and real FluidSynth renders."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("pyloudnorm", reason="pyloudnorm is not installed (pip install pyloudnorm)")
try:  # pytest.importorskip does not catch the OSError a missing libfluidsynth can raise
    import fluidsynth  # noqa: F401
    HAVE_FLUIDSYNTH = True
except (ImportError, OSError):
    HAVE_FLUIDSYNTH = False

from conftest import use_checkpoint

from drumgen import preview
from drumgen.pattern import Note, Pattern
from drumgen.preview import (
    PEAK_CEILING_DBFS,
    PREVIEW_SAMPLE_RATE,
    TARGET_LUFS,
    decode_preview,
    encode_preview,
    fold_loop,
    integrated_loudness,
    loop_frames,
    make_preview,
    normalize_loudness,
    resample_loop,
    sample_peak_dbfs,
)

needs_fluidsynth = pytest.mark.skipif(not HAVE_FLUIDSYNTH, reason="libfluidsynth / pyfluidsynth cannot be loaded")
RATE = 44100
MP3_FRAME = 1152  # samples per channel in one MPEG-1 Layer III frame
LOUDNESS_TOLERANCE_LU = 1.0
MAX_DILLA_BYTES = 250_000
# styles with different kits, tempos and loudness: (style, kit) -- tr808 renders clip, rock's sit near -36 dBFS RMS
STYLES = ["j_dilla", "metro_boomin", "rock", "jazz", "punk", "afrobeat", "reggae"]


def noise_loop(seconds: float, rate: int = RATE, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """Stereo white noise at ``level`` RMS with a few loud clicks (a drum-like crest factor)."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * rate)
    out = rng.normal(0.0, level, (frames, 2)).astype(np.float32)
    out[:: rate // 2] *= 8  # a peak every half second
    return out


def decoded(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = decode_preview(data)
    assert samples.ndim == 2 and samples.shape[1] in (1, 2)  # previews are mono; encode_preview keeps what it gets
    return samples, rate


# --- fold -----------------------------------------------------------------------------------
def test_fold_has_the_loop_length_and_puts_a_tail_click_at_its_offset_from_the_start() -> None:
    loop, tail = 1000, 600
    waveform = np.zeros((loop + tail, 2), dtype=np.float32)
    waveform[100] = 0.25  # inside the loop: stays where it is
    waveform[loop + 37] = (0.5, -0.5)  # 37 frames after the loop end: lands 37 frames after the start
    out = fold_loop(waveform, loop, fade_frames=64)
    assert out.shape == (loop, 2) and out.dtype == np.float32
    assert out[37].tolist() == [0.5, -0.5]
    assert out[100].tolist() == [0.25, 0.25]
    assert np.count_nonzero(out) == 4


def test_fold_fades_the_end_of_the_tail_and_wraps_a_tail_longer_than_the_loop() -> None:
    waveform = np.ones(250, dtype=np.float32)  # mono: a 100-frame loop with a 150-frame tail
    out = fold_loop(waveform, 100, fade_frames=20)
    assert out.shape == (100,)
    # frames 0-49 get the loop, the first pass of the tail and the second (50 frames, last 20 fading)
    assert out[0] == 3.0 and out[29] == 3.0
    assert 2.0 < out[30] < 3.0 and out[49] == pytest.approx(2.0, abs=1e-6)  # the fade ends at 0
    assert np.all(out[50:] == 2.0)
    assert np.diff(out[29:50]).max() <= 0  # a monotone fade, no step
    short = fold_loop(np.ones((10, 2)), 16)  # shorter than the loop: padded
    assert short.shape == (16, 2) and short[:10].min() == 1.0 and not short[10:].any()


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_fold_refuses_a_bad_loop_length(bad: object) -> None:
    with pytest.raises(ValueError, match="loop_frames"):
        fold_loop(np.zeros((10, 2)), bad)  # type: ignore[arg-type]


@needs_fluidsynth
def test_folded_loop_is_the_second_pass_of_a_groove_played_twice() -> None:
    """Seamless: a loop that carries its own ring-out is what a second pass sounds like."""
    from drumgen.audio import render_audio

    hits = [Note(0, 36, 110), Note(480, 51, 90), Note(960, 38, 110), Note(1800, 49, 127), Note(1800, 45, 120)]
    # at 105 BPM a bar is 100800 frames, a whole number of FluidSynth's 64-frame blocks, so the
    # second pass's events land on the same block boundaries as the first's
    one = Pattern(notes=hits, tempo=105.0, bars=1)
    two = Pattern(notes=hits + [Note(n.onset + one.length_ticks, n.pitch, n.velocity) for n in hits],
                  tempo=105.0, bars=2)
    n = loop_frames(one, RATE)
    assert n % 64 == 0
    # a tail as long as the loop, unfaded: the fold is then exactly the first pass's ring-out
    folded = fold_loop(render_audio(one, tail_seconds=one.duration_seconds), n, fade_frames=0)
    second_pass = render_audio(two, tail_seconds=0.0)[n:]
    assert folded.shape == second_pass.shape
    size = np.sqrt(np.mean(second_pass**2))
    error = np.sqrt(np.mean((folded - second_pass) ** 2)) / size
    assert error < 0.01, f"the folded loop differs from the second pass by {error:.2%} RMS"  # voice ramps
    unfolded = render_audio(one, tail_seconds=0.0)  # without the fold the loop starts from silence
    assert np.sqrt(np.mean((unfolded - second_pass) ** 2)) / size > 0.05


# --- resample -------------------------------------------------------------------------------
def test_resampling_a_loop_keeps_it_periodic() -> None:
    frames = 44100  # one second holding exactly 441 cycles of 441 Hz
    t = np.arange(frames) / RATE
    loop = np.stack([np.sin(2 * np.pi * 441 * t), np.cos(2 * np.pi * 441 * t)], axis=1).astype(np.float32)
    out = resample_loop(loop, RATE, 32000)
    assert out.shape == (32000, 2)
    t32 = np.arange(32000) / 32000
    ideal = np.stack([np.sin(2 * np.pi * 441 * t32), np.cos(2 * np.pi * 441 * t32)], axis=1)
    assert np.abs(out - ideal).max() < 2e-3  # the seam (first and last frames) included
    assert len(resample_loop(loop[:470400 // 100], RATE, 32000)) == round(4704 * 320 / 441)
    assert np.array_equal(resample_loop(loop, RATE, RATE), loop)


# --- loudness -------------------------------------------------------------------------------
@pytest.mark.parametrize("level", [0.003, 0.05, 0.3], ids=["quiet", "medium", "loud"])
def test_normalize_reaches_the_target_with_peaks_under_the_ceiling(level: float) -> None:
    loop = noise_loop(4.0, level=level)
    out = normalize_loudness(loop, RATE)
    assert out.shape == loop.shape and out.dtype == np.float32
    assert integrated_loudness(out, RATE) == pytest.approx(TARGET_LUFS, abs=0.25)
    assert sample_peak_dbfs(out) <= PEAK_CEILING_DBFS + 1e-6
    custom = normalize_loudness(loop, RATE, target_lufs=-20.0, peak_dbfs=-3.0)
    assert integrated_loudness(custom, RATE) == pytest.approx(-20.0, abs=0.25)
    assert sample_peak_dbfs(custom) <= -3.0 + 1e-6


def test_the_limiter_only_touches_the_peaks() -> None:
    loop = noise_loop(4.0, level=0.1)
    out = normalize_loudness(loop, RATE).astype(np.float64)
    ratio = np.abs(out[:, 0]) / np.maximum(np.abs(loop[:, 0]), 1e-9)
    quiet = np.abs(loop[:, 0]) < 0.05
    # away from the peaks every sample gets the same gain (well inside the release time)
    phase = np.arange(len(loop)) % (RATE // 2)
    far = quiet & (phase > RATE // 10) & (phase < RATE // 2 - RATE // 100)
    assert np.ptp(ratio[far]) < 1e-3 * ratio[far].mean()


def test_silent_and_very_short_input_do_not_crash_or_blow_up() -> None:
    silent = np.zeros((RATE, 2), dtype=np.float32)
    assert not np.any(normalize_loudness(silent, RATE))
    assert integrated_loudness(silent, RATE) == -math.inf
    short = noise_loop(0.05, level=0.1)  # 50 ms: shorter than one 400 ms gating block
    out = normalize_loudness(short, RATE)
    assert integrated_loudness(out, RATE) == pytest.approx(TARGET_LUFS, abs=0.25)  # measured looped
    assert sample_peak_dbfs(out) <= PEAK_CEILING_DBFS + 1e-6
    hum = noise_loop(4.0, level=1e-4)  # about -80 LUFS: under the -70 LUFS gate, left alone
    assert np.array_equal(normalize_loudness(hum, RATE), hum)
    faint = noise_loop(4.0, level=3e-4)  # about -67 LUFS: raised by at most MAX_GAIN_DB
    assert integrated_loudness(normalize_loudness(faint, RATE), RATE) < TARGET_LUFS - 5
    with pytest.raises(ValueError, match="NaN"):
        normalize_loudness(np.full((RATE, 2), np.nan), RATE)


# --- encoding -------------------------------------------------------------------------------
def test_silent_preview_encodes_and_decodes_to_silence_of_the_right_length() -> None:
    data = make_preview(np.zeros((RATE * 3, 2), dtype=np.float32), RATE, RATE * 2)
    samples, rate = decoded(data)
    assert rate == PREVIEW_SAMPLE_RATE and len(samples) == 2 * PREVIEW_SAMPLE_RATE
    assert np.abs(samples).max() < 1e-4
    tiny = make_preview(np.zeros((10, 2), dtype=np.float32), RATE, 10)  # 10 frames: still a valid file
    assert len(decoded(tiny)[0]) <= MP3_FRAME


def test_the_encoding_is_reproducible_and_decodes() -> None:
    loop = noise_loop(2.0, rate=48000, level=0.05)
    first = encode_preview(loop, 48000)
    assert encode_preview(loop, 48000) == first
    samples, rate = decoded(first)
    assert rate == 48000 and abs(len(samples) - len(loop)) <= MP3_FRAME
    assert first[:2] == b"\xff\xfb"  # an MPEG-1 Layer III frame first: what sniffers look for


def test_encode_refuses_bad_settings() -> None:
    loop = noise_loop(0.5)
    with pytest.raises(ValueError, match="format"):
        encode_preview(loop, RATE, "flac")
    with pytest.raises(ValueError, match="Hz"):
        encode_preview(loop, 44000, "mp3")
    with pytest.raises(ValueError, match="quality"):
        encode_preview(loop, RATE, "mp3", quality=1.5)


def test_lower_quality_is_smaller() -> None:
    loop = noise_loop(2.0, level=0.05)
    assert len(encode_preview(loop, 32000, quality=0.8)) < len(encode_preview(loop, 32000, quality=0.2))


def test_preview_rate_never_upsamples() -> None:
    assert preview.preview_rate(44100) == PREVIEW_SAMPLE_RATE
    assert preview.preview_rate(22050) == 22050
    loop = noise_loop(3.0, rate=22050, level=0.05)
    samples, rate = decoded(make_preview(np.concatenate([loop, loop[:2205]]), 22050, len(loop)))
    assert rate == 22050 and len(samples) == len(loop)
    assert abs(integrated_loudness(samples, rate) - TARGET_LUFS) <= LOUDNESS_TOLERANCE_LU
    assert sample_peak_dbfs(samples) <= PEAK_CEILING_DBFS


# --- real grooves ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grooves(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """One 4-bar groove per style in ``STYLES``, at the preset's tempo and kit, with audio."""
    if not HAVE_FLUIDSYNTH:
        pytest.skip("libfluidsynth / pyfluidsynth cannot be loaded")
    from drumgen.engine import Engine
    from drumgen.request import GenerateRequest

    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        engine = Engine.load()
        made = {style: engine.generate(GenerateRequest(style=style, bars=4, seed=7))[0] for style in STYLES}
        for style, groove in made.items():
            assert groove.audio is not None, f"{style}: {groove.audio_error}"
        yield made


@pytest.mark.parametrize("style", STYLES)
def test_real_preview_loudness_peak_length_and_size(grooves: dict[str, object], style: str) -> None:
    groove = grooves[style]
    frames = loop_frames(groove.pattern, groove.sample_rate)
    data = make_preview(groove.audio, groove.sample_rate, frames)
    samples, rate = decoded(data)
    assert rate == PREVIEW_SAMPLE_RATE
    expected = round(groove.pattern.duration_seconds * rate)
    assert abs(len(samples) - expected) <= MP3_FRAME, f"{style}: {len(samples)} frames, expected {expected}"
    lufs, peak = integrated_loudness(samples, rate), sample_peak_dbfs(samples)
    assert abs(lufs - TARGET_LUFS) <= LOUDNESS_TOLERANCE_LU, f"{style}: {lufs:.2f} LUFS"
    assert peak <= PEAK_CEILING_DBFS, f"{style}: decoded peak {peak:.2f} dBFS"
    seconds = len(samples) / rate
    assert len(data) <= MAX_DILLA_BYTES * seconds / 10.7, f"{style}: {len(data)} bytes for {seconds:.1f} s"


def test_four_bar_j_dilla_preview_is_small_and_reproducible(grooves: dict[str, object]) -> None:
    groove = grooves["j_dilla"]
    assert groove.pattern.tempo == 90 and groove.pattern.bars == 4
    frames = loop_frames(groove.pattern, groove.sample_rate)
    data = make_preview(groove.audio, groove.sample_rate, frames)
    assert len(data) <= MAX_DILLA_BYTES
    assert make_preview(groove.audio.copy(), groove.sample_rate, frames) == data
