"""The names index: `who` and the unknown-recipient note without scanning the bus (issue 6).

Budget: about 5 s.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from kei_message.mailbox import Mailbox
from kei_message.presence import who
from kei_message.stores import names_index as index
from kei_message.stores.jsonl import JsonlStore


@pytest.fixture
def mailbox(mailbox_dir: Path) -> Mailbox:
    """The names index belongs to the JSONL store (Redis keeps its own)."""
    return Mailbox(JsonlStore())


def unread_by_who(mb: Mailbox) -> dict[str, int]:
    return {r["name"]: r["unread"] for r in who(mb)}


def test_names_seen_with_counts(mailbox: Mailbox) -> None:
    mailbox.send("a", to="bob", sender="alice")
    mailbox.send("b", to="all", sender="carol")
    found = mailbox.known_names()
    assert set(found) == {"alice", "bob", "carol"}
    assert found["alice"]["sent"] == 1 and found["bob"]["received"] == 1
    assert found["bob"]["inbox"] == 1
    assert found["carol"]["last_ts"].endswith("Z")


def test_catches_up_from_where_it_was(mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(20):
        mailbox.send(f"m{i}", to="bob", sender="alice")
    mailbox.known_names()
    store = mailbox.store
    end = store.end()
    starts: list[Any] = []
    real = store.scan

    def spy(after: Any, until: Any = None, **kw: Any) -> Any:
        starts.append(after)
        return real(after, until, **kw)

    monkeypatch.setattr(store, "scan", spy)
    mailbox.send("new", to="dave", sender="alice")
    assert "dave" in mailbox.known_names()
    assert starts == [end]  # only what was appended since


def test_a_corrupt_index_is_rebuilt(mailbox: Mailbox, mailbox_dir: Path) -> None:
    mailbox.send("a", to="bob", sender="alice")
    mailbox.known_names()
    (mailbox_dir / "index" / "names.json").write_text("{not json")
    assert set(mailbox.known_names()) == {"alice", "bob"}
    assert json.loads((mailbox_dir / "index" / "names.json").read_text())["v"] == index.VERSION


def test_who_unread_matches_count_for_every_kind_of_reader(
    mailbox: Mailbox, mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers with and without cursors, self-sent mail, old and new broadcasts."""
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", "1h")
    old = int((time.time() - 3 * 3600) * 1e6)
    rows = [
        {
            "id": old,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(old / 1e6)),
            "from": "alice",
            "to": "all",
            "body": "old broadcast",
        },
        {
            "id": old + 1,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(old / 1e6)),
            "from": "alice",
            "to": "erin",
            "body": "old personal",
        },
    ]
    mailbox_dir.mkdir(mode=0o700, exist_ok=True)
    with open(mailbox_dir / "messages.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    (mailbox_dir / "messages.jsonl").chmod(0o600)
    rng = random.Random(6)
    people = ["alice", "bob", "carol", "dave", "erin"]
    for i in range(60):
        sender = rng.choice(people)
        to = rng.choice([*people, "all", "all"])
        mailbox.send(f"m{i}", to=to, sender=sender)
        if i % 17 == 0:
            mailbox.read(rng.choice(people))
        if i % 23 == 0:
            mailbox.pop(rng.choice(["bob", "carol"])) if mailbox.count("bob") else None
    JsonlStore().put_session("s", {"name": "frank", "session_id": "s"})
    expected = {name: mailbox.count(name) for name in [*people, "frank"]}
    assert unread_by_who(mailbox) == expected
    assert expected["frank"] > 0  # broadcasts of the last hour, nothing older


def test_who_does_not_scan_for_names_without_a_cursor(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(30):
        mailbox.send(f"m{i}", to="bob", sender="alice")
    mailbox.read("alice")
    who(mailbox)  # builds the index once
    store = mailbox.store
    starts: list[Any] = []
    real = store.scan

    def spy(after: Any, until: Any = None, **kw: Any) -> Any:
        starts.append(after)
        return real(after, until, **kw)

    monkeypatch.setattr(store, "scan", spy)
    assert unread_by_who(mailbox) == {"alice": 0, "bob": 30}
    assert None not in starts  # no read from the start of the bus


def test_too_many_broadcasts_falls_back_to_counting(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "MAX_BROADCASTS", 5)
    for i in range(12):
        mailbox.send(f"b{i}", to="all", sender="alice")
    assert unread_by_who(mailbox) == {"alice": 0}
    JsonlStore().put_session("s", {"name": "bob", "session_id": "s"})
    assert unread_by_who(mailbox) == {"alice": 0, "bob": 12}
