"""``python -m drumgen bench``: speed figures as JSON (medians of repeated runs)."""

from __future__ import annotations

import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from drumgen.audio import AudioUnavailableError, audio_bench
from drumgen.generate import generate_tokens
from drumgen.model import DrumPatternTransformer
from drumgen.model_loader import load_bundle
from drumgen.pipeline import GenerateRequest, generate_grooves
from drumgen.styles import get_model_path

BENCH_GENRE, BENCH_TEMPO = "funk", 100.0
DECODE_STEPS = 256  # tokens for the cache / no-cache comparison (about a 4-bar pattern)


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


def run_bench(checkpoint: str | Path | None = None, repeats: int = 15) -> dict[str, Any]:
    """Generation latency (4 and 16 bars, 1 and 4 variations), tokens/s with and without the
    KV cache, full-request latency, audio real-time factor, load time and peak memory."""
    checkpoint = Path(checkpoint) if checkpoint else get_model_path(BENCH_GENRE)
    t0 = time.perf_counter()
    model, tok, _ = load_bundle(str(checkpoint))
    load_s = time.perf_counter() - t0
    generate_tokens(model, tok, genre=BENCH_GENRE, tempo=BENCH_TEMPO, num_bars=1)  # warm-up
    out: dict[str, Any] = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
                   f"{'cuda' if next(model.parameters()).is_cuda else 'cpu'}",
        "checkpoint": str(checkpoint),
        "model_load_s": round(load_s, 3),
        "repeats": repeats,
        "generate_ms": {},
    }
    seed = iter(range(10**6))
    for bars in (4, 16):
        for samples in (1, 4):
            n = repeats if bars == 4 else max(3, repeats // 3)
            out["generate_ms"][f"{bars}_bars_x{samples}"] = _median_ms(
                lambda b=bars, s=samples: generate_tokens(model, tok, genre=BENCH_GENRE, tempo=BENCH_TEMPO,
                                                          num_bars=b, seed=next(seed), num_samples=s), n)
    lengths = [len(generate_tokens(model, tok, genre=BENCH_GENRE, tempo=BENCH_TEMPO, num_bars=4, seed=s)[0])
               for s in range(5)]
    out["tokens_per_4_bars"] = statistics.median(lengths)
    cached = decode_tokens_per_second(model, use_cache=True)
    uncached = decode_tokens_per_second(model, use_cache=False)
    out["decode_tokens_per_s"] = {"kv_cache": cached, "no_cache": uncached,
                                  "speedup": round(cached / uncached, 2), "tokens": DECODE_STEPS}
    for bars in (4, 16):
        req = GenerateRequest(style=BENCH_GENRE, bars=bars, tempo=BENCH_TEMPO, seed=1, audio=True)
        out.setdefault("request_ms", {})[f"{bars}_bars_with_audio"] = _median_ms(
            lambda r=req: generate_grooves(r), max(3, repeats // 3))
    try:
        out["audio_16_bars"] = audio_bench(bars=16, tempo=BENCH_TEMPO)
    except (AudioUnavailableError, FileNotFoundError) as exc:
        out["audio_16_bars"] = {"error": str(exc)}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def run_api_bench(checkpoint: str | Path | None = None, repeats: int = 7) -> dict[str, Any]:
    """The app as a user reaches it: ``python app.py`` start-up to ready, ``/generate`` round trips
    through gradio_client on loopback (4 and 16 bars, audio and MIDI downloaded), ``/styles``,
    and the app's resident memory afterwards."""
    from gradio_client import Client

    from drumgen.loadtest import AppProcess, rss_mb

    env = {"DRUMGEN_CHECKPOINT": str(Path(checkpoint).resolve())} if checkpoint else {}
    with AppProcess(env=env) as app, tempfile.TemporaryDirectory() as downloads:
        client = Client(app.url, verbose=False, download_files=downloads)
        seeds = iter(range(10**6))

        def generate(bars: int) -> None:
            client.predict(style=BENCH_GENRE, tempo=BENCH_TEMPO, bars=bars, seed=next(seeds), random_seed=False,
                           api_name="/generate")

        generate(4)  # the first call sets up the client's session
        out: dict[str, Any] = {"startup_to_ready_s": round(app.startup_s, 2), "request_ms": {}}
        for bars in (4, 16):
            out["request_ms"][f"{bars}_bars"] = _median_ms(lambda b=bars: generate(b), repeats)
        out["request_ms"]["styles"] = _median_ms(lambda: client.predict(api_name="/styles"), repeats)
        out["app_rss_mb"] = round(rss_mb(app.proc.pid), 1)
    return out
