"""A public Space under abuse: each attempt a careless or hostile API user made against the live
app, replayed on loopback, with what it gets now.

The app is served in this process (``tests/app_fixtures.py``), so the engine's stages can be
counted or slowed; the RSS of many one-shot sessions is measured on ``python app.py`` in a
subprocess (:mod:`drumgen.tools.loadtest`). The rules are :mod:`drumgen.web.guard`'s and the jobs
:mod:`drumgen.web.serving`'s.

- direct calls past the queue (``/run/*``, ``/run/predict`` with ``fn_index``): closed;
- at most two grooves compute at once, whichever event asks;
- abandoned joins and calls are dropped before they compute; a cancelled call or a dropped stream
  stops at the next stage and leaves no files;
- one-shot sessions are forgotten once idle (and RSS comes back: the slow test);
- malformed calls of any shape: one short line, at most one short log line, no traceback;
- numbers of any size get the field's range; booleans are true or false only;
- uploads: refused unless the page takes one, then only a non-empty .mid/.midi of at most 2 MB;
- the file route: only this app's files, while they live; a multi-range request gets the file;
- one session_hash, two clients: a 409 for the second, never the other's groove;
- monitoring: closed, and its secret URL is never logged;
- temp space: files handed out where they are (no second copy); 32 bars at 40 BPM in a few MB.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_fixtures import REQUEST_TIMEOUT_S, Served, generate, import_app, served  # noqa: F401 (module fixture)
from conftest import free_port, use_checkpoint

from drumgen.engine import Engine
from drumgen.midi_io import MAX_MIDI_BYTES, midi_to_pattern
from drumgen.web import guard as guard_module
from drumgen.web.guard import MIDI_UPLOADS, guard_of, upload_rule_for
from drumgen.web.serving import LISTEN_GRACE_S, expire_sessions

MAX_ANSWER = 400  # characters: one line naming what is wrong
MAX_LOG_LINE = 300
BASE = {"style": "funk", "bars": 1, "seed": 5, "random_seed": False}


# --- helpers -------------------------------------------------------------------------------------------
def api(served: Served, path: str) -> str:  # noqa: F811
    return served.url.rstrip("/") + path


def defaults(served: Served, endpoint: str = "/generate") -> dict[str, Any]:  # noqa: F811
    """An endpoint's parameters with their defaults, in order (as gradio_client sends them)."""
    info = served.client.view_api(return_format="dict", print_info=False)["named_endpoints"][endpoint]
    return {p["parameter_name"]: p.get("parameter_default") for p in info["parameters"]}


def data(served: Served, **params: Any) -> list[Any]:  # noqa: F811
    values = {**defaults(served), **BASE, **params}
    return list(values.values())


def fn_index(served: Served, api_name: str) -> int:  # noqa: F811
    return next(fn._id for fn in served.blocks.fns.values() if fn.api_name == api_name)


def post(served: Served, path: str, body: Any, timeout: float = REQUEST_TIMEOUT_S) -> httpx.Response:  # noqa: F811
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(api(served, path), content=content, headers={"Content-Type": "application/json"},
                      timeout=timeout)


def events(text: str) -> list[tuple[str, Any]]:
    """``(event, data)`` pairs of a /call result stream."""
    out, event = [], None
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event is not None:
            out.append((event, json.loads(line.split(":", 1)[1])))
    return out


def call(served: Served, values: list[Any] | bytes, endpoint: str = "generate") -> tuple[str, Any]:  # noqa: F811
    """``(last event, its data)`` of one /call: submitted, then its result read at once."""
    body = values if isinstance(values, bytes) else {"data": values}
    submitted = post(served, f"/gradio_api/call/{endpoint}", body)
    if submitted.status_code != 200:
        return f"http-{submitted.status_code}", submitted.text
    event_id = submitted.json()["event_id"]
    result = httpx.get(api(served, f"/gradio_api/call/{endpoint}/{event_id}"), timeout=REQUEST_TIMEOUT_S)
    return events(result.text)[-1]


class Stages:
    """Counts the engine's costly stages (any job's), optionally slowing sampling down."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, sample_s: float = 0.0) -> None:
        self.counts: Counter[str] = Counter()
        self.running = self.most = 0
        self.lock = threading.Lock()
        for stage in ("sample", "render", "preview"):
            own = getattr(Engine, stage)
            monkeypatch.setattr(Engine, stage, self.counted(stage, own, sample_s if stage == "sample" else 0.0))

    def counted(self, stage: str, own: Any, delay: float) -> Any:
        def stage_fn(engine: Engine, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.counts[stage] += 1
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                time.sleep(delay)
                return own(engine, *args, **kwargs)
            finally:
                with self.lock:
                    self.running -= 1

        return stage_fn


@pytest.fixture
def stages(monkeypatch: pytest.MonkeyPatch) -> Stages:
    return Stages(monkeypatch)


@pytest.fixture
def slow_stages(monkeypatch: pytest.MonkeyPatch) -> Stages:
    return Stages(monkeypatch, sample_s=2.0)


def folders(served: Served) -> set[str]:  # noqa: F811
    return {p.name for p in served.temp.root.iterdir()}


def wait_until(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def assert_short(response: httpx.Response, statuses: tuple[int, ...] = (400, 403, 404, 409, 413, 415, 422)) -> str:
    assert response.status_code in statuses, (response.status_code, response.text[:MAX_ANSWER])
    assert len(response.text) < MAX_ANSWER and "Traceback" not in response.text, response.text[:MAX_ANSWER]
    return response.json()["detail"]


@pytest.fixture
def quiet_check(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """After the test: no traceback anywhere, and only short log lines."""
    caplog.set_level(logging.INFO)
    yield caplog
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "Traceback" not in caplog.text, (out + err + caplog.text)[-2000:]
    assert all(len(r.getMessage()) < MAX_LOG_LINE for r in caplog.records), [r.getMessage()[:400]
                                                                           for r in caplog.records]


# --- the queue cannot be bypassed ----------------------------------------------------------------------
@pytest.mark.parametrize(("path", "body"), [
    ("/gradio_api/run/generate", "generate-data"),
    ("/gradio_api/run/predict", "generate-fn_index"),
    ("/gradio_api/api/generate", "generate-data"),
    ("/gradio_api/run/nonexistent", "generate-data"),
    ("/gradio_api/run/predict", {"data": [], "fn_index": 999}),
    ("/gradio_api/component_server", {"data": None, "component_id": 1, "fn_name": "x", "session_hash": "s"}),
], ids=["run-by-name", "run-predict-fn_index", "api-by-name", "run-nonexistent", "run-fn_index-999",
        "component-server"])
def test_direct_calls_past_the_queue_are_closed(served: Served, stages: Stages, quiet_check: Any, path: str,  # noqa: F811
                                                body: Any) -> None:
    if body == "generate-data":
        body = {"data": data(served)}
    elif body == "generate-fn_index":
        body = {"data": data(served), "fn_index": fn_index(served, "generate")}
    assert "through the queue" in assert_short(post(served, path, body), (404,))
    assert stages.counts["sample"] == 0  # nothing was computed


def test_every_server_event_is_queued_and_private_ones_have_no_api_name(served: Served) -> None:  # noqa: F811
    config = served.blocks.get_config_file()
    backend = [d for d in config["dependencies"] if d.get("backend_fn")]
    assert backend and all(d["queue"] for d in backend)
    for dep in [d for d in backend if d["api_visibility"] != "public" and d.get("api_name")][:3]:
        answer = post(served, f"/gradio_api/call/{dep['api_name']}", {"data": []})
        assert "no endpoint" in assert_short(answer, (404,))


def test_at_most_two_grooves_compute_at_once_whichever_event_asks(served: Served,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Six calls at once on two events (the API's /generate, and the page's own generate through
    queue/join): never more than two in the engine."""
    from gradio_client import Client

    stages = Stages(monkeypatch, sample_s=0.5)
    page = next(fn for fn in served.blocks.fns.values() if fn.api_name == "generate_in_page")

    def through_the_page(k: int) -> None:
        session = f"page{k}"
        values = [getattr(b, "value", None) for b in page.inputs]
        joined = post(served, "/gradio_api/queue/join", {"data": values, "fn_index": page._id,
                                                         "session_hash": session})
        assert joined.status_code == 200, joined.text
        with httpx.stream("GET", api(served, f"/gradio_api/queue/data?session_hash={session}"),
                          timeout=4 * REQUEST_TIMEOUT_S) as stream:
            for line in stream.iter_lines():
                if '"process_completed"' in line:
                    assert '"success":true' in line.replace(" ", ""), line[:300]
                    return

    def through_the_api(k: int) -> None:
        own = Client(served.url, verbose=False)
        assert generate(own, **{**BASE, "seed": k})[2]["seed"] == k

    with ThreadPoolExecutor(6) as pool:
        for job in [pool.submit(through_the_page if k % 2 else through_the_api, k) for k in range(6)]:
            job.result(timeout=8 * REQUEST_TIMEOUT_S)
    assert stages.counts["sample"] == 6 and stages.most <= 2


# --- abandoned, cancelled and dropped work -------------------------------------------------------------
def test_abandoned_joins_are_dropped_before_they_compute(served: Served, stages: Stages) -> None:  # noqa: F811
    """30 joins whose result stream is never opened, then a real call: it is served within the
    grace of the first two (it waited 45.6 s behind them), and none of them sampled or wrote a file."""
    before = folders(served)
    values, index = data(served, bars=4), fn_index(served, "generate")
    for k in range(30):
        joined = post(served, "/gradio_api/queue/join", {"data": values, "fn_index": index, "session_hash": f"gone{k}"})
        assert joined.status_code == 200, joined.text
    start = time.perf_counter()
    _, midi, summary = generate(served.client, **{**BASE, "seed": 77})
    waited = time.perf_counter() - start
    assert summary["seed"] == 77 and midi_to_pattern(midi).bars == 1
    assert waited < LISTEN_GRACE_S + 20, waited
    assert stages.counts["sample"] == 1  # the real call only
    assert len(folders(served) - before) == 1
    assert wait_until(lambda: not served.blocks._queue.event_ids_to_events)  # the queue is empty again


def test_a_call_read_too_late_says_why_it_was_dropped(served: Served, stages: Stages) -> None:  # noqa: F811
    submitted = post(served, "/gradio_api/call/generate", {"data": data(served)})
    event_id = submitted.json()["event_id"]
    time.sleep(LISTEN_GRACE_S + 1.5)
    result = httpx.get(api(served, f"/gradio_api/call/generate/{event_id}"), timeout=REQUEST_TIMEOUT_S)
    event, message = events(result.text)[-1]
    assert event == "error" and "nobody read its result" in message["error"], message
    assert stages.counts["sample"] == 0


def test_a_cancelled_call_stops_before_its_audio_and_leaves_no_files(served: Served,  # noqa: F811
                                                                     slow_stages: Stages) -> None:
    from gradio_client import Client

    before = folders(served)
    own = Client(served.url, verbose=False)
    job = own.submit(**BASE, api_name="/generate")
    assert wait_until(lambda: slow_stages.counts["sample"] == 1)  # it is sampling
    job.cancel()
    assert wait_until(lambda: slow_stages.running == 0)  # sampling ends; the next stage finds the call cancelled
    time.sleep(0.5)
    assert slow_stages.counts["render"] == 0 and slow_stages.counts["preview"] == 0
    assert folders(served) == before
    assert generate(own, **{**BASE, "seed": 6})[2]["seed"] == 6  # the session serves again


def test_a_dropped_stream_stops_the_call_and_leaves_no_files(served: Served,  # noqa: F811
                                                             slow_stages: Stages) -> None:
    before = folders(served)
    session = "dropper"
    joined = post(served, "/gradio_api/queue/join", {"data": data(served, bars=8),
                                                     "fn_index": fn_index(served, "generate"), "session_hash": session})
    assert joined.status_code == 200
    with httpx.stream("GET", api(served, f"/gradio_api/queue/data?session_hash={session}"), timeout=30) as stream:
        for line in stream.iter_lines():
            if "process_starts" in line:
                assert wait_until(lambda: slow_stages.counts["sample"] == 1)
                break  # the client goes away while its groove is sampled
    assert wait_until(lambda: slow_stages.running == 0)
    time.sleep(0.5)
    assert slow_stages.counts["render"] == 0
    assert folders(served) == before


# --- sessions ------------------------------------------------------------------------------------------
def test_one_shot_sessions_are_bounded_and_forgotten_once_idle(served: Served) -> None:  # noqa: F811
    from gradio.state_holder import StateHolder

    from drumgen.web.serving import _evict_unconnected

    holder, queue = served.blocks.state_holder, served.blocks._queue
    assert holder.capacity == served.app.SESSION_CAPACITY and StateHolder.update is _evict_unconnected
    expire_sessions(served.blocks, idle_s=0)
    before = set(holder.session_data)
    for _ in range(40):
        event, styles = call(served, [], endpoint="styles")
        assert event == "complete" and styles
    made = set(holder.session_data) - before
    assert len(made) == 40  # gradio keeps a copy of the page's config for each
    expire_sessions(served.blocks, idle_s=0)
    assert not made & set(holder.session_data)
    assert not made & (set(queue.pending_event_ids_session) | set(queue.pending_messages_per_session))
    assert served.client.session_hash in holder.session_data or not before  # a connected client is kept


def test_two_clients_with_one_session_hash_never_get_each_others_grooves(served: Served,  # noqa: F811
                                                                         slow_stages: Stages) -> None:
    index, session = fn_index(served, "generate"), "shared-session"
    first = post(served, "/gradio_api/queue/join", {"data": data(served, seed=1), "fn_index": index,
                                                    "session_hash": session})
    assert first.status_code == 200
    first_id = first.json()["event_id"]
    got: list[dict[str, Any]] = []

    def read() -> None:
        with httpx.stream("GET", api(served, f"/gradio_api/queue/data?session_hash={session}"),
                          timeout=4 * REQUEST_TIMEOUT_S) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    got.append(json.loads(line[5:]))

    reader = threading.Thread(target=read)
    reader.start()
    assert wait_until(lambda: guard_of(served.blocks).listening(session))
    second = post(served, "/gradio_api/queue/join", {"data": data(served, seed=2), "fn_index": index,
                                                     "session_hash": session})
    assert "already has a call" in assert_short(second, (409,))
    second_stream = httpx.get(api(served, f"/gradio_api/queue/data?session_hash={session}"), timeout=10)
    assert "already reading" in assert_short(second_stream, (409,))
    reader.join(4 * REQUEST_TIMEOUT_S)
    done = [m for m in got if m.get("msg") == "process_completed"]
    assert [m["event_id"] for m in done] == [first_id] and done[0]["output"]["data"][2]["seed"] == 1
    assert got[-1]["msg"] == "close_stream"
    again = post(served, "/gradio_api/queue/join", {"data": data(served, seed=2), "fn_index": index,
                                                    "session_hash": session})  # the second, once the first is served
    assert again.status_code == 200
    got.clear()
    read()
    done = [m for m in got if m.get("msg") == "process_completed"]
    assert [m["event_id"] for m in done] == [again.json()["event_id"]] and done[0]["output"]["data"][2]["seed"] == 2


def test_one_gradio_client_session_shared_by_two_clients_fails_fast_instead_of_crossing(served: Served  # noqa: F811
                                                                                        ) -> None:
    from gradio_client import Client

    clients = [Client(served.url, verbose=False) for _ in range(2)]
    for own in clients:
        own.session_hash = "one-hash-for-two"

    def ask(k: int) -> Any:
        try:
            return clients[k].submit(**{**BASE, "seed": 100 + k}, api_name="/generate").result(timeout=60)[2]["seed"]
        except Exception as exc:  # noqa: BLE001 (what the second client gets is the point)
            return type(exc).__name__

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(ask, range(2)))
    seeds = [a for a in answers if isinstance(a, int)]
    assert seeds and all(seed == 100 + answers.index(seed) for seed in seeds), answers  # never the other's


# --- malformed calls, numbers and booleans -------------------------------------------------------------
def test_a_huge_bad_body_gets_one_short_line_and_one_short_log_line(served: Served, quiet_check: Any) -> None:  # noqa: F811
    """12 inputs, one of them a 10 MB string: the answer was {"error": null} and 10.5 MB of log."""
    values = data(served)[:11] + ["x" * 10_000_000]
    answer = post(served, "/gradio_api/call/generate", {"data": values})
    assert "over 64 KB" in assert_short(answer, (413,))
    mine = [r for r in quiet_check.records if r.name.startswith("drumgen")]
    assert len(mine) <= 1 and "xxxxxxxxxx" not in quiet_check.text


@pytest.mark.parametrize(("path", "body", "says"), [
    ("/gradio_api/call/generate", "twelve-inputs", "takes"),
    ("/gradio_api/queue/join", {"data": [], "fn_index": 999, "session_hash": "s999"}, "fn_index 999"),
    ("/gradio_api/queue/join", {"data": [], "fn_index": -1, "session_hash": "s-1"}, "fn_index -1"),
    ("/gradio_api/queue/join", {"data": [], "fn_index": "0", "session_hash": "s0"}, "fn_index '0'"),
    ("/gradio_api/call/nonexistent", {"data": []}, "no endpoint"),
    ("/gradio_api/call/generate", b"{not json", "JSON"),
    ("/gradio_api/call/generate", {"data": "funk"}, "list"),
    ("/gradio_api/call/generate", [1, 2], "object"),
    ("/gradio_api/call/generate", "long-session-hash", "session_hash"),
    ("/gradio_api/call/v2/generate", {"style": "funk", "tempi": 90}, "no parameter 'tempi'"),
    ("/gradio_api/queue/join", "example-999", "example's index"),
    ("/gradio_api/queue/join", "file-not-ours", "not a file of this app"),
], ids=["wrong-count", "fn_index-999", "fn_index--1", "fn_index-text", "unknown-endpoint", "not-json",
        "data-not-a-list", "body-not-an-object", "session-hash", "v2-unknown-name", "private-helper-bad-example",
        "private-helper-file-not-ours"])
def test_a_malformed_call_gets_one_short_line_and_no_traceback(served: Served, quiet_check: Any, stages: Stages,  # noqa: F811
                                                               path: str, body: Any, says: str) -> None:
    if body == "twelve-inputs":
        body = {"data": data(served)[:12]}
    elif body == "long-session-hash":
        body = {"data": data(served), "session_hash": "s" * 5000}
    elif body == "example-999":
        examples = next(fn for fn in served.blocks.fns.values() if fn.name == "load_example")
        body = {"data": [999], "fn_index": examples._id, "session_hash": "examples"}
    elif body == "file-not-ours":
        takers = [fn for fn in served.blocks.fns.values() if fn.fn is not None
                  and any(type(b).__name__ in guard_module.FILE_COMPONENTS or guard_module.takes_files(b)
                          for b in fn.inputs)]
        if not takers:
            pytest.skip("no event takes a file")
        fn = takers[0]
        values = [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}} if guard_module.takes_files(b)
                  else getattr(b, "value", None) for b in fn.inputs]
        body = {"data": values, "fn_index": fn._id, "session_hash": "files"}
    answer = post(served, path, body)
    assert says in assert_short(answer)
    assert stages.counts["sample"] == 0


def test_unknown_or_already_read_event_ids_get_404_at_once(served: Served, quiet_check: Any) -> None:  # noqa: F811
    """A random id answered with a 5.4 KB traceback; reading a result twice hung on heartbeats."""
    random_id = httpx.get(api(served, "/gradio_api/call/generate/0123456789abcdef"), timeout=10)
    assert "event id" in assert_short(random_id, (404,))
    submitted = post(served, "/gradio_api/call/generate", {"data": data(served)})
    event_id = submitted.json()["event_id"]
    first = httpx.get(api(served, f"/gradio_api/call/generate/{event_id}"), timeout=REQUEST_TIMEOUT_S)
    assert events(first.text)[-1][0] == "complete"
    again = httpx.get(api(served, f"/gradio_api/call/generate/{event_id}"), timeout=10)
    assert "already read" in assert_short(again, (404,))
    no_session = httpx.get(api(served, "/gradio_api/queue/data?session_hash=nobody"), timeout=10)
    assert "no call is waiting" in assert_short(no_session, (404,))


HUGE_INT = "9" * 5000


@pytest.mark.parametrize(("field", "raw"), [
    ("tempo", "1" + "0" * 400), ("bars", "1" + "0" * 400), ("seed", "1" + "0" * 400),  # JSON integers 10^400
    ("tempo", HUGE_INT), ("seed", "-" + HUGE_INT),  # too long for Python's JSON parser
    ("fill_every", '"\\u00b2"'), ("tempo", f'"{HUGE_INT}"'), ("bars", '"4"'),
    ("random_seed", '"false"'), ("random_seed", "2"), ("swing_override", '"yes"'), ("split_tracks", "1"),
], ids=["tempo-10^400", "bars-10^400", "seed-10^400", "tempo-5000-digits", "seed--5000-digits", "fill_every-²",
        "tempo-5000-digit-text", "bars-text", "random_seed-text", "random_seed-2", "swing_override-yes",
        "split_tracks-1"])
def test_numbers_of_any_size_get_the_fields_range_and_booleans_are_strict(served: Served, quiet_check: Any,  # noqa: F811
                                                                          field: str, raw: str) -> None:
    names = list(defaults(served))
    if field not in names:
        pytest.skip(f"/generate has no {field}")
    values = data(served)
    marker = "__the_value__"
    values[names.index(field)] = marker
    body = json.dumps({"data": values}).replace(json.dumps(marker), raw).encode()
    event, message = call(served, body)
    assert event == "error", (event, message)
    text = message["error"]
    assert field in text and ("must be" in text) and len(text) < MAX_ANSWER, text


def test_a_10_mb_value_is_never_echoed(served: Served, quiet_check: Any) -> None:  # noqa: F811
    values = data(served)
    values[list(defaults(served)).index("tempo")] = "9" * 10_000_000
    answer = post(served, "/gradio_api/call/generate", {"data": values})
    assert_short(answer, (413,))  # was echoed back whole: a 10.5 MB response


# --- uploads -------------------------------------------------------------------------------------------
def upload(url: str, *files: tuple[str, bytes]) -> httpx.Response:
    return httpx.post(url.rstrip("/") + "/gradio_api/upload", files=[("files", f) for f in files], timeout=30)


def small_midi() -> bytes:
    from drumgen.midi_io import pattern_to_midi_bytes
    from drumgen.pattern import Note, Pattern

    return pattern_to_midi_bytes(Pattern(notes=[Note(0, 36, 100), Note(480, 38, 100)], tempo=100, bars=1))


@pytest.fixture(scope="module")
def midi_app() -> Iterator[tuple[Any, str]]:
    """A small app launched like the real one whose one endpoint takes a .mid (as the upload
    endpoints do): the upload rule then lets MIDI files through and nothing else."""
    import gradio as gr

    app = import_app()
    with gr.Blocks(analytics_enabled=False) as blocks:
        midi = gr.File(file_types=[".mid", ".midi"], type="filepath", label="midi")
        size = gr.Number(label="size")
        gr.Button().click(lambda path: Path(path).stat().st_size, midi, size, api_name="size")
    _, url, _ = app.launch(blocks, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    try:
        yield blocks, url
    finally:
        blocks.close()


def test_an_app_without_upload_inputs_refuses_every_upload_even_empty_ones() -> None:
    import gradio as gr

    app = import_app()
    with gr.Blocks(analytics_enabled=False) as blocks:
        gr.Button().click(lambda: 1, None, gr.Number(), api_name="one")
    assert upload_rule_for(blocks) is None
    _, url, _ = app.launch(blocks, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    try:
        for files in ([("empty.mid", b"")], [("groove.mid", small_midi())], [("big.bin", b"x" * 100_000)]):
            assert "no uploads" in assert_short(upload(url, *files), (413,))
    finally:
        blocks.close()


def test_the_upload_rule_takes_only_what_a_midi_endpoint_needs(midi_app: tuple[Any, str]) -> None:
    blocks, url = midi_app
    assert upload_rule_for(blocks) == MIDI_UPLOADS and guard_of(blocks).uploads == MIDI_UPLOADS
    assert "empty" in assert_short(upload(url, ("empty.mid", b"")), (400,))
    assert ".mid / .midi" in assert_short(upload(url, ("notes.txt", small_midi())), (415,))
    assert "limit" in assert_short(upload(url, ("big.mid", b"MThd" + bytes(MAX_MIDI_BYTES))), (413,))
    assert "Standard MIDI File" in assert_short(upload(url, ("fake.mid", b"RIFF" + bytes(100))), (415,))
    assert "1 to 1" in assert_short(upload(url, ("a.mid", small_midi()), ("b.mid", small_midi())), (400,))
    accepted = upload(url, ("groove.MID", small_midi()))
    assert accepted.status_code == 200, accepted.text
    path = accepted.json()[0]
    event_id = httpx.post(url + "gradio_api/call/size", json={"data": [{"path": path, "meta": {
        "_type": "gradio.FileData"}}]}, timeout=30).json()["event_id"]
    result = httpx.get(url + f"gradio_api/call/size/{event_id}", timeout=30).text
    assert events(result)[-1] == ("complete", [len(small_midi())])


def test_uploads_stop_when_the_upload_space_is_full(midi_app: tuple[Any, str]) -> None:
    """30,000 empty files in 18 s filled the disk; uploads now stop at a byte budget (they expire with
    the app's files)."""
    from dataclasses import replace

    blocks, url = midi_app
    guard = guard_of(blocks)
    held = sum(Path(p).stat().st_size for p in blocks.upload_file_set if Path(p).exists())
    guard.uploads = replace(MIDI_UPLOADS, budget_bytes=held + 3 * (len(small_midi()) + 1))
    try:
        codes = [upload(url, (f"g{k}.mid", small_midi() + bytes([k]))).status_code for k in range(5)]
    finally:
        guard.uploads = MIDI_UPLOADS
    assert codes == [200, 200, 200, 503, 503]


def test_an_upload_input_the_guard_has_no_rule_for_stops_the_launch() -> None:
    import gradio as gr

    with gr.Blocks(analytics_enabled=False) as blocks:
        gr.Button().click(lambda f: f, gr.File(label="anything"), gr.Textbox())
    with pytest.raises(ValueError, match="no rule"):
        upload_rule_for(blocks)


# --- the file route ------------------------------------------------------------------------------------
def test_the_file_route_serves_only_this_apps_files_while_they_live(served: Served, quiet_check: Any) -> None:  # noqa: F811
    from drumgen.web.serving import gradio_upload_folder

    _, midi, _ = generate(served.client, **BASE)
    served_path = next(p for files in served.blocks.temp_file_sets for p in files if p.endswith(Path(midi).name))
    route = api(served, "/gradio_api/file=")
    assert httpx.get(route + served_path, timeout=10).status_code == 200
    whole = httpx.get(route + served_path, headers={"Range": "bytes=0-1,2-3"}, timeout=10)  # was a 500
    assert whole.status_code == 200 and whole.content == Path(served_path).read_bytes()
    assert httpx.get(route + served_path, headers={"Range": "bytes=0-3"}, timeout=10).content == b"MThd"
    other = gradio_upload_folder() / "another-app" / "their_groove.mid"  # another process's file in gradio's folder
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(small_midi())
    try:
        assert "not made by this app" in assert_short(httpx.get(route + str(other), timeout=10), (404,))
    finally:
        other.unlink()
    assert "not URLs" in assert_short(httpx.get(route + "https://example.com/a.mid", timeout=10), (403,))
    for files in served.blocks.temp_file_sets:  # the file expires: gradio's sweep lets go of it
        files.discard(served_path)
    assert "expired" in assert_short(httpx.get(route + served_path, timeout=10), (404,))


# --- monitoring and temp space -------------------------------------------------------------------------
def test_monitoring_is_closed_and_its_url_never_logged(served: Served, capfd: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    for path in ("/monitoring", "/monitoring/summary", "/monitoring/0123456789"):
        answer = httpx.get(api(served, path), timeout=10)
        assert answer.status_code in (403, 404), (path, answer.status_code)
    out, err = capfd.readouterr()
    assert "monitoring" not in (out + err).lower()


def test_files_are_handed_out_where_they_are_not_copied(served: Served) -> None:  # noqa: F811
    preview, midi, _ = generate(served.client, **BASE)
    held = {p for files in served.blocks.temp_file_sets for p in files}
    mine = [p for p in held if Path(p).name in (Path(midi).name, Path(preview or "x").name)]
    assert mine and all(Path(p).is_relative_to(served.temp.root) for p in mine)  # one copy: the app's own


@pytest.mark.slow
def test_a_32_bar_40_bpm_request_costs_a_few_mb_of_temp_space(served: Served) -> None:  # noqa: F811
    """It kept a 34 MB WAV twice (68 MB); now the MP3 preview and the .mid, once."""
    preview, midi, summary = served.client.submit(**{**BASE, "bars": 32, "tempo": 40},
                                                  api_name="/generate").result(timeout=240)
    assert summary["bars"] == 32 and preview
    names = {Path(preview).name, Path(midi).name}
    held = [Path(p) for files in served.blocks.temp_file_sets for p in files if Path(p).name in names]
    assert len(held) == 2 and all(p.is_relative_to(served.temp.root) for p in held)  # one copy each
    folder = held[0].parent
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 4 * 2**20, total


# --- many one-shot sessions: RSS ----------------------------------------------------------------------
@pytest.mark.slow
def test_thousands_of_one_shot_sessions_leave_the_apps_memory_where_it_was(request: pytest.FixtureRequest) -> None:
    """~13,000 one-shot sessions took RSS from 517 to 1,695 MB, where it stayed."""
    from drumgen.tools.loadtest import run_sessions

    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        report = run_sessions(sessions=600, files_max_age_s=6)
    assert report["errors"] == 0, report
    assert report["app_rss_mb"]["after_expiry"] <= 1.05 * report["app_rss_mb"]["before"], report
