"""One way to change an agent CLI's JSON config and give it back byte for byte (#17).

Claude Code's ``settings.json`` (and Codex's ``hooks.json``, Gemini CLI's
``settings.json``) are changed by ``install`` and given back by ``uninstall``
through here, whatever agent they belong to:

- ``load``: the data, the bytes, and the file's ``Style`` (indent or one line,
  separators, final newline, CRLF, BOM, non-ASCII kept or escaped). What
  install writes looks like what was there, so its diff is ours only, and a
  file written in a regular style comes back exactly even without a backup.
- ``make_backup`` before a write: the file as kei-message found it, as
  ``FILE.kei-message-backup-STAMP``. One is kept (``prune_backups``): a file
  already carrying our entries is not backed up over the backup of the file
  before we touched it, and older backups go.
- ``matching_backup`` for uninstall: the backup whose content, less what
  kei-message manages, equals the file's, less the same. Its bytes go back and
  it goes; when nothing is left and there is no backup, install created the
  file, and it is removed.
"""

from __future__ import annotations

import codecs
import glob
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BACKUP_SUFFIX = ".kei-message-backup"
_BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class Style:
    """How a JSON file is written; ``dumps`` writes data the same way."""

    indent: int | str | None = 2  # None: all on one line; a str: e.g. a tab
    item_sep: str = ", "  # between items, on one line
    key_sep: str = ": "
    newline: str = "\n"
    final_newline: bool = True
    bom: bool = False
    ascii_only: bool = False

    def dumps(self, data: Any) -> bytes:
        text = json.dumps(
            data,
            indent=self.indent,
            separators=(self.item_sep if self.indent is None else ",", self.key_sep),
            ensure_ascii=self.ascii_only,
        )
        if self.final_newline:
            text += "\n"
        if self.newline != "\n":
            text = text.replace("\n", self.newline)  # JSON strings hold no raw newline
        raw = text.encode("utf-8")
        return _BOM + raw if self.bom else raw


def _first_outside_strings(text: str, char: str) -> int:
    """Index of the first ``char`` not inside a JSON string; -1 when none."""
    in_string = escaped = False
    for i, c in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == char:
            return i
    return -1


def detect(raw: bytes) -> Style:
    """The style ``raw`` is written in (a new or empty file: Claude Code's own, 2 spaces)."""
    bom = raw.startswith(_BOM)
    text = (raw[len(_BOM) :] if bom else raw).decode("utf-8", "replace")
    if not text.strip():
        return Style()
    newline = "\r\n" if "\r\n" in text else "\n"
    text = text.replace("\r\n", "\n")
    body = text.strip()
    indent: int | str | None
    if "\n" not in body:
        indent = None
    else:
        m = re.search(r"\n([ \t]*)\S", body)
        ws = m.group(1) if m else ""
        indent = len(ws) if set(ws) <= {" "} else ws
    colon = _first_outside_strings(body, ":")
    key_sep = ": " if colon < 0 or body[colon + 1 : colon + 2] == " " else ":"
    comma = _first_outside_strings(body, ",")
    item_sep = ", " if comma < 0 or body[comma + 1 : comma + 2] == " " else ","
    non_ascii = any(ord(c) > 127 for c in text)
    return Style(
        indent=indent,
        item_sep=item_sep,
        key_sep=key_sep,
        newline=newline,
        final_newline=text.endswith("\n"),
        bom=bom,
        ascii_only=not non_ascii and "\\u" in text,
    )


@dataclass
class Loaded:
    """A JSON file as found: None data and raw when it does not exist."""

    path: str
    data: dict[str, Any] | None
    raw: bytes | None
    style: Style


def parse(raw: bytes) -> Any:
    """JSON from bytes; an empty (or blank) file is ``{}``; a UTF-8 BOM is allowed."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    return json.loads(raw) if raw.strip() else {}


# ----------------------------------------------------------------------------- backups
def backups(path: str) -> list[str]:
    """Every kei-message backup of ``path`` (through a symlink: of its target), newest first."""
    real = os.path.realpath(path)
    found = glob.glob(glob.escape(real + BACKUP_SUFFIX) + "-*")
    return sorted(found, key=lambda p: (_mtime(p), p), reverse=True)


def _mtime(path: str) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def make_backup(path: str) -> str:
    """Copy ``path`` (its target) to a new ``…kei-message-backup-STAMP``; its path."""
    real = os.path.realpath(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    backup = f"{real}{BACKUP_SUFFIX}-{stamp}"
    n = 1
    while os.path.lexists(backup):
        n += 1
        backup = f"{real}{BACKUP_SUFFIX}-{stamp}.{n}"
    shutil.copy2(real, backup)
    return backup


def prune_backups(path: str, keep: str | None) -> None:
    """Remove every kei-message backup of ``path`` but ``keep`` (#17: they piled up)."""
    for old in backups(path):
        if keep is None or os.path.realpath(old) != os.path.realpath(keep):
            try:
                os.unlink(old)
            except FileNotFoundError:
                pass


def matching_backup(
    path: str,
    data: dict[str, Any],
    unmanaged: Callable[[dict[str, Any]], dict[str, Any]],
    clean: Callable[[dict[str, Any]], bool],
) -> tuple[str, bytes] | None:
    """The newest ``clean`` backup whose ``unmanaged`` content equals ``unmanaged(data)``,
    and its bytes.

    ``unmanaged`` takes out everything kei-message manages (our hooks, what
    install replaced, the permission it offers): when nothing else changed since
    the backup, the backup's bytes are the file to give back. A backup that is
    not ``clean`` (it holds our own entries: a reinstall backed up a file an
    earlier install wrote) is never given back: its bytes are not the user's.
    """
    want = unmanaged(data)
    for backup in clean_backups(path, clean):
        with open(backup, "rb") as fh:
            raw = fh.read()
        if unmanaged(parse(raw)) == want:
            return backup, raw
    return None


def clean_backups(path: str, clean: Callable[[dict[str, Any]], bool]) -> list[str]:
    """The backups of ``path`` that parse as a JSON object and are ``clean``, newest first."""
    found = []
    for backup in backups(path):
        try:
            with open(backup, "rb") as fh:
                data = parse(fh.read())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and clean(data):
            found.append(backup)
    return found
