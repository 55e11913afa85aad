"""MidiDrumiGen web app and API (Gradio): widgets and wiring only.

Every groove comes from the engine (:mod:`drumgen.engine`), the one the CLI uses; the handlers are in
:mod:`drumgen.web.handlers`. ``python app.py`` serves on ``$GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT``
(gradio's defaults, 127.0.0.1:7860, when unset). API endpoints: ``/generate``, ``/generate_variations``,
``/humanize``, ``/continue``, ``/reroll``, ``/drumify`` (their shapes: :mod:`drumgen.web.handlers`) and
``/styles``. Importing this module does no work: :func:`main` loads the model and starts the server.
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
from drumgen.constants import MAX_UI_VARIATIONS
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
    VARIATIONS,
    ChoiceLimit,
)
from drumgen.midi_io import MAX_MIDI_BYTES
from drumgen.request import resolve_drum_map
from drumgen.styles import StyleRegistry
from drumgen.uploads import DEFAULT_KEEP
from drumgen.web.guard import Guard, queue_every_event, upload_rule_for
from drumgen.web.handlers import CARD_OUTPUTS, PAGE_OUTPUTS, AppHandlers
from drumgen.web.serving import (
    EngineSource,
    TempArea,
    cache_sweep_setting,
    drop_queue_analytics,
    files_max_age,
    install_cache_sweeper,
    install_session_eviction,
    run_as_job,
    set_compute_slots,
    use_private_gradio_folder,
)
from drumgen.web.ui import (
    CSS,
    MidiUpload,
    NamedDropdown,
    NamedNumber,
    NamedSlider,
    StrictCheckbox,
    VoiceLocks,
    drum_map_choices,
    empty_feel_html,
    empty_grid_html,
    kit_label,
    preset_html,
)

log = logging.getLogger("drumgen.app")

FILL_CHOICES = [("Off", 0), ("Every 2 bars", 2), ("Every 4 bars", 4), ("Every 8 bars", 8)]
MODE_CHOICES = [("Humanize it", "humanize"), ("Continue it", "continue"), ("Re-roll around locked voices", "reroll"),
                ("Drumify a part (bass, melody)", "drumify")]
EXAMPLES = [  # style, tempo, bars, kit: one click per producer
    ("j_dilla", 90, 4, "standard"), ("metro_boomin", 140, 8, "tr808"), ("questlove", 100, 8, "room"),
]
QUEUE_CONCURRENCY, QUEUE_MAX = 2, 32
SESSION_CAPACITY = 200  # sessions gradio keeps (about 250 KB each); idle ones go after the files' lifetime
ENGINE_EVENTS = "engine"  # every event that runs the engine shares one pool of QUEUE_CONCURRENCY workers
MAX_UPLOAD_BYTES = MAX_MIDI_BYTES  # gradio's /upload route takes files only as large as the MIDI reader does
THEME = gr.themes.Soft(
    primary_hue="orange", neutral_hue="slate",
    font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],  # no web-font download
    font_mono=["ui-monospace", "SFMono-Regular", "monospace"],
)
WAVEFORM = dict(waveform_color="#cbd5e1", waveform_progress_color="#f97316")


def build_app(handlers: AppHandlers, startup_error: str | None = None) -> gr.Blocks:
    """The Blocks app over ``handlers`` (not yet queued or launched; see :func:`launch`)."""
    styles = handlers.registry.list()
    default = styles[0]

    def style_id(name: str) -> str:
        return handlers.registry.get(name).id

    def drum_map_id(name: str) -> str:
        return resolve_drum_map(name).id

    with gr.Blocks(title="MidiDrumiGen: drum grooves in a producer's style", analytics_enabled=False,
                   delete_cache=cache_sweep_setting(files_max_age())) as demo:
        gr.HTML('<div id="hero"><h1>Midi<span>Drumi</span>Gen</h1><p>Drum grooves that play like a producer '
                'or a genre. Pick a style, press Generate, listen, and drag the humanized MIDI into your DAW; or '
                'bring your own MIDI to humanize, continue, re-roll or drumify.</p></div>')
        if startup_error:
            gr.HTML(f'<div class="preset" style="color:#dc2626">Model not loaded: {html.escape(startup_error)}</div>')
        style_limit = ChoiceLimit("style", tuple(p.id for p in styles))
        maps = drum_map_choices()
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
                    swing = NamedSlider.of(SWING, value=default.humanize.swing or SWING.lo, step=0.5,
                                           label="Swing (%)", interactive=False)
                    swing_override = StrictCheckbox.of("swing_override", value=False,
                                                       label="Override the style's swing")
                variations = NamedSlider.of(VARIATIONS, value=1, step=1, label="Variations",
                                            info="grooves per click, each with its own player and download")
                with gr.Row(equal_height=True):
                    drum_map = NamedDropdown.of(ChoiceLimit("drum_map", tuple(i for _, i in maps)),
                                                resolve=drum_map_id, choices=maps, value="gm", label="Export for",
                                                info="the MIDI notes of your drum instrument", scale=3)
                    split_tracks = StrictCheckbox.of("split_tracks", value=False, label="One track per kit piece",
                                                     scale=2, min_width=120)
                with gr.Accordion("Advanced", open=False):
                    temperature = NamedSlider.of(TEMPERATURE, value=default.temperature, step=0.05,
                                                 label="Temperature", info="0 = always the likeliest hit")
                    with gr.Row():
                        top_k = NamedSlider.of(TOP_K, value=default.top_k, step=1, label="Top-k", info="0 = off")
                        top_p = NamedSlider.of(TOP_P, value=default.top_p, step=0.01, label="Top-p")
                    with gr.Row(equal_height=True):
                        seed = NamedNumber.of(SEED, value=0, label="Seed", scale=2)
                        random_seed = StrictCheckbox.of("random_seed", value=True, label="Random seed", scale=1,
                                                        min_width=110)
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                with gr.Accordion("Bring your own MIDI", open=True, elem_id="own-midi"):
                    upload = MidiUpload.of(label="Your MIDI file (.mid, at most 2 MB)", height=110,
                                           elem_id="midi-upload")
                    mode = gr.Radio(MODE_CHOICES, value="humanize", label="What to do with it", elem_id="mode")
                    quantize = StrictCheckbox.of("quantize", value=False, label="Quantize it first (a played file)")
                    only_new = StrictCheckbox.of("only_new", value=False, label="Only the new bars", visible=False,
                                                 info="Continue adds as many bars as Bars says, after your file's")
                    keep = VoiceLocks.of(value=list(DEFAULT_KEEP), label="Keep these voices exactly", visible=False,
                                         elem_id="upload-keep")
                    upload_btn = gr.Button("Use my MIDI", variant="secondary", elem_id="upload-btn")
                examples = gr.Examples(examples=[list(e) for e in EXAMPLES], inputs=[style, tempo, bars, kit],
                                       example_labels=[f"{handlers.registry.get(s).name} · {t} BPM · {b} bars"
                                                       for s, t, b, _ in EXAMPLES],
                                       label="One-click producer grooves", cache_examples=False,
                                       api_visibility="private")
            with gr.Column(scale=7, min_width=320):
                with gr.Row(equal_height=False):
                    headline = gr.HTML("", scale=5)
                    reuse = gr.Button("Reuse this seed", size="sm", scale=0, min_width=130, visible=False,
                                      elem_id="reuse-btn")
                cards: list[dict[str, Any]] = []
                for i in range(MAX_UI_VARIATIONS):
                    n = i + 1
                    with gr.Column(visible=i == 0, elem_classes=["variation-card"], elem_id=f"variation-{n}") as card:
                        title = gr.HTML("")
                        with gr.Row(equal_height=False):
                            audio = gr.Audio(label="Preview (loops)", type="filepath", interactive=False,
                                             autoplay=i == 0, loop=True, buttons=["download"], min_width=280,
                                             elem_id=f"groove-audio-{n}", waveform_options=gr.WaveformOptions(
                                                 **WAVEFORM))
                            midi = gr.File(label="MIDI file (humanized): drag it into your DAW", interactive=False,
                                           height=90, min_width=240, elem_id=f"groove-midi-{n}")
                        grid = gr.HTML(empty_grid_html(), label="Drum grid")
                        with gr.Row(equal_height=True, elem_classes=["lock-row"]):
                            locks = VoiceLocks.of(value=[], label="Lock voices, re-roll the rest", scale=5,
                                                  min_width=240, elem_id=f"locks-{n}")
                            with gr.Column(scale=1, min_width=130):
                                reroll = gr.Button("Re-roll", size="sm", elem_id=f"reroll-{n}")
                                wav_button = gr.Button("Full WAV", size="sm", elem_id=f"wav-button-{n}")
                        wav = gr.File(label="Full-quality WAV", interactive=False, visible=False, height=70,
                                      elem_id=f"groove-wav-{n}")
                        feel = gr.HTML(empty_feel_html(), label="Feel")
                        shown = gr.State(None)
                    cards.append(dict(card=card, title=title, audio=audio, midi=midi, grid=grid, feel=feel, wav=wav,
                                      state=shown, locks=locks, reroll=reroll, wav_button=wav_button))
                zip_file = gr.File(label="All variations (.zip): every .mid and preview", interactive=False,
                                   visible=False, height=70, elem_id="groove-zip")
                with gr.Accordion("API summary (JSON)", open=False):
                    summary = gr.JSON(label="Summary")
                gr.HTML(f'<div class="footer">drumgen {__version__}: a small transformer trained on the Groove MIDI '
                        'Dataset (CC BY 4.0). Metro Boomin has no trap data behind it: it is hip-hop conditioning '
                        'at half-time plus trap hat and 808 rules. API endpoints <code>/generate</code>, '
                        '<code>/generate_variations</code>, <code>/humanize</code>, <code>/continue</code>, '
                        '<code>/reroll</code>, <code>/drumify</code> and <code>/styles</code>: see "Use via API" '
                        'below.</div>')

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
            api_midi = MidiUpload.of(label="midi")
            api_keep = VoiceLocks.of(value=list(DEFAULT_KEEP), label="keep")
            api_quantize = StrictCheckbox.of("quantize", value=False, label="quantize")
            api_only_new = StrictCheckbox.of("only_new", value=False, label="only_new")
            # the API's seed is used when given (the page's "Random seed" box starts ticked); none = random
            api_seed = NamedNumber.of(SEED, value=None, label="seed")
            api_random_seed = StrictCheckbox.of("random_seed", value=False, label="random_seed")
            api_one = NamedNumber.of(VARIATIONS, value=1, label="variations")
            api_four = NamedNumber.of(VARIATIONS, value=MAX_UI_VARIATIONS, label="variations")
            api_preview = gr.Audio(type="filepath", label="preview")
            api_midi_out = gr.File(label="midi")
            api_summary = gr.JSON(label="summary")
            api_zip = gr.File(label="zip")
            api_buttons = {name: gr.Button(visible=False) for name in
                           ("generate", "generate_variations", "humanize", "continue", "reroll", "drumify")}

        engine = dict(concurrency_id=ENGINE_EVENTS)
        private = dict(api_visibility="private")
        page_outputs = [dict(headline=headline, seed=seed, reuse=reuse, zip=zip_file, summary=summary)[name]
                        for name in PAGE_OUTPUTS]
        page_outputs += [card[name] for card in cards for name in CARD_OUTPUTS]
        ui_inputs = [style, tempo, bars, kit, humanize, swing_override, swing, fill_every, temperature, top_k, top_p,
                     seed, random_seed, variation, variations, drum_map, split_tracks]
        generate_btn.click(handlers.page_generate, ui_inputs, page_outputs, api_name="generate_in_page", **engine,
                           **private)
        examples.load_input_event.then(handlers.page_generate, ui_inputs, page_outputs, api_name="generate_example",
                                       **engine, **private)
        upload_btn.click(handlers.page_upload, [upload, mode, quantize, only_new, keep, *ui_inputs], page_outputs,
                         api_name="upload_in_page", **engine, **private)
        for n, card in enumerate(cards, start=1):
            card["reroll"].click(handlers.page_reroll, [card["state"], card["locks"], *ui_inputs], page_outputs,
                                 api_name=f"reroll_in_page_{n}", **engine, **private)
            card["wav_button"].click(handlers.full_wav, card["state"], card["wav"], api_name=f"full_wav_{n}",
                                     **engine, **private)

        api_common = [style, api_tempo, bars, api_kit, humanize, swing_override, api_swing, api_fill_every,
                      api_temperature, api_top_k, api_top_p, api_seed, api_random_seed, api_variation]
        api_sampling = [api_kit, api_fill_every, api_temperature, api_top_k, api_top_p, api_variation, api_seed,
                        api_random_seed, api_one, drum_map, split_tracks]
        one_groove = [api_preview, api_midi_out, api_summary]
        grooves = [*one_groove, api_zip]
        api_buttons["generate"].click(handlers.generate, [*api_common, drum_map, split_tracks], one_groove,
                                      api_name="generate", **engine)
        api_buttons["generate_variations"].click(handlers.generate_variations,
                                                 [*api_common, api_four, drum_map, split_tracks], grooves,
                                                 api_name="generate_variations", **engine)
        api_buttons["humanize"].click(handlers.humanize, [api_midi, style, humanize, swing_override, api_swing,
                                                          api_quantize, api_kit, api_seed, api_random_seed, api_one,
                                                          drum_map, split_tracks], grooves, api_name="humanize",
                                      **engine)
        api_buttons["continue"].click(handlers.continue_groove, [api_midi, style, bars, api_only_new, humanize,
                                                                 swing_override, api_swing, *api_sampling], grooves,
                                      api_name="continue", **engine)
        api_buttons["reroll"].click(handlers.reroll, [api_midi, style, api_keep, humanize, swing_override, api_swing,
                                                      *api_sampling], grooves, api_name="reroll", **engine)
        api_buttons["drumify"].click(handlers.drumify, [api_midi, style, humanize, swing_override, api_swing,
                                                        *api_sampling], grooves, api_name="drumify", **engine)
        gr.api(handlers.styles, api_name="styles")

        style.change(handlers.apply_preset, style,
                     [description, tempo, kit, swing, fill_every, temperature, top_k, top_p, variation],
                     queue=False, **private)
        swing_override.change(lambda on: gr.update(interactive=on), swing_override, swing, queue=False, **private)
        mode.change(handlers.mode_options, mode, [quantize, only_new, keep], queue=False, **private)
        reuse.click(lambda: False, None, random_seed, queue=False, **private)
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
    install_session_eviction()
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
