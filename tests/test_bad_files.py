"""Bad MIDI files through every door of the four upload modes: the page's handler, the API
(gradio_client against a live app, the file sent with ``handle_file``) and the CLI (``main`` in this
process, and a few as a real ``python -m drumgen`` subprocess). Each file gets one line naming its
problem (the CLI: exit code 2 and one ``error:`` line, nothing written), never a traceback; odd but
usable files (tempo changes, absurd delta times, no tempo) give a groove with a notice saying what
was done. The files are :func:`bad_midi.bad_files`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from app_fixtures import REQUEST_TIMEOUT_S, Served, served  # noqa: F401 (the module-scoped app fixture)
from bad_midi import NOTICES, BadFile, bad_files
from conftest import REPO, use_checkpoint

from drumgen.midi_io import midi_to_pattern

BAD = bad_files()
SUBPROCESS = {"empty", "wrong-suffix", "too-large", "three-four", "part-without-notes"}
COMMON = dict(style="funk", seed=1, random_seed=False)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def one_line(message: str) -> None:
    assert "Traceback" not in message and "\n" not in message.strip(), message


# --- the page's handler -------------------------------------------------------------------------------
def page_upload(served: Served, path: Path, mode: str) -> list[Any]:  # noqa: F811
    """What the page's "Use my MIDI" button runs, with the page's default controls."""
    return served.handlers.page_upload(
        str(path), mode, False, False, ["kick", "snare"], "funk", None, 4, None, 100, False, None, None, None, None,
        None, 1, False, None, 1, "gm", False, progress=lambda *a, **k: None)


@pytest.mark.parametrize("bad", [pytest.param(b, id=b.id) for b in BAD])
def test_the_page_names_the_problem(served: Served, bad: BadFile, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(gr.Error) as info:
        page_upload(served, write(tmp_path, bad.name, bad.data), bad.mode)
    message = info.value.message
    assert re.search(bad.message, message), message
    assert message.startswith(f"{bad.name}: "), message
    one_line(message)


# --- the API ------------------------------------------------------------------------------------------
def api_call(served: Served, path: Path, mode: str) -> tuple[Any, ...]:  # noqa: F811
    from gradio_client import handle_file

    job = served.client.submit(midi=handle_file(str(path)), **COMMON, api_name=f"/{mode}")
    return job.result(timeout=REQUEST_TIMEOUT_S)


def api_answer(served: Served, path: Path, mode: str) -> str:  # noqa: F811
    """The one line a client gets for a refused file: the endpoint's error, or the upload route's
    status and line when the route refuses it first (gradio_client refuses a file over the app's size
    limit itself, before sending it)."""
    import httpx
    from gradio_client.exceptions import AppError

    try:
        api_call(served, path, mode)
    except AppError as exc:
        return str(exc)
    except httpx.HTTPStatusError as exc:
        text = exc.response.text
        with contextlib.suppress(ValueError, AttributeError):
            text = json.loads(text)["detail"]
        return f"{exc.response.status_code} {text}"
    except ValueError as exc:
        return str(exc)
    pytest.fail(f"{path.name} gave a groove")


@pytest.mark.parametrize("bad", [pytest.param(b, id=b.id) for b in BAD])
def test_the_api_names_the_problem(served: Served, bad: BadFile, tmp_path: Path) -> None:  # noqa: F811
    message = api_answer(served, write(tmp_path, bad.name, bad.data), bad.mode)
    assert re.search(bad.message, message) or (bad.route and re.search(bad.route, message)), message
    one_line(message)


def raw_call(served: Served, endpoint: str, **params: Any) -> tuple[str, str]:  # noqa: F811
    """``(last event, its data)`` of an API call over plain HTTP, as curl would send it (a client that
    names a server path as the upload instead of uploading a file)."""
    api = served.client.view_api(return_format="dict", print_info=False)["named_endpoints"][f"/{endpoint}"]
    values = {p["parameter_name"]: p.get("parameter_default") for p in api["parameters"]} | params
    post = urllib.request.Request(f"{served.url.rstrip('/')}/gradio_api/call/{endpoint}",
                                  data=json.dumps({"data": list(values.values())}).encode(),
                                  headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(post, timeout=REQUEST_TIMEOUT_S) as response:
            event_id = json.loads(response.read())["event_id"]
    except urllib.error.HTTPError as exc:  # refused before it reaches the queue
        return "http-error", f"{exc.code} {exc.read().decode(errors='replace')}"
    with urllib.request.urlopen(f"{served.url.rstrip('/')}/gradio_api/call/{endpoint}/{event_id}",
                                timeout=REQUEST_TIMEOUT_S) as response:
        lines = response.read().decode().splitlines()
    events = [line.split(":", 1)[1].strip() for line in lines if line.startswith("event:")]
    data = [line.split(":", 1)[1].strip() for line in lines if line.startswith("data:")]
    return events[-1], data[-1]


def test_the_api_reads_only_uploaded_files(served: Served) -> None:  # noqa: F811
    """A client cannot make the app read a server file by naming it as the upload: only files that came
    through the upload route are read."""
    secret = served.temp.root / "private.mid"
    secret.write_bytes(b"MThd")
    for target in ("/etc/passwd", str(secret), str(Path(REPO) / "app.py")):
        event, data = raw_call(served, "humanize", midi={"path": target, "meta": {"_type": "gradio.FileData"}},
                               **COMMON)
        assert event in ("error", "http-error"), (target, data)
        assert re.search(r"not a file of this app|not uploaded by a user", data), data
        assert "root:" not in data and "MThd" not in data  # nothing of the file comes back


def test_the_api_keeps_serving_after_bad_files(served: Served, tmp_path: Path) -> None:  # noqa: F811
    from bad_midi import good_groove

    for bad in BAD[:4]:
        with contextlib.suppress(Exception):
            api_call(served, write(tmp_path, bad.name, bad.data), bad.mode)
    _, midi_path, summary, _ = api_call(served, write(tmp_path, "rock.mid", good_groove()), "humanize")
    assert summary["bars"] == 2 and midi_to_pattern(Path(midi_path).read_bytes()).notes


# --- the CLI ------------------------------------------------------------------------------------------
def cli_args(path: Path, mode: str, out: Path) -> list[str]:
    return [mode, "--input", str(path), "--style", "funk", "--seed", "1", "--no-audio", "--out", str(out)]


def run_main(args: list[str]) -> tuple[int, str, str]:
    from drumgen.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def checkpoint(request: pytest.FixtureRequest) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        yield


def doors(cases: list[BadFile]) -> list[Any]:
    return [pytest.param(b, door, id=f"{b.id}-{door}") for b in cases for door in ("main", "subprocess")
            if door == "main" or b.id in SUBPROCESS]


@pytest.mark.parametrize(("bad", "door"), doors(BAD))
def test_the_cli_exits_2_with_one_error_line(checkpoint: Any, bad: BadFile, door: str, tmp_path: Path) -> None:
    path, out = write(tmp_path, bad.name, bad.data), tmp_path / "out"
    if door == "main":
        code, stdout, stderr = run_main(cli_args(path, bad.mode, out))
    else:
        proc = subprocess.run([sys.executable, "-m", "drumgen", *cli_args(path, bad.mode, out)], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                              timeout=REQUEST_TIMEOUT_S)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    lines = stderr.strip().splitlines()
    assert code == 2 and stdout == "", (code, stderr)
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad.name}: "), stderr
    assert re.search(bad.message, lines[0]), lines[0]
    assert not out.exists()  # nothing written


def test_the_cli_names_a_missing_file_and_a_folder(checkpoint: Any, tmp_path: Path) -> None:
    for target, problem in ((tmp_path / "nowhere.mid", "nowhere.mid: no such file"),
                            (tmp_path / "folder.mid", "folder.mid: not a file")):
        if target.name == "folder.mid":
            target.mkdir()
        code, stdout, stderr = run_main(cli_args(target, "humanize", tmp_path / "out"))
        assert (code, stdout, stderr) == (2, "", f"error: {problem}\n")


# --- odd but usable files: a groove and a notice, through every door --------------------------------------
@pytest.mark.parametrize(("case_id", "name", "make", "mode", "notice"), [pytest.param(*n, id=n[0]) for n in NOTICES])
def test_an_odd_file_gives_a_groove_with_a_notice(served: Served, checkpoint: Any, tmp_path: Path,  # noqa: F811
                                                  case_id: str, name: str, make: Any, mode: str, notice: str) -> None:
    path = write(tmp_path, name, make())
    page = page_upload(served, path, mode)
    page_summary = page[4]
    _, midi_path, api_summary, _ = api_call(served, path, mode)
    code, stdout, stderr = run_main(cli_args(path, mode, tmp_path / "out"))
    assert code == 0, stderr
    cli_line = json.loads(stdout)
    for notices in (page_summary["notices"], api_summary["notices"], cli_line["notices"]):
        assert any(re.search(notice, n) for n in notices), notices
    assert Path(midi_path).read_bytes() == Path(cli_line["midi"]).read_bytes()  # the same groove at every door
