"""Any Hugging Face language model as a frozen text encoder, read from local files only.

Encoder models (BERT-like, as MiniLM) and decoder models (GPT-2, Llama, Qwen2 families; the MoME paper
uses Qwen1.5-MoE) alike: a text's token states are one hidden layer of the base model (the last by
default), ``(T, D)`` with ``D = config.hidden_size``; its pooled vector is their mean, or the last token's
state (for a decoder, the only one that has read the whole text), L2-normalised.

Texts are batched without padding: a batch holds texts of the same token count, so a text's states never
depend on which other texts were encoded with it (padding changes them in their last bits), and the cache
holds one value per text on a given machine.

The model is a local folder or a model id already in the local Hugging Face cache (``local_files_only``:
never a download). Its *fingerprint*, a SHA-256 over its config and every weight file's content, names the
encoder, so the text cache keys on what the model is, not on where it lies or what it is called.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from pathlib import Path

import torch

from tsmoe.errors import ConfigError
from tsmoe.io import atomic_write_bytes
from tsmoe.paths import cache_dir
from tsmoe.text.encoders import EncodedText, TextEncoder

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5", ".gguf")
HEX64 = re.compile(r"[0-9a-f]{64}")


def model_folder(model: str) -> Path:
    """The folder of ``model``: a local folder, or the snapshot of a model id in the local Hugging Face
    cache. Nothing is downloaded."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ConfigError(f"data.text_model '{model}' is a folder without a config.json: not a Hugging Face model")
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as error:
        raise ConfigError(
            f"data.text_encoder 'hf' needs the 'text' extra: pip install 'tsmoe[text]' ({error})"
        ) from None
    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError) as error:
        raise ConfigError(
            f"data.text_model '{model}' is neither a local folder nor a model in the local Hugging Face cache "
            f"(tsmoe never downloads at run time): download it first, e.g. `hf download {model}`, or give its "
            f"folder ({type(error).__name__})"
        ) from None


def _file_digest(path: Path, memo: dict[str, str]) -> str:
    """SHA-256 of a weight file's content. A Hugging Face cache blob is named by it already; otherwise it is
    computed once and remembered by (path, size, modification time)."""
    target = path.resolve()
    if HEX64.fullmatch(target.name):  # hub cache: blobs/<sha256> (LFS files)
        return target.name
    stat = target.stat()
    key = f"{target}|{stat.st_size}|{stat.st_mtime_ns}"
    if key not in memo:
        digest = hashlib.sha256()
        with open(target, "rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
        memo[key] = digest.hexdigest()
    return memo[key]


def fingerprint(folder: Path) -> str:
    """A SHA-256 (first 16 hex digits) over ``config.json`` and each weight file's name and content digest."""
    memo_path = cache_dir() / "text" / "weight-digests.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    known = len(memo)
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    weights = sorted(p for p in folder.rglob("*") if p.name.endswith(WEIGHT_SUFFIXES) and p.is_file())
    if not weights:
        raise ConfigError(f"text model folder '{folder}' holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    for path in weights:
        digest.update(f"\0{path.relative_to(folder)}\0{_file_digest(path, memo)}".encode())
    if len(memo) != known:
        payload = json.dumps(memo, indent=1, sort_keys=True).encode()
        atomic_write_bytes(memo_path, lambda handle: handle.write(payload))
    return digest.hexdigest()[:16]


class HFEncoder(TextEncoder):
    """A frozen Hugging Face model (``AutoModel``: the base model, no language-model head).

    ``layer``: which hidden layer gives the token states (``-1`` the last; ``0`` the embeddings);
    ``pooling``: ``"mean"`` or ``"last"``; ``dtype``: the model's compute type (states are stored float32);
    ``device``: ``"cpu"`` or ``"cuda"``; ``max_tokens``: longer texts are cut (with a warning);
    ``batch_size``: texts of one token count encoded together.
    """

    def __init__(
        self,
        model: str,
        layer: int = -1,
        pooling: str = "mean",
        dtype: str = "float32",
        device: str = "cpu",
        max_tokens: int = 512,
        batch_size: int = 32,
    ) -> None:
        if pooling not in ("mean", "last"):
            raise ConfigError(f"data.text_pooling must be 'mean' or 'last', got {pooling!r}")
        if dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"data.text_dtype must be 'float32' or 'bfloat16', got {dtype!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("data.text_device is 'cuda' but torch sees no CUDA device; use 'cpu'")
        self.folder = model_folder(model)
        self.layer, self.pooling, self.dtype, self.device = layer, pooling, dtype, device
        self.max_tokens, self.batch_size = max_tokens, batch_size
        config = json.loads((self.folder / "config.json").read_text())
        config = config.get("text_config", config)  # multimodal configs nest the language model's
        self.dim = int(config.get("hidden_size") or config.get("n_embd") or config.get("d_model") or 0)
        if not self.dim:
            raise ConfigError(f"text model '{model}': its config.json names no hidden size")
        layers = int(config.get("num_hidden_layers") or config.get("n_layer") or 0)
        if layers and not -layers - 1 <= layer <= layers:
            raise ConfigError(
                f"data.text_layer {layer} is outside the model's layers (0 to {layers}, or -1 for the last)"
            )
        self.name = f"hf-{fingerprint(self.folder)}-L{layer}-{pooling}-{dtype}-t{max_tokens}"  # keys the text cache

    @cached_property
    def _model(self) -> tuple:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        model = AutoModel.from_pretrained(self.folder, local_files_only=True, dtype=dtype)
        return tokenizer, model.to(self.device).eval()

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's token ids (the tokenizer's special tokens included), before the length limit."""
        tokenizer, _ = self._model
        return tokenizer(texts, add_special_tokens=True)["input_ids"]

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> list[EncodedText]:
        _, model = self._model
        ids = self.token_ids(texts)
        too_long = [len(i) for i in ids if len(i) > self.max_tokens]
        if too_long:
            self._warn_truncated(len(too_long), max(too_long))
        ids = [i[: self.max_tokens] for i in ids]
        out: list[EncodedText | None] = [self.null() if not tokens else None for tokens in ids]
        by_length: dict[int, list[int]] = {}
        for position, tokens in enumerate(ids):
            if tokens:  # a text of characters the tokenizer drops is a null text
                by_length.setdefault(len(tokens), []).append(position)
        for positions in by_length.values():
            for start in range(0, len(positions), self.batch_size):
                chunk = positions[start : start + self.batch_size]
                batch = torch.tensor([ids[p] for p in chunk], device=self.device)
                hidden = model(input_ids=batch, output_hidden_states=self.layer != -1)
                states = hidden.last_hidden_state if self.layer == -1 else hidden.hidden_states[self.layer]
                states = states.float()  # (b, T, D)
                pooled = states.mean(1) if self.pooling == "mean" else states[:, -1]
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                for row, position in enumerate(chunk):
                    out[position] = EncodedText(states[row].cpu().numpy(), pooled[row].cpu().numpy())
        return out  # type: ignore[return-value]
