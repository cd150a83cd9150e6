"""Regenerate every table of ``benchmarks/README.md`` and of the project README from the stored results.

    python benchmarks/tables.py            # rewrite the marked tables in place
    python benchmarks/tables.py --check    # exit 1 if a page differs from its results (the tests run this)

A page marks each generated table with ``<!-- table: PATH -->`` ... ``<!-- end table -->``. PATH is an
experiment file (``benchmarks/experiments/*.yaml``: a table of its rows, :mod:`tsmoe.experiments.tables`)
or a result file of a script (P5, P6, P7, P8, P9, paired tests, block lengths, a shared machine, streaming,
reading large tables, tuning: the table its script prints).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # the P5 scripts beside this one

from tsmoe.experiments.spec import read_experiment  # noqa: E402
from tsmoe.experiments.tables import MARKED, chosen, rooted, table  # noqa: E402

DOC_PAGES = ("IRREGULAR", "TUNING", "UNCERTAINTY", "BASELINES", "MOME", "MRMOE")  # docs/<name>.md with generated tables
PAGES = (ROOT / "README.md", HERE / "README.md", *(ROOT / "docs" / f"{name}.md" for name in DOC_PAGES))


def generated(path: str, rows: str | None = None, columns: str | None = None) -> str:
    """The table for one marker's PATH (with the experiment's note, where the marker picks no rows)."""
    if path.endswith(".yaml"):
        experiment = rooted(read_experiment(ROOT / path), ROOT)
        note = f"\n{experiment.note.strip()}\n" if experiment.note.strip() and not rows else ""
        return table(chosen(experiment, rows, columns)) + "\n" + note
    result = json.loads((ROOT / path).read_text())
    protocol = result.get("protocol")
    scripts = {"P6": "p6_early", "stream-speed": "stream_speed", "irregular-scale": "irregular_scale",
               "P1-tune": "tune_study", "P7": "p7_uncertainty", "P8": "p8_liquid_acceleration",
               "P9": "p9_neuralforecast", "paired": "paired",
               "shared-machine": "shared_machine", "block-length": "block_length",
               "paired-test-size": "paired_test_size"}  # fmt: skip
    if protocol in scripts:  # each script renders its own table
        from importlib import import_module

        return import_module(scripts[protocol]).markdown_table(result) + "\n"
    if protocol == "P9-paired":
        from p9_neuralforecast import paired_table

        return paired_table(result["pairs"]) + "\n"
    if protocol == "P6-intervals":
        from p6_early import intervals_table

        return intervals_table(result) + "\n"
    if protocol == "tune-workers":
        from tune_study import workers_table

        return workers_table(result) + "\n"
    if "rows" in result:  # the sparse MoE layer
        from p5_sparse_moe import table as sparse_table

        return sparse_table(result) + "\n"
    from p5_liquid_speed import markdown_table

    return markdown_table(result) + "\n"


def regenerate(page: Path) -> tuple[str, str]:
    """``(old, new)`` text of ``page`` with its marked tables made again."""
    old = page.read_text()
    new = MARKED.sub(lambda m: f"{m.group(1)}{generated(m['path'], m['rows'], m['columns'])}{m.group(6)}", old)
    return old, new


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 where a page is out of date")
    args = parser.parse_args()
    stale = []
    for page in PAGES:
        old, new = regenerate(page)
        if old != new:
            stale.append(page)
            if not args.check:
                page.write_text(new)
    if args.check and stale:
        print("out of date with their results: " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        print("run: python benchmarks/tables.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
