"""Random numbers keyed to what they are for, not to the order they are drawn in.

A hit's timing and velocity come from a hash of ``(seed, stream, bar or tick, voice, ...)``, so
adding, removing or re-rolling one hit changes no other hit's draw: re-rolling the hats leaves the
kick and snare byte-identical. The hash is SplitMix64 (Steele, Lea & Flood 2014), vectorized in
NumPy; the streams keep different effects (timing, velocity, ghost notes, ...) independent.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK = (1 << 64) - 1


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _hash(seed: int, stream: str, keys: Sequence[np.ndarray | int]) -> np.ndarray:
    arrays = np.broadcast_arrays(*[np.asarray(k, dtype=np.int64) for k in keys]) if keys else [np.zeros(1)]
    h = _mix(np.full(arrays[0].shape, (seed ^ (zlib.crc32(stream.encode()) << 32)) & _MASK, dtype=np.uint64))
    for key in arrays:
        h = _mix(h ^ key.astype(np.uint64))
    return h


def uniform(seed: int, stream: str, *keys: np.ndarray | int) -> np.ndarray:
    """Floats in [0, 1), one per element of the broadcast ``keys``."""
    return (_hash(seed, stream, keys) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def normal(seed: int, stream: str, *keys: np.ndarray | int) -> np.ndarray:
    """Standard normal draws (Box-Muller on two keyed uniforms), one per element of ``keys``."""
    u1 = uniform(seed, stream + ":1", *keys)
    u2 = uniform(seed, stream + ":2", *keys)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
