"""``model.text: auto``: a text-modulated forecaster trained with and without its text, the setting with the
better validation loss kept (refit after the choice, as the recipe asks), the choice in ``meta.json``."""

from __future__ import annotations

import json

import pytest
import yaml

from tsmoe.cli import main
from tsmoe.errors import ConfigError
from tsmoe.models.registry import build_model

RECIPE = "configs/mome-mome_timemmd.yaml"  # refit: true
SMALL = ["data.domain=SocialGood", "data.text_encoder=hashing", "training.max_epochs=2", "trainer.accelerator=cpu"]


def train(run, *sets: str) -> dict:
    assert main(["train", RECIPE, "--out", str(run), *[f"--set={s}" for s in [*SMALL, *sets]]]) == 0
    return json.loads((run / "meta.json").read_text())


@pytest.mark.slow
def test_text_auto_keeps_the_setting_validation_prefers_and_says_so(tmp_path, capsys):
    meta = train(tmp_path / "auto", "model.text=auto")
    choice = meta["text_choice"]
    assert choice["monitor"] == "val_loss" and set(choice["validation"]) == {"both", "none"}
    scores = choice["validation"]
    assert choice["chosen"] == ("none" if scores["none"] <= scores["both"] else "both")
    saved = yaml.safe_load((tmp_path / "auto" / "config.yaml").read_text())
    assert saved["model"]["text"] == choice["chosen"] and saved["training"]["refit"] is True
    assert "refit" in meta  # the chosen setting is refit, as the recipe asks
    assert "model.text auto: training with text " + choice["chosen"] in capsys.readouterr().out
    # each candidate's validation loss is what that setting gives trained alone, without the refit
    for text in ("both", "none"):
        alone = train(tmp_path / text, f"model.text={text}", "training.refit=false")
        assert alone["best_score"] == pytest.approx(scores[text], rel=1e-6)
    assert main(["evaluate", str(tmp_path / "auto")]) == 0


def test_text_auto_is_refused_where_there_is_nothing_to_choose(tmp_path, capsys):
    sets = ["data.domain=SocialGood", "data.text_encoder=none", "model.text=auto"]
    assert main(["train", RECIPE, "--out", str(tmp_path / "r"), *[f"--set={s}" for s in sets]]) == 2
    assert "data.text_encoder is none" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything was written
    sets = ["data.domain=SocialGood", "data.text_encoder=hashing", "model.text=auto", "model.text_as_tokens=true"]
    assert main(["train", RECIPE, "--out", str(tmp_path / "t"), *[f"--set={s}" for s in sets]]) == 2
    assert "reads text as tokens" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="a choice made in training"):
        build_model({"name": "mome", "text": "auto"}, {"n_features": 1, "text_dim": 8}, "forecast", "window")
