import pytest

from tsmoe.config import apply_overrides, load_config, resolve
from tsmoe.errors import ConfigError

BASE = {"data": {"name": "etth1"}, "model": {"name": "dlinear"}}


def test_recipes_resolve_with_every_default_filled():
    config = load_config("configs/dlinear-etth1.yaml")
    assert config.data["lookback"] == 96 and config.data["split_lengths"] == [8640, 2880, 2880]
    assert config.model == {"name": "dlinear", "moving_avg": 25, "individual": False}
    assert config.trainer["strategy"] == "auto"
    assert load_config("configs/lstm-physionet2012.yaml").data["split_file"] == "shipped"


def test_overrides_reach_every_section():
    config = load_config(
        "configs/dlinear-etth1.yaml",
        [
            "data.root=/somewhere",
            "model.individual=true",
            "training.lr=0.01",
            "trainer.devices=2",
            "seed=3",
            "logging.tensorboard=true",
        ],
    )
    assert config.data["root"] == "/somewhere" and config.model["individual"] is True
    assert config.training.lr == 0.01 and config.trainer["devices"] == 2 and config.seed == 3
    assert config.logging.tensorboard is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.hidden=3"], r"unknown key\(s\) model.hidden; valid keys: moving_avg, individual"),
        (["data.lookbak=3"], r"unknown key\(s\) data.lookbak"),
        (["training.epochs=3"], r"unknown key\(s\) training.epochs"),
        (["trainer.gpus=1"], "unknown key trainer.gpus: not an argument of lightning.Trainer"),
        (["trainer.max_epochs=1"], "trainer.max_epochs is set by tsmoe"),
        (["model.name=transformerxl"], "unknown model 'transformerxl'; known: "),
        (["data.name=mnist"], "unknown data set 'mnist'; known: "),
        (["training.lr=fast"], "training.lr: expected a number, got 'fast'"),
        (["data.horizon=1.5"], "data.horizon: expected an integer"),
        (["data.metrics_scale=log"], r"data.metrics_scale: must be one of \['scaled', 'original'\]"),
        (["optimizer.lr=1"], "unknown section 'optimizer'"),
        (["lr"], "--set expects key=value"),
        (["training.ema_decay=1"], r"training: ema_decay must lie in \(0, 1\) or be null \(off\), got 1"),
        (["training.forecast_loss=log"], r"training.forecast_loss: must be one of \['window', 'original', 'mape'\]"),
        (["training.lr_factor=1.5"], r"training: lr_factor must lie in \(0, 1\), got 1.5"),
        (["training.lr_schedule=step"], r"training.lr_schedule: must be one of \['constant', 'cosine', 'plateau'\]"),
        (["training.refit=true", "training.lr_schedule=plateau"], "refit cannot replay lr_schedule 'plateau'"),
        (["training.refit=true", "training.distill_from=[runs/teacher]"], "refit cannot distil"),
    ],
)
def test_bad_keys_and_values_are_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve(apply_overrides(BASE, overrides))


def test_missing_config_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_resolved_config_round_trips_through_yaml(tmp_path):
    import yaml

    config = load_config("configs/lstm-physionet2012.yaml", ["model.hidden_size=8"])
    again = resolve(yaml.safe_load(config.to_yaml()))
    assert again.to_dict() == config.to_dict()


def test_every_shipped_recipe_resolves():
    from pathlib import Path

    recipes = sorted(Path("configs").glob("*.yaml"))
    assert len(recipes) >= 9
    for recipe in recipes:
        config = load_config(recipe)
        model, data = recipe.stem.split("-", 1)
        assert config.model["name"] == model and config.data["name"].replace("_", "") == data.replace("_", "")
