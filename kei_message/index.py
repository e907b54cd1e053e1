"""The names index: every name seen on the bus, kept current incrementally.

``index/names.json`` holds ``{"pos": P, "names": {NAME: {...}}}``: the names
seen in the bus up to logical position ``P``. Reading it catches up on what
was appended since (usually one record: the send that just ran), so ``who``
and the unknown-recipient note never scan the whole bus.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from . import paths


def names_index(store: Any) -> dict[str, dict[str, Any]]:
    path = os.path.join(store.prepare("index"), "names.json")
    data: dict[str, Any] = {"pos": None, "names": {}}
    try:
        fd = paths.open_file(path, os.O_RDONLY)
    except FileNotFoundError:
        pass
    else:
        try:
            loaded = orjson.loads(os.read(fd, 64 << 20))
            if isinstance(loaded, dict) and isinstance(loaded.get("names"), dict):
                data = loaded
        except orjson.JSONDecodeError:
            pass  # rebuilt below
        finally:
            os.close(fd)
    end = store.end()
    pos = data.get("pos")
    if pos is not None and store.order(pos) > store.order(end):
        data = {"pos": None, "names": {}}  # the bus was replaced: start over
        pos = None
    names: dict[str, dict[str, Any]] = data["names"]
    changed = False
    for entry in store.scan(pos, end):
        rec = entry.record
        if rec is None:
            continue
        changed = True
        for role in ("from", "to"):
            name = rec[role]
            if name == "all":
                continue
            info = names.setdefault(name, {"sent": 0, "received": 0})
            info["sent" if role == "from" else "received"] += 1
            info["last_id"] = rec["id"]
            info["last_ts"] = rec.get("ts", "")
    if changed or pos != end:
        data["pos"] = end
        try:
            paths.write_atomic(path, orjson.dumps(data))
        except Exception:  # an index we cannot save is rebuilt next time
            pass
    return names
