"""MoME's other modulated backbones: ``mmlinear`` (sparse mixture of linear experts) and ``mitransformer``
(iTransformer with a modulated sparse-MoE feed-forward): the equations, text steering per window, no text
at the start of training, and the one training path with a report."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tsmoe.cli import main
from tsmoe.errors import ConfigError
from tsmoe.models.mitransformer import MiTransformer, MiTransformerParams
from tsmoe.models.mmlinear import MMLinear, MMLinearParams

DIMS = {"lookback": 24, "horizon": 6, "n_channels": 2, "text_dim": 8}


def batch(b: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(b, 5, 8, generator=generator)
    return {"x": torch.randn(b, 24, 2, generator=generator) * 3 + 1, "text_tokens": tokens,
            "text_mask": torch.ones(b, 5, dtype=torch.bool), "text_pooled": tokens.mean(1)}  # fmt: skip


def perturb_text_modules(model: torch.nn.Module) -> None:
    """EiLM and Router Modulation start at zero (text changes nothing); give them weights."""
    torch.manual_seed(1)
    for module in (model.eilm, model.router_modulation):
        for parameter in module.parameters():
            parameter.data.normal_(0, 0.5)


def test_mmlinear_without_text_is_a_top_k_mixture_of_linear_maps_of_the_normalised_window():
    torch.manual_seed(0)
    model = MMLinear(MMLinearParams(text="none", experts=3, top_k=2), DIMS, "forecast").eval()
    x = batch()["x"]
    with torch.no_grad():
        out = model({"x": x})["output"]
        mean, std = x.mean(1, keepdim=True), x.std(1, unbiased=False, keepdim=True)
        z = ((x - mean) / std).permute(0, 2, 1).reshape(-1, 24)
        moe = model.blocks[0].moe
        weights, chosen = torch.softmax(moe.router(z), -1).topk(2, -1)
        every = torch.einsum("nl,elh->neh", z, moe.experts.weight) + moe.experts.bias[:, 0]
        mixed = (every.gather(1, chosen[..., None].expand(-1, -1, 6)) * weights[..., None]).sum(1)
    expected = mixed.view(3, 2, 6).permute(0, 2, 1) * std + mean
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("build", [
    lambda: MMLinear(MMLinearParams(experts=4, top_k=2), DIMS, "forecast"),
    lambda: MiTransformer(MiTransformerParams(d_model=16, n_heads=2, layers=2), DIMS, "forecast"),
])  # fmt: skip
def test_text_starts_as_a_no_op_and_then_steers_each_window_by_its_own_text(build):
    torch.manual_seed(0)
    model = build().eval()
    inputs = batch()
    with torch.no_grad():
        silent = {**inputs, "text_mask": torch.zeros_like(inputs["text_mask"])}  # the null text
        torch.testing.assert_close(model(inputs)["output"], model(silent)["output"])  # zero-initialised
        perturb_text_modules(model)
        steered = model(inputs)["output"]
        assert not torch.allclose(steered, model(silent)["output"], atol=1e-4)
        for i in range(3):  # a window's forecast depends on its own text only, wherever it sits in the batch
            alone = {k: v[i : i + 1] for k, v in inputs.items()}
            torch.testing.assert_close(model(alone)["output"][0], steered[i], atol=1e-5, rtol=1e-5)


def test_mitransformer_routes_every_variate_token_and_sizes_its_experts():
    torch.manual_seed(0)
    model = MiTransformer(MiTransformerParams(d_model=16, n_heads=2, layers=3, text="none"), DIMS, "forecast")
    result = model(batch())
    assert result["output"].shape == (3, 6, 2)
    assert [r.experts.shape for r in result["routing"]] == [(6, 2)] * 3  # B * C tokens, top-2
    assert result["expert_load"].shape == (3, 4) and int(result["expert_load"].sum()) == 3 * 6 * 2
    assert model.blocks[0].moe.experts.w_gate.shape == (4, 16, 32)  # d_inner = 2 d by default


def test_a_text_model_on_data_without_text_is_refused():
    for build in (MMLinear, MiTransformer):
        params = MMLinearParams() if build is MMLinear else MiTransformerParams()
        with pytest.raises(ConfigError, match="reads text .* but the data has none"):
            build(params, {**DIMS, "text_dim": 0}, "forecast")


@pytest.mark.parametrize("model", ["mmlinear", "mitransformer"])
def test_trained_by_the_one_path_and_read_out_in_the_report(model, tmp_path):
    run = tmp_path / model
    sets = ["data.domain=SocialGood", "data.text_encoder=hashing", "training.max_epochs=1", "trainer.accelerator=cpu"]
    recipe = Path("configs") / f"{model}-mome_timemmd.yaml"
    assert main(["train", str(recipe), "--out", str(run), *[f"--set={s}" for s in sets]]) == 0
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert 'id="usage"' in page and 'id="text"' in page and 'id="spectral"' in page


@pytest.mark.parametrize("name", ["mmlinear", "mitransformer"])
def test_each_trains_for_quantiles_too(name):
    from tsmoe.models.registry import build_model

    model = build_model({"name": name, "quantiles": [0.1, 0.5, 0.9]}, DIMS, "forecast", "window")
    result = model(batch())
    assert result["output"].shape == (3, 6, 2) and result["quantiles"].shape == (3, 6, 2, 3)
    assert (result["quantiles"].diff(dim=-1) >= 0).all() and "routing" in result
