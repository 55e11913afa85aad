"""Style presets: one TOML file per style in ``styles/`` (file stem = id), loaded into a registry.

A preset names its conditioning (dataset genre label and a tempo scale), its tempo range, GM drum
kit, default sampling settings, humanization (:class:`~drumgen.humanize.HumanizeParams`) and any
articulations. Adding a style is adding a file; see ``styles/j_dilla.toml`` for the schema.

The styles directory defaults to :data:`drumgen.resources.STYLES_DIR` and can be overridden with the environment
variable ``DRUMGEN_STYLES_DIR`` or the ``styles_dir`` argument of every function here. A preset
file that does not parse or validate is logged and skipped (see :func:`preset_problems`) so the
other presets still load. Style names are only ever looked up in the loaded registry, never
used as paths.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drumgen.constants import (
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    DEFAULT_VARIATION,
    FILL_EVERY_CHOICES,
    GENRES,
    MAX_SWING,
    MAX_TEMPO,
    MIN_SWING,
    MIN_TEMPO,
    RETRAIN_HINT,
)
from drumgen.humanize import MAX_TIMING_MS, Articulation, HumanizeParams
from drumgen.limits import TEMPERATURE, TOP_K, NumberLimit, shown
from drumgen.presets import Loaded, PresetFolder, normalize
from drumgen.resources import CHECKPOINT_ENV, CHECKPOINTS_DIR, DEFAULT_CHECKPOINT, STYLES_DIR, STYLES_DIR_ENV
from drumgen.voices import KIT_PROGRAMS, VOICES

log = logging.getLogger(__name__)


KINDS: tuple[str, ...] = ("producer", "genre")
HAT_LINES: tuple[str, ...] = ("model", "trap")
BACKBEATS: tuple[str, ...] = ("none", "first_bar", "every_bar")
PRODUCER_ORDER: tuple[str, ...] = ("j_dilla", "metro_boomin", "questlove")  # listed first, in this order

DEFAULT_TEMPO_SCALE = 1.0
DEFAULT_FILL_EVERY = 0
DEFAULT_VERSION = 1

MIN_TEMPO_SCALE, MAX_TEMPO_SCALE = 0.25, 4.0
MAX_CONTRAST = 4.0  # genre contrast weight: beyond this the guided logits leave what the model learned
MIN_PRESET_TOP_P = 0.01  # a preset keeps at least some tokens (0 would be greedy; say temperature = 0)
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSIONED_RE = re.compile(r"^(?P<base>.+)_v(?P<version>\d+)$")
_TOP_KEYS = frozenset(
    {"name", "description", "kind", "kit", "fill_every", "checkpoint", "version",
     "conditioning", "tempo", "sampling", "humanize", "articulations"}
)
_HUMANIZE_KEYS = frozenset(
    {"swing", "micro_timing_ms", "drift_ms", "ghost_note_prob", "velocity_variation", "voice_offsets_ms"}
)


class StylePresetError(ValueError):
    """A preset file is malformed; the message names the file and the field."""


class UnknownStyleError(ValueError):
    """No preset has that id or display name; the message lists the valid ids."""


@dataclass(frozen=True)
class StylePreset:
    """One style. ``tempo_scale`` multiplies the tempo the model is conditioned on (0.5 = half-time
    feel); ``backbeat`` makes the first bar (``"first_bar"``, TOML ``true``) or every beat bar
    (``"every_bar"``, a programmed style's) play a loud snare on beats 2 and 4 of the generated bar;
    ``hats`` is ``"model"`` (the model's hats) or ``"trap"`` (a full-tempo trap hat line in place of
    the half-time hats); ``fill_every`` is bars between fills (0 = none, default); ``checkpoint`` is a
    repo-root-relative model path (default None = the shared checkpoint); ``version`` defaults to 1;
    ``contrast`` > 0 plays away from ``contrast_genre``, the genre this one is most often taken for
    (see :class:`drumgen.generate.Decoder`). Every groove's first bar opens with a kick."""

    id: str
    name: str
    description: str
    kind: str
    genre: str
    tempo_scale: float
    tempo_range: tuple[float, float]
    default_tempo: float
    kit: str
    temperature: float
    top_k: int
    top_p: float
    variation: float = DEFAULT_VARIATION
    contrast_genre: str | None = None
    contrast: float = 0.0
    backbeat: str = "none"
    hats: str = "model"
    humanize: HumanizeParams = field(default_factory=HumanizeParams)
    fill_every: int = DEFAULT_FILL_EVERY
    checkpoint: str | None = None
    version: int = DEFAULT_VERSION

    @property
    def model_id(self) -> str:
        """Versioned id such as ``"j_dilla_v1"``."""
        return f"{self.id}_v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-serializable values (fresh copies; mutating them is safe)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "genre": self.genre,
            "tempo_scale": self.tempo_scale,
            "tempo_range": list(self.tempo_range),
            "default_tempo": self.default_tempo,
            "kit": self.kit,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "variation": self.variation,
            "contrast_genre": self.contrast_genre,
            "contrast": self.contrast,
            "backbeat": self.backbeat,
            "hats": self.hats,
            "humanize": humanize_to_dict(self.humanize),
            "fill_every": self.fill_every,
            "checkpoint": self.checkpoint,
            "version": self.version,
        }


def humanize_to_dict(params: HumanizeParams) -> dict[str, Any]:
    """``HumanizeParams`` as a JSON-serializable dict (articulations as a list of dicts)."""
    return {
        "swing": params.swing,
        "micro_timing_ms": params.micro_timing_ms,
        "drift_ms": params.drift_ms,
        "ghost_note_prob": params.ghost_note_prob,
        "velocity_variation": params.velocity_variation,
        "voice_offsets_ms": dict(params.voice_offsets_ms),
        "articulations": [
            {"type": a.type, "probability": a.probability, **_copy_json(a.options)}
            for a in params.articulations
        ],
    }


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_json(v) for v in value]
    return value


# --------------------------------------------------------------------------- validation helpers


class _Reader:
    """Typed access to one TOML table that raises ``StylePresetError`` naming file and field."""

    def __init__(self, path: Path, table: dict[str, Any], prefix: str = "") -> None:
        self.path, self.table, self.prefix = path, table, prefix

    def fail(self, key: str, problem: str) -> StylePresetError:
        return StylePresetError(f"{self.path}: field '{self.prefix}{key}' {problem}")

    def check_keys(self, allowed: frozenset[str]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.fail(key, f"is not a known field (expected one of: {', '.join(sorted(allowed))})")

    def sub(self, key: str, required: bool = True) -> _Reader:
        if key not in self.table:
            if required:
                raise self.fail(key, "is missing")
            return _Reader(self.path, {}, f"{self.prefix}{key}.")
        value = self.table[key]
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, got {type(value).__name__}")
        return _Reader(self.path, value, f"{self.prefix}{key}.")

    def string(self, key: str, default: str | None = None, *, required: bool = True) -> str | None:
        if key not in self.table:
            if required and default is None:
                raise self.fail(key, "is missing")
            return default
        value = self.table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def choice(self, key: str, choices: tuple[str, ...] | dict[str, int]) -> str:
        value = self.string(key)
        if value not in choices:
            raise self.fail(key, f"is {value!r}; expected one of: {', '.join(choices)}")
        return value

    def number(self, key: str, default: float | None = None, *, lo: float = -math.inf,
               hi: float = math.inf) -> float:
        if key not in self.table:
            if default is None:
                raise self.fail(key, "is missing")
            return default
        if isinstance(self.table[key], str):
            raise self.fail(key, f"must be a number, got {self.table[key]!r}")
        try:
            return float(NumberLimit(key, lo, hi).check(self.table[key]))
        except ValueError as exc:
            raise self.fail(key, str(exc).removeprefix(f"{key} ")) from None

    def integer(self, key: str, default: int, *, lo: float = -math.inf, hi: float = math.inf) -> int:
        if key not in self.table:
            return default
        if not isinstance(self.table[key], int) or isinstance(self.table[key], bool):
            raise self.fail(key, f"must be an integer, got {self.table[key]!r}")
        try:
            return int(NumberLimit(key, lo, hi, whole=True).check(self.table[key]))
        except ValueError as exc:
            raise self.fail(key, str(exc).removeprefix(f"{key} ")) from None


def _check_json_value(path: Path, where: str, value: Any) -> None:
    """Articulation options must be plain JSON values (TOML dates/times are not)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_json_value(path, f"{where}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json_value(path, f"{where}[{i}]", v)
    elif isinstance(value, float) and not math.isfinite(value):
        raise StylePresetError(f"{path}: field '{where}' must be finite, got {value}")
    elif not isinstance(value, str | int | float | bool):
        raise StylePresetError(f"{path}: field '{where}' has unsupported type {type(value).__name__}")


def _read_articulations(path: Path, raw: Any) -> tuple[Articulation, ...]:
    if not isinstance(raw, list):
        raise StylePresetError(f"{path}: field 'articulations' must be an array of tables [[articulations]]")
    arts = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise StylePresetError(f"{path}: field 'articulations[{i}]' must be a table")
        r = _Reader(path, item, f"articulations[{i}].")
        art_type = r.string("type")
        probability = r.number("probability", Articulation.probability, lo=0.0, hi=1.0)
        options = {k: v for k, v in item.items() if k not in ("type", "probability")}
        for k, v in options.items():
            _check_json_value(path, f"articulations[{i}].{k}", v)
        try:
            arts.append(Articulation(type=art_type, probability=probability, options=options))
        except ValueError as exc:
            raise StylePresetError(f"{path}: field 'articulations[{i}]' is wrong: {exc}") from None
    return tuple(arts)


def _read_humanize(path: Path, r: _Reader, articulations: tuple[Articulation, ...]) -> HumanizeParams:
    r.check_keys(_HUMANIZE_KEYS)
    base = HumanizeParams()
    offsets = dict(base.voice_offsets_ms)  # voices a preset leaves out keep the dataset offsets
    off = r.sub("voice_offsets_ms", required=False)
    off.check_keys(frozenset(VOICES))
    for voice in off.table:
        offsets[voice] = off.number(voice, lo=-MAX_TIMING_MS, hi=MAX_TIMING_MS)
    return HumanizeParams(
        swing=r.number("swing", lo=MIN_SWING, hi=MAX_SWING) if "swing" in r.table else None,
        micro_timing_ms=r.number("micro_timing_ms", base.micro_timing_ms, lo=0.0, hi=MAX_TIMING_MS),
        drift_ms=r.number("drift_ms", base.drift_ms, lo=0.0, hi=MAX_TIMING_MS),
        ghost_note_prob=r.number("ghost_note_prob", base.ghost_note_prob, lo=0.0, hi=1.0),
        velocity_variation=r.number("velocity_variation", base.velocity_variation, lo=0.0, hi=1.0),
        voice_offsets_ms=offsets,
        articulations=articulations,
    )


def _backbeat(cond: _Reader) -> str:
    value = cond.table.get("backbeat", False)
    if isinstance(value, bool):
        return "first_bar" if value else "none"
    return cond.choice("backbeat", BACKBEATS)


def load_preset(path: str | os.PathLike[str]) -> StylePreset:
    """Parse and validate one preset file; raises ``StylePresetError`` naming the file and field.

    Optional fields and their defaults: ``fill_every`` 0, ``checkpoint`` none, ``version`` 1,
    ``conditioning.tempo_scale`` 1.0, ``[sampling]`` temperature 1.0 / top_k 50 / top_p 0.9 / variation 1.0
    (free sampling), every
    ``[humanize]`` value (the ``HumanizeParams`` defaults; unlisted voices keep their default
    offsets), ``[[articulations]]`` none.
    """
    path = Path(path)
    stem = path.stem
    if not _ID_RE.match(stem):
        raise StylePresetError(f"{path}: file name must be a lowercase id [a-z][a-z0-9_]*, e.g. j_dilla.toml")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise StylePresetError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise StylePresetError(f"{path}: not valid UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise StylePresetError(f"{path}: cannot read: {exc}") from exc

    r = _Reader(path, data)
    r.check_keys(_TOP_KEYS)
    cond = r.sub("conditioning")
    cond.check_keys(frozenset({"genre", "tempo_scale", "backbeat", "hats"}))
    tempo = r.sub("tempo")
    tempo.check_keys(frozenset({"min", "max", "default"}))
    sampling = r.sub("sampling", required=False)
    sampling.check_keys(frozenset({"temperature", "top_k", "top_p", "variation", "contrast_genre", "contrast"}))

    lo = tempo.number("min", lo=MIN_TEMPO, hi=MAX_TEMPO)
    hi = tempo.number("max", lo=MIN_TEMPO, hi=MAX_TEMPO)
    default_tempo = tempo.number("default", lo=MIN_TEMPO, hi=MAX_TEMPO)
    if not lo <= default_tempo <= hi:
        raise tempo.fail("default", f"is {default_tempo:g}; need min <= default <= max ({lo:g}-{hi:g} BPM)")
    tempo_scale = cond.number("tempo_scale", DEFAULT_TEMPO_SCALE, lo=MIN_TEMPO_SCALE, hi=MAX_TEMPO_SCALE)
    if lo * tempo_scale < MIN_TEMPO or hi * tempo_scale > MAX_TEMPO:
        raise cond.fail(
            "tempo_scale",
            f"is {tempo_scale:g}; the conditioned tempo {lo * tempo_scale:g}-{hi * tempo_scale:g} BPM "
            f"leaves {MIN_TEMPO:g}-{MAX_TEMPO:g} BPM",
        )

    fill_every = r.integer("fill_every", DEFAULT_FILL_EVERY)
    if fill_every not in FILL_EVERY_CHOICES:
        choices = ", ".join(map(str, FILL_EVERY_CHOICES))
        raise r.fail("fill_every", f"is {fill_every}; expected one of: {choices}")

    genre = cond.choice("genre", GENRES)
    contrast_genre = sampling.choice("contrast_genre", GENRES) if "contrast_genre" in sampling.table else None
    contrast = sampling.number("contrast", 0.0, lo=0.0, hi=MAX_CONTRAST)
    if contrast_genre == genre:
        raise sampling.fail("contrast_genre", f"is the preset's own genre {genre!r}; name the genre it is taken for")
    if contrast > 0 and contrast_genre is None:
        raise sampling.fail("contrast", "needs contrast_genre: the genre to play away from")
    articulations = _read_articulations(path, data.get("articulations", []))
    return StylePreset(
        id=stem,
        name=r.string("name"),
        description=r.string("description"),
        kind=r.choice("kind", KINDS),
        genre=genre,
        backbeat=_backbeat(cond),
        hats=cond.choice("hats", HAT_LINES) if "hats" in cond.table else "model",
        tempo_scale=tempo_scale,
        tempo_range=(lo, hi),
        default_tempo=default_tempo,
        kit=r.choice("kit", KIT_PROGRAMS),
        temperature=sampling.number("temperature", DEFAULT_TEMPERATURE, lo=TEMPERATURE.lo, hi=TEMPERATURE.hi),
        top_k=sampling.integer("top_k", DEFAULT_TOP_K, lo=0, hi=int(TOP_K.hi)),
        top_p=sampling.number("top_p", DEFAULT_TOP_P, lo=MIN_PRESET_TOP_P, hi=1.0),
        variation=sampling.number("variation", DEFAULT_VARIATION, lo=0.0, hi=1.0),
        contrast_genre=contrast_genre,
        contrast=contrast,
        humanize=_read_humanize(path, r.sub("humanize", required=False), articulations),
        fill_every=fill_every,
        checkpoint=r.string("checkpoint", required=False),
        version=r.integer("version", DEFAULT_VERSION, lo=1),
    )


# --------------------------------------------------------------------------- registry


def _sort_key(p: StylePreset) -> tuple[int, int, str]:
    if p.kind == "producer":
        rank = PRODUCER_ORDER.index(p.id) if p.id in PRODUCER_ORDER else len(PRODUCER_ORDER)
        return (0, rank, p.id)
    return (1, 0, p.id)


_FOLDER = PresetFolder("style preset", load_preset, StylePresetError, STYLES_DIR, STYLES_DIR_ENV, _sort_key)


def _registry(styles_dir: str | os.PathLike[str] | None) -> Loaded[StylePreset]:
    return _FOLDER.load(styles_dir)


def list_styles(styles_dir: str | os.PathLike[str] | None = None) -> list[StylePreset]:
    """All valid presets: producers first (j_dilla, metro_boomin, questlove, then any others by id),
    then genres by id. Malformed files are skipped (see :func:`preset_problems`)."""
    return list(_registry(styles_dir).items)


def list_available_styles(styles_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Ids (file stems, e.g. ``"j_dilla"``) of all valid presets, in :func:`list_styles` order."""
    return [p.id for p in _registry(styles_dir).items]


def preset_problems(styles_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Files that were skipped, as ``{file path: error message}``; empty when all presets load."""
    return dict(_registry(styles_dir).problems)


def get_style(name: str, styles_dir: str | os.PathLike[str] | None = None) -> StylePreset:
    """Look a preset up by id, display name or versioned id (``"j_dilla_v1"``); case-insensitive,
    spaces/hyphens/underscores interchangeable. Raises ``UnknownStyleError`` listing the valid ids, or
    ``StylePresetError`` with the load problem when the named preset's file is malformed."""
    reg = _registry(styles_dir)
    valid = ", ".join(p.id for p in reg.items) or "(none)"
    if not isinstance(name, str) or not normalize(name):
        raise UnknownStyleError(f"style name must be a non-empty string, got {shown(name)}; valid styles: {valid}")
    key = normalize(name)
    found = reg.find(key)
    if found is not None:
        return found
    m = _VERSIONED_RE.match(key)
    if m:
        for p in reg.items:
            if p.id == m["base"] and p.version == int(m["version"]):
                return p
    broken = reg.broken_ids.get(key) or (m and reg.broken_ids.get(m["base"]))
    if broken:
        raise StylePresetError(f"style {key!r} could not be loaded: {broken}")
    raise UnknownStyleError(f"unknown style {shown(name)}; valid styles: {valid}")


def preset_genres(styles_dir: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """The dataset genres the genre presets condition on, in :func:`list_styles` order."""
    return tuple(dict.fromkeys(p.genre for p in list_styles(styles_dir) if p.kind == "genre"))


def get_style_id(name: str, styles_dir: str | os.PathLike[str] | None = None) -> str:
    """Versioned model id of a style, e.g. ``"j_dilla_v1"`` (id + ``_v`` + version)."""
    return get_style(name, styles_dir).model_id


def get_style_params(name: str, styles_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The style's humanization as a dict: swing, micro_timing_ms, drift_ms, ghost_note_prob,
    velocity_variation, voice_offsets_ms and articulations (a list of dicts)."""
    return humanize_to_dict(get_style(name, styles_dir).humanize)


def shared_checkpoint() -> Path:
    """The checkpoint every style uses unless its preset names its own: ``$DRUMGEN_CHECKPOINT``
    (relative to the working directory) or :data:`drumgen.resources.DEFAULT_CHECKPOINT`. Raises
    ``FileNotFoundError`` naming the path and how to make one when the file does not exist."""
    if os.environ.get(CHECKPOINT_ENV):
        path, source = Path(os.environ[CHECKPOINT_ENV]).expanduser().resolve(), f"checkpoint from ${CHECKPOINT_ENV}"
    else:
        path, source = DEFAULT_CHECKPOINT, "shared checkpoint"
    if not path.is_file():
        raise FileNotFoundError(f"no model: {source} {path} does not exist; {RETRAIN_HINT}")
    return path


def get_model_path(style_id: str, styles_dir: str | os.PathLike[str] | None = None) -> Path:
    """Checkpoint for a style (plain or versioned id, or display name): the preset's own ``checkpoint``
    (repo-root relative) when it names one, else :func:`shared_checkpoint`. Raises ``FileNotFoundError``
    naming the path when the file does not exist."""
    preset = get_style(style_id, styles_dir)
    if not preset.checkpoint:
        return shared_checkpoint()
    path = Path(preset.checkpoint).expanduser()
    path = path if path.is_absolute() else CHECKPOINTS_DIR.parent / path  # the checkout, or the installed data
    if not path.is_file():
        raise FileNotFoundError(f"no model: checkpoint of style '{preset.id}' {path} does not exist; {RETRAIN_HINT}")
    return path


class StyleRegistry:
    """The presets of one styles folder (default: ``$DRUMGEN_STYLES_DIR`` or :data:`STYLES_DIR`), read
    again whenever a file there changes, so adding a style to a running app is adding a file."""

    def __init__(self, styles_dir: str | os.PathLike[str] | None = None) -> None:
        self.styles_dir = styles_dir

    def list(self) -> list[StylePreset]:
        """:func:`list_styles` of this folder."""
        return list_styles(self.styles_dir)

    def get(self, name: str) -> StylePreset:
        """:func:`get_style` in this folder."""
        return get_style(name, self.styles_dir)

    def model_path(self, name: str) -> Path:
        """:func:`get_model_path` of a style in this folder."""
        return get_model_path(name, self.styles_dir)
