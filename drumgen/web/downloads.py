"""Downloads beyond a groove's own .mid and preview: all the variations of one click as one ``.zip``,
and a groove's full-quality WAV, rendered only when asked for.

The zip is a pure function of its files (fixed dates and permissions, fixed order), so the same
request and seed give the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

from drumgen.audio import render_audio, write_audio
from drumgen.midi_io import read_midi

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no clock in the bytes
COMPRESSED_ALREADY = (".mp3", ".ogg", ".opus")  # stored as they are; deflating them gains nothing


def zip_bytes(files: Sequence[tuple[str, bytes]]) -> bytes:
    """A zip of ``(name, data)`` files in the given order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files:
            info = zipfile.ZipInfo(Path(name).name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            stored = Path(name).suffix.lower() in COMPRESSED_ALREADY
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def zip_name(first_file: str, count: int) -> str:
    """``j_dilla_90bpm_4bars_seed5.mid`` and 4 -> ``j_dilla_90bpm_4bars_seed5_4variations.zip``."""
    return f"{Path(first_file).stem}_{count}variation{'s' if count != 1 else ''}.zip"


def write_full_wav(midi: bytes, kit: str, sample_rate: int, path: str | Path) -> Path:
    """Render the groove of ``midi`` (General MIDI notes) with ``kit`` as a 16-bit WAV at ``path``: the
    renderer's full output, ring-out included, as the CLI writes it."""
    pattern = read_midi(midi).pattern
    return write_audio(render_audio(pattern, kit=kit, sample_rate=sample_rate), path, sample_rate)
