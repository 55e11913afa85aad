"""One uploaded MIDI file through one of the four modes of :mod:`drumgen.modes`, the same for every
door (CLI, app, API): the file's own checks (a ``.mid`` / ``.midi`` of at most 2 MB, parsed by the one
reader of :mod:`drumgen.midi_io`), the mode's options, and the reader's notices on every groove.

A bad file raises :class:`~drumgen.midi_io.MidiImportError` (a ``ValueError``) whose one line starts
with the file's name and says what is wrong; a bad option raises ``ValueError`` naming the option.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from drumgen.engine import Engine, Groove
from drumgen.limits import MODE, check_bool, shown
from drumgen.midi_io import MAX_MIDI_BYTES, MidiImportError, read_midi, read_part
from drumgen.modes import continue_upload, drumify_part, humanize_upload, reroll_upload
from drumgen.request import GenerateRequest

MIDI_SUFFIXES = (".mid", ".midi")
DEFAULT_KEEP = ("kick", "snare")  # what a re-roll keeps unless told otherwise
MAX_NAME_CHARS = 60  # of an uploaded file's name quoted in a message


@dataclass(frozen=True)
class ModeOptions:
    """The options of the modes: ``quantize`` (humanize: snap a played file to the grid first),
    ``only_new`` (continue: the new bars alone) and ``keep`` (re-roll: the voices kept exactly, as
    names or one comma-separated string such as ``"kick,snare"``)."""

    quantize: bool = False
    only_new: bool = False
    keep: Sequence[str] | str = DEFAULT_KEEP

    def voices(self) -> list[str]:
        """``keep`` as a list of names (checked by :func:`drumgen.modes.reroll_upload`)."""
        if isinstance(self.keep, str):
            return [v for v in (part.strip() for part in self.keep.split(",")) if v]
        if not isinstance(self.keep, Sequence) or not all(isinstance(v, str) for v in self.keep):
            raise ValueError(f"keep must be voice names such as kick,snare, got {shown(self.keep)}")
        return list(self.keep)


def display_name(path: str | Path) -> str:
    """A file's name as messages quote it (no folders; long names cut)."""
    name = Path(str(path)).name or "the file"
    return name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS - 3] + "..."


def read_upload(path: str | Path) -> bytes:
    """The bytes of an uploaded MIDI file. ``MidiImportError`` names the file and the problem: not a
    ``.mid`` / ``.midi``, no such file, a folder, larger than the 2 MB the reader takes."""
    path = Path(path)
    name = display_name(path)
    if path.suffix.lower() not in MIDI_SUFFIXES:
        raise MidiImportError(f"{name}: only .mid or .midi files can be used (save the part as a Standard MIDI "
                              "File)")
    if not path.exists():
        raise MidiImportError(f"{name}: no such file")
    if not path.is_file():
        raise MidiImportError(f"{name}: not a file")
    size = path.stat().st_size
    if size > MAX_MIDI_BYTES:
        raise MidiImportError(f"{name}: the file is {size:,} bytes; the limit is {MAX_MIDI_BYTES:,} bytes")
    return path.read_bytes()


def run_mode(engine: Engine, mode: str, data: bytes, request: GenerateRequest, options: ModeOptions = ModeOptions(),
             name: str = "the file") -> list[Groove]:
    """``request.count`` grooves of ``mode`` (humanize, continue, reroll or drumify) on the MIDI file
    ``data`` (called ``name`` in messages), in ``request``'s style and controls; the reader's notices
    come first in each groove's notices."""
    mode = MODE.check(mode)
    quantize = check_bool("quantize", options.quantize)
    only_new = check_bool("only_new", options.only_new)
    keep = options.voices() if mode == "reroll" else []
    request = replace(request, seed=engine.resolve(request).seed)  # controls checked before the file; one seed
    try:
        if mode == "drumify":
            part = read_part(data)
            notices = list(part.notices)
        else:
            read = read_midi(data)
            upload, notices = read.pattern, read.notices
    except MidiImportError as exc:
        raise MidiImportError(f"{name}: {exc}") from None
    if mode == "humanize":
        grooves = humanize_upload(engine, request, upload, quantize=quantize)
    elif mode == "continue":
        grooves = continue_upload(engine, request, upload, only_new=only_new)
    elif mode == "reroll":
        grooves = reroll_upload(engine, request, upload, keep)
    else:
        grooves = drumify_part(engine, request, part)
    for groove in grooves:
        groove.notices[:0] = notices
        # named by the mode too: a humanized, a re-rolled and a generated groove of one seed are different files
        groove.filename = groove.summary["file"] = f"{mode}_{groove.filename}"
        groove.summary["mode"] = mode
    return grooves
