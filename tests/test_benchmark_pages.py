"""Every table of the benchmark pages is what its results files give: a number in a page can never drift
from its file. Regenerate with ``python benchmarks/tables.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_pages_tables_match_the_stored_results():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_experiment_file_reads_and_every_table_has_rows():
    from tsmoe.experiments.spec import read_experiment
    from tsmoe.experiments.tables import rooted, summary

    for path in sorted((ROOT / "benchmarks" / "experiments").glob("*.yaml")):
        experiment = rooted(read_experiment(path), ROOT)
        seeds = [cell["seeds"] for row in summary(experiment).values() for cell in row.values()]
        assert max(seeds) == len(experiment.seeds), f"{path.name}: no row has all its seeds stored"


def test_the_benchmarks_page_is_a_results_page():
    assert (ROOT / "benchmarks" / "README.md").stat().st_size < 20_000


def test_the_neuralforecast_comparison_installs_nothing_and_says_how_to():
    import importlib.util

    import pytest

    if importlib.util.find_spec("neuralforecast") is not None:
        pytest.skip("neuralforecast is installed here: the script would run the comparison")
    script = ROOT / "benchmarks" / "p9_neuralforecast.py"
    result = subprocess.run([sys.executable, str(script), "--out", "unused.json"], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)  # fmt: skip
    assert result.returncode == 1 and 'pip install neuralforecast "ray[tune]"' in result.stderr
    assert not (ROOT / "unused.json").exists()
