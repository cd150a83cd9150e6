"""What the data readers say about a policy they applied (rows dropped, cells averaged, a gap in a series):
a warning the first time this process says it, then an info line.

The same table read again says nothing new: every trial of ``tsmoe tune`` reads the study's data, a Python
session may fit twice on one frame. As Python's own warnings are shown once per place by default, a note is
shown once per process and message; ``tsmoe -v`` (info logs) still shows every repeat.
"""

from __future__ import annotations

import logging

_said: set[tuple[str, str]] = set()


def note(log: logging.Logger, message: str, *args: object) -> None:
    """``log.warning(message, *args)`` the first time this process gives that text on that logger, else
    ``log.info``."""
    key = (log.name, message % args if args else message)
    (log.info if key in _said else log.warning)(message, *args)
    _said.add(key)


def forget() -> None:
    """Say every note again, as a new process would (tests)."""
    _said.clear()
