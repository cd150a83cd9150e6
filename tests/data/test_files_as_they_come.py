"""Real files as they come: a byte-order mark, Windows line ends, trailing blank lines, columns in another
order and extra columns read as the clean file does (each loader's named columns are found by name)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from tsmoe.data.long_format import read_long_file
from tsmoe.data.sources.ett import load_ett
from tsmoe.data.sources.mome_windows import load_mome_split
from tsmoe.data.sources.physionet2012 import parse_stay
from tsmoe.paths import shipped_data_dir

VARIANTS = {
    "byte-order mark": lambda text: "\ufeff" + text,
    "Windows line ends": lambda text: text.replace("\n", "\r\n"),
    "trailing blank lines": lambda text: text + "\n\n\n",
    "all three": lambda text: "\ufeff" + (text + "\n\n").replace("\n", "\r\n"),
}


def shipped_text(*parts: str) -> str:
    with gzip.open(shipped_data_dir().joinpath(*parts), "rt", encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_wide_benchmark_csv_reads_alike(tmp_path, variant):
    clean = "\n".join(shipped_text("ett", "ETTh1.csv.gz").splitlines()[:400]) + "\n"
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "ETTh1.csv").write_text(clean, encoding="utf-8", newline="")
    (tmp_path / "messy").mkdir()
    (tmp_path / "messy" / "ETTh1.csv").write_text(VARIANTS[variant](clean), encoding="utf-8", newline="")
    expected, got = load_ett(tmp_path / "clean"), load_ett(tmp_path / "messy")
    assert got.columns == expected.columns
    np.testing.assert_array_equal(got.series[0].values, expected.series[0].values)
    np.testing.assert_array_equal(got.series[0].timestamps, expected.series[0].timestamps)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_long_csv_reads_alike_with_its_columns_in_another_order_and_extra_columns(tmp_path, variant):
    frame = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 30), "ds": np.tile(pd.date_range("2023-01-01",
                          periods=30, freq="D").strftime("%Y-%m-%d"), 2), "y": np.arange(60) / 7.0})  # fmt: skip
    clean = frame.to_csv(index=False)
    reordered = frame.assign(note="kept out", extra=1.0)[["extra", "y", "note", "ds", "unique_id"]].to_csv(index=False)
    (tmp_path / "clean.csv").write_text(clean, encoding="utf-8", newline="")
    (tmp_path / "messy.csv").write_text(VARIANTS[variant](reordered), encoding="utf-8", newline="")
    expected, got = read_long_file(tmp_path / "clean.csv"), read_long_file(tmp_path / "messy.csv")
    assert [s.name for s in got.series] == [s.name for s in expected.series]
    for a, b in zip(got.series, expected.series, strict=True):
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.timestamps, b.timestamps)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_window_file_reads_alike(tmp_path, variant):
    clean = shipped_text("mome_timemmd", "Energy", "test", "Energy_test.csv.gz")
    for name, text in (("clean", clean), ("messy", VARIANTS[variant](clean))):
        folder = tmp_path / name / "Energy" / "test"
        folder.mkdir(parents=True)
        (folder / "Energy_test.csv").write_text(text, encoding="utf-8", newline="")
    expected = load_mome_split("Energy", "test", tmp_path / "clean")
    got = load_mome_split("Energy", "test", tmp_path / "messy")
    np.testing.assert_array_equal(got.inputs, expected.inputs)
    assert got.texts == expected.texts


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_physionet_stay_reads_alike(variant):
    clean = "Time,Parameter,Value\n00:00,RecordID,132539\n00:00,Age,54\n00:07,HR,73\n01:37,HR,77\n"
    expected, got = parse_stay("s.txt", clean), parse_stay("s.txt", VARIANTS[variant](clean))
    assert got[0] == expected[0]
    for a, b in zip(got[1:], expected[1:], strict=True):
        np.testing.assert_array_equal(a, b)
