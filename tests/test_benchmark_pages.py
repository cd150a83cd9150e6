"""Every table of the benchmark pages is what its results files give: a number in a page can never drift
from its file. Regenerate with ``python benchmarks/tables.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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

    if importlib.util.find_spec("neuralforecast") is not None:
        pytest.skip("neuralforecast is installed here: the script would run the comparison")
    script = ROOT / "benchmarks" / "p9_neuralforecast.py"
    result = subprocess.run([sys.executable, str(script), "--out", "unused.json"], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)  # fmt: skip
    assert result.returncode == 1 and 'pip install neuralforecast "ray[tune]"' in result.stderr
    assert not (ROOT / "unused.json").exists()


def test_p8_times_each_model_to_the_single_cfcs_best_score_and_to_its_own():
    """P8's table from curves: the target is the CfC's best validation score (mean over seeds); a model's
    time to it is its first epoch at or above it, averaged over the seeds that reach it, and is compared with
    the CfC's mean time to its own best."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from p8_liquid_acceleration import summary

    def points(*pairs):
        return [{"epoch": i + 1, "score": s, "seconds": t} for i, (s, t) in enumerate(pairs)]

    payload = {"setting": "p1", "curves": {
        "cfc": {"0": points((0.70, 10), (0.80, 20), (0.78, 30)), "1": points((0.75, 10), (0.80, 20), (0.82, 30))},
        "mrmoe": {"0": points((0.81, 5), (0.79, 10)), "1": points((0.60, 5), (0.70, 10))},
    }}  # fmt: skip
    rows = {row["model"]: row for row in summary(payload)}
    assert rows["cfc"]["target"] == pytest.approx(0.81)  # mean of 0.80 and 0.82
    assert rows["cfc"]["reached"] == 1 and rows["cfc"]["seconds_to_target"] == 30
    assert rows["mrmoe"]["reached"] == 1 and rows["mrmoe"]["seconds_to_target"] == 5
    assert rows["cfc"]["seconds_to_own_best"] == pytest.approx((20 + 30) / 2)
    assert rows["mrmoe"]["time_vs_cfc"] == pytest.approx(5 / 25)  # against the CfC's time to its own best
    assert rows["mrmoe"]["seconds_to_own_best"] == pytest.approx((5 + 10) / 2)


def test_p5_reads_real_etth1_windows_and_its_ncps_mixture_computes_mrmoes_function_on_them():
    """P5's ETTh1 batches are windows as the liquid forecasters read them (7 variables, every value observed,
    an hour between rows, a real up-or-down target), and the ncps mixture it times computes MR-MoE's function
    on them given MR-MoE's weights, as on the other batches."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch
    from p5_liquid_speed import check_same_function, etth1_batch, sizes

    batch = etth1_batch(8, 24)
    assert sizes(batch) == (7, 0) and batch["values"].shape == (8, 24, 7)
    assert torch.all(batch["mask"] == 1) and torch.all(batch["dt"] == 1.0)
    assert set(batch["target"].tolist()) == {0.0, 1.0}  # both directions occur among 8 spread windows
    assert check_same_function(2, 8, 16, batch) < 1e-5
