"""A real redis-server for the tests: free 127.0.0.1 port, its own temp dir, stopped by PID.

Example::

    with RedisServer(tmp_path) as server:
        os.environ["KEI_MAILBOX_URL"] = server.url
        ...
        server.kill()      # SIGKILL: what a crash looks like
        server.start()     # same port, same dir: reloads the append-only file
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def redis_server_bin() -> str | None:
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    def __init__(
        self,
        workdir: Path | None = None,
        *,
        appendonly: bool = True,
        appendfsync: str = "always",
        password: str | None = None,
        tls: bool = False,
    ) -> None:
        binary = redis_server_bin()
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/test.sh")
        self.binary = binary
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="kei-redis-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.password = password
        self.tls = tls  # serve TLS only, with a self-signed cert for 127.0.0.1 (``ca``)
        self.ca = self.dir / "tls" / "ca.pem"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _make_cert(self) -> None:
        """A self-signed certificate for 127.0.0.1, which is also the CA clients trust."""
        folder = self.ca.parent
        folder.mkdir(exist_ok=True)
        if self.ca.exists():
            return
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-keyout", str(folder / "key.pem"), "-out", str(self.ca),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart on the same port and dir) and wait until it answers PING."""
        for _ in range(5):
            if not self.port:
                self.port = free_port()
            args = [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", self.appendfsync,
                "--daemonize", "no",
                "--logfile", str(self.dir / "redis.log"),
            ]  # fmt: skip
            if self.password:
                args += ["--requirepass", self.password]
            if self.tls:
                self._make_cert()
                key = str(self.ca.parent / "key.pem")
                args[1:3] = ["--port", "0", "--tls-port", str(self.port)]
                args += ["--tls-cert-file", str(self.ca), "--tls-key-file", key]
                args += ["--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no"]
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, cwd=self.dir)
            if self._wait_ready(timeout):
                return
            self._reap()
            self.port = 0  # someone took the port between probe and bind: try another
        raise RuntimeError(f"redis-server did not start; see {self.dir / 'redis.log'}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                with self._connect() as sock:
                    if self.password:
                        sock.sendall(f"AUTH {self.password}\r\n".encode())
                        sock.recv(64)
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        if not self.tls:
            return sock
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.ca))
        return ctx.wrap_socket(sock, server_hostname="127.0.0.1")

    def _reap(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), keeping the port for a restart."""
        self._reap(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: nothing gets flushed that was not flushed already."""
        self._reap(signal.SIGKILL)

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis.from_url(self.url)

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
