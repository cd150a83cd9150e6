"""Whatever a user types or points tsmoe at, it ends with success or with a one-line tsmoe error (exit 2),
never a Python traceback, and it changes no file it was not asked to write.

Hypothesis generates ``--set`` overrides (known keys with values of any type and spelling, and unknown
keys), config files of any text or bytes, and small broken data files for ``train`` and ``predict``.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsmoe.cli import main

ROOT = Path(__file__).resolve().parents[2]
RECIPE = str(ROOT / "configs" / "dlinear-etth1.yaml")
FAST = ["--set", "training.max_epochs=1", "--set", "trainer.accelerator=cpu", "--set", "data.horizon=6"]

values = st.one_of(
    st.integers(-3, 40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e-4", ".5", "1_000", "null", "true", "[0.7, 0.1, 0.2]", "[1, 2]", "{a: 1}", "''", "-0.5",
                     "[0.5, 0.2, 0.1]", "nan", "ETTh2", "minilm", "1e400"]),
    st.text(max_size=8),
)  # fmt: skip
keys = st.sampled_from([
    "training.lr", "training.batch_size", "training.patience", "training.weight_decay", "training.gradient_clip_val",
    "training.ema_decay", "training.lr_schedule", "data.lookback", "data.split_fractions", "data.split_lengths",
    "data.scale", "data.file", "data.text_encoder", "model.moving_avg", "model.individual", "model.hidden",
    "trainer.precision", "logging.csv", "seed", "nosection.key", "training", "",
])  # fmt: skip
overrides = st.lists(st.tuples(keys, values).map(lambda kv: f"{kv[0]}={kv[1]}"), max_size=3)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def ends_cleanly(code: int, err: str) -> None:
    assert code in (0, 2), err
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.startswith("tsmoe:")]
        assert len(lines) == 1 and lines[0].startswith("tsmoe: error: "), err[-2000:]
    assert "Traceback" not in err


@pytest.mark.slow
@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sets=overrides)
def test_train_with_any_overrides_succeeds_or_says_why(capsys, sets):
    with tempfile.TemporaryDirectory() as folder:
        before = digest(ROOT / "configs")
        code = main(["train", RECIPE, "--out", str(Path(folder) / "run"), *FAST, *[f"--set={s}" for s in sets]])
        ends_cleanly(code, capsys.readouterr().err)
        assert digest(ROOT / "configs") == before
        assert {p.name for p in Path(folder).iterdir()} <= {"run"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_any_config_file_is_read_or_refused(capsys, content):
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "recipe.yaml"
        config.write_bytes(content)
        code = main(["train", str(config), "--out", str(Path(folder) / "run"), *FAST])
        ends_cleanly(code, capsys.readouterr().err)
        assert config.read_bytes() == content


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("property") / "run"
    assert main(["train", RECIPE, "--out", str(run), *FAST, "--set", "data.lookback=24"]) == 0
    return run


csv_cell = st.one_of(st.sampled_from(["", "NA", "1.5", "-3", "2016-07-01 00:00:00", "x", "1e9", "inf"]),
                     st.text(max_size=5))  # fmt: skip
csv_files = st.one_of(
    st.binary(max_size=300),
    st.lists(st.lists(csv_cell, min_size=1, max_size=9), max_size=8).map(
        lambda rows: "\n".join(",".join(row) for row in rows).encode()
    ),
    st.just(b"unique_id,ds,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT\n"),
)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=csv_files)
def test_predict_on_any_file_writes_predictions_or_says_why(trained, capsys, content):
    with tempfile.TemporaryDirectory() as folder:
        given_file = Path(folder) / "input.csv"
        given_file.write_bytes(content)
        run_files = digest(trained)
        code = main(["predict", str(trained), str(given_file), "-o", str(Path(folder) / "out.csv")])
        ends_cleanly(code, capsys.readouterr().err)
        assert given_file.read_bytes() == content and digest(trained) == run_files
        assert (Path(folder) / "out.csv").exists() == (code == 0)
