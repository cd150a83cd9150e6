"""Windows with text: the leakage rule on raw Time-MMD and on users' long-format text, and the P2 data set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsmoe import Estimator
from tsmoe.data.long_format import from_long_dataframe
from tsmoe.data.prepared import prepare_forecasting
from tsmoe.data.registry import get_dataset
from tsmoe.data.sources.mome_windows import MomeWindowsParams
from tsmoe.data.sources.time_mmd import TimeMMDParams
from tsmoe.errors import DataError
from tsmoe.text.encoders import HashingEncoder


def long_frame() -> pd.DataFrame:
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    notes = [f"note of day {i}" if i % 3 == 0 else None for i in range(30)]
    return pd.DataFrame({"unique_id": "s", "ds": days, "y": np.sin(np.arange(30.0)), "note": notes})


def test_a_window_sees_only_text_dated_before_its_forecast():
    data = from_long_dataframe(long_frame(), text_col="note")
    prepared = prepare_forecasting(data, 5, 2, (0.5, 0.25, 0.25), text_encoder="hashing", text_k=2,
                                   encoder_options={"dim": 8})  # fmt: skip
    windows = prepared.train
    for item, text in enumerate(windows.texts):
        _, start = windows.windows.index[item]
        first_forecast_day = start + 5  # training rows start at row 0
        visible = [f"note of day {d}" for d in range(0, first_forecast_day) if d % 3 == 0][-2:]
        assert text == "\n".join(visible)
    batch = prepared.collate([windows[i] for i in range(3)])
    assert batch["text_tokens"].shape[0] == 3 and batch["text_mask"].any()


def test_newest_first_joins_the_same_texts_in_reverse_order():
    data = from_long_dataframe(long_frame(), text_col="note")
    options = {"text_encoder": "hashing", "text_k": 3, "encoder_options": {"dim": 8}}
    oldest = prepare_forecasting(data, 5, 2, (0.5, 0.25, 0.25), **options)
    newest = prepare_forecasting(data, 5, 2, (0.5, 0.25, 0.25), text_newest_first=True, **options)
    assert any(text.count("\n") == 2 for text in oldest.train.texts)  # three texts seen somewhere
    for first, second in zip(oldest.train.texts, newest.train.texts, strict=True):
        assert second.split("\n") == first.split("\n")[::-1]


def test_each_fact_encodes_every_fact_whole_and_reads_them_in_order():
    data = from_long_dataframe(long_frame(), text_col="note")
    options = {"text_encoder": "hashing", "text_k": 2, "encoder_options": {"dim": 8, "max_tokens": 6}}
    joined = prepare_forecasting(data, 5, 2, (0.5, 0.25, 0.25), **options)
    each = prepare_forecasting(data, 5, 2, (0.5, 0.25, 0.25), text_each_fact=True, **options)
    encoder = HashingEncoder(dim=8, max_tokens=6)
    assert each.train.texts == joined.train.texts  # the same facts are visible either way
    seen_two = 0
    for item, text in enumerate(each.train.texts):
        facts = text.split("\n")
        window = each.train[item]
        if len(facts) == 2:  # 4 + 4 word tokens: joined, the limit of 6 cuts the newest; each whole
            seen_two += 1
            parts = encoder.encode(facts)
            np.testing.assert_array_equal(window["text_tokens"], np.concatenate([p.tokens for p in parts]))
            mean = (parts[0].pooled + parts[1].pooled) / 2
            np.testing.assert_allclose(window["text_pooled"], mean / np.linalg.norm(mean), rtol=1e-6)
            assert len(joined.train[item]["text_tokens"]) == 6 and len(window["text_tokens"]) == 8
        else:  # one fact (or none): exactly what the joined encoding gives
            np.testing.assert_array_equal(window["text_tokens"], joined.train[item]["text_tokens"])
    assert seen_two > 0
    assert each.dims["text_dim"] == 8


def test_raw_time_mmd_text_respects_end_dates():
    params = TimeMMDParams(domain="Health_US", lookback=24, horizon=12, text_encoder="hashing", hashing_dim=8)
    source = get_dataset("time_mmd").load(params)
    prepared = get_dataset("time_mmd").prepare(params, source, 0)
    stamps, texts = source.texts["Health_US"]
    series = source.series[0]
    borders = prepared.split["rows"]["Health_US"]
    for part, rows in zip((prepared.train, prepared.test), (borders[0], borders[2]), strict=True):
        for item in range(0, len(part), 97):
            _, start = part.windows.index[item]
            forecast_start = series.timestamps[rows[0] + start + 24]
            visible = [t for s, t in zip(stamps, texts, strict=True) if s < forecast_start][-4:]  # date-sorted
            assert part.texts[item] == "\n".join(visible)
            assert all(s < forecast_start for s, t in zip(stamps, texts, strict=True) if t in visible)


def test_text_encoder_on_data_without_text_is_refused():
    with pytest.raises(DataError, match="has no text"):
        Estimator("mome", "etth1", data_params={"lookback": 24, "horizon": 6, "text_encoder": "hashing"}).fit()


def test_p2_windows_are_the_published_files():
    params = MomeWindowsParams(domain="HealthUS", text_encoder="none")
    adapter = get_dataset("mome_timemmd")
    prepared = adapter.prepare(params, adapter.load(params), 0)
    assert (len(prepared.train), len(prepared.val), len(prepared.test)) == (442, 49, 124)
    assert prepared.dims == {"lookback": 14, "horizon": 3, "n_channels": 1, "text_dim": 0}
