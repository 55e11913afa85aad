"""Bad input through the API door (gradio_client against a real server on loopback, one launch
for the module): every bad value gets an error that names its field and what is allowed, never a
traceback or a hung request; boundary values get a groove; the same seed gives the same MIDI alone
or among 16 concurrent requests; no request reads files outside the app's own temp area.

This is the one matrix of bad and boundary values for the API; the ranges are
:mod:`drumgen.limits`'s.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from app_fixtures import REQUEST_TIMEOUT_S, Served, served  # noqa: F401 (the module-scoped app fixture)

from drumgen.constants import MAX_SEED
from drumgen.midi_io import midi_to_pattern

NAN, INF = math.nan, math.inf
BASE = {"style": "funk", "bars": 1, "seed": 1, "random_seed": False}

BAD = [  # (id, parameters, the field the error must name)
    ("tempo-999", {"tempo": 999}, "tempo"),
    ("tempo-39", {"tempo": 39}, "tempo"),
    ("tempo-nan", {"tempo": NAN}, "tempo"),
    ("tempo-inf", {"tempo": INF}, "tempo"),
    ("tempo--inf", {"tempo": -INF}, "tempo"),
    ("tempo-text", {"tempo": "fast"}, "tempo"),
    ("tempo-true", {"tempo": True}, "tempo"),
    ("tempo-numeric-text", {"tempo": "95.5"}, "tempo"),  # a string is not a number
    ("bars-0", {"bars": 0}, "bars"),
    ("bars-33", {"bars": 33}, "bars"),
    ("bars-2.5", {"bars": 2.5}, "bars"),
    ("bars-text", {"bars": "four"}, "bars"),
    ("bars-nan", {"bars": NAN}, "bars"),
    ("style-empty", {"style": ""}, "style"),
    ("style-unknown", {"style": "no_such_style"}, "style"),
    ("style-path", {"style": "../../etc/passwd"}, "style"),
    ("style-number", {"style": 5}, "style"),
    ("kit-unknown", {"kit": "cowbell"}, "kit"),
    ("kit-path", {"kit": "../../etc/passwd"}, "kit"),
    ("kit-number", {"kit": 3}, "kit"),
    ("humanize-negative", {"humanize": -1}, "humanize"),
    ("humanize-101", {"humanize": 101}, "humanize"),
    ("humanize-nan", {"humanize": NAN}, "humanize"),
    ("swing-90", {"swing_override": True, "swing": 90}, "swing"),
    ("swing-inf", {"swing_override": True, "swing": INF}, "swing"),
    ("fill_every-3", {"fill_every": 3}, "fill_every"),
    ("fill_every-text", {"fill_every": "often"}, "fill_every"),
    ("fill_every-true", {"fill_every": True}, "fill_every"),
    ("temperature-negative", {"temperature": -0.5}, "temperature"),
    ("temperature-3", {"temperature": 3}, "temperature"),
    ("temperature-nan", {"temperature": NAN}, "temperature"),
    ("top_k-negative", {"top_k": -1}, "top_k"),
    ("top_k-501", {"top_k": 501}, "top_k"),
    ("top_k-2.5", {"top_k": 2.5}, "top_k"),
    ("top_p-negative", {"top_p": -0.1}, "top_p"),
    ("top_p-1.5", {"top_p": 1.5}, "top_p"),
    ("top_p-nan", {"top_p": NAN}, "top_p"),
    ("seed-negative", {"seed": -1}, "seed"),
    ("seed-2^63", {"seed": 2**63}, "seed"),
    ("seed-2^64", {"seed": 2**64}, "seed"),
    ("seed-1.5", {"seed": 1.5}, "seed"),
    ("seed-nan", {"seed": NAN}, "seed"),
    ("seed-text", {"seed": "abc"}, "seed"),
    ("variation-negative", {"variation": -1}, "variation"),
    ("variation-101", {"variation": 101}, "variation"),
    ("variation-nan", {"variation": NAN}, "variation"),
    ("variation-text", {"variation": "some"}, "variation"),
    ("random_seed-text", {"random_seed": "false"}, "random_seed"),  # would be true to a plain checkbox
    ("random_seed-number", {"random_seed": 0}, "random_seed"),
    ("swing_override-text", {"swing_override": "true", "swing": 60}, "swing_override"),
    ("swing_override-null", {"swing_override": None}, "swing_override"),
    ("drum_map-unknown", {"drum_map": "cowbell"}, "drum_map"),
    ("drum_map-path", {"drum_map": "../../etc/passwd"}, "drum_map"),
    ("drum_map-number", {"drum_map": 3}, "drum_map"),
    ("split_tracks-text", {"split_tracks": "yes"}, "split_tracks"),
    ("split_tracks-number", {"split_tracks": 1}, "split_tracks"),
]

GOOD = [  # (id, parameters): boundary values that must give a groove
    ("temperature-0", {"temperature": 0}),
    ("temperature-2", {"temperature": 2}),
    ("top_p-1", {"top_p": 1}),
    ("top_p-0", {"top_p": 0}),  # only the likeliest token
    ("top_p-0.05", {"top_p": 0.05}),
    ("top_k-0", {"top_k": 0}),
    ("top_k-above-vocabulary", {"top_k": 200}),  # the model's vocabulary is smaller than 200
    ("32bars-300bpm", {"bars": 32, "tempo": 300}),
    ("1bar-40bpm", {"bars": 1, "tempo": 40}),
    ("seed-0", {"seed": 0}),
    ("seed-2^63-1", {"seed": MAX_SEED}),
    ("seed-empty-random", {"seed": None, "random_seed": True}),
    ("humanize-0", {"humanize": 0}),
    ("swing-50", {"swing_override": True, "swing": 50}),
    ("swing-75", {"swing_override": True, "swing": 75}),
    ("style-display-name", {"style": "Metro Boomin", "bars": 2}),
    ("fill_every-8", {"fill_every": 8, "bars": 8}),
    ("variation-0", {"variation": 0, "bars": 4}),
    ("variation-100", {"variation": 100}),
    ("tempo-left-out", {"tempo": None}),
    ("kit-left-out", {"kit": None}),
    ("sampling-left-out", {"temperature": None, "top_k": None, "top_p": None}),
    ("drum_map-name", {"drum_map": "Superior Drummer 3"}),
    ("drum_map-left-out", {"drum_map": None}),
    ("split_tracks", {"split_tracks": True, "bars": 2}),
]


INPUTS = {  # /generate's inputs in order, with its defaults (None: the style's own)
    "style": "funk", "tempo": None, "bars": 4, "kit": None, "humanize": 100, "swing_override": False, "swing": None,
    "fill_every": None, "temperature": None, "top_k": None, "top_p": None, "seed": 0, "random_seed": True,
    "variation": None, "drum_map": "gm", "split_tracks": False,
}


def raw_call(url: str, **params: Any) -> tuple[str, str]:
    """``(event, data)`` of /generate called over plain HTTP, as curl would: JSON that may hold the
    literals NaN and Infinity, which gradio_client refuses to send."""
    values = {**INPUTS, **BASE, **params}
    body = json.dumps({"data": [values[name] for name in INPUTS]}).encode()  # NaN/Infinity literals
    post = urllib.request.Request(url.rstrip("/") + "/gradio_api/call/generate", data=body,
                                  headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(post, timeout=REQUEST_TIMEOUT_S) as response:
            event_id = json.loads(response.read())["event_id"]
    except urllib.error.HTTPError as exc:  # refused before it reaches the queue
        return "http-error", f"{exc.code} {exc.read().decode(errors='replace')}"
    with urllib.request.urlopen(f"{url.rstrip('/')}/gradio_api/call/generate/{event_id}",
                                timeout=REQUEST_TIMEOUT_S) as response:
        lines = response.read().decode().splitlines()
    events = [line.split(":", 1)[1].strip() for line in lines if line.startswith("event:")]
    data = [line.split(":", 1)[1].strip() for line in lines if line.startswith("data:")]
    return events[-1], data[-1]


def call(client: Any, **params: Any) -> tuple[str | None, str, dict[str, Any]]:
    """/generate through gradio_client (or plain HTTP for NaN / infinity); an error raises AppError."""
    from gradio_client.exceptions import AppError

    if any(isinstance(v, float) and not math.isfinite(v) for v in params.values()):
        event, data = raw_call(client.src, **params)
        if event != "complete":
            message = json.loads(data) if data.startswith(("{", '"')) else data
            raise AppError(message.get("message", data) if isinstance(message, dict) else str(message))
        return tuple(json.loads(data))  # not reached by the bad-input tests
    job = client.submit(**{**BASE, **params}, api_name="/generate")
    return job.result(timeout=REQUEST_TIMEOUT_S)


@pytest.fixture(scope="module")
def client(served: Served) -> Any:  # noqa: F811
    return served.client


@pytest.mark.parametrize(("params", "field"), [pytest.param(p, f, id=i) for i, p, f in BAD])
def test_bad_value_gets_an_error_naming_the_field(client: Any, params: dict[str, Any], field: str) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        call(client, **params)
    message = str(info.value)
    assert re.search(rf"\b{field}\b", message), message
    assert "must be" in message or "valid styles" in message, message  # says what is allowed
    assert "Traceback" not in message and "\n" not in message.strip()


@pytest.mark.parametrize("params", [pytest.param(p, id=i) for i, p in GOOD])
def test_boundary_value_gets_a_groove(client: Any, params: dict[str, Any]) -> None:
    audio, midi_path, summary = call(client, **params)
    request = {**BASE, **params}
    pattern = midi_to_pattern(Path(midi_path).read_bytes())
    assert pattern.bars == request["bars"] == summary["bars"] and pattern.notes
    if params.get("tempo") is not None:
        assert pattern.tempo == pytest.approx(float(params["tempo"]), abs=0.01) == summary["tempo"]
    if not request["random_seed"]:
        assert summary["seed"] == request["seed"]
    assert audio is not None and Path(audio).stat().st_size > 0


def test_the_app_keeps_serving_after_bad_input(client: Any) -> None:
    for _, params, _ in BAD[:5]:
        with pytest.raises(Exception):  # noqa: B017 (the error kinds are tested above)
            call(client, **params)
    _, midi_path, summary = call(client, bars=2)
    assert midi_to_pattern(Path(midi_path).read_bytes()).bars == 2 and summary["seed"] == 1


def test_same_seed_same_midi_alone_or_among_16_concurrent_requests(client: Any) -> None:
    """16 threads, each its own gradio_client, mixing the probe request with other styles and seeds."""
    from gradio_client import Client

    probe = {"style": "j_dilla", "bars": 2, "tempo": 90, "seed": 4242, "random_seed": False}
    alone = Path(call(client, **probe)[1]).read_bytes()
    others = [{"style": s, "bars": 1 + i % 3, "seed": i, "random_seed": False}
              for i, s in enumerate(["funk", "rock", "metro_boomin", "questlove", "jazz", "latin", "soul", "pop"])]
    jobs = [probe if i % 2 == 0 else others[i // 2] for i in range(16)]

    def run(params: dict[str, Any]) -> bytes:
        own = Client(client.src, verbose=False)
        return Path(call(own, **params)[1]).read_bytes()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run, jobs))
    probes = [r for r, p in zip(results, jobs, strict=True) if p is probe]
    assert len(probes) == 8 and all(r == alone for r in probes)
    assert all(r != alone for r, p in zip(results, jobs, strict=True) if p is not probe)


def test_no_request_reads_files_outside_the_app(served: Served) -> None:  # noqa: F811
    """The file route serves only the app's own outputs: system files, the repo and path tricks are refused."""
    root = served.temp.root
    base = served.url.rstrip("/") + "/gradio_api/file="
    secret = root / "not-an-output.txt"  # inside the app's temp root, but never handed out
    secret.write_text("private")
    targets = ["/etc/passwd", str(Path(served.app.__file__).resolve()), str(root / ".." / ".." / "etc" / "passwd"),
               str(secret), "../../../../etc/passwd", urllib.parse.quote("/etc/passwd", safe="")]
    for target in targets:
        try:
            with urllib.request.urlopen(base + target, timeout=10) as response:
                body = response.read()
            pytest.fail(f"{target} was served ({len(body)} bytes)")
        except urllib.error.HTTPError as exc:
            assert exc.code in (400, 403, 404), (target, exc.code)


def test_only_the_midi_inputs_take_files_and_the_upload_route_takes_only_midi(served: Served) -> None:  # noqa: F811
    """The only inputs that take a file are the MIDI ones (the page's drop zone, the API's ``midi``),
    and gradio's upload route (open to anyone) takes a MIDI file of at most the reader's 2 MB and
    nothing else, so nobody can fill the server's disk through it."""
    import gradio as gr

    from drumgen.midi_io import MAX_MIDI_BYTES
    from drumgen.web.ui import MidiUpload

    takes_files = (gr.File, gr.Audio, gr.Image, gr.Video, gr.UploadButton, gr.Model3D, gr.Gallery)
    inputs = {block._id for fn in served.blocks.fns.values() for block in fn.inputs}
    takers = [b for b in served.blocks.blocks.values() if isinstance(b, takes_files) and b._id in inputs]
    assert len(takers) == 2 and all(isinstance(b, MidiUpload) for b in takers)

    def upload(name: str, data: bytes) -> int:
        boundary = "drumgenboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        post = urllib.request.Request(served.url.rstrip("/") + "/gradio_api/upload", data=body,
                                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(post, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    midi = b"MThd" + bytes(100_000)
    assert upload("groove.mid", midi) == 200
    assert upload("groove.mid", b"MThd" + bytes(MAX_MIDI_BYTES)) == 413  # one byte over the limit
    assert upload("big.bin", b"x" * 100_000) >= 400
    assert upload("groove.mid", b"") >= 400
