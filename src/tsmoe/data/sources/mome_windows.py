"""The windows the MoME paper used on Time-MMD: ``<root>/<Domain>/{train,test}/<Domain>_{train,test}.csv``.

Columns ``input_seq`` and ``output_seq`` hold JSON lists of numbers; ``text`` is a language model's
summary written from features of the *future* window (a noisy label of the future: numbers on these
files compare only with the MoME paper). Validation is the last 10 % of the train file, in file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tsmoe.data.adapter import FixedWindowsAdapter, TextParams
from tsmoe.data.csv_files import read_csv_checked
from tsmoe.data.fixed_windows import TextWindows, TextWindowSplits, parse_number_lists
from tsmoe.data.parsing import check_texts_column
from tsmoe.errors import DataError
from tsmoe.paths import shipped_data_dir

DOMAINS = ("Energy", "Environment", "HealthAFR", "HealthUS", "SocialGood")


def load_mome_split(domain: str, part: str, root: str | Path | None = None) -> TextWindows:
    """Read the ``train`` or ``test`` windows of one domain."""
    root = Path(root) if root is not None else shipped_data_dir() / "mome_timemmd"
    path = root / domain / part / f"{domain}_{part}.csv"
    if not path.exists():
        path = path.with_name(path.name + ".gz")
    frame = read_csv_checked(path, text_columns=("text",))
    for column in ("input_seq", "output_seq", "text"):
        if column not in frame.columns:
            raise DataError(f"file '{path}': column '{column}' is missing; columns {list(frame.columns)}")
    texts = frame["text"]
    check_texts_column(texts, lambda i: f"file '{path}', column 'text', row {i + 1}")
    return TextWindows(
        inputs=parse_number_lists(frame["input_seq"].tolist(), f"file '{path}'", "input_seq"),
        targets=parse_number_lists(frame["output_seq"].tolist(), f"file '{path}'", "output_seq"),
        texts=tuple("" if not isinstance(t, str) else t for t in texts),
    )


def load_mome_windows(domain: str, root: str | Path | None = None) -> tuple[TextWindows, TextWindows, TextWindows]:
    """(train, validation, test): validation is the last 10 % of the train file, in file order."""
    train = load_mome_split(domain, "train", root)
    n_val = max(1, int(round(0.1 * len(train))))
    return (
        train.take(0, len(train) - n_val),
        train.take(len(train) - n_val, len(train)),
        load_mome_split(domain, "test", root),
    )


def load_mome_timemmd(domain: str, root: str | Path | None = None) -> TextWindowSplits:
    """The train, validation and test windows of one domain."""
    if domain not in DOMAINS and root is None:
        raise DataError(f"unknown MoME Time-MMD domain '{domain}'; shipped: {', '.join(DOMAINS)}")
    return TextWindowSplits(*load_mome_windows(domain, root), source=f"MoME Time-MMD windows, {domain}")


@dataclass
class MomeWindowsParams(TextParams):
    """``data`` keys for the MoME paper's Time-MMD windows (protocol P2): windows and splits are fixed."""

    domain: str = "HealthUS"  # Energy, Environment, HealthAFR, HealthUS, SocialGood
    root: str | None = None  # folder with <Domain>/{train,test}/<Domain>_{train,test}.csv; None: shipped
    text_encoder: Literal["minilm", "hashing", "hf", "none"] = "minilm"
    metrics_scale: Literal["original"] = "original"
    task: Literal["forecast", "trend"] = "forecast"  # trend: classify each window down / flat / up
    trend_threshold: float = 0.5  # |change| below this many input-window stds is "flat"


class MomeTimeMMD(FixedWindowsAdapter):
    name = "mome_timemmd"
    params = MomeWindowsParams
    description = "the MoME paper's Time-MMD windows with text, 5 domains (protocol P2)"
    folder = "mome_timemmd"

    def load(self, params: MomeWindowsParams) -> TextWindowSplits:
        return load_mome_timemmd(params.domain, params.root)
