"""A small fake of the OpenAI Responses API on 127.0.0.1, for the real Codex CLI (issue 18).

``POST /v1/responses`` answers with a streamed (SSE) response: by default one
assistant message ``"ok from fake"``; ``reply_text`` and ``reply_shell`` plan
the next replies (a shell tool call runs a command in Codex). ``GET
/v1/models`` answers with an empty list. Every request body is kept, parsed,
in ``requests`` so tests can assert what reached the model.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
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
                if self.path.split("?")[0].endswith("/models"):
                    self._plain(body=b'{"object": "list", "data": [], "models": []}')
                else:
                    self._plain(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                with fake._lock:
                    fake.paths.append("POST " + self.path)
                if not path.endswith("/responses"):
                    self._plain(404, b'{"error": "not found"}')
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                reply = fake._record(body)
                if fake.delay:
                    time.sleep(fake.delay)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(fake._events(reply))
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- planning replies -------------------------------------------------------------
    def reply_text(self, text: str) -> None:
        with self._lock:
            self.replies.append({"type": "text", "text": text})

    def reply_shell(self, command: str) -> None:
        """The next turn request is answered with a shell tool call running ``command``."""
        with self._lock:
            self.replies.append({"type": "shell", "command": command})

    def _record(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            self.requests.append(body)
            self._cond.notify_all()
            if self.replies and body.get("tools"):
                return self.replies.pop(0)
            return {"type": "text", "text": "ok from fake"}

    def _events(self, reply: dict[str, Any]) -> bytes:
        with self._lock:
            n = len(self.requests)
        rid = f"resp_fake{n}"
        if reply["type"] == "shell":
            # Codex 0.169.0's shell tool is `exec_command` with a `cmd` string
            args = json.dumps({"cmd": reply["command"], "login": False, "yield_time_ms": 20000})
            item: dict[str, Any] = {
                "type": "function_call",
                "id": f"fc_fake{n}",
                "call_id": f"call_fake{n}",
                "name": "exec_command",
                "arguments": args,
                "status": "completed",
            }
            deltas: list[dict[str, Any]] = []
        else:
            item = {
                "type": "message",
                "id": f"msg_fake{n}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply["text"], "annotations": []}],
            }
            deltas = [
                {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "delta": reply["text"],
                }
            ]
        usage = {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        }
        started = {"id": rid, "object": "response", "status": "in_progress", "output": []}
        added = {**item, "status": "in_progress"}
        if item["type"] == "message":
            added["content"] = []
        events = [
            {"type": "response.created", "response": started},
            {"type": "response.output_item.added", "output_index": 0, "item": added},
            *deltas,
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {
                "type": "response.completed",
                "response": {**started, "status": "completed", "output": [item], "usage": usage},
            },
        ]
        return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)

    # -- assertions ----------------------------------------------------------------------
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

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
