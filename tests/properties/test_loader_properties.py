"""Property-based: every file loader either loads what it was given, saying what it repaired, or raises a
tsmoe error; never a raw pandas, numpy or json traceback, never a value silently mangled."""

from __future__ import annotations

import gzip
import logging
import re
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsmoe.data.sources.ett import load_ett
from tsmoe.data.sources.exchange_rate import load_exchange_rate
from tsmoe.data.sources.mome_windows import load_mome_split
from tsmoe.data.sources.physionet2012 import STATIC, VARIABLES, parse_stay
from tsmoe.data.sources.time_mmd import load_time_mmd
from tsmoe.errors import TsmoeError

SETTINGS = settings(
    derandomize=True, max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

number_texts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**40), 10**40).map(str),
    st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e400", "abc", "１２", "1,5", "True"]),
)
date_texts = st.one_of(
    st.dates(min_value=pd.Timestamp("2000-01-01").date(), max_value=pd.Timestamp("2000-03-01").date()).map(str),
    st.sampled_from(["", "2020-02-30", "yesterday", "0", "2020-01-01T00:00:00Z"]),
)
free_text = st.one_of(st.text(max_size=40), st.sampled_from(["", "NA", "123", "温度が上がる", "a,b", 'say "x"']))


def loads_or_refuses(load):
    """Run ``load``: a tsmoe error is a valid answer; any warning from numpy/pandas means a value was mangled."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            return load()
    except TsmoeError as error:
        assert str(error)
        return None


# ---- PhysioNet 2012 stay files --------------------------------------------------------------------

stay_lines = st.one_of(
    st.tuples(
        st.one_of(st.sampled_from(["00:00", "00:07", "01:30", "47:59", "48:00"]), st.text(max_size=6)),
        st.one_of(st.sampled_from(VARIABLES + STATIC), st.text(max_size=8)),
        number_texts,
    ).map(",".join),
    st.text(max_size=20),
)


@SETTINGS
@given(lines=st.lists(stay_lines, max_size=12), record_id=st.one_of(st.integers(1, 10**6).map(str), number_texts))
def test_stay_file_parses_or_refuses(lines, record_id):
    text = "\n".join(["Time,Parameter,Value", f"00:00,RecordID,{record_id}", *lines])
    parsed = loads_or_refuses(lambda: parse_stay("132539.txt", text))
    if parsed is None:
        return
    _, times, values, static = parsed
    assert np.all(np.diff(times) > 0) and np.all(times >= 0)
    assert np.all(np.isfinite(values) | np.isnan(values)) and not np.isinf(values).any()
    assert not np.isinf(static).any()
    observed = sum(1 for line in lines if line.split(",")[1:2] and line.split(",")[1] in VARIABLES)
    assert observed == 0 or np.isfinite(values).sum() >= 1


# ---- raw Time-MMD ---------------------------------------------------------------------------------


@st.composite
def time_mmd_files(draw):
    n = draw(st.integers(0, 10))
    dates = draw(st.lists(date_texts, min_size=n, max_size=n))
    numeric = pd.DataFrame({"start_date": dates, "OT": draw(st.lists(number_texts, min_size=n, max_size=n))})
    m = draw(st.integers(0, 6))
    texts = pd.DataFrame({
        "start_date": draw(st.lists(date_texts, min_size=m, max_size=m)),
        "end_date": draw(st.lists(date_texts, min_size=m, max_size=m)),
        "fact": draw(st.lists(free_text, min_size=m, max_size=m)),
        "preds": draw(st.lists(free_text, min_size=m, max_size=m)),
    })  # fmt: skip
    columns = list(numeric.columns)
    return numeric[draw(st.permutations(columns))], texts[draw(st.permutations(list(texts.columns)))]


@SETTINGS
@given(files=time_mmd_files(), gzipped=st.booleans())
def test_time_mmd_domain_loads_or_refuses_and_says_what_it_repaired(tmp_path_factory, caplog, files, gzipped):
    numeric, texts = files
    root = tmp_path_factory.mktemp("tmmd")
    (root / "numerical" / "Dom").mkdir(parents=True)
    (root / "textual" / "Dom").mkdir(parents=True)
    numeric_csv = numeric.to_csv(index=False).encode()
    if gzipped:
        (root / "numerical" / "Dom" / "Dom.csv.gz").write_bytes(gzip.compress(numeric_csv))
    else:
        (root / "numerical" / "Dom" / "Dom.csv").write_bytes(numeric_csv)
    texts.to_csv(root / "textual" / "Dom" / "Dom_report.csv", index=False)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tsmoe"):  # a repair said before in this process is an info line
        domain = loads_or_refuses(lambda: load_time_mmd("Dom", root))
    if domain is None:
        return
    said = " ".join(r.getMessage() for r in caplog.records)
    dropped = int(m.group(1)) if (m := re.search(r"dropped (\d+) row", said)) else 0
    merged = int(m.group(1)) if (m := re.search(r"(\d+) repeated date", said)) else 0
    assert len(domain.frame) + dropped + merged == len(numeric)  # every row is kept or accounted for
    values = domain.series().series[0].values
    assert np.isfinite(values).all()
    assert all(isinstance(t, str) and t.strip() and t.strip() != "NA" for t in domain.texts.texts)


# ---- MoME windows and wide benchmark CSVs ----------------------------------------------------------

list_cells = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=4).map(str),
    st.lists(st.integers(-5, 5), min_size=3, max_size=3).map(str),
    st.sampled_from(
        [
            "[1, 2, 3]",
            "[true, false, true]",
            "[[1], [2], [3]]",
            '["a", "b", "c"]',
            "[1e400, 0, 0]",
            "",
            "{}",
            "[NaN, 1]",
        ]
    ),
)


@SETTINGS
@given(rows=st.lists(st.tuples(list_cells, list_cells, st.one_of(free_text, st.none())), max_size=6))
def test_mome_windows_load_or_refuse(tmp_path_factory, rows):
    root = tmp_path_factory.mktemp("mome")
    (root / "Dom" / "train").mkdir(parents=True)
    frame = pd.DataFrame(rows, columns=["input_seq", "output_seq", "text"])
    frame.to_csv(root / "Dom" / "train" / "Dom_train.csv", index=False)
    windows = loads_or_refuses(lambda: load_mome_split("Dom", "train", root))
    if windows is None:
        return
    assert len(windows) == len(rows)
    assert np.isfinite(windows.inputs).all() and np.isfinite(windows.targets).all()
    assert windows.texts == tuple("" if t is None or t == "" else t for _, _, t in rows)


@SETTINGS
@given(cells=st.lists(st.tuples(date_texts, number_texts, number_texts), max_size=8))
def test_wide_benchmark_csv_loads_or_refuses(tmp_path_factory, cells):
    root = tmp_path_factory.mktemp("ett")
    pd.DataFrame(cells, columns=["date", "HUFL", "OT"]).to_csv(root / "ETTh1.csv", index=False)
    loaded = loads_or_refuses(lambda: load_ett(root))
    if loaded is None:
        return
    series = loaded.series[0]
    assert len(series.timestamps) == len(cells) and np.isfinite(series.values).all()


@SETTINGS
@given(cells=st.lists(st.lists(number_texts, min_size=1, max_size=3), min_size=1, max_size=8))
def test_exchange_rate_file_loads_or_refuses(tmp_path_factory, cells):
    root = tmp_path_factory.mktemp("exchange")
    (root / "exchange_rate.txt").write_text("\n".join(",".join(row) for row in cells) + "\n")
    loaded = loads_or_refuses(lambda: load_exchange_rate(root))
    if loaded is None:
        return
    series = loaded.series[0]
    assert len(series.timestamps) == len(cells) and np.isfinite(series.values).all()


# ---- a CSV's dialect: any separator, with or without a byte-order mark ---------------------------------------

NA_SPELLINGS = {"", "NA", "N/A", "NAN", "NULL", "NONE", "-NAN", "#N/A", "#NA", "<NA>", "-1.#IND", "1.#QNAN", "-1.#QNAN",
                "#N/A N/A", "1.#IND", "N/A N/A", "-NaN"}  # missing values by the documented policy, not ids
ids = st.one_of(
    st.sampled_from(["a,b", "a;b", "tab\there", 'say "x"', "Zürich", "温度"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
).filter(lambda t: t.strip() and t.strip().upper() not in NA_SPELLINGS)


@SETTINGS
@given(
    names=st.lists(ids, min_size=1, max_size=3, unique=True),
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=6),
    separator=st.sampled_from([",", ";", "\t"]),
    mark=st.sampled_from(["utf-8", "utf-8-sig"]),
)
def test_a_table_reads_back_alike_whatever_its_separator(tmp_path_factory, names, values, separator, mark):
    from tsmoe.data.csv_files import read_table_checked
    from tsmoe.data.table_files import read_table

    # ids holding commas, semicolons, tabs or quotes are quoted as any CSV writer quotes them
    frame = pd.DataFrame({"unique_id": [names[i % len(names)] for i in range(len(values))], "y": values})
    path = tmp_path_factory.mktemp("dialect") / "table.csv"
    frame.to_csv(path, index=False, sep=separator, encoding=mark)
    back = loads_or_refuses(lambda: read_table_checked(path, text_columns=("unique_id",)))
    assert back is not None
    assert back["unique_id"].tolist() == frame["unique_id"].tolist()
    np.testing.assert_allclose(back["y"].to_numpy(dtype=float), frame["y"].to_numpy())
    arrow = read_table(path, ["unique_id", "y"], text=("unique_id",), numbers=("y",)).to_pandas()
    assert arrow["unique_id"].astype(str).tolist() == frame["unique_id"].tolist()
    np.testing.assert_allclose(arrow["y"].to_numpy(), frame["y"].to_numpy())
