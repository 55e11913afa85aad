"""What the app's events do: each handler turns the UI's (or the API's) values into one engine call
and the engine's grooves into what the page shows. No Gradio layout here; see ``app.py``."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from drumgen.constants import STRAIGHT_SWING
from drumgen.engine import Groove
from drumgen.midi_io import MidiImportError, read_midi
from drumgen.request import GenerateRequest
from drumgen.styles import StyleRegistry
from drumgen.web.serving import (
    EngineSource,
    ModelUnavailableError,
    SaveError,
    TempArea,
    release_free_memory,
    use_one_compute_thread,
)
from drumgen.web.ui import drum_grid_svg, empty_feel_html, empty_grid_html, feel_html, headline_html, preset_html

log = logging.getLogger("drumgen.app")


def _user_error(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


class AppHandlers:
    """The app's callbacks over one :class:`EngineSource` and one :class:`TempArea`."""

    def __init__(self, source: EngineSource, temp: TempArea, styles: StyleRegistry | None = None) -> None:
        self.source = source
        self.temp = temp
        self.registry = styles or StyleRegistry()

    def run(self, request: GenerateRequest) -> list[Groove]:
        """The engine's grooves for ``request``; every failure becomes one line for the user."""
        use_one_compute_thread()
        try:
            return self.source.get().generate(request)
        except ValueError as exc:
            raise _user_error(str(exc)) from None
        except ModelUnavailableError as exc:
            log.error("generation failed: %s", exc)
            raise _user_error(f"the model is not available: {exc}") from None
        except Exception as exc:  # a bug: one clear line for the user, the traceback in the log
            log.exception("generation failed unexpectedly")
            raise _user_error(f"generation failed unexpectedly ({type(exc).__name__}: {exc}); please try other "
                              "settings or report it") from None

    def generate(
        self, style: str, tempo: float | None = None, bars: int = 4, kit: str | None = None, humanize: float = 100,
        swing_override: bool = False, swing: float | None = None, fill_every: int | None = None,
        temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
        seed: int | None = None, random_seed: bool = True, variation: float | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's idiom)
    ) -> tuple[str | None, str, dict[str, Any]]:
        """Generate one humanized drum groove.

        Empty values (``None``) take the style's own (tempo, kit, fills, sampling, variation, swing).
        humanize and variation are 0-100 %; swing (50-75 %) is used only when swing_override is true;
        fill_every is 0 (off), 2, 4 or 8; seed is used when random_seed is false. Returns the audio (WAV),
        the .mid file and a JSON summary (style, tempo, bars, seed used, settings, model version,
        measured feel).
        """
        progress(0.1, desc="Sampling the groove")
        request = GenerateRequest(
            style=style, bars=bars, tempo=tempo, seed=None if random_seed else seed, temperature=temperature,
            top_k=top_k, top_p=top_p, humanize=humanize / 100, swing=swing if swing_override else None, kit=kit or None,
            fill_every=fill_every, variation=None if variation is None else variation / 100,
        )
        groove = self.run(request)[0]
        progress(0.8, desc="Encoding the preview")
        preview = self.preview(groove)
        try:
            audio_path, midi_path, notices = self.temp.save(groove, preview)
        except SaveError as exc:
            raise _user_error(str(exc)) from None
        summary = {**groove.summary, "notices": notices}
        del groove  # its audio buffer (MBs) goes back to the heap, and the heap's free memory to the OS
        release_free_memory()
        for notice in notices:
            gr.Warning(notice)
        return audio_path, midi_path, summary

    def preview(self, groove: Groove) -> bytes | None:
        """The groove's looping MP3 preview, or None (with a notice on the groove) when it cannot be made."""
        try:
            return self.source.get().preview(groove)
        except (OSError, RuntimeError, ValueError) as exc:  # soundfile reports encoder failures as RuntimeError
            groove.notices.append(f"the audio preview could not be made ({exc}); the MIDI file is fine")
            log.warning("%s", groove.notices[-1])
            return None

    def styles(self) -> list[dict[str, Any]]:
        """The style presets (producers first), each as a dict of its settings."""
        return [p.to_dict() for p in self.registry.list()]

    def show_details(self, midi_path: str | None, summary: dict[str, Any] | None) -> tuple[Any, ...]:
        """Headline, drum grid and feel readout of the groove just made (read back from its .mid); its
        seed goes into the seed box."""
        if not midi_path or not summary:
            return "", empty_grid_html(), empty_feel_html(), gr.update(), gr.update(visible=False)
        try:
            pattern = read_midi(midi_path, bars=int(summary["bars"])).pattern
        except (MidiImportError, OSError) as exc:
            log.warning("could not read back %s: %s", midi_path, exc)
            return headline_html(summary), empty_grid_html(), feel_html(summary), summary["seed"], gr.update()
        return (headline_html(summary), drum_grid_svg(pattern), feel_html(summary), summary["seed"],
                gr.update(visible=True))

    def apply_preset(self, style: str) -> tuple[Any, ...]:
        """A style's description and defaults: tempo, kit, swing, fills, sampling and variation."""
        p = self.registry.get(style)
        return (preset_html(p), p.default_tempo, p.kit, p.humanize.swing or STRAIGHT_SWING, p.fill_every,
                p.temperature, p.top_k, p.top_p, round(100 * p.variation))
