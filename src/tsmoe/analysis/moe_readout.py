"""Read out what the experts of a sparse-MoE forecaster (``mome``, ``timemoe``, ``token_fusion``) did on a
data set: routing per token and layer, the windows' features, the effect of text, the top-K bound and
the spectra of the expert weights.

Tokens are patches of windows; each token inherits the features of its window: ``magnitude`` (the
input's standard deviation on the original scale), ``trend`` (slope of a line fit to the normalised
input, per step), ``volatility`` (std of the normalised input's first differences) and ``seasonality``
(share of the normalised input's variance in its strongest non-zero frequency).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tsmoe.analysis.routing import ExpertUsage, expert_usage
from tsmoe.analysis.spectral import SpectrumEstimate, gram_spectrum
from tsmoe.analysis.topk_bound import TruncationBound, truncation_bound

FEATURES = ("magnitude", "trend", "volatility", "seasonality")


def window_features(x: np.ndarray) -> dict[str, np.ndarray]:
    """``x (N, L)`` input windows -> each feature ``(N,)`` (see the module docstring)."""
    std = np.maximum(x.std(1), 1e-3)
    z = (x - x.mean(1, keepdims=True)) / std[:, None]
    steps = np.arange(x.shape[1]) - (x.shape[1] - 1) / 2
    trend = (z * steps).sum(1) / max((steps**2).sum(), 1e-12)
    volatility = np.diff(z, axis=1).std(1) if x.shape[1] > 2 else np.zeros(len(x))
    power = np.abs(np.fft.rfft(z, axis=1))[:, 1:] ** 2
    seasonality = power.max(1) / np.maximum(power.sum(1), 1e-12) if power.shape[1] else np.zeros(len(x))
    return {"magnitude": std, "trend": trend, "volatility": volatility, "seasonality": seasonality}


@dataclass
class LayerReadout:
    """One MoE layer over a data set: ``experts (N, K)``, ``probs (N, E)``, ``inputs (N, d)`` per token."""

    experts: np.ndarray
    probs: np.ndarray
    inputs: np.ndarray
    usage: ExpertUsage | None = None


@dataclass
class MoEReadout:
    layers: list[LayerReadout]
    token_features: dict[str, np.ndarray]  # feature -> (N,): each token's window feature
    text_changes_routing: list[float] | None = None  # per layer: share of tokens whose top-K set changes
    text_load_shift: list[np.ndarray] | None = None  # per layer: load with text minus load without
    spectra: dict[str, list[SpectrumEstimate]] = field(default_factory=dict)

    def specialisation(self, layer: int, feature: str, bins: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Load share of each expert within quantile bins of ``feature``: ``(bins, E)`` rows summing to 1,
        and the bin edges ``(bins + 1,)``."""
        values = self.token_features[feature]
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
        readout = self.layers[layer]
        n_experts = readout.probs.shape[1]
        table = np.zeros((len(edges) - 1, n_experts))
        for b in range(len(edges) - 1):
            chosen = readout.experts[which == b].reshape(-1)
            counts = np.bincount(chosen, minlength=n_experts).astype(float)
            table[b] = counts / max(counts.sum(), 1.0)
        return table, edges


def is_sparse_moe(model: torch.nn.Module) -> bool:
    return hasattr(model, "blocks") and all(hasattr(b, "moe") for b in getattr(model, "blocks", []))


@torch.no_grad()
def _route(model: torch.nn.Module, dataset: Dataset, collate, drop_text: bool) -> tuple[list, list, np.ndarray]:
    per_layer: list[list] = [[] for _ in model.blocks]
    inputs: list[list] = [[] for _ in model.blocks]
    windows = []
    for batch in DataLoader(dataset, batch_size=256, collate_fn=collate):
        if drop_text and "text_mask" in batch:
            batch = {**batch, "text_mask": torch.zeros_like(batch["text_mask"])}  # the null text
        result = model(batch)
        for i, (routing, seen) in enumerate(zip(result["routing"], result["expert_inputs"], strict=True)):
            per_layer[i].append((routing.experts.cpu().numpy(), routing.probs.cpu().numpy()))
            inputs[i].append(seen.cpu().numpy())
        x = batch["x"]  # (B, L, C) -> one row per series, in the order the model tokenises them
        windows.append(x.permute(0, 2, 1).reshape(-1, x.shape[1]).cpu().numpy())
    return per_layer, inputs, np.concatenate(windows)


def read_out(model: torch.nn.Module, dataset: Dataset, collate) -> MoEReadout:
    """Route ``dataset`` through ``model`` (eval mode) and gather everything the report shows."""
    model.eval()
    per_layer, inputs, windows = _route(model, dataset, collate, drop_text=False)
    layers = []
    for routed, seen in zip(per_layer, inputs, strict=True):
        experts = np.concatenate([r[0] for r in routed])
        probs = np.concatenate([r[1] for r in routed])
        layer = LayerReadout(experts, probs, np.concatenate(seen))
        layer.usage = expert_usage(experts, probs)
        layers.append(layer)
    # tokens are the patches of each series (window x channel), in order: repeat each series' features
    tokens_per_window = len(layers[0].experts) // len(windows)
    features = {k: np.repeat(v, tokens_per_window) for k, v in window_features(windows).items()}
    readout = MoEReadout(layers, features)
    if getattr(model, "query_pool", None) is not None and not getattr(model.params, "text_as_tokens", False):
        without, _, _ = _route(model, dataset, collate, drop_text=True)
        readout.text_changes_routing, readout.text_load_shift = [], []
        for layer, routed in zip(layers, without, strict=True):
            plain = np.concatenate([r[0] for r in routed])
            changed = (np.sort(plain, 1) != np.sort(layer.experts, 1)).any(1).mean()
            readout.text_changes_routing.append(float(changed))
            readout.text_load_shift.append(layer.usage.load - expert_usage(plain, layer.probs).load)
    readout.spectra = expert_spectra(model)
    return readout


def topk_bound(model: torch.nn.Module, readout: MoEReadout, layer: int = 0, tokens: int = 2048) -> TruncationBound:
    """The truncation bound on up to ``tokens`` tokens of ``layer``: every expert's output on what the
    layer saw, weighted by the router probabilities the layer used."""
    data = readout.layers[layer]
    pick = np.random.default_rng(0).permutation(len(data.inputs))[:tokens]
    with torch.no_grad():
        experts = model.blocks[layer].moe.experts
        device = next(experts.parameters()).device
        outputs = experts.dense(torch.from_numpy(data.inputs[pick]).to(device))  # (E, n, d)
    return truncation_bound(outputs.permute(1, 0, 2).cpu().numpy(), data.probs[pick], model.params.top_k)


def expert_spectra(model: torch.nn.Module) -> dict[str, list[SpectrumEstimate]]:
    """Per layer: ``||W||^2`` estimates of each expert's stacked weights (a SwiGLU expert's gate, up and down
    projections; a linear expert's one matrix) and the router."""
    spectra = {}
    for i, block in enumerate(model.blocks):
        for name, stacked in block.moe.experts.named_parameters():
            if stacked.dim() != 3 or stacked.shape[1] == 1:  # (E, rows, columns); not a bias
                continue
            weights = stacked.detach().cpu().numpy()
            spectra[f"layer{i}.{name}"] = [gram_spectrum(w.T) for w in weights]
        spectra[f"layer{i}.router"] = [gram_spectrum(block.moe.router.weight.detach().cpu().numpy())]
    return spectra
