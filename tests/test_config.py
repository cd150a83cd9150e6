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
        (["training.batch_size=1.8446744073709556e+19"], r"training.batch_size: expected an integer within ±9.2e18"),
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
        model = model.removesuffix("_reference")  # a paper's own settings, beside the shipped recipe
        assert config.model["name"] == model and config.data["name"].replace("_", "") == data.replace("_", "")


@pytest.mark.parametrize(
    ("written", "value"),
    [("1e-4", 1e-4), ("1E-4", 1e-4), (".5", 0.5), ("1_000", 1000.0), ("3", 3.0), ("2.5e-3", 2.5e-3)],
)
def test_every_spelling_of_a_number_is_a_number(written, value, tmp_path):
    # YAML 1.1 reads 1e-4 (no dot) as a string; a person means a number, on the command line and in a recipe
    assert load_config("configs/dlinear-etth1.yaml", [f"training.lr={written}"]).training.lr == pytest.approx(value)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: {{name: etth1}}\nmodel: {{name: dlinear}}\ntraining: {{lr: {written}}}\n")
    assert load_config(recipe).training.lr == pytest.approx(value)


def test_integer_settings_take_integral_spellings_and_refuse_fractions():
    assert load_config("configs/dlinear-etth1.yaml", ["training.max_epochs=1_0"]).training.max_epochs == 10
    assert load_config("configs/dlinear-etth1.yaml", ["training.batch_size=1e2"]).training.batch_size == 100
    with pytest.raises(ConfigError, match=r"training.batch_size: expected an integer, got '2.5e1x'"):
        load_config("configs/dlinear-etth1.yaml", ["training.batch_size=2.5e1x"])
    with pytest.raises(ConfigError, match=r"training.batch_size: expected an integer, got 32.5"):
        load_config("configs/dlinear-etth1.yaml", ["training.batch_size=32.5"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.batch_size=0", "batch_size must be at least 1, got 0"),
        ("training.eval_batch_size=-3", "eval_batch_size must be at least 1"),
        ("training.max_epochs=0", "max_epochs must be at least 1, got 0"),
        ("training.lr=-1e-3", r"lr must be a positive number, got -0.001"),
        ("training.lr=0", "lr must be a positive number"),
        ("training.weight_decay=-0.1", "weight_decay must be >= 0"),
        ("training.patience=-1", "patience must be >= 0"),
        ("training.gradient_clip_val=0", "gradient_clip_val must be positive or null"),
        ("data.split_fractions=[0.5,0.2,0.1]", r"add up to 1; got \[0.5, 0.2, 0.1\]"),
        ("data.split_fractions=[0.9,0.1]", "split_fractions must be three shares"),
        ("data.split_lengths=[100,0,50]", "split_lengths must be three row counts"),
    ],
)
def test_settings_out_of_range_are_config_errors_that_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("configs/dlinear-etth1.yaml", [override])
    section = override.split(".")[0]
    with pytest.raises(ConfigError, match=rf"^{section}"):  # the message starts with the section it is in
        load_config("configs/dlinear-etth1.yaml", [override])


def test_physionet_split_fractions_are_checked_too():
    with pytest.raises(ConfigError, match="split_fractions must be three shares"):
        load_config("configs/lstm-physionet2012.yaml", ["data.split_fractions=[0.8,0.3,0.1]"])


def test_a_yaml_boolean_given_for_a_name_is_refused_with_a_hint_to_quote_it():
    with pytest.raises(ConfigError, match=r"data.classes\[0\]: expected a string, got True \(YAML reads yes"):
        load_config("configs/mrmoe-irregular.yaml", ["data.classes=[yes, no]"])
    with pytest.raises(ConfigError, match="classes must name at least two classes"):
        load_config("configs/mrmoe-irregular.yaml", ["data.classes=[died]"])
    with pytest.raises(ConfigError, match="label_type 'number' makes the labels numbers to regress"):
        load_config("configs/mrmoe-irregular.yaml", ["data.classes=[a, b]", "data.label_type=number"])
    config = load_config("configs/mrmoe-irregular.yaml", ["data.classes=['no', 'yes']"])
    assert config.data["classes"] == ["no", "yes"]
