"""`kei message web` (SPEC §14): the token, Host and Origin rules, read-only routes,
live updates over server-sent events, and the page itself in headless Chromium."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kei_message.mailbox import Mailbox
from kei_message.view.web import CSP, ViewServer

ROOT = Path(__file__).resolve().parent.parent
SECRET = "TOPSECRET-body-that-must-not-leak"


@pytest.fixture
def server(mailbox: Mailbox) -> Iterator[ViewServer]:
    mailbox.send(SECRET, to="beta", sender="alpha")
    srv = ViewServer(mailbox, 0)
    srv.start()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.stop()
        t.join(5)


def request(
    srv: ViewServer,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    token: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    if token:
        path += ("&" if "?" in path else "?") + f"token={srv.token}"
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        hdrs = {"Host": f"127.0.0.1:{srv.port}", **(headers or {})}
        conn.putrequest(method, path, skip_host=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def assert_refused(status: int, hdrs: dict[str, str], body: bytes, code: int) -> None:
    assert status == code
    assert SECRET.encode() not in body and b"alpha" not in body and b"{" not in body
    assert hdrs["content-type"].startswith("text/plain")
    assert hdrs["content-security-policy"] == CSP


def test_state_and_page_with_the_token(server: ViewServer) -> None:
    status, hdrs, body = request(server, "/api/state")
    assert status == 200 and hdrs["content-type"] == "application/json"
    state = json.loads(body)
    assert [r["name"] for r in state["names"]] == ["alpha", "beta"]
    assert state["messages"][-1]["body"] == SECRET
    assert hdrs["content-security-policy"] == CSP
    assert hdrs["x-content-type-options"] == "nosniff"
    assert hdrs["referrer-policy"] == "no-referrer"
    assert hdrs["cache-control"] == "no-store"
    status, hdrs, page = request(server, "/")
    assert status == 200 and hdrs["content-type"].startswith("text/html")
    assert f'src="/app.js?token={server.token}"'.encode() in page
    assert b"<script>" not in page and b"style=" not in page  # nothing inline: the CSP allows none
    for path, ctype in (("/app.js", "text/javascript"), ("/app.css", "text/css")):
        status, hdrs, data = request(server, path)
        assert status == 200 and hdrs["content-type"].startswith(ctype) and data
    # the page builds with textContent only, never innerHTML
    js = (ROOT / "kei_message" / "view" / "static" / "app.js").read_text()
    assert "innerHTML" not in js.replace("No innerHTML", "") and "eval(" not in js
    # HEAD: the headers, no body
    status, hdrs, body = request(server, "/api/state", method="HEAD")
    assert status == 200 and body == b""


@pytest.mark.parametrize(
    "path",
    ["/", "/app.js", "/app.css", "/api/state", "/api/events", "/api/message/1", "/nope"],
)
def test_no_token_no_data(server: ViewServer, path: str) -> None:
    assert_refused(*request(server, path, token=False), 403)
    assert_refused(*request(server, path + "?token=wrong", token=False), 403)
    assert_refused(*request(server, path + "?token=", token=False), 403)
    # the right token twice is not the token
    twice = f"{path}?token={server.token}&token={server.token}"
    assert_refused(*request(server, twice, token=False), 403)


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example:80"},  # DNS rebinding: another name pointing at us
        {"Host": "127.0.0.1"},  # no port: not ours either
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_other_hosts_and_origins_are_refused(server: ViewServer, headers: dict[str, str]) -> None:
    for path in ("/api/state", "/api/events", "/"):
        assert_refused(*request(server, path, headers=headers), 403)


def test_our_own_origin_and_localhost_are_fine(server: ViewServer) -> None:
    ours = {"Origin": f"http://127.0.0.1:{server.port}", "Sec-Fetch-Site": "same-origin"}
    assert request(server, "/api/state", headers=ours)[0] == 200
    assert request(server, "/api/state", headers={"Host": f"localhost:{server.port}"})[0] == 200


def test_unknown_paths_404(server: ViewServer) -> None:
    for path in (
        "/nope",
        "/api",
        "/api/state/x",
        "/static/app.js",
        "/../README.md",
        "/api/message/",
    ):
        assert_refused(*request(server, path), 404)
    for path in ("/api/message/123", "/api/message/abc", "/api/message/-1"):
        assert_refused(*request(server, path), 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_read_only(server: ViewServer, method: str) -> None:
    status, hdrs, body = request(server, "/api/state", method=method)
    assert_refused(status, hdrs, body, 405)
    assert hdrs["allow"] == "GET, HEAD"


def test_thread_and_receipts(server: ViewServer, mailbox: Mailbox) -> None:
    first = mailbox.send("question?", to="beta", sender="alpha")
    answer = mailbox.reply(first["id"], "answer", sender="beta")
    again = mailbox.reply(answer["id"], "thanks", sender="alpha")
    mailbox.send("unrelated", to="beta", sender="alpha")
    status, _, body = request(server, f"/api/message/{answer['id']}")
    assert status == 200
    data = json.loads(body)
    assert [r["id"] for r in data["thread"]] == [first["id"], answer["id"], again["id"]]
    assert data["message"]["body"] == "answer"
    assert "receipts" in data  # None until the store keeps receipts (#16)


def _events(srv: ViewServer) -> Iterator[dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
    conn.request("GET", f"/api/events?token={srv.token}")
    res = conn.getresponse()
    assert res.status == 200 and res.getheader("Content-Type", "").startswith("text/event-stream")
    try:
        event = ""
        while True:
            raw = res.fp.readline()
            if not raw:
                return
            text = raw.decode().rstrip("\n")
            if text.startswith("event: "):
                event = text[7:]
            elif text.startswith("data: ") and event == "state":
                yield json.loads(text[6:])
    finally:
        conn.close()


def test_events_push_a_new_state_on_send(server: ViewServer, mailbox: Mailbox) -> None:
    stream = _events(server)
    first = next(stream)
    assert first["messages"][-1]["body"] == SECRET
    t0 = time.monotonic()
    mailbox.send("fresh news", to="alpha", sender="beta")
    got = next(stream)
    assert got["messages"][-1]["body"] == "fresh news"
    assert time.monotonic() - t0 < 2.0
    # reading moves a cursor: the unread count follows
    mailbox.read("alpha")
    got = next(stream)
    assert next(r for r in got["names"] if r["name"] == "alpha")["unread"] == 0


def test_serve_prints_the_url_and_refuses_a_busy_port(mailbox: Mailbox) -> None:
    import socket

    from kei_message.errors import UsageError
    from kei_message.view.web import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UsageError, match="cannot listen"):
            serve(mailbox, port=port)


# ----------------------------------------------------------------------------- the page
HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "<a href=\"javascript:window.__pwned = 'link'\">click me</a>",
    '<svg onload="window.__pwned = \'svg\'"></svg><iframe src="javascript:parent.__pwned=1">',
    "{{TOKEN}} </script><style>body{display:none}</style>",
]
BIDI = "invoice for \u202eexe.pdf\u202c and \u2066isolated\u2069, ESC \x1b[31m"


@pytest.fixture
def browser() -> Iterator[Any]:
    from cdp import Browser, chromium_bin

    pytest.importorskip("websocket")
    if chromium_bin() is None:
        pytest.skip("chromium is not installed: run scripts/test.sh")
    with Browser() as b:
        yield b


def _bodies(browser: Any) -> list[str]:
    got = browser.eval("[...document.querySelectorAll('#messages .body')].map(e => e.textContent)")
    return list(got or [])


def test_page_live_safe_and_screenshot(browser: Any, tmp_path: Path) -> None:
    # the JSONL store only: both stores give the same state (test_view.py, the SSE test)
    mailbox = Mailbox()
    store = mailbox.store
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for i, (name, agent) in enumerate(
        [("backend", None), ("frontend", "claude"), ("reviewer", "codex"), ("docs", "gemini")]
    ):
        info = {"name": name, "session_id": f"{i}f3c9a7e-5d1b-4c2e-9a8f-0b1c2d3e4f5a"}
        info.update(cwd=f"/work/{name}", last_seen=now)
        if agent:
            info["agent"] = agent
        store.put_session(info["session_id"], info)
    task = mailbox.send("TASK: ship the login page", to="frontend", sender="backend")
    mailbox.send("on it", to="backend", sender="frontend", reply_to=task["id"])
    mailbox.send("QUESTION: which API version?", to="backend", sender="frontend")
    mailbox.send("v2, see docs/api.md", to="frontend", sender="backend")
    mailbox.send("please review #12", to="reviewer", sender="frontend")
    mailbox.send("release notes drafted", to="all", sender="docs")
    mailbox.send("DONE: login page shipped", to="backend", sender="frontend")

    srv = ViewServer(mailbox, 0)
    srv.start()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        browser.navigate(srv.url)
        assert browser.wait_for("document.body && document.body.dataset.updates", 15)
        assert browser.wait_for("document.getElementById('status').textContent === 'live'", 10)
        names = browser.eval(
            "[...document.querySelectorAll('#sessions td.name')].map(e => e.textContent)"
        )
        assert names == ["backend", "docs", "frontend", "reviewer"]
        agents = browser.eval(
            "[...document.querySelectorAll('#sessions tbody tr')]"
            ".map(r => r.children[2].textContent)"
        )
        assert agents == ["claude", "gemini", "claude", "codex"]
        # backend<->frontend, frontend->reviewer, docs->all
        assert browser.eval("document.querySelectorAll('#graph path.edge').length") == 4
        # the README's picture is rewritten only when asked (KEI_TEST_SCREENSHOT=1), so a
        # test run leaves the checkout clean
        shot = ROOT / "docs" / "web.png" if os.environ.get("KEI_TEST_SCREENSHOT") == "1" else None
        shot = shot or tmp_path / "web.png"
        browser.screenshot(str(shot))
        assert shot.stat().st_size > 0

        # a send shows up without a reload, within 2 s
        browser.eval("window.__marker = 42")
        t0 = time.monotonic()
        mailbox.send("live without a reload", to="frontend", sender="backend")
        assert browser.wait_for(
            "[...document.querySelectorAll('#messages .body')]"
            ".some(e => e.textContent === 'live without a reload')",
            2.0,
        ), f"not shown within 2 s: {_bodies(browser)}"
        assert time.monotonic() - t0 < 2.0
        assert browser.eval("window.__marker") == 42  # the same page: no reload

        # hostile messages are text, whatever they hold
        for body in HOSTILE:
            mailbox.send(body, to="frontend", sender="backend")
        mailbox.send(BIDI, to="frontend", sender="backend")
        assert browser.wait_for(
            f"document.querySelectorAll('#messages .body').length >= {7 + 1 + len(HOSTILE) + 1}", 5
        )
        bodies = _bodies(browser)
        for body in HOSTILE:
            assert body in bodies  # textContent is the raw text
        escaped = BIDI.replace("\u202e", "\\u202e").replace("\u202c", "\\u202c")
        escaped = escaped.replace("\u2066", "\\u2066").replace("\u2069", "\\u2069")
        assert escaped.replace("\x1b", "\\x1b") in bodies
        # open the thread of each hostile one too
        browser.eval(
            "[...document.querySelectorAll('#messages li.message')]"
            ".slice(0, 6).forEach(li => li.click())"
        )
        assert browser.wait_for("!document.getElementById('thread').hidden", 5)
        time.sleep(0.5)
        assert browser.eval("typeof window.__pwned") == "undefined"
        assert (
            browser.eval(
                "document.querySelectorAll('img, iframe, a, script:not([src]), style').length"
            )
            == 0
        )
        assert browser.eval("document.querySelectorAll('script').length") == 1
        assert browser.eval("getComputedStyle(document.body).display") != "none"
        # the thread view: a reply chain, receipts absent or shown as text
        browser.eval(f"document.querySelector('#messages li[data-id=\"{task['id']}\"]').click()")
        assert browser.wait_for(
            "[...document.querySelectorAll('#thread-messages .body')].map(e => e.textContent)"
            ".join('|') === 'TASK: ship the login page|on it'",
            5,
        )
    finally:
        srv.shutdown()
        srv.stop()
        t.join(5)
