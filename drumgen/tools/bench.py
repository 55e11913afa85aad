"""``python -m drumgen bench``: speed figures as JSON (medians of repeated runs)."""

from __future__ import annotations

import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drumgen import preview
from drumgen.audio import AudioUnavailableError, find_soundfont, render_audio, rendered_length
from drumgen.engine import Engine
from drumgen.model import DrumPatternTransformer
from drumgen.pattern import Note, Pattern
from drumgen.request import GenerateRequest
from drumgen.styles import list_styles

BENCH_STYLE, BENCH_TEMPO = "funk", 100.0
CONTRAST_STYLE = "rock"  # a preset with genre contrast: each variation decodes with a twin
DECODE_STEPS = 256  # tokens for the cache / no-cache comparison (about a 4-bar pattern)
AUDIO_REPEATS = 5


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


@torch.inference_mode()
def decode_tokens_per_second(model: DrumPatternTransformer, steps: int = DECODE_STEPS,
                             use_cache: bool = True) -> float:
    """Greedy decoding speed of ``steps`` tokens, with the KV cache or recomputing every step."""
    device = next(model.parameters()).device
    x = torch.zeros((1, 3), dtype=torch.long, device=device)
    t0 = time.perf_counter()
    if use_cache:
        cache = model.new_cache(1)
        logits = model(x, cache, last_only=True)
        for _ in range(steps):
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            logits = model(nxt, cache, last_only=True)
    else:
        seq = x
        for _ in range(steps):
            nxt = model(seq, last_only=True)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    return round(steps / (time.perf_counter() - t0), 1)


def bench_pattern(bars: int = 16, tempo: float = 120.0) -> Pattern:
    """A busy groove for the audio figure: 16th hats with accents and an open hat every other bar,
    kick, backbeat and ghost snares, a crash on bar 1, onsets nudged a few ticks like a player's."""
    rng = np.random.default_rng(0)
    notes: dict[tuple[int, int], Note] = {}

    def hit(step: int, pitch: int, velocity: int) -> None:
        onset = max(0, step * 120 + int(rng.integers(-12, 13)))
        notes[onset, pitch] = Note(onset, pitch, int(np.clip(velocity + rng.integers(-8, 9), 1, 127)))

    for bar in range(bars):
        base = bar * 16
        for step in range(16):
            if step == 14 and bar % 2:
                hit(base + step, 46, 85)
            else:
                hit(base + step, 42, 95 if step % 4 == 0 else 70 if step % 2 == 0 else 50)
        for step in (0, 7, 10):
            hit(base + step, 36, 110)
        for step in (4, 12):
            hit(base + step, 38, 115)
        for step in (6, 9, 15):
            hit(base + step, 38, 30)
        if bar == 0:
            hit(0, 49, 110)
    return Pattern(notes=sorted(notes.values()), tempo=tempo, bars=bars).validate()


def audio_figures(bars: int = 16, tempo: float = BENCH_TEMPO, repeats: int = AUDIO_REPEATS) -> dict[str, Any]:
    """Rendering speed of :func:`bench_pattern`: seconds of audio per second of wall time (median),
    the first render (which loads the SoundFont unless it is loaded already) and the SoundFont."""
    pattern = bench_pattern(bars, tempo)
    t0 = time.perf_counter()
    render_audio(pattern)
    first = time.perf_counter() - t0
    median = _median_ms(lambda: render_audio(pattern), repeats) / 1000
    audio_seconds = rendered_length(pattern) / 44100
    return {"bars": bars, "tempo": tempo, "notes": len(pattern.notes), "soundfont": find_soundfont().name,
            "audio_seconds": round(audio_seconds, 3), "first_render_s": round(first, 4),
            "render_s": round(median, 4), "realtime_factor": round(audio_seconds / median, 1)}


def run_bench(checkpoint: str | Path | None = None, repeats: int = 15) -> dict[str, Any]:
    """Pattern latency (4 and 16 bars, 1 and 4 variations; the funk preset's own sampling and
    constraints, as a user gets them; 4 bars of rock, whose genre contrast doubles the batch),
    tokens/s with and without the KV cache, full-request latency, audio real-time factor, load time
    and peak memory."""
    t0 = time.perf_counter()
    engine = Engine.load(checkpoint)
    load_s = time.perf_counter() - t0
    model = engine.model
    seeds = iter(range(10**6))

    def sample(bars: int, count: int, style: str = BENCH_STYLE) -> list[Any]:
        return engine.sample(engine.resolve(GenerateRequest(style=style, bars=bars, tempo=BENCH_TEMPO,
                                                            seed=next(seeds), count=count, audio=False)))

    sample(1, 1)  # warm-up
    out: dict[str, Any] = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
                   f"{'cuda' if next(model.parameters()).is_cuda else 'cpu'}",
        "checkpoint": str(engine.checkpoint),
        "model_load_s": round(load_s, 3),
        "repeats": repeats,
        "generate_ms": {},
    }
    for bars in (4, 16):
        for count in (1, 4):
            n = repeats if bars == 4 else max(3, repeats // 3)
            out["generate_ms"][f"{bars}_bars_x{count}"] = _median_ms(lambda b=bars, c=count: sample(b, c), n)
    out["generate_ms"][f"4_bars_x1_{CONTRAST_STYLE}"] = _median_ms(lambda: sample(4, 1, CONTRAST_STYLE), repeats)
    out["tokens_per_4_bars"] = statistics.median(len(s.tokens) for _ in range(5) for s in sample(4, 1))
    cached = decode_tokens_per_second(model, use_cache=True)
    uncached = decode_tokens_per_second(model, use_cache=False)
    out["decode_tokens_per_s"] = {"kv_cache": cached, "no_cache": uncached,
                                  "speedup": round(cached / uncached, 2), "tokens": DECODE_STEPS}
    for bars in (4, 16):
        req = GenerateRequest(style=BENCH_STYLE, bars=bars, tempo=BENCH_TEMPO, seed=1, audio=True)
        out.setdefault("request_ms", {})[f"{bars}_bars_with_audio"] = _median_ms(
            lambda r=req: engine.generate(r), max(3, repeats // 3))
    try:
        out["audio_16_bars"] = audio_figures()
    except (AudioUnavailableError, FileNotFoundError) as exc:
        out["audio_16_bars"] = {"error": str(exc)}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def run_api_bench(checkpoint: str | Path | None = None, repeats: int = 7) -> dict[str, Any]:
    """The app as a user reaches it: ``python app.py`` start-up to ready, ``/generate`` round trips
    through gradio_client on loopback (4 and 16 bars, audio and MIDI downloaded), ``/styles``,
    and the app's resident memory afterwards."""
    from gradio_client import Client

    from drumgen.tools.loadtest import AppProcess, rss_mb

    env = {"DRUMGEN_CHECKPOINT": str(Path(checkpoint).resolve())} if checkpoint else {}
    with AppProcess(env=env) as app, tempfile.TemporaryDirectory() as downloads:
        client = Client(app.url, verbose=False, download_files=downloads)
        seeds = iter(range(10**6))

        def generate(bars: int) -> None:
            client.predict(style=BENCH_STYLE, tempo=BENCH_TEMPO, bars=bars, seed=next(seeds), random_seed=False,
                           api_name="/generate")

        generate(4)  # the first call sets up the client's session
        out: dict[str, Any] = {"startup_to_ready_s": round(app.startup_s, 2), "request_ms": {}}
        for bars in (4, 16):
            out["request_ms"][f"{bars}_bars"] = _median_ms(lambda b=bars: generate(b), repeats)
        out["request_ms"]["styles"] = _median_ms(lambda: client.predict(api_name="/styles"), repeats)
        out["app_rss_mb"] = round(rss_mb(app.proc.pid), 1)
    return out


def preview_figures(seeds: tuple[int, ...] = (1, 2, 3), bars: int = 4, fmt: str = preview.PREVIEW_FORMAT,
                    long_bars: int = 32, long_tempo: float = 40.0) -> dict[str, Any]:
    """Preview size, loudness, peaks and encode time for every style (``bars`` bars, each of
    ``seeds``, the preset's default tempo and kit), plus one long groove (``long_bars`` at
    ``long_tempo`` BPM). Per style: medians over the seeds, and the extremes where they matter
    (largest size, loudest decoded peak, farthest loudness). Needs the checkpoint and FluidSynth.
    """
    engine = Engine.load()

    def measure(groove: Any) -> dict[str, float]:
        frames = preview.loop_frames(groove.pattern, groove.sample_rate)
        start = time.perf_counter()
        data, info = preview._make_preview(groove.audio, groove.sample_rate, frames, fmt, None,
                                           preview.PREVIEW_SAMPLE_RATE, preview.TARGET_LUFS,
                                           preview.PEAK_CEILING_DBFS)
        seconds = time.perf_counter() - start
        decoded, rate = preview.decode_preview(data)
        return {
            "seconds": frames / groove.sample_rate, "kb": len(data) / 1000, "ms": seconds * 1000,
            "wav_kb": (44 + groove.audio.size * 2) / 1000,  # the whole render as 16-bit WAV
            "encode_ms": info["encode_ms"],
            "lufs_before": preview.integrated_loudness(groove.audio, groove.sample_rate, looped=False),
            "peak_before": preview.sample_peak_dbfs(groove.audio),
            "lufs_after": preview.integrated_loudness(decoded, rate), "peak_after": preview.sample_peak_dbfs(decoded),
            "limited_db": info["limited_db"], "encodes": info["encodes"],
            "frames_ok": float(len(decoded) == info["frames"]),
        }

    styles: dict[str, Any] = {}
    for preset in list_styles():
        rows = []
        for seed in seeds:
            groove = engine.generate(GenerateRequest(style=preset.id, bars=bars, seed=seed))[0]
            if groove.audio is None:
                raise RuntimeError(groove.audio_error or "no audio rendered")
            rows.append(measure(groove))

        def med(key: str, rows: list[dict[str, float]] = rows) -> float:
            return round(statistics.median(r[key] for r in rows), 2)

        styles[preset.id] = {
            "tempo": preset.default_tempo, "kit": preset.kit, "seconds": med("seconds"),
            "wav_kb": med("wav_kb"), "kb": med("kb"), "kb_max": round(max(r["kb"] for r in rows), 1),
            "preview_ms": med("ms"), "encode_ms": med("encode_ms"),
            "lufs_before": med("lufs_before"), "peak_dbfs_before": med("peak_before"),
            "lufs_after": med("lufs_after"),
            "lufs_after_worst": round(max((r["lufs_after"] for r in rows),
                                          key=lambda v: abs(v - preview.TARGET_LUFS)), 2),
            "peak_dbfs_after_max": round(max(r["peak_after"] for r in rows), 2),
            "limited_db_max": round(max(r["limited_db"] for r in rows), 1),
            "encodes_max": int(max(r["encodes"] for r in rows)),
            "exact_length": all(r["frames_ok"] for r in rows),
        }
    style = list_styles()[0].id
    groove = engine.generate(GenerateRequest(style=style, bars=long_bars, tempo=long_tempo, seed=seeds[0]))[0]
    long = measure(groove)
    return {
        "format": fmt, "mime_type": preview.preview_format(fmt).mime_type,
        "sample_rate": preview.PREVIEW_SAMPLE_RATE, "quality": preview.preview_format(fmt).quality,
        "target_lufs": preview.TARGET_LUFS, "peak_ceiling_dbfs": preview.PEAK_CEILING_DBFS,
        "bars": bars, "seeds": list(seeds), "styles": styles,
        "long": {"style": style, "bars": long_bars, "tempo": long_tempo, "seconds": round(long["seconds"], 1),
                 "wav_kb": round(long["wav_kb"], 1), "kb": round(long["kb"], 1), "preview_ms": round(long["ms"], 1),
                 "encode_ms": round(long["encode_ms"], 1), "encodes": long["encodes"],
                 "lufs_before": round(long["lufs_before"], 2), "peak_dbfs_before": round(long["peak_before"], 2),
                 "lufs_after": round(long["lufs_after"], 2), "peak_dbfs_after": round(long["peak_after"], 2)},
    }
