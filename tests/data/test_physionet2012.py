import numpy as np
import pytest

from tsmoe.data.sources.physionet2012 import STATIC, VARIABLES, load_physionet2012, parse_stay, shipped_split_file
from tsmoe.data.splits import IdSplit, stratified_split
from tsmoe.errors import DataError

STAY = """Time,Parameter,Value
00:00,RecordID,1
00:00,Age,54
00:00,Gender,0
00:00,Height,-1
00:00,ICUType,4
00:00,Weight,80
00:00,HR,90
00:07,HR,73
00:07,HR,77
00:07,Temp,35.1
01:30,Weight,79.5
"""


def test_parse_stay_static_and_time_varying_rules():
    record, times, values, static = parse_stay("s.txt", STAY)
    assert record == 1
    np.testing.assert_allclose(times, [0.0, 7 / 60, 1.5], rtol=1e-6)
    hr, temp, weight = VARIABLES.index("HR"), VARIABLES.index("Temp"), VARIABLES.index("Weight")
    assert values[0, hr] == 90  # a time-varying measurement at 00:00 stays time-varying
    assert values[1, hr] == 75  # two HR values at one time are averaged
    assert values[1, temp] == pytest.approx(35.1)
    assert values[2, weight] == pytest.approx(79.5)  # later Weight is time-varying
    assert np.isnan(values[0, weight])  # the 00:00 Weight is the static admission weight, not a step value
    assert static[STATIC.index("Weight")] == 80
    assert np.isnan(static[STATIC.index("Height")])  # -1 means missing
    assert np.isnan(values).sum() == values.size - 4  # HR, HR (averaged), Temp, Weight


def test_parse_stay_without_measurements():
    record, times, values, static = parse_stay("e.txt", "Time,Parameter,Value\n00:00,RecordID,7\n00:00,Age,70\n")
    assert record == 7 and times.shape == (0,) and values.shape == (0, len(VARIABLES))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Time,Parameter,Value\n00:00,RecordID,1\n00:05,Heartbeat,1\n", "row 2: unknown parameter 'Heartbeat'"),
        ("Time,Parameter,Value\n00:00,RecordID,1\n00:05,HR,fast\n", "column 'Value', row 2: 'fast' is not a number"),
        ("Time,Parameter,Value\n00:00,RecordID,1\n5 min,HR,80\n", "column 'Time', row 2: expected HH:MM"),
        ("Wrong,Header\n", "expected the header"),
        ("", "expected the header"),
    ],
)
def test_parse_stay_refuses_bad_rows_naming_file_and_row(text, message):
    with pytest.raises(DataError, match=message) as info:
        parse_stay("stay-42.txt", text)
    assert "stay-42.txt" in str(info.value)


def test_shipped_sets_load_with_known_counts():
    data = load_physionet2012()
    assert len(data) == 8000
    assert data.values.shape[1] == 37
    assert 0.13 < data.labels.mean() < 0.15
    assert int((data.lengths() == 0).sum()) == 10  # stays with no time-varying measurement are kept
    assert len(np.unique(data.record_ids)) == 8000


def test_cache_returns_identical_arrays(small_physionet):
    first = load_physionet2012(small_physionet)
    second = load_physionet2012(small_physionet)
    for name in ("record_ids", "offsets", "times", "labels"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    np.testing.assert_array_equal(np.isnan(first.values), np.isnan(second.values))


def test_folder_layout_with_missing_outcomes_file_is_refused(tmp_path, small_physionet):
    (tmp_path / "set-z").mkdir()
    with pytest.raises(DataError, match="no outcomes file"):
        load_physionet2012(tmp_path)


def test_outcome_without_stay_file_is_refused(tmp_path):
    from tests.conftest import make_physionet_folder

    root = make_physionet_folder(tmp_path, "q", 3)
    victim = sorted((root / "set-q").glob("*.txt"))[0]
    victim.unlink()
    with pytest.raises(DataError, match="no stay file"):
        load_physionet2012(root)


def test_committed_split_is_reproducible_and_stratified():
    data = load_physionet2012()
    committed = IdSplit.read(shipped_split_file())
    again = stratified_split(data.record_ids, data.labels, (0.8, 0.1, 0.1), seed=0)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(committed, part), getattr(again, part))
    assert (len(committed.train), len(committed.val), len(committed.test)) == (6400, 800, 800)
    assert not set(committed.test) & set(committed.train) and not set(committed.val) & set(committed.train)
    for part in (committed.train, committed.test):
        assert abs(data.labels[np.isin(data.record_ids, part)].mean() - data.labels.mean()) < 0.005


def test_empty_outcomes_file_and_bad_label(tmp_path):
    from tests.conftest import make_physionet_folder

    root = make_physionet_folder(tmp_path, "q", 2)
    outcomes = root / "Outcomes-q.txt"
    original = outcomes.read_text()
    outcomes.write_text("")
    with pytest.raises(DataError, match="Outcomes-q.txt' is empty"):
        load_physionet2012(root)
    lines = original.splitlines()
    fields = lines[1].split(",")
    fields[-1] = "2"
    outcomes.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]))
    with pytest.raises(DataError, match="column 'In-hospital_death', row 1: label must be 0 or 1"):
        load_physionet2012(root)


def test_regression_labels_mark_missing_as_nan():
    data = load_physionet2012(label="Length_of_stay")
    assert data.labels.dtype == np.float32
    assert int(np.isnan(data.labels).sum()) == 60 + 54  # the -1 entries of Outcomes-a and Outcomes-b
    with pytest.raises(DataError, match="columns 'RecordID' and 'Mood' are required"):
        load_physionet2012(label="Mood")


@pytest.mark.parametrize(
    ("archive", "message"),
    [(lambda raw: raw[:100_000], "unexpected end of data"), (lambda raw: b"hello\n", "not a gzip file")],
)
def test_a_truncated_or_foreign_archive_is_a_data_error_naming_it(tmp_path, archive, message):
    from tsmoe.paths import shipped_data_dir

    shipped = shipped_data_dir() / "physionet2012"
    (tmp_path / "set-a.tar.gz").write_bytes(archive((shipped / "set-a.tar.gz").read_bytes()))
    (tmp_path / "Outcomes-a.txt.gz").write_bytes((shipped / "Outcomes-a.txt.gz").read_bytes())
    with pytest.raises(DataError, match=rf"set-a.tar.gz' is not a readable .tar.gz of stay files \({message}\)"):
        load_physionet2012(tmp_path)


def test_a_binary_file_where_a_stay_belongs_is_a_data_error_naming_it(tmp_path, small_physionet):
    import shutil

    shutil.copytree(small_physionet, tmp_path / "copy")
    stay = sorted((tmp_path / "copy" / "set-x").glob("*.txt"))[0]
    stay.write_bytes(bytes(range(128, 256)))
    with pytest.raises(DataError, match=rf"stay file '.*{stay.name}' is not text"):
        load_physionet2012(tmp_path / "copy")


def test_rows_with_an_empty_parameter_are_skipped_counted_and_recorded_in_the_run(tmp_path, small_physionet, caplog):
    import json
    import shutil

    from tsmoe import Estimator

    shutil.copytree(small_physionet, tmp_path / "copy")
    stays = sorted((tmp_path / "copy" / "set-x").glob("*.txt"))
    for stay in stays[:3]:  # as some distributed copies hold them: `HH:MM,,` and `HH:MM,,value`
        stay.write_text(stay.read_text() + "00:30,,\n01:15,,7.5\n")
    with caplog.at_level("WARNING"):
        data = load_physionet2012(tmp_path / "copy")
    assert data.notes == {"skipped rows": {"set x": {"empty parameter": 6}}}
    assert "set x: skipped 6 row(s) with an empty parameter field" in caplog.text
    assert len(data) == len(stays)
    run = tmp_path / "run"
    Estimator("lstm", "physionet2012", model_params={"hidden_size": 8},
              data_params={"root": str(tmp_path / "copy"), "split_file": None}, training={"max_epochs": 1},
              trainer={"accelerator": "cpu"}).fit(run_dir=run)  # fmt: skip
    assert json.loads((run / "meta.json").read_text())["data_notes"] == data.notes


def test_an_unknown_parameter_is_an_error_unless_the_user_chooses_to_skip_it(tmp_path, small_physionet):
    import shutil

    shutil.copytree(small_physionet, tmp_path / "copy")
    stay = sorted((tmp_path / "copy" / "set-x").glob("*.txt"))[0]
    stay.write_text(stay.read_text() + "02:00,Lactate2,1.0\n")
    with pytest.raises(DataError, match=r"unknown parameter 'Lactate2'.*data.unknown_parameters: skip"):
        load_physionet2012(tmp_path / "copy")
    data = load_physionet2012(tmp_path / "copy", unknown_parameters="skip")
    assert data.notes == {"skipped rows": {"set x": {"unknown parameter": 1}}}
