"""``model.text: auto``: whether a text-modulated forecaster reads its text, chosen on validation.

Text helps some series and hurts others (P3 on raw Time-MMD: ``docs/MOME.md``), and which is which is not
known before training. With ``model.text: auto`` training fits the model twice, reading the text (``both``:
EiLM and Router Modulation) and without it (``none``), each with the run's seed and settings but without
``training.refit``, and keeps the setting whose best validation score (the run's monitor, ``val_loss`` for a
forecaster) is better; a tie keeps ``none``, the smaller model. The run is then trained with that setting,
as ``tsmoe train`` would train it (refit included), and ``meta.json`` records the choice under
``text_choice``: both candidates' scores, the monitor and the setting kept. Nothing here reads the test split.

What it buys, measured by ``benchmarks/p3_text_choice.py`` (the same choice per seed on P3's kept runs):
every raw Time-MMD domain and horizon within 1.02 of no text's test MSE, where reading text always was up to
1.55 times worse; what it costs: gains that validation does not show are not kept (SocialGood's).
"""

from __future__ import annotations

import dataclasses

from tsmoe.config import RunConfig
from tsmoe.errors import ConfigError

CANDIDATES = ("both", "none")


def wants_text_choice(config: RunConfig) -> bool:
    return config.model.get("text") == "auto"


def check_text_choice(config: RunConfig) -> None:
    """Refuse ``text: auto`` where there is nothing to choose, before any data is read."""
    if config.model.get("text_as_tokens"):
        raise ConfigError(
            f"model.text auto chooses whether {config.model['name']} modulates its experts by text; this model "
            "reads text as tokens (text_as_tokens), which auto does not switch: train it with and without "
            "text and compare them (tsmoe compare)"
        )
    if config.data.get("text_encoder", "none") == "none":
        raise ConfigError(
            "model.text auto chooses between reading the data's text and not, but data.text_encoder is none: "
            "set an encoder (minilm, hf, hashing) or model.text: none"
        )


def candidate(config: RunConfig, text: str) -> RunConfig:
    """The run's config with ``model.text`` set to ``text`` and no refit (the choice is made on validation,
    which a refit model has trained on)."""
    return dataclasses.replace(
        config,
        model={**config.model, "text": text},
        training=dataclasses.replace(config.training, refit=False),
    )


def with_text(config: RunConfig, text: str) -> RunConfig:
    """The run's config with the chosen ``model.text`` (its other settings, refit included, as given)."""
    return dataclasses.replace(config, model={**config.model, "text": text})


def chosen_text(scores: dict[str, float], mode: str) -> str:
    """The candidate with the better validation score (``mode``: ``min`` or ``max``); ``none`` on a tie."""
    better = min if mode == "min" else max
    best = better(scores.values())
    return "none" if scores["none"] == best else "both"
