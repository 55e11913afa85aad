"""MidiDrumiGen web app and API (Gradio): widgets and wiring only.

Every groove comes from the engine (:mod:`drumgen.engine`), the one the CLI uses; the handlers are in
:mod:`drumgen.web.handlers`. ``python app.py`` serves on ``$GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT``
(gradio's defaults, 127.0.0.1:7860, when unset). API endpoints: ``/generate`` and ``/styles``.
Importing this module does no work: :func:`main` loads the model and starts the server.
"""

from __future__ import annotations

import gc
import html
import logging
import signal
import sys
from typing import Any

import gradio as gr

from drumgen import __version__
from drumgen.limits import (
    BARS,
    FILL_EVERY,
    HUMANIZE,
    KIT,
    SEED,
    SWING,
    TEMPERATURE,
    TEMPO,
    TOP_K,
    TOP_P,
    VARIATION,
    ChoiceLimit,
)
from drumgen.styles import StyleRegistry
from drumgen.web.guard import Guard, queue_every_event, upload_rule_for
from drumgen.web.handlers import AppHandlers
from drumgen.web.serving import (
    EngineSource,
    TempArea,
    cache_sweep_setting,
    drop_queue_analytics,
    files_max_age,
    install_cache_sweeper,
    run_as_job,
    set_compute_slots,
    use_private_gradio_folder,
)
from drumgen.web.ui import (
    CSS,
    NamedDropdown,
    NamedNumber,
    NamedSlider,
    StrictCheckbox,
    empty_feel_html,
    empty_grid_html,
    kit_label,
    preset_html,
)

log = logging.getLogger("drumgen.app")

FILL_CHOICES = [("Off", 0), ("Every 2 bars", 2), ("Every 4 bars", 4), ("Every 8 bars", 8)]
EXAMPLES = [  # style, tempo, bars, kit: one click per producer
    ("j_dilla", 90, 4, "standard"), ("metro_boomin", 140, 8, "tr808"), ("questlove", 100, 8, "room"),
]
QUEUE_CONCURRENCY, QUEUE_MAX = 2, 32
SESSION_CAPACITY = 500  # sessions gradio keeps (about 100 KB each); idle ones go after the files' lifetime
MAX_UPLOAD_BYTES = 0  # the app takes no uploads: gradio's /upload route refuses every file (it has no limit by default)
THEME = gr.themes.Soft(
    primary_hue="orange", neutral_hue="slate",
    font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],  # no web-font download
    font_mono=["ui-monospace", "SFMono-Regular", "monospace"],
)


def build_app(handlers: AppHandlers, startup_error: str | None = None) -> gr.Blocks:
    """The Blocks app over ``handlers`` (not yet queued or launched; see :func:`launch`)."""
    styles = handlers.registry.list()
    default = styles[0]

    def style_id(name: str) -> str:
        return handlers.registry.get(name).id

    with gr.Blocks(title="MidiDrumiGen: drum grooves in a producer's style", analytics_enabled=False,
                   delete_cache=cache_sweep_setting(files_max_age())) as demo:
        gr.HTML('<div id="hero"><h1>Midi<span>Drumi</span>Gen</h1><p>Drum grooves that play like a producer '
                'or a genre. Pick a style, press Generate, listen, and drag the humanized MIDI into your DAW.'
                '</p></div>')
        if startup_error:
            gr.HTML(f'<div class="preset" style="color:#dc2626">Model not loaded: {html.escape(startup_error)}</div>')
        style_limit = ChoiceLimit("style", tuple(p.id for p in styles))
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=320):
                style = NamedDropdown.of(style_limit, resolve=style_id, choices=[(p.name, p.id) for p in styles],
                                      value=default.id, label="Style")
                description = gr.HTML(preset_html(default))
                with gr.Row():
                    tempo = NamedSlider.of(TEMPO, value=default.default_tempo, step=1, label="Tempo")
                    bars = NamedSlider.of(BARS, value=4, step=1, label="Bars")
                with gr.Row():
                    kit = NamedDropdown.of(KIT, choices=[(kit_label(k), k) for k in KIT.choices], value=default.kit,
                                        label="Kit")
                    fill_every = NamedDropdown.of(FILL_EVERY, choices=FILL_CHOICES, value=default.fill_every,
                                               label="Fills")
                humanize = NamedSlider.of(HUMANIZE.in_app(), value=100, step=1, label="Humanize (%)",
                                       info="0 = on the grid; 100 = the style's full feel")
                variation = NamedSlider.of(VARIATION.in_app(), value=round(100 * default.variation), step=1,
                                        label="Variation (%)",
                                        info="0 = the first phrase repeats; 100 = every bar sampled freely")
                with gr.Group():
                    swing = NamedSlider.of(SWING, value=default.humanize.swing or SWING.lo, step=0.5, label="Swing (%)",
                                        interactive=False)
                    swing_override = StrictCheckbox.of("swing_override", value=False,
                                                    label="Override the style's swing")
                with gr.Accordion("Advanced", open=False):
                    temperature = NamedSlider.of(TEMPERATURE, value=default.temperature, step=0.05, label="Temperature",
                                              info="0 = always the likeliest hit")
                    with gr.Row():
                        top_k = NamedSlider.of(TOP_K, value=default.top_k, step=1, label="Top-k", info="0 = off")
                        top_p = NamedSlider.of(TOP_P, value=default.top_p, step=0.01, label="Top-p")
                    with gr.Row(equal_height=True):
                        seed = NamedNumber.of(SEED, value=0, label="Seed", scale=2)
                        random_seed = StrictCheckbox.of("random_seed", value=True, label="Random seed", scale=1,
                                                     min_width=110)
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                examples = gr.Examples(examples=[list(e) for e in EXAMPLES], inputs=[style, tempo, bars, kit],
                                       example_labels=[f"{handlers.registry.get(s).name} · {t} BPM · {b} bars"
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
                        'at half-time plus trap hat and 808 rules. API endpoints <code>/generate</code> and '
                        '<code>/styles</code>: see "Use via API" below.</div>')

        # The API's own inputs: the same checks, but left-out values mean "the style's own".
        with gr.Group(visible=False):
            api_tempo = NamedNumber.of(TEMPO, value=None, label="tempo")
            api_kit = NamedDropdown.of(KIT, choices=[(k, k) for k in KIT.choices], value=None, label="kit")
            api_fill_every = NamedDropdown.of(FILL_EVERY, choices=FILL_CHOICES, value=None, label="fill_every")
            api_swing = NamedNumber.of(SWING, value=None, label="swing")
            api_temperature = NamedNumber.of(TEMPERATURE, value=None, label="temperature")
            api_top_k = NamedNumber.of(TOP_K, value=None, label="top_k")
            api_top_p = NamedNumber.of(TOP_P, value=None, label="top_p")
            api_variation = NamedNumber.of(VARIATION.in_app(), value=None, label="variation")
            api_button = gr.Button(visible=False)

        outputs = [audio, midi_file, summary]
        details = dict(fn=handlers.show_details, inputs=[midi_file, summary],
                       outputs=[headline, grid, feel, seed, reuse], queue=False, api_visibility="private")
        ui_inputs = [style, tempo, bars, kit, humanize, swing_override, swing, fill_every, temperature, top_k, top_p,
                     seed, random_seed, variation]
        api_inputs = [style, api_tempo, bars, api_kit, humanize, swing_override, api_swing, api_fill_every,
                      api_temperature, api_top_k, api_top_p, seed, random_seed, api_variation]
        generate_btn.click(handlers.generate, ui_inputs, outputs, api_name="generate_in_page",
                           api_visibility="private").success(**details)
        api_button.click(handlers.generate, api_inputs, outputs, api_name="generate")
        examples.load_input_event.then(handlers.generate, ui_inputs, outputs, api_name="generate_example",
                                       api_visibility="private").success(**details)
        gr.api(handlers.styles, api_name="styles")

        style.change(handlers.apply_preset, style,
                     [description, tempo, kit, swing, fill_every, temperature, top_k, top_p, variation],
                     queue=False, api_visibility="private")
        swing_override.change(lambda on: gr.update(interactive=on), swing_override, swing, queue=False,
                              api_visibility="private")
        reuse.click(lambda: False, None, random_seed, queue=False, api_visibility="private")
    return demo


def launch(blocks: gr.Blocks, **kwargs: Any) -> tuple[Any, str, str]:
    """Queue and launch ``blocks`` with the app's theme, for a public Space: every event through the
    bounded queue (no direct ``/run`` route), every server function as a job that stops when its
    client is gone (:mod:`drumgen.web.serving`), the guard in front of gradio's routes
    (:mod:`drumgen.web.guard`), no monitoring page or run history, a bounded number of sessions.
    ``kwargs`` go to ``Blocks.launch`` (server name and port default to ``$GRADIO_SERVER_NAME`` /
    ``$GRADIO_SERVER_PORT``)."""
    queue_every_event(blocks)
    blocks.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX, api_open=False)
    drop_queue_analytics(blocks)
    set_compute_slots(QUEUE_CONCURRENCY)
    for fn in blocks.fns.values():
        if fn.fn is not None:
            fn.fn = run_as_job(fn.fn)
    uploads = upload_rule_for(blocks)
    guard = Guard(blocks, uploads)
    app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
    app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), guard.middleware()]
    kwargs.setdefault("max_file_size", MAX_UPLOAD_BYTES if uploads else 0)
    kwargs.setdefault("enable_monitoring", False)
    kwargs.setdefault("run_history", False)
    kwargs.setdefault("state_session_capacity", SESSION_CAPACITY)
    return blocks.launch(theme=THEME, css=CSS, app_kwargs=app_kwargs, **kwargs)


def main() -> None:
    """Load and warm up the model, build the app and serve it until stopped."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    logging.getLogger("drumgen").setLevel(logging.INFO)  # the warm-up's timing (drumgen.web.serving)
    install_cache_sweeper()
    use_private_gradio_folder()
    registry = StyleRegistry()
    source = EngineSource()
    startup_error = source.warm_up(registry.list()[0].id)
    temp = TempArea(max_age_s=files_max_age())  # inside gradio's cache: the very files it hands out
    blocks = build_app(AppHandlers(source, temp, registry), startup_error)
    # `docker stop`: exit cleanly (temp folder removed); frozen objects skip the shutdown garbage collection,
    # which on a busy machine made the exit take over 5 s
    signal.signal(signal.SIGTERM, lambda *_: (gc.freeze(), sys.exit(0)))
    launch(blocks)


if __name__ == "__main__":
    main()
