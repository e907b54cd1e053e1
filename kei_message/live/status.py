"""Pane states: the ``state`` column of ``who`` (one capture per live pane, every tmux
call bounded), and ``own_state``: the pane a hook process runs in, read by the wake
waiter before it hands mail to its session (#14)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from ..stores.base import Store
from . import screen, tmux
from .deliver import look
from .registry import registered

log = logging.getLogger("kei_message")


def states(store: Store) -> dict[str, str]:
    """NAME -> state, for every name with a registered tmux pane.

    A name with several panes shows its best: a live pane over a gone one,
    the newest registration first.
    """
    out: dict[str, str] = {}
    lives = registered(store)
    if not lives or not tmux.available():
        return out
    for live in lives:
        if out.get(live.name, screen.GONE) != screen.GONE:
            continue
        try:
            out[live.name] = look(live).state
        except Exception as exc:  # `who` must list names whatever one pane does
            log.warning("reading %s's pane: %s", live.name, exc)
            out[live.name] = screen.UNKNOWN
    return out


def session_states(store: Store) -> dict[str, str]:
    """SESSION ID -> state of its pane, for every session with a registered pane (#16)."""
    out: dict[str, str] = {}
    lives = registered(store)
    if not lives or not tmux.available():
        return out
    for live in lives:
        if not live.session_id or live.session_id in out:
            continue
        try:
            out[live.session_id] = look(live).state
        except Exception as exc:  # `who` must list sessions whatever one pane does
            log.warning("reading %s's pane: %s", live.name, exc)
            out[live.session_id] = screen.UNKNOWN
    return out


def own_pane(env: Mapping[str, str] = os.environ) -> tmux.Pane | None:
    """The pane this process runs in (``$TMUX`` and ``$TMUX_PANE``, which an agent CLI
    started in tmux passes to its hooks); None outside tmux."""
    socket = tmux.socket_from_env(env.get("TMUX"))
    pane = env.get("TMUX_PANE") or ""
    if not socket or not pane.startswith("%") or not pane[1:].isdigit():
        return None
    return tmux.Pane(socket, pane)


def own_state(pane: tmux.Pane) -> str:
    """The state of ``pane`` now (``screen`` constants); ``gone`` when it cannot be read.

    Copy mode does not matter here: a wake reaches the session without a key press.
    """
    try:
        return screen.read(tmux.capture(pane)).state
    except tmux.TmuxError:
        return screen.GONE
