"""Bad input through the API door (gradio_client against a real server on loopback, one launch
for the module): every bad value gets an error that names its field, never a traceback or a hung
request; boundary values get a groove; the same seed gives the same MIDI alone or among 16
concurrent requests; no request reads files outside the app's own temp area.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from test_app import served  # noqa: F401 (the module-scoped app + client fixture)

from drumgen.midi_io import midi_to_pattern
from drumgen.pipeline import MAX_SEED

NAN, INF = math.nan, math.inf
BASE = {"style": "funk", "bars": 1, "seed": 1, "random_seed": False}
REQUEST_TIMEOUT_S = 60  # no request may hang

BAD = [  # (id, parameters, the field the error must name)
    ("tempo-999", {"tempo": 999}, "tempo"),
    ("tempo-39", {"tempo": 39}, "tempo"),
    ("tempo-nan", {"tempo": NAN}, "tempo"),
    ("tempo-inf", {"tempo": INF}, "tempo"),
    ("tempo--inf", {"tempo": -INF}, "tempo"),
    ("tempo-text", {"tempo": "fast"}, "tempo"),
    ("tempo-none", {"tempo": None}, "tempo"),
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
    ("humanize-negative", {"humanize": -1}, "humanize"),
    ("humanize-101", {"humanize": 101}, "humanize"),
    ("humanize-nan", {"humanize": NAN}, "humanize"),
    ("swing-90", {"swing_override": True, "swing": 90}, "swing"),
    ("swing-inf", {"swing_override": True, "swing": INF}, "swing"),
    ("fill_every-3", {"fill_every": 3}, "fill_every"),
    ("fill_every-text", {"fill_every": "often"}, "fill_every"),
    ("temperature-negative", {"temperature": -0.5}, "temperature"),
    ("temperature-3", {"temperature": 3}, "temperature"),
    ("temperature-nan", {"temperature": NAN}, "temperature"),
    ("top_k-negative", {"top_k": -1}, "top_k"),
    ("top_k-201", {"top_k": 201}, "top_k"),
    ("top_k-2.5", {"top_k": 2.5}, "top_k"),
    ("top_p-0", {"top_p": 0}, "top_p"),  # the slider's floor is 0.05 (0 would mean greedy: use temperature 0)
    ("top_p-1.5", {"top_p": 1.5}, "top_p"),
    ("top_p-nan", {"top_p": NAN}, "top_p"),
    ("seed-negative", {"seed": -1}, "seed"),
    ("seed-2^63", {"seed": 2**63}, "seed"),
    ("seed-2^64", {"seed": 2**64}, "seed"),
    ("seed-1.5", {"seed": 1.5}, "seed"),
    ("seed-nan", {"seed": NAN}, "seed"),
    ("seed-text", {"seed": "abc"}, "seed"),
]

GOOD = [  # (id, parameters): boundary values that must give a groove
    ("temperature-0", {"temperature": 0}),
    ("temperature-2", {"temperature": 2}),
    ("top_p-1", {"top_p": 1}),
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
]


INPUTS = {"style": "funk", "tempo": 100, "bars": 1, "kit": "standard", "humanize": 100, "swing_override": False,
          "swing": 60, "fill_every": 0, "temperature": 1, "top_k": 0, "top_p": 1, "seed": 1, "random_seed": False}


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
def client(served: tuple[Any, Any]) -> Any:  # noqa: F811
    return served[1]


@pytest.mark.parametrize(("params", "field"), [pytest.param(p, f, id=i) for i, p, f in BAD])
def test_bad_value_gets_an_error_naming_the_field(client: Any, params: dict[str, Any], field: str) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        call(client, **params)
    message = str(info.value)
    assert field in message, message
    assert "Traceback" not in message and "\n" not in message.strip()


@pytest.mark.parametrize("params", [pytest.param(p, id=i) for i, p in GOOD])
def test_boundary_value_gets_a_groove(client: Any, params: dict[str, Any]) -> None:
    audio, midi_path, summary = call(client, **params)
    request = {**BASE, **params}
    pattern = midi_to_pattern(Path(midi_path).read_bytes())
    assert pattern.bars == request["bars"] == summary["bars"] and pattern.notes
    if "tempo" in params:
        assert pattern.tempo == pytest.approx(params["tempo"], abs=0.01)
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


def test_no_request_reads_files_outside_the_app(served: tuple[Any, Any]) -> None:  # noqa: F811
    """The file route serves only the app's own outputs: system files, the repo and path tricks are refused."""
    app, client = served
    base = client.src.rstrip("/") + "/gradio_api/file="
    secret = app.TMP_ROOT / "not-an-output.txt"  # inside the app's temp root, but never handed out
    secret.write_text("private")
    targets = ["/etc/passwd", str(Path(app.__file__).resolve()), str(app.TMP_ROOT / ".." / ".." / "etc" / "passwd"),
               str(secret), "../../../../etc/passwd", urllib.parse.quote("/etc/passwd", safe="")]
    for target in targets:
        try:
            with urllib.request.urlopen(base + target, timeout=10) as response:
                body = response.read()
            pytest.fail(f"{target} was served ({len(body)} bytes)")
        except urllib.error.HTTPError as exc:
            assert exc.code in (400, 403, 404), (target, exc.code)


def test_the_app_takes_no_uploads(served: tuple[Any, Any]) -> None:  # noqa: F811
    """No component takes a file, and gradio's upload route (open to anyone) refuses every file,
    so nobody can fill the server's disk through it."""
    import gradio as gr

    app, client = served
    takes_files = (gr.File, gr.Audio, gr.Image, gr.Video, gr.UploadButton, gr.Model3D, gr.Gallery)
    inputs = [b for b in app.demo.blocks.values() if isinstance(b, takes_files) and b.interactive]
    assert inputs == []
    boundary = "drumgenboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n{'x' * 100_000}\r\n--{boundary}--\r\n").encode()
    post = urllib.request.Request(client.src.rstrip("/") + "/gradio_api/upload", data=body,
                                  headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(post, timeout=10)
    assert info.value.code == 413
