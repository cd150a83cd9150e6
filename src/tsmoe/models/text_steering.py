"""Text that steers a mixture of experts, shared by MoME and its other modulated backbones (``mmlinear``,
``mitransformer``): QueryPool turns a window's text into N instruction vectors, which give EiLM's
per-expert ``gamma (B, E)``, ``beta (B, E, d_out)`` and Router Modulation's shift ``(B, E)``
(:mod:`tsmoe.layers.text_modulation`). With ``text_dropout = p``, each window's instruction vectors are
zeroed (the null text, under which both modulations are the identity) with probability p in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from tsmoe.errors import ConfigError
from tsmoe.layers.text_modulation import EiLM, QueryPool, RouterModulation


@dataclass
class SteeringParams:
    """The ``model`` keys of text steering (the same names and meanings as ``mome``'s)."""

    text: Literal["both", "eilm", "rm", "none", "auto"] = "both"  # auto: both or none, on validation
    router_modulation: Literal["additive", "sigmoid"] = "additive"
    rm_strength: float = 0.75  # lambda of the sigmoid form
    n_queries: int = 3
    text_input: Literal["tokens", "pooled"] = "tokens"
    text_dropout: float = 0.0


def refuse_unresolved_text(model: str, text: str) -> None:
    """``text: auto`` is resolved by training (:mod:`tsmoe.training.text_choice`) to ``both`` or ``none``; a model
    is never built with it."""
    if text == "auto":
        raise ConfigError(
            f"{model}: model.text auto is a choice made in training (tsmoe train, Estimator.fit), which "
            "builds the model with both or none; a model itself is built with one of both, eilm, rm, none"
        )


def check_text_setting(model: str, text: str, text_dim: int, text_dropout: float) -> None:
    """Refuse a model that reads text on data without text, a text dropout outside ``[0, 1)``, and an
    unresolved ``text: auto``."""
    refuse_unresolved_text(model, text)
    if text != "none" and not text_dim:
        raise ConfigError(
            f"{model} reads text (model.text: {text}), but the data has none: use a data set with text (e.g. "
            "mome_timemmd with data.text_encoder minilm, hf or hashing), or set model.text: none"
        )
    if not 0.0 <= text_dropout < 1.0:
        raise ConfigError(f"model.text_dropout must be in [0, 1), got {text_dropout}")


def steering_modules(
    params: Any,
    text_dim: int,
    d_query: int,
    n_experts: int,
    d_out: int,
    dropout: float,
    pool_without_modulation: bool = False,
) -> tuple[QueryPool | None, EiLM | None, RouterModulation | None]:
    """QueryPool (text -> ``(B, N, d_query)``), EiLM (for experts of output width ``d_out``) and Router
    Modulation, each ``None`` where ``params.text`` (a :class:`SteeringParams` or ``mome``'s parameters)
    leaves it out; ``pool_without_modulation`` keeps QueryPool when ``text`` is ``none`` (token fusion reads
    its vectors as tokens). Built in this order, so a seed gives the same initial weights to every model."""
    if params.text == "none" and not pool_without_modulation:
        return None, None, None
    pool = QueryPool(text_dim, d_query, params.n_queries, dropout)
    eilm = EiLM(d_query, n_experts, d_out) if params.text in ("both", "eilm") else None
    router = (
        RouterModulation(d_query, n_experts, params.router_modulation, params.rm_strength)
        if params.text in ("both", "rm")
        else None
    )
    return pool, eilm, router


def text_states(batch: dict[str, torch.Tensor], text_input: str) -> tuple[torch.Tensor, torch.Tensor]:
    """What QueryPool reads: ``tokens (B, T, D)`` and ``mask (B, T)``; with ``text_input="pooled"``, the
    pooled sentence vector as one token (``T = 1``; a null text's zero vector is masked out)."""
    if text_input == "tokens":
        return batch["text_tokens"], batch["text_mask"]
    pooled = batch["text_pooled"]
    return pooled[:, None, :], pooled.abs().sum(-1, keepdim=True) > 0


def instructions_of(
    pool: QueryPool, batch: dict[str, torch.Tensor], text_input: str, text_dropout: float, training: bool
) -> torch.Tensor:
    """Instruction vectors ``(B, N, d)``; in training, a window's are zeroed with probability ``text_dropout``."""
    instructions = pool(*text_states(batch, text_input))
    if training and text_dropout > 0:  # zero rows are the null text (no-op)
        kept = torch.rand(len(instructions), 1, 1, device=instructions.device) >= text_dropout
        instructions = instructions * kept.to(instructions.dtype)
    return instructions


def modulation_of(
    instructions: torch.Tensor, eilm: nn.Module | None, router: RouterModulation | None
) -> dict[str, torch.Tensor]:
    """The keyword arguments :class:`tsmoe.layers.sparse_moe.SparseMoE` takes: ``gamma``, ``beta`` (EiLM)
    and ``logit_shift`` (additive Router Modulation) or ``prob_shift`` (sigmoid form), per row of
    ``instructions``."""
    modulation: dict[str, torch.Tensor] = {}
    if eilm is not None:
        modulation["gamma"], modulation["beta"] = eilm(instructions)
    if router is not None:
        modulation["logit_shift" if router.form == "additive" else "prob_shift"] = router(instructions)
    return modulation


def window_modulation(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The modulation of each window of ``batch`` (one row per window) for a model holding ``query_pool``,
    ``eilm``, ``router_modulation`` (from :func:`steering_modules`) and :class:`SteeringParams`; ``{}``
    without text."""
    if model.query_pool is None:
        return {}
    params = model.params
    instructions = instructions_of(model.query_pool, batch, params.text_input, params.text_dropout, model.training)
    return modulation_of(instructions, model.eilm, model.router_modulation)
