"""Waiting for the bus to grow, without spinning.

A gentle poll of the file size (one ``stat`` every few tens of ms, no reads)
wakes a waiter soon after an append at a cost no one notices.
"""

from __future__ import annotations

import os
import time
from typing import Any

POLL = 0.05


def wait_for_growth(store: Any, since: int, timeout: float) -> bool:
    """True once the bus (``store.location``) ends past logical position ``since``."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        if store.end() > since:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            os.stat(store.location)
        except FileNotFoundError:
            pass
        time.sleep(min(POLL, left))
