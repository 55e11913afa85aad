"""The app's front door on a public Space: HTTP rules in front of gradio's routes (gradio 6.31).

Gradio's own switches do what they can (:func:`app.launch`: ``api_open=False``, every event with a
server function queued, monitoring and run history off, the upload size); this ASGI middleware
closes what they leave open. Each rule names the attempt it stops:

- **Queue bypass.** ``POST /gradio_api/run/*`` and ``/gradio_api/api/*`` (by name, or
  ``run/predict`` with any ``fn_index``) ran handlers directly, past the queue's two workers and
  its bound: closed (404), as are the component-server and recording routes the app never uses.
- **Malformed calls.** A call (``queue/join``, ``call/<api_name>``, ``call/v2/<api_name>``) must be
  at most :data:`MAX_BODY_BYTES` of JSON naming an event the app has (a public ``api_name``, or the
  ``fn_index`` of an event with a server function), with as many inputs as it takes and only files
  this app holds; else one short line (400/404/413/422), no traceback, no echo beyond
  :func:`drumgen.limits.shown`'s prefix. A JSON integer too long for Python's parser is read as
  +-infinity, so the field answers with its range like any other number out of it.
- **Shared session_hash.** One call at a time per session_hash and event, one open result stream
  per session_hash, and a stream only for a session with a call waiting: two clients sending the
  same session_hash get a 409 instead of each other's grooves (or a stream that hangs).
- **Unknown event ids.** A result stream for an event id that is unknown or already read is a 404
  (gradio logged a traceback, or sent heartbeats forever).
- **File route.** Only files gradio holds for this app are served (its outputs while they live, its
  uploads): not another file in gradio's temp folder, not a URL (gradio would fetch and relay it).
  A multi-range ``Range`` header is dropped (gradio answered 500) and the whole file is sent.
- **Uploads.** ``/gradio_api/upload`` takes only what :attr:`Guard.uploads` allows: nothing (every
  upload refused, empty files included) unless an upload input is on the page, then
  :data:`MIDI_UPLOADS` (see :func:`upload_rule_for`).

It also counts the open result streams and heartbeats of each session_hash: a job whose client is
gone is dropped at its next safe point and idle sessions are forgotten (:mod:`drumgen.web.serving`).
Refusals are logged as one short line each, at most one per :data:`LOG_EVERY_S` per kind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drumgen.limits import shown
from drumgen.midi_io import MAX_MIDI_BYTES

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API = "/gradio_api"
MAX_BODY_BYTES = 64 * 1024  # a call is a few hundred bytes of JSON (files go through the upload route)
MAX_INT_DIGITS = 4000  # Python's JSON parser refuses integers over 4300 digits
SESSION_HASH = re.compile(r"[A-Za-z0-9_-]{1,64}")  # gradio_client sends a UUID, the page 11 random characters
CLOSE_STREAM = b'data: {"msg":"close_stream"'  # the last message of a queue/data stream (orjson's spacing)
BUSY_WAIT_S = 1.0  # a session's last call may still be closing when its next one arrives
LOG_EVERY_S = 10.0
CLOSED_PREFIXES = (f"{API}/run/", f"{API}/api/", f"{API}/component_server", f"{API}/process_recording")
FILE_COMPONENTS = ("File", "UploadButton", "Audio", "Image", "Video", "Model3D", "Gallery", "ImageEditor",
                   "ImageSlider", "SimpleImage", "AnnotatedImage")  # gradio components whose value is a FileData


def takes_files(block: Any) -> bool:
    """Whether ``block`` is a gradio component whose value is a file (or files)."""
    import gradio as gr

    kinds = tuple(k for k in (getattr(gr, name, None) for name in FILE_COMPONENTS) if isinstance(k, type))
    return isinstance(block, kinds)


def queue_every_event(blocks: Any) -> None:
    """Send every event with a server function through the queue (gradio runs ``queue=False`` ones,
    the page's small helpers included, on the direct ``/run`` route this module closes)."""
    for fn in blocks.fns.values():
        if fn.fn is not None:
            fn.queue = True


@dataclass(frozen=True)
class UploadRule:
    """What the upload route takes: files with one of ``suffixes``, 1 to ``max_bytes`` bytes each,
    starting with one of ``magic`` (when given), at most ``max_files`` a request, and at most
    ``budget_bytes`` of uploads held at once (gradio keeps each for the app's file lifetime)."""

    suffixes: tuple[str, ...]
    max_bytes: int
    magic: tuple[bytes, ...] = ()
    max_files: int = 1
    budget_bytes: int = 256 * 2**20
    what: str = "file"

    def problem(self, name: str, data: bytes) -> tuple[int, str] | None:
        """``(HTTP status, one line)`` when a file named ``name`` holding ``data`` is refused, else None."""
        shown_name = shown(Path(name).name)
        if Path(name).suffix.lower() not in self.suffixes:
            return 415, f"only {' / '.join(self.suffixes)} files can be uploaded, got {shown_name}"
        if not data:
            return 400, f"{shown_name} is empty"
        if len(data) > self.max_bytes:
            return 413, f"{shown_name} is {len(data):,} bytes; the limit is {self.max_bytes:,} bytes"
        if self.magic and not data.startswith(self.magic):
            return 415, f"{shown_name} is not a {self.what}"
        return None


MIDI_UPLOADS = UploadRule((".mid", ".midi"), MAX_MIDI_BYTES, magic=(b"MThd",), what="Standard MIDI File")


def upload_rule_for(blocks: Any) -> UploadRule | None:
    """The upload rule the page needs: None (every upload refused) when no input takes a file,
    :data:`MIDI_UPLOADS` when every one is a file input limited to ``.mid`` / ``.midi``.

    An upload input that takes anything else is refused at launch (``ValueError``): the guard has no
    rule for it, and gradio's own would take any file of any size.
    """
    import gradio as gr

    inputs = {block._id for fn in blocks.fns.values() if fn.fn is not None for block in fn.inputs}
    takers = [b for b in blocks.blocks.values() if takes_files(b)
              and (getattr(b, "interactive", None) is True
                   or (getattr(b, "interactive", None) is None and b._id in inputs))]
    if not takers:
        return None
    for block in takers:
        types = {str(t).lower() for t in (getattr(block, "file_types", None) or [])}
        if not isinstance(block, gr.File | gr.UploadButton) or not types or not types <= set(MIDI_UPLOADS.suffixes):
            raise ValueError(f"{type(block).__name__} {getattr(block, 'label', None)!r} takes uploads the guard has "
                             f"no rule for (file_types {sorted(types) or 'any'}); only .mid / .midi inputs are "
                             "allowed")
    return MIDI_UPLOADS


def _int_or_infinity(digits: str) -> int | float:
    """A JSON integer: exact, or +-infinity when too long to convert (the field then says its range)."""
    if len(digits.lstrip("-")) <= MAX_INT_DIGITS:
        return int(digits)
    return -math.inf if digits.startswith("-") else math.inf


class Refusal(Exception):
    """A request the guard answers itself: HTTP ``status`` and one short ``message``."""

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind or str(status)


class QuietLog:
    """One short line per refusal, at most one per ``every`` seconds per kind (the rest are counted
    into the next line), so a flood of bad requests cannot flood the log."""

    def __init__(self, every: float = LOG_EVERY_S, logger: logging.Logger = log) -> None:
        self.every = every
        self.log = logger
        self.last: dict[str, float] = {}
        self.held: Counter[str] = Counter()

    def line(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -math.inf) < self.every:
            self.held[kind] += 1
            return
        self.last[kind] = now
        more = self.held.pop(kind, 0)
        self.log.info("%s%s", text[:200], f" (and {more} more like it)" if more else "")


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes (the rest is not read)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refusal(400, "the client went away", "disconnect")
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            return None
        chunks.append(body)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read), then whatever the client sends next."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _with_headers(scope: Scope, drop: Iterable[bytes] = (), add: Iterable[tuple[bytes, bytes]] = ()) -> Scope:
    dropped = set(drop)
    headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() not in dropped]
    return {**scope, "headers": [*headers, *add]}


class Guard:
    """The rules of this module for one launched ``blocks`` (see the module docstring)."""

    def __init__(self, blocks: Any, uploads: UploadRule | None = None) -> None:
        self.blocks = blocks
        self.uploads = uploads
        self.streams: Counter[str] = Counter()  # open result streams per session_hash
        self.heartbeats: Counter[str] = Counter()  # open heartbeats (a page, a gradio_client) per session_hash
        self.quiet = QuietLog()
        self._names: dict[int, list[str]] = {}
        blocks.drumgen_guard = self

    # --- what serving asks ------------------------------------------------------------------------
    def listening(self, session_hash: str) -> bool:
        """Whether a client is reading this session's results (an open queue/data or call stream)."""
        return self.streams[session_hash] > 0

    def present(self, session_hash: str) -> bool:
        """Whether any connection of this session is open (a result stream or a heartbeat)."""
        return self.streams[session_hash] > 0 or self.heartbeats[session_hash] > 0

    def held(self, path: str) -> bool:
        """Whether gradio holds ``path`` for this app: an output handed out and not yet swept, or an upload."""
        import os

        candidates = {os.path.abspath(path), os.path.realpath(path)}
        return any(c in files for files in list(self.blocks.temp_file_sets) for c in candidates)

    def middleware(self) -> Any:
        """The ASGI middleware entry for ``Blocks.launch(app_kwargs={"middleware": [...]})``."""
        from starlette.middleware import Middleware

        return Middleware(GuardMiddleware, guard=self)

    # --- calls ------------------------------------------------------------------------------------
    def names(self, fn: Any) -> list[str]:
        """The inputs' names as messages say them: the API's parameter names, else the labels."""
        if fn._id not in self._names:
            names = [str(getattr(b, "label", None) or f"input {i + 1}") for i, b in enumerate(fn.inputs)]
            if fn.api_visibility == "public" and fn.api_name:
                try:
                    params = self.blocks.get_api_info()["named_endpoints"][f"/{fn.api_name}"]["parameters"]
                    api = [i for i, b in enumerate(fn.inputs) if not b.skip_api]
                    for i, param in zip(api, params, strict=False):
                        names[i] = param.get("parameter_name") or names[i]
                except (KeyError, TypeError, AttributeError):
                    pass
            self._names[fn._id] = names
        return self._names[fn._id]

    def public_fn(self, api_name: str) -> Any:
        for fn in self.blocks.fns.values():
            if fn.api_name == api_name and fn.api_visibility == "public" and fn.fn is not None:
                return fn
        raise Refusal(404, f"no endpoint /{shown(api_name)[1:-1]}: see the API page for the endpoints", "endpoint")

    def check_call(self, route: str, api_name: str | None, payload: Any) -> None:
        """Refuse a call whose body does not fit the event it names (see the module docstring)."""
        if not isinstance(payload, dict):
            raise Refusal(422, "the body must be a JSON object", "shape")
        if route == "v2":
            fn = self.public_fn(api_name or "")
            index = {n: i for i, (n, b) in enumerate(zip(self.names(fn), fn.inputs, strict=True)) if not b.skip_api}
            unknown = [k for k in payload if k not in index and k != "oauth_token"]
            if unknown:
                raise Refusal(422, f"/{fn.api_name} has no parameter {shown(unknown[0])}; it takes "
                                   f"{', '.join(index)}", "shape")
            self.check_values(fn, {index[k]: v for k, v in payload.items() if k in index})
            return
        data = payload.get("data")
        if not isinstance(data, list):
            raise Refusal(422, "data must be a list of the endpoint's inputs", "shape")
        if route == "join":
            index = payload.get("fn_index")
            fn = self.blocks.fns.get(index) if isinstance(index, int) and not isinstance(index, bool) else None
            if fn is None or fn.fn is None:
                raise Refusal(404, f"no event with fn_index {shown(index)}", "endpoint")
        else:
            fn = self.public_fn(api_name or "")
        api_inputs = [i for i, b in enumerate(fn.inputs) if not b.skip_api]
        if len(data) == len(fn.inputs):
            positions = list(range(len(data)))
        elif len(data) == len(api_inputs):
            positions = api_inputs
        else:
            label = f"/{fn.api_name}" if fn.api_name else f"event {fn._id}"
            raise Refusal(422, f"{label} takes {len(api_inputs)} inputs ({', '.join(self.names(fn))}), got "
                               f"{len(data)}", "shape")
        self.check_values(fn, dict(zip(positions, data, strict=True)))
        session = payload.get("session_hash")
        if session is not None and not (isinstance(session, str) and SESSION_HASH.fullmatch(session)):
            raise Refusal(422, f"session_hash must be 1 to 64 letters, digits, - or _, got {shown(session)}",
                          "shape")

    def check_values(self, fn: Any, values: dict[int, Any]) -> None:
        """File inputs hold files this app holds; an examples table is given an example's index."""
        names = self.names(fn)
        for i, value in values.items():
            block = fn.inputs[i]
            if takes_files(block) and value is not None:
                files = value if isinstance(value, list) else [value]
                for one in files:
                    path = one.get("path") if isinstance(one, dict) else None
                    if not isinstance(path, str):
                        raise Refusal(422, f"{names[i]} must be a file uploaded to /gradio_api/upload (a FileData "
                                           f"object with its path), got {shown(one)}", "value")
                    if not self.held(path):
                        raise Refusal(422, f"{names[i]}: {shown(Path(path).name)} is not a file of this app (upload "
                                           "it first; uploads and results expire)", "value")
            elif type(block).__name__ == "Dataset":
                count = len(getattr(block, "samples", None) or [])
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
                    raise Refusal(422, f"{names[i]} must be an example's index from 0 to {count - 1}, got "
                                       f"{shown(value)}", "value")

    def busy(self, session_hash: str, fn_index: int | None) -> bool:
        """Whether this session has a call to the same event queued or running."""
        events = list(self.blocks._queue.event_ids_to_events.values())
        return any(e.session_hash == session_hash and (fn_index is None or e.fn._id == fn_index) for e in events)

    def pending(self, session_hash: str) -> bool:
        """Whether this session has a result not yet read (queued, running or finished) that gradio can
        still stream (it keeps the message queues of its 2,000 latest sessions)."""
        queue = self.blocks._queue
        return bool(queue.pending_event_ids_session.get(session_hash)) and session_hash in (
            queue.pending_messages_per_session)

    def session_of_event(self, event_id: str) -> str | None:
        queue = self.blocks._queue
        event = queue.event_ids_to_events.get(event_id)
        if event is not None:
            return event.session_hash
        for session, ids in list(queue.pending_event_ids_session.items()):
            if event_id in ids:
                return session
        return None


class GuardMiddleware:
    """Pure ASGI (streams pass through untouched); see the module docstring for the rules."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root):]
        method = scope.get("method", "GET")
        try:
            await self.route(scope, receive, send, method, path.rstrip("/") if path != "/" else path)
        except Refusal as refusal:
            if refusal.kind != "disconnect":
                self.guard.quiet.line(refusal.kind, f"refused {method} {shown(path)}: {refusal.status} "
                                                    f"{refusal.message}")
                await self.refuse(send, refusal)

    async def route(self, scope: Scope, receive: Receive, send: Send, method: str, path: str) -> None:
        if any(path.startswith(p) or path == p.rstrip("/") for p in CLOSED_PREFIXES):
            raise Refusal(404, "not found: every call goes through the queue (gradio_client, or POST "
                               "/gradio_api/call/<api_name>)", "closed")
        if method == "POST" and path == f"{API}/queue/join":
            await self.call(scope, receive, send, "join", None)
        elif method == "POST" and path.startswith(f"{API}/call/v2/") and path.count("/") == 4:
            await self.call(scope, receive, send, "v2", path.rsplit("/", 1)[1])
        elif method == "POST" and path.startswith(f"{API}/call/") and path.count("/") == 3:
            await self.call(scope, receive, send, "call", path.rsplit("/", 1)[1])
        elif method == "GET" and path == f"{API}/queue/data":
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            await self.stream(scope, receive, send, (query.get("session_hash") or [""])[0], by_event=False)
        elif method == "GET" and path.startswith(f"{API}/call/") and path.count("/") in (4, 5):
            event_id = path.rsplit("/", 1)[1]
            session = self.guard.session_of_event(event_id)
            if session is None:
                raise Refusal(404, f"no call with event id {shown(event_id)} is waiting (unknown, or its result "
                                   "was already read)", "event")
            await self.stream(scope, receive, send, session, by_event=True)
        elif method == "GET" and path.startswith(f"{API}/heartbeat/"):
            await self.heartbeat(scope, receive, send, path.rsplit("/", 1)[1])
        elif method in ("GET", "HEAD") and (path.startswith(f"{API}/file=") or path.startswith(f"{API}/file/")):
            await self.file(scope, receive, send, path[len(API) + len("/file="):])
        elif method == "POST" and path == f"{API}/upload":
            await self.upload(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def refuse(self, send: Send, refusal: Refusal) -> None:
        body = json.dumps({"detail": refusal.message}).encode()
        await send({"type": "http.response.start", "status": refusal.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def call(self, scope: Scope, receive: Receive, send: Send, route: str, api_name: str | None) -> None:
        length = _header(scope, b"content-length")
        too_big = Refusal(413, f"the request body is over {MAX_BODY_BYTES // 1024} KB (a call is a little JSON; files "
                               "go through /gradio_api/upload)", "size")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise too_big
        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            raise too_big
        huge = False

        def parse_int(digits: str) -> int | float:
            nonlocal huge
            value = _int_or_infinity(digits)
            huge |= isinstance(value, float)
            return value

        try:
            payload = json.loads(body, parse_int=parse_int)
        except (ValueError, RecursionError):
            raise Refusal(400, "the body must be JSON", "json") from None
        self.guard.check_call(route, api_name, payload)
        session = payload.get("session_hash") if route != "v2" else None
        if isinstance(session, str):
            fn_index = payload.get("fn_index") if route == "join" else self.guard.public_fn(api_name or "")._id
            deadline = time.monotonic() + BUSY_WAIT_S
            while self.guard.busy(session, fn_index):
                if time.monotonic() > deadline:
                    raise Refusal(409, "this session_hash already has a call to this endpoint waiting or running: "
                                       "wait for its result, or use one session_hash per concurrent call", "session")
                await asyncio.sleep(0.02)
        if huge:
            body = json.dumps(payload).encode()
            scope = _with_headers(scope, drop=[b"content-length"], add=[(b"content-length", str(len(body)).encode())])
        await self.app(scope, _replay(body, receive), send)

    async def stream(self, scope: Scope, receive: Receive, send: Send, session: str, by_event: bool) -> None:
        guard = self.guard
        if not by_event and not guard.pending(session):
            raise Refusal(404, f"no call is waiting for session_hash {shown(session)} (none was made, or its result "
                               "was already read)", "event")
        if guard.streams[session] > 0:
            raise Refusal(409, "another connection is already reading this session_hash's results: use one "
                               "session_hash per client", "session")
        guard.streams[session] += 1
        open_ = True

        def close() -> None:
            nonlocal open_
            if open_:
                open_ = False
                guard.streams[session] -= 1
                if guard.streams[session] <= 0:
                    del guard.streams[session]

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.body" and CLOSE_STREAM in message.get("body", b""):
                close()  # before the client sees it, so its next call may open a stream at once
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            close()

    async def heartbeat(self, scope: Scope, receive: Receive, send: Send, session: str) -> None:
        if not SESSION_HASH.fullmatch(session):
            raise Refusal(422, f"session_hash must be 1 to 64 letters, digits, - or _, got {shown(session)}", "shape")
        self.guard.heartbeats[session] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.guard.heartbeats[session] -= 1
            if self.guard.heartbeats[session] <= 0:
                del self.guard.heartbeats[session]

    async def file(self, scope: Scope, receive: Receive, send: Send, target: str) -> None:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", target):
            raise Refusal(403, "the file route serves only this app's own files, not URLs", "file")
        if not self.guard.held(target) and not self.static(target):
            raise Refusal(404, "no such file: it was not made by this app, or it has expired", "file")
        if "," in _header(scope, b"range"):
            scope = _with_headers(scope, drop=[b"range"])  # one range or the whole file
        await self.app(scope, receive, send)

    def static(self, target: str) -> bool:
        """Paths the app itself declared servable (``allowed_paths``, ``gr.set_static_paths``)."""
        from gradio import utils
        from gradio.data_classes import _StaticFiles

        blocks = self.guard.blocks
        allowed, reason = utils.is_allowed_file(utils.abspath(target), blocked_paths=blocks.blocked_paths,
                                                allowed_paths=[*blocks.allowed_paths, *_StaticFiles.all_paths],
                                                created_paths=[])
        return allowed and reason == "allowed"

    async def upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self.guard.uploads
        if rule is None:
            raise Refusal(413, "this app takes no uploads", "upload")
        if not _header(scope, b"content-type").startswith("multipart/form-data"):
            raise Refusal(400, "an upload is multipart/form-data with its files in the field 'files'", "upload")
        limit = rule.max_files * (rule.max_bytes + 4096) + 4096
        length = _header(scope, b"content-length")
        too_big = Refusal(413, f"an upload is at most {rule.max_files} file(s) of {rule.max_bytes:,} bytes", "upload")
        if length.isdigit() and int(length) > limit:
            raise too_big
        body = await _read_body(receive, limit)
        if body is None:
            raise too_big
        files = await self.parts(scope, body, rule)
        if not 1 <= len(files) <= rule.max_files:
            raise Refusal(400, f"an upload holds 1 to {rule.max_files} file(s) in the field 'files', got {len(files)}",
                          "upload")
        for name, data in files:
            problem = rule.problem(name, data)
            if problem is not None:
                raise Refusal(*problem, "upload")
        if self.uploads_held() + sum(len(d) for _, d in files) > rule.budget_bytes:
            raise Refusal(503, "the server's upload space is full; try again in a few minutes", "upload")
        await self.app(scope, _replay(body, receive), send)

    async def parts(self, scope: Scope, body: bytes, rule: UploadRule) -> list[tuple[str, bytes]]:
        from starlette.datastructures import Headers, UploadFile
        from starlette.formparsers import MultiPartException, MultiPartParser

        async def chunks() -> Any:
            yield body

        try:
            form = await MultiPartParser(Headers(scope=scope), chunks(), max_files=rule.max_files + 1,
                                         max_fields=8).parse()
        except MultiPartException as exc:
            raise Refusal(400, f"not a valid multipart upload ({shown(str(exc))[1:-1]})", "upload") from None
        out = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                await value.close()
                if key != "files":
                    raise Refusal(400, f"uploaded files go in the field 'files', not {shown(key)}", "upload")
                out.append((value.filename or "", data))
        return out

    def uploads_held(self) -> int:
        total = 0
        for path in list(self.guard.blocks.upload_file_set):
            try:
                total += Path(path).stat().st_size
            except OSError:
                pass
        return total


def guard_of(blocks: Any) -> Guard | None:
    """The guard installed on ``blocks`` by :func:`app.launch`, if any."""
    return getattr(blocks, "drumgen_guard", None)
