"""Seeing the team (SPEC §14): ``kei message top`` and ``kei message web``.

``state.build_state`` reads the mailbox through its public face into one dict;
``top`` draws it in a terminal with rich, ``web`` serves it on 127.0.0.1 to a
page in ``static/``; ``watch`` tells both when to redraw (inotify, or the
store's blocking read). Nothing here runs unless one of the two commands does:
no hook, no background process.
"""
