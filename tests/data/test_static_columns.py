"""Static descriptors of a user's table: numbers as they are, text columns as one indicator per category."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsmoe.data.sources.irregular_table import IrregularTableParams, load_irregular_table
from tsmoe.errors import DataError

ENTITIES = ["a", "b", "c", "d"]
NAN = np.nan


def load(tmp_path, static: str | list[str], entities: list[str] = ENTITIES, **settings):
    """``entities`` (two heart rates and a label each) with the static table(s) given (several: a folder of
    CSV and Parquet files)."""
    (tmp_path / "obs.csv").write_text("id,time,variable,value\n" + "".join(f"{e},{t},hr,70\n" for e in entities
                                                                         for t in (0, 1)))  # fmt: skip
    (tmp_path / "labels.csv").write_text("id,label\n" + "".join(f"{e},{i % 2}\n" for i, e in enumerate(entities)))
    if isinstance(static, str):
        (tmp_path / "static.csv").write_text(static)
        where = tmp_path / "static.csv"
    else:
        where = tmp_path / "static"
        where.mkdir(exist_ok=True)
        for i, text in enumerate(static):
            frame = pd.read_csv(pd.io.common.StringIO(text), dtype=str)
            if i % 2:
                frame.to_parquet(where / f"{i}.parquet")
            else:
                frame.to_csv(where / f"{i}.csv", index=False)
    return load_irregular_table(IrregularTableParams(observations=str(tmp_path / "obs.csv"),
                                                     labels=str(tmp_path / "labels.csv"), static=str(where),
                                                     **settings))  # fmt: skip


def test_a_text_column_becomes_one_indicator_per_category_and_an_empty_cell_leaves_them_missing(tmp_path):
    data = load(tmp_path, "id,age,sex,unit\na,71,M,ICU-2\nb,64,F,ICU-1\nc,,,ICU-2\nd,80.5,F,\n")
    assert data.static_names == ("age", "sex=F", "sex=M", "unit=ICU-1", "unit=ICU-2")
    expected = [[71, 0, 1, 0, 1], [64, 1, 0, 1, 0], [NAN, NAN, NAN, 0, 1], [80.5, 1, 0, NAN, NAN]]
    np.testing.assert_array_equal(data.static, np.array(expected, dtype=np.float32))


def test_categories_are_gathered_over_every_file_of_a_folder(tmp_path):
    data = load(tmp_path, ["id,sex\na,M\nb,F\n", "id,sex\nc,X\nd,F\n"])  # the second file is Parquet
    assert data.static_names == ("sex=F", "sex=M", "sex=X")
    np.testing.assert_array_equal(data.static, np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0]], np.float32))


def test_a_run_reads_a_later_table_by_its_own_indicators_and_counts_an_unknown_category(tmp_path):
    run_names = ["age", "sex=F", "sex=M"]
    data = load(tmp_path, "id,sex,age\na,U,70\nb,M,60\nc,F,\nd,,1\n", static_columns=run_names)
    assert data.static_names == tuple(run_names)
    expected = [[70, NAN, NAN], [60, 0, 1], [NAN, 1, 0], [1, NAN, NAN]]
    np.testing.assert_array_equal(data.static, np.array(expected, dtype=np.float32))
    assert data.notes["static cells of a category the run does not know (its indicators missing)"] == 1


@pytest.mark.parametrize(
    ("static", "settings", "message"),
    [
        ("id,age\na,71\nb,sixty\nc,50\nd,40\nz,old\n", {}, r"column 'age', row 2: 'sixty' is not a number"),
        ("id,age\na,71\nb,1e39\nc,50\nd,40\n", {}, r"column 'age', row 2: '1e39' is not a number \(within float32"),
        ("id,sex\na,M\nb,F\nc,F\nd,M\n", {"static_columns": ["sex"]}, r"static column 'sex' holds text.*sex=CATEGORY"),
        ("id,code\n" + "".join(f"e{i},c{i}\n" for i in range(101)), {"entities": [f"e{i}" for i in range(101)]},
         r"static column 'code' holds 101 distinct texts: more than 100 categories"),
    ],
)  # fmt: skip
def test_text_where_numbers_belong_and_too_many_categories_are_errors(tmp_path, static, settings, message):
    with pytest.raises(DataError, match=message):
        load(tmp_path, static, **settings)


def test_rows_of_entities_not_in_the_data_are_not_read(tmp_path):
    data = load(tmp_path, "id,sex,age\na,M,1\nb,F,2\nc,F,3\nd,M,4\nz,X,old\n")  # z: no observations
    assert data.static_names == ("sex=F", "sex=M", "age")
    assert data.notes["static rows of unknown entities (ignored)"] == 1
