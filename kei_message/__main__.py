"""``python -m kei_message``: the same program as ``kei-message``."""

from kei_message.cli import main

main()
