"""The data readers' policy notes: a warning once per process, then info lines."""

from __future__ import annotations

import logging

from tsmoe.data.notes import note


def test_a_note_is_a_warning_once_then_info(caplog):
    log = logging.getLogger("tsmoe.data.sources.test")
    with caplog.at_level(logging.INFO, logger="tsmoe.data.sources.test"):
        for _ in range(3):
            note(log, "data.observations: %s: %s", "cells averaged", 4)
        note(log, "data.observations: %s: %s", "cells averaged", 5)  # another count: another note
    levels = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert levels == [
        ("WARNING", "data.observations: cells averaged: 4"),
        ("INFO", "data.observations: cells averaged: 4"),
        ("INFO", "data.observations: cells averaged: 4"),
        ("WARNING", "data.observations: cells averaged: 5"),
    ]
