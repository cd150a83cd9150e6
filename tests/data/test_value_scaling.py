"""Scaling of irregular series: z-scores and the quantile map, fit on training records only."""

from statistics import NormalDist

import numpy as np
import pytest

from tests.metric_dicts import flat
from tsmoe import Estimator
from tsmoe.config import load_config
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, IrregularSet
from tsmoe.errors import ConfigError, DataError


def irregular(values: np.ndarray, static: np.ndarray | None = None) -> IrregularSet:
    """One record per row of ``values (N, F)``, each a single step at time 1."""
    n = len(values)
    return IrregularSet(
        record_ids=np.arange(n),
        offsets=np.arange(n + 1),
        times=np.ones(n, dtype=np.float32),
        values=values.astype(np.float32),
        static=(static if static is not None else np.zeros((n, 1))).astype(np.float32),
        labels=np.arange(n) % 2,
        variables=tuple(f"v{i}" for i in range(values.shape[1])),
        static_names=("s",),
    )


def test_quantile_map_makes_a_heavy_tail_standard_normal_and_keeps_order():
    rng = np.random.default_rng(0)
    lab = np.exp(rng.normal(3, 1.5, 5000))  # log-normal, like ALT: a z-score is dominated by the tail
    data = irregular(lab[:, None])
    quantile = IrregularNormalizer.fit(data, "quantile")
    z = quantile.scale_values(data.values)[:, 0]
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.02
    assert np.abs(z).max() <= NormalDist().inv_cdf(1 - 1e-3) + 1e-6  # clipped at the grid's ends
    order = np.argsort(lab)
    assert np.all(np.diff(z[order]) >= 0)  # monotone: every ordering of the raw values is kept
    zscore = IrregularNormalizer.fit(data).scale_values(data.values)[:, 0]
    assert zscore.max() > 10  # what the quantile map is for
    # values outside the training range map to the ends, not beyond
    outside = quantile.scale_values(np.array([[lab.min() / 10], [lab.max() * 10]], dtype=np.float32))[:, 0]
    assert outside == pytest.approx([z.min(), z.max()], abs=1e-6)


def test_ties_map_to_the_middle_of_their_share_and_missing_stays_zero():
    # a flag observed as 0 in 30 % of the steps and 1 in 70 %; a second variable never observed
    flag = np.r_[np.zeros(300), np.ones(700)]
    values = np.stack([flag, np.full(1000, np.nan)], axis=1)
    values[::10, 0] = np.nan  # some steps do not observe the flag
    data = irregular(values)
    scaler = IrregularNormalizer.fit(data, "quantile")
    z = scaler.scale_values(data.values)
    normal = NormalDist()
    assert z[~np.isnan(values[:, 0]) & (flag == 0), 0] == pytest.approx(normal.inv_cdf(0.15), abs=0.01)
    assert z[~np.isnan(values[:, 0]) & (flag == 1), 0] == pytest.approx(normal.inv_cdf(0.65), abs=0.01)
    assert np.all(z[np.isnan(values[:, 0]), 0] == 0)  # unobserved: 0, and the mask says so
    assert np.all(z[:, 1] == 0)  # never observed in training: 0 everywhere, not NaN
    assert np.isnan(scaler.value_quantiles[1]).all()


def test_statistics_come_from_training_records_and_survive_a_save(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.gamma(1.0, 10.0, (2000, 3))
    static = rng.normal(60, 15, (2000, 1))
    train, other = irregular(values[:1000], static[:1000]), irregular(values[1000:] * 3, static[1000:])
    scaler = IrregularNormalizer.fit(train, "quantile")
    restored = IrregularNormalizer.from_state({k: np.array(v) for k, v in scaler.state().items()})
    assert restored.scaling == "quantile"
    np.testing.assert_array_equal(restored.scale_values(other.values), scaler.scale_values(other.values))
    item = IrregularDataset(other, restored)[0]
    np.testing.assert_array_equal(item["values"].numpy(), scaler.scale_values(other.values[:1]))
    np.testing.assert_array_equal(item["static"].numpy(), scaler.scale_static(other.static[:1])[0])
    # data three times larger than training maps mostly to the top of the training distribution
    assert scaler.scale_values(other.values).mean() > 0.5
    # a state saved before quantile scaling existed has no tables: it is read as z-scores
    old = {k: v for k, v in scaler.state().items() if "quantiles" not in k}
    assert IrregularNormalizer.from_state(old).scaling == "zscore"


def test_unknown_scaling_is_refused():
    with pytest.raises(DataError, match="unknown value scaling 'rank'"):
        IrregularNormalizer.fit(irregular(np.ones((4, 1))), "rank")
    with pytest.raises(ConfigError, match="data.value_scaling"):
        load_config("configs/gru-physionet2012.yaml", ["data.value_scaling=rank"])


def test_a_quantile_scaled_run_reloads_with_its_tables(small_physionet, tmp_path):
    estimator = Estimator(
        "gru",
        "physionet2012",
        model_params={"hidden_size": 8, "head_hidden": 8},
        data_params={"root": str(small_physionet), "split_file": None, "value_scaling": "quantile"},
        training={"max_epochs": 1, "batch_size": 64},
        trainer={"accelerator": "cpu"},
    ).fit(run_dir=tmp_path / "run")
    assert estimator.state_["value_quantiles"].shape[1] > 1
    loaded = Estimator.load(tmp_path / "run")
    assert flat(loaded.evaluate()) == pytest.approx(flat(estimator.metrics_), abs=1e-7)
