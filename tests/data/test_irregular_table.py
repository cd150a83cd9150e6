"""Data set ``irregular``: a user's table of observations read by stated rules, in any of its forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsmoe.data.registry import get_dataset
from tsmoe.data.sources.irregular_table import IrregularTableParams, load_irregular_table
from tsmoe.data.sources.physionet2012 import VARIABLES, load_physionet2012, stay_rows
from tsmoe.errors import DataError

OBSERVATIONS = """id,time,variable,value
a,0,hr,80
a,1.5,hr,82
a,1.5,temp,37
b,3,hr,90
a,0.5,temp,36.5
b,2,temp,38
c,1,hr,70
"""
LABELS = "id,label\na,1\nb,0\nc,0\n"


def write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return str(path)


def params(tmp_path, observations=OBSERVATIONS, labels=LABELS, **settings) -> IrregularTableParams:
    return IrregularTableParams(
        observations=write(tmp_path, "obs.csv", observations), labels=write(tmp_path, "labels.csv", labels), **settings
    )


def test_a_long_table_becomes_steps_counted_from_each_entitys_first_observation(tmp_path):
    data = load_irregular_table(params(tmp_path))
    assert data.record_ids.tolist() == ["a", "b", "c"]
    assert data.variables == ("hr", "temp")
    assert data.offsets.tolist() == [0, 3, 5, 6]
    np.testing.assert_allclose(data.times, [0, 0.5, 1.5, 0, 1, 0])
    expected = [[80, np.nan], [np.nan, 36.5], [82, 37], [np.nan, 38], [90, np.nan], [70, np.nan]]
    np.testing.assert_array_equal(data.values, np.array(expected, dtype=np.float32))
    assert data.labels.tolist() == [1, 0, 0] and data.labels.dtype == np.int64
    assert data.notes == {"entities with rows out of time order (sorted)": 2}  # a (0.5 h last) and b


def test_the_wide_layout_parquet_and_a_folder_of_files_read_as_the_long_csv(tmp_path):
    long = load_irregular_table(params(tmp_path))
    frame = pd.read_csv(tmp_path / "obs.csv")
    wide = frame.pivot_table(index=["id", "time"], columns="variable", values="value").reset_index()
    (tmp_path / "wide").mkdir()
    wide.to_csv(tmp_path / "wide" / "w.csv", index=False)
    (tmp_path / "parts").mkdir()
    frame[frame.id == "a"].to_parquet(tmp_path / "parts" / "1.parquet")
    frame[frame.id != "a"].to_csv(tmp_path / "parts" / "2.csv.gz", index=False)
    for settings in ({"observations": str(tmp_path / "wide" / "w.csv"), "layout": "wide"},
                     {"observations": str(tmp_path / "parts")}):  # fmt: skip
        other = load_irregular_table(IrregularTableParams(labels=str(tmp_path / "labels.csv"), **settings))
        for name in ("record_ids", "offsets", "times", "values", "labels"):
            np.testing.assert_array_equal(getattr(other, name), getattr(long, name))
        assert other.variables == long.variables


def test_timestamps_are_read_in_the_time_unit_and_a_start_column_sets_the_clock(tmp_path):
    table = "id,time,variable,value\nx,2026-03-01T10:00:00,hr,1\nx,2026-03-01T10:30:00,hr,2\ny,2026-03-02 08:00,hr,3\n"
    static = write(tmp_path, "static.csv", "id,age,admitted\nx,70,2026-03-01T09:00:00\ny,,\n")
    minutes = load_irregular_table(
        params(tmp_path, table, "id,label\nx,1\ny,0\n", time_unit="minutes", static=static, start_col="admitted")
    )
    np.testing.assert_allclose(minutes.times, [60, 90, 0])  # x from its admission, y from its first observation
    assert minutes.static_names == ("age",)
    np.testing.assert_array_equal(minutes.static, np.array([[70], [np.nan]], dtype=np.float32))
    hours = load_irregular_table(params(tmp_path, table, "id,label\nx,1\ny,0\n"))
    np.testing.assert_allclose(hours.times, [0, 0.5, 0])


def test_numeric_labels_regress_and_until_keeps_the_first_hours(tmp_path):
    data = load_irregular_table(params(tmp_path, labels="id,label\na,2.5\nb,1\nc,0.25\n")).until(1.0)
    assert data.labels.dtype == np.float32
    assert data.offsets.tolist() == [0, 2, 4, 5]  # a keeps 0 and 0.5 h; b and c their first hour
    assert data.notes["steps after 1 time units dropped (data.until)"] == 1


@pytest.mark.parametrize(
    ("observations", "labels", "message"),
    [
        (OBSERVATIONS + "c,2,hr,abc\n", LABELS, "column 'value', row 8: 'abc' is not a number"),
        (OBSERVATIONS + ",2,hr,1\n", LABELS, "row 8: an ID is missing"),
        (OBSERVATIONS + "c,,hr,1\n", LABELS, "row 8: a time is missing"),
        (OBSERVATIONS + "c,1,hr,71\n", LABELS, "row 8 gives hr = 71 for entity 'c' at the time"),
        (OBSERVATIONS + "c,x1,hr,71\n", LABELS, "row 8: 'x1' is not a number, as most of the column's times are"),
        (OBSERVATIONS + "c,1e39,hr,71\n", LABELS, "row 8: the observation is 1e.39 time units after its entity"),
        (
            "id,time,variable,value\na,2026-01-01T00:00,hr,1\na,2026-01-01T01:00,hr,2\na,x1,hr,3\n",
            "id,label\na,1\n",
            "row 3: 'x1' is not an ISO 8601 date",
        ),
        (
            "id,time,variable,value\na,03/01/2026 08:00,hr,1\na,03/01/2026 09:00,hr,2\n",
            "id,label\na,1\n",
            "row 1: '03/01/2026 08:00' is not an ISO 8601 date (2026-03-01 08:00, 2026-03-01T08:00:00",
        ),
        (OBSERVATIONS, "id,label\na,1\nb,0\n", "1 entit(ies) in data.observations have no label"),
        (OBSERVATIONS, LABELS + "d,1\n", "1 ID(s) in data.labels have no observation, e.g. ['d']"),
        (OBSERVATIONS, LABELS + "a,0\n", "ID 'a' is labelled 0 here and 1 before"),
        (OBSERVATIONS, "id,label\na,up\nb,up\nc,up\n", "column 'label': every label is 'up', one class"),
        (OBSERVATIONS, "id,label\na,up\nb,\nc,down\n", "column 'label', row 2: a label is missing"),
        (OBSERVATIONS, "id,label\na,up\nb,0\nc,down\n", "classes given by name and by number ('0') in one"),
        (OBSERVATIONS, "id,label\na,0.5\nb,0\nc,0\n", None),  # numbers: a regression target, not an error
    ],
)
def test_bad_tables_are_refused_naming_the_file_and_row(tmp_path, observations, labels, message):
    if message is None:
        assert load_irregular_table(params(tmp_path, observations, labels)).labels.dtype == np.float32
        return
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_irregular_table(params(tmp_path, observations, labels))


def test_classes_given_by_name_are_numbered_in_sorted_order_or_in_the_order_data_classes_lists(tmp_path, caplog):
    from tsmoe.data.notes import forget

    forget()
    named = "id,label\na,survived\nb,died\nc,survived\n"
    data = load_irregular_table(params(tmp_path, labels=named))
    assert data.class_names == ("died", "survived") and data.labels.tolist() == [1, 0, 1]
    assert "classes ['died', 'survived'], the positive (whose probability is predicted) 'survived'" in caplog.text
    data = load_irregular_table(params(tmp_path, labels="id,label\na,Died\nb,died \nc,survived\n"))
    assert data.class_names == ("Died", "died ", "survived")  # three classes, and said so
    assert "the class names [['Died', 'died ']] differ only in case or spaces" in caplog.text
    data = load_irregular_table(params(tmp_path, labels=named, classes=["survived", "died"]))
    assert data.class_names == ("survived", "died") and data.labels.tolist() == [0, 1, 0]  # died: the positive
    assert data.subset(np.array([1])).class_names == ("survived", "died")
    with pytest.raises(DataError, match=r"row 2: class 'died' is not one of the classes \['survived', 'dead'\]"):
        load_irregular_table(params(tmp_path, labels=named, classes=["survived", "dead"]))
    # integers with classes named: each a place in the list
    data = load_irregular_table(params(tmp_path, classes=["survived", "died"]))
    assert data.class_names == ("survived", "died") and data.labels.tolist() == [1, 0, 0]
    with pytest.raises(DataError, match=r"row 1: a class must be a whole number 0..1 \(one of \['x', 'y'\]\)"):
        load_irregular_table(params(tmp_path, labels="id,label\na,2\nb,0\nc,1\n", classes=["x", "y"]))
    assert load_irregular_table(params(tmp_path)).class_names == ()  # integers alone: no names
    # labels at times, by name: an entity's label is the last class it reaches in the classes' order
    timed = "id,time,label\na,0,calm\na,1.5,alarm\nb,3,calm\nc,1,calm\n"
    data = load_irregular_table(params(tmp_path, labels=timed, label_time_col="time", classes=["calm", "alarm"]))
    assert data.labels.tolist() == [1, 0, 0]
    np.testing.assert_array_equal(data.step_labels, [0, np.nan, 1, np.nan, 0, 0])  # a step without a label: NaN


def test_a_column_of_text_in_the_wide_layout_is_refused_with_what_to_do_and_skipped_when_not_listed(tmp_path):
    wide = "id,time,hr,unit\na,0,80,MICU\na,1,82,MICU\nb,0,90,SICU\n"
    with pytest.raises(DataError, match=r"column 'unit', row 1: 'MICU' is not a number \(in the wide layout every"):
        load_irregular_table(params(tmp_path, wide, "id,label\na,1\nb,0\n", layout="wide"))
    data = load_irregular_table(params(tmp_path, wide, "id,label\na,1\nb,0\n", layout="wide", variables=["hr"]))
    assert data.variables == ("hr",) and data.notes["rows of variables the run does not know (ignored)"] == {"unit": 3}


def test_each_policy_is_stated_and_counted(tmp_path):
    table = OBSERVATIONS + "c,1,hr,72\nc,1,hr,70\nb,5,hr,\n"
    merged = load_irregular_table(
        params(tmp_path, table, "id,label\na,1\nb,0\nd,1\n", duplicates="mean", unlabelled="skip", unobserved="keep")
    )
    assert merged.record_ids.tolist() == ["a", "b", "d"]  # c has no label (skipped); d no observation (kept)
    assert merged.lengths().tolist() == [3, 2, 0]
    assert merged.notes["rows with an empty value (skipped)"] == 1
    assert merged.notes["entities without a label (skipped)"] == 1
    assert merged.notes["labelled entities without observations (keep)"] == 1
    last = load_irregular_table(params(tmp_path, table, LABELS, duplicates="last"))
    assert last.values[-1, 0] == 70 and last.notes["cells given different values in several rows (last taken)"] == 1
    mean = load_irregular_table(params(tmp_path, table, LABELS, duplicates="mean"))
    assert mean.values[-1, 0] == pytest.approx((70 + 72 + 70) / 3)


def test_a_runs_variables_are_matched_by_name_whatever_the_table_holds(tmp_path):
    trained = load_irregular_table(params(tmp_path))
    shuffled = (
        "value,variable,time,id\n"
        + "".join(
            f"{v},{n},{t},{i}\n"
            for i, t, n, v in (row.split(",") for row in OBSERVATIONS.strip().splitlines()[1:])
            if n != "temp"
        )
        + "97,spo2,0,a\n"
    )
    adapter = get_dataset("irregular")
    meta = {"channel_names": list(trained.variables), "static_names": []}
    scored = load_irregular_table(adapter.for_run(params(tmp_path, shuffled), meta), with_labels=False)
    assert scored.variables == ("hr", "temp")
    assert np.isnan(scored.values[:, 1]).all()  # temp: missing, so unobserved
    np.testing.assert_array_equal(scored.values[:, 0][~np.isnan(scored.values[:, 0])], [80, 82, 90, 70])
    assert scored.notes["rows of variables the run does not know (ignored)"] == {"spo2": 1}
    assert (scored.labels == -1).all()


def test_physionet_stays_as_a_long_table_give_the_physionet_loaders_arrays(small_physionet, tmp_path):
    """One path: the stay files and the same observations as a user's long table make the same steps."""
    loaded = load_physionet2012(small_physionet)
    rows, starts = [], []
    for path in sorted((small_physionet / "set-x").glob("*.txt")):
        stay = stay_rows(str(path), path.read_text())
        steps = zip(stay.hours, stay.variables, stay.values, strict=True)
        rows += [(stay.record_id, h, VARIABLES[v], x) for h, v, x in steps]
        starts.append((stay.record_id, 0.0))
    pd.DataFrame(rows, columns=["id", "time", "variable", "value"]).to_csv(tmp_path / "obs.csv", index=False)
    pd.DataFrame(starts, columns=["id", "admitted"]).to_csv(tmp_path / "static.csv", index=False)
    labels = pd.DataFrame({"id": loaded.record_ids, "label": loaded.labels})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    table = load_irregular_table(
        IrregularTableParams(
            observations=str(tmp_path / "obs.csv"),
            labels=str(tmp_path / "labels.csv"),
            static=str(tmp_path / "static.csv"),
            start_col="admitted",
            variables=list(VARIABLES),
            duplicates="mean",
            unobserved="keep",
        )  # fmt: skip
    )
    order = np.argsort(loaded.record_ids.astype(str))  # the table's entities are in ID order
    again = loaded.subset(order)
    assert table.record_ids.tolist() == again.record_ids.astype(str).tolist()
    np.testing.assert_array_equal(table.offsets, again.offsets)
    np.testing.assert_array_equal(table.times, again.times)
    np.testing.assert_allclose(table.values, again.values, rtol=1e-6)  # CSV text round trip of float64
    np.testing.assert_array_equal(table.labels, again.labels)


def test_a_large_csv_is_read_in_pieces_whose_types_agree(tmp_path, monkeypatch):
    """Times written as whole numbers at first and with fractions later, dates with seconds and then
    fractions of seconds: read in pieces as they would be whole."""
    import tsmoe.data.table_files

    rows = [f"e{i % 7},{i},x,{i % 5}" for i in range(3000)] + [f"e{i % 7},{3000 + i + 0.5},x,1" for i in range(50)]
    whole = load_irregular_table(params(tmp_path, "id,time,variable,value\n" + "\n".join(rows) + "\n",
                                        "id,label\n" + "".join(f"e{i},{i % 2}\n" for i in range(7))))  # fmt: skip
    monkeypatch.setattr(tsmoe.data.table_files, "BLOCK_BYTES", 4096)
    (tmp_path / "more").mkdir()
    pieces = load_irregular_table(params(tmp_path / "more", "id,time,variable,value\n" + "\n".join(rows) + "\n",
                                         "id,label\n" + "".join(f"e{i},{i % 2}\n" for i in range(7))))  # fmt: skip
    np.testing.assert_array_equal(pieces.times, whole.times)
    np.testing.assert_array_equal(pieces.values, whole.values)
    stamps = [f"a,2026-01-01T00:{i // 60:02d}:{i % 60:02d},x,1" for i in range(2000)] + ["a,2026-01-01T09:00:00.5,x,2"]
    (tmp_path / "dates").mkdir()
    dated = load_irregular_table(params(tmp_path / "dates", "id,time,variable,value\n" + "\n".join(stamps) + "\n",
                                        "id,label\na,1\n"))  # fmt: skip
    assert dated.times[-1] == pytest.approx(9.0 + 0.5 / 3600)


def test_text_in_a_number_column_is_named_by_column_and_row_in_any_piece_of_a_csv(tmp_path, monkeypatch):
    """Arrow names a cell it cannot read as a number by column position and a row count of its own; the
    error names the column and the row as the other errors do, in a later piece of the file too."""
    import tsmoe.data.table_files

    monkeypatch.setattr(tsmoe.data.table_files, "BLOCK_BYTES", 4096)
    rows = [f"e{i % 7},{i},x,{i % 5}" for i in range(3000)]
    rows[2500] = "e1,2500,x,n/a?"
    labels = "id,label\n" + "".join(f"e{i},{i % 2}\n" for i in range(7))
    with pytest.raises(DataError, match=r"column 'value', row 2501: 'n/a\?' is not a number"):
        load_irregular_table(params(tmp_path, "id,time,variable,value\n" + "\n".join(rows) + "\n", labels))
    (tmp_path / "wide").mkdir()  # the wide layout: every column but the ID and the time is a variable
    with pytest.raises(DataError, match=r"column 'kind', row 2: 'pump' is not a number"):
        wide = "id,time,hr,kind\na,0,80,\nb,1,82,pump\n"
        load_irregular_table(params(tmp_path / "wide", wide, "id,label\na,0\nb,1\n", layout="wide"))


def test_times_given_as_numbers_in_one_file_and_timestamps_in_another_are_refused(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "1.csv").write_text("id,time,variable,value\na,0,hr,80\na,1.5,hr,82\n")
    (tmp_path / "parts" / "2.csv").write_text("id,time,variable,value\nb,2026-03-01T10:00:00,hr,90\n")
    labels = write(tmp_path, "labels.csv", "id,label\na,1\nb,0\n")
    with pytest.raises(DataError, match=r"file '.*1.csv' gives times as numbers and file '.*2.csv' as timestamps"):
        load_irregular_table(IrregularTableParams(observations=str(tmp_path / "parts"), labels=labels))
    static = write(tmp_path, "static.csv", "id,admitted\na,2026-03-01T09:00:00\n")
    with pytest.raises(DataError, match=r"column 'admitted': its times are timestamps and the observations' are"):
        load_irregular_table(params(tmp_path, static=static, start_col="admitted"))


def test_a_parquet_tables_columns_are_read_by_type_and_other_types_are_named(tmp_path):
    """Dates, durations, decimals, truth values and dictionary-encoded text are read; times of day, lists and
    bytes are errors naming the column and its type (they ended in Arrow's cast errors)."""
    import datetime as dt
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    base = {"id": ["a", "a", "b"], "time": [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 1)],
            "variable": pa.array(["hr", "temp", "hr"]).dictionary_encode(),
            "value": [decimal.Decimal("1.5"), decimal.Decimal("2"), decimal.Decimal("3")]}  # fmt: skip
    labels = write(tmp_path, "labels.csv", "id,label\na,1\nb,0\n")
    pq.write_table(pa.table(base), tmp_path / "good.parquet")
    data = load_irregular_table(IrregularTableParams(observations=str(tmp_path / "good.parquet"), labels=labels))
    assert data.times.tolist() == [0.0, 24.0, 0.0] and np.nanmax(data.values[:, 0]) == 3.0
    # durations (pandas' timedelta: time since some start) are numbers of the clock's unit
    pq.write_table(pa.table({**base, "time": pa.array([0, 5400, 1800], type=pa.duration("s"))}), tmp_path / "d.parquet")
    elapsed = load_irregular_table(IrregularTableParams(observations=str(tmp_path / "d.parquet"), labels=labels))
    assert elapsed.times.tolist() == [0.0, 1.5, 0.0]
    odd = [("time", [dt.time(1), dt.time(2), dt.time(3)], "time64"),
           ("value", [[1.0], [2.0], [3.0]], "list"), ("id", [b"a", b"a", b"b"], "binary")]  # fmt: skip
    for column, values, kind in odd:
        pq.write_table(pa.table({**base, column: values}), tmp_path / "odd.parquet")
        with pytest.raises(DataError, match=rf"column '{column}': its type is {kind}.*; tsmoe reads columns of"):
            load_irregular_table(IrregularTableParams(observations=str(tmp_path / "odd.parquet"), labels=labels))


def test_a_classifiers_validation_part_with_few_of_a_class_is_said(tmp_path, caplog):
    from tsmoe.data.notes import forget
    from tsmoe.data.prepared import note_a_small_validation, prepare_irregular

    def prepared(entities: int, died: int):
        observations = "id,time,variable,value\n" + "".join(f"e{i},0,hr,{60 + i}\n" for i in range(entities))
        labels = "id,label\n" + "".join(f"e{i},{'died' if i < died else 'survived'}\n" for i in range(entities))
        data = load_irregular_table(params(tmp_path, observations, labels), cache=False)
        return prepare_irregular(data, None, seed=0, fractions=(0.5, 0.25, 0.25))

    forget()
    note_a_small_validation(prepared(40, 8))
    assert "the validation part holds 10 records (2 of class 'died', 8 of class 'survived')" in caplog.text
    caplog.clear()
    note_a_small_validation(prepared(200, 80))  # 20 and 30 of each: nothing to say
    assert "validation part" not in caplog.text
