"""Where a command writes its table of predictions (``tsmoe predict -o``, ``tsmoe stream -o``, ``tsmoe evaluate
--out``), and how: never over one of its inputs, a folder or a user's other file, and whole or not at all.

- an output that is one of the inputs (however spelt), a folder, or a path under a file is refused before
  anything is read;
- an existing file is replaced only where it is the command's own kind of output, or ``--overwrite`` says so
  (:func:`check_replaceable`);
- a path ending ``.parquet`` or ``.pq`` is written as Parquet, any other as CSV, through a temporary file
  renamed into place (:func:`write_table`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from tsmoe import io as run_io
from tsmoe.data.table_files import file_columns, is_parquet
from tsmoe.errors import DataError, TsmoeError


def check_output_file(out: Path, inputs: list[Path], flag: str = "-o") -> None:
    """Refuse an output (given as ``flag``) that is a folder, lies under a file, or is one of the inputs
    (however spelt)."""
    if out.is_dir():
        raise TsmoeError(f"{flag} '{out}' is a folder; give the path of the CSV file to write")
    parent = next((p for p in out.resolve().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise TsmoeError(f"{flag} '{out}': '{parent}' is a file, so nothing can be written under it")
    for given in inputs:
        hard_linked = out.exists() and given.exists() and os.path.samefile(out, given)
        if out.resolve() == given.resolve() or hard_linked:
            raise TsmoeError(f"{flag} '{out}' is the input '{given}'; write the predictions to another file")


def check_replaceable(out: Path, header: list[str] | None, overwrite: bool) -> None:
    """Refuse to replace a file at ``out`` unless it is this command's kind of output, written before, or
    ``overwrite`` says so: a user's other file is never lost to a mistyped ``-o``. A table (``header``: the
    columns about to be written) replaces one of predictions (a ``step``, ``probability`` or ``prediction``
    column, which no table of series or observations needs) with the same first column, whose every column
    is one of these or a variant of one (``OT_lo_90`` of ``OT``, ``probability_low`` of ``probability``):
    running the command again, with or without intervals, per entity or per step, replaces its own output,
    while series, observations, labels or anything else stay. ``header`` None: an ensemble's metrics (JSON
    with its ``runs``)."""
    if overwrite or not out.is_file() or out.stat().st_size == 0:  # an empty file holds nothing to lose
        return
    if header is None:  # tsmoe evaluate --out
        try:
            if "runs" in json.loads(out.read_text(encoding="utf-8")):
                return
        except (ValueError, TypeError, UnicodeDecodeError):
            pass
        held = "not an ensemble's metrics written by tsmoe evaluate"
    else:
        try:
            old = file_columns(out)
        except DataError:  # not a readable table: not one of ours
            old = []
        predicted = {"step", "probability", "prediction"} & set(old)  # what tsmoe writes and a data table lacks
        variants = all(c in header or any(c.startswith(f"{n}_") for n in header) for c in old)
        if old[:1] == header[:1] and predicted and variants:
            return
        held = f"its columns are {old[:8]}, not these predictions'"
    raise TsmoeError(f"'{out}' exists and holds something else ({held}); give another path, or --overwrite to "
                     "replace it")  # fmt: skip


def write_table(out: Path, frame: pd.DataFrame) -> None:
    """``frame`` as Parquet (a path ending ``.parquet`` or ``.pq``: types kept, dates as dates) or CSV, atomic
    either way: a killed command leaves no half file."""
    if is_parquet(out):
        run_io.atomic_write_bytes(out, lambda handle: frame.to_parquet(handle, index=False))
    else:
        run_io.write_text(out, frame.to_csv(index=False))
