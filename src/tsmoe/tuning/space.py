"""Search spaces: which config keys a tuning study varies, over what ranges, read from YAML and checked
against the recipe's typed parameters before any trial runs.

A space file (``configs/spaces/<model>-<dataset>.yaml``)::

    params:
      training.lr:       {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
      model.hidden_size: {type: int, low: 16, high: 64, step: 16}
      model.experts:     {type: int, low: 2, high: 6}
      model.top_k:       {type: int, low: 1, high: model.experts}       # a bound taken from another parameter
      model.cell:        {type: categorical, choices: [cfc, ltc]}
      model.ode_unfolds: {type: int, low: 2, high: 8, when: {model.cell: ltc}}   # only where cell is ltc
    sampler: {name: tpe, startup_trials: 10}
    pruner:  {name: median, startup_trials: 5, warmup_epochs: 3}
    start_from_recipe: true   # the first trial is the recipe's own values (default)

Parameters are drawn in the order written, so a bound or a ``when`` may name only a parameter above it.
A parameter whose ``when`` does not hold keeps the recipe's value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tsmoe.config import resolve
from tsmoe.errors import ConfigError
from tsmoe.params import build_dataclass
from tsmoe.paths import SHIPPED_CONFIGS, shipped_space

SECTIONS = ("seed", "data", "model", "training")  # what a study may vary (not trainer or logging)


@dataclass
class ParamSpec:
    """One searched key. ``low``/``high`` are numbers, or the key of an earlier parameter (its drawn
    value is the bound); ``when`` maps earlier keys to the value, or list of values, they must have."""

    type: Literal["float", "int", "categorical"]
    low: float | int | str | None = None
    high: float | int | str | None = None
    log: bool = False
    step: float | int | None = None
    choices: list[Any] = field(default_factory=list)
    when: dict[str, Any] = field(default_factory=dict)


@dataclass
class SamplerSpec:
    """Optuna's sampler: ``tpe`` (multivariate, grouped for conditional parameters) or ``random``;
    ``startup_trials`` random draws before TPE models the results; ``seed`` (worker ``i`` uses seed + i)."""

    name: Literal["tpe", "random"] = "tpe"
    startup_trials: int = 10
    seed: int = 0


@dataclass
class PrunerSpec:
    """Optuna's pruner, fed the monitored validation metric after every epoch: ``median`` stops a trial
    whose best-so-far is worse than the median of earlier trials at the same epoch (after
    ``startup_trials`` unpruned trials and ``warmup_epochs`` epochs); ``hyperband`` (Li et al. 2018) from
    ``min_epochs``; ``none``."""

    name: Literal["median", "hyperband", "none"] = "median"
    startup_trials: int = 5
    warmup_epochs: int = 3
    min_epochs: int = 1
    reduction_factor: int = 3


@dataclass
class SearchSpace:
    """A parsed, checked space: parameters in drawing order, the sampler, the pruner, and the file's text."""

    params: dict[str, ParamSpec]
    sampler: SamplerSpec
    pruner: PrunerSpec
    text: str = ""
    start_from_recipe: bool = True

    def recipe_values(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """The recipe's own values of the searched keys that lie in their ranges (the first trial's)."""
        values: dict[str, Any] = {}
        for key, spec in self.params.items():
            value = recipe["seed"] if key == "seed" else recipe[key.split(".")[0]].get(key.split(".")[1])
            if not _applies(spec, values):
                continue
            if spec.type == "categorical":
                inside = value in spec.choices
            else:
                inside = isinstance(value, int | float) and not isinstance(value, bool) and (
                    _bound(spec.low, values) <= value <= _bound(spec.high, values))  # fmt: skip
            if inside:
                values[key] = value
        return values

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw every parameter whose ``when`` holds, in order, from an Optuna trial; ``{key: value}``."""
        drawn: dict[str, Any] = {}
        for key, spec in self.params.items():
            if not _applies(spec, drawn):
                continue
            if spec.type == "categorical":
                drawn[key] = trial.suggest_categorical(key, spec.choices)
                continue
            low, high = _bound(spec.low, drawn), _bound(spec.high, drawn)
            if spec.type == "int":
                drawn[key] = trial.suggest_int(key, int(low), int(high), step=int(spec.step or 1), log=spec.log)
            else:
                drawn[key] = trial.suggest_float(key, float(low), float(high), step=spec.step, log=spec.log)
        return drawn


def _applies(spec: ParamSpec, drawn: dict[str, Any]) -> bool:
    def matches(key: str, wanted: Any) -> bool:
        return key in drawn and (drawn[key] in wanted if isinstance(wanted, list) else drawn[key] == wanted)

    return all(matches(key, wanted) for key, wanted in spec.when.items())


def _bound(bound: float | int | str | None, drawn: dict[str, Any]) -> float:
    return drawn[bound] if isinstance(bound, str) else bound  # type: ignore[return-value]


def with_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the raw config mapping ``raw`` with ``{section.key: value}`` (or ``seed``) set."""
    raw = {name: dict(part) if isinstance(part, dict) else part for name, part in raw.items()}
    for key, value in values.items():
        if key == "seed":
            raw["seed"] = value
        else:
            section, name = key.split(".")
            raw.setdefault(section, {})[name] = value
    return raw


def read_space(path: str | Path, recipe: dict[str, Any]) -> SearchSpace:
    """Read the space file ``path`` and check it against ``recipe`` (a resolved config as a mapping): every
    key must exist in the recipe's model, data or training parameters, and each end of every range (each
    choice) must give a config those parameters accept. Errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        shipped = shipped_space(path)
        if shipped is None:
            names = sorted(p.stem for p in (SHIPPED_CONFIGS / "spaces").glob("*.yaml"))
            raise ConfigError(f"search space '{path}' does not exist, and no shipped space has that name; shipped "
                              f"spaces: {', '.join(names)}")  # fmt: skip
        path = shipped
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"search space '{path}' is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"search space '{path}' must be a mapping with 'params' (and optionally sampler, pruner)")
    unknown = sorted(set(raw) - {"params", "sampler", "pruner", "start_from_recipe"})
    if unknown:
        raise ConfigError(
            f"search space '{path}': unknown section(s) {unknown}; valid: params, sampler, pruner, start_from_recipe"
        )
    if not isinstance(raw.get("start_from_recipe", True), bool):
        raise ConfigError(f"search space '{path}': start_from_recipe must be true or false")
    if not isinstance(raw.get("params"), dict) or not raw["params"]:
        raise ConfigError(f"search space '{path}': 'params' must map config keys (e.g. training.lr) to ranges")
    params: dict[str, ParamSpec] = {}
    for key, value in raw["params"].items():
        where = f"search space '{path}', {key}"
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping such as {{type: float, low: 1e-4, high: 1e-2}}")
        params[key] = _checked(key, build_dataclass(ParamSpec, value, where), params, where)
    space = SearchSpace(
        params,
        build_dataclass(SamplerSpec, raw.get("sampler"), f"search space '{path}', sampler"),
        build_dataclass(PrunerSpec, raw.get("pruner"), f"search space '{path}', pruner"),
        text,
        raw.get("start_from_recipe", True),
    )
    check_against_recipe(space, recipe, str(path))
    return space


def _checked(key: str, spec: ParamSpec, earlier: dict[str, ParamSpec], where: str) -> ParamSpec:
    """``spec`` if its key, bounds and conditions are well formed; a ConfigError naming the fault if not."""
    section = key.split(".")[0]
    if key != "seed" and (section not in SECTIONS or key.count(".") != 1):
        raise ConfigError(f"{where}: keys have the form section.key with section one of data, model, training "
                          "(or seed)")  # fmt: skip
    for name, wanted in spec.when.items():
        if name not in earlier:
            raise ConfigError(f"{where}: 'when' names {name}, which is not a parameter above this one")
        choices = earlier[name].choices
        for value in wanted if isinstance(wanted, list) else [wanted]:
            if choices and value not in choices:
                raise ConfigError(f"{where}: 'when' wants {name} = {value!r}, not one of its choices {choices}")
    if spec.type == "categorical":
        if not spec.choices:
            raise ConfigError(f"{where}: a categorical parameter needs a non-empty list 'choices'")
        if len({repr(c) for c in spec.choices}) != len(spec.choices):
            raise ConfigError(f"{where}: choices {spec.choices} repeat a value")
        ranged = [name for name in ("low", "high", "step") if getattr(spec, name) is not None] + ["log"] * spec.log
        if ranged:
            raise ConfigError(f"{where}: {', '.join(ranged)} are for int and float ranges; a categorical takes choices")
        return spec
    if spec.choices:
        raise ConfigError(f"{where}: 'choices' is for type categorical; a {spec.type} takes low and high")
    for end in ("low", "high"):
        bound = getattr(spec, end)
        if bound is None:
            raise ConfigError(f"{where}: a {spec.type} parameter needs '{end}'")
        if isinstance(bound, str):
            if bound not in earlier or earlier[bound].type == "categorical":
                raise ConfigError(f"{where}: {end} '{bound}' must be a number or a numeric parameter above this one")
            if spec.when or earlier[bound].when:
                raise ConfigError(f"{where}: a bound from another parameter cannot be combined with 'when'")
    low, high = _extreme(spec.low, earlier, "low"), _extreme(spec.high, earlier, "high")
    if low > high:
        raise ConfigError(f"{where}: low {spec.low} is above high {spec.high}")
    if spec.log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {spec.low}")
    if spec.log and spec.step is not None:
        raise ConfigError(f"{where}: 'step' and 'log' cannot be combined (Optuna draws one or the other)")
    if spec.step is not None and not spec.step > 0:
        raise ConfigError(f"{where}: step must be positive, got {spec.step}")
    if spec.type == "int" and any(isinstance(b, float) and not b.is_integer() for b in (spec.low, spec.high)):
        raise ConfigError(f"{where}: an int parameter needs whole-number bounds, got {spec.low}..{spec.high}")
    return spec


def _extreme(bound: float | int | str | None, earlier: dict[str, ParamSpec], end: str) -> float:
    """A bound's value, or for a bound named after another parameter, that parameter's own ``end``."""
    while isinstance(bound, str):
        bound = getattr(earlier[bound], end)
    return float(bound)  # type: ignore[arg-type]


def corners(space: SearchSpace) -> list[dict[str, Any]]:
    """Assignments that together reach each end of every range and every choice: a parameter at one end,
    the parameters its bounds and conditions name set so that value is drawable (a ``top_k`` at its high
    end beside ``experts`` at its own high end), everything else at the recipe's value."""
    found = []
    for key, spec in space.params.items():
        if spec.type == "categorical":
            ends = [(value, None) for value in spec.choices]
        else:
            ends = [(_extreme(getattr(spec, side), space.params, side), side) for side in ("low", "high")]
        for value, end in ends:
            value = int(value) if spec.type == "int" else value
            assignment = {key: value}
            for side in ("low", "high"):  # a bound taken from another parameter: that one at the matching end
                bound = getattr(spec, side)
                if isinstance(bound, str):
                    other = value if side == end else _extreme(bound, space.params, side)
                    assignment[bound] = int(other) if space.params[bound].type == "int" else other
            for name, wanted in spec.when.items():
                assignment[name] = wanted[0] if isinstance(wanted, list) else wanted
            found.append(assignment)
    return found


def check_against_recipe(space: SearchSpace, recipe: dict[str, Any], where: str) -> None:
    """Resolve the recipe with each corner of the space; the first config the typed parameters refuse is
    reported with the values that made it. A float range must also draw fractions the setting takes (its
    ends may be whole numbers that an integer setting accepts, its inside not)."""
    for assignment in corners(space):
        try:
            resolve(with_values(recipe, assignment))
        except ConfigError as error:
            shown = ", ".join(f"{k}={v!r}" for k, v in assignment.items())
            raise ConfigError(f"search space '{where}': the recipe with {shown} is refused: {error}") from None
    for key, spec in space.params.items():
        fraction = _a_fraction_inside(spec, space.params) if spec.type == "float" else None
        if fraction is None:
            continue
        try:
            resolve(with_values(recipe, {key: fraction}))
        except ConfigError as error:
            raise ConfigError(
                f"search space '{where}', {key}: a float range draws fractions such as {fraction:g}, which the recipe "
                f"refuses ({error}); for a whole-number setting give type int"
            ) from None


def _a_fraction_inside(spec: ParamSpec, params: dict[str, ParamSpec]) -> float | None:
    """A value inside a float range that is not a whole number (None where the range holds none)."""
    low, high = _extreme(spec.low, params, "low"), _extreme(spec.high, params, "high")
    for share in (0.5, 1 / 3, 0.1):
        value = low + (high - low) * share
        if low < value < high and not value.is_integer():
            return value
    return None


def space_summary(space: SearchSpace) -> list[dict[str, Any]]:
    """One mapping per parameter (for the page and the log)."""
    return [{"key": key, **{k: v for k, v in dataclasses.asdict(spec).items() if v not in (None, [], {}, False)}}
            for key, spec in space.params.items()]  # fmt: skip
