"""A small synchronous Redis client: RESP2 over a socket, for the Redis store (#19).

redis-py was the store's client, and ``import redis`` alone cost ~120 ms (it pulls
in asyncio, logging, typing and its many parsers): every Redis-backed command
paid that before it said a word to the server, against ~30 ms for a whole
command on the JSONL bus. This module is what the store needs of a client and
no more, on the standard library: ``_socket`` (``socket`` brings ``enum`` and
``selectors``, ~6 ms) with its own read buffer; ``socket`` and ``ssl`` only for
``rediss://``.

- ``Redis.from_url`` with redis-py's URL forms (``redis://[USER:PASSWORD@]HOST:PORT/DB``,
  ``rediss://`` with the ``ssl_*`` options, ``unix:///path.sock?db=N``) and query
  options; an unknown option or a bad value is a ValueError;
- a lazy connection per concurrent caller (a small pool: the reader lock is
  renewed from a thread while the main thread talks), with AUTH and SELECT on
  each new one;
- one retry, on a fresh connection after a short backoff, of a call that failed
  on a dropped connection or a timeout (redis-py's ``Retry(ExponentialBackoff(…), 1)``;
  a refused password is not retried); the reply to ``XREAD BLOCK`` is awaited for
  the block plus the socket timeout;
- the commands the store (and its tests) call, with redis-py's reply shapes for
  ``decode_responses=False``; ``register_script`` (EVALSHA, loading the script on
  NOSCRIPT) and ``pipeline(transaction=False)``;
- redis-py's exception names, so the store catches what it caught before.

RESP3, transactions, pub/sub and clusters are not here: the store uses none of them.
"""

from __future__ import annotations

import _socket
import os
import time
from _thread import allocate_lock

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    import ssl as ssl_module
    from collections.abc import Callable, Iterable, Mapping
    from socket import socket as Socket
    from typing import Any

    Reply = Any
    Callback = Callable[[Any], Any] | None

DEFAULT_PORT = 6379
_Timeout = TimeoutError  # the builtin (socket.timeout), before redis-py's name shadows it


# ----------------------------------------------------------------------------- errors
class RedisError(Exception):
    """Anything that went wrong talking to Redis."""


class ConnectionError(RedisError):
    """The connection could not be made, or broke."""


class TimeoutError(RedisError):
    """No answer within the socket timeout."""


class AuthenticationError(ConnectionError):
    """A wrong password or user (WRONGPASS), or none given to a server that wants one."""


class InvalidResponse(RedisError):
    """Bytes that are not RESP: the connection is dropped."""


class DataError(RedisError):
    """An argument that cannot be sent (redis-py's name)."""


class ResponseError(RedisError):
    """An error reply from the server."""


class NoScriptError(ResponseError):
    """EVALSHA of a script the server does not have (NOSCRIPT)."""


class NoPermissionError(ResponseError):
    """The ACL user may not run this command or touch this key (NOPERM)."""


_CODES: dict[str, type[RedisError]] = {
    "NOSCRIPT": NoScriptError,
    "NOPERM": NoPermissionError,
    "WRONGPASS": AuthenticationError,
    "NOAUTH": AuthenticationError,
}
_AUTH_ERR = (
    "invalid password",
    "AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?",
    "Client sent AUTH, but no password is set",
)


def error_of(text: str) -> RedisError:
    """The exception for an error reply, named and worded as redis-py does.

    A known code (``NOPERM``, ``ERR``, …) is cut off the message; other codes stay in it.
    """
    code = text.split(" ")[0]
    if code in _CODES:
        return _CODES[code](text[len(code) + 1 :])
    if code == "ERR":
        rest = text[4:]
        return AuthenticationError(rest) if rest in _AUTH_ERR else ResponseError(rest)
    return ResponseError(text)


# ----------------------------------------------------------------------------- URLs
def unquote(text: str) -> str:
    """Percent-decoding (UTF-8), as ``urllib.parse.unquote`` does, without importing it."""
    if "%" not in text:
        return text
    head, *pieces = text.split("%")
    out = bytearray(head.encode())
    for piece in pieces:
        code = piece[:2]
        if len(code) == 2 and all(c in "0123456789abcdefABCDEF" for c in code):
            out.append(int(code, 16))
            out += piece[2:].encode()
        else:
            out += b"%" + piece.encode()
    return out.decode(errors="replace")


def _to_bool(value: str) -> bool:
    return value.upper() not in ("0", "F", "FALSE", "N", "NO")


def _cert_reqs(value: str) -> str:
    if value.lower() not in ("none", "optional", "required"):
        raise ValueError(f"Invalid SSL Certificate Requirements Flag: {value}")
    return value.lower()


def _protocol(value: str) -> int:
    if int(value) != 2:
        raise ValueError("only RESP2 (protocol=2) is supported")
    return 2


# redis-py's query options: how to read each value. The ones that tune redis-py's own
# machinery (pool size, health checks, retrying timeouts) are read and have no effect.
_OPTIONS: dict[str, Callable[[str], Any]] = {
    "db": int,
    "username": str,
    "password": str,
    "client_name": str,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "socket_keepalive": _to_bool,
    "socket_read_size": int,
    "retry_on_timeout": _to_bool,
    "max_connections": int,
    "health_check_interval": int,
    "timeout": float,
    "protocol": _protocol,
    "ssl_ca_certs": str,
    "ssl_ca_path": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_password": str,
    "ssl_cert_reqs": _cert_reqs,
    "ssl_check_hostname": _to_bool,
    "ssl_ciphers": str,
    "ssl_min_version": int,
}


def parse_url(url: str) -> dict[str, Any]:
    """redis-py's ``parse_url``: the connection options a URL gives.

    ``host``, ``port``, ``path`` (unix), ``ssl`` (rediss), ``db``, ``username``,
    ``password`` and the query options, each read as redis-py reads it. A query
    option redis-py does not know, or a value it cannot read, is a ValueError.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            "Redis URL must specify one of the following schemes (redis://, rediss://, unix://)"
        )
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    path = slash + path
    opts: dict[str, Any] = {}
    for item in query.replace(";", "&").split("&"):
        raw_name, _, raw_value = item.partition("=")
        name, value = unquote(raw_name.replace("+", " ")), unquote(raw_value.replace("+", " "))
        if not value or name in opts:  # parse_qs drops blank values; the first one counts
            continue
        read = _OPTIONS.get(name)
        if read is None:
            raise ValueError(f"unknown option '{name}' in connection URL")
        if name.startswith("ssl_") and scheme != "rediss":
            raise ValueError(f"'{name}' needs a rediss:// URL")
        try:
            opts[name] = read(value)
        except ValueError:
            raise ValueError(f"Invalid value for '{name}' in connection URL.") from None
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        if user:
            opts["username"] = unquote(user)
        if password:
            opts["password"] = unquote(password)
    if scheme == "unix":
        if path:
            opts["path"] = unquote(path)
        return opts
    if hostport.startswith("["):  # IPv6
        host, _, port = hostport[1:].partition("]")
        port = port[1:]
    else:
        host, _, port = hostport.partition(":")
    if host:
        opts["host"] = unquote(host).lower()
    if port:
        if not port.isdigit() or int(port) > 65535:
            raise ValueError(f"Port could not be cast to integer value as {port!r}")
        opts["port"] = int(port)
    if path and "db" not in opts:
        try:
            opts["db"] = int(unquote(path).replace("/", ""))
        except ValueError:
            pass
    opts["ssl"] = scheme == "rediss"
    return opts


# ----------------------------------------------------------------------------- wire
def encode(value: Any) -> bytes:
    """One argument as redis-py sends it: bytes as they are, str as UTF-8, numbers as text."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        raise DataError(
            f"Invalid input of type: {type(value).__name__!r}. "
            "Convert to a bytes, string, int or float first."
        )
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise DataError(
        f"Invalid input of type: {type(value).__name__!r}. "
        "Convert to a bytes, string, int or float first."
    )


def pack(args: Iterable[Any]) -> bytes:
    """A command as RESP: an array of bulk strings."""
    parts = [encode(a) for a in args]
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n" % len(part))
        out.append(part)
        out.append(b"\r\n")
    return b"".join(out)


# Every open socket, so that none is ever garbage that the collector finalizes (with a
# ResourceWarning) before the Connection that owns it: a client dropped without close()
# inside a reference cycle (an exception's traceback holding a store) is closed by its
# connections' __del__, as redis-py's are.
_OPEN: set[Any] = set()


class Connection:
    """One socket to the server (``_socket.socket``, or ``ssl.SSLSocket`` for TLS) and
    a buffer of what was read from it."""

    def __init__(self, sock: _socket.socket | Socket, timeout: float | None, where: str) -> None:
        _OPEN.add(sock)
        self.sock = sock
        self.timeout = timeout
        self.where = where
        self.buf = bytearray()
        self.pos = 0

    def __del__(self) -> None:  # a client dropped without close()
        self.close()

    def close(self) -> None:
        if _OPEN is not None:  # None at interpreter shutdown, when __del__ may run last
            _OPEN.discard(self.sock)
        try:
            self.sock.close()
        except OSError:
            pass

    def roundtrip(self, payload: bytes, count: int, extra: float = 0.0) -> list[Reply]:
        """Send ``payload`` (``count`` commands) and read their replies.

        Error replies come back as exception objects, not raised. ``extra``
        seconds are added to the socket timeout for these replies (XREAD BLOCK).
        """
        try:
            self.sock.sendall(payload)
        except _Timeout:
            raise TimeoutError(f"Timeout writing to {self.where}") from None
        except OSError as exc:
            raise ConnectionError(
                f"Error {exc.errno} while writing to {self.where}. {exc.strerror}."
            ) from None
        if extra and self.timeout is not None:
            self.sock.settimeout(self.timeout + extra)
        try:
            return [self.read() for _ in range(count)]
        except _Timeout:
            raise TimeoutError(f"Timeout reading from {self.where}") from None
        except OSError as exc:
            raise ConnectionError(f"Error while reading from {self.where}: {exc}") from None
        finally:
            if extra and self.timeout is not None:
                self.sock.settimeout(self.timeout)
            if self.pos:
                del self.buf[: self.pos]
                self.pos = 0

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("Connection closed by server.")
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos : end])
                self.pos = end + 2
                return line
            self._fill()

    def _bulk(self, size: int) -> bytes:
        while len(self.buf) - self.pos < size + 2:
            self._fill()
        data = bytes(self.buf[self.pos : self.pos + size])
        self.pos += size + 2
        return data

    def read(self) -> Reply:
        """One RESP2 reply (nested arrays included); an error reply as its exception."""
        line = self._line()
        kind, body = line[:1], line[1:]
        try:
            if kind == b"$":
                size = int(body)
                return None if size < 0 else self._bulk(size)
            if kind == b"*":
                size = int(body)
                return None if size < 0 else [self.read() for _ in range(size)]
            if kind == b":":
                return int(body)
        except ValueError:
            raise InvalidResponse(f"Protocol Error: {line!r}") from None
        if kind == b"+":
            return body
        if kind == b"-":
            return error_of(body.decode(errors="replace"))
        raise InvalidResponse(f"Protocol Error: {line!r}")


# ----------------------------------------------------------------------------- replies
def _throw(replies: list[Reply]) -> None:
    """Raise the first error reply in ``replies``, emptying the list.

    The frames the error passes through hold ``replies``: left in it, the error would
    hold (by its traceback) those frames and they the error, a cycle only the garbage
    collector frees, with the client and its connections in it.
    """
    error = next(r for r in replies if isinstance(r, RedisError))
    replies.clear()
    try:
        raise error
    finally:
        del error


def _ok(reply: Reply) -> bool | None:
    return None if reply is None else reply == b"OK"


def _pairs(reply: Reply) -> dict[Any, Any]:
    it = iter(reply or ())
    return dict(zip(it, it, strict=False))


def _stream(reply: Reply) -> list[tuple[Any, Any]] | None:
    if reply is None:
        return None
    return [(r[0], _pairs(r[1])) if r is not None else (None, None) for r in reply]


def _xread(reply: Reply) -> list[list[Any]]:
    if reply is None:
        return []
    return [[r[0], _stream(r[1])] for r in reply]


def _text(reply: Reply) -> Any:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _info_value(value: str) -> Any:
    if "," not in value and "=" not in value:
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return value
    if "=" not in value:
        return [_info_value(v) for v in value.split(",") if v]
    sub: dict[str, Any] = {}
    for item in value.split(","):
        if not item:
            continue
        if "=" in item:
            k, v = item.rsplit("=", 1)
            sub[k] = _info_value(v)
        else:
            sub[item] = True
    return sub


def parse_info(reply: Reply) -> dict[str, Any]:
    """INFO as redis-py gives it: str keys, numbers as int or float, ``a=1,b=2`` as a dict."""
    info: dict[str, Any] = {}
    for line in _text(reply).splitlines():
        if not line or line.startswith("#"):
            continue
        if ":" in line:
            key, value = line.split(":", 1)
            if key == "cmdstat_host":
                key, value = line.rsplit(":", 1)
            if key == "module":
                info.setdefault("modules", []).append(_info_value(value))
            else:
                info[key] = _info_value(value)
        else:
            info.setdefault("__raw__", []).append(line)
    return info


# ----------------------------------------------------------------------------- commands
class Commands:
    """The commands, each as redis-py names and answers it; ``_do`` runs or queues one."""

    def _do(self, args: tuple[Any, ...], callback: Callback = None, block: float = 0.0) -> Any:
        raise NotImplementedError

    def execute_command(self, *args: Any) -> Any:
        return self._do(args)

    def ping(self) -> Any:
        return self._do(("PING",), lambda r: r == b"PONG")

    def get(self, name: Any) -> Any:
        return self._do(("GET", name))

    def set(
        self,
        name: Any,
        value: Any,
        ex: float | None = None,
        px: float | None = None,
        nx: bool = False,
        xx: bool = False,
    ) -> Any:
        args: list[Any] = ["SET", name, value]
        if ex is not None:
            args += ["EX", int(ex)]
        if px is not None:
            args += ["PX", int(px)]
        if nx:
            args.append("NX")
        if xx:
            args.append("XX")
        return self._do(tuple(args), _ok)

    def delete(self, *names: Any) -> Any:
        return self._do(("DEL", *names))

    def exists(self, *names: Any) -> Any:
        return self._do(("EXISTS", *names))

    def sadd(self, name: Any, *values: Any) -> Any:
        return self._do(("SADD", name, *values))

    def smembers(self, name: Any) -> Any:
        return self._do(("SMEMBERS", name), lambda r: set(r or ()))

    def hget(self, name: Any, key: Any) -> Any:
        return self._do(("HGET", name, key))

    def hsetnx(self, name: Any, key: Any, value: Any) -> Any:
        return self._do(("HSETNX", name, key, value), bool)

    def hset(
        self,
        name: Any,
        key: Any = None,
        value: Any = None,
        mapping: Mapping[Any, Any] | None = None,
    ) -> Any:
        args: list[Any] = ["HSET", name]
        if key is not None:
            args += [key, value]
        for k, v in (mapping or {}).items():
            args += [k, v]
        if len(args) == 2:
            raise DataError("'hset' with no key value pairs")
        return self._do(tuple(args))

    def hdel(self, name: Any, *keys: Any) -> Any:
        return self._do(("HDEL", name, *keys))

    def hgetall(self, name: Any) -> Any:
        return self._do(("HGETALL", name), _pairs)

    def hmget(self, name: Any, keys: Iterable[Any], *args: Any) -> Any:
        return self._do(("HMGET", name, *keys, *args))

    def hvals(self, name: Any) -> Any:
        return self._do(("HVALS", name))

    def xadd(self, name: Any, fields: Mapping[Any, Any], id: Any = "*") -> Any:
        args: list[Any] = ["XADD", name, id]
        for k, v in fields.items():
            args += [k, v]
        return self._do(tuple(args))

    def xlen(self, name: Any) -> Any:
        return self._do(("XLEN", name))

    def xrange(self, name: Any, min: Any = "-", max: Any = "+", count: int | None = None) -> Any:
        extra = ("COUNT", count) if count is not None else ()
        return self._do(("XRANGE", name, min, max, *extra), _stream)

    def xrevrange(
        self,
        name: Any,
        max: Any = "+",
        min: Any = "-",
        count: int | None = None,
    ) -> Any:
        extra = ("COUNT", count) if count is not None else ()
        return self._do(("XREVRANGE", name, max, min, *extra), _stream)

    def xread(
        self, streams: Mapping[Any, Any], count: int | None = None, block: int | None = None
    ) -> Any:
        """XREAD; with ``block`` (ms) the reply is awaited that much longer than the timeout."""
        args: list[Any] = ["XREAD"]
        if count is not None:
            args += ["COUNT", count]
        if block is not None:
            args += ["BLOCK", block]
        args += ["STREAMS", *streams.keys(), *streams.values()]
        return self._do(tuple(args), _xread, (block or 0) / 1000)

    def info(self, section: str | None = None) -> Any:
        return self._do(("INFO",) if section is None else ("INFO", section), parse_info)

    def flushdb(self) -> Any:
        return self._do(("FLUSHDB",), _ok)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return self._do(("EVALSHA", sha, numkeys, *keys_and_args))

    def script_load(self, script: Any) -> Any:
        return self._do(("SCRIPT", "LOAD", script), _text)

    def script_exists(self, *shas: str) -> Any:
        return self._do(("SCRIPT", "EXISTS", *shas), lambda r: [bool(x) for x in r])

    def script_flush(self) -> Any:
        return self._do(("SCRIPT", "FLUSH"), _ok)


class Script:
    """A Lua script run by its SHA1 (EVALSHA), loaded when the server lacks it (NOSCRIPT)."""

    def __init__(self, client: Redis, script: str | bytes) -> None:
        try:
            from _sha1 import sha1  # built in: hashlib loads OpenSSL, ~2 ms
        except ImportError:  # a Python built without it
            from hashlib import sha1

        self.client = client
        self.script = encode(script)
        self.sha = sha1(self.script).hexdigest()

    def __call__(
        self,
        keys: Iterable[Any] = (),
        args: Iterable[Any] = (),
        client: Redis | Pipeline | None = None,
    ) -> Any:
        keys, args = list(keys), list(args)
        target = self.client if client is None else client
        if isinstance(target, Pipeline):
            target.scripts.append(self)
            return target.evalsha(self.sha, len(keys), *keys, *args)
        try:
            return target.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # load and run it in one round trip; a failed load answers for both
            load = ("SCRIPT", "LOAD", self.script)
            return target._run(
                [(load, None), (("EVALSHA", self.sha, len(keys), *keys, *args), None)]
            )[1]


class Pipeline(Commands):
    """Commands queued and sent in one go (no MULTI): ``execute()`` gives their replies."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.stack: list[tuple[tuple[Any, ...], Callback]] = []
        self.scripts: list[Script] = []

    def _do(self, args: tuple[Any, ...], callback: Callback = None, block: float = 0.0) -> Any:
        self.stack.append((args, callback))
        return self

    def __len__(self) -> int:
        return len(self.stack)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Every reply in order; the first error reply raised, as redis-py does by default."""
        stack, scripts = self.stack, self.scripts
        self.stack, self.scripts = [], []
        if not stack:
            return []
        if scripts:
            unique = list({s.sha: s for s in scripts}.values())
            have = self.client.script_exists(*[s.sha for s in unique])
            for script, there in zip(unique, have, strict=True):
                if not there:
                    script.sha = self.client.script_load(script.script)
        replies = self.client._run(stack, raise_first=False)
        if raise_on_error:
            for n, reply in enumerate(replies, 1):
                if isinstance(reply, ResponseError):
                    name = _text(encode(stack[n - 1][0][0]))
                    raise type(reply)(
                        f"Command # {n} ({name}) of pipeline caused error: {reply}"
                    ) from None
        return replies


class Redis(Commands):
    """A client: connects on first use, a connection per concurrent caller, one retry."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        db: int = 0,
        *,
        path: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client_name: str | None = None,
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
        socket_keepalive: bool = False,
        ssl: bool = False,
        ssl_ca_certs: str | None = None,
        ssl_ca_path: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_password: str | None = None,
        ssl_cert_reqs: str = "required",
        ssl_check_hostname: bool = True,
        ssl_ciphers: str | None = None,
        ssl_min_version: int | None = None,
        retries: int = 1,
        backoff_base: float = 0.02,
        backoff_cap: float = 0.1,
        **ignored: Any,  # redis-py's pool and health-check tuning: no effect here
    ) -> None:
        self.host, self.port, self.db, self.path = host, port, db, path
        self.username, self.password, self.client_name = username, password, client_name
        self.socket_timeout = socket_timeout
        self.socket_connect_timeout = socket_connect_timeout
        self.socket_keepalive = socket_keepalive
        self.ssl = ssl
        self._ssl_options: dict[str, Any] = {
            "ca_certs": ssl_ca_certs, "ca_path": ssl_ca_path, "certfile": ssl_certfile,
            "keyfile": ssl_keyfile, "password": ssl_password, "cert_reqs": ssl_cert_reqs,
            "check_hostname": ssl_check_hostname, "ciphers": ssl_ciphers,
            "min_version": ssl_min_version,
        }  # fmt: skip
        self._context: ssl_module.SSLContext | None = None
        self.retries = retries
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._idle: list[Connection] = []
        self._guard = allocate_lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Redis:
        """A client for ``url``; its options win over ``options``, as in redis-py."""
        options.update(parse_url(url))
        return cls(**options)

    def __repr__(self) -> str:
        return f"<resp.Redis {self._where()} db={self.db}>"

    def _where(self) -> str:
        return f"unix:{self.path}" if self.path is not None else f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ connections
    def _ssl_context(self) -> ssl_module.SSLContext:
        if self._context is None:
            import ssl

            o = self._ssl_options
            ctx = ssl.create_default_context()
            ctx.check_hostname = bool(o["check_hostname"])
            ctx.verify_mode = {
                "none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED
            }[str(o["cert_reqs"]).lower()]  # fmt: skip
            if o["certfile"] or o["keyfile"]:
                ctx.load_cert_chain(o["certfile"], o["keyfile"], o["password"])
            if o["ca_certs"] is not None or o["ca_path"] is not None:
                ctx.load_verify_locations(cafile=o["ca_certs"], capath=o["ca_path"])
            if o["min_version"] is not None:
                ctx.minimum_version = ssl.TLSVersion(o["min_version"])
            if o["ciphers"]:
                ctx.set_ciphers(o["ciphers"])
            self._context = ctx
        return self._context

    def _open_socket(self) -> _socket.socket | Socket:
        """A connected socket (TLS done), its timeout the socket timeout."""
        if self.path is not None:
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                sock.settimeout(self.socket_connect_timeout)
                sock.connect(self.path)
            except BaseException:
                sock.close()
                raise
        elif self.ssl:
            import socket  # ssl wraps a socket.socket: only for rediss://

            plain = socket.create_connection((self.host, self.port), self.socket_connect_timeout)
            try:
                plain.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                if self.socket_keepalive:
                    plain.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
                tls = self._ssl_context().wrap_socket(plain, server_hostname=self.host)
            except BaseException:
                plain.close()
                raise
            tls.settimeout(self.socket_timeout)
            return tls
        else:
            sock = self._tcp()
        sock.settimeout(self.socket_timeout)
        return sock

    def _tcp(self) -> _socket.socket:
        """``socket.create_connection``: each address in turn, the first that answers."""
        error: OSError | None = None
        # an ASCII name as bytes: a str goes through the idna codec, which imports re (~4 ms)
        host: str | bytes = self.host.encode() if self.host.isascii() else self.host
        for family, kind, proto, _, address in _socket.getaddrinfo(
            host, self.port, 0, _socket.SOCK_STREAM
        ):
            sock = _socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.socket_connect_timeout)
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                if self.socket_keepalive:
                    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
                sock.connect(address)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error or OSError(f"getaddrinfo returned nothing for {self.host}")

    def _connect(self) -> Connection:
        where = self._where()
        try:
            sock = self._open_socket()
        except _Timeout:
            raise TimeoutError(f"Timeout connecting to {where}") from None
        except OSError as exc:
            if len(exc.args) > 1:
                raise ConnectionError(
                    f"Error {exc.args[0]} connecting to {where}. {exc.args[1]}."
                ) from None
            raise ConnectionError(f"Error connecting to {where}. {exc}.") from None
        conn = Connection(sock, self.socket_timeout, where)
        hello: list[tuple[Any, ...]] = []
        if self.password is not None:
            auth = (self.password,) if self.username is None else (self.username, self.password)
            hello.append(("AUTH", *auth))
        if self.client_name:
            hello.append(("CLIENT", "SETNAME", self.client_name))
        if self.db:
            hello.append(("SELECT", self.db))
        if hello:
            try:
                replies = conn.roundtrip(b"".join(pack(c) for c in hello), len(hello))
            except BaseException:
                conn.close()
                raise
            if any(isinstance(r, RedisError) for r in replies):
                conn.close()
                _throw(replies)
        return conn

    def _get(self) -> Connection:
        with self._guard:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _put(self, conn: Connection) -> None:
        with self._guard:
            self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections (one in use now is closed by the next ``close``
        after its caller gives it back); the client connects again when used."""
        with self._guard:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _run(
        self,
        commands: list[tuple[tuple[Any, ...], Callback]],
        *,
        block: float = 0.0,
        raise_first: bool = True,
    ) -> list[Any]:
        """Send ``commands`` in one round trip and return their replies (callbacks applied).

        A dropped connection or a timeout is retried ``retries`` times on a fresh
        connection after a short exponential backoff; a wrong password is not.
        With ``raise_first`` the first error reply is raised, else it is in the list.
        """
        payload = b"".join(pack(args) for args, _ in commands)
        failures = 0
        while True:
            try:
                conn = self._get()
                try:
                    replies = conn.roundtrip(payload, len(commands), block)
                except BaseException:
                    conn.close()
                    raise
            except (ConnectionError, TimeoutError) as exc:
                if isinstance(exc, AuthenticationError) or failures >= self.retries:
                    raise
                failures += 1
                time.sleep(min(self.backoff_cap, self.backoff_base * 2**failures))
                continue
            self._put(conn)
            break
        if raise_first and any(isinstance(r, RedisError) for r in replies):
            _throw(replies)
        return [
            reply if callback is None or isinstance(reply, RedisError) else callback(reply)
            for (_, callback), reply in zip(commands, replies, strict=True)
        ]

    def _do(self, args: tuple[Any, ...], callback: Callback = None, block: float = 0.0) -> Any:
        return self._run([(args, callback)], block=block)[0]

    # ------------------------------------------------------------------ helpers
    def register_script(self, script: str | bytes) -> Script:
        return Script(self, script)

    def pipeline(self, transaction: bool = False) -> Pipeline:
        if transaction:
            raise ValueError("transactions (MULTI/EXEC) are not supported")
        return Pipeline(self)


def token() -> str:
    """A random hex token (for lock values and nonces), without importing uuid."""
    return os.urandom(16).hex()
