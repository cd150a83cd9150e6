"""Typed parameters: a dataclass built from a mapping (a config section), with strict keys and types.

The ground floor of the package: data sets, models, training and the config all declare their settings
as dataclasses, and :func:`build_dataclass` turns a user's mapping into one, refusing unknown keys and
values of the wrong type with a :class:`~tsmoe.errors.ConfigError` that names the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

from tsmoe.errors import ConfigError

INT64_MAX = 2**63 - 1


def _number(text: str) -> int | float | str:
    """A number as a person writes it (``1e-4``, ``1E-4``, ``.5``, ``1_000``), which YAML 1.1 leaves as a
    string when it has no dot (``1e-4``); anything else is returned as it was."""
    cleaned = text.strip().replace("_", "")
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        number = float(cleaned)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: must be one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        number = _number(value) if isinstance(value, str) else value
        if isinstance(number, float) and number.is_integer():  # 1e3, 1_000.0
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if abs(number) > INT64_MAX:  # torch and NumPy take sizes and counts as 64-bit integers
            raise ConfigError(f"{where}: expected an integer within ±9.2e18, got {value!r}")
        return number
    if annotation is float:
        number = _number(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(number)
    if annotation is str:
        if not isinstance(value, str | Path):
            # YAML reads an unquoted yes, no, on, off, true or false as a boolean
            quote = " (YAML reads yes, no, on, off as booleans: quote it, 'yes')" if isinstance(value, bool) else ""
            raise ConfigError(f"{where}: expected a string, got {value!r}{quote}")
        return str(value)
    if annotation is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    return value


def build_dataclass(cls: type, values: dict[str, Any] | None, where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values`` (a mapping; None: every default), refusing unknown keys,
    wrong types and missing required keys."""
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of settings {{key: value}}, got {values!r}")
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)}; valid keys: {', '.join(names)}"
        )
    required = [f.name for f in dataclasses.fields(cls) if f.name not in values and _has_no_default(f)]
    if required:
        raise ConfigError(f"{where}: needs {', '.join(f'{name!r}' for name in required)} (not given)")
    coerced = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**coerced)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def _has_no_default(field: dataclasses.Field) -> bool:
    """Whether a dataclass field must be given (it has neither a default nor a default factory)."""
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
