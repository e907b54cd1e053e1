"""``kei message web``: the team on a read-only page served on 127.0.0.1.

Why the standard library's ``ThreadingHTTPServer``: no new dependency for a
page that only ever answers a handful of GETs from one person's browser; the
whole server is this file, small enough to read for its security rules:

- bound to 127.0.0.1 only: nothing off this machine can connect;
- a random token (``secrets.token_urlsafe``) in every URL, compared in
  constant time; any request without it (even for ``/app.js``) gets 403;
- the ``Host`` header must be ``127.0.0.1:PORT`` or ``localhost:PORT``: a
  page on some other site that rebinds its DNS name to 127.0.0.1 is refused
  (DNS rebinding); an ``Origin`` header that is not ours is refused too;
- read-only: GET and HEAD; any other method is 405, and nothing writes;
- a strict Content-Security-Policy (scripts and styles from this server only,
  no inline script, no frames, no forms) plus nosniff, no referrer, no store.
  The page builds every element with DOM APIs and ``textContent``, never
  ``innerHTML`` with data: a message is text, whatever it holds; and every
  string the API serves has been through ``neutral.text`` (#15): control
  characters, bidi controls, separators and lone surrogates arrive as visible
  escapes, so the page shows what the terminal shows;
- the request log is off: request lines carry the token.

Routes: ``/`` (the page), ``/app.js``, ``/app.css``, ``/api/state`` (the
``view.state`` dict as JSON), ``/api/events`` (server-sent events: a new
state each time the mailbox changes, a comment every 15 s to keep the
connection open), ``/api/message/ID`` (its thread and receipts).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from .. import neutral
from .state import build_state, thread

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..mailbox import Mailbox

STATIC = Path(__file__).resolve().parent / "static"
SAFETY = 3.0  # seconds: re-read the state even without an event (pane states)
HEARTBEAT = 15.0
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
_FILES = {
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}


def _neutral(value: Any) -> Any:
    """``value`` with every string in it through ``neutral.text`` (keys on one line)."""
    if isinstance(value, str):
        return neutral.text(value)
    if isinstance(value, dict):
        return {neutral.line(k) if isinstance(k, str) else k: _neutral(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_neutral(v) for v in value]
    return value


def _fingerprint(state: dict[str, Any]) -> bytes:
    """The state without what changes by itself (the clock, ages): a push only on news."""
    rest = {k: v for k, v in state.items() if k not in ("now", "graph")}
    rest["names"] = [
        {k: v for k, v in row.items() if k != "oldest_unread_age"} for row in state["names"]
    ]
    rest["edges"] = state["graph"]["edges"]
    return orjson.dumps(rest, default=str)


class Hub:
    """The current state, rebuilt on each change; SSE handlers wait on ``cond``."""

    def __init__(self, mb: Mailbox) -> None:
        self.mb = mb
        self.mb_lock = threading.Lock()  # a store keeps descriptors: one thread at a time
        self.memo: dict[str, Any] = {}  # build_state's: the graph reads only what is new
        self.cond = threading.Condition()
        self.version = 0
        self.data = b"{}"
        self._print = b""
        self.closing = False
        self._poke = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kei-web-state", daemon=True)

    def refresh(self) -> None:
        with self.mb_lock:
            state = build_state(self.mb, memo=self.memo)
        fp = _fingerprint(state)
        data = orjson.dumps(_neutral(state), default=str)
        with self.cond:
            self.data = data
            if fp != self._print:
                self._print = fp
                self.version += 1
                self.cond.notify_all()

    def poke(self) -> None:
        self._poke.set()

    def start(self) -> None:
        self.refresh()
        self._thread.start()

    def _run(self) -> None:
        import logging

        log = logging.getLogger("kei_message")
        while not self.closing:
            self._poke.wait(SAFETY)
            self._poke.clear()
            if self.closing:
                break
            try:
                self.refresh()
            except Exception as exc:  # the store is down for a moment: keep serving
                log.warning("web: reading the mailbox: %s", exc)

    def close(self) -> None:
        self.closing = True
        self._poke.set()
        with self.cond:
            self.cond.notify_all()

    def message(self, msg_id: int) -> bytes:
        with self.mb_lock:
            return orjson.dumps(_neutral(thread(self.mb, msg_id)), default=str)


class ViewServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, mb: Mailbox, port: int = 0, *, token: str | None = None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.token = token or secrets.token_urlsafe(32)
        self.port = int(self.server_address[1])
        self.hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self.origins = {f"http://{h}" for h in self.hosts}
        self.hub = Hub(mb)
        self._watcher: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def start(self) -> None:
        """Read the state and start watching the mailbox (before ``serve_forever``)."""
        from .watch import Watcher

        # the watch first: a change while the first state is read is not missed
        self._watcher = Watcher(self.hub.mb, self.hub.poke).start()
        self.hub.start()

    def stop(self) -> None:
        self.hub.close()
        if self._watcher is not None:
            self._watcher.stop()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: ViewServer

    def version_string(self) -> str:
        return "kei-message"

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines carry the token: never logged

    def _head(self, code: int, ctype: str, length: int | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in SECURITY_HEADERS:
            self.send_header(key, value)
        if code == 405:
            self.send_header("Allow", "GET, HEAD")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self._head(code, ctype, len(body))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, code: int) -> None:
        # A fixed word, nothing from the request or the mailbox.
        words = {403: "forbidden", 404: "not found", 405: "method not allowed", 400: "bad request"}
        self.close_connection = True
        self._send(code, (words.get(code, "error") + "\n").encode(), "text/plain; charset=utf-8")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (a malformed request line, a too long header)
        # would echo parts of the request in HTML: keep to our fixed words.
        self._refuse(code)

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):  # POST, PUT, DELETE, OPTIONS, anything: read-only
            return lambda: self._refuse(405)
        raise AttributeError(name)

    def _allowed(self) -> bool:
        host = self.headers.get("Host", "")
        if host not in self.server.hosts:
            return False  # DNS rebinding: someone else's name pointing at us
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.origins:
            return False
        return self.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")

    def _token_ok(self, query: dict[str, list[str]]) -> bool:
        given = query.get("token", [])
        if len(given) != 1:
            return False
        return hmac.compare_digest(given[0].encode(), self.server.token.encode())

    # ------------------------------------------------------------------ routes
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._allowed():
            return self._refuse(403)
        parts = urlsplit(self.path)
        try:
            query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=8)
        except ValueError:
            return self._refuse(400)
        if not self._token_ok(query):
            return self._refuse(403)
        path = parts.path
        if path == "/":
            page = (STATIC / "index.html").read_text(encoding="utf-8")
            # token_urlsafe: only [A-Za-z0-9_-], safe inside an attribute
            body = page.replace("{{TOKEN}}", self.server.token).encode()
            return self._send(200, body, "text/html; charset=utf-8")
        if path in _FILES:
            fname, ctype = _FILES[path]
            return self._send(200, (STATIC / fname).read_bytes(), ctype)
        if path == "/api/state":
            with self.server.hub.cond:
                data = self.server.hub.data
            return self._send(200, data, "application/json")
        if path == "/api/events":
            return self._events()
        if path.startswith("/api/message/"):
            return self._message(path.removeprefix("/api/message/"))
        return self._refuse(404)

    def _message(self, raw: str) -> None:
        from ..errors import UnknownMessage

        if not raw.isdigit() or len(raw) > 20:
            return self._refuse(404)
        try:
            data = self.server.hub.message(int(raw))
        except UnknownMessage:
            return self._refuse(404)
        self._send(200, data, "application/json")

    def _events(self) -> None:
        hub = self.server.hub
        self._head(200, "text/event-stream; charset=utf-8")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        if self.command == "HEAD":
            return
        self.close_connection = True
        seen = -1

        def news() -> bool:
            return hub.version != seen or hub.closing

        try:
            while not hub.closing:
                with hub.cond:
                    hub.cond.wait_for(news, HEARTBEAT)
                    version, data = hub.version, hub.data
                if hub.closing:
                    break
                if version != seen:
                    seen = version
                    self.wfile.write(b"event: state\ndata: " + data + b"\n\n")
                else:
                    self.wfile.write(b": heartbeat\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            pass  # the page went away


def serve(
    mb: Mailbox, *, port: int = 0, open_page: bool = False, say: Callable[[str], None] = print
) -> None:
    """Serve until Ctrl-C; ``say`` the URL (with its token) first."""
    from ..errors import UsageError

    try:
        server = ViewServer(mb, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    try:
        server.start()
        say(server.url)
        say("read-only; Ctrl-C stops the server")
        if open_page:
            import webbrowser

            webbrowser.open(server.url)
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
