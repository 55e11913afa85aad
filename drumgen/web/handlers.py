"""What the app's events do: each handler turns the UI's (or the API's) values into one engine call
and the engine's grooves into what the page or an API client gets. No Gradio layout here; see ``app.py``.

Every groove is handed out as its ``.mid`` (in the chosen drum map, split or not) and its looping MP3
preview; a click's variations also as one ``.zip``; the full WAV only when the page asks for it.
API shapes:

- ``/generate``: ``(preview, midi, summary)`` of one groove;
- ``/generate_variations``, ``/humanize``, ``/continue``, ``/reroll``, ``/drumify``:
  ``(preview, midi, summary, zip)``: the first variation's preview and ``.mid``, its summary with
  ``"variations"`` (every variation's summary, each naming its ``file`` and ``preview`` in the zip),
  and the zip of every variation's ``.mid`` and ``.mp3``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from drumgen.audio import AudioUnavailableError
from drumgen.constants import MAX_UI_VARIATIONS, STRAIGHT_SWING
from drumgen.drum_maps import DEFAULT_DRUM_MAP
from drumgen.engine import Engine, Groove
from drumgen.limits import VARIATIONS
from drumgen.midi_io import MidiImportError, pattern_to_midi_bytes
from drumgen.pattern import Pattern
from drumgen.request import GenerateRequest
from drumgen.styles import StyleRegistry
from drumgen.uploads import DEFAULT_KEEP, ModeOptions, display_name, read_upload, run_mode
from drumgen.web.downloads import write_full_wav, zip_bytes, zip_name
from drumgen.web.serving import (
    EngineSource,
    ModelUnavailableError,
    SaveError,
    TempArea,
    release_free_memory,
    use_one_compute_thread,
)
from drumgen.web.ui import (
    drum_grid_svg,
    empty_feel_html,
    empty_grid_html,
    feel_html,
    headline_html,
    preset_html,
    variation_html,
)

log = logging.getLogger("drumgen.app")

# The page's outputs, in the order app.py lists its components: the shared ones, then per variation card.
PAGE_OUTPUTS = ("headline", "seed", "reuse", "zip", "summary")
CARD_OUTPUTS = ("card", "title", "audio", "midi", "grid", "feel", "wav", "state")
NO_FILE = "no MIDI file: drop a .mid or .midi file first"


def _user_error(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


@dataclass(frozen=True)
class PageGroove:
    """What the page keeps of a groove it shows (session state): its notes in General MIDI as a
    ``.mid`` (a re-roll's input and the full WAV's score, whatever drum map the download uses), its
    file name, kit and sample rate."""

    midi: bytes
    filename: str
    kit: str
    sample_rate: int


@dataclass
class Made:
    """One groove as handed out: its preview and ``.mid`` paths, summary, and what the page keeps."""

    preview: str | None
    midi: str
    summary: dict[str, Any]
    pattern: Pattern
    page: PageGroove


@dataclass
class Batch:
    """A click's grooves, and the zip of them all (when asked for)."""

    made: list[Made]
    zip: str | None = None

    def api(self) -> tuple[str | None, str, dict[str, Any], str | None]:
        """``(preview, midi, summary, zip)``: see the module docstring."""
        first = self.made[0]
        return first.preview, first.midi, {**first.summary, "variations": [m.summary for m in self.made]}, self.zip


class AppHandlers:
    """The app's callbacks over one :class:`EngineSource` and one :class:`TempArea`."""

    def __init__(self, source: EngineSource, temp: TempArea, styles: StyleRegistry | None = None) -> None:
        self.source = source
        self.temp = temp
        self.registry = styles or StyleRegistry()

    # --- running the engine -------------------------------------------------------------------------
    def call(self, make: Callable[[Engine], list[Groove]]) -> list[Groove]:
        """``make``'s grooves on the engine; every failure becomes one line for the user."""
        use_one_compute_thread()
        try:
            return make(self.source.get())
        except ValueError as exc:  # a bad value or a bad file (MidiImportError): its own message
            raise _user_error(str(exc)) from None
        except ModelUnavailableError as exc:
            log.error("generation failed: %s", exc)
            raise _user_error(f"the model is not available: {exc}") from None
        except Exception as exc:  # a bug: one clear line for the user, the traceback in the log
            log.exception("generation failed unexpectedly")
            raise _user_error(f"generation failed unexpectedly ({type(exc).__name__}: {exc}); please try other "
                              "settings or report it") from None

    def run(self, request: GenerateRequest) -> list[Groove]:
        """The engine's grooves for ``request`` (see :meth:`call`)."""
        return self.call(lambda engine: engine.generate(request))

    def preview(self, groove: Groove) -> bytes | None:
        """The groove's looping MP3 preview, or None (with a notice on the groove) when it cannot be made."""
        try:
            return self.source.get().preview(groove)
        except (OSError, RuntimeError, ValueError) as exc:  # soundfile reports encoder failures as RuntimeError
            groove.notices.append(f"the audio preview could not be made ({exc}); the MIDI file is fine")
            log.warning("%s", groove.notices[-1])
            return None

    def make(self, make: Callable[[Engine], list[Groove]], progress: Any, bundle: bool) -> Batch:
        """Run ``make``, then hand each groove out: preview, ``.mid``, summary (with its notices) and, with
        ``bundle``, one zip of them all. Each distinct notice is shown once."""
        progress(0.1, desc="Sampling")
        grooves = self.call(make)
        progress(0.7, desc="Encoding the previews")
        made, files, shown = [], [], []
        for groove in grooves:
            preview = self.preview(groove)
            try:
                preview_path, midi_path, notices = self.temp.save(groove, preview)
            except SaveError as exc:
                raise _user_error(str(exc)) from None
            summary = {**groove.summary, "preview": Path(preview_path).name if preview_path else None,
                       "notices": notices}
            settings = summary["settings"]
            in_gm = settings["drum_map"] == DEFAULT_DRUM_MAP and not settings["split_tracks"]
            gm = groove.midi if in_gm else pattern_to_midi_bytes(groove.pattern, check=False)
            page = PageGroove(gm, groove.filename, settings["kit"], groove.sample_rate)
            made.append(Made(preview_path, midi_path, summary, groove.pattern, page))
            files.append((groove.filename, groove.midi))
            if preview_path and preview:
                files.append((Path(preview_path).name, preview))
            shown += [n for n in notices if n not in shown]
        del grooves  # their audio buffers (MBs) go back to the heap, and the heap's free memory to the OS
        release_free_memory()
        batch = Batch(made)
        if bundle:
            try:
                batch.zip = self.temp.write(zip_name(made[0].summary["file"], len(made)), zip_bytes(files))
            except OSError as exc:
                raise _user_error(f"the grooves were made but their zip could not be saved on the server "
                                  f"({exc.strerror or exc}); try again later with seed {made[0].summary['seed']}"
                                  ) from None
        for notice in shown:
            gr.Warning(notice)
        return batch

    def upload(self, mode: str, midi: str | None, request: GenerateRequest, options: ModeOptions,
               progress: Any, bundle: bool = True) -> Batch:
        """An uploaded file through one of the four modes (see :mod:`drumgen.uploads`)."""
        if not midi:
            raise _user_error(NO_FILE)
        return self.make(lambda engine: run_mode(engine, mode, read_upload(midi), request, options,
                                                 name=display_name(midi)), progress, bundle)

    @staticmethod
    def request(style: str, tempo: float | None = None, bars: int = 4, kit: str | None = None, humanize: float = 100,
                swing_override: bool = False, swing: float | None = None, fill_every: int | None = None,
                temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                seed: int | None = None, random_seed: bool = True, variation: float | None = None,
                variations: int = 1, drum_map: str | None = DEFAULT_DRUM_MAP, split_tracks: bool = False
                ) -> GenerateRequest:
        """The engine's request for the app's values: humanize and variation in percent, swing only with
        swing_override, the seed only without random_seed; ``None`` = the style's own."""
        try:
            count = VARIATIONS.check(variations)
        except ValueError as exc:
            raise _user_error(str(exc)) from None
        return GenerateRequest(
            style=style, bars=bars, tempo=tempo, seed=None if random_seed else seed, count=count,
            temperature=temperature, top_k=top_k, top_p=top_p, humanize=humanize / 100,
            swing=swing if swing_override else None, kit=kit or None, fill_every=fill_every,
            variation=None if variation is None else variation / 100, drum_map=drum_map or DEFAULT_DRUM_MAP,
            split_tracks=split_tracks)

    # --- the API ------------------------------------------------------------------------------------
    def generate(
        self, style: str, tempo: float | None = None, bars: int = 4, kit: str | None = None, humanize: float = 100,
        swing_override: bool = False, swing: float | None = None, fill_every: int | None = None,
        temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
        seed: int | None = None, random_seed: bool = True, variation: float | None = None,
        drum_map: str = DEFAULT_DRUM_MAP, split_tracks: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's idiom)
    ) -> tuple[str | None, str, dict[str, Any]]:
        """Generate one humanized drum groove.

        Empty values (``None``) take the style's own (tempo, kit, fills, sampling, variation, swing).
        humanize and variation are 0-100 %; swing (50-75 %) is used only when swing_override is true;
        fill_every is 0 (off), 2, 4 or 8; seed is used when random_seed is false; drum_map names the
        target instrument's notes (see python -m drumgen drum-maps); split_tracks writes one track per
        kit piece. Returns the looping MP3 preview, the .mid file and a JSON summary (style, tempo,
        bars, seed used, settings, model version, measured feel, notices).
        """
        request = self.request(style, tempo, bars, kit, humanize, swing_override, swing, fill_every, temperature,
                               top_k, top_p, seed, random_seed, variation, 1, drum_map, split_tracks)
        first = self.make(lambda engine: engine.generate(request), progress, bundle=False).made[0]
        return first.preview, first.midi, first.summary

    def generate_variations(
        self, style: str, tempo: float | None = None, bars: int = 4, kit: str | None = None, humanize: float = 100,
        swing_override: bool = False, swing: float | None = None, fill_every: int | None = None,
        temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
        seed: int | None = None, random_seed: bool = True, variation: float | None = None, variations: int = 4,
        drum_map: str = DEFAULT_DRUM_MAP, split_tracks: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[str | None, str, dict[str, Any], str | None]:
        """Generate 1-4 variations (seeds seed, seed+1, ...) with /generate's settings. Returns the first
        variation's preview and .mid, its summary with "variations" (each variation's summary, naming its
        file and preview in the zip) and a .zip of every variation's .mid and .mp3."""
        request = self.request(style, tempo, bars, kit, humanize, swing_override, swing, fill_every, temperature,
                               top_k, top_p, seed, random_seed, variation, variations, drum_map, split_tracks)
        return self.make(lambda engine: engine.generate(request), progress, bundle=True).api()

    def humanize(
        self, midi: str | None, style: str, humanize: float = 100, swing_override: bool = False,
        swing: float | None = None, quantize: bool = False, kit: str | None = None, seed: int | None = None,
        random_seed: bool = True, variations: int = 1, drum_map: str = DEFAULT_DRUM_MAP, split_tracks: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[str | None, str, dict[str, Any], str | None]:
        """Give a drum MIDI file (.mid/.midi, at most 2 MB) a style's feel: every note is kept (pitch and
        grid step), timing and velocity follow the style; quantize first snaps a played file to the
        grid. Returns (preview, midi, summary, zip) as /generate_variations does."""
        request = self.request(style, humanize=humanize, swing_override=swing_override, swing=swing, kit=kit,
                               seed=seed, random_seed=random_seed, variations=variations, drum_map=drum_map,
                               split_tracks=split_tracks)
        return self.upload("humanize", midi, request, ModeOptions(quantize=quantize), progress).api()

    def continue_groove(
        self, midi: str | None, style: str, bars: int = 4, only_new: bool = False, humanize: float = 100,
        swing_override: bool = False, swing: float | None = None, kit: str | None = None,
        fill_every: int | None = None, temperature: float | None = None, top_k: int | None = None,
        top_p: float | None = None, variation: float | None = None, seed: int | None = None,
        random_seed: bool = True, variations: int = 1, drum_map: str = DEFAULT_DRUM_MAP, split_tracks: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[str | None, str, dict[str, Any], str | None]:
        """Continue a drum MIDI file with `bars` new bars in a style, prompted by its last bars (up to 8);
        the file's own bars are kept. only_new returns the new bars alone. Returns (preview, midi,
        summary, zip) as /generate_variations does."""
        request = self.request(style, None, bars, kit, humanize, swing_override, swing, fill_every, temperature,
                               top_k, top_p, seed, random_seed, variation, variations, drum_map, split_tracks)
        return self.upload("continue", midi, request, ModeOptions(only_new=only_new), progress).api()

    def reroll(
        self, midi: str | None, style: str, keep: Sequence[str] | str = DEFAULT_KEEP, humanize: float = 100,
        swing_override: bool = False, swing: float | None = None, kit: str | None = None,
        fill_every: int | None = None, temperature: float | None = None, top_k: int | None = None,
        top_p: float | None = None, variation: float | None = None, seed: int | None = None,
        random_seed: bool = True, variations: int = 1, drum_map: str = DEFAULT_DRUM_MAP, split_tracks: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[str | None, str, dict[str, Any], str | None]:
        """Keep the voices in `keep` (e.g. ["kick", "snare"]) of a drum MIDI file exactly and play the
        rest anew in a style. Returns (preview, midi, summary, zip) as /generate_variations does."""
        request = self.request(style, None, 4, kit, humanize, swing_override, swing, fill_every, temperature,
                               top_k, top_p, seed, random_seed, variation, variations, drum_map, split_tracks)
        return self.upload("reroll", midi, request, ModeOptions(keep=keep), progress).api()

    def drumify(
        self, midi: str | None, style: str, humanize: float = 100, swing_override: bool = False,
        swing: float | None = None, kit: str | None = None, fill_every: int | None = None,
        temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
        variation: float | None = None, seed: int | None = None, random_seed: bool = True, variations: int = 1,
        drum_map: str = DEFAULT_DRUM_MAP, split_tracks: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[str | None, str, dict[str, Any], str | None]:
        """Drums for any MIDI part (a bass line, a melody, a tapped rhythm): its onsets become the kick,
        the kit is played around them in a style, at the part's tempo and length. Returns (preview,
        midi, summary, zip) as /generate_variations does."""
        request = self.request(style, None, 4, kit, humanize, swing_override, swing, fill_every, temperature,
                               top_k, top_p, seed, random_seed, variation, variations, drum_map, split_tracks)
        return self.upload("drumify", midi, request, ModeOptions(), progress).api()

    def styles(self) -> list[dict[str, Any]]:
        """The style presets (producers first), each as a dict of its settings."""
        return [p.to_dict() for p in self.registry.list()]

    # --- the page -----------------------------------------------------------------------------------
    def page(self, batch: Batch) -> list[Any]:
        """The page's outputs (:data:`PAGE_OUTPUTS`, then :data:`CARD_OUTPUTS` per variation card)."""
        made = batch.made
        first = made[0].summary
        summary = batch.api()[2] if len(made) > 1 else first
        zip_update = gr.update(value=batch.zip, visible=True) if len(made) > 1 else gr.update(value=None,
                                                                                              visible=False)
        values: list[Any] = [headline_html(first, len(made)), first["seed"], gr.update(visible=True), zip_update,
                             summary]
        for i in range(MAX_UI_VARIATIONS):
            if i < len(made):
                one = made[i]
                values += [gr.update(visible=True), variation_html(i, one.summary) if len(made) > 1 else "",
                           one.preview, one.midi, drum_grid_svg(one.pattern), feel_html(one.summary),
                           gr.update(value=None, visible=False), one.page]
            else:
                values += [gr.update(visible=i == 0), "", None, None, empty_grid_html(), empty_feel_html(),
                           gr.update(value=None, visible=False), None]
        return values

    def page_generate(
        self, style: str, tempo: float | None, bars: int, kit: str | None, humanize: float, swing_override: bool,
        swing: float | None, fill_every: int | None, temperature: float | None, top_k: int | None,
        top_p: float | None, seed: int | None, random_seed: bool, variation: float | None, variations: int,
        drum_map: str, split_tracks: bool, progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> list[Any]:
        """The page's Generate: 1-4 variations into the cards."""
        request = self.request(style, tempo, bars, kit, humanize, swing_override, swing, fill_every, temperature,
                               top_k, top_p, seed, random_seed, variation, variations, drum_map, split_tracks)
        return self.page(self.make(lambda engine: engine.generate(request), progress, bundle=variations > 1))

    def page_upload(
        self, midi: str | None, mode: str, quantize: bool, only_new: bool, keep: Sequence[str], style: str,
        tempo: float | None, bars: int, kit: str | None, humanize: float, swing_override: bool,
        swing: float | None, fill_every: int | None, temperature: float | None, top_k: int | None,
        top_p: float | None, seed: int | None, random_seed: bool, variation: float | None, variations: int,
        drum_map: str, split_tracks: bool, progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> list[Any]:
        """The page's "Use my MIDI": the dropped file through the chosen mode into the cards."""
        request = self.request(style, tempo, bars, kit, humanize, swing_override, swing, fill_every, temperature,
                               top_k, top_p, seed, random_seed, variation, variations, drum_map, split_tracks)
        options = ModeOptions(quantize=quantize, only_new=only_new, keep=keep)
        return self.page(self.upload(mode, midi, request, options, progress, bundle=variations > 1))

    def page_reroll(
        self, shown: PageGroove | None, keep: Sequence[str], style: str, tempo: float | None, bars: int,
        kit: str | None, humanize: float, swing_override: bool, swing: float | None, fill_every: int | None,
        temperature: float | None, top_k: int | None, top_p: float | None, seed: int | None, random_seed: bool,
        variation: float | None, variations: int, drum_map: str, split_tracks: bool,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> list[Any]:
        """A card's Re-roll: the groove it shows is the input (its .mid read back), the ticked voices are
        kept exactly and the rest played anew; the results replace the cards."""
        if shown is None:
            raise _user_error("no groove to re-roll yet: press Generate or use a MIDI file first")
        if not keep:
            raise _user_error("tick the voices to keep (e.g. Kick and Snare), then press Re-roll")
        request = self.request(style, tempo, bars, kit, humanize, swing_override, swing, fill_every, temperature,
                               top_k, top_p, seed, random_seed, variation, variations, drum_map, split_tracks)
        options = ModeOptions(keep=keep)
        return self.page(self.make(lambda engine: run_mode(engine, "reroll", shown.midi, request, options,
                                                           name=shown.filename), progress, bundle=variations > 1))

    def full_wav(self, shown: PageGroove | None) -> Any:
        """A card's full-quality WAV (the renderer's 16-bit output, ring-out included), made when asked."""
        if shown is None:
            raise _user_error("no groove yet: press Generate first")
        use_one_compute_thread()
        try:
            path = write_full_wav(shown.midi, shown.kit, shown.sample_rate,
                                  self.temp.request_dir() / f"{Path(shown.filename).stem}.wav")
        except (AudioUnavailableError, FileNotFoundError, MidiImportError, OSError, RuntimeError) as exc:
            log.warning("full WAV failed: %s", exc)
            raise _user_error(f"the WAV could not be made ({exc}); the MIDI file is fine") from None
        return gr.update(value=str(path), visible=True)

    @staticmethod
    def mode_options(mode: str) -> tuple[Any, Any, Any]:
        """Show the options of the chosen mode only: quantize (humanize), only new bars (continue), the
        voices to keep (re-roll)."""
        return (gr.update(visible=mode == "humanize"), gr.update(visible=mode == "continue"),
                gr.update(visible=mode == "reroll"))

    def apply_preset(self, style: str) -> tuple[Any, ...]:
        """A style's description and defaults: tempo, kit, swing, fills, sampling and variation."""
        p = self.registry.get(style)
        return (preset_html(p), p.default_tempo, p.kit, p.humanize.swing or STRAIGHT_SWING, p.fill_every,
                p.temperature, p.top_k, p.top_p, round(100 * p.variation))
