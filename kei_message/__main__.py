"""``python -m kei_message``: the same program as ``kei-message``."""

from kei_message.cli import main
from kei_message.lean import quick_exit

quick_exit(main)
