"""Load: the app under concurrent users and past its queue's bound.

- ``app.py`` in a subprocess on loopback, driven by 4 concurrent gradio_client users for 120 one-bar
  requests through :func:`drumgen.tools.loadtest.run_loadtest` (the function behind
  ``python -m drumgen loadtest``): every request gets its MIDI, and the app's temp files stay bounded
  by how long files are kept (here 5 s), not by how many requests were made (one copy of each:
  gradio serves the app's own);
- more requests at once than the queue holds: the overflow is refused at once with 503 "Queue is
  full" (not left hanging), every accepted request gets its groove, and the app serves again after.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from app_fixtures import REQUEST_TIMEOUT_S, Served, generate, served  # noqa: F401 (the module-scoped app fixture)
from conftest import use_checkpoint

from drumgen.midi_io import midi_to_pattern
from drumgen.tools.loadtest import run_loadtest

pytestmark = pytest.mark.slow

USERS, REQUESTS, BARS = 4, 120, 1
CAP_S = 300  # a hung app ends the run here; the request count, not a speed, is what the test asks for
FILES_MAX_AGE_S = 5  # the app's file lifetime for this test (default 600 s), so its sweep shows within the run
SWEEP_S = 1  # the app sweeps every max(1, min(60, age // 4)) s
FILES_PER_REQUEST = 2  # .mid + .mp3 preview in the app's folder, which gradio serves without a copy
SETTLE_S = FILES_MAX_AGE_S + 3 * SWEEP_S
OVERFLOW = 16  # submitters beyond what the queue and its workers can hold
BURST_BARS = 2


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)  # the app subprocess inherits the environment
        return run_loadtest(users=USERS, requests=REQUESTS, duration=CAP_S, bars=BARS, settle_s=SETTLE_S,
                            env={"DRUMGEN_FILES_MAX_AGE_S": str(FILES_MAX_AGE_S)})


def test_every_request_gets_its_groove(report: dict[str, Any]) -> None:
    assert report["errors"] == 0, report["error_examples"]
    assert report["ok"] == REQUESTS


def test_temp_files_are_bounded_by_their_lifetime_not_the_request_count(report: dict[str, Any]) -> None:
    files = report["temp_files"]
    written = FILES_PER_REQUEST * (REQUESTS + 10)  # 10 warm-up requests
    rate = report["requests_per_s"]
    resident = FILES_PER_REQUEST * rate * (FILES_MAX_AGE_S + 2 * SWEEP_S + 3) + 8  # files still within their age
    assert files["at_end"] <= min(resident, written / 2), (files, rate)
    # idle for longer than the lifetime: gradio's copies are gone; the app's own are swept on the next request
    assert files["after_settle"] < files["at_end"]
    assert files["after_settle"] <= FILES_PER_REQUEST / 2 * rate * (FILES_MAX_AGE_S + 3) + 8, (files, rate)


# --- past the queue's bound --------------------------------------------------------------------------
def call_body(app: Served, **params: Any) -> bytes:
    """The JSON body of a plain-HTTP /generate call: the API's own defaults, then ``params``."""
    api = app.client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/generate"]
    values = {p["parameter_name"]: p.get("parameter_default") for p in api["parameters"]}
    assert params.keys() <= values.keys()
    return json.dumps({"data": list({**values, **params}.values())}).encode()


def submit(url: str, body: bytes) -> tuple[int, str]:
    """``(HTTP status, event id or error text)`` of queueing one call (it does not wait for the groove)."""
    post = urllib.request.Request(url + "gradio_api/call/generate", data=body,
                                  headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(post, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())["event_id"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def result(url: str, event_id: str) -> tuple[str, Any]:
    """``(last event, its data)`` of a queued call, once it has finished."""
    with urllib.request.urlopen(f"{url}gradio_api/call/generate/{event_id}", timeout=4 * REQUEST_TIMEOUT_S) as r:
        lines = r.read().decode().splitlines()
    events = [line.split(":", 1)[1].strip() for line in lines if line.startswith("event:")]
    data = [line.split(":", 1)[1].strip() for line in lines if line.startswith("data:")]
    return events[-1], json.loads(data[-1])


def test_a_full_queue_refuses_the_overflow_and_serves_the_rest(served: Served) -> None:  # noqa: F811
    bound, workers = served.app.QUEUE_MAX, served.app.QUEUE_CONCURRENCY
    body = call_body(served, style="funk", bars=BURST_BARS, seed=8, random_seed=False)
    n = bound + workers + OVERFLOW
    start = threading.Barrier(n)

    def one(_: int) -> tuple[int, str, tuple[str, Any] | None]:
        """Submit, and read the result at once as a client does (a result nobody reads is dropped)."""
        start.wait(timeout=REQUEST_TIMEOUT_S)
        status, event = submit(served.url, body)
        return status, event, result(served.url, event) if status == 200 else None

    with ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(one, range(n)))
    accepted = [done for status, _, done in answers if status == 200]
    refused = [(status, text) for status, text, _ in answers if status != 200]
    assert refused, f"all {n} requests were queued: the queue has no bound"
    assert all(status == 503 and "Queue is full" in text for status, text in refused), refused[:3]
    assert bound <= len(accepted) < n

    midis = set()
    for event, data in accepted:  # every request the queue took gets its groove
        assert event == "complete", data
        midi = data[1]["path"] if isinstance(data[1], dict) else data[1]
        assert midi_to_pattern(Path(midi).read_bytes()).bars == BURST_BARS
        midis.add(Path(midi).read_bytes())
    assert len(midis) == 1  # the same seed: the same groove, however full the queue was

    _, midi_path, summary = generate(served.client, style="rock", bars=1, seed=2, random_seed=False)
    assert summary["seed"] == 2 and Path(midi_path).is_file()  # the queue drained; the app serves again
