"""The app under test, served in this process: ``app.build_app`` over real handlers, launched on a
free loopback port and driven with gradio_client.

A test module takes the module-scoped ``served`` fixture with
``from app_fixtures import served  # noqa: F401`` (and ``client`` the same way); ``generate`` calls
``/generate`` with a timeout, so a hung request fails the test instead of stalling the run.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import free_port, use_checkpoint

REPO = Path(__file__).resolve().parent.parent
REQUEST_TIMEOUT_S = 60  # no request may hang
FILES_MAX_AGE_S = 120  # the app's own copies of a groove's files (gradio keeps its cached copies longer)


def import_app() -> ModuleType:
    """``app.py`` as a module (importing it does no work: no model, no server)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("app")


@dataclass
class Served:
    """One app being served: its module, Blocks, handlers, URL and a client for its API."""

    app: ModuleType
    blocks: Any
    handlers: Any  # drumgen.web.handlers.AppHandlers
    url: str
    client: Any  # gradio_client.Client
    startup_error: str | None

    @property
    def temp(self) -> Any:
        """The app's own temp area (:class:`drumgen.web.serving.TempArea`)."""
        return self.handlers.temp


def serve(loader: Callable[[], Any] | None = None, downloads: Path | None = None, warm_style: str = "j_dilla",
          files_max_age_s: float = FILES_MAX_AGE_S, **launch: Any) -> Served:
    """Build the app as ``app.main()`` does (engine source warmed up, temp area, handlers) and
    launch it on loopback; ``loader`` replaces ``Engine.load`` (e.g. another checkpoint);
    ``files_max_age_s`` is the app's own temp files' lifetime (gradio's copies: ``$DRUMGEN_FILES_MAX_AGE_S``)."""
    from gradio_client import Client

    from drumgen.web.handlers import AppHandlers
    from drumgen.web.serving import EngineSource, TempArea

    app = import_app()
    source = EngineSource(loader) if loader is not None else EngineSource()
    error = source.warm_up(warm_style)
    handlers = AppHandlers(source, TempArea(max_age_s=files_max_age_s))
    blocks = app.build_app(handlers, error)
    _, url, _ = app.launch(blocks, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True, **launch)
    client = Client(url, verbose=False, **({"download_files": str(downloads)} if downloads else {}))
    return Served(app, blocks, handlers, url, client, error)


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A fresh app on a free loopback port, on the committed checkpoint (else the tiny one trained
    by ``conftest.py``), with real FluidSynth audio; one per test module."""
    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        one = serve(downloads=tmp_path_factory.mktemp("downloads"))
        try:
            assert one.startup_error is None, one.startup_error
            yield one
        finally:
            one.blocks.close()


@pytest.fixture(scope="module")
def client(served: Served) -> Any:
    return served.client


def generate(client: Any, **params: Any) -> tuple[str | None, str, dict[str, Any]]:
    """``(preview path, MIDI path, summary)`` of one ``/generate`` call; an error raises ``AppError``."""
    return client.submit(**params, api_name="/generate").result(timeout=REQUEST_TIMEOUT_S)


def upload_mode(client: Any, mode: str, midi: str | Path, **params: Any) -> tuple[str | None, str, dict[str, Any], str]:
    """``(preview path, MIDI path, summary, zip path)`` of one ``/<mode>`` call on the file ``midi``."""
    from gradio_client import handle_file

    return client.submit(midi=handle_file(str(midi)), **params, api_name=f"/{mode}").result(timeout=REQUEST_TIMEOUT_S)
