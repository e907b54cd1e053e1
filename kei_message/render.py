"""Text for people (escaped) and lines for machines (``--json``).

Nothing from a message reaches a terminal raw: control characters (C0 but
newline and tab, DEL, C1), and bidirectional overrides that could disguise
text, are shown as ``\\xNN`` / ``\\u202e`` escapes.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_UNSAFE_LINE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def neutralise(text: str, *, multiline: bool = True) -> str:
    """``text`` with every control character escaped; newlines kept when ``multiline``."""
    return (_UNSAFE if multiline else _UNSAFE_LINE).sub(_escape, text)
