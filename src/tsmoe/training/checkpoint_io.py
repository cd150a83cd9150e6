"""Training checkpoints as one safetensors file: resumable, and never unpickled.

Lightning's checkpoint is a nested dict (model and optimiser state, loop counters, callback states, RNG
states). Its tensors go into the safetensors payload under path-like names; everything else (ints,
floats, strings, the nesting itself) goes into the file's JSON metadata, with a tag for the types JSON
lacks (non-string dict keys, tuples, tensors). Loading reads only safetensors and JSON, so a planted
pickle is refused before anything in it runs. The file is written atomically (temporary file, rename),
so a run killed while checkpointing keeps its previous checkpoint whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_torch

from tsmoe.errors import ModelFileError
from tsmoe.io import atomic_write_bytes

METADATA_KEY = "tsmoe_checkpoint"
FORMAT = 1


def encode(value: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    """A JSON-able skeleton of ``value``; its tensors are moved into ``tensors`` under ``path`` names."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().to("cpu").contiguous().clone()
        return {"__tensor__": path}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, tensors, f"{path}.k{i}"), encode(v, tensors, f"{path}.{i}")]
                             for i, (k, v) in enumerate(value.items())]}  # fmt: skip
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} at '{path}' of a checkpoint")


def decode(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(skeleton, list):
        return [decode(v, tensors) for v in skeleton]
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__tuple__" in skeleton:
            return tuple(decode(v, tensors) for v in skeleton["__tuple__"])
        return {decode(k, tensors): decode(v, tensors) for k, v in skeleton["__dict__"]}
    return skeleton


def write_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    skeleton = encode(checkpoint, tensors, "c")
    metadata = {METADATA_KEY: json.dumps({"format": FORMAT, "checkpoint": skeleton})}
    payload = save_torch(tensors, metadata=metadata)
    atomic_write_bytes(Path(path), lambda handle: handle.write(payload))


def read_checkpoint(path: Path, map_location: Any = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`write_checkpoint`; anything else fails with the file's name."""
    device = map_location if isinstance(map_location, str | torch.device) else "cpu"
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except FileNotFoundError:
        raise ModelFileError(f"checkpoint '{path}' is missing") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"checkpoint '{path}' is not a tsmoe safetensors checkpoint (truncated, edited or a pickle?): {error}"
        ) from None
    if METADATA_KEY not in metadata:
        raise ModelFileError(f"checkpoint '{path}' has no '{METADATA_KEY}' metadata: not written by tsmoe")
    try:
        stored = json.loads(metadata[METADATA_KEY])
        return decode(stored["checkpoint"], tensors)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"checkpoint '{path}' has unreadable metadata (edited?): {error}") from None


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning's checkpoint plugin, backed by :func:`write_checkpoint` and :func:`read_checkpoint`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        write_checkpoint(Path(path), checkpoint)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(Path(path), map_location)

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)
