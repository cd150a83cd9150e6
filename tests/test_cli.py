"""The tsmoe command, called in-process through its entry point."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tsmoe.cli import main
from tsmoe.data.sources.ett import load_ett

ROOT = Path(__file__).resolve().parents[1]

LSTM = "configs/lstm-physionet2012.yaml"
FAST = [
    "model.hidden_size=8",
    "model.head_hidden=8",
    "training.max_epochs=1",
    "trainer.accelerator=cpu",
    "data.split_file=null",
]


@pytest.fixture(scope="module")
def trained(small_physionet, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    sets = [f"--set={s}" for s in FAST + [f"data.root={small_physionet}"]]
    assert main(["train", LSTM, "--out", str(out), *sets]) == 0
    return out


def test_train_prints_and_writes_metrics(trained, capsys):
    assert json.loads((trained / "metrics.json").read_text()).keys() == {"auroc", "auprc", "accuracy"}
    assert "root: " in (trained / "config.yaml").read_text()


def test_evaluate_on_another_copy_of_the_data(trained, other_physionet, capsys):
    assert main(["evaluate", str(trained), "--set", f"data.root={other_physionet}"]) == 0
    out = capsys.readouterr().out
    assert "split 'all'" in out and "auroc" in out
    written = json.loads((trained / "metrics-eval.json").read_text())
    assert written["split"] == "all" and written["data"] == {"root": str(other_physionet)}


def test_predict_writes_probabilities(trained, other_physionet, tmp_path):
    out = tmp_path / "pred.csv"
    assert main(["predict", str(trained), str(other_physionet), "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["record_id", "probability", "prediction"] and len(frame) == 200
    assert frame["probability"].between(0, 1).all()


def test_unknown_key_is_an_error_not_ignored(tmp_path, capsys):
    assert main(["train", LSTM, "--out", str(tmp_path / "x"), "--set", "model.hiden_size=3"]) == 2
    assert "unknown key(s) model.hiden_size" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_refuses_to_overwrite_a_run(trained, capsys):
    assert main(["train", LSTM, "--out", str(trained), *[f"--set={s}" for s in FAST]]) == 2
    assert "not empty" in capsys.readouterr().err


def test_forecast_predict_from_wide_csv(tmp_path):
    run = tmp_path / "dl"
    assert (
        main(
            [
                "train",
                "configs/dlinear-etth1.yaml",
                "--out",
                str(run),
                "--set",
                "training.max_epochs=1",
                "--set",
                "data.horizon=24",
                "--set",
                "trainer.accelerator=cpu",
            ]
        )
        == 0
    )
    recent = tmp_path / "recent.csv"
    series = load_ett().series[0]
    frame = pd.DataFrame(series.values[-200:], columns=load_ett().columns)
    frame.insert(0, "date", pd.to_datetime(series.timestamps[-200:]))
    frame.to_csv(recent, index=False)
    assert main(["predict", str(run), str(recent), "-o", str(tmp_path / "f.csv")]) == 0
    forecast = pd.read_csv(tmp_path / "f.csv")
    assert len(forecast) == 24 and forecast["step"].tolist() == list(range(1, 25))
    assert pd.to_datetime(forecast["ds"]).iloc[0] == pd.Timestamp(series.timestamps[-1]) + pd.Timedelta(hours=1)


def test_datasets_and_models_listings(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("physionet2012", "etth1", "exchange_rate", "time_mmd", "mome_timemmd"):
        assert name in out
    assert main(["models"]) == 0
    assert "lstm" in capsys.readouterr().out


def test_evaluate_writes_mrmoe_attention_and_gate_plots(small_physionet, tmp_path, capsys):
    run = tmp_path / "mrmoe"
    small = ["model.hidden_size=8", "model.d_model=8", "model.backbone_units=16", "training.max_epochs=1",
             "trainer.accelerator=cpu", "data.split_file=null", f"data.root={small_physionet}"]  # fmt: skip
    assert main(["train", "configs/mrmoe-physionet2012.yaml", "--out", str(run), *[f"--set={s}" for s in small]]) == 0
    trained_metrics = json.loads((run / "metrics.json").read_text())
    assert main(["evaluate", str(run)]) == 0
    # the training data's own test split: metrics.json keeps the form and the numbers training wrote
    assert json.loads((run / "metrics.json").read_text()) == pytest.approx(trained_metrics)
    out = capsys.readouterr().out
    for name in ("feature_attention.png", "stays.png"):
        path = run / "plots" / name
        assert f"plot: {path}" in out and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mome_recipe_trains_and_evaluates_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "mome"
    small = ["data.domain=SocialGood", "data.text_encoder=hashing", "training.max_epochs=2", "trainer.accelerator=cpu"]
    assert main(["train", "configs/mome-mome_timemmd.yaml", "--out", str(run), *[f"--set={s}" for s in small]]) == 0
    assert main(["evaluate", str(run)]) == 0
    assert "mse" in capsys.readouterr().out


def test_demo_trains_reloads_and_reports_both_systems(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--set", "training.max_epochs=1"]) == 0
    out = capsys.readouterr().out
    assert out.count("(same weights, same numbers)") == 2
    for run in ("mome", "mrmoe"):
        assert json.loads((tmp_path / run / "meta.json").read_text())["epochs_run"] == 1
        assert f"report: {tmp_path / run / 'report.html'}" in out and (tmp_path / run / "report.html").stat().st_size
    assert (tmp_path / "mrmoe" / "plots" / "feature_attention.png").exists()


def test_a_run_trained_on_a_relative_root_is_evaluated_from_any_folder(small_physionet, tmp_path, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(small_physionet, work / "stays")
    monkeypatch.chdir(work)
    sets = ["data.root=stays", "data.split_file=null", "model.hidden_size=8", "training.max_epochs=1",
            "trainer.accelerator=cpu"]  # fmt: skip
    assert main(["train", str(ROOT / "configs/lstm-physionet2012.yaml"), "--out", "run",
                 *[f"--set={s}" for s in sets]]) == 0  # fmt: skip
    stored = yaml.safe_load((work / "run" / "config.yaml").read_text())
    assert stored["data"]["root"] == str((work / "stays").resolve())
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(work / "run")]) == 0
