"""Live delivery (SPEC §8): type a name's unread into its idle Claude Code pane.

``deliver_live`` after ``send --live`` has appended the record:

1. Find NAME's pane (registry) and read its screen. No pane, busy, draft or
   unknown: ``Queued`` (exit 6), the message waits in the mailbox. A permission
   prompt: ``Rejected`` (exit 5), it waits too.
2. Under NAME's reader lock, read the screen again (someone may have typed
   meanwhile), compose NAME's unread with ``render.prompt`` (the hooks' text and
   budget) and paste it as one bracketed paste.
3. Once the text shows in the composer, mark those messages delivered and leave
   the lock, which moves the cursor. Only then press Enter: Claude Code runs
   the UserPromptSubmit hook the moment the prompt is submitted, and that hook
   must find nothing left to inject twice.
4. Enter is checked: if the text still sits in the composer (some builds take an
   Enter that arrives right after a paste as part of it), press Enter again, a
   bounded number of times. The text itself is never typed twice.

If the pasted text never shows up, nothing is marked read (at least once beats
lost).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .. import names, render, settings
from ..errors import NoLiveSession, NothingToReturn, Queued, Rejected, UsageError
from ..mailbox import Mailbox
from ..stores.holds import hold_mark, release
from . import screen, tmux
from .registry import Live, candidates, find, pane_alive, registered

log = logging.getLogger("kei_message")

ENTER_PAUSE = 0.15  # between the paste and Enter
ENTER_TRIES = 4  # Enter presses at most, in all
SHOW_TIMEOUT = 3.0  # for pasted text to appear in the composer
SETTLE = 1.0  # for a pressed Enter to clear the composer
APPROVE_TIMEOUT = 10.0  # for a prompt to hold still before keys go in
KEY_PAUSE = 0.3  # a prompt unchanged this long takes keys; and between keys
KEY_SETTLE = 3.0  # for a pressed key to change the prompt
KEY_TRIES = 3


def _wait_for(
    check: Callable[[], screen.Screen | None],
    want: Callable[[screen.Screen], bool],
    timeout: float,
    step: float = 0.05,
) -> screen.Screen | None:
    """Poll ``check`` until ``want`` holds (returns that screen) or ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last is not None and want(last):
            return last
        if time.monotonic() >= deadline:
            return last
        time.sleep(step)


def look(live: Live) -> screen.Screen:
    """The pane's screen now; ``gone`` when the pane or its Claude Code is gone."""
    got = tmux.info(live.pane)
    if not pane_alive(live, got):
        return screen.Screen(screen.GONE, "", {})
    assert got is not None
    try:
        text = tmux.capture(live.pane)
    except tmux.TmuxError:
        return screen.Screen(screen.GONE, "", {})
    return screen.read(text, in_mode=got.in_mode)


def state_of(mailbox: Mailbox, name: str, session: str | None = None) -> str | None:
    """NAME's pane state now (``session``: that session's pane), or None when none is known."""
    live = _locate(mailbox, name, session)
    return None if live is None else look(live).state


def _locate(mailbox: Mailbox, name: str, session: str | None = None) -> Live | None:
    """NAME's newest live pane; ``session``: the pane of that session only (#16)."""
    name = names.validate(name)
    if session is not None:
        for live in candidates(mailbox.store, name):
            if live.session_id == session and pane_alive(live, tmux.info(live.pane)):
                return live
        return None
    got = find(mailbox.store, name)
    return got[0] if got else None


def _refuse(name: str, now: screen.Screen) -> None:
    state = now.state
    if state == screen.WAITING:
        what = (
            "Claude Code's auto-mode dialog (\"Auto mode can't check actions\")"
            if now.kind == screen.AUTO_CHECK
            else "a permission prompt"
        )
        raise Rejected(
            f"{name} is waiting on {what}; the message stays queued "
            f"(answer it with `kei message approve {name}`)"
        )
    if state != screen.IDLE:
        why = {
            screen.BUSY: "is busy",
            screen.DRAFT: "has unsent text in its prompt",
            screen.GONE: "has no live pane any more",
        }.get(state, "is in a state that cannot be read")
        raise Queued(f"{name} {why}; the message waits in the mailbox")


def deliver_live(mailbox: Mailbox, name: str, session: str | None = None) -> int:
    """Type all of NAME's unread into its idle pane as one prompt; return how many.

    ``session``: the pane of that session of NAME (``@NAME/SESSION``), else the newest.
    Mail for another session of NAME stays for it (SPEC §11).

    Raises Queued (6) when there is no live pane or it is not idle, Rejected (5)
    at a permission prompt.
    """
    live = _locate(mailbox, name, session)
    if live is None:
        raise Queued(f"no live tmux session for {name}; the message waits in the mailbox")
    _refuse(live.name, look(live))
    with mailbox.consuming(live.name, how="live", session=live.session_id or None) as batch:
        if not batch.messages:
            return 0
        # again under the lock: a concurrent sender, the user or a turn may have begun
        _refuse(live.name, look(live))
        text, n = render.prompt(live.name, batch.records, settings.hook_budget())
        try:
            tmux.paste(live.pane, text)
        except tmux.TmuxError as exc:
            raise Queued(f"could not type into {live.name}'s pane ({exc}); it waits") from exc
        shown = _wait_for(lambda: look(live), lambda s: s.state == screen.DRAFT, SHOW_TIMEOUT)
        if shown is None or shown.state != screen.DRAFT:
            raise Queued(
                f"the text typed into {live.name}'s pane did not show up; the messages stay unread"
            )
        batch.deliver(batch.messages[:n])
    # the cursor has moved: the UserPromptSubmit hook will not inject these again
    _submit(live)
    return n


def _submit(live: Live) -> None:
    for attempt in range(ENTER_TRIES):
        time.sleep(ENTER_PAUSE)
        try:
            tmux.keys(live.pane, "Enter")
        except tmux.TmuxError as exc:
            raise Queued(f"{live.name}'s pane went away before Enter ({exc})") from exc
        after = _wait_for(lambda: look(live), lambda s: s.state != screen.DRAFT, SETTLE)
        if after is not None and after.state != screen.DRAFT:
            return
        log.info("Enter %d did not submit %s's prompt; pressing it again", attempt + 1, live.name)
    raise Queued(
        f"typed into {live.name}'s prompt, but Enter did not submit it; the text waits there"
    )


# ------------------------------------------------------------------ cancel, approve
def _require(mailbox: Mailbox, name: str) -> tuple[Live, screen.Screen]:
    live = _locate(mailbox, name)
    if live is None:
        raise NoLiveSession(f"no live tmux session for {name}")
    now = look(live)
    if now.state == screen.GONE:
        raise NoLiveSession(f"{name}'s tmux pane is gone")
    got = tmux.info(live.pane)
    if got is not None and got.in_mode:
        # keys would go to tmux's copy mode, not to Claude Code
        tmux.run(live.pane.socket, "send-keys", "-t", live.pane.pane, "-X", "cancel")
        now = look(live)
    return live, now


def cancel(
    mailbox: Mailbox, name: str, *, wait: float = 2.0, settle: float = 0.0
) -> tuple[str, screen.Screen]:
    """Escape into NAME's pane: interrupts a turn or denies a permission prompt.

    Returns the state before, and the screen once the session is idle again (or
    ``wait`` runs out). An idle pane gets no Escape. ``settle``: then wait up to
    that long for the screen to hold still, so the interrupted prompt Claude Code
    puts back into the composer is there to see.
    """
    live, now = _require(mailbox, name)
    if now.state in (screen.IDLE, screen.DRAFT):
        # nothing to interrupt; and a second Escape soon after opens Claude Code's rewind menu
        return now.state, now
    tmux.keys(live.pane, "Escape")
    done = _wait_for(
        lambda: look(live), lambda s: s.state in (screen.IDLE, screen.DRAFT), wait, 0.1
    )
    if done is not None and settle > 0:
        # The prompt comes back a moment after the box turns idle: on a loaded machine
        # `cancel NAME TEXT` saw "idle", skipped the clearing, and then found the old
        # prompt there and queued TEXT (exit 6; CI, #14).
        done = _still(live, done, settle)
    return now.state, done or screen.Screen(screen.UNKNOWN, "", {})


def _still(live: Live, now: screen.Screen, timeout: float, quiet: float = 0.5) -> screen.Screen:
    """The screen once it has read the same for ``quiet`` seconds (at most ``timeout``)."""
    since, last = time.monotonic(), now
    deadline = since + timeout
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.05)
        got = look(live)
        if got != last:
            since, last = time.monotonic(), got
    return last


def clear_composer(mailbox: Mailbox, name: str, *, rounds: int = 40) -> bool:
    """Empty NAME's composer (Claude Code puts an interrupted prompt back there).

    Deletes line by line (``C-u`` then Backspace to join the line above), checking
    the screen between rounds; never ``C-c``, which exits Claude Code when pressed
    twice on an empty prompt.
    """
    live, now = _require(mailbox, name)
    for _ in range(rounds):
        if now.state != screen.DRAFT:
            return now.state == screen.IDLE
        tmux.keys(live.pane, "End", "C-u", "BSpace")
        got = _wait_for(lambda: look(live), lambda s: s.state != screen.DRAFT, 0.3)
        if got is None:
            return False
        now = got
    return now.state == screen.IDLE


def approve(mailbox: Mailbox, name: str, choice: int = 1) -> str:
    """Answer NAME's permission prompt with option ``choice`` (1 yes, 2 yes-always).

    At 2.1.332's auto-mode dialog ("Auto mode can't check actions in this
    session") choice 1 presses Enter (stay in auto mode, approve each action
    yourself) and then answers the per-action ``No`` / ``Yes`` prompt that follows
    with its yes; choice 2 is refused there: the dialog has no "don't ask again".
    """
    if choice not in (1, 2):
        raise UsageError("approve takes 1 (yes) or 2 (yes, and don't ask again)")
    live, now = _require(mailbox, name)
    if now.state != screen.WAITING:
        raise NothingToReturn(f"{name} is not waiting on a permission prompt ({now.state})")
    if now.kind == screen.AUTO_CHECK and choice != 1:
        raise UsageError(
            f"{name} is at Claude Code's \"Auto mode can't check actions\" dialog, which has "
            f'no "don\'t ask again"; nothing was pressed (use `kei message approve {name}`)'
        )
    now = _steady(live, now)
    if now.kind != screen.AUTO_CHECK:
        return _answer(live, now, choice)
    # Enter: stay in auto mode and approve each action yourself. A key that lands
    # while the dialog is still mounting is dropped, so press again while it stays.
    after = now
    for _ in range(KEY_TRIES):
        tmux.keys(live.pane, "Enter")
        after = (
            _wait_for(lambda: look(live), lambda s: s.kind != screen.AUTO_CHECK, KEY_SETTLE, 0.05)
            or now
        )
        if after.kind != screen.AUTO_CHECK:
            break
    else:
        raise UsageError(f"{name}'s auto-mode dialog did not close on Enter; nothing else pressed")
    if after.state != screen.WAITING:
        return "stay in auto mode"  # the action needed no further approval
    return "stay in auto mode, then " + _answer(live, _steady(live, after), choice)


def _steady(live: Live, now: screen.Screen) -> screen.Screen:
    """The prompt once it has shown unchanged for KEY_PAUSE: keys pressed into a
    prompt that is still mounting are dropped (2.1.332)."""
    since, last = time.monotonic(), now
    deadline = since + APPROVE_TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(0.05)
        got = look(live)
        if got != last:
            since, last = time.monotonic(), got
        elif time.monotonic() - since >= KEY_PAUSE:
            break
    if last.state != screen.WAITING:
        raise NothingToReturn(f"{live.name}'s prompt went away ({last.state}); nothing was pressed")
    return last


def _answer(live: Live, now: screen.Screen, choice: int) -> str:
    """Pick the yes of a numbered menu (its key) or of a ``❯`` select (arrows, then Enter)."""
    if now.kind != screen.SELECT:
        label = now.options.get(choice, "")
        if not screen.option_is_yes(label):
            raise UsageError(
                f"option {choice} of {live.name}'s prompt is not a yes "
                f"({label or 'missing'!r}); nothing was pressed"
            )
        tmux.keys(live.pane, str(choice))
        # exit codes tell the truth (§8): 0 once the prompt has taken the key. Never a
        # second press: a prompt that looks the same may be the next action's.
        after = _wait_for(lambda: look(live), now.__ne__, KEY_SETTLE, 0.05)
        if after is None or after == now:
            raise UsageError(
                f"pressed {choice} ({label!r}) but {live.name}'s prompt still shows after "
                f"{KEY_SETTLE:g} s; look at the pane"
            )
        return label
    # unnumbered (2.1.332 auto mode: "❯ No" / "Yes"): choice 1 is the first yes,
    # 2 a second one ("Yes, and don't ask again"), reached with the arrow keys
    yeses = [n for n, label in sorted(now.options.items()) if screen.option_is_yes(label)]
    if len(yeses) < choice:
        offered = ", ".join(repr(x) for x in now.options.values())
        raise UsageError(
            f"{live.name}'s prompt offers no yes number {choice} ({offered}); nothing was pressed"
        )
    want = yeses[choice - 1]
    label = now.options[want]
    for _ in range(KEY_TRIES):
        # one arrow at a time, apart: an Enter in the same read as an arrow is lost and
        # the list starts over at "No" (2.1.332)
        for _ in range(abs(want - now.selected)):
            tmux.keys(live.pane, "Down" if want > now.selected else "Up")
            time.sleep(KEY_PAUSE)
        moved = _wait_for(lambda: look(live), lambda s: s.selected == want, KEY_SETTLE, 0.05)
        if moved is None or moved.kind != screen.SELECT or moved.selected != want:
            raise UsageError(
                f"could not move the selector to {label!r} in {live.name}'s prompt; "
                "Enter was not pressed"
            )
        time.sleep(KEY_PAUSE)
        if look(live) != moved:
            now = look(live)
            if now.kind != screen.SELECT:
                raise UsageError(f"{live.name}'s prompt changed; Enter was not pressed")
            continue  # it started over: move again
        tmux.keys(live.pane, "Enter")
        after = _wait_for(lambda: look(live), moved.__ne__, KEY_SETTLE, 0.05)
        if after is not None and after != moved:
            if after.kind == screen.SELECT and after.options == moved.options:
                now = after  # Enter was lost and the list started over: move again
                continue
            return label
    raise UsageError(f"{live.name}'s prompt did not take the answer {label!r}")


# ------------------------------------------------------------------ process
def process(mailbox: Mailbox) -> dict[str, int | str]:
    """One pass: deliver queued messages to every idle live session with unread.

    Returns, per name looked at, how many went in, or why not ("busy", ...;
    "held": ``cancel`` stopped it and only mail that waited then is unread).
    """
    results: dict[str, int | str] = {}
    for live in registered(mailbox.store):
        if live.name in results:
            continue  # the newest pane of a name with something for it decides
        try:
            if not mailbox.unread(live.name, session=live.session_id or None):
                continue
            mark = hold_mark(live.name)
            if mark is not None:
                if all(r["id"] <= mark for r in mailbox.unread(live.name)):
                    results[live.name] = "held"  # `cancel` stopped it: its next prompt
                    continue
                release(live.name)  # newer mail ends the hold, as for the waiter
            results[live.name] = deliver_live(mailbox, live.name, live.session_id or None)
        except (Queued, Rejected) as exc:
            results[live.name] = "waiting" if isinstance(exc, Rejected) else "queued"
            log.info("%s", exc)
    return results
