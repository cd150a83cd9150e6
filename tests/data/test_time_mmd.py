import numpy as np
import pandas as pd
import pytest

from tsmoe.data.sources.time_mmd import list_domains, load_time_mmd
from tsmoe.data.text import DatedTexts
from tsmoe.errors import DataError


def test_every_shipped_domain_loads_sorted_with_target():
    domains = list_domains()
    assert domains == ["Climate", "Energy", "Environment", "Health_AFR", "Health_US", "Security", "SocialGood"]
    for name in domains:
        domain = load_time_mmd(name)
        dates = domain.frame["date"]
        assert dates.is_monotonic_increasing and not dates.duplicated().any()
        assert np.isfinite(domain.frame["OT"]).all()
        assert len(domain.texts) > 0


def test_newest_first_file_is_sorted():
    climate = load_time_mmd("Climate")  # the file lists 2024 first
    assert climate.frame["date"].iloc[0] < climate.frame["date"].iloc[-1]


def test_preds_column_is_never_read():
    energy = load_time_mmd("Energy")
    preds = pd.read_csv("datasets/time_mmd/textual/Energy/Energy_report.csv.gz", usecols=["preds"])["preds"].dropna()
    assert not set(preds.astype(str)) & set(energy.texts.texts)


def test_leakage_rule_sees_only_text_that_ended_before_the_forecast():
    texts = DatedTexts(
        end_dates=np.array(["2024-01-01", "2024-01-05", "2024-01-10", "2024-01-20"], dtype="datetime64[ns]"),
        texts=("a", "b", "c", "d"),
        sources=("report",) * 4,
    )
    assert texts.before(np.datetime64("2024-01-10"), k=4) == ["a", "b"]  # 'c' ends on the start day: not seen
    assert texts.before(np.datetime64("2024-01-11"), k=2) == ["b", "c"]  # the k most recent, oldest first
    assert texts.before(np.datetime64("2023-12-31"), k=4) == []


def test_unseen_domain_with_other_column_order(tmp_path):
    numeric = tmp_path / "numerical" / "Rivers"
    textual = tmp_path / "textual" / "Rivers"
    numeric.mkdir(parents=True)
    textual.mkdir(parents=True)
    pd.DataFrame(
        {"level": [3.0, 1.0, 2.0], "OT": [30.0, 10.0, 20.0], "date": ["2024-03-01", "2024-01-01", "2024-02-01"]}
    ).to_csv(numeric / "Rivers.csv", index=False)
    pd.DataFrame(
        {
            "fact": ["spring flood", None],
            "preds": ["will rise", "x"],
            "end_date": ["2024-02-15", "2024-01-15"],
            "start_date": ["2024-02-01", "2024-01-01"],
        }
    ).to_csv(textual / "Rivers_search.csv", index=False)
    domain = load_time_mmd("Rivers", tmp_path)
    assert domain.frame["OT"].tolist() == [10.0, 20.0, 30.0]
    assert domain.frame["level"].tolist() == [1.0, 2.0, 3.0]
    assert domain.texts.texts == ("spring flood",)  # NA text is no text; preds are never read
    assert domain.series(("level",)).columns == ("OT", "level")


def test_missing_target_and_unknown_domain(tmp_path):
    folder = tmp_path / "numerical" / "X"
    folder.mkdir(parents=True)
    pd.DataFrame({"date": ["2024-01-01"], "value": [1.0]}).to_csv(folder / "X.csv", index=False)
    with pytest.raises(DataError, match="target column 'OT' is missing"):
        load_time_mmd("X", tmp_path)
    with pytest.raises(DataError, match="domain 'Y' not found"):
        load_time_mmd("Y", tmp_path)


def _domain(tmp_path, text: str):
    folder = tmp_path / "numerical" / "X"
    folder.mkdir(parents=True)
    (folder / "X.csv").write_text(text)


def test_non_numeric_target_names_file_column_and_row(tmp_path):
    _domain(tmp_path, "date,OT\n2024-01-01,1.0\n2024-01-08,high\n")
    with pytest.raises(DataError, match="X.csv', column 'OT', row 2: 'high' is not a number"):
        load_time_mmd("X", tmp_path)


def test_bad_date_and_empty_file(tmp_path):
    _domain(tmp_path, "date,OT\n2024-01-01,1.0\nsoon,2.0\n")
    with pytest.raises(DataError, match="column 'date', row 2: 'soon' is not a date"):
        load_time_mmd("X", tmp_path)
    (tmp_path / "numerical" / "X" / "X.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_time_mmd("X", tmp_path)


def test_fact_is_read_as_text_and_na_means_none(tmp_path):
    _domain(tmp_path, "date,OT\n2024-01-01,1.0\n")
    textual = tmp_path / "textual" / "X"
    textual.mkdir(parents=True)
    (textual / "X_report.csv").write_text(
        "start_date,end_date,fact\n2024-01-01,2024-01-02,12\n2024-01-01,2024-01-03,NA\n"
    )
    assert load_time_mmd("X", tmp_path).texts.texts == ("12",)  # Time-MMD writes NA for "no fact"


def test_a_domain_whose_targets_are_all_empty_is_refused(tmp_path):
    _domain(tmp_path, "date,OT\n2024-01-01,\n2024-01-08,inf\n")
    with pytest.raises(DataError, match="X.csv': no row has a value in column 'OT'"):
        load_time_mmd("X", tmp_path)
