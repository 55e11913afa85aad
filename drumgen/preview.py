"""A small, seamlessly looping, loudness-matched preview of a rendered groove for the browser.

:func:`make_preview` is the one call: it folds the ring-out rendered after the last bar line
onto the start (:func:`fold_loop`), resamples to the preview rate, normalizes to one integrated
loudness with a peak ceiling (:func:`normalize_loudness`) and encodes (:func:`encode_preview`).

The format is MP3 (MPEG-1 Layer III through libsndfile's LAME encoder), VBR quality ``-V4``, at
32 kHz mono. Every current browser plays MP3 in ``<audio>``; Safari before 18.4 plays Vorbis and
Opus only inside WebM, not in an Ogg file, and its newer Ogg support has been reported to fail.
LAME writes the encoder delay and padding into its Info tag, so decoders that honour it (mpg123,
hence libsndfile; Chromium's) return exactly the loop's frames, and the bytes are a pure function
of the samples.

32 kHz rather than 44.1 kHz: at the quality used, LAME low-passes a 44.1 kHz stream at about
17 kHz anyway (a 32 kHz one at 15.3 kHz), and the smaller rate encodes about a third faster and
gives smaller files. Mono because encoding is most of a preview's time and a mono stream takes
half of it; the full-rate stereo WAV stays available for the DAW.
"""

from __future__ import annotations

import io
import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from drumgen.pattern import Pattern

log = logging.getLogger(__name__)

PREVIEW_FORMAT = "mp3"
PREVIEW_SAMPLE_RATE = 32000  # Hz; previews are never upsampled (a 22.05 kHz render stays 22.05 kHz)
PREVIEW_MONO = True  # a mono MP3 encodes in about half the time of a stereo one; the WAV download is stereo
TARGET_LUFS = -16.0  # integrated loudness, ITU-R BS.1770 (pyloudnorm)
PEAK_CEILING_DBFS = -1.0  # decoded sample peak guaranteed at or below this
MAX_ENCODES = 3  # a preview whose decoded peaks overshoot is corrected and encoded again, this often at most
OVERSHOOT_MARGIN_DB = 1.0  # first correction: a peak that decoded over the ceiling goes this much further down
FINAL_MARGIN_DB = 0.1  # later: the whole loop goes down by the largest overshoot plus this
MAX_GAIN_DB = 40.0  # never raise a near-silent signal more than this (it would only lift noise)
LOUDNESS_TOLERANCE_LU = 0.2  # the gain loop stops this close to the target
MAX_LOUDNESS_PASSES = 6
TAIL_FADE_FRAMES = 2048  # the end of the rendered tail fades out over this (46 ms at 44.1 kHz)
MIN_MEASURE_SECONDS = 3.0  # a shorter loop is measured repeated (pyloudnorm needs >= one 400 ms block)
# Limiter: linked stereo, look-ahead; gain reduction ramps in at ATTACK and recovers at RELEASE
# dB per millisecond (6 dB in 1.5 ms / in 20 ms): it shaves the attack of the loudest hits and
# lets go before the next 16th; a slower release holds the whole groove down (at 6 dB in 100 ms
# a 90 BPM hip-hop loop needed 15 dB of reduction to reach the target instead of 9).
ATTACK_DB_PER_MS = 4.0
RELEASE_DB_PER_MS = 0.3
FIXED_OGG_SERIAL = 0x64726D67  # "drmg"


@dataclass(frozen=True)
class PreviewFormat:
    """How one preview format is written by soundfile and served to a browser."""

    container: str
    subtype: str
    mime_type: str
    extension: str
    quality: float  # soundfile ``compression_level``: 0 = best / largest, 1 = smallest
    sample_rates: tuple[int, ...]  # rates the encoder accepts
    # the limiter aims this far under the ceiling: lossy coding noise lifts peaks (MP3 at -V4 on
    # these loops: median 0.7 dB, worst 2.4 dB), and a peak still over is corrected and re-encoded
    headroom_db: float


MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
FORMATS: dict[str, PreviewFormat] = {
    # quality 0.4 = LAME -V4 (VBR): about 60 kb/s on these drums, mono at 32 kHz
    "mp3": PreviewFormat("MP3", "MPEG_LAYER_III", "audio/mpeg", ".mp3", 0.4, MP3_RATES, 3.0),
}


def preview_format(fmt: str) -> PreviewFormat:
    """Return the :class:`PreviewFormat` of ``"mp3"``, ``"ogg"`` (Vorbis) or ``"opus"``; ``ValueError`` otherwise."""
    spec = FORMATS.get(str(fmt).lower().lstrip("."))
    if spec is None:
        raise ValueError(f"unknown preview format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return spec


# --- loop -----------------------------------------------------------------------------------
def loop_frames(pattern: Pattern, sample_rate: int) -> int:
    """Frames of one pass of ``pattern`` at ``sample_rate``: the render without its tail (see
    :func:`drumgen.audio.rendered_length`), i.e. where the loop wraps."""
    from drumgen.audio import rendered_length

    return rendered_length(pattern, sample_rate, tail_seconds=0.0)


def _as_frames(waveform: np.ndarray) -> np.ndarray:
    """``waveform`` as a finite float ``(n,)`` or ``(n, channels)`` array; ``ValueError`` otherwise."""
    data = np.asarray(waveform)
    if data.ndim not in (1, 2) or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"waveform must be a numeric (n,) or (n, channels) array, got shape {data.shape}")
    if data.size and not np.all(np.isfinite(data)):
        raise ValueError("waveform contains NaN or infinite samples")
    return data


def fold_loop(waveform: np.ndarray, loop_frames: int, fade_frames: int = TAIL_FADE_FRAMES) -> np.ndarray:
    """Return exactly ``loop_frames`` frames: the first pass, with everything after it (the
    ring-out rendered past the last bar line) added onto the start.

    Played in a loop, each pass then starts with the previous pass's ring-out, as it would in a
    DAW. The render stops while a cymbal may still ring, and folded onto the loop that stop
    would be a step in the middle of a bar: the last ``fade_frames`` of the tail (at most the
    whole tail) fade out on a half cosine first. A tail longer than the loop wraps more than
    once; a waveform shorter than the loop is padded with silence. The result is float32 and is
    not clipped (the sum may exceed 1).
    """
    data = _as_frames(waveform)
    if isinstance(loop_frames, bool) or int(loop_frames) != loop_frames or loop_frames < 1:
        raise ValueError(f"loop_frames must be a whole number >= 1, got {loop_frames!r}")
    n = int(loop_frames)
    out = np.zeros((n,) + data.shape[1:], dtype=np.float32)
    out[:min(n, len(data))] = data[:n]
    tail = np.array(data[n:], dtype=np.float32)
    fade = min(max(int(fade_frames), 0), len(tail))
    if fade:
        ramp = (0.5 + 0.5 * np.cos(np.pi * (np.arange(fade) + 1) / fade)).astype(np.float32)  # ends at 0
        tail[-fade:] *= ramp[:, None] if tail.ndim == 2 else ramp
    for start in range(0, len(tail), n):
        chunk = tail[start:start + n]
        out[:len(chunk)] += chunk
    return out


def resample_loop(loop: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Resample a loop to ``target_rate`` treating it as periodic, so the seam stays seamless.

    Uses ``scipy.signal.resample_poly`` on the loop padded with its own wrapped-around ends;
    the result has ``round(len(loop) * target_rate / sample_rate)`` frames.
    """
    if sample_rate == target_rate:
        return np.asarray(loop, dtype=np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(int(sample_rate), int(target_rate))
    up, down = target_rate // g, sample_rate // g
    n = len(loop)
    reach = math.ceil(10 * max(up, down) / up) + 1  # resample_poly's filter half-length, in input frames
    pad = down * math.ceil(reach / down)  # whole multiples of `down` map to whole output frames
    padded = np.take(loop, np.arange(-pad, n + pad), axis=0, mode="wrap")
    out = resample_poly(padded.astype(np.float64), up, down, axis=0)
    start = pad * up // down
    return out[start:start + round(n * up / down)].astype(np.float32)


# --- loudness -------------------------------------------------------------------------------
def integrated_loudness(waveform: np.ndarray, sample_rate: int, looped: bool = True) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770 through pyloudnorm); ``-inf`` for silence.

    A signal shorter than ``MIN_MEASURE_SECONDS`` is measured repeated (``looped``, the way the
    preview plays) or padded with silence (``looped=False``), since pyloudnorm needs at least one
    400 ms gating block.
    """
    import pyloudnorm

    data = np.asarray(waveform, dtype=np.float64)
    if len(data) == 0:
        return -math.inf
    need = math.ceil(MIN_MEASURE_SECONDS * sample_rate)
    if len(data) < need:
        if looped:
            data = np.take(data, np.arange(need), axis=0, mode="wrap")
        else:
            data = np.concatenate([data, np.zeros((need - len(data),) + data.shape[1:])])
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # log10(0) and the mean of no blocks, for silence
        value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(data))
    return value if math.isfinite(value) else -math.inf


def sample_peak_dbfs(waveform: np.ndarray) -> float:
    """Sample peak in dBFS (``-inf`` for silence)."""
    data = np.asarray(waveform)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def _over_ceiling_db(frames: np.ndarray, ceiling: float) -> np.ndarray:
    """Per frame, how many dB the louder channel is over ``ceiling`` (0 where it is not)."""
    columns = frames.reshape(len(frames), -1)
    level = np.abs(columns[:, 0]).astype(np.float64)
    for c in range(1, columns.shape[1]):  # linked channels: the louder one sets the gain
        np.maximum(level, np.abs(columns[:, c]), out=level)
    need = np.zeros(len(level))
    over = level > ceiling
    need[over] = 20 * np.log10(level[over] / ceiling)
    return need


def _reduction_db(need: np.ndarray, sample_rate: int) -> np.ndarray:
    """Gain reduction (dB, >= ``need`` everywhere) of a look-ahead limiter on the loop whose frames
    are ``need`` dB over the ceiling.

    The reduction is held and released at ``RELEASE_DB_PER_MS`` (running maximum of
    ``need[k] - (n - k) * rate``: one cumulative max) and ramped in ahead of each peak at
    ``ATTACK_DB_PER_MS`` (the same backwards): piecewise linear in dB, never less than needed.
    The loop is treated as periodic, so a downbeat's attack starts at the end of the loop and
    the last hit's release runs on into the start.
    """
    worst = float(need.max(initial=0.0))
    if worst <= 0.0:
        return np.zeros(len(need))
    per_ms = sample_rate / 1000
    release, attack = RELEASE_DB_PER_MS / per_ms, ATTACK_DB_PER_MS / per_ms  # dB per frame
    n = len(need)
    before, after = math.ceil(worst / release) + 1, math.ceil(worst / attack) + 1
    ext = np.take(need, np.arange(-before, n + after), mode="wrap")
    k = np.arange(len(ext), dtype=np.float64)
    held = np.maximum.accumulate(ext + k * release) - k * release
    ramped = np.maximum.accumulate((held - k * attack)[::-1])[::-1] + k * attack
    return ramped[before:before + n]


def _apply_reduction(frames: np.ndarray, reduction_db: np.ndarray) -> np.ndarray:
    gain = 10 ** (-reduction_db / 20)
    return frames * (gain[:, None] if frames.ndim == 2 else gain)


def _gain_and_limit(data: np.ndarray, sample_rate: int, gain_db: float, ceiling: float) -> tuple[np.ndarray, float]:
    """``data`` raised by ``gain_db`` and limited to ``ceiling``; also the largest reduction (dB)."""
    raised = data * 10 ** (gain_db / 20)
    reduction = _reduction_db(_over_ceiling_db(raised, ceiling), sample_rate)
    out = _apply_reduction(raised, reduction)
    np.clip(out, -ceiling, ceiling, out=out)  # float rounding only; the limiter already holds the ceiling
    return out, float(reduction.max(initial=0.0))


def _normalize(waveform: np.ndarray, sample_rate: int, target_lufs: float,
               ceiling_dbfs: float) -> tuple[np.ndarray, dict[str, float]]:
    """:func:`normalize_loudness` that also returns what it measured and did."""
    data = _as_frames(waveform).astype(np.float64)
    before = integrated_loudness(data, sample_rate)
    info = {"lufs_before": before, "peak_dbfs_before": sample_peak_dbfs(data), "gain_db": 0.0, "limited_db": 0.0}
    if not math.isfinite(before):  # silence (or below the -70 LUFS absolute gate): nothing to normalize
        info.update(lufs=before, peak_dbfs=info["peak_dbfs_before"])
        return data.astype(np.float32), info
    ceiling = 10 ** (ceiling_dbfs / 20)
    gain_db = min(target_lufs - before, MAX_GAIN_DB)
    tried: list[tuple[float, float]] = []  # (gain, loudness) of each pass
    free_gain = ceiling_dbfs - info["peak_dbfs_before"]  # the most gain that needs no limiting
    if free_gain < gain_db:
        tried.append((free_gain, before + free_gain))  # a point known without a pass
    for _ in range(MAX_LOUDNESS_PASSES):
        out, limited = _gain_and_limit(data, sample_rate, gain_db, ceiling)
        lufs = integrated_loudness(out, sample_rate)
        tried.append((gain_db, lufs))
        if abs(target_lufs - lufs) <= LOUDNESS_TOLERANCE_LU or gain_db >= MAX_GAIN_DB:
            break
        # limiting takes loudness away, so more gain buys less than a dB per dB: step along the
        # slope of the last two passes (secant), 1 dB/dB on the first, never flatter than 0.1
        slope = 1.0
        if len(tried) > 1 and tried[-1][0] != tried[-2][0]:
            slope = min(max((tried[-1][1] - tried[-2][1]) / (tried[-1][0] - tried[-2][0]), 0.1), 1.0)
        gain_db = min(gain_db + (target_lufs - lufs) / slope, MAX_GAIN_DB)
    else:
        log.info("loudness %.2f LUFS after %d passes (target %.1f)", lufs, MAX_LOUDNESS_PASSES, target_lufs)
    info.update(gain_db=gain_db, limited_db=limited, lufs=lufs, peak_dbfs=sample_peak_dbfs(out))
    return out.astype(np.float32), info


def normalize_loudness(waveform: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS,
                       peak_dbfs: float = PEAK_CEILING_DBFS) -> np.ndarray:
    """Return ``waveform`` at ``target_lufs`` integrated loudness with every sample at or below ``peak_dbfs``.

    The gain is set from pyloudnorm's BS.1770 measurement (a loop shorter than
    ``MIN_MEASURE_SECONDS`` is measured repeated); peaks over the ceiling are taken down by a
    look-ahead limiter (see ``_limiter_gain_db``) and the gain is raised again until the limited
    signal measures within ``LOUDNESS_TOLERANCE_LU`` of the target. Drum loops have a high
    peak-to-loudness ratio (about 20 dB), so a plain gain would leave the peaky ones several LU
    short. The guarantee is on sample peaks of the returned float32 signal; a lossy encoding
    overshoots them (:func:`make_preview` leaves room for that). Silence and signals under the
    -70 LUFS gate come back unchanged; the gain never exceeds ``MAX_GAIN_DB``.
    """
    return _normalize(waveform, sample_rate, target_lufs, peak_dbfs)[0]


# --- encoding -------------------------------------------------------------------------------
def encode_preview(waveform: np.ndarray, sample_rate: int, fmt: str = PREVIEW_FORMAT,
                   quality: float | None = None) -> bytes:
    """Encode ``waveform`` (float, ``(n,)`` or ``(n, 1|2)``) in memory; return the file's bytes.

    ``fmt``: ``"mp3"`` (default, VBR), ``"ogg"`` (Vorbis) or ``"opus"``; ``quality`` is
    soundfile's ``compression_level`` (0 = best and largest, 1 = smallest; default the format's
    ``FORMATS[fmt].quality``). Samples are clipped to [-1, 1]. The bytes depend only on the
    samples and settings (Ogg serial numbers are fixed). ``ValueError`` for a sample rate the
    encoder does not take (MP3: 8-48 kHz in the MPEG steps; Opus: 8, 12, 16, 24, 48 kHz).
    """
    import soundfile

    spec = preview_format(fmt)
    data = _as_frames(waveform)
    if len(data) == 0 or (data.ndim == 2 and data.shape[1] not in (1, 2)):
        raise ValueError(f"waveform must be non-empty, mono or stereo, got shape {data.shape}")
    if sample_rate not in spec.sample_rates:
        raise ValueError(f"{fmt} cannot be encoded at {sample_rate} Hz; use one of {spec.sample_rates}")
    level = spec.quality if quality is None else float(quality)
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"quality must be from 0 (best) to 1 (smallest), got {quality!r}")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(data, -1.0, 1.0).astype(np.float32), sample_rate, format=spec.container,
                    subtype=spec.subtype, compression_level=level,
                    bitrate_mode="VARIABLE" if spec.container == "MP3" else None)
    return buffer.getvalue()


def decode_preview(data: bytes) -> tuple[np.ndarray, int]:
    """Decode preview bytes with soundfile: float32 ``(n, channels)`` and the sample rate."""
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples, rate


def preview_rate(sample_rate: int, fmt: str = PREVIEW_FORMAT, rate: int = PREVIEW_SAMPLE_RATE) -> int:
    """The rate a preview of audio at ``sample_rate`` is encoded at: ``rate``, or the source's own
    when that is lower and the format takes it (no upsampling); Opus always gets 48 kHz."""
    spec = preview_format(fmt)
    if rate not in spec.sample_rates:
        raise ValueError(f"{fmt} cannot be encoded at {rate} Hz; use one of {spec.sample_rates}")
    return sample_rate if sample_rate < rate and sample_rate in spec.sample_rates else rate


def _make_preview(waveform: np.ndarray, sample_rate: int, loop_frames: int, fmt: str, quality: float | None,
                  rate: int, target_lufs: float, peak_dbfs: float, mono: bool = PREVIEW_MONO
                  ) -> tuple[bytes, dict[str, Any]]:
    """:func:`make_preview` that also returns its measurements."""
    spec = preview_format(fmt)
    out_rate = preview_rate(sample_rate, fmt, rate)
    loop = resample_loop(fold_loop(waveform, loop_frames), sample_rate, out_rate)
    if mono and loop.ndim == 2:
        loop = loop.mean(axis=1)
    normalized, info = _normalize(loop, out_rate, target_lufs, peak_dbfs - spec.headroom_db)
    samples = normalized.astype(np.float64)
    ceiling = 10 ** (peak_dbfs / 20)
    encode_seconds = 0.0
    for encodes in range(1, MAX_ENCODES + 1):
        start = time.perf_counter()
        data = encode_preview(samples, out_rate, fmt, quality)
        encode_seconds += time.perf_counter() - start
        decoded = decode_preview(data)[0]
        over = _over_ceiling_db(decoded, ceiling)[:len(samples)]
        if not over.any() or encodes == MAX_ENCODES:
            break
        if encodes == 1:
            # the codec's noise pushed some peaks over the ceiling: take those down by what they
            # were over plus a margin, through the limiter's ramps (the loudness barely moves)
            over[over > 0] += OVERSHOOT_MARGIN_DB
            over = np.pad(over, (0, len(samples) - len(over)))
            samples = _apply_reduction(samples, _reduction_db(over, out_rate))
        else:
            # the noise moved with the signal: scale the whole loop, which the codec follows
            # closely (costs that much loudness, typically a few tenths of a dB)
            samples = samples * 10 ** (-(float(over.max()) + FINAL_MARGIN_DB) / 20)
    decoded_peak = sample_peak_dbfs(decoded)
    if decoded_peak > peak_dbfs:
        log.warning("preview decodes to %.2f dBFS, over the %.1f dBFS ceiling after %d encodes",
                    decoded_peak, peak_dbfs, encodes)
    info.update(sample_rate=out_rate, frames=len(samples), bytes=len(data), decoded_frames=len(decoded),
                decoded_peak_dbfs=decoded_peak, encodes=encodes, encode_ms=encode_seconds * 1000)
    return data, info


def make_preview(waveform: np.ndarray, sample_rate: int, loop_frames: int, fmt: str = PREVIEW_FORMAT,
                 quality: float | None = None, rate: int = PREVIEW_SAMPLE_RATE, target_lufs: float = TARGET_LUFS,
                 peak_dbfs: float = PEAK_CEILING_DBFS) -> bytes:
    """The browser preview of a render: fold the tail onto the start, resample, normalize, encode.

    ``waveform`` is :func:`drumgen.audio.render_audio`'s output at ``sample_rate`` and
    ``loop_frames`` the length of one pass at that rate (:func:`loop_frames` of the pattern).
    The result loops seamlessly, lasts ``round(loop_frames * r / sample_rate)`` frames at the
    preview rate ``r`` (:func:`preview_rate`: 32 kHz by default), measures ``target_lufs`` and
    decodes (soundfile) with no sample above ``peak_dbfs``: the limiter leaves the format's
    ``headroom_db`` for coding noise; peaks that still decode over the ceiling are taken down and
    the loop encoded again, then if need be the whole loop is scaled down by what is left and
    encoded once more (``MAX_ENCODES`` in all; a warning is logged if even that is not enough).
    Serve it as ``FORMATS[fmt].mime_type``.
    Silent input gives a silent preview. Same input, same bytes.
    """
    return _make_preview(waveform, sample_rate, loop_frames, fmt, quality, rate, target_lufs, peak_dbfs)[0]
