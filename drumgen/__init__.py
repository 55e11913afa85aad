"""MidiDrumiGen: drum patterns in the style of a producer or genre, from a small transformer."""

from __future__ import annotations

__version__ = "0.1.0"
