"""The store's own Redis client (``kei_message/stores/resp.py``) against a real redis-server.

redis-py (the test extra) is the independent client: what it writes, ours reads,
and both give the same answers for the commands the store uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kei_message.stores import resp

pytestmark = pytest.mark.redis


@pytest.fixture
def url(redis_server: Any) -> str:
    client = redis_server.client()
    try:
        client.flushdb()
        client.script_flush()
    finally:
        client.close()
    return str(redis_server.url)


@pytest.fixture
def r(url: str) -> Iterator[resp.Redis]:
    client = resp.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    yield client
    client.close()


@pytest.fixture
def py(redis_server: Any) -> Iterator[Any]:
    """redis-py on the same server."""
    client = redis_server.client()
    yield client
    client.close()


# ----------------------------------------------------------------------------- replies
def test_each_reply_type(r: resp.Redis) -> None:
    nested = "return {1, 'two', {3, {'four', {}}}, false, redis.status_reply('FINE')}"
    assert r.execute_command("EVAL", nested, 0) == [1, b"two", [3, [b"four", []]], None, b"FINE"]
    assert r.execute_command("PING") == b"PONG"  # a simple string, as bytes
    assert r.execute_command("INCRBY", "n", -7) == -7  # an integer
    assert r.get("missing") is None  # a null bulk string
    assert r.execute_command("XREAD", "BLOCK", 1, "STREAMS", "s", "$") is None  # a null array
    assert r.xread({"s": "0-0"}, block=1) == []  # as redis-py 8 gives it
    big = os.urandom(200_000) + b"\r\n$-1\r\n"  # longer than one read, RESP inside
    assert r.set("big", big) is True
    assert r.get("big") == big
    assert r.execute_command("EVAL", "return ''", 0) == b""


def test_error_replies_are_response_errors(r: resp.Redis) -> None:
    with pytest.raises(resp.ResponseError, match="unknown command"):
        r.execute_command("NOSUCHCOMMAND")
    r.set("k", "v")
    with pytest.raises(resp.ResponseError, match="^WRONGTYPE"):
        r.xlen("k")
    with pytest.raises(resp.ResponseError) as info:
        r.execute_command("EVAL", "return redis.error_reply('KEI_IDS_EXHAUSTED 42')", 0)
    assert str(info.value).rsplit(" ", 1)[-1] == "42"
    assert type(resp.error_of("NOPERM no")) is resp.NoPermissionError
    assert isinstance(resp.error_of("NOSCRIPT x"), resp.ResponseError)
    assert isinstance(resp.error_of("WRONGPASS x"), resp.ConnectionError)
    assert str(resp.error_of("ERR bad thing")) == "bad thing"  # redis-py drops "ERR "
    assert r.ping() is True  # the connection is still good after each error


def test_the_same_answers_as_redis_py(r: resp.Redis, py: Any) -> None:
    for i in range(3):
        py.xadd("s", {"r": f"line {i}".encode(), "x": b"\x00\xff"})
    py.hset("h", mapping={"a": "1", b"b\xff": b"2"})
    py.sadd("set", "x", "y")
    py.set("cur", b"1-0\n\n")
    assert r.xrange("s") == py.xrange("s")
    assert r.xrange("s", "-", "+", count=2) == py.xrange("s", "-", "+", count=2)
    assert r.xrevrange("s", "+", "-", count=1) == py.xrevrange("s", "+", "-", count=1)
    assert r.xread({"s": "0-0"}, count=2) == py.xread({"s": "0-0"}, count=2)
    assert r.xread({"s": "0-0"}, count=1, block=10) == py.xread({"s": "0-0"}, count=1, block=10)
    assert r.hgetall("h") == py.hgetall("h") and r.hvals("h") == py.hvals("h")
    assert r.hget("h", "a") == py.hget("h", "a") == b"1"
    assert r.smembers("set") == py.smembers("set") == {b"x", b"y"}
    assert r.get("cur") == py.get("cur")
    assert r.set("lock", "t", nx=True, px=5000) is True
    assert r.set("lock", "t", nx=True, px=5000) is py.set("lock", "t", nx=True, px=5000) is None
    assert r.exists("lock", "nope") == 1 and r.delete("lock") == 1
    assert r.hset("h", "c", 3) == 1 and r.hdel("h", "c") == 1
    assert isinstance(r.xadd("s", {"r": b"mine"}), bytes)
    assert py.xrange("s")[-1][1] == {b"r": b"mine"}
    ours, theirs = r.info("server"), py.info("server")
    assert ours.keys() == theirs.keys()
    for key in ("redis_version", "tcp_port", "uptime_in_seconds", "process_id"):
        assert type(ours[key]) is type(theirs[key]), key
    assert ours["redis_version"] == theirs["redis_version"]
    assert r.info("persistence")["aof_enabled"] == py.info("persistence")["aof_enabled"]
    assert r.info("stats")["total_commands_processed"] > 0


# ----------------------------------------------------------------------------- scripts
def test_noscript_falls_back_to_loading_the_script(r: resp.Redis, py: Any) -> None:
    script = r.register_script("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")
    assert script(keys=["k"], args=[b"v", 41]) == [b"k", b"v", 42]
    py.script_flush()
    assert py.script_exists(script.sha) == [False]
    assert script(keys=["k"], args=["w", 1]) == [b"k", b"w", 2]
    assert py.script_exists(script.sha) == [True]
    py.script_flush()
    pipe = r.pipeline(transaction=False)
    script(keys=["a"], args=["x", 0], client=pipe)
    script(keys=["b"], args=["y", 1], client=pipe)
    assert pipe.execute() == [[b"a", b"x", 1], [b"b", b"y", 2]]


def test_pipeline_replies_and_the_first_error(r: resp.Redis, py: Any) -> None:
    pipe = r.pipeline(transaction=False)
    pipe.set("a", "1")
    pipe.xadd("s", {"r": b"x"})
    pipe.get("a")
    assert [type(x) for x in pipe.execute()] == [bool, bytes, bytes]
    assert len(pipe) == 0  # execute empties it
    pipe.set("b", "1")
    pipe.execute_command("NOSUCHCOMMAND")
    pipe.set("c", "1")
    pipe.execute_command("ALSOBAD")
    with pytest.raises(resp.ResponseError, match=r"Command # 2 \(NOSUCHCOMMAND\) of pipeline"):
        pipe.execute()
    assert py.get("b") == py.get("c") == b"1"  # every command ran, as in redis-py
    pipe.set("d", "1")
    pipe.execute_command("NOSUCHCOMMAND")
    got = pipe.execute(raise_on_error=False)
    assert got[0] is True and isinstance(got[1], resp.ResponseError)
    assert r.pipeline().execute() == []


# ----------------------------------------------------------------------------- connections
def test_auth_with_user_and_password(tmp_path: Path) -> None:
    from redis_server import RedisServer

    with RedisServer(tmp_path / "r", appendonly=False, password="s3cret") as server:
        admin = server.client()
        admin.execute_command("ACL", "SETUSER", "kei", "on", ">p@ss:w/rd", "~*", "+@all")
        admin.close()
        port = server.port
        assert resp.Redis.from_url(f"redis://:s3cret@127.0.0.1:{port}/0").ping() is True
        user = resp.Redis.from_url(f"redis://kei:p%40ss%3Aw%2Frd@127.0.0.1:{port}/3")
        assert user.execute_command("ACL", "WHOAMI") == b"kei"
        assert user.execute_command("CLIENT", "INFO").split(b" db=")[1].startswith(b"3 ")
        wrong = resp.Redis.from_url(f"redis://kei:nope@127.0.0.1:{port}/0")
        with pytest.raises(resp.AuthenticationError, match="(?i)password"):
            wrong.ping()
        with pytest.raises(resp.AuthenticationError, match="(?i)auth"):
            resp.Redis.from_url(f"redis://127.0.0.1:{port}/0").ping()
        query = resp.Redis.from_url(f"redis://127.0.0.1:{port}/0?password=s3cret&username=kei")
        with pytest.raises(resp.AuthenticationError):
            query.ping()


def test_tls_with_a_private_ca(tmp_path: Path) -> None:
    from redis_server import RedisServer

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    with RedisServer(tmp_path / "r", appendonly=False, tls=True) as server:
        client = resp.Redis.from_url(server.url, socket_timeout=5)
        assert client.set("k", b"over TLS") is True
        assert client.get("k") == b"over TLS"
        big = os.urandom(100_000)
        client.set("big", big)
        assert client.get("big") == big
        client.close()
        untrusted = resp.Redis.from_url(f"rediss://127.0.0.1:{server.port}/0", retries=0)
        with pytest.raises(resp.ConnectionError, match="(?i)certificate"):
            untrusted.ping()
        lax = f"rediss://127.0.0.1:{server.port}/0?ssl_cert_reqs=none&ssl_check_hostname=false"
        assert resp.Redis.from_url(lax).ping() is True


def test_unix_socket_url(tmp_path: Path) -> None:
    from redis_server import redis_server_bin

    binary = redis_server_bin()
    assert binary is not None
    path = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(path), "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        client = resp.Redis.from_url(f"unix://{path}?db=2", socket_timeout=5)
        assert client.set("k", "v") is True
        assert client.execute_command("CLIENT", "INFO").split(b" db=")[1].startswith(b"2 ")
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_killed_connection_is_retried_once_on_a_fresh_one(r: resp.Redis, py: Any) -> None:
    first = r.execute_command("CLIENT", "ID")
    py.execute_command("CLIENT", "KILL", "ID", first)
    assert r.set("k", "v") is True  # the dropped connection is noticed and replaced
    assert r.execute_command("CLIENT", "ID") != first
    once = resp.Redis.from_url(py_url(py), retries=0)
    killed = once.execute_command("CLIENT", "ID")
    py.execute_command("CLIENT", "KILL", "ID", killed)
    with pytest.raises(resp.ConnectionError, match="closed"):
        once.ping()
    assert once.ping() is True  # and the next call connects again


def py_url(py: Any) -> str:
    kw = py.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/0"


def test_timeouts_and_a_block_longer_than_the_socket_timeout(url: str) -> None:
    client = resp.Redis.from_url(url, socket_timeout=0.3, retries=1)
    started = time.monotonic()
    assert client.xread({"nothing": "$"}, block=800) == []  # waits the block, no timeout
    assert 0.7 < time.monotonic() - started < 3
    started = time.monotonic()
    with pytest.raises(resp.TimeoutError):
        client.execute_command("BLPOP", "nothing", 2)  # blocks past the socket timeout
    assert time.monotonic() - started < 1.5  # two tries of 0.3 s and a short backoff
    assert client.ping() is True


def test_unreachable_is_a_connection_error_in_one_line() -> None:
    from redis_server import free_port

    client = resp.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    with pytest.raises(resp.ConnectionError) as info:
        client.ping()
    assert "refused" in str(info.value) and "\n" not in str(info.value)


def test_threads_each_get_their_own_connection(r: resp.Redis) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                key = f"t{n}"
                assert r.set(key, f"{n}:{i}") is True
                assert r.get(key) == f"{n}:{i}".encode()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert 1 <= len(r._idle) <= 4


# ----------------------------------------------------------------------------- URLs
def test_urls_read_as_redis_py_reads_them() -> None:
    got = resp.parse_url("redis://us%40er:p%40ss%2F@Host.example:6380/4?socket_timeout=1.5")
    assert got == {
        "username": "us@er", "password": "p@ss/", "host": "host.example", "port": 6380,
        "db": 4, "socket_timeout": 1.5, "ssl": False,
    }  # fmt: skip
    assert resp.parse_url("redis://:pw@[::1]:7000")["host"] == "::1"
    assert resp.parse_url("redis://h/2?db=5")["db"] == 5  # the query wins, as in redis-py
    tls = resp.parse_url("rediss://h/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=optional")
    assert tls["ssl"] and tls["ssl_ca_certs"] == "/ca.pem" and tls["ssl_cert_reqs"] == "optional"
    assert resp.parse_url("unix:///run/redis%20x.sock?db=1&password=pw") == {
        "path": "/run/redis x.sock", "db": 1, "password": "pw"
    }  # fmt: skip
    for bad in (
        "redis://h/0?nosuch=1",
        "redis://h/0?socket_timeout=soon",
        "rediss://h/0?ssl_cert_reqs=maybe",
        "redis://h/0?ssl_ca_certs=/ca.pem",
        "redis://h:port/0",
        "http://h/0",
    ):
        with pytest.raises(ValueError):
            resp.parse_url(bad)


def test_the_store_imports_neither_redis_py_nor_asyncio(url: str) -> None:
    code = textwrap.dedent(
        """
        import sys
        from kei_message.mailbox import Mailbox
        from kei_message.stores.redis import RedisStore
        mb = Mailbox(RedisStore(sys.argv[1]))
        mb.send("x", to="bob", sender="alice")
        assert [r["body"] for r in mb.read("bob")] == ["x"]
        bad = [m for m in ("redis", "asyncio", "ssl", "logging", "typing") if m in sys.modules]
        assert not bad, bad
        """
    )
    subprocess.run([sys.executable, "-c", code, url], check=True, timeout=60)
