"""UI-only helpers for the Gradio app (``app.py``): input components whose errors name their
field, the MIDI drop zone and the voice lock boxes, the drum-grid picture (inline SVGs, one per bar)
and the feel readout (HTML), and the page's CSS (the phone layout included).

Nothing here generates music; it only formats what the engine returns. Imports gradio, so the
library never imports this module.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.data_classes import ListFiles

from drumgen.constants import GHOST_MAX_VELOCITY
from drumgen.drum_maps import list_drum_maps
from drumgen.limits import ChoiceLimit, NumberLimit, check_bool
from drumgen.pattern import Pattern
from drumgen.uploads import MIDI_SUFFIXES
from drumgen.voices import PITCH_TO_VOICE, VOICES

# Grid rows top to bottom, as on a drum chart: cymbals over hats over toms over snare over kick.
GRID_VOICES: tuple[str, ...] = (
    "crash", "ride", "open_hat", "closed_hat", "high_tom", "mid_tom", "low_tom", "snare", "kick",
)
VOICE_LABELS: dict[str, str] = {
    "crash": "Crash", "ride": "Ride", "open_hat": "Open hat", "closed_hat": "Hi-hat", "high_tom": "High tom",
    "mid_tom": "Mid tom", "low_tom": "Low tom", "snare": "Snare", "kick": "Kick", "other": "Other",
}
KIT_LABELS: dict[str, str] = {"tr808": "TR-808"}  # others are their id, capitalized
ALWAYS_SHOWN = ("closed_hat", "snare", "kick")  # rows drawn even when empty
LINE_LAYOUTS = (1, 2, 4)  # bars a line of the grid: phone, narrow window, desktop (chosen by the CSS)
TWO_BARS_MAX_PX, ONE_BAR_MAX_PX = 1100, 480  # window widths at and below which a line holds 2 bars, 1 bar

# SVG geometry (user units; the picture scales to its container)
LABEL_W, STEP_W, ROW_H, HEAD_H = 64, 12, 19, 15
HIT_COLOR, GHOST_COLOR = "#f97316", "#8b5cf6"  # orange accents, violet ghost notes
MIN_OPACITY = 0.3  # velocity 1 -> 0.3, velocity 127 -> 1.0
OFFSET_SCALE_MS = 30.0  # the feel readout's offset bars span -30..+30 ms


def kit_label(kit: str) -> str:
    """Display name of a GM kit id: ``"tr808"`` -> ``"TR-808"``, ``"room"`` -> ``"Room"``."""
    return KIT_LABELS.get(kit, kit.title())


# --------------------------------------------------------------------------- field-named inputs
FIELD_CLASS = "drumgen-field-"  # the elem class naming a component's entry in _FIELDS


@dataclass(frozen=True)
class _Field:
    """What a named input checks against: its limit (or, for a checkbox, its name) and an optional
    resolver of other spellings."""

    limit: NumberLimit | ChoiceLimit | None = None
    name: str = "value"
    resolve: Callable[[str], Any] | None = None


_FIELDS: dict[str, _Field] = {}
_field_numbers = itertools.count()


def _with_field(kwargs: dict[str, Any], field: _Field) -> dict[str, Any]:
    """``kwargs`` with an elem class that names ``field``.

    Gradio builds a fresh component from its constructor arguments whenever an event updates one of
    its properties (``gr.update(interactive=...)``, an example's load), so attributes set after
    construction are lost on that copy; an elem class is a constructor argument and travels with it.
    """
    key = f"{FIELD_CLASS}{next(_field_numbers)}"
    _FIELDS[key] = field
    classes = kwargs.get("elem_classes") or []
    kwargs["elem_classes"] = [*([classes] if isinstance(classes, str) else classes), key]
    return kwargs


class _Named:
    """Mixin: ``preprocess`` checks the value against its entry of :mod:`drumgen.limits` and raises
    ``gr.Error`` naming the field and what is allowed.

    Gradio's own bound checks say only "Value 999 is greater than maximum value 300"; API callers
    need the field's name. ``is_template`` keeps the stock front-end component (the first base
    class names it, so the gradio component must come first in the bases).
    """

    is_template = True
    elem_classes: list[str] | str | None

    def field(self) -> _Field:
        """This input's field (a method, not a property: gradio reads every attribute while it builds
        a component, before ``elem_classes`` is set)."""
        classes = self.elem_classes or []
        for name in [classes] if isinstance(classes, str) else classes:
            if name.startswith(FIELD_CLASS):
                return _FIELDS[name]
        raise TypeError(f"{type(self).__name__} was not made with .of(): it has no field to check")

    def checked(self, payload: Any) -> Any:
        limit = self.field().limit
        assert limit is not None, "a checkbox checks its value with check_bool"
        try:
            return limit.check(payload)
        except ValueError as exc:
            raise _field_error(str(exc)) from None


def _field_error(message: str) -> gr.Error:
    """A bad-field answer for the caller; not a server fault, so no traceback in the log."""
    return gr.Error(message, print_exception=False)


class NamedSlider(gr.Slider, _Named):
    """A slider whose range and error come from a :class:`~drumgen.limits.NumberLimit` (make it with
    :meth:`of`; gradio reads a component's settings from its constructor's signature, so that stays
    the stock one)."""

    @classmethod
    def of(cls, limit: NumberLimit, **kwargs: Any) -> NamedSlider:
        kwargs.setdefault("precision", 0 if limit.whole else None)
        return cls(limit.lo, limit.hi, **_with_field(kwargs, _Field(limit)))

    def preprocess(self, payload: Any) -> float | int:
        return self.checked(payload)


class NamedNumber(gr.Number, _Named):
    """A number box (empty allowed: ``None``) checked against a :class:`~drumgen.limits.NumberLimit`."""

    @classmethod
    def of(cls, limit: NumberLimit, **kwargs: Any) -> NamedNumber:
        return cls(minimum=limit.lo, maximum=limit.hi, precision=0 if limit.whole else None,
                   **_with_field(kwargs, _Field(limit)))

    def preprocess(self, payload: Any) -> float | int | None:
        return None if payload is None else self.checked(payload)


class NamedDropdown(gr.Dropdown, _Named):
    """A dropdown whose unknown value raises ``gr.Error`` naming the field and the choices.

    ``resolve`` (optional) maps other spellings to a choice (e.g. a style's display name to its id)
    and raises ``ValueError`` with its own message for unknown ones.
    """

    @classmethod
    def of(cls, limit: ChoiceLimit, resolve: Callable[[str], Any] | None = None, **kwargs: Any) -> NamedDropdown:
        return cls(**_with_field(kwargs, _Field(limit, resolve=resolve)))

    def preprocess(self, payload: Any) -> Any:
        values = [value for _, value in self.choices]
        if payload is None or (payload in values and not isinstance(payload, bool)):
            return payload  # None: left out, the style's own
        resolve = self.field().resolve
        if resolve is not None and isinstance(payload, str):
            try:
                return resolve(payload)
            except ValueError as exc:
                raise _field_error(str(exc)) from None
        return self.checked(payload)


class StrictCheckbox(gr.Checkbox, _Named):
    """A checkbox that takes only true or false (gradio would read ``"false"`` or ``2`` as true)."""

    @classmethod
    def of(cls, name: str, **kwargs: Any) -> StrictCheckbox:
        return cls(**_with_field(kwargs, _Field(name=name)))

    def preprocess(self, payload: Any) -> bool:
        try:
            return check_bool(self.field().name, payload)
        except ValueError as exc:
            raise _field_error(str(exc)) from None


class MidiUpload(gr.File):
    """A drop zone (or API input) for one MIDI file that passes its path on as it is.

    The stock ``gr.File`` leaves an empty temp file in gradio's cache on every call (never swept)
    and answers a wrong type with its own wording; here the file is checked once, by
    :func:`drumgen.uploads.read_upload`, whose message names the file and the problem.
    """

    is_template = True

    @classmethod
    def of(cls, **kwargs: Any) -> MidiUpload:
        kwargs.setdefault("file_types", list(MIDI_SUFFIXES))
        return cls(type="filepath", file_count="single", **kwargs)

    def preprocess(self, payload: Any) -> str | None:
        if payload is None:
            return None
        file = payload[0] if isinstance(payload, ListFiles) else payload
        return str(file.path)


class VoiceLocks(gr.CheckboxGroup):
    """One box per voice (the voices a re-roll keeps). Passes the names on unchecked, so a bad one is
    named by :func:`drumgen.modes.reroll_upload` (``keep must name voices from ...``); an API call may
    also send them as one comma-separated string."""

    is_template = True

    @classmethod
    def of(cls, **kwargs: Any) -> VoiceLocks:
        return cls(choices=[(VOICE_LABELS[v], v) for v in VOICES], **kwargs)

    def preprocess(self, payload: Any) -> Any:
        return [] if payload is None else payload


def drum_map_choices() -> list[tuple[str, str]]:
    """The "Export for" dropdown: every drum-map preset as ``(name, id)``, General MIDI first."""
    return [(m.name, m.id) for m in list_drum_maps()]


# --------------------------------------------------------------------------- drum grid
def _voice(pitch: int) -> str:
    return PITCH_TO_VOICE.get(pitch, "other")


def _labels_svg(rows: list[str], height: float, bar: int) -> str:
    """The row labels that open a line of the grid. One precedes every bar; the CSS shows those
    that start a line at the page's width (classes ``lab-1``/``lab-2``/``lab-4``: every bar, every
    other bar, every fourth bar)."""
    classes = " ".join(f"lab-{n}" for n in LINE_LAYOUTS if bar % n == 0)
    text = "var(--body-text-color-subdued, #71717a)"
    out = [f'<svg class="grid-labels {classes}" viewBox="0 0 {LABEL_W} {height}" aria-hidden="true" '
           'xmlns="http://www.w3.org/2000/svg">']
    for r, voice in enumerate(rows):
        y = HEAD_H + r * ROW_H
        out.append(f'<text x="{LABEL_W - 7}" y="{y + ROW_H * 0.7:.1f}" font-size="11.5" text-anchor="end" '
                   f'fill="{text}">{VOICE_LABELS[voice]}</text>')
    out.append("</svg>")
    return "".join(out)


def _bar_svg(pattern: Pattern, bar: int, rows: list[str], height: float) -> str:
    """One bar: row bands, 16th/beat/bar lines, its number and its hits where they are played."""
    t16 = pattern.ticks_per_16th
    steps = pattern.ticks_per_bar // t16
    width = steps * STEP_W
    row_of = {v: i for i, v in enumerate(rows)}
    grid_line = "var(--border-color-primary, #d4d4d8)"
    text = "var(--body-text-color-subdued, #71717a)"
    out = [f'<svg class="grid-bar" data-steps="{steps}" viewBox="0 0 {width} {height}" overflow="visible" '
           'xmlns="http://www.w3.org/2000/svg">',
           f'<text x="3" y="{HEAD_H - 4}" font-size="10.5" fill="{text}">{bar + 1}</text>']
    for r in range(0, len(rows), 2):  # row bands
        out.append(f'<rect x="0" y="{HEAD_H + r * ROW_H}" width="{width}" height="{ROW_H}" fill="currentColor" '
                   'fill-opacity="0.045"/>')
    beat = steps // pattern.time_signature[0] or 1
    for s in range(steps + 1):  # 16th, beat and bar lines
        weight, opacity = (1.4, 1.0) if s % steps == 0 else (0.8, 0.9) if s % beat == 0 else (0.5, 0.45)
        out.append(f'<line x1="{s * STEP_W}" y1="{HEAD_H}" x2="{s * STEP_W}" y2="{HEAD_H + len(rows) * ROW_H}" '
                   f'stroke="{grid_line}" stroke-width="{weight}" stroke-opacity="{opacity}"/>')
    start, end = bar * pattern.ticks_per_bar, (bar + 1) * pattern.ticks_per_bar
    for note in pattern.notes:  # hits, drawn at their played time
        if not start <= note.onset < end:
            continue
        voice = _voice(note.pitch)
        cx = (note.onset - start) / t16 * STEP_W + STEP_W / 2
        cy = HEAD_H + row_of[voice] * ROW_H + ROW_H / 2
        tip = (f"<title>{VOICE_LABELS[voice]} - bar {bar + 1}, step {(note.onset - start) / t16 + 1:.2f}, "
               f"velocity {note.velocity}</title>")
        if note.velocity <= GHOST_MAX_VELOCITY:
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.6" fill="{GHOST_COLOR}" fill-opacity="0.18" '
                       f'stroke="{GHOST_COLOR}" stroke-width="1.5">{tip}</circle>')
        else:
            opacity = MIN_OPACITY + (1 - MIN_OPACITY) * note.velocity / 127
            w, h = STEP_W * 0.8, ROW_H - 6
            out.append(f'<rect x="{cx - w / 2:.1f}" y="{cy - h / 2:.1f}" width="{w:.1f}" height="{h}" rx="2.5" '
                       f'fill="{HIT_COLOR}" fill-opacity="{opacity:.2f}">{tip}</rect>')
    out.append("</svg>")
    return "".join(out)


def drum_grid_svg(pattern: Pattern) -> str:
    """The pattern as a grid of inline SVGs: one row per voice, one column per 16th step, one SVG
    per bar behind its row labels, laid out by the CSS: four bars a line on a wide page, fewer on a
    narrow one (so a phone's cells stay legible).

    Each hit is drawn where it is played (so swing and micro-timing show as leans off the
    grid lines); shade follows velocity; ghost notes (velocity <= 40) are violet rings.
    """
    used = {_voice(n.pitch) for n in pattern.notes}
    rows = [v for v in (*GRID_VOICES, "other") if v in used or v in ALWAYS_SHOWN]
    height = HEAD_H + len(rows) * ROW_H + 2
    cells = "".join(_labels_svg(rows, height, b) + _bar_svg(pattern, b, rows, height) for b in range(pattern.bars))
    legend = (
        '<div class="grid-legend">'
        f'<span><i style="background:{HIT_COLOR}"></i>hit (darker = louder)</span>'
        f'<span><i class="ring" style="border-color:{GHOST_COLOR}"></i>ghost note (velocity &le; '
        f'{GHOST_MAX_VELOCITY})</span>'
        '<span>each hit sits where it is played: swing and micro-timing lean off the lines</span></div>'
    )
    return (f'<div class="grid-wrap"><div class="panel-title">Drum grid</div>'
            f'<div class="drum-grid" role="img" aria-label="Drum grid: {pattern.bars} bars, {len(pattern.notes)} '
            f'hits">{cells}</div>{legend}</div>')


def empty_grid_html() -> str:
    """Placeholder shown before the first groove."""
    return ('<div class="grid-wrap empty">Press <b>Generate</b> to see the groove here: '
            'voices by 16th steps, louder hits darker, ghost notes as rings.</div>')


# --------------------------------------------------------------------------- feel readout
def _card(label: str, value: str, hint: str) -> str:
    return (f'<div class="feel-card"><div class="feel-label">{label}</div>'
            f'<div class="feel-value">{value}</div><div class="feel-hint">{hint}</div></div>')


def feel_html(summary: dict[str, Any]) -> str:
    """The feel measured on the generated groove: swing, timing, ghost notes, density, per-voice offsets."""
    feel = summary.get("feel") or {}
    settings = summary.get("settings") or {}
    swing = feel.get("swing")
    cards = "".join([
        _card("Swing", "straight" if swing is None else f"{swing:.0f} %",
              f"asked {settings['swing']:g} %" if settings.get("swing") is not None else "the style's own"),
        _card("Timing", f"&plusmn;{feel.get('mean_abs_offset_ms', 0):.0f} ms", "mean distance from the grid"),
        _card("Ghost notes", f"{100 * feel.get('ghost_share', 0):.0f} %",
              f"hits at velocity &le; {GHOST_MAX_VELOCITY}"),
        _card("Density", f"{feel.get('hits_per_bar', 0):.1f}", "hits per bar"),
    ])
    rows = []
    offsets = feel.get("offset_ms") or {}
    for voice in (*GRID_VOICES, "other"):
        if voice not in offsets:
            continue
        ms = float(offsets[voice])
        frac = max(-1.0, min(1.0, ms / OFFSET_SCALE_MS))
        left = 50 + min(0.0, frac) * 50
        side = "early" if ms < 0 else "late"
        rows.append(
            f'<div class="off-row"><span class="off-name">{VOICE_LABELS[voice]}</span>'
            f'<span class="off-track"><span class="off-bar {side}" style="left:{left:.1f}%;'
            f'width:{abs(frac) * 50:.1f}%"></span></span>'
            f'<span class="off-ms">{ms:+.1f} ms</span></div>')
    offsets_html = (
        '<div class="off-head">Mean offset per voice <span>(early &larr; 0 &rarr; late, &plusmn;'
        f'{OFFSET_SCALE_MS:.0f} ms)</span></div>{"".join(rows)}' if rows else "")
    return (f'<div class="feel"><div class="panel-title">Feel <span>measured on the exported MIDI</span></div>'
            f'<div class="feel-cards">{cards}</div><div class="offsets">{offsets_html}</div></div>')


def headline_html(summary: dict[str, Any], variations: int = 1) -> str:
    """One line naming what was made: style, tempo, bars, kit and the seed used (the first
    variation's; with several, how many and their seeds)."""
    settings = summary.get("settings") or {}
    parts = [
        f"<b>{html.escape(str(summary.get('style_name', summary.get('style', ''))))}</b>",
        f"{summary.get('tempo', 0):g} BPM", f"{summary.get('bars', 0)} bars",
        f"{html.escape(kit_label(str(settings.get('kit', ''))))} kit",
    ]
    if variations > 1:
        parts.append(f"{variations} variations from seed <code>{summary.get('seed')}</code>")
    else:
        parts += [f"{summary.get('notes', 0)} hits", f"seed <code>{summary.get('seed')}</code>"]
    return f'<div class="headline">{" &middot; ".join(parts)}</div>'


def variation_html(index: int, summary: dict[str, Any]) -> str:
    """A variation card's title: its number, seed and hits."""
    return (f'<div class="variation-title"><b>Variation {index + 1}</b> &middot; seed <code>{summary.get("seed")}'
            f'</code> &middot; {summary.get("notes", 0)} hits</div>')


def empty_feel_html() -> str:
    return '<div class="feel empty">The feel of the groove (measured on the exported MIDI) shows here.</div>'


def preset_html(preset: Any) -> str:
    """A preset's description with its tempo range, swing and kit."""
    lo, hi = preset.tempo_range
    swing = "learned swing" if preset.humanize.swing is None else f"swing {preset.humanize.swing:g} %"
    return (f'<div class="preset"><b>{html.escape(preset.name)}</b> &mdash; {html.escape(preset.description)}'
            f'<div class="preset-facts">{lo:g}&ndash;{hi:g} BPM &middot; {swing} '
            f'&middot; {html.escape(kit_label(preset.kit))} kit</div></div>')


CSS = """
.gradio-container { max-width: 1280px !important; margin: 0 auto; }
#hero { padding: 6px 2px 2px; }
#hero h1 { font-size: 1.9rem; margin: 0; letter-spacing: -0.02em; }
#hero h1 span { color: #f97316; }
#hero p { margin: 4px 0 0; color: var(--body-text-color-subdued); }
#generate-btn { font-size: 1.05rem; min-height: 48px; }
#reuse-btn { align-self: center; }
.preset { font-size: 0.92rem; line-height: 1.4; padding: 2px 2px 4px; }
.preset-facts { color: var(--body-text-color-subdued); font-size: 0.82rem; margin-top: 2px; }
.headline { font-size: 1rem; padding: 8px 2px; }
.headline code { font-size: 0.88rem; }
.grid-wrap, .feel { padding: 10px 12px; border: 1px solid var(--border-color-primary); border-radius: 10px;
  background: var(--block-background-fill); }
.panel-title { font-weight: 600; font-size: 0.9rem; margin-bottom: 6px; }
.panel-title span { font-weight: 400; color: var(--body-text-color-subdued); font-size: 0.8rem; margin-left: 6px; }
.footer { font-size: 0.8rem; color: var(--body-text-color-subdued); padding: 4px 2px; }
.grid-wrap.empty, .feel.empty { color: var(--body-text-color-subdued); padding: 28px 8px; text-align: center;
  border-style: dashed; background: none; }
.grid-legend { display: flex; flex-wrap: wrap; gap: 16px; font-size: 0.78rem;
  color: var(--body-text-color-subdued); margin-top: 8px; padding-left: 64px; }
.grid-legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }
.grid-legend i.ring { border-radius: 50%; border: 1.5px solid; background: none; }
.feel-cards { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 8px; }
.feel-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; }
.feel-label { font-size: 0.75rem; text-transform: uppercase; letter-spacing: 0.05em;
  color: var(--body-text-color-subdued); }
.feel-value { font-size: 1.4rem; font-weight: 600; }
.feel-hint { font-size: 0.75rem; color: var(--body-text-color-subdued); }
.offsets { margin-top: 10px; }
.off-head { font-size: 0.82rem; font-weight: 600; margin-bottom: 4px; }
.off-head span { font-weight: 400; color: var(--body-text-color-subdued); }
.off-row { display: grid; grid-template-columns: 70px 1fr 70px; align-items: center; gap: 8px;
  font-size: 0.8rem; padding: 1px 0; }
.off-name { color: var(--body-text-color-subdued); text-align: right; }
.off-ms { font-variant-numeric: tabular-nums; }
.off-track { position: relative; height: 8px; border-radius: 4px; background: var(--border-color-primary); }
.off-track::after { content: ""; position: absolute; left: 50%; top: -2px; bottom: -2px; width: 1px;
  background: var(--body-text-color-subdued); }
.off-bar { position: absolute; top: 0; bottom: 0; border-radius: 4px; }
.off-bar.early { background: #0ea5e9; }
.off-bar.late { background: #f97316; }
@media (max-width: 700px) { .feel-cards { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
.variation-title { font-size: 0.92rem; padding: 2px 2px 0; }
.variation-title code { font-size: 0.85rem; }
.lock-row { align-items: center; }
/* a file name (up to 19 seed digits, no break opportunity in it) wraps instead of widening a phone's page */
.variation-title code, .headline code { overflow-wrap: anywhere; word-break: break-all; }
span.stem, span.ext { white-space: normal !important; overflow-wrap: anywhere; word-break: break-all; min-width: 0; }
table.file-preview, table.file-preview tbody { display: block; width: 100%; max-width: 100%; }
table.file-preview tr.file { flex-wrap: wrap; min-width: 0; }
table.file-preview td { min-width: 0; white-space: normal !important; }
/* an audio player's waveform canvas keeps the pixel width of its first draw (425 px, wider than a
   phone's column); uncontained, that width holds the column open and a phone widens its whole page */
.waveform-container { contain: inline-size; }
"""
# The drum grid: a label column and one column per bar, in the SVGs' own proportions (LABEL_W to a
# bar's 16 steps), so labels and bars scale alike. Four bars a line on a desktop, two where the page
# (or its right column) is narrower, one on a phone, so a 16th step stays at least ~9 px wide. Media
# queries, not container queries: gradio's scoping of custom CSS drops @container rules.
_BAR_W = 16 * STEP_W
CSS += f"""
.drum-grid {{ display: grid; grid-template-columns: minmax(0, {LABEL_W}fr) repeat(4, minmax(0, {_BAR_W}fr));
  row-gap: 8px; max-width: {1.4 * (LABEL_W + 4 * _BAR_W):.0f}px; margin: 0 auto; align-items: start; }}
.drum-grid svg {{ display: block; width: 100%; height: auto; font-family: ui-sans-serif, system-ui, sans-serif; }}
.drum-grid .grid-labels:not(.lab-4) {{ display: none; }}
@media (max-width: {TWO_BARS_MAX_PX}px) {{
  .drum-grid {{ grid-template-columns: minmax(0, {LABEL_W}fr) repeat(2, minmax(0, {_BAR_W}fr)); }}
  .drum-grid .grid-labels.lab-2 {{ display: block; }}
}}
@media (max-width: {ONE_BAR_MAX_PX}px) {{
  .drum-grid {{ grid-template-columns: minmax(0, {LABEL_W}fr) minmax(0, {_BAR_W}fr); }}
  .drum-grid .grid-labels.lab-1 {{ display: block; }}
  .grid-legend {{ padding-left: 0; }}
  .grid-wrap, .feel {{ padding: 8px; }}
}}
"""
