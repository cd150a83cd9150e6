"""Loading never unpickles: a malicious pickle planted where weights or a cache entry belong is refused
(weights) or discarded and rebuilt (cache), and its payload never runs."""

import pickle
import shutil

import numpy as np
import pytest

from tsmoe import Estimator
from tsmoe.data.cache import cached_arrays
from tsmoe.errors import ModelFileError
from tsmoe.paths import cache_dir


class Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_as_weights_is_refused_without_running(tmp_path):
    run = tmp_path / "run"
    Estimator("dlinear", "etth1", data_params={"lookback": 24, "horizon": 6}, training={"max_epochs": 1},
              trainer={"accelerator": "cpu"}).fit(run_dir=run)  # fmt: skip
    marker = tmp_path / "pwned"
    (run / "model.safetensors").write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(ModelFileError, match="model.safetensors"):
        Estimator.load(run)
    assert not marker.exists()
    shutil.copy(run / "model.safetensors", run / "preprocessing.safetensors")
    with pytest.raises(ModelFileError):
        Estimator.load(run)
    assert not marker.exists()


def test_pickle_in_the_cache_is_discarded_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = cache_dir() / "test-namespace" / "key.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(""), np.array([Payload(str(marker))], dtype=object), allow_pickle=True)
    path.with_suffix(".npy").rename(path)  # an object array (a pickle) where an entry should be
    arrays = cached_arrays("test-namespace", "key", lambda: {"x": np.arange(3)})
    np.testing.assert_array_equal(arrays["x"], np.arange(3))  # rebuilt from the source
    assert not marker.exists()
