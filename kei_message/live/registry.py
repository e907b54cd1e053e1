"""Which tmux pane is a name's live session: hook registrations, and `discover`.

The hooks register each session (``store.put_session``) with ``tmux`` (the
session's ``$TMUX``: ``socket,pid,session``) and ``tmux_pane`` (``%N``).
``discover`` adds panes the hooks never saw: it asks every tmux server of this
user (sockets under ``$TMUX_TMPDIR``, else /tmp, ``/tmux-UID/``) for its panes
and keeps those running Claude Code, named after the normalised basename of the
pane's directory (SPEC §5). It registers them with ``source: "discover"``.

A pane can be reused (one Claude Code exits, another starts in the same pane):
per pane, only the newest registration counts.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any, NamedTuple

from .. import names
from ..procs import SHELLS, children, is_claude, pid_alive
from ..stores.base import Store
from . import tmux

_PANE_ID = re.compile(r"%[0-9]{1,9}")


class Live(NamedTuple):
    name: str
    pane: tmux.Pane
    session_id: str
    pid: int | None
    last_seen: str
    source: str  # "hook" or "discover"


def _from_session(sess: dict[str, Any]) -> Live | None:
    # registrations are files anyone with the mailbox could have edited: check every field
    name = sess.get("name")
    pane = sess.get("tmux_pane")
    env = sess.get("tmux")
    socket = tmux.socket_from_env(env) if isinstance(env, str) else None
    if not isinstance(name, str) or not names.is_valid(name):
        return None
    if not isinstance(pane, str) or not _PANE_ID.fullmatch(pane) or not socket:
        return None
    pid = sess.get("pid")
    if isinstance(pid, bool):
        pid = None
    return Live(
        name,
        tmux.Pane(socket, pane),
        str(sess.get("session_id") or ""),
        pid if isinstance(pid, int) and pid > 0 else None,
        str(sess.get("last_seen") or ""),
        "discover" if sess.get("source") == "discover" else "hook",
    )


def registered(store: Store) -> list[Live]:
    """Every registered pane, newest registration per pane, newest first."""
    by_pane: dict[tmux.Pane, Live] = {}
    for sess in store.sessions():
        live = _from_session(sess) if isinstance(sess, dict) else None
        if live is None:
            continue
        old = by_pane.get(live.pane)
        if old is None or live.last_seen > old.last_seen:
            by_pane[live.pane] = live
    return sorted(by_pane.values(), key=lambda x: x.last_seen, reverse=True)


def candidates(store: Store, name: str) -> list[Live]:
    """NAME's registered panes, newest first. Names match exactly, never by prefix."""
    return [live for live in registered(store) if live.name == name]


def pane_alive(live: Live, got: tmux.PaneInfo | None) -> bool:
    """The pane exists and still runs this session's Claude Code, as far as we can tell."""
    if got is None or got.dead:
        return False
    if live.pid is not None and not pid_alive(live.pid):  # unknown: let the pane decide
        return False
    # Claude Code exited and left the shell in the foreground
    return got.command not in SHELLS


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ------------------------------------------------------------------ discover
def _runs_claude(root: int, kids: dict[int, list[int]]) -> bool:
    todo = [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        if is_claude(pid):
            return True
        if depth < 4:
            todo.extend((k, depth + 1) for k in kids.get(pid, ()))
    return False


def discover(store: Store, *, save: bool = True) -> list[Live]:
    """Panes of this user's tmux servers that run Claude Code; registered when ``save``."""
    found: list[Live] = []
    where: dict[tmux.Pane, str] = {}
    kids: dict[int, list[int]] | None = None
    for socket in tmux.sockets():
        for got in tmux.list_panes(socket):
            if got.dead or not got.pid:
                continue
            if kids is None:
                kids = children()
            if not _runs_claude(got.pid, kids):
                continue
            name = names.from_dir(got.path)
            digest = hashlib.sha256(f"{socket}\0{got.pane}".encode()).hexdigest()[:16]
            sid = f"tmux-{digest}-{got.pane.lstrip('%')}"
            live = Live(name, tmux.Pane(socket, got.pane), sid, None, _now(), "discover")
            found.append(live)
            where[live.pane] = got.path
    if save:
        hooked = {x.pane: x for x in registered(store) if x.source != "discover"}
        for live in found:
            if live.pane in hooked and hooked[live.pane].name == live.name:
                continue  # the hooks know this pane already, under the same name
            store.put_session(
                live.session_id,
                {
                    "name": live.name,
                    "session_id": live.session_id,
                    "cwd": where.get(live.pane),
                    "tmux": f"{live.pane.socket},0,0",
                    "tmux_pane": live.pane.pane,
                    "last_seen": live.last_seen,
                    "source": "discover",
                    "pid": None,
                },
            )
    return found


def find(store: Store, name: str) -> tuple[Live, tmux.PaneInfo] | None:
    """NAME's live pane (newest registration whose pane is alive); discover as a fallback."""
    for live in candidates(store, name):
        got = tmux.info(live.pane)
        if pane_alive(live, got):
            assert got is not None
            return live, got
    for live in discover(store, save=True):
        if live.name == name:
            got = tmux.info(live.pane)
            if pane_alive(live, got):
                assert got is not None
                return live, got
    return None
