"""The one neutralising step between a record and a person, a model or a pane (#15).

Records come from other sessions, other people's scripts and, on Redis, other
machines: any field may hold any JSON value. Every output path takes its text
from here, whatever field it shows (``id``, ``ts``, ``from``, ``to``,
``kind``, ``reply_to``, ``body``, or one we do not know):

``text(value)`` / ``line(value)``
    Any value as a string a terminal shows as it is: control characters (C0
    but newline and tab, DEL, C1), bidirectional controls, line and paragraph
    separators and lone surrogates become visible escapes (``\\x1b``,
    ``\\u202e``). ``line`` also escapes newline and tab. For people (CLI).
``model(value)`` / ``model_line(value)``
    The same, and harness-looking tags defanged (``defang``). For text a model
    reads (hook, Stop, waiter, mid-turn, live typing).
``defang(text)``
    ``<system-reminder>``, ``</task-notification>``, ``< hook_prompt x=1>``…
    (case, spaces, ``-``/``_`` and attributes aside) lose their ``<``, which
    becomes ``‹``: a peer's text can never pass for Claude Code's own markup.
``url(text)``
    A store URL for a message or a log: its password (``user:PASSWORD@``,
    ``?password=``) shown as ``***``, on one line.
``pane(text)``
    What may be typed into a pane: no control character at all but the
    newlines of a multi-line prompt (they travel inside one bracketed paste,
    SPEC §8, where they are text, not keys); a tab becomes spaces, a carriage
    return a newline. ``ESC[201~`` can therefore never end the paste early.

Standard library only: the hooks import this on every prompt.
"""

from __future__ import annotations

TYPE_CHECKING = False  # `re` costs every command ~4 ms: imported on first need (issue 19)
if TYPE_CHECKING:
    import re

# C0 but \t \n, DEL, C1; bidi controls (ALM, LRM, RLM, embeddings and overrides,
# isolates); line/paragraph separators; BOM; interlinear annotation; lone surrogates.
_INVISIBLE = (
    "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ufeff\ufff9-\ufffb\ud800-\udfff"
)


_PATTERNS: dict[bool, re.Pattern[str]] = {}  # not functools.cache: ~1 ms to import (#19)


def _unsafe(keep_lines: bool) -> re.Pattern[str]:
    """What ``text`` (``keep_lines``: tab and newline allowed) or ``line`` escapes."""
    found = _PATTERNS.get(keep_lines)
    if found is None:
        import re

        low = "\x00-\x08\x0b-\x1f" if keep_lines else "\x00-\x1f"
        found = _PATTERNS[keep_lines] = re.compile(f"[{low}{_INVISIBLE}]")
    return found


def _plain(value: str, keep_lines: bool) -> bool:
    """Nothing to escape, found without a regex: printable ASCII (and tab, newline)."""
    if not value.isascii():
        return False
    if keep_lines and ("\n" in value or "\t" in value):
        value = value.replace("\n", "").replace("\t", "")
    return value.isprintable()


# Tags Claude Code (and the API around it) uses for its own text, and a few that
# models are trained to read as turn or tool structure. Words may be joined by
# "-", "_", a space or nothing; any case; any attributes.
HARNESS_TAGS = (
    "system-reminder",
    "system",
    "task-notification",
    "hook-prompt",
    "hook-context",
    "channel",
    "user-prompt-submit-hook",
    "command-name",
    "command-message",
    "command-args",
    "command-contents",
    "local-command-stdout",
    "local-command-stderr",
    "local-command-caveat",
    "bash-input",
    "bash-stdout",
    "bash-stderr",
    "function-calls",
    "function-results",
    "invoke",
    "parameter",
    "tool-use",
    "tool-result",
    "tool-use-error",
    "thinking",
    "new-diagnostics",
    "ide-selection",
    "ide-opened-file",
    "teammate-message",
    "user",
    "human",
    "assistant",
    "instructions",
    "system-instructions",
    "env",
    "policy",
)
_SEP = r"[-_\s]*"


_TAGS: list[tuple[re.Pattern[str], re.Pattern[str]]] = []


def _tag_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compiled on first use (a few ms): most messages hold no "<" at all."""
    if not _TAGS:
        _TAGS.append(_compile_tags())
    return _TAGS[0]


def _compile_tags() -> tuple[re.Pattern[str], re.Pattern[str]]:
    import re

    names = "|".join(
        _SEP.join(re.escape(w) for w in tag.split("-"))
        for tag in sorted(HARNESS_TAGS, key=len, reverse=True)
    )
    # "<", optional "/" and spaces, an optional namespace ("antml:"), a known name, then
    # anything but a letter or digit (so "<systemd>" and "<users>" stay as they are).
    tag = re.compile(
        rf"[<\uff1c\ufe64](?=\s*/?\s*(?:[a-z]+\s*:\s*)?(?:{names})(?![a-z0-9]))",
        re.IGNORECASE,
    )
    namespaced = re.compile(r"[<\uff1c\ufe64](?=\s*/?\s*antml\s*:)", re.IGNORECASE)
    return tag, namespaced


DEFANGED = "\u2039"  # ‹


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return str(value)
    import json

    try:  # a list or object from a foreign record: shown as JSON
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return repr(value)


def text(value: object) -> str:
    """``value`` as text with every control character escaped; newlines and tabs kept."""
    value = _str(value)
    return value if _plain(value, True) else _unsafe(True).sub(_escape, value)


def line(value: object) -> str:
    """``value`` as one line: control characters escaped, newlines and tabs too."""
    value = _str(value)
    return value if _plain(value, False) else _unsafe(False).sub(_escape, value)


def defang(value: str) -> str:
    """Harness-looking tags in ``value`` with ``<`` turned into ``‹``."""
    if "<" not in value and "\uff1c" not in value and "\ufe64" not in value:
        return value
    tag, namespaced = _tag_patterns()
    return namespaced.sub(DEFANGED, tag.sub(DEFANGED, value))


def model(value: object) -> str:
    """For a model: ``text`` and ``defang``."""
    return defang(text(value))


def model_line(value: object) -> str:
    """For a model, on one line: ``line`` and ``defang``."""
    return defang(line(value))


def pane(value: str) -> str:
    """Text safe to type into a pane: no control character but newline (see module doc)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return text(value)


def url(value: str) -> str:
    """``value`` (a store URL, perhaps malformed) without its password, on one line."""
    import re

    value = re.sub(r"(^|/)([^/@?#]*?):[^/@?#]*@", r"\1\2:***@", value, count=1)
    return line(re.sub(r"([?&]password=)[^&#]*", r"\1***", value, flags=re.IGNORECASE))
