import gzip

import numpy as np
import pytest

from tsmoe.data.sources.ett import load_ett
from tsmoe.data.sources.exchange_rate import load_exchange_rate
from tsmoe.data.sources.mome_windows import DOMAINS, load_mome_split, load_mome_windows
from tsmoe.errors import DataError


def test_etth1_shape_and_columns():
    data = load_ett()
    assert data.columns == ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
    assert data.series[0].values.shape == (17420, 7)


def test_exchange_rate_shape():
    data = load_exchange_rate()
    assert data.series[0].values.shape == (7588, 8)


@pytest.mark.parametrize("domain", DOMAINS)
def test_mome_windows_validation_is_last_tenth_of_train(domain):
    train, val, test = load_mome_windows(domain)
    full = load_mome_split(domain, "train")
    assert len(train) + len(val) == len(full)
    np.testing.assert_array_equal(val.inputs, full.inputs[len(train) :])
    lookback, horizon = (7, 1) if domain == "Environment" else (14, 3)
    assert train.inputs.shape[1] == lookback and test.targets.shape[1] == horizon


def test_ett_bad_files(tmp_path):
    (tmp_path / "ETTh1.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_ett(tmp_path)
    (tmp_path / "ETTh1.csv").write_text("date,OT,HUFL\n2016-07-01 00:00:00,1.0,2\n2016-07-01 01:00:00,oops,3\n")
    with pytest.raises(DataError, match="column 'OT', row 2: 'oops' is not a number"):
        load_ett(tmp_path)
    (tmp_path / "ETTh1.csv").write_text("when,OT\n1,2\n")
    with pytest.raises(DataError, match="no 'date' column"):
        load_ett(tmp_path)
    (tmp_path / "ETTh1.csv").write_text("date,OT\n2016-07-01 01:00:00,1\n2016-07-01 00:00:00,2\n")
    with pytest.raises(DataError, match="row 2: unsorted timestamp"):
        load_ett(tmp_path)


def test_exchange_rate_bad_value(tmp_path):
    with gzip.open(tmp_path / "exchange_rate.txt.gz", "wt") as handle:
        handle.write("0.5,0.6\n0.5,n/a!\n")
    with pytest.raises(DataError, match="row 2"):
        load_exchange_rate(tmp_path)


def test_mome_window_with_nan_is_refused(tmp_path):
    folder = tmp_path / "Dom" / "train"
    folder.mkdir(parents=True)
    (folder / "Dom_train.csv").write_text('input_seq,output_seq,text\n"[1, 2]","[3]",up\n"[1, NaN]","[3]",up\n')
    with pytest.raises(DataError, match="column 'input_seq', row 2, item 1: NaN"):
        load_mome_split("Dom", "train", tmp_path)


def test_mome_text_is_read_as_written(tmp_path):
    folder = tmp_path / "Dom" / "test"
    folder.mkdir(parents=True)
    (folder / "Dom_test.csv").write_text(
        'input_seq,output_seq,text\n"[1, 2]","[3]",1.5\n"[1, 2]","[3]",NA\n"[1, 2]","[3]",\n'
    )
    assert load_mome_split("Dom", "test", tmp_path).texts == ("1.5", "NA", "")  # a number or "NA" is text too
