"""A small fake of the Gemini API on 127.0.0.1, for the real Gemini CLI (issue 18).

``POST /v1beta/models/M:streamGenerateContent?alt=sse`` answers with SSE
chunks, ``:generateContent`` with one JSON response. Gemini CLI first asks a
"router" model how hard the prompt is (a ``generateContent`` call whose
request mentions ``complexity_score``): that is answered with the JSON it
wants. Turn replies default to ``"ok from fake"``; ``reply_text`` and
``reply_shell`` (a ``run_shell_command`` function call) plan the next ones.
Every request body is kept, parsed, in ``requests``; ``turns()`` keeps the
real turns (those that offer tools).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROUTER_ANSWER = {"complexity_reasoning": "a short test prompt", "complexity_score": 1}


class FakeGemini:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.replies: list[dict[str, Any]] = []
        self.delay = 0.0
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _plain(self, code: int = 200, body: bytes = b"{}") -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                with fake._lock:
                    fake.paths.append("GET " + self.path)
                self._plain(body=b'{"models": []}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with fake._lock:
                    fake.paths.append("POST " + self.path)
                path = self.path.split("?")[0]
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                if path.endswith(":countTokens"):
                    self._plain(body=b'{"totalTokens": 10}')
                    return
                if not path.endswith((":generateContent", ":streamGenerateContent")):
                    self._plain(body=b"{}")
                    return
                reply = fake._record(body)
                if fake.delay and reply["type"] != "router":
                    time.sleep(fake.delay)
                chunk = fake._response(reply)
                if path.endswith(":generateContent"):
                    self._plain(body=json.dumps(chunk).encode())
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- planning replies -------------------------------------------------------------
    def reply_text(self, text: str) -> None:
        with self._lock:
            self.replies.append({"type": "text", "text": text})

    def reply_shell(self, command: str) -> None:
        with self._lock:
            self.replies.append({"type": "shell", "command": command})

    def _record(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            self.requests.append(body)
            self._cond.notify_all()
            if "complexity_score" in json.dumps(body):
                return {"type": "router"}
            if self.replies and body.get("tools"):
                return self.replies.pop(0)
            return {"type": "text", "text": "ok from fake"}

    @staticmethod
    def _response(reply: dict[str, Any]) -> dict[str, Any]:
        if reply["type"] == "router":
            part: dict[str, Any] = {"text": json.dumps(ROUTER_ANSWER)}
        elif reply["type"] == "shell":
            part = {
                "functionCall": {
                    "name": "run_shell_command",
                    "args": {"command": reply["command"], "description": "run a command"},
                }
            }
        else:
            part = {"text": reply["text"]}
        return {
            "candidates": [
                {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": 10,
                "candidatesTokenCount": 5,
                "totalTokenCount": 15,
            },
            "modelVersion": "gemini-fake",
        }

    # -- assertions ----------------------------------------------------------------------
    def turns(self) -> list[dict[str, Any]]:
        """The requests of real turns (they offer tools), not the router's."""
        with self._lock:
            return [b for b in self.requests if b.get("tools")]

    def texts(self) -> list[str]:
        with self._lock:
            return [json.dumps(b, ensure_ascii=False) for b in self.requests]

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    def __enter__(self) -> FakeGemini:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
