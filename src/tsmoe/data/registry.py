"""The data sets tsmoe knows by name: the registry maps each name to its adapter (:mod:`tsmoe.data.adapter`)
and nothing more; each adapter owns its parameters, its loading and its preparation."""

from __future__ import annotations

from tsmoe.data.adapter import DataAdapter
from tsmoe.data.sources.ett import ETTh1
from tsmoe.data.sources.exchange_rate import ExchangeRate
from tsmoe.data.sources.irregular_table import IrregularTable
from tsmoe.data.sources.long_csv import LongCsv
from tsmoe.data.sources.mome_windows import MomeTimeMMD
from tsmoe.data.sources.physionet2012 import PhysioNet2012
from tsmoe.data.sources.time_mmd import TimeMMD
from tsmoe.errors import ConfigError

DATASETS: dict[str, DataAdapter] = {
    adapter.name: adapter
    for adapter in (PhysioNet2012(), ETTh1(), ExchangeRate(), TimeMMD(), MomeTimeMMD(), LongCsv(), IrregularTable())
}


def get_dataset(name: str) -> DataAdapter:
    if name not in DATASETS:
        raise ConfigError(f"unknown data set '{name}'; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def shipped_summary() -> list[tuple[str, str, int]]:
    """(name, description, bytes on disk) of every shipped data set."""
    return [(a.name, a.description, sum(f.stat().st_size for f in a.files())) for a in DATASETS.values() if a.folder]
