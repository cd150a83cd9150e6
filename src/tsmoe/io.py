"""Saving and loading runs: safetensors for tensors, YAML/JSON for everything else; nothing is unpickled.

A run folder holds::

    config.yaml                 the fully resolved config
    model.safetensors           the chosen (best validation) weights
    preprocessing.safetensors   statistics fit on the training split (normalisers, scalers)
    meta.json                   task, input kind, sizes, channel names, best epoch, timings
    metrics.json                test metrics (lower-case keys)
    split.json                  the split used
    calibration.safetensors     the Venn-Abers map of a run calibrated so (training.calibrate: venn_abers)
    conformal.safetensors       a forecaster trained on data in memory (a frame): its validation split's
                                absolute residuals, from which its conformal intervals are made
    logs/metrics.csv            per-epoch training and validation metrics

Every file is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save as save_numpy
from safetensors.torch import load_file as load_torch
from safetensors.torch import save as save_torch

from tsmoe.errors import ModelFileError

CONFIG, WEIGHTS, PREPROCESSING, META, METRICS, SPLIT = (
    "config.yaml", "model.safetensors", "preprocessing.safetensors", "meta.json", "metrics.json", "split.json",
)  # fmt: skip
CALIBRATION = "calibration.safetensors"
CONFORMAL = "conformal.safetensors"


def atomic_write_bytes(path: Path, write: Callable[[object], None]) -> None:
    """Write a file by calling ``write(handle)`` on a temporary file, then renaming it into place. The file
    gets the mode any tool would give a new file, ``0666`` less the umask (a temporary file starts at
    ``0600``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back: the only way the OS offers)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(Path(path), lambda handle: handle.write(text.encode()))


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON; a number that is not finite (a metric with nothing to score, say) is written
    as ``null``, never as the non-JSON ``NaN`` or ``Infinity``."""
    write_text(path, json.dumps(finite_or_null(value), indent=2, default=float, allow_nan=False) + "\n")


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float (also inside dicts and lists) replaced by ``None``."""
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    return value


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ModelFileError(f"file '{path}' is missing") from None
    except json.JSONDecodeError as error:
        raise ModelFileError(f"file '{path}' is not valid JSON: {error}") from None


def write_weights(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """Write a state dict as safetensors (contiguous CPU copies; shared storage is fine)."""
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in state_dict.items()}
    payload = save_torch(tensors)
    atomic_write_bytes(Path(path), lambda handle: handle.write(payload))


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_torch(str(path))
    except FileNotFoundError:
        raise ModelFileError(f"weights file '{path}' is missing") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"weights file '{path}' is not a valid safetensors file (truncated or edited?): {error}"
        ) from None


def load_weights_into(model: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights, failing clearly on missing, unexpected or mis-shaped tensors."""
    weights = read_weights(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [
        f"{k}: file {tuple(weights[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        raise ModelFileError(
            f"weights file '{path}' does not match the model built from its config: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}"
        )
    broken = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise ModelFileError(
            f"weights file '{path}' holds NaN or infinite values in {broken[:5]}: the model it saved diverged or "
            "the file was edited; train the run again"
        )
    model.load_state_dict(weights)


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    payload = save_numpy({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    atomic_write_bytes(Path(path), lambda handle: handle.write(payload))


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        return load_numpy(str(path))
    except FileNotFoundError:
        raise ModelFileError(f"file '{path}' is missing") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"file '{path}' is not a valid safetensors file: {error}") from None


def read_config_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"file '{path}' is missing: not a tsmoe run folder?") from None
    except UnicodeDecodeError:
        raise ModelFileError(f"file '{path}' is not text (not UTF-8): the run folder was damaged") from None
    except yaml.YAMLError as error:
        raise ModelFileError(f"file '{path}' is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ModelFileError(f"file '{path}' does not hold a config mapping")
    return raw
