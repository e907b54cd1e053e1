"""Live-session commands (SPEC §8): discover, cancel, approve, process."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import names
from ..render import neutralise
from . import verbs
from .app import app, get_mailbox, out, resolve_me, warn

Name = Annotated[str, typer.Argument(metavar="NAME", help="The live session's name.")]


@app.command()
def discover(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per pane.")] = False,
) -> None:
    """Find tmux panes running Claude Code and register them as live sessions.

    Scans every pane of your tmux servers; a pane's name is the normalised
    basename of its directory.

    Example: kei message discover
    """
    from ..live.registry import discover as scan

    found = scan(get_mailbox().store, save=True)
    if as_json:
        import orjson

        for live in found:
            row = {"name": live.name, "socket": live.pane.socket, "pane": live.pane.pane}
            out(orjson.dumps(row).decode())
        return
    if not found:
        out("no tmux panes running Claude Code found")
        return
    for live in found:
        out(f"{live.name}\t{live.pane.pane}\t{live.pane.socket}")


@app.command()
def cancel(
    name: Name,
    text: Annotated[
        list[str] | None,
        typer.Argument(metavar="[TEXT]...", help="Sent as `send --live` would, once idle."),
    ] = None,
    sender: Annotated[
        str | None, typer.Option("--from", metavar="NAME", help="Send TEXT as NAME.")
    ] = None,
) -> None:
    """Press Escape in NAME's pane: interrupts a turn, or denies a permission prompt.

    Returns within 3 s. NAME stays stopped: mail that waits is not pushed into
    it (its wake waiter holds off) until its next prompt. With TEXT, once NAME
    is idle, clears its prompt (Claude Code puts the interrupted prompt back
    there) and sends TEXT live.

    Example: kei message cancel frontend 'stop, the API changed: see #1795248002625564'
    """
    from ..agents.claude import waiter
    from ..live import deliver  # tmux plumbing: only for the live commands (issue 6)

    name = names.validate(name)
    mb = get_mailbox()
    words = list(text or [])
    body = " ".join(words)
    me = resolve_me(sender) if body else None
    # before Escape: the waiter must not wake the session the moment it stops (#14)
    last = mb.recent(1)
    waiter.hold(name, last[-1]["id"] if last else 0)
    before, after = deliver.cancel(mb, name, wait=15.0 if body else 2.0, settle=2.0 if body else 0)
    if before in ("idle", "draft"):
        out(f"-> {name} is {before}: nothing to interrupt")
    else:
        out(f"-> sent Escape to {name} (now {after.state})")
    if not body:
        out(f"-> {name} stays stopped: mail that waits comes with its next prompt or new mail")
        return
    waiter.release(name)  # TEXT is what it goes on with
    # only what the interrupt put back is cleared; a draft someone was typing stays
    interrupted = before not in ("idle", "draft")
    if interrupted and after.state == "draft" and not deliver.clear_composer(mb, name):
        warn(f"note: could not clear {name}'s prompt; the message is queued")
    assert me is not None
    armed = verbs.prepare_live(mb, name)
    rec = mb.send(body, to=name, sender=me)
    verbs.sent_line(rec, False)
    raise typer.Exit(verbs.deliver_live(mb, name, None, rec, armed=armed))


@app.command()
def approve(
    name: Name,
    choice: Annotated[
        int, typer.Argument(metavar="[1|2]", help="1 yes (default); 2 yes, and don't ask again.")
    ] = 1,
) -> None:
    """Answer NAME's permission prompt: 1 yes, 2 yes and don't ask again.

    Exit 1 when NAME is not waiting; 2 is refused when the prompt's option 2 is
    not a yes. At Claude Code's "Auto mode can't check actions" dialog, 1 stays
    in auto mode and approves the action; 2 is refused there.

    Example: kei message approve frontend
    """
    from ..live.deliver import approve as press  # tmux plumbing (issue 6)

    label = press(get_mailbox(), names.validate(name), choice)
    out(f"-> chose {choice} ({neutralise(label, multiline=False)}) in {name}'s prompt")


@app.command()
def process(
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep going, in the foreground, until stopped.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", metavar="S", help="Seconds between passes.", min=0.1)
    ] = 2.0,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the running watcher.")] = False,
) -> None:
    """Deliver queued messages to every idle live session (one pass).

    --watch keeps delivering as sessions turn idle (one watcher per mailbox;
    SIGTERM or --stop ends it).

    Example: kei message process --watch --interval 2
    """
    from ..live import watch as watcher

    if stop:
        pid = watcher.stop_watcher()
        out(f"-> stopped the watcher (pid {pid})")
        return
    mb = get_mailbox()

    def report(done: dict[str, int | str]) -> None:
        for name, what in sorted(done.items()):
            if isinstance(what, int):
                out(f"-> typed {what} message{'s' if what != 1 else ''} into {name}'s pane")
            else:
                out(f"-> {name}: {what}")

    if watch:
        watcher.watch(mb, interval, on_pass=report)
        return
    from ..live.deliver import process as one_pass

    report(one_pass(mb))
