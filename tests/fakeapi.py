"""A small fake of the Anthropic Messages API, served on 127.0.0.1 for the real Claude Code CLI.

``POST /v1/messages`` answers with streaming SSE (or plain JSON when the
request does not ask for a stream); every other path gets 200. Each request
body is kept, parsed, in ``FakeAPI.requests`` so tests can assert what the
client sent (for example the text a hook injected).

Replies: by default ``"ok from fake"``. Push planned replies with
``reply_text(...)`` or ``reply_tool(...)``; ``delay`` makes the next replies
slow (a busy session). ``on_request(n, body)``, when set, runs for each
``/v1/messages`` request (n counts from 1) before it is answered: a test
acts "while the model thinks", e.g. sends mail during a tool round.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeAPI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.delay = 0.0
        self.on_request: Any = None
        self._lock = threading.RLock()  # wait_for predicates call count_containing
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
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                self._plain()

            def do_GET(self) -> None:
                self._plain()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                if path.endswith("/count_tokens"):
                    self._plain(body=b'{"input_tokens": 10}')
                    return
                if not path.endswith("/v1/messages"):
                    self._plain()
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                reply = fake._record(body)
                if fake.on_request is not None:
                    fake.on_request(len(fake.requests), body)
                if fake.delay:
                    time.sleep(fake.delay)
                if body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._plain(body=json.dumps(fake._message(body, reply)).encode())

            def _stream(self, body: dict[str, Any], reply: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                msg = fake._message(body, reply)
                content = msg.pop("content")
                stop = msg["stop_reason"]
                msg["content"] = []
                msg["stop_reason"] = None
                events: list[tuple[str, dict[str, Any]]] = [
                    ("message_start", {"type": "message_start", "message": msg})
                ]
                for i, block in enumerate(content):
                    if block["type"] == "text":
                        start = {"type": "text", "text": ""}
                        delta = {"type": "text_delta", "text": block["text"]}
                    else:
                        start = {**block, "input": {}}
                        delta = {
                            "type": "input_json_delta",
                            "partial_json": json.dumps(block["input"]),
                        }
                    events += [
                        (
                            "content_block_start",
                            {"type": "content_block_start", "index": i, "content_block": start},
                        ),
                        (
                            "content_block_delta",
                            {"type": "content_block_delta", "index": i, "delta": delta},
                        ),
                        ("content_block_stop", {"type": "content_block_stop", "index": i}),
                    ]
                events += [
                    (
                        "message_delta",
                        {
                            "type": "message_delta",
                            "delta": {"stop_reason": stop, "stop_sequence": None},
                            "usage": {"output_tokens": 5},
                        },
                    ),
                    ("message_stop", {"type": "message_stop"}),
                ]
                out = b"".join(
                    f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
                )
                self.wfile.write(out)
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

    def reply_tool(self, command: str, description: str = "Run a command") -> None:
        with self._lock:
            self.replies.append(
                {
                    "type": "tool_use",
                    "name": "Bash",
                    "input": {"command": command, "description": description},
                }
            )

    def _record(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            self.requests.append(body)
            self._cond.notify_all()
            # side requests (titles, quota checks) use no tools: keep plans for real turns
            if self.replies and body.get("tools"):
                return self.replies.pop(0)
            return {"type": "text", "text": "ok from fake"}

    def _message(self, body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        n = len(self.requests)
        if reply["type"] == "tool_use":
            block = {
                "type": "tool_use",
                "id": f"toolu_fake{n}",
                "name": reply["name"],
                "input": reply["input"],
            }
            stop = "tool_use"
        else:
            block = {"type": "text", "text": reply["text"]}
            stop = "end_turn"
        return {
            "id": f"msg_fake{n}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-fake"),
            "content": [block],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5},
        }

    # -- assertions ----------------------------------------------------------------------
    def texts(self) -> list[str]:
        """Each request body as JSON text (what a model would see, wrapper and all)."""
        with self._lock:
            return [json.dumps(b, ensure_ascii=False) for b in self.requests]

    def count_containing(self, text: str) -> int:
        """How many requests carry ``text`` in their last user message (not just history)."""
        n = 0
        with self._lock:
            for body in self.requests:
                msgs = body.get("messages") or []
                if msgs and text in json.dumps(msgs[-1], ensure_ascii=False):
                    n += 1
        return n

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    def __enter__(self) -> FakeAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
