"""Security checks that need no server: output file names are never paths, a bad value is never
echoed back whole, the page shows a start-up error as text (not markup), the Docker image runs as a
non-root user and holds only the app (no repository history, virtualenv, tests or secrets).

With a server: the API tests refuse files outside the app (test_reliability_api.py), the app takes
no uploads (same file), and a start-up log holds no secret from the environment (test_faults.py).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drumgen.midi_io import pattern_filename
from drumgen.request import GenerateRequest, resolve_request
from drumgen.styles import StyleRegistry

REPO = Path(__file__).resolve().parent.parent
IMAGE_SOURCES = {"requirements.txt", "requirements.lock", "scripts/install_deps.sh", "app.py", "pyproject.toml",
                 "drumgen/", "styles/", "drum_maps/", "checkpoints/"}
SECRET_PATTERNS = {  # what a leaked credential looks like
    "Hugging Face token": r"\bhf_[A-Za-z0-9]{30,}",
    "AWS key": r"\bAKIA[0-9A-Z]{16}\b",
    "GitHub token": r"\bgh[pousr]_[A-Za-z0-9]{30,}",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "OpenAI key": r"\bsk-[A-Za-z0-9]{32,}",
}
SAFE_NAME = re.compile(r"^[a-z0-9_]{1,120}\.mid$")  # bounded: the style part is cut to 64


@pytest.mark.parametrize("style", ["../../etc/passwd", "/etc/passwd", "..", "a/../../b", "C:\\Windows\\x", "\x00",
                                   "", "CON", "x" * 500, "ümlaut", "funk\nSet-Cookie: a=b"])
def test_output_file_names_are_never_paths(style: str) -> None:
    name = pattern_filename(style, 90, 4, 12)
    assert SAFE_NAME.match(name), name
    assert name.endswith("_90bpm_4bars_seed12.mid")


@settings(max_examples=200, deadline=None)
@given(style=st.text(), tempo=st.floats(40, 300), bars=st.integers(1, 32), seed=st.integers(0, 2**63 - 1))
def test_any_style_text_gives_a_plain_file_name(style: str, tempo: float, bars: int, seed: int) -> None:
    name = pattern_filename(style, tempo, bars, seed)
    assert SAFE_NAME.match(name.replace(f"seed{seed}", "seed")), name
    assert Path(name).name == name and ".." not in name


HUGE = "9" * 100_000
MAX_MESSAGE = 400  # characters: the field, what is allowed, and a short prefix of what was sent


@pytest.mark.parametrize("field", ["style", "bars", "tempo", "seed", "count", "temperature", "top_k", "top_p",
                                   "humanize", "variation", "swing", "kit", "fill_every", "drum_map", "split_tracks",
                                   "audio", "sample_rate"])
def test_a_huge_value_is_never_echoed_whole(field: str) -> None:
    request = GenerateRequest(style=HUGE) if field == "style" else GenerateRequest(style="funk", **{field: HUGE})
    with pytest.raises(ValueError) as info:
        resolve_request(request, StyleRegistry())
    message = str(info.value)
    assert field in message and len(message) < MAX_MESSAGE, message[:MAX_MESSAGE]


def test_the_start_up_error_is_shown_as_text_not_markup() -> None:
    import sys

    from drumgen.web.handlers import AppHandlers
    from drumgen.web.serving import EngineSource, TempArea

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import app

    def never() -> None:
        raise AssertionError("building the page loads no model")

    blocks = app.build_app(AppHandlers(EngineSource(never), TempArea(max_age_s=60)),
                           "no model at /tmp/<img src=x onerror=alert(1)>")
    shown = [str(c.get("props", {}).get("value")) for c in blocks.get_config_file()["components"]
             if "Model not loaded" in str(c.get("props", {}).get("value", ""))]
    assert len(shown) == 1 and "<img" not in shown[0] and "&lt;img src=x onerror=alert(1)&gt;" in shown[0]


def dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_image_runs_as_a_non_root_user() -> None:
    steps = dockerfile()
    users = [(i, args) for i, (word, args) in enumerate(steps) if word == "USER"]
    assert users, "the Dockerfile has no USER: the app would run as root"
    last, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    cmd = max(i for i, (word, _) in enumerate(steps) if word in ("CMD", "ENTRYPOINT"))
    assert last < cmd
    assert not any(word == "RUN" for word, _ in steps[last:]), "nothing runs as root after USER"
    assert any(word == "RUN" and "useradd" in args and user.split(":")[0] in args for word, args in steps)


def dockerignore_allowlist() -> set[str]:
    """What ``.dockerignore`` lets into the build context: it ignores everything (``*``), then names
    the paths that may come in (``!path``)."""
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert lines[0] == "*", ".dockerignore must ignore everything first and then name what may come in"
    return {line[1:].rstrip("/") for line in lines if line.startswith("!")}


def test_the_image_copies_only_the_app() -> None:
    """The build context is an allowlist, so .git, .venv, tests, runs, docs and any .env stay out."""
    allowed = dockerignore_allowlist()
    assert allowed <= {src.rstrip("/") for src in IMAGE_SOURCES}, allowed - {s.rstrip("/") for s in IMAGE_SOURCES}
    for word, args in dockerfile():
        assert word != "ADD", "ADD can fetch URLs and unpack archives; COPY is enough"
        if word == "COPY":
            sources = [p for p in shlex.split(args) if not p.startswith("--")][:-1]
            assert all(src == "." or src.rstrip("/") in allowed for src in sources), sources
    assert not any(word in ("ENV", "ARG") and re.search(r"(TOKEN|SECRET|PASSWORD|API_KEY)", args, re.I)
                   for word, args in dockerfile())


def test_the_image_holds_every_data_folder_the_app_reads() -> None:
    """The styles, drum maps and checkpoint are read from the checkout's folders (drumgen.resources);
    one missing from the image fails every request there."""
    from drumgen import resources

    folders = {resources.STYLES_DIR, resources.DRUM_MAPS_DIR, resources.CHECKPOINTS_DIR}
    needed = {str(Path(f).relative_to(REPO)) for f in folders if Path(f).is_relative_to(REPO)}
    assert needed == {"styles", "drum_maps", "checkpoints"}  # run from the checkout
    assert needed <= dockerignore_allowlist(), needed - dockerignore_allowlist()


def test_dockerignore_keeps_history_venv_and_tests_out() -> None:
    assert not {".git", ".venv", "tests", "runs", "docs", ".env"} & dockerignore_allowlist()


def test_nothing_copied_into_the_image_holds_a_secret() -> None:
    files = [p for src in IMAGE_SOURCES for p in ([REPO / src] if not src.endswith("/") else (REPO / src).rglob("*"))
             if p.is_file() and p.suffix not in (".pt", ".pyc") and "__pycache__" not in p.parts]
    assert len(files) > 20
    for path in files:
        text = path.read_text(errors="replace")
        for kind, pattern in SECRET_PATTERNS.items():
            assert not re.search(pattern, text), f"{path.relative_to(REPO)} holds what looks like a {kind}"


def test_the_app_never_logs_its_environment() -> None:
    """No code in the image hands os.environ (or a copy) to a log or print call."""
    for path in [REPO / "app.py", *(REPO / "drumgen").rglob("*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\b(log|logger|logging|print)\b.*\(.*\bos\.environ\b(?!\.get|\[)", line):
                pytest.fail(f"{path.relative_to(REPO)}:{number} logs the environment: {line.strip()}")
