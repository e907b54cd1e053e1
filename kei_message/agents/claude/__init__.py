"""Claude Code: hooks (``hooks``, console script ``kei-message-hook``) and their
fast path (``quick``), the log they fail into (``hooklog``), the text they
inject (``prompt``), the asyncRewake waiter (``waiter``), session
registration (``sessions``) and ``kei message install`` (``install``).

Nothing is imported here: ``hooks`` keeps its own import path lean (issue 6).
"""
