"""A short, bounded load test: ``app.py`` in a subprocess on loopback, driven by 4 concurrent
gradio_client users for 160 one-bar requests through :func:`drumgen.loadtest.run_loadtest` (the
function behind ``python -m drumgen loadtest``). Every request gets its MIDI, the queue stays
within its bound, and the app's temp files stay bounded by how long files are kept (here 5 s),
not by how many requests were made.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import use_checkpoint

from drumgen.loadtest import run_loadtest

USERS, REQUESTS, BARS = 4, 160, 1
FILES_MAX_AGE_S = 5  # the app's file lifetime for this test (default 600 s), so its sweep shows within the run
SWEEP_S = 1  # the app sweeps every max(1, min(60, age // 4)) s
FILES_PER_REQUEST = 4  # .mid + .wav in the app's folder, and gradio's cached copy of each
SETTLE_S = FILES_MAX_AGE_S + 3 * SWEEP_S
QUEUE_BOUND = 32  # app.QUEUE_MAX


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)  # the app subprocess inherits the environment
        return run_loadtest(users=USERS, requests=REQUESTS, duration=80, bars=BARS, queue_bound=QUEUE_BOUND,
                            settle_s=SETTLE_S, env={"DRUMGEN_FILES_MAX_AGE_S": str(FILES_MAX_AGE_S)})


def test_every_request_gets_its_groove(report: dict[str, Any]) -> None:
    assert report["errors"] == 0, report["error_examples"]
    assert report["ok"] == REQUESTS
    assert report["latency_s"]["p95"] < 30


def test_the_queue_stays_within_its_bound(report: dict[str, Any]) -> None:
    assert 0 <= report["queue"]["max_seen"] <= QUEUE_BOUND


def test_temp_files_are_bounded_by_their_lifetime_not_the_request_count(report: dict[str, Any]) -> None:
    files = report["temp_files"]
    written = FILES_PER_REQUEST * (REQUESTS + 10)  # 10 warm-up requests
    rate = report["requests_per_s"]
    resident = FILES_PER_REQUEST * rate * (FILES_MAX_AGE_S + 2 * SWEEP_S + 3) + 8  # files still within their age
    assert files["at_end"] <= min(resident, written / 2), (files, rate)
    # idle for longer than the lifetime: gradio's copies are gone; the app's own are swept on the next request
    assert files["after_settle"] < files["at_end"]
    assert files["after_settle"] <= FILES_PER_REQUEST / 2 * rate * (FILES_MAX_AGE_S + 3) + 8, (files, rate)
