"""Looking after a mailbox: ``doctor`` (its ``checks`` and ``report``), ``gc``, ``migrate``.

These look at every wing (the doctor checks Claude Code's hook registration
and the waiters' pid files too), so they sit above ``agents`` and ``live``.
"""
