"""Reading a teacher file: a CSV of training items' probabilities from any model, checked before use."""

import numpy as np
import pandas as pd
import pytest
import torch

from tsmoe.errors import DataError
from tsmoe.training.teacher_file import read_teacher_file

IDS = np.array([132539, 132540, 132541])


def write(path, **columns) -> str:
    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


def test_a_file_is_read_in_the_order_of_the_training_items(tmp_path):
    path = write(tmp_path / "t.csv", record_id=[132541, 132539, 132540], probability=[0.9, 0.1, 0.5])
    torch.testing.assert_close(read_teacher_file(path, IDS, 2), torch.tensor([0.1, 0.5, 0.9]))
    three = write(
        tmp_path / "m.csv", record_id=IDS, probability_0=[0.2, 0.5, 1.0], probability_1=[0.3, 0.5, 0.0],
        probability_2=[0.5, 0.0, 0.0],
    )  # fmt: skip
    assert read_teacher_file(three, IDS, 3).shape == (3, 3)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"record_id": IDS, "p": [0.1, 0.2, 0.3]}, "no column 'probability'"),
        ({"record_id": [132539, 132539, 132541], "probability": [0.1, 0.2, 0.3]}, "row 2: record '132539' appears"),
        ({"record_id": IDS, "probability": [0.1, 1.2, 0.3]}, "column 'probability', row 2: '1.2' is not a probability"),
        ({"record_id": IDS, "probability": [0.1, "high", 0.3]}, "row 2: 'high' is not a probability"),
        ({"record_id": IDS, "probability": [0.1, None, 0.3]}, "row 2: '' is not a probability"),
        ({"record_id": [132539, 132540], "probability": [0.1, 0.2]}, "1 training record.* no row .*'132541'"),
        (
            {"record_id": [*IDS, 140000], "probability": [0.1, 0.2, 0.3, 0.4]},
            "1 row.* not training items.*'140000'.*never validation or test",
        ),
    ],
)
def test_a_bad_teacher_file_is_refused_saying_where(tmp_path, columns, message):
    with pytest.raises(DataError, match=message):
        read_teacher_file(write(tmp_path / "bad.csv", **columns), IDS, 2)


def test_multiclass_rows_must_sum_to_one(tmp_path):
    path = write(
        tmp_path / "m.csv", record_id=IDS, probability_0=[0.2, 0.5, 0.5], probability_1=[0.3, 0.5, 0.4],
        probability_2=[0.5, 0.0, 0.0],
    )  # fmt: skip
    with pytest.raises(DataError, match="row 3: the probabilities sum to 0.900000, not 1"):
        read_teacher_file(path, IDS, 3)
