"""The tsmoe command, called in-process through its entry point."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.metric_dicts import flat
from tsmoe.cli import main
from tsmoe.data.sources.ett import load_ett
from tsmoe.metrics import BINARY_METRICS

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
    assert json.loads((trained / "metrics.json").read_text()).keys() == set(BINARY_METRICS)
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


def test_a_monitor_the_task_does_not_log_is_refused_before_training(tmp_path, capsys):
    recipe, out = "configs/dlinear-etth1.yaml", tmp_path / "x"
    assert main(["train", recipe, "--out", str(out), "--set", "training.monitor=val_auroc"]) == 2
    assert "training.monitor: 'val_auroc' is not logged by a forecast task" in capsys.readouterr().err
    assert not out.exists()  # refused before the run folder, not after an epoch


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
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "lstm" in rows and rows["mrmoe"].split()[1] == "irregular,window" and rows["dlinear"].split()[1] == "window"


def test_evaluate_writes_mrmoe_attention_and_gate_plots(small_physionet, tmp_path, capsys):
    run = tmp_path / "mrmoe"
    small = ["model.hidden_size=8", "model.d_model=8", "model.backbone_units=16", "training.max_epochs=1",
             "trainer.accelerator=cpu", "data.split_file=null", f"data.root={small_physionet}"]  # fmt: skip
    assert main(["train", "configs/mrmoe-physionet2012.yaml", "--out", str(run), *[f"--set={s}" for s in small]]) == 0
    trained_metrics = json.loads((run / "metrics.json").read_text())
    assert main(["evaluate", str(run)]) == 0
    # the training data's own test split: metrics.json keeps the form and the numbers training wrote
    assert flat(json.loads((run / "metrics.json").read_text())) == pytest.approx(flat(trained_metrics))
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


DLINEAR_FAST = ["--set", "data.lookback=24", "--set", "data.horizon=6", "--set", "training.max_epochs=1",
                "--set", "trainer.accelerator=cpu"]  # fmt: skip


def train(out, *extra):
    return main(["train", str(ROOT / "configs/dlinear-etth1.yaml"), "--out", str(out), *DLINEAR_FAST, *extra])


def test_overwrite_leaves_only_the_new_run_and_never_destroys_the_old_one_before_a_clean_start(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run) == 0
    (run / "report.html").write_text("the old run's report")
    (run / "plots").mkdir()
    old_weights = (run / "model.safetensors").read_bytes()
    assert train(run) == 2 and "is not empty" in capsys.readouterr().err  # no --overwrite: refused
    assert train(run, "--overwrite", "--set", "data.lookback=100000") == 2  # a start that fails ...
    assert (run / "model.safetensors").read_bytes() == old_weights and (run / "report.html").exists()  # ... keeps it
    assert train(run, "--overwrite", "--set", "seed=1") == 0
    assert not (run / "report.html").exists() and not (run / "plots").exists()
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 1


def test_a_failed_start_leaves_nothing_that_blocks_a_retry(tmp_path):
    run = tmp_path / "run"
    assert train(run, "--set", "data.lookback=100000") == 2
    assert not run.exists() or not any(run.iterdir())
    assert train(run) == 0


def test_overwrite_replaces_run_folders_only_and_out_must_be_a_folder(tmp_path, capsys):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert train(mine, "--overwrite") == 2
    assert "is not a tsmoe run folder" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert train(mine / "thesis.tex") == 2
    assert "is a file; --out takes a folder" in capsys.readouterr().err


def test_demo_keeps_the_rule_of_train(tmp_path, capsys):
    (tmp_path / "demo" / "mome").mkdir(parents=True)
    (tmp_path / "demo" / "mome" / "config.yaml").write_text("seed: 0\n")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_predict_refuses_an_output_that_is_its_input_a_folder_or_under_a_file(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert train(run) == 0
    frame = load_ett(None, "ETTh1").series[0]
    rows = pd.DataFrame({"unique_id": "ETTh1", "ds": frame.timestamps[:200]})
    for j, column in enumerate(load_ett(None, "ETTh1").columns):
        rows[column] = frame.values[:200, j]
    rows.to_csv(tmp_path / "in.csv", index=False)
    before = (tmp_path / "in.csv").read_bytes()
    monkeypatch.chdir(tmp_path)
    for output, message in [("./sub/../in.csv", "is the input"), (str(tmp_path), "is a folder"),
                            ("in.csv/out.csv", "is a file, so nothing can be written under it")]:  # fmt: skip
        if output.startswith("./sub"):
            (tmp_path / "sub").mkdir(exist_ok=True)
        assert main(["predict", str(run), "in.csv", "-o", output]) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "in.csv").read_bytes() == before
    # a file of the user's at -o is kept; the command's own earlier output is replaced; --overwrite replaces any
    (tmp_path / "notes.csv").write_text("my notes\n")
    assert main(["predict", str(run), "in.csv", "-o", "notes.csv"]) == 2
    assert "'notes.csv' exists and holds something else (its columns are ['my notes']" in capsys.readouterr().err
    assert (tmp_path / "notes.csv").read_text() == "my notes\n"
    (tmp_path / "fc.csv").touch()  # made empty beforehand: nothing to lose
    assert main(["predict", str(run), "in.csv", "-o", "fc.csv"]) == 0
    assert main(["predict", str(run), "in.csv", "-o", "fc.csv"]) == 0  # again: its own table, replaced
    assert main(["predict", str(run), "in.csv", "-o", "fc.csv", "--intervals", "0.9"]) == 0  # with intervals too
    assert main(["predict", str(run), "in.csv", "-o", "fc.csv"]) == 0  # and without them again
    (tmp_path / "series.csv").write_bytes(before)  # the user's series (same id column, other columns): kept
    assert main(["predict", str(run), "in.csv", "-o", "series.csv"]) == 2
    assert (tmp_path / "series.csv").read_bytes() == before
    assert main(["predict", str(run), "in.csv", "-o", "notes.csv", "--overwrite"]) == 0
    assert (tmp_path / "notes.csv").read_text() == (tmp_path / "fc.csv").read_text()
    assert main(["predict", str(run), "in.csv", "-o", "fc.parquet"]) == 0  # Parquet where the path says so
    parquet, written = pd.read_parquet(tmp_path / "fc.parquet"), pd.read_csv(tmp_path / "fc.csv", parse_dates=["ds"])
    pd.testing.assert_frame_equal(parquet, written, check_dtype=False)  # the dates as dates
    assert main(["predict", str(run), "in.csv", "-o", "fc.parquet", "--intervals", "0.9"]) == 0  # its own: replaced
    rows.to_parquet(tmp_path / "data.parquet")  # a user's series as Parquet: kept
    assert main(["predict", str(run), "in.csv", "-o", "data.parquet"]) == 2


@pytest.mark.parametrize("content", [b"- a\n- b\n", b"just a sentence\n", bytes(range(128, 256))])
def test_a_config_that_is_not_a_mapping_of_sections_is_a_tsmoe_error(tmp_path, capsys, content):
    (tmp_path / "recipe.yaml").write_bytes(content)
    assert main(["train", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run")]) == 2
    assert "tsmoe: error: config file" in capsys.readouterr().err


def test_an_output_folder_that_cannot_be_made_is_a_tsmoe_error(capsys):
    assert train(Path("/proc/tsmoe-cannot-write/run")) == 2  # /proc takes no new folders, even from root
    err = capsys.readouterr().err
    assert err.strip().startswith("tsmoe: error: cannot write '/proc/tsmoe-cannot-write") and "Traceback" not in err


def test_a_run_whose_output_is_no_terminal_prints_a_line_per_epoch(tmp_path, capsys):
    assert train(tmp_path / "run", "--set", "training.max_epochs=2") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "train_loss" in lines[0] and "val_loss" in lines[0]
    for line in lines:  # the epoch's own seconds, and those since training began
        epoch, in_all = re.search(r"\((\d+) s; (\d+) s in all\)$", line).groups()
        assert int(epoch) <= int(in_all)
    assert train(tmp_path / "quiet", "--set", "training.max_epochs=2", "--set", "logging.epoch_lines=false") == 0
    assert "epoch 1/2" not in capsys.readouterr().err
