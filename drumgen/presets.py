"""A folder of presets, one TOML file each (style presets, drum maps): loaded, checked, looked up.

A file that does not load is logged and skipped (the others still load) and remembered by its
file stem, so asking for it says what is wrong with it. The folder is read again whenever a file
in it is added, edited or removed: adding a preset to a running app is adding a file. Names are
only ever looked up among the loaded presets, never used as paths.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

MAX_CACHED_FOLDERS = 8


class Named(Protocol):
    id: str
    name: str


T = TypeVar("T", bound=Named)


def normalize(name: str) -> str:
    """Case/spacing-insensitive key: "J Dilla", "j-dilla" and "J_DILLA" all give "j_dilla"."""
    return re.sub(r"[\s\-_]+", "_", name.strip().lower()).strip("_")


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """One reading of a folder: the presets that loaded (sorted), and the files that did not."""

    items: tuple[T, ...]
    problems: dict[str, str]  # file path -> error message
    broken_ids: dict[str, str]  # file stem -> error message

    def find(self, key: str) -> T | None:
        """The preset whose id, else whose normalized display name, is ``key`` (already normalized)."""
        for item in self.items:
            if key == item.id:
                return item
        for item in self.items:
            if key == normalize(item.name):
                return item
        return None


class PresetFolder(Generic[T]):
    """Presets of one kind in a folder (default ``default_dir``, overridden by ``$env``)."""

    def __init__(self, kind: str, load_one: Callable[[Path], T], error: type[ValueError], default_dir: Path,
                 env: str, sort_key: Callable[[T], Any]) -> None:
        self.kind, self.load_one, self.error = kind, load_one, error
        self.default_dir, self.env, self.sort_key = default_dir, env, sort_key
        self._cache: OrderedDict[tuple[str, tuple[tuple[str, int, int], ...]], Loaded[T]] = OrderedDict()
        self._lock = threading.Lock()

    def folder(self, directory: str | os.PathLike[str] | None = None) -> Path:
        path = Path(directory or os.environ.get(self.env) or self.default_dir).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"{self.kind} directory not found: {path} (set ${self.env})")
        return path

    def load(self, directory: str | os.PathLike[str] | None = None) -> Loaded[T]:
        """The folder's presets, read again when any file's name, size or modification time changed."""
        path = self.folder(directory)
        signature = []
        for f in sorted(path.glob("*.toml")):
            try:
                st = f.stat()
            except OSError:  # removed while listing
                continue
            signature.append((f.name, st.st_mtime_ns, st.st_size))
        key = (str(path), tuple(signature))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        loaded = self._read(path, key[1])
        with self._lock:
            self._cache[key] = loaded
            while len(self._cache) > MAX_CACHED_FOLDERS:
                self._cache.popitem(last=False)
        return loaded

    def _read(self, path: Path, signature: tuple[tuple[str, int, int], ...]) -> Loaded[T]:
        items: list[T] = []
        problems: dict[str, str] = {}
        broken: dict[str, str] = {}
        claimed: dict[str, str] = {}  # normalized id/name -> the id that claimed it
        for name, _, _ in signature:
            file = path / name
            try:
                item = self.load_one(file)
                for key in (item.id, normalize(item.name)):
                    if key in claimed and claimed[key] != item.id:
                        raise self.error(f"{file}: field 'name' {item.name!r} clashes with {self.kind} "
                                         f"'{claimed[key]}'")
            except self.error as exc:
                log.warning("skipping %s: %s", self.kind, exc)
                problems[str(file)] = str(exc)
                broken[file.stem] = str(exc)
                continue
            claimed[item.id] = claimed[normalize(item.name)] = item.id
            items.append(item)
        items.sort(key=self.sort_key)
        return Loaded(tuple(items), problems, broken)
