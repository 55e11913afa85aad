"""MidiDrumiGen web app and API (Gradio): widgets and wiring only.

Every groove comes from :func:`drumgen.pipeline.generate_grooves`, the function the CLI calls.
Run ``python app.py``; it serves on ``$GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT`` (gradio's
defaults, 127.0.0.1:7860, when unset). API endpoints: ``/generate`` and ``/styles``.
"""

from __future__ import annotations

import html
import logging
import signal
import sys
from typing import Any

import gradio as gr

from drumgen import __version__
from drumgen.drum_map import KIT_PROGRAMS
from drumgen.midi_io import midi_to_pattern
from drumgen.pattern import MAX_BARS, MAX_TEMPO, MIN_BARS, MIN_TEMPO
from drumgen.pipeline import MAX_SEED, GenerateRequest, generate_grooves
from drumgen.serving import (
    SaveError,
    TempArea,
    cache_sweep_setting,
    files_max_age,
    install_cache_sweeper,
    release_free_memory,
    use_one_compute_thread,
    warm_up,
)
from drumgen.styles import get_model_path, get_style, list_styles
from drumgen.ui import (
    CSS,
    NamedDropdown,
    NamedNumber,
    NamedSlider,
    drum_grid_svg,
    empty_feel_html,
    empty_grid_html,
    feel_html,
    headline_html,
    kit_label,
    preset_html,
)

log = logging.getLogger("drumgen.app")
if __name__ == "__main__":  # before the warm-up below, so its timing is logged
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    logging.getLogger("drumgen").setLevel(logging.INFO)  # the warm-up's timing (drumgen.serving)

STYLES = list_styles()
DEFAULT = STYLES[0]
FILL_CHOICES = [("Off", 0), ("Every 2 bars", 2), ("Every 4 bars", 4), ("Every 8 bars", 8)]
EXAMPLES = [  # style, tempo, bars, kit: one click per producer
    ("j_dilla", 90, 4, "standard"), ("metro_boomin", 140, 8, "tr808"), ("questlove", 100, 8, "room"),
]
QUEUE_CONCURRENCY, QUEUE_MAX = 2, 32
MAX_UPLOAD_BYTES = 0  # the app takes no uploads: gradio's /upload route refuses every file (it has no limit by default)
FILES_MAX_AGE_S = files_max_age()  # how long download links work
TEMP = TempArea(max_age_s=min(120, FILES_MAX_AGE_S))  # ours go once gradio has copied them into its cache
TMP_ROOT = TEMP.root
THEME = gr.themes.Soft(
    primary_hue="orange", neutral_hue="slate",
    font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],  # no web-font download
    font_mono=["ui-monospace", "SFMono-Regular", "monospace"],
)
WARMUP_ERROR = warm_up((str(get_model_path(p.id)) for p in STYLES), DEFAULT.id)
install_cache_sweeper()


def generate(
    style: str, tempo: float, bars: int, kit: str, humanize: float, swing_override: bool, swing: float,
    fill_every: int, temperature: float, top_k: int, top_p: float, seed: int | None, random_seed: bool,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's idiom)
) -> tuple[str | None, str, dict[str, Any]]:
    """Generate one humanized drum groove.

    humanize is 0-100 %; swing (50-75 %) is used only when swing_override is true (else the
    preset's); fill_every is 0 (off), 2, 4 or 8; seed is used when random_seed is false.
    Returns the audio (WAV), the .mid file and a JSON summary (style, tempo, bars, seed used,
    settings, model version, measured feel).
    """
    progress(0.1, desc="Sampling the groove")
    request = GenerateRequest(
        style=style, bars=bars, tempo=tempo, seed=None if random_seed else seed, temperature=temperature,
        top_k=top_k, top_p=top_p, humanize=humanize / 100, swing=swing if swing_override else None, kit=kit,
        fill_every=fill_every,
    )
    use_one_compute_thread()
    try:
        groove = generate_grooves(request)[0]
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except (FileNotFoundError, RuntimeError) as exc:  # no model / broken checkpoint
        log.error("generation failed: %s", exc)
        raise gr.Error(f"the model is not available: {exc}", print_exception=False) from None
    except Exception as exc:  # a bug: one clear line for the user, the traceback in the log
        log.exception("generation failed unexpectedly")
        raise gr.Error(f"generation failed unexpectedly ({type(exc).__name__}: {exc}); please try other "
                       "settings or report it", print_exception=False) from None
    progress(0.9, desc="Writing files")
    try:
        audio_path, midi_path, notices = TEMP.save(groove)
    except SaveError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    summary = {**groove.summary, "notices": notices}
    del groove  # its audio buffer (MBs) goes back to the heap, and the heap's free memory to the OS
    release_free_memory()
    for notice in notices:
        gr.Warning(notice)
    return audio_path, midi_path, summary


def styles() -> list[dict[str, Any]]:
    """The style presets (producers first), each as a dict of its settings."""
    return [p.to_dict() for p in STYLES]


def show_details(midi_path: str | None, summary: dict[str, Any] | None) -> tuple[Any, ...]:
    """Headline, drum grid and feel readout of the groove just made; its seed goes into the seed box."""
    if not midi_path or not summary:
        return "", empty_grid_html(), empty_feel_html(), gr.update(), gr.update(visible=False)
    pattern = midi_to_pattern(midi_path, bars=int(summary["bars"]))
    return (headline_html(summary), drum_grid_svg(pattern), feel_html(summary), summary["seed"],
            gr.update(visible=True))


def apply_preset(style: str) -> tuple[Any, ...]:
    """A style's description and defaults: tempo, kit, swing, fills and sampling."""
    p = get_style(style)
    return (preset_html(p), p.default_tempo, p.kit, p.humanize.swing, p.fill_every,
            p.temperature, p.top_k, p.top_p)


def build_app() -> gr.Blocks:
    """The Blocks app (not yet queued or launched; see :func:`launch`)."""
    with gr.Blocks(title="MidiDrumiGen: drum grooves in a producer's style", analytics_enabled=False,
                   delete_cache=cache_sweep_setting(FILES_MAX_AGE_S)) as demo:
        gr.HTML('<div id="hero"><h1>Midi<span>Drumi</span>Gen</h1><p>Drum grooves that play like a producer '
                'or a genre. Pick a style, press Generate, listen, and drag the humanized MIDI into your DAW.'
                '</p></div>')
        if WARMUP_ERROR:
            gr.HTML(f'<div class="preset" style="color:#dc2626">Model not loaded: {html.escape(WARMUP_ERROR)}</div>')
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=320):
                style = NamedDropdown(choices=[(p.name, p.id) for p in STYLES], value=DEFAULT.id,
                                      label="Style").named("style")
                style.resolve = lambda name: get_style(name).id
                description = gr.HTML(preset_html(DEFAULT))
                with gr.Row():
                    tempo = NamedSlider(MIN_TEMPO, MAX_TEMPO, value=DEFAULT.default_tempo, step=1,
                                        label="Tempo").named("tempo", " BPM")
                    bars = NamedSlider(MIN_BARS, MAX_BARS, value=4, step=1, precision=0,
                                       label="Bars").named("bars")
                with gr.Row():
                    kit = NamedDropdown(choices=[(kit_label(k), k) for k in KIT_PROGRAMS],
                                        value=DEFAULT.kit, label="Kit").named("kit")
                    fill_every = NamedDropdown(choices=FILL_CHOICES, value=DEFAULT.fill_every,
                                               label="Fills").named("fill_every")
                    fill_every.resolve = lambda text: int(text) if text.strip().isdigit() else text
                humanize = NamedSlider(0, 100, value=100, step=1, label="Humanize (%)",
                                       info="0 = on the grid; 100 = the style's full feel").named("humanize", " %")
                with gr.Group():
                    swing = NamedSlider(50, 75, value=DEFAULT.humanize.swing, step=0.5, label="Swing (%)",
                                        interactive=False).named("swing", " %")
                    swing_override = gr.Checkbox(value=False, label="Override the style's swing")
                with gr.Accordion("Advanced", open=False):
                    temperature = NamedSlider(0, 2, value=DEFAULT.temperature, step=0.05, label="Temperature",
                                              info="0 = always the likeliest hit").named("temperature")
                    with gr.Row():
                        top_k = NamedSlider(0, 200, value=DEFAULT.top_k, step=1, precision=0, label="Top-k",
                                            info="0 = off").named("top_k")
                        top_p = NamedSlider(0.05, 1, value=DEFAULT.top_p, step=0.01, label="Top-p").named("top_p")
                    with gr.Row(equal_height=True):
                        seed = NamedNumber(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed",
                                           scale=2).named("seed")
                        random_seed = gr.Checkbox(value=True, label="Random seed", scale=1, min_width=110)
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                examples = gr.Examples(examples=[list(e) for e in EXAMPLES], inputs=[style, tempo, bars, kit],
                                       example_labels=[f"{get_style(s).name} · {t} BPM · {b} bars"
                                                       for s, t, b, _ in EXAMPLES],
                                       label="One-click producer grooves", cache_examples=False,
                                       api_visibility="private")
            with gr.Column(scale=7, min_width=400):
                with gr.Row(equal_height=False):
                    headline = gr.HTML("", scale=5)
                    reuse = gr.Button("Reuse this seed", size="sm", scale=0, min_width=130, visible=False,
                                      elem_id="reuse-btn")
                audio = gr.Audio(label="Audio", type="filepath", interactive=False, autoplay=True,
                                 buttons=["download"], elem_id="groove-audio",
                                 waveform_options=gr.WaveformOptions(waveform_color="#cbd5e1",
                                                                     waveform_progress_color="#f97316"))
                midi_file = gr.File(label="MIDI file (humanized): drag it into your DAW", interactive=False, height=90,
                                    elem_id="groove-midi")
                grid = gr.HTML(empty_grid_html(), label="Drum grid")
                feel = gr.HTML(empty_feel_html(), label="Feel")
                with gr.Accordion("API summary (JSON)", open=False):
                    summary = gr.JSON(label="Summary")
                gr.HTML(f'<div class="footer">drumgen {__version__}: a small transformer trained on the Groove MIDI '
                        'Dataset (CC BY 4.0). Metro Boomin has no trap data behind it: it is hip-hop conditioning '
                        'at half-time plus hat-roll and 808 rules. API endpoints <code>/generate</code> and '
                        '<code>/styles</code>: see "Use via API" below.</div>')

        inputs = [style, tempo, bars, kit, humanize, swing_override, swing, fill_every, temperature, top_k, top_p,
                  seed, random_seed]
        outputs = [audio, midi_file, summary]
        details = dict(fn=show_details, inputs=[midi_file, summary], outputs=[headline, grid, feel, seed, reuse],
                       queue=False, api_visibility="private")
        generate_btn.click(generate, inputs, outputs, api_name="generate").success(**details)
        examples.load_input_event.then(generate, inputs, outputs, api_visibility="private").success(**details)
        gr.api(styles, api_name="styles")

        style.change(apply_preset, style, [description, tempo, kit, swing, fill_every, temperature, top_k, top_p],
                     queue=False, api_visibility="private")
        swing_override.change(lambda on: gr.update(interactive=on), swing_override, swing, queue=False,
                              api_visibility="private")
        reuse.click(lambda: False, None, random_seed, queue=False, api_visibility="private")
    return demo


demo = build_app()


def launch(blocks: gr.Blocks | None = None, **kwargs: Any) -> tuple[Any, str, str]:
    """Queue and launch ``blocks`` (default :data:`demo`) with the app's theme; ``kwargs`` go to
    ``Blocks.launch`` (server name and port default to ``$GRADIO_SERVER_NAME`` / ``$GRADIO_SERVER_PORT``)."""
    blocks = demo if blocks is None else blocks
    blocks.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX)
    kwargs.setdefault("max_file_size", MAX_UPLOAD_BYTES)
    return blocks.launch(theme=THEME, css=CSS, **kwargs)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `docker stop`: exit cleanly, temp folder removed
    launch()
